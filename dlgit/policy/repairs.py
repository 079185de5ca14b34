"""Fix lines for a commit that already exists (found by `dlgit check`, pre-push or pre-receive).

A hook's fix acts on the commit being made (the index, MERGE_HEAD). A commit that `dlgit check`,
pre-push or pre-receive finds (Change.commit) is repaired instead: rewritten while it is not pushed;
once it is, main and dev only by a new commit (they are never rewritten; main through a hotfix
branch), any other branch by the rewrite and a force push.
"""

from __future__ import annotations

from collections.abc import Sequence

from dlgit.config import Settings
from dlgit.model import SQUASH_TRAILER, Kind
from dlgit.policy.change import Change
from dlgit.shell import quote

_TODO = {  # action -> what to change in `git rebase -i`'s todo list: (for a commit, for a merge)
    "drop": ("mark {short} 'drop'", "delete the line 'merge -C {short} ...'"),
    "edit": ("mark {short} 'edit', then at the stop:", "add a line 'break' after 'merge -C {short} ...', then at the stop:"),
    "reword": ("mark {short} 'reword'", "change 'merge -C {short}' to 'merge -c {short}'"),
}


def repair(change: Change, settings: Settings, action: str, index: Sequence[str] = (), forward: bool = False) -> list[str]:
    """How to repair `change.commit`: 'drop' it, 'edit' it (the `index` lines fix its content at the
    tip or at a rebase stop, then it is amended) or 'reword' it; then, for when it is pushed already,
    pushed: a revert, or with `forward` the `index` lines in a new commit."""
    assert change.commit is not None
    sha, short, tip = change.commit.sha, change.commit.sha[:12], change.commit.tip
    merge = change.merge is not None and not change.merge.squash
    at_tip = f"not pushed yet and {short} is the tip:"
    if tip and action == "drop" and not change.is_root:
        lines = [f"git reset --keep {sha}^   # {at_tip} drop it (uncommitted work is kept)"]
    elif tip and action == "reword":
        lines = [f"git commit --amend   # {at_tip} reword it"]
    elif tip and action == "edit":
        lines = []
    else:
        where = f"on '{change.branch.name}', " if change.commit.merged_by and change.branch else ""
        upstream = "--root" if change.is_root else f"{sha}^"
        todo = _TODO[action][merge].format(short=short)
        lines = [f"git rebase -i {'--rebase-merges ' if merge else ''}{upstream}   # {where}not pushed yet: {todo}"]
    if action == "edit":
        lines += [*index, "git commit --amend --no-edit" + (f"   # {at_tip} amend it" if tip else " && git rebase --continue")]
    if action == "reword":
        return lines + pushed(change, settings, ())
    return lines + pushed(change, settings, [*index, f'git commit -m "fix: repair {short}"'] if forward else None)


def merge_hotfix(name: str, settings: Settings) -> str:
    merge = f"git merge --no-ff -m {quote(f'fix: merge {name}')} {quote(name)}"
    return f"git switch {quote(settings.main)} && {merge} && git switch {quote(settings.dev)} && {merge}"


def squash_again(source: str) -> str:
    """Redo a squash so that its trailer names the real commit (the name quoted, the sha from git)."""
    trailer = quote(f"{SQUASH_TRAILER}: {source}@") + f'"$(git rev-parse {quote(source)})"'
    return f"git merge --squash {quote(source)} && git commit --trailer {trailer}   # squash again, with the trailer"


def pushed(change: Change, settings: Settings, forward: Sequence[str] | None) -> list[str]:
    """The repair of a commit that is pushed already. On main and dev, which are never rewritten: a
    new commit, made by the `forward` lines (None: a revert; empty: nothing can be done), on main
    through a hotfix branch. On any other branch: the rewrite, then a force push."""
    assert change.commit is not None
    sha, short, branch = change.commit.sha, change.commit.sha[:12], change.branch
    if branch is not None and branch.kind not in (Kind.MAIN, Kind.DEV):
        lines = [f"git push --force-with-lease {quote(change.commit.remote)} {quote(branch.name)}   # already pushed: after the rewrite "
                 f"(only {settings.main} and {settings.dev} are never rewritten)"]
        if change.commit.merged_by:
            merged = change.commit.merged_by
            lines.append(f"then undo merge {merged[:12]}, which brought {short} in (git revert -m 1 {merged} once pushed), "
                         f"and merge '{branch.name}' again")
        return lines
    if forward is not None and not forward:
        return [f"already pushed: the message of {short} stays ({settings.main} and {settings.dev} are never rewritten)"]
    before, after, why = None, None, "already pushed: repair it with a new commit"
    if branch is not None and branch.kind is Kind.MAIN:
        hotfix = f"{settings.hotfix_prefix}repair-{short}"
        before, after = f"git switch -c {hotfix} {quote(branch.name)}", merge_hotfix(hotfix, settings)
        why = f"already pushed: {branch.name} is never rewritten, so repair it through a hotfix branch"
    elif branch is not None:
        before = f"git switch {quote(branch.name)}"
        why = f"already pushed: {branch.name} is never rewritten, so repair it with a new commit"
    if forward is None:
        revert = f"git revert {'-m 1 ' if change.merge and not change.merge.squash else ''}{sha}"
        return [" && ".join(step for step in (before, revert, after) if step) + f"   # {why}"]
    return [f"{before}   # {why}:" if before else f"{why}:", *forward, *([after] if after else [])]
