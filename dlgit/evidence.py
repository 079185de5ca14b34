"""Facts about a change that only the rest of the repository can tell, gathered the same way for a
commit being made (the hooks) and for one in history (`dlgit check`, pre-push, pre-receive): which
branch a merge brings in, how large a hotfix is from its fork point, and whether a squash is what
merging its source gives.

A branch name proves nothing by itself: a name found in a merge message or a trailer counts only
when a branch of that name here (local or remote-tracking) holds the commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dlgit.config import Settings
from dlgit.git import Git
from dlgit.model import Branch, Kind, merge_sources, parse_branch, short_branch
from dlgit.policy.change import SquashEvidence

HotfixDiff = tuple[tuple[str, int], ...]


class RefView:
    """Branch tips by short name: local and remote-tracking branches (the remote's name dropped),
    and the new values of the refs a push is updating. Reachability inside a judged range is
    answered from its graph, without git."""

    def __init__(self, repo: Git, tips: dict[str, set[str]], remote: str = "origin") -> None:
        self.repo = repo
        self.remote = remote  # the remote the judged commits go to (named in fix lines)
        self._tips = tips
        self._ancestry: dict[tuple[str, str], bool] = {}
        self._containing: dict[str, list[str]] = {}
        self.graph: dict[str, tuple[str, ...]] = {}  # commit -> parents, for the judged range
        self._inside: dict[str, set[str]] = {}

    @classmethod
    def load(cls, repo: Git, prefixes: Sequence[str] = ("refs/heads/", "refs/remotes/"),
             overrides: dict[str, str] | None = None, remote: str = "origin") -> RefView:
        tips: dict[str, set[str]] = {}
        for ref, sha in repo.refs(*prefixes):
            name = short_branch(ref)
            if name and name != "HEAD":
                tips.setdefault(name, set()).add(sha)
        for name, sha in (overrides or {}).items():
            tips[name] = {sha}
        return cls(repo, tips, remote)

    def use_range(self, graph: dict[str, tuple[str, ...]]) -> None:
        self.graph, self._inside = graph, {}

    def tip(self, name: str) -> str | None:
        return next(iter(sorted(self._tips.get(name, ()))), None)

    def at(self, sha: str) -> list[str]:
        return sorted(name for name, tips in self._tips.items() if sha in tips)

    def containing(self, sha: str) -> list[str]:
        """Local branches that contain `sha` (one `for-each-ref --contains`, asked once per commit)."""
        if sha not in self._containing:
            self._containing[sha] = self.repo.branches_containing(sha)
        return self._containing[sha]

    def holds(self, name: str, sha: str) -> bool | None:
        """Is `sha` reachable from branch `name`? None when no such branch is known here."""
        tips = self._tips.get(name)
        if not tips:
            return None
        return any(self._contains(tip, sha) for tip in sorted(tips))

    def _contains(self, tip: str, sha: str) -> bool:
        if tip == sha:
            return True
        if tip in self.graph and sha in self.graph:  # every path between two range commits stays in the range
            return sha in self._ancestors(tip)
        if (tip, sha) not in self._ancestry:
            self._ancestry[tip, sha] = self.repo.is_ancestor(sha, tip)
        return self._ancestry[tip, sha]

    def _ancestors(self, tip: str) -> set[str]:
        """Commits of the range reachable from `tip` (itself included)."""
        if tip not in self._inside:
            seen, todo = {tip}, [tip]
            while todo:
                for parent in self.graph[todo.pop()]:
                    if parent in self.graph and parent not in seen:
                        seen.add(parent)
                        todo.append(parent)
            self._inside[tip] = seen
        return self._inside[tip]


def _short_names(name: str) -> list[str]:
    """The branch names a name may stand for: `refs/heads/x`, `origin/x`, `user/x` -> x too."""
    short = short_branch(name) if name.startswith("refs/") else name
    return list(dict.fromkeys(n for n in (short, name.partition("/")[2]) if n))


def merge_source(names: Iterable[str], sha: str, target: Branch | None, refs: RefView, settings: Settings,
                 preferred: frozenset[Kind] | None = None, absent_names: bool = False) -> Branch | None:
    """The branch a merge brings in: the first of `names` (from its message, MERGE_MSG, the merge
    command) whose branch here holds `sha` (with `absent_names`, also one no branch here has);
    else a branch whose tip is `sha`, else one containing it, preferring kinds that may be merged
    into `target` (or `preferred`); None when no branch holds it."""
    for name in names:
        for short in _short_names(name):
            held = refs.holds(short, sha)
            if (target is None or short != target.name) and (held or (absent_names and held is None)):
                return parse_branch(short, settings)
    for candidates in (refs.at(sha), refs.containing(sha)):
        found = [parse_branch(name, settings) for name in candidates if target is None or name != target.name]
        if found:
            kinds = merge_sources(target) if preferred is None else preferred
            return next((b for b in found if b.kind in kinds), found[0])
    return None


def hotfix_diff(repo: Git, main: str | None, tip: str | None) -> HotfixDiff | None:
    """(path, changed lines) of a hotfix from its fork point with `main` (a commit) to `tip` (a
    commit; None: the index of the commit being made)."""
    fork = repo.merge_base(main, tip or "HEAD") if main else None
    if fork is None:
        return None
    counts = repo.numstat(fork) if tip is None else repo.diff_numstat(fork, tip)
    return tuple((path, added + deleted) for path, (added, deleted) in counts.items())


def squash_evidence(repo: Git, parent: str, sha: str | None, tree: str, holds: bool | None = None) -> SquashEvidence:
    """A squash recomputed: its tree must be `merge-tree <parent> <sha>`'s, up to conflicted paths.
    `holds`: whether the branch its trailer names holds `sha` (None: no such branch, or not asked)."""
    if sha is None:
        return SquashEvidence(exists=False)
    return SquashEvidence(exists=True, on_branch=holds, differing=repo.unmerged_differences(parent, sha, tree))
