"""Facts about one change (a commit being made or one already in history) and the violations
the rules find in them. Everything here is plain data: no git, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from dlgit.config import Settings
from dlgit.model import Branch


class Entry(NamedTuple):  # a NamedTuple: `dlgit check` makes one per changed path of a whole history
    """One path the change adds, modifies, deletes, renames or copies."""

    status: str  # A, M, D, R, C, T (git diff --raw)
    path: str
    old_path: str | None = None  # renames and copies
    size: int | None = None  # bytes of the new content; None for deletions and when known to be far under the limit

    @property
    def paths(self) -> tuple[str, ...]:
        """Both sides of a rename; a deletion's path counts too."""
        return (self.old_path, self.path) if self.old_path and self.status == "R" else (self.path,)

    @property
    def adds_content(self) -> bool:
        return self.status != "D"


class Merge(NamedTuple):
    """The other side of a merge or squash: the branch it brings in, when dlgit could tell."""

    source: Branch | None  # None: no branch here owns the merged commit and its content proves no claim
    sha: str | None = None
    squash: bool = False
    octopus: bool = False  # several branches merged at once: `source` is only one of them
    by_content: bool = False  # no branch here owns it: `source` is the name it gives, which its content must bear out

    @property
    def label(self) -> str:
        return self.source.name if self.source else (self.sha or "an unknown commit")[:12]


HotfixDiff = tuple[tuple[str, int, int], ...]  # (path, changed lines, changed bytes) of a hotfix
Unexplained = tuple[tuple[str, str], ...]  # (path, problem: a key of dlgit.git.parse.UNEXPLAINED)


class SquashEvidence(NamedTuple):
    """A squash onto main recomputed from its `Squashed-from` trailer (history) or SQUASH_MSG (the hooks)."""

    exists: bool  # the squashed commit is a commit of this repository
    on_branch: bool | None = None  # the branch the trailer names owns that commit; None: no such branch here (or not asked)
    differing: Unexplained = ()  # where the squash holds what `git merge-tree <parent> <sha>` does not explain
    # (a resolved conflict may keep either side's lines; anything else counts)
    redundant: bool = False  # the squashed commit is already contained in the squash's parent: it squashes nothing


class MergeEvidence(NamedTuple):
    """A merge into main or dev recomputed from its parents (`git log --remerge-diff`, `merge-tree`)."""

    unexplained: Unexplained = ()  # content git's merge of the parents does not explain (an evil merge)
    redundant: bool = False  # the second parent is already contained in the first: the merge merges nothing


class RefUpdate(NamedTuple):
    """A ref being pushed (pre-push, pre-receive) or a release tag being checked (`dlgit check`)."""

    ref: str  # full name: refs/heads/main, refs/tags/v1.2.0
    deleted: bool = False
    forced: bool = False  # the new value does not contain the old one: history is rewritten
    moved: bool = False  # tags: the receiving side had the ref with another value
    on_main: bool | None = None  # tags: the commit is on the main branch
    version: str | None = None  # tags: VERSION in the template config at the tagged commit
    remote: str = "origin"  # where the push goes (for the fix lines)
    tag_bytes: int | None = None  # an annotated tag being pushed: the size of its tag object (its message, mostly)


class Committed(NamedTuple):
    """Where a change judged in history stands (`dlgit check`, pre-push, pre-receive): its fix repairs
    that commit (amend, rebase, revert) instead of the index of a commit being made."""

    sha: str
    tip: bool = False  # the newest commit of the judged range (amend or reset reach it directly)
    merged_by: str | None = None  # the merge that brought it onto the judged branch; None: put there directly
    remote: str = "origin"  # where it is pushed (for the fix lines)
    on_dev: bool = False  # dev holds it already (a fast-forward of dev's work onto main)


