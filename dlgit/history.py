"""Facts about commits already in history, for `dlgit check`, pre-push and pre-receive.

One streamed `git log --raw -z` pass (ordinary commits and merges in two processes side by side)
gives every commit of a range with its diff against its first parent; a `cat-file --batch-check`
running alongside sizes the blobs they add, one `cat-file --batch` reads the task configs.

Which branch's rules judge a commit follows the graph: the tip's first-parent chain is what was put
on the target branch; the commits a merge brought in are judged by the rules of the branch that
merge came from (named in its message and verified against the refs when that branch exists here,
else found through the refs). A squash on main is recomputed with `git merge-tree`. All git work
happens here: the rules only read the facts.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dlgit import git
from dlgit.config import CONFIG_FILE, Settings
from dlgit.model import MERGE_SOURCES, SEMVER, Branch, Kind, is_task_config, parse_branch, parse_squash_trailer
from dlgit.policy import Change, Entry, Merge
from dlgit.policy.model import Committed, RefUpdate, SquashEvidence

_ZERO = re.compile(r"^(0{40}|0{64})$")
_QUOTED = re.compile(r"'([^'\s]+)'")
_PUNCTUATION = "'\"`,.:;()[]{}<>"
_RELEASE_TAG = re.compile(rf"^refs/tags/v{SEMVER}$")
HotfixDiff = tuple[tuple[str, int], ...]


def is_zero(sha: str) -> bool:
    """The all-zero id git uses for a ref that does not exist (before a creation, after a deletion)."""
    return bool(_ZERO.match(sha))


def short_branch(ref: str) -> str | None:
    """refs/heads/x and refs/remotes/<remote>/x -> x; None for other refs."""
    if ref.startswith("refs/heads/"):
        return ref[len("refs/heads/"):]
    if ref.startswith("refs/remotes/"):
        return ref[len("refs/remotes/"):].partition("/")[2] or None
    return None


class RefView:
    """Branch tips by short name as a check sees them: local and remote-tracking branches (the
    remote's name dropped), and the new values of the refs a push is updating."""

    def __init__(self, tips: dict[str, set[str]], cwd: str | None = None) -> None:
        self._tips = tips
        self.cwd = cwd
        self._ancestry: dict[tuple[str, str], bool] = {}
        self.graph: dict[str, git.LogCommit] = {}  # the judged range: reachability inside it needs no git
        self._inside: dict[str, set[str]] = {}

    def use_range(self, graph: dict[str, git.LogCommit]) -> None:
        self.graph, self._inside = graph, {}

    @classmethod
    def load(cls, prefixes: Sequence[str] = ("refs/heads/", "refs/remotes/"), overrides: dict[str, str] | None = None,
             cwd: str | None = None) -> RefView:
        tips: dict[str, set[str]] = {}
        for ref, sha in git.refs(*prefixes, cwd=cwd):
            name = short_branch(ref)
            if name and name != "HEAD":
                tips.setdefault(name, set()).add(sha)
        for name, sha in (overrides or {}).items():
            tips[name] = {sha}
        return cls(tips, cwd)

    def tip(self, name: str) -> str | None:
        return next(iter(sorted(self._tips.get(name, ()))), None)

    def at(self, sha: str) -> list[str]:
        return sorted(name for name, tips in self._tips.items() if sha in tips)

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
            self._ancestry[tip, sha] = git.is_ancestor(sha, tip, self.cwd)
        return self._ancestry[tip, sha]

    def _ancestors(self, tip: str) -> set[str]:
        """Commits of the range reachable from `tip` (itself included)."""
        if tip not in self._inside:
            seen, todo = {tip}, [tip]
            while todo:
                for parent in self.graph[todo.pop()].parents:
                    if parent in self.graph and parent not in seen:
                        seen.add(parent)
                        todo.append(parent)
            self._inside[tip] = seen
        return self._inside[tip]


def existing_commits(prefixes: Sequence[str], except_branch: str | None, cwd: str | None = None) -> list[str]:
    """Tips of every ref under `prefixes` but the branch being created: what a new ref's range
    excludes (`<new> --not <these>`: the commits that are not anywhere yet)."""
    shas = {sha for ref, sha in git.refs(*prefixes, cwd=cwd) if except_branch is None or short_branch(ref) != except_branch}
    return sorted(shas)


# --- which branch a merge came from ---------------------------------------------------------------


_parse_branch = functools.lru_cache(maxsize=4096)(parse_branch)  # merge messages repeat names


def named_branches(message: str, settings: Settings) -> list[Branch]:
    """Branches a merge message names: quoted names first (git's `Merge branch 'x'`), then words of
    the subject that read as a branch of the model (`task: merge task-0.1.0-...`, `user/feature-x`)."""
    subject = message.strip().partition("\n")[0]
    quoted = _QUOTED.findall(subject)
    found: list[Branch] = []
    for name in [*quoted, *(word.strip(_PUNCTUATION) for word in subject.split())]:
        for candidate in dict.fromkeys((name, name.partition("/")[2] or name)):
            branch = _parse_branch(candidate, settings)
            if branch.valid and (name in quoted or branch.kind is not Kind.EXTRA):
                found.append(branch)
                break
    return found


def merge_source(commit: git.LogCommit, target: Branch | None, refs: RefView, settings: Settings) -> Branch | None:
    """The branch a merge commit brought in: the first branch its message names that holds the merged
    commit (or is not here to ask), else a branch the refs show holding it; None when nothing does."""
    side = commit.parents[1]
    for branch in named_branches(commit.message, settings):
        if (target is None or branch.name != target.name) and refs.holds(branch.name, side) is not False:
            return branch
    names = refs.at(side) or git.branches_containing(side, refs.cwd)
    candidates = [parse_branch(name, settings) for name in names if target is None or name != target.name]
    preferred = MERGE_SOURCES.get(target.kind, frozenset()) if target else frozenset()
    return next((b for b in candidates if b.kind in preferred), candidates[0] if candidates else None)


# --- the judged range ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    """A commit of the range and the facts the rules judge it by."""

    commit: git.LogCommit
    change: Change  # change.branch: the branch whose rules apply
    via: str | None  # the merge that brought it in; None: on the target's first-parent chain

    @property
    def subject(self) -> str:
        return self.commit.message.strip().partition("\n")[0]


@dataclass
class _Place:
    branch: Branch | None
    via: str | None
    source: Branch | None = None  # merges: the branch they brought in
    chain_start: bool = False  # the newest commit of a branch's run (a hotfix's tip)


def _place(tip: str, target: Branch | None, graph: dict[str, git.LogCommit], refs: RefView, settings: Settings) -> dict[str, _Place]:
    """Walk first-parent chains from the tip: the tip's chain belongs to the target; each merge's
    other parents start a chain of the branch it came from (older merges claim shared commits first)."""
    places: dict[str, _Place] = {}
    queue: deque[tuple[str, Branch | None, str | None]] = deque([(tip, target, None)])
    while queue:
        sha, branch, via = queue.popleft()
        chain: list[git.LogCommit] = []
        while sha in graph and sha not in places:
            places[sha] = _Place(branch, via, chain_start=not chain)
            chain.append(graph[sha])
            sha = graph[sha].parents[0] if graph[sha].parents else ""
        for commit in reversed(chain):
            if len(commit.parents) > 1:
                source = places[commit.sha].source = merge_source(commit, branch, refs, settings)
                queue.extend((parent, source, commit.sha) for parent in commit.parents[1:])
    return places


@dataclass(frozen=True)
class _Blobs:
    entries: dict[str, tuple[Entry, ...]]  # commit -> its entries, sized
    contents: dict[str, bytes]  # task configs after, template config before
    configs: dict[str, list[git.RawEntry]]  # commit -> the task configs it adds or edits


def _read_range(revs: Sequence[str], settings: Settings, cwd: str | None) -> tuple[list[git.LogCommit], _Blobs]:
    """The range's commits (oldest first) from the streamed `git log`, the sizes of the blobs they add from a
    `cat-file` running alongside it, then the task configs they touch in one `cat-file --batch`."""
    sizes = git.ObjectSizes(cwd)
    commits: list[git.LogCommit] = []
    configs: dict[str, list[git.RawEntry]] = {}
    entries: dict[str, tuple[Entry, ...]] = {}
    waiting: deque[tuple[git.LogCommit, int]] = deque()  # commits whose blob sizes are on their way
    for commit in git.iter_log(revs, cwd):
        commits.append(commit)
        waiting.append((commit, sizes.add([blob for _, _, _, blob, _ in commit.entries if blob])))
        touched = [e for e in commit.entries if e.new_blob and e.path.endswith("/config.yaml") and is_task_config(e.path, settings)]
        if touched:
            configs[commit.sha] = touched
        while waiting and waiting[0][1] <= sizes.answered:  # size what we can while git still works
            done = waiting.popleft()[0]
            entries[done.sha] = _sized(done, sizes.sizes)
    known = sizes.result()
    entries.update((commit.sha, _sized(commit, known)) for commit, _ in waiting)
    wanted = [e.new_blob for touched in configs.values() for e in touched if e.new_blob]
    wanted += [e.old_blob for touched in configs.values() for e in touched if e.old_blob and e.path == settings.template_config]
    commits.sort(key=lambda commit: commit.time)  # oldest first, for people reading the report
    return commits, _Blobs(entries, git.read_blobs(wanted, cwd), configs)


_new_tuple = tuple.__new__  # an Entry without the NamedTuple's Python-level __new__ (100,000s per history)


def _sized(commit: git.LogCommit, sizes: dict[str, int]) -> tuple[Entry, ...]:
    size = sizes.get
    return tuple([_new_tuple(Entry, (status, path, old_path, size(blob) if blob else None))
                  for status, path, old_path, blob, _ in commit.entries])


def _squashes(commits: Iterable[git.LogCommit], places: dict[str, _Place]) -> dict[str, tuple[str, str]]:
    """sha -> (branch, sha) of each single-parent commit on main that carries a Squashed-from trailer."""
    found = {}
    for commit in commits:
        branch = places[commit.sha].branch
        if branch is not None and branch.kind is Kind.MAIN and len(commit.parents) == 1:
            trailer = parse_squash_trailer(commit.message)
            if trailer:
                found[commit.sha] = trailer
    return found


def _evidence(commit: git.LogCommit, branch: str, sha: str | None, refs: RefView) -> SquashEvidence:
    """Recompute a squash: its tree must be `merge-tree <parent> <sha>`'s, up to conflicted paths."""
    if sha is None:
        return SquashEvidence(exists=False)
    differing = git.unmerged_differences(commit.parents[0], sha, commit.tree, refs.cwd)
    return SquashEvidence(exists=True, on_branch=refs.holds(branch, sha), differing=differing)


def _all_evidence(squashes: dict[str, tuple[str, str]], resolved: dict[str, str], graph: dict[str, git.LogCommit],
                  refs: RefView) -> dict[str, SquashEvidence]:
    """Recompute every squash; each is a few git processes, so they run side by side."""

    def one(sha: str) -> SquashEvidence:
        branch, named = squashes[sha]
        return _evidence(graph[sha], branch, resolved.get(named), refs)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(squashes, pool.map(one, squashes), strict=True))


