"""`dlgit hook pre-push` and `dlgit hook pre-receive`: judge every ref a push updates.

Each updated branch is judged like `dlgit check` (dlgit.history.judge) for the branch it lands on:
an update from OLD to NEW judges OLD..NEW; a new branch judges the commits no ref of the receiving
side holds yet; a deletion is skipped, except that main and dev are never deleted nor force-pushed.
A pushed release tag vX.Y.Z must name a commit on main whose VERSION is X.Y.Z. The settings come
from the branch as it was before the push (a new branch: the receiving side's main), never from the
pushed commits, so a push cannot relax its own policy by editing .dlgit.yaml.

pre-push reads every `<local ref> <local sha> <remote ref> <remote sha>` line on stdin. Under the
pre-commit framework the hook gets no stdin, only PRE_COMMIT_* variables describing the *first*
pushed ref (pre-commit#1908): dlgit then checks that one ref and says so; `dlgit install` installs a
pre-push hook that checks them all. pre-receive reads `<old> <new> <ref>` lines in a server's
(bare) repository before git updates any ref; it never updates refs itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from dlgit import config, report
from dlgit.evidence import RefView
from dlgit.git import Git, require_version
from dlgit.history.gather import existing_commits, tag_updates
from dlgit.history.judge import Policy, Result, Span, judge, policy_at
from dlgit.history.render import render_text
from dlgit.model import is_zero, short_branch, tag_version
from dlgit.policy.change import RefUpdate

FRAMEWORK_NOTICE = (
    "dlgit: the pre-commit framework hands its pre-push hooks only the first pushed ref (pre-commit#1908); "
    "only that ref was checked. `dlgit install` sets up a pre-push hook that checks every ref."
)


@dataclass(frozen=True)
class Update:
    ref: str  # the ref on the receiving side: refs/heads/main, refs/tags/v1.0.0
    old: str  # all zeros: the ref is created
    new: str  # all zeros: the ref is deleted


@dataclass(frozen=True)
class Side:
    """The receiving side as the hook sees it."""

    existing: tuple[str, ...]  # refs whose commits are already there (a new branch's range excludes them)
    branches: tuple[str, ...]  # where branch tips are looked up (merge sources, squash trailers, main)
    repo: Git
    remote: str = "origin"  # the pushing side's name for the receiving side (fix lines)


def pre_push(remote: str | None, stdin: TextIO) -> int:
    repo = Git.open()
    updates = [_pre_push_line(line) for line in _lines(stdin)]
    framework = not updates
    if framework:
        remote = os.environ.get("PRE_COMMIT_REMOTE_NAME") or remote
        updates = _framework_updates(repo, remote)
    named = remote is not None and repo.config_get(f"remote.{remote}.url") is not None
    tracking = f"refs/remotes/{remote}/" if named else "refs/remotes/"
    code = judge_updates(updates, Side((tracking,), ("refs/heads/", tracking), repo, remote if named else "origin"))
    if framework and updates:
        report.emit(FRAMEWORK_NOTICE)
    return code


def pre_receive(stdin: TextIO) -> int:
    repo = Git.open()
    updates = []
    for line in _lines(stdin):
        old, new, ref = line.split(" ", 2)
        updates.append(Update(ref, old, new))
    return judge_updates(updates, Side(("refs/",), ("refs/heads/",), repo))


def _lines(stdin: TextIO) -> list[str]:
    if stdin is None or stdin.isatty():
        return []
    return [line.strip() for line in stdin.read().splitlines() if line.strip()]


def _pre_push_line(line: str) -> Update:
    _, local_sha, remote_ref, remote_sha = line.rsplit(" ", 3)
    return Update(remote_ref, remote_sha, local_sha)


def _framework_updates(repo: Git, remote: str | None) -> list[Update]:
    """The one ref the pre-commit framework describes in PRE_COMMIT_* variables. FROM_REF is the
    remote's old tip only when it is the remote-tracking tip; otherwise the branch is new there
    (the framework then passes the parent of the first new commit)."""
    env = os.environ
    remote_ref = env.get("PRE_COMMIT_REMOTE_BRANCH")
    new = repo.rev(env.get("PRE_COMMIT_TO_REF") or env.get("PRE_COMMIT_LOCAL_BRANCH") or "") if remote_ref else None
    if not remote_ref or new is None:
        return []
    from_ref = repo.rev(env["PRE_COMMIT_FROM_REF"]) if env.get("PRE_COMMIT_FROM_REF") else None
    branch = short_branch(remote_ref)
    tracking = repo.rev(f"refs/remotes/{remote}/{branch}") if remote and branch else None
    old = from_ref if from_ref and from_ref == tracking else "0" * len(new)
    return [Update(remote_ref, old, new)]


def judge_updates(updates: Sequence[Update], side: Side) -> int:
    """Judge every update; print what blocks; 1 when anything does."""
    if not updates:
        return 0
    require_version()
    repo = side.repo
    overrides = {name: u.new for u in updates if (name := short_branch(u.ref)) and not is_zero(u.new)}
    refs = RefView.load(repo, side.branches, overrides, side.remote)
    main = config.load(repo.root).main
    main_tip = next((sha for ref, sha in repo.refs(*side.existing) if short_branch(ref) == main), None)
    results = [_judge(update, side, refs, (main, main_tip)) for update in updates]
    blocked = [result for result in results if not result.ok]
    color = report.use_color(sys.stderr)
    for result in blocked:
        header = (report.paint(f"dlgit: push to {result.label} blocked", "bold", color)
                  + f" ({result.checked} commit(s) checked, judged by {result.policy.source})")
        report.emit(render_text(result, color, header))
    return 1 if blocked else 0


def _judge(update: Update, side: Side, refs: RefView, main: tuple[str, str | None]) -> Result:
    """One update. `main`: the main branch's name and its tip on the receiving side."""
    branch = update.ref[len("refs/heads/"):] if update.ref.startswith("refs/heads/") else None
    old_known = not is_zero(update.old) and side.repo.rev(update.old) is not None
    base = update.old if old_known and branch else main[1] if branch != main[0] else None
    policy = policy_at(side.repo, base, "the old tip" if base == update.old else f"the receiving side's {main[0]}")
    if is_zero(update.new):
        return judge(Span(update.ref, None), branch, policy, refs, RefUpdate(update.ref, deleted=True, remote=refs.remote))
    if branch is None:
        return _judge_tag(update, refs, policy)
    if old_known:
        bases, forced = [update.old], not side.repo.is_ancestor(update.old, update.new)
    else:  # a new branch; or the receiving side has commits this repository lacks, which NEW cannot contain
        bases, forced = existing_commits(side.repo, side.existing, branch), not is_zero(update.old)
    span = Span(update.ref, update.new, tuple(bases))
    return judge(span, branch, policy, refs, RefUpdate(update.ref, forced=forced, remote=refs.remote))


def _judge_tag(update: Update, refs: RefView, policy: Policy) -> Result:
    if not tag_version(update.ref):
        return Result(update.ref, None, policy)  # other refs: nothing to judge
    [tag] = tag_updates([(update.ref, refs.repo.rev(update.new) or update.new)], refs, policy.settings)
    return judge(Span(update.ref, None), None, policy, refs, tag)