class Change(NamedTuple):
    branch: Branch | None  # the branch the change lands on; None on a detached HEAD
    entries: tuple[Entry, ...] = ()
    merge: Merge | None = None
    is_root: bool = False  # the first commit of the repository
    message: str | None = None  # cleaned commit message, when known
    # staged/committed bytes of every tasks/*/config.yaml the change adds or edits
    configs: tuple[tuple[str, bytes], ...] = ()
    # tasks/<template>/config.yaml before the change, when the change edits it
    template_config_before: bytes | None = None
    # the change also changes that file's mode (the exec bit, say): then it is no VERSION bump
    template_mode_changed: bool = False
    # on a task or debug branch whose change edits its own config.yaml or the template's: (VERSION there, VERSION
    # of the template config in the same commit: the core the task runs on)
    task_versions: tuple[str | None, str | None] | None = None
    # hotfix branches: (path, changed lines, changed bytes) from the fork point with main, committed + staged
    hotfix_diff: HotfixDiff | None = None
    # a squash onto main recomputed (see SquashEvidence)
    squash_evidence: SquashEvidence | None = None
    # a merge into main or dev recomputed (see MergeEvidence)
    merge_evidence: MergeEvidence | None = None
    # a merge or squash of a hotfix into main: (path, changed lines, changed bytes) it brings onto its first parent
    brought: HotfixDiff | None = None
    # a release (merge or squash of dev) onto main: the dev commit an earlier release took, which the
    # dev commit taken now does not contain (main takes dev only forward)
    stale_release: str | None = None
    # a task's merge into dev that changes paths outside its folder: the paths the task changes on top of main's history
    # (evidence.task_brings; None: not asked, or it holds none of main's first-parent chain)
    task_brings: tuple[str, ...] | None = None
    # pushes and tags: the ref update being judged (branch is the branch it updates, if any)
    ref_update: RefUpdate | None = None
    # history only: the commit this change already is; None for a commit being made (the hooks)
    commit: Committed | None = None
    # history only, a merge or squash no branch here owns: the remote whose server's record of the tips main and
    # dev had (dlgit.record) this clone has not fetched, which may prove its source
    unrecorded: str | None = None
    # hooks only, for the fixes they print: `git commit --amend` is making the change; dev does not
    # exist yet; the repository uses DVC (.dvc/config)
    amending: bool = False
    dev_missing: bool = False
    dev_worktree: str | None = None  # dev is checked out in that other work tree
    # hooks only, when the branch's name is malformed: for the name to suggest instead
    core_version: str | None = None  # VERSION of the template config at HEAD
    now: str | None = None  # the UTC time, YYYYMMDDTHHMMSS
    has_task_folder: bool = False  # tasks/<the branch's name>/ exists
    # hooks on a task branch: paths outside the tasks folder its commits changed since it left main
    # (it was started from dev, say)
    foreign_paths: tuple[str, ...] = ()
    uses_dvc: bool = False
    # the change adds or edits .dlgit.yaml and that content does not parse: the parser's reason
    settings_problem: str | None = None

    @property
    def paths(self) -> list[str]:
        """Every path the change touches: both sides of a rename (the old side last)."""
        found = [entry.path for entry in self.entries]
        return found + [entry.old_path for entry in self.entries if entry.old_path and entry.status == "R"]


class Violation(NamedTuple):
    rule: str
    statement: str
    detail: str  # what exactly is wrong with this change
    items: tuple[str, ...]  # offending paths or values
    why: str
    fix: tuple[str, ...]  # commands (or one-line instructions) that resolve it


def _never(branch: Branch | None, message: str) -> bool:
    return False


class Rule(NamedTuple):
    id: str
    statement: str
    why: str
    check: Callable[[Change, Settings], Iterable[Violation]]
    stages: tuple[str, ...]  # where it is checked: git hook names, and "check" for `dlgit check`
    settings: tuple[str, ...] = ()  # the .dlgit.yaml keys that change what it accepts
    per_ref: bool = False  # history judges it once per branch or ref update, not once per commit
    # at commit-msg: does judging this message need the staged change too (it costs a diff)?
    wants_content: Callable[[Branch | None, str], bool] = _never

    def violation(self, detail: str, items: Iterable[str] = (), fix: Iterable[str] = ()) -> Violation:
        """A violation of this rule; values from the judged content are cut to a printable length."""
        return Violation(self.id, self.statement, shorten(detail, MAX_DETAIL), tuple(shorten(item, MAX_ITEM) for item in items),
                         self.why, tuple(fix))


MAX_DETAIL = 2000  # characters of a violation's detail: a pushed value must not print megabytes
MAX_ITEM = 1000  # characters of one offending item (a path is at most 4096 bytes on Linux)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit:,} more characters)"