def _hotfix_diff(sha: str, place: _Place, graph: dict[str, git.LogCommit], refs: RefView, settings: Settings) -> HotfixDiff | None:
    """A hotfix tip's diff from its fork point with main (main as it was before the merge, if merged)."""
    main = graph[place.via].parents[0] if place.via else refs.tip(settings.main)
    fork = git.merge_base(main, sha, refs.cwd) if main else None
    if fork is None:
        return None
    return tuple((path, added + deleted) for path, (added, deleted) in git.diff_numstat(fork, sha, refs.cwd).items())


@dataclass
class _Range:
    """Everything gathered about a range, shared by the per-commit facts."""

    graph: dict[str, git.LogCommit]
    places: dict[str, _Place]
    blobs: _Blobs
    squashes: dict[str, tuple[str, str]]
    resolved: dict[str, str]  # trailer sha -> full commit sha (missing: no such commit)
    evidence: dict[str, SquashEvidence]  # squash commit -> what recomputing it showed
    refs: RefView
    settings: Settings
    has_base: bool
    tip: str  # the judged range's newest commit


def gather(tip: str, bases: Sequence[str], target: Branch | None, settings: Settings, refs: RefView, has_base: bool) -> list[Judged]:
    """Facts for every commit reachable from `tip` and not from `bases`, oldest first. `has_base`:
    the range continues an existing history (a parentless commit is then no new repository's root)."""
    commits, blobs = _read_range([tip, *(f"^{base}" for base in bases)], settings, refs.cwd)
    graph = {commit.sha: commit for commit in commits}
    refs.use_range(graph)
    places = _place(tip, target, graph, refs, settings)
    squashes = _squashes(commits, places)
    resolved = git.resolve_commits((sha for _, sha in squashes.values()), refs.cwd)
    evidence = _all_evidence(squashes, resolved, graph, refs)
    context = _Range(graph, places, blobs, squashes, resolved, evidence, refs, settings, has_base, tip)
    return [Judged(commit, _change(commit, context), places[commit.sha].via) for commit in commits]


