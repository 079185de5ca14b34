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

The job installs the dlgit the hooks run (see install_step): never a version that may not exist;
when dlgit came from a folder on this machine, a step that fails and says what to put there.

The job needs the whole history (fetch-depth 0 / GIT_DEPTH 0) to read the base's .dlgit.yaml.
Hosted merge buttons that squash or rebase put single-parent commits on main: use merge commits
there (with a conventional message), or merge locally and push.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

from dlgit import origin
from dlgit.errors import UsageError
from dlgit.git import Git
from dlgit.git.proc import NO_ATTRIBUTES
from dlgit.shell import quote

MARKER = "# dlgit-managed CI job"

# The one script both CIs run (POSIX sh). It reads DLGIT_BEFORE, DLGIT_AFTER, DLGIT_BRANCH for a
# push and DLGIT_MR_TARGET, DLGIT_MR_SOURCE, DLGIT_MR_BASE, DLGIT_MR_HEAD for a merge request.
SCRIPT = """\
set -eu
zero=0000000000000000000000000000000000000000
if [ -n "${DLGIT_MR_TARGET:-}" ]; then
  # a merge request: judge the merge it would add to the target branch (the head's name proves nothing)
  base=$(git rev-parse --verify "$DLGIT_MR_BASE^{commit}")
  gitdir=$(git rev-parse --absolute-git-dir)  # git's merge as the checks recompute it: no attributes (no .gitattributes of the head)
  tree=$(cd "$gitdir" && unset GIT_WORK_TREE && GIT_ATTR_NOSYSTEM=1 git --git-dir="$gitdir" NO_ATTRIBUTES merge-tree --write-tree \\
    "$base" "$DLGIT_MR_HEAD" | head -n 1)
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
""".replace("NO_ATTRIBUTES", " ".join(NO_ATTRIBUTES))


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
@INSTALL8@
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
@INSTALL4@
    - git fetch --quiet origin "+refs/heads/*:refs/remotes/origin/*"  # GitLab fetches only the pipeline's branch
    - |
{_indent(SCRIPT, 6)}"""

TEMPLATES = {"github": GITHUB, "gitlab": GITLAB}
PATHS = {"github": ".github/workflows/dlgit.yml", "gitlab": ".gitlab-ci.yml"}
GITLAB_INCLUDE = ".gitlab/dlgit.gitlab-ci.yml"


class Install(NamedTuple):
    """The job's step that installs dlgit: comment lines above it, then its shell lines."""

    comment: list[str]
    lines: list[str]


def install_step(provider: str, toplevel: Path | None) -> Install:
    """Install the dlgit the repository's hooks run: the dlgit entry of its .pre-commit-config.yaml
    when a CI runner can clone that repo, else the source this dlgit was installed from; when that is
    a folder or archive on this machine, a step that fails and says what to put there."""
    from dlgit.install import FRAMEWORK_CONFIG, FRAMEWORK_IDS

    config = toplevel / FRAMEWORK_CONFIG if toplevel is not None else None
    entry = origin.framework_entry(config.read_text(errors="replace"), tuple(FRAMEWORK_IDS)) if config and config.is_file() else None
    url = origin.pip_url(entry[0]) if entry else None
    if entry and url:
        return Install([f"the dlgit of {FRAMEWORK_CONFIG} (its repo and rev), the code the hooks run"],
                       [f"python -m pip install {quote(f'dlgit @ {url}@{entry[1]}')}"])
    try:
        installed: origin.Origin | None = origin.installed()
    except UsageError:  # run from a source tree on sys.path: no install to name
        installed = None
    if installed is not None and not installed.local:
        why = ("where the dlgit that wrote this job was installed from" if installed.url else
               f"dlgit {installed.version} came from a package index: give the runner that index (pip --index-url) if it is not PyPI")
        return Install([why], [f"python -m pip install {quote(installed.requirement)}"])
    return Install([
        f"dlgit was installed from {installed.url}, which is on this machine only: a CI runner cannot install it from there."
        if installed else "where dlgit was installed from is not recorded here (no installed distribution).",
        "Replace the command below (it fails on purpose) with an install from a git URL the runner can clone, for example",
        f"  python -m pip install {quote(_suggested_requirement(installed))}",
        f"(or give dlgit a `repo:` URL and `rev:` in {FRAMEWORK_CONFIG}, then run `dlgit ci {provider} --write` again).",
    ], ['echo "dlgit: this job does not know where to install dlgit from; edit its install step (see the comment there)." >&2', "exit 1"])


def _suggested_requirement(installed: origin.Origin | None) -> str:
    """`dlgit @ git+<remote>@<HEAD>` of the local checkout dlgit came from, when it has an origin
    remote (once that commit is pushed), else a placeholder."""
    folder = installed.folder if installed is not None else None
    if folder is not None and (folder / ".git").exists():
        repo = Git(folder)
        url = origin.pip_url(repo.config_get("remote.origin.url") or "")
        head = repo.rev("HEAD")
        if url and head:
            return f"dlgit @ {url}@{head}"
    return "dlgit @ git+https://<git server>/<owner>/dlgit@<commit>"


def render(provider: str, install: Install) -> str:
    """The job file for `provider` with `install` as its install step."""
    if provider == "github":
        block = [*(f"        # {line}" for line in install.comment), "        run: |", *(f"          {line}" for line in install.lines)]
        return TEMPLATES[provider].replace("@INSTALL8@", "\n".join(block))
    block = [*(f"    # {line}" for line in install.comment), "    - |", *(f"      {line}" for line in install.lines)]
    return TEMPLATES[provider].replace("@INSTALL4@", "\n".join(block))


def main(provider: str, write: bool) -> int:
    try:
        toplevel = Git.open().root
    except UsageError:  # printing the job needs no repository
        if write:
            raise
        toplevel = None
    text = render(provider, install_step(provider, toplevel))
    if not write:
        sys.stdout.write(text)
        return 0
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
