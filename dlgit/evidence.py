"""Facts about a change that only the rest of the repository can tell, gathered the same way for a
commit being made (the hooks) and for one in history (`dlgit check`, pre-push, pre-receive): which
branch a merge brings in, how large a hotfix is from its fork point, and whether a merge or squash
is what git computes from its parents.

A branch name proves nothing by itself. A branch *owns* the commits of its first-parent chain (each
was its tip once: its own history, not what it got by merging another branch); a name found in a
merge message or a trailer counts only when a branch of that name here (local or remote-tracking;
on a server, any branch or the value a push gives it) owns the merged commit. When no branch does
(merged branches are usually deleted), the content has to prove the claim (`claimed_source`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from dlgit import record
from dlgit.config import Settings
from dlgit.git import FileDiff, Git
from dlgit.git.parse import problem
from dlgit.git.proc import BoundedOutput
from dlgit.model import SQUASH_TRAILER, Branch, Kind, merge_sources, parse_branch, short_branch, task_folder
from dlgit.policy.change import HotfixDiff, Merge, MergeEvidence, SquashEvidence, Unexplained

# The branches whose merges are recomputed: what a merge adds beyond git's merge of its parents is judged
# as a commit there. main takes no such commit, dev none hidden in a path git merges cleanly, a task only
# inside its folder; the other kinds take any commit, so their merges are not recomputed.
RECOMPUTED = frozenset({Kind.MAIN, Kind.DEV, Kind.TASK})


class RefView:
    """Branch tips by short name: local and remote-tracking branches (the remote's name dropped),
    and the new values of the refs a push is updating; and, from one walk over every tip's
    first-parent chain (asked for the first time it is needed), which branches own each commit."""

    def __init__(self, repo: Git, tips: dict[str, set[str]], remote: str = "origin", prefixes: Sequence[str] = ()) -> None:
        self.repo = repo
        self.remote = remote  # the remote the judged commits go to (named in fix lines)
        self._tips = tips
        self._prefixes = tuple(prefixes)  # whose reflogs add the tips these branches had before
        self._past: dict[str, set[str]] = {}  # tips a branch had before the values a push gives it
        self._bits: dict[str, int] = {}  # name -> its bit
        self._owned: dict[str, int] | None = None  # commit -> the bits of the branches owning it
        self._records: tuple[list[tuple[str, str]], set[str]] | None = None  # the servers' records fetched here (dlgit.record)

    @classmethod
    def load(cls, repo: Git, prefixes: Sequence[str] = ("refs/heads/", "refs/remotes/"),
             overrides: dict[str, str] | None = None, remote: str = "origin") -> RefView:
        tips: dict[str, set[str]] = {}
        for ref, sha in repo.refs(*prefixes):
            name = short_branch(ref)
            if name and name != "HEAD":
                tips.setdefault(name, set()).add(sha)
        past: dict[str, set[str]] = {}
        for name, sha in (overrides or {}).items():
            past[name] = tips.get(name, set()) - {sha}  # what a pushed branch was: still a tip it had
            tips[name] = {sha}
        view = cls(repo, tips, remote, prefixes)
        view._past = past
        return view

    def tip(self, name: str) -> str | None:
        return next(iter(sorted(self._tips.get(name, ()))), None)

    def known(self, name: str) -> bool:
        """Is there a branch of that name here?"""
        return bool(self._tips.get(name))

    def owns(self, name: str, sha: str) -> bool:
        """Does `sha` lie on the first-parent chain of branch `name` (a tip it had)? False for a name
        no branch here has."""
        owned = self._ownership()
        bit = self._bits.get(name)
        return bit is not None and bool(owned.get(sha, 0) & bit)

    def owners(self, sha: str) -> list[str]:
        """The branches that own `sha`, by name."""
        bits = self._ownership().get(sha, 0)
        return sorted(name for name, bit in self._bits.items() if bits & bit)

    def _history(self) -> dict[str, set[str]]:
        """Every tip each branch has had: today's, and those its reflog (and its remote-tracking
        branch's) recorded. A fast-forward (dev onto main after a release) moves a branch's
        first-parent chain off its old commits; the reflog keeps that they were its own."""
        tips = {name: set(shas) | self._past.get(name, set()) for name, shas in self._tips.items()}
        recorded = self._fetched_records()[0]
        for ref, sha in [*(self.repo.past_tips(self._prefixes) if self._prefixes else ()), *recorded]:
            name = short_branch(ref)
            if name and name != "HEAD":
                tips.setdefault(name, set()).add(sha)
        return tips

    def _fetched_records(self) -> tuple[list[tuple[str, str]], set[str]]:
        """The tips main and dev had that the records of the remotes whose branches are seen here
        list (a server publishes them: dlgit.record), and the remotes whose record is here."""
        if self._records is None:
            remotes = [prefix.removeprefix("refs/remotes/").rstrip("/") for prefix in self._prefixes if prefix.startswith("refs/remotes/")]
            self._records = record.fetched(self.repo, None if "" in remotes else remotes) if remotes else ([], set())
        return self._records

    def unrecorded(self) -> str | None:
        """The remote the judged commits go to, when its branches are seen here but not the record of
        main's and dev's tips its server publishes: fetching that record may prove a merge's source."""
        if not any(prefix.startswith("refs/remotes/") for prefix in self._prefixes) or self.remote in self._fetched_records()[1]:
            return None
        return self.remote if self.repo.config_get(f"remote.{self.remote}.url") is not None else None

    def _ownership(self) -> dict[str, int]:
        """One `rev-list --first-parent` over every tip a branch has had, children first: a commit's
        owners pass to its first parent."""
        if self._owned is None:
            at: dict[str, int] = {}
            for i, (name, shas) in enumerate(sorted(self._history().items())):
                self._bits[name] = 1 << i
                for sha in shas:
                    at[sha] = at.get(sha, 0) | 1 << i
            owned: dict[str, int] = {}
            for sha, parent in self.repo.first_parents(at):
                mine = owned.get(sha, 0) | at.get(sha, 0)
                owned[sha] = mine
                if parent is not None:
                    owned[parent] = owned.get(parent, 0) | mine
            self._owned = owned
        return self._owned


def _short_names(name: str) -> list[str]:
    """The branch names a name may stand for: `refs/heads/x`, `origin/x`, `user/x` -> x too."""
    short = short_branch(name) if name.startswith("refs/") else name
    return list(dict.fromkeys(n for n in (short, name.partition("/")[2]) if n))


def merge_source(names: Iterable[str], sha: str, target: Branch | None, refs: RefView, settings: Settings,
                 preferred: frozenset[Kind] | None = None) -> Branch | None:
    """The branch a merge (or squash) brings in, by ownership of `sha`: the first of `names` (from
    its message, MERGE_MSG, the merge command, a trailer) whose branch owns it; else a branch that
    owns it: `target` itself when it does (its own commits coming back: a pull of its remote tip,
    main's release merged back into dev), else another, preferring kinds that may be merged into
    `target` (or `preferred`); None when no branch owns it."""
    for name in names:
        for short in _short_names(name):
            if (target is None or short != target.name) and refs.owns(short, sha):
                return parse_branch(short, settings)
    owners = refs.owners(sha)
    if target is not None and target.name in owners:  # the target's own commits (its tip once): judged as its own when they
        return target  # got there; dev fast-forwarded onto a feature, then main's release of it merged back, stays dev's
    found = [parse_branch(name, settings) for name in owners if target is None or name != target.name]
    if found:
        kinds = merge_sources(target) if preferred is None else preferred
        return next((b for b in found if b.kind in kinds), found[0])
    return None


def claimed_source(named: Iterable[Branch], target: Branch | None, paths: Sequence[str], settings: Settings,
                   squash: bool = False) -> Branch | None:
    """A source no branch here owns, taken from the names a merge or squash gives when its content can
    prove the claim. Into main: a task (task-scope then judges that the merge changes only its
    folder) or a hotfix (hotfix-size judges what the merge brings); a squash only a hotfix. Into dev
    (which accepts any change): a task whose merge changes only its folder. Anything else: None."""
    if target is None or target.kind not in (Kind.MAIN, Kind.DEV):
        return None
    for branch in named:
        if branch.kind is Kind.HOTFIX and target.kind is Kind.MAIN:
            return branch
        if branch.kind is Kind.TASK and not squash:
            inside = task_folder(branch.name, settings) + "/"
            if target.kind is Kind.MAIN or all(path.startswith(inside) for path in paths):
                return branch
    return None


def task_merge_reaches_out(target: Branch | None, merge: Merge | None, paths: Iterable[str], settings: Settings) -> bool:
    """Is this a task's merge into dev that changes paths outside the task's folder (then task_brings tells what the task
    brings of its own)?"""
    if target is None or target.kind is not Kind.DEV or merge is None or merge.squash or merge.octopus or not merge.sha \
            or merge.source is None or merge.source.kind is not Kind.TASK:
        return False
    inside = task_folder(merge.source.name, settings) + "/"
    return any(not path.startswith(inside) for path in paths)


def task_brings(refs: RefView, settings: Settings, task_tip: str) -> tuple[str, ...] | None:
    """What a task's merge into dev brings of its own: the paths the task changes on top of main's
    history, from the newest commit of main's first-parent chain it contains (main's commits are what
    a back-merge brings, and dev takes them). None when main is unknown here or the task contains
    none of its chain."""
    main = refs.tip(settings.main)
    fork = refs.repo.first_parent_before(main, [task_tip]) if main else None
    return None if fork is None else tuple(refs.repo.changed_between(fork, task_tip))


RELEASE_WALK = 2000  # first-parent commits of main searched back for the release before a release


def released_commit(sha: str, parents: Sequence[str], trailers: str, refs: RefView, settings: Settings) -> str | None:
    """The dev commit a commit on main took, when it is a release: a merge whose second parent dev
    owns, or a squash whose trailer names a commit dev owns."""
    if len(parents) == 2 and refs.owns(settings.dev, parents[1]):
        return parents[1]
    for value in trailers.split() if len(parents) == 1 else ():
        name, _, squashed = value.rpartition("@")
        if name == settings.dev and refs.owns(settings.dev, squashed):
            return squashed
    return None


def previous_release(refs: RefView, start: str | None, settings: Settings) -> str | None:
    """The dev commit that the newest release on main's first-parent chain from `start` took (None:
    no release in the last RELEASE_WALK commits)."""
    if start is None or not refs.known(settings.dev):
        return None
    for sha, parents, trailers in refs.repo.first_parent_trailers(start, SQUASH_TRAILER, RELEASE_WALK):
        found = released_commit(sha, parents, trailers, refs, settings)
        if found:
            return found
    return None


def stale_release(refs: RefView, before: str | None, taken: str, settings: Settings) -> str | None:
    """main takes dev only forward: the dev commit an earlier release took (from `before` back) when
    `taken`, the dev commit a release takes now, does not contain it; else None."""
    earlier = previous_release(refs, before, settings)
    return earlier if earlier is not None and not refs.repo.is_ancestor(earlier, taken) else None


def hotfix_diff(repo: Git, main: str | None, tip: str | None, limit: int) -> HotfixDiff | None:
    """(path, changed lines, changed bytes) of a hotfix from its fork point with `main` (a commit) to
    `tip` (a commit; None: the index of the commit being made); read until the bytes pass `limit`."""
    fork = repo.merge_base(main, tip or "HEAD") if main else None
    return None if fork is None else repo.diff_sizes(fork, tip, limit)


def brought(repo: Git, parent: str, commit: str | None, limit: int) -> HotfixDiff:
    """(path, changed lines, changed bytes) that a merge or squash brings onto its first parent:
    `commit` against `parent` (None: the index of the commit being made)."""
    return repo.diff_sizes(parent, commit, limit)


def unexplained(repo: Git, cases: Mapping[str, tuple[Sequence[FileDiff], str, str]]) -> dict[str, Unexplained]:
    """key -> (path, problem) of each path a recorded merge or squash holds that its parents do not
    explain, for `cases` given as key -> (its FileDiffs against git's merge, ours, theirs). The
    blobs of conflicted binaries are compared with the parents' in one `cat-file`."""
    names = [f"{side}:{diff.path}" for files, ours, theirs in cases.values() for diff in files if diff.conflicted and diff.binary
             for side in (ours, theirs)]
    blobs = repo.object_ids(names) if names else {}
    found: dict[str, Unexplained] = {}
    for key, (files, ours, theirs) in cases.items():
        problems = []
        for diff in files:
            sides = frozenset(blob for side in (ours, theirs) if (blob := blobs.get(f"{side}:{diff.path}")))
            why = problem(diff, sides)
            if why:
                problems.append((diff.path, why))
        if problems:
            found[key] = tuple(problems)
    return found


def squash_evidence(repo: Git, parent: str, sha: str | None, tree: str, owned: bool | None = None,
                    budget: BoundedOutput | None = None) -> SquashEvidence:
    """A squash recomputed: `tree` against `merge-tree <parent> <sha>`. `owned`: whether the branch its
    trailer names owns `sha` (None: no such branch here, or not asked). `budget`: the paths recomputing
    may still differ in (once it is spent, nothing more is recomputed: the caller refuses the range)."""
    if sha is None:
        return SquashEvidence(exists=False)
    if budget is not None and budget.exhausted:
        return SquashEvidence(exists=True)
    files = repo.recompute(parent, sha, tree)
    if budget is not None:
        budget.spend(len(files))
    return SquashEvidence(exists=True, on_branch=owned, differing=unexplained(repo, {"": (files, parent, sha)}).get("", ()),
                          redundant=repo.is_ancestor(sha, parent))


def merge_evidence(repo: Git, ours: str, theirs: str, tree: str) -> MergeEvidence:
    """A merge being made (the hooks): its tree against `merge-tree <ours> <theirs>`, and whether
    `theirs` is already contained in `ours`."""
    files = repo.recompute(ours, theirs, tree)
    return MergeEvidence(unexplained(repo, {"": (files, ours, theirs)}).get("", ()), redundant=repo.is_ancestor(theirs, ours))