def _change(commit: git.LogCommit, context: _Range) -> Change:
    place, settings, blobs = context.places[commit.sha], context.settings, context.blobs
    merge, evidence = None, None
    if commit.sha in context.squashes:
        name, sha = context.squashes[commit.sha]
        merge = Merge(parse_branch(name, settings), context.resolved.get(sha, sha), squash=True)
        evidence = context.evidence[commit.sha]
    elif len(commit.parents) > 1:
        merge = Merge(place.source, commit.parents[1], octopus=len(commit.parents) > 2)
    changed_configs = blobs.configs.get(commit.sha, [])
    hotfix = place.branch is not None and place.branch.kind is Kind.HOTFIX and place.chain_start
    return Change(
        branch=place.branch,
        entries=blobs.entries[commit.sha],
        merge=merge,
        is_root=not commit.parents and not context.has_base,
        message=commit.message.strip(),
        configs=tuple((e.path, blobs.contents.get(e.new_blob, b"")) for e in changed_configs if e.new_blob),
        template_config_before=next((blobs.contents.get(e.old_blob) for e in changed_configs
                                     if e.path == settings.template_config and e.old_blob), None),
        hotfix_diff=_hotfix_diff(commit.sha, place, context.graph, context.refs, settings) if hotfix else None,
        squash_evidence=evidence,
        commit=Committed(commit.sha, tip=commit.sha == context.tip, merged_by=place.via),
    )


