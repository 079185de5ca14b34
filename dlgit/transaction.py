"""`dlgit hook reference-transaction prepared`: judge a ref update where git holds its locks.

git runs this hook on every ref update, so the hook script `dlgit install` writes filters in sh and
starts dlgit only for the few updates that need it (see dlgit.install.transaction_filter):

* in a clone, a fast-forward of main or dev onto commits that exist already (`git merge dev` or
  `git pull` on main, `git branch -f main X`, `git reset --hard X` forward) runs no commit hook:
  the commits it brings that the remote's same branch does not hold yet are judged here as
  `dlgit check` judges them, and the update is refused (exit 1 aborts git's transaction). A commit
  made here (its commit hooks judged it), a rebase, a reset back, a fetch of remote-tracking refs
  and every other ref are never judged.
* on a server, a release tag vX.Y.Z is accepted only when its commit is on main as the transaction
  leaves it (main's new value when the same transaction moves it, else main as it is): two pushes
  racing (A: main + tag, not atomic; B: main) cannot leave a tag off main. git would start the hook
  for every ref of every push (twice per ref without --atomic), so the server's hook is in place only
  while a push that carries a release tag is received (dlgit.install.place_tag_guard).
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

from dlgit.git import Git
from dlgit.model import is_zero, short_branch, tag_version
from dlgit.shell import quote

_LINE = re.compile(r"([0-9a-f]{40}|[0-9a-f]{64}) ([0-9a-f]{40}|[0-9a-f]{64}) (refs/\S+)")


def reference_transaction(state: str | None, stdin: TextIO) -> int:
    if state != "prepared":
        return 0
    lines = [match.groups() for line in stdin.read().splitlines() if (match := _LINE.fullmatch(line.strip()))]
    if not lines:
        return 0
    repo = Git.open()
    return _server(repo, lines) if repo.root is None else _clone(repo, lines)


def _server(repo: Git, lines: list[tuple[str, str, str]]) -> int:
    from dlgit import report, server

    main = server.policy(repo).settings.main
    moved = {ref: new for _, new, ref in lines}
    main_tip = moved.get(f"refs/heads/{main}") or repo.rev(f"refs/heads/{main}")
    refused = 0
    for _, new, ref in lines:
        version = tag_version(ref)
        found = repo.peeled(new) if version and not is_zero(new) else None
        if found is None or found[0] != "commit":
            continue
        if main_tip is None or is_zero(main_tip) or repo.first_parent_before(main_tip, [found[1]]) != found[1]:
            where = f"at {main_tip[:12]}" if main_tip and not is_zero(main_tip) else "absent"
            report.emit(f"dlgit: {ref} refused: its commit {found[1][:12]} is not on {main} as this update leaves it ({main} is "
                        f"{where}): another push moved {main} first, or {main} was not updated before the tag. Push {main} "
                        f"first and the tag after it, or both with `git push --atomic`.")
            refused += 1
    return 1 if refused else 0


def _clone(repo: Git, lines: list[tuple[str, str, str]]) -> int:
    from dlgit import report
    from dlgit.check import settings_policy
    from dlgit.evidence import RefView
    from dlgit.history.judge import Finding, Span, judge
    from dlgit.history.render import render_text

    code = 0
    for old, new, ref in lines:
        branch = short_branch(ref) if ref.startswith("refs/heads/") else None
        if branch is None or is_zero(old) or is_zero(new):
            continue
        pushed = [sha for tracking, sha in repo.refs("refs/remotes/") if short_branch(tracking) == branch]
        span = Span(f"{branch} {old[:12]}..{new[:12]}", new, (old, *pushed))
        policy = settings_policy(repo, span)
        if branch not in (policy.settings.main, policy.settings.dev):
            continue
        remote = repo.config_get(f"branch.{branch}.remote") or "origin"
        result = judge(span, branch, policy, RefView.load(repo, overrides={branch: new}, remote=remote))
        if result.ok:
            continue
        fix = _fix(repo, branch, new)
        result.findings = [Finding(item.judged, tuple(v._replace(fix=fix) for v in item.violations)) for item in result.findings]
        color = report.use_color(sys.stderr)
        header = (report.paint(f"dlgit: moving {branch} to {new[:12]} blocked", "bold", color)
                  + f" ({branch} stays at {old[:12]}: a fast-forward runs no commit hook, so it is judged here; "
                  f"{result.checked} commit(s) checked, judged by {result.policy.source})")
        report.emit(render_text(result, color, header))
        code = 1
    return code


def _fix(repo: Git, branch: str, new: str) -> tuple[str, ...]:
    """What to do instead, the ref having not moved: undo a checkout a `git merge` made, then bring
    the commits in by a merge commit the commit hooks judge."""
    undo = (f"git read-tree -m -u {quote(new)} HEAD   # only if a `git merge`/`git pull` checked out the new files: "
            "puts back HEAD's (your own changes stay)",) if repo.info.branch == branch else ()
    sources = sorted(ref.removeprefix("refs/heads/").removeprefix("refs/remotes/") for ref, sha in repo.refs("refs/heads/", "refs/remotes/")
                     if sha == new and ref != f"refs/heads/{branch}")
    source = sources[0] if sources else new
    message = quote(f"chore: merge {source} into {branch}")
    return (*undo, f"git switch {quote(branch)} && git merge --no-ff -m {message} {quote(source)}   "
            "# a merge commit, which the commit hooks judge (to main: `dlgit release` for dev)")
