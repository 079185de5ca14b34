"""`dlgit ci github|gitlab [--write]`: a CI job that runs `dlgit check` on every push and merge request.

Both templates run the same shell script, fed by DLGIT_* variables that each CI fills from its own:

- a push judges BEFORE..AFTER for the pushed branch; an all-zero BEFORE (the branch's first push) or
  a BEFORE the clone lacks (after a force push) judges AFTER's commits that no other remote branch
  holds (`dlgit check 000..AFTER`);
- a pull/merge request judges the merge it would add to its target: the script records that merge
  with `git merge-tree` + `git commit-tree` under dlgit's own ref namespace (refs/dlgit/mr/; no
  branch is written, nothing is checked out or pushed) and checks it with `--branch TARGET`. The
  head branch's name is the requester's to choose, so it proves nothing: the source is the branch of
  this repository that owns the head commit (dev's own tip passes as a release), else the merge's
  content must prove the name it gives (a task changing only its folder, a hotfix within its
  limits); anything else into main is refused.

The job needs the whole history (fetch-depth 0 / GIT_DEPTH 0) to read the base's .dlgit.yaml.
Hosted merge buttons that squash or rebase put single-parent commits on main: use merge commits
there (with a conventional message), or merge locally and push.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dlgit import __version__
from dlgit.errors import UsageError
from dlgit.git import Git

MARKER = "# dlgit-managed CI job"
INSTALL = f'python -m pip install "dlgit=={__version__}"'

# The one script both CIs run (POSIX sh). It reads DLGIT_BEFORE, DLGIT_AFTER, DLGIT_BRANCH for a
# push and DLGIT_MR_TARGET, DLGIT_MR_SOURCE, DLGIT_MR_BASE, DLGIT_MR_HEAD for a merge request.
SCRIPT = """\
set -eu
zero=0000000000000000000000000000000000000000
if [ -n "${DLGIT_MR_TARGET:-}" ]; then
  # a merge request: judge the merge it would add to the target branch (the head's name proves nothing)
  base=$(git rev-parse --verify "$DLGIT_MR_BASE^{commit}")
  tree=$(git merge-tree --write-tree "$base" "$DLGIT_MR_HEAD" | head -n 1)
  merge=$(git -c user.name=dlgit -c user.email=dlgit@localhost commit-tree "$tree" -p "$base" -p "$DLGIT_MR_HEAD" \\
    -m "chore: merge $DLGIT_MR_SOURCE into $DLGIT_MR_TARGET")
  git update-ref refs/dlgit/mr/merge "$merge"  # dlgit's own namespace: never a branch
  exec dlgit check "$base..$merge" --branch "$DLGIT_MR_TARGET"
fi
before=${DLGIT_BEFORE:-$zero}
if ! git cat-file -e "$before^{commit}" 2>/dev/null; then
  before=$zero  # a first push, or a force push whose old tip this clone lacks
fi
exec dlgit check "$before..$DLGIT_AFTER" --branch "$DLGIT_BRANCH"
"""


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line if line.strip() else line for line in text.splitlines(keepends=True))


GITHUB = f"""\
{MARKER}: written by `dlgit ci github`; regenerate it with `dlgit ci github --write`.
# Re-verifies every push and pull request with the same rules as the git hooks (`dlgit check`).
name: dlgit check
on:
  push:
    branches: ["**"]
  pull_request:
permissions:
  contents: read
jobs:
  dlgit-check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0  # the whole history: ranges, merge bases and the base's .dlgit.yaml
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - name: Install dlgit
        run: {INSTALL}
      - name: dlgit check
        env:
          DLGIT_BEFORE: ${{{{ github.event.before }}}}
          DLGIT_AFTER: ${{{{ github.sha }}}}
          DLGIT_BRANCH: ${{{{ github.ref_name }}}}
          DLGIT_MR_TARGET: ${{{{ github.event.pull_request.base.ref }}}}
          DLGIT_MR_SOURCE: ${{{{ github.event.pull_request.head.ref }}}}
          DLGIT_MR_BASE: ${{{{ github.event.pull_request.base.sha }}}}
          DLGIT_MR_HEAD: ${{{{ github.event.pull_request.head.sha }}}}
        run: |
{_indent(SCRIPT, 10)}"""

GITLAB = f"""\
{MARKER}: written by `dlgit ci gitlab`; regenerate it with `dlgit ci gitlab --write`.
# Re-verifies every push and merge request with the same rules as the git hooks (`dlgit check`).
dlgit-check:
  image: python:3.12
  variables:
    GIT_DEPTH: "0"  # the whole history: ranges, merge bases and the base's .dlgit.yaml
    DLGIT_BEFORE: $CI_COMMIT_BEFORE_SHA
    DLGIT_AFTER: $CI_COMMIT_SHA
    DLGIT_BRANCH: $CI_COMMIT_BRANCH
    DLGIT_MR_TARGET: $CI_MERGE_REQUEST_TARGET_BRANCH_NAME
    DLGIT_MR_SOURCE: $CI_MERGE_REQUEST_SOURCE_BRANCH_NAME
    DLGIT_MR_BASE: origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME
    DLGIT_MR_HEAD: $CI_COMMIT_SHA
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
    - if: $CI_COMMIT_BRANCH
  script:
    - {INSTALL}
    - git fetch --quiet origin "+refs/heads/*:refs/remotes/origin/*"  # GitLab fetches only the pipeline's branch
    - |
{_indent(SCRIPT, 6)}"""

TEMPLATES = {"github": GITHUB, "gitlab": GITLAB}
PATHS = {"github": ".github/workflows/dlgit.yml", "gitlab": ".gitlab-ci.yml"}
GITLAB_INCLUDE = ".gitlab/dlgit.gitlab-ci.yml"


def main(provider: str, write: bool) -> int:
    text = TEMPLATES[provider]
    if not write:
        sys.stdout.write(text)
        return 0
    toplevel = Git.open().root
    if toplevel is None:
        raise UsageError("`dlgit ci --write` needs a work tree; in a bare repository print the job and commit it elsewhere.")
    target = toplevel / PATHS[provider]
    if target.exists() and MARKER not in target.read_text(errors="replace"):
        if provider != "gitlab":
            raise UsageError(f"{target} exists and was not written by dlgit; move it away or print the job with `dlgit ci {provider}`.")
        target = toplevel / GITLAB_INCLUDE
        print(f"{PATHS['gitlab']} exists: add this to it to run the job:\ninclude:\n  - local: {GITLAB_INCLUDE}")
    _write(target, text)
    return 0


def _write(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"wrote {target}; commit it to run `dlgit check` on every push and merge request.")