def touches_settings(commit: git.LogCommit) -> bool:
    return any(CONFIG_FILE in (entry.path, entry.old_path) for entry in commit.entries)


# --- refs: tags and pushed updates ---------------------------------------------------------------


def _version(raw: bytes | None) -> str | None:
    """VERSION in a template config's text (None: no file, no such key, not YAML)."""
    if raw is None:
        return None
    import yaml

    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return None
    version = data.get("VERSION") if isinstance(data, dict) else None
    return version if isinstance(version, str) else None


def tag_updates(tags: Sequence[tuple[str, str]], refs: RefView, settings: Settings) -> list[RefUpdate]:
    """The facts about release tags, given as (ref, commit sha): is the commit on main, and which
    VERSION does it hold (all read in one `cat-file --batch`)."""
    texts = git.read_objects([f"{sha}:{settings.template_config}" for _, sha in tags], refs.cwd)
    return [RefUpdate(ref, on_main=refs.holds(settings.main, sha), version=_version(texts.get(f"{sha}:{settings.template_config}")))
            for ref, sha in tags]


def release_tags(commits: Iterable[str], refs: RefView, settings: Settings) -> list[RefUpdate]:
    """The release tags (vX.Y.Z) that point at one of `commits`."""
    inside = set(commits)
    return tag_updates([(ref, sha) for ref, sha in git.refs("refs/tags/", cwd=refs.cwd) if sha in inside and _RELEASE_TAG.match(ref)],
                       refs, settings)


def is_release_tag(ref: str) -> bool:
    return bool(_RELEASE_TAG.match(ref))

