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

from dlgit.config import CONFIG_FILE, Settings
from dlgit.evidence import HotfixDiff, RefView, hotfix_diff, merge_source, squash_evidence
from dlgit.git import Git, LogCommit, RawEntry
from dlgit.model import Branch, Kind, is_task_config, parse_branch, parse_squash_trailer, read_version, short_branch, tag_version
from dlgit.policy import Change, Entry, Merge
from dlgit.policy.change import Committed, RefUpdate, SquashEvidence

_QUOTED = re.compile(r"'([^'\s]+)'")
_PUNCTUATION = "'\"`,.:;()[]{}<>"


def existing_commits(repo: Git, prefixes: Sequence[str], except_branch: str | None) -> list[str]:
    """Tips of every ref under `prefixes` but the branch being created: what a new ref's range
    excludes (`<new> --not <these>`: the commits that are not anywhere yet)."""
    shas = {sha for ref, sha in repo.refs(*prefixes) if except_branch is None or short_branch(ref) != except_branch}
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


def _merge_source(commit: LogCommit, target: Branch | None, refs: RefView, settings: Settings) -> Branch | None:
    """The branch a merge commit brought in, by the names its message gives and the refs (a name
    no branch here has is taken at its word: a merged branch is often deleted)."""
    names = [branch.name for branch in named_branches(commit.message, settings)]
    return merge_source(names, commit.parents[1], target, refs, settings, absent_names=True)


# --- the judged range ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    """A commit of the range and the facts the rules judge it by."""

    commit: LogCommit
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


def _place(tip: str, target: Branch | None, graph: dict[str, LogCommit], refs: RefView, settings: Settings) -> dict[str, _Place]:
    """Walk first-parent chains from the tip: the tip's chain belongs to the target; each merge's
    other parents start a chain of the branch it came from (older merges claim shared commits first)."""
    places: dict[str, _Place] = {}
    queue: deque[tuple[str, Branch | None, str | None]] = deque([(tip, target, None)])
    while queue:
        sha, branch, via = queue.popleft()
        chain: list[LogCommit] = []
        while sha in graph and sha not in places:
            places[sha] = _Place(branch, via, chain_start=not chain)
            chain.append(graph[sha])
            sha = graph[sha].parents[0] if graph[sha].parents else ""
        for commit in reversed(chain):
            if len(commit.parents) > 1:
                source = places[commit.sha].source = _merge_source(commit, branch, refs, settings)
                queue.extend((parent, source, commit.sha) for parent in commit.parents[1:])
    return places


@dataclass(frozen=True)
class _Blobs:
    entries: dict[str, tuple[Entry, ...]]  # commit -> its entries, sized
    contents: dict[str, bytes]  # task configs after, template config before
    configs: dict[str, list[RawEntry]]  # commit -> the task configs it adds or edits


def _read_range(repo: Git, revs: Sequence[str], settings: Settings) -> tuple[list[LogCommit], _Blobs]:
    """The range's commits (oldest first) from the streamed `git log`, the sizes of the blobs they add from a
    `cat-file` running alongside it, then the task configs they touch in one `cat-file --batch`."""
    sizes = repo.sizes_alongside()
    commits: list[LogCommit] = []
    configs: dict[str, list[RawEntry]] = {}
    entries: dict[str, tuple[Entry, ...]] = {}
    waiting: deque[tuple[LogCommit, int]] = deque()  # commits whose blob sizes are on their way
    for commit in repo.iter_log(revs):
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
    return commits, _Blobs(entries, repo.read_blobs(wanted), configs)


_new_tuple = tuple.__new__  # an Entry without the NamedTuple's Python-level __new__ (100,000s per history)


def _sized(commit: LogCommit, sizes: dict[str, int]) -> tuple[Entry, ...]:
    size = sizes.get
    return tuple([_new_tuple(Entry, (status, path, old_path, size(blob) if blob else None))
                  for status, path, old_path, blob, _ in commit.entries])


def _squashes(commits: Iterable[LogCommit], places: dict[str, _Place]) -> dict[str, tuple[str, str]]:
    """sha -> (branch, sha) of each single-parent commit on main that carries a Squashed-from trailer."""
    found = {}
    for commit in commits:
        branch = places[commit.sha].branch
        if branch is not None and branch.kind is Kind.MAIN and len(commit.parents) == 1:
            trailer = parse_squash_trailer(commit.message)
            if trailer:
                found[commit.sha] = trailer
    return found


def _all_evidence(squashes: dict[str, tuple[str, str]], resolved: dict[str, str], graph: dict[str, LogCommit],
                  refs: RefView) -> dict[str, SquashEvidence]:
    """Recompute every squash; each is a few git processes, so they run side by side."""

    def one(sha: str) -> SquashEvidence:
        branch, named = squashes[sha]
        found = resolved.get(named)
        holds = refs.holds(branch, found) if found else None
        return squash_evidence(refs.repo, graph[sha].parents[0], found, graph[sha].tree, holds)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(squashes, pool.map(one, squashes), strict=True))


def _hotfix_diff(sha: str, place: _Place, graph: dict[str, LogCommit], refs: RefView, settings: Settings) -> HotfixDiff | None:
    """A hotfix tip's diff from its fork point with main (main as it was before the merge, if merged)."""
    return hotfix_diff(refs.repo, graph[place.via].parents[0] if place.via else refs.tip(settings.main), sha)


@dataclass
class _Range:
    """Everything gathered about a range, shared by the per-commit facts."""

    graph: dict[str, LogCommit]
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
    commits, blobs = _read_range(refs.repo, [tip, *(f"^{base}" for base in bases)], settings)
    graph = {commit.sha: commit for commit in commits}
    refs.use_range({commit.sha: commit.parents for commit in commits})
    places = _place(tip, target, graph, refs, settings)
    squashes = _squashes(commits, places)
    resolved = refs.repo.resolve_commits(sha for _, sha in squashes.values())
    evidence = _all_evidence(squashes, resolved, graph, refs)
    context = _Range(graph, places, blobs, squashes, resolved, evidence, refs, settings, has_base, tip)
    return [Judged(commit, _change(commit, context), places[commit.sha].via) for commit in commits]


def _change(commit: LogCommit, context: _Range) -> Change:
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
        commit=Committed(commit.sha, tip=commit.sha == context.tip, merged_by=place.via, remote=context.refs.remote,
                         on_dev=_direct_on_main(commit, place) and bool(context.refs.holds(settings.dev, commit.sha))),
    )


def _direct_on_main(commit: LogCommit, place: _Place) -> bool:
    """An ordinary commit put on main itself: the one main-protected may have to repair."""
    return place.branch is not None and place.branch.kind is Kind.MAIN and len(commit.parents) == 1


def touches_settings(commit: LogCommit) -> bool:
    return any(CONFIG_FILE in (entry.path, entry.old_path) for entry in commit.entries)


# --- refs: tags and pushed updates ---------------------------------------------------------------


def tag_updates(tags: Sequence[tuple[str, str]], refs: RefView, settings: Settings) -> list[RefUpdate]:
    """The facts about release tags, given as (ref, commit sha): is the commit on main, and which
    VERSION does it hold (all read in one `cat-file --batch`)."""
    texts = refs.repo.read_objects([f"{sha}:{settings.template_config}" for _, sha in tags])
    return [RefUpdate(ref, on_main=refs.holds(settings.main, sha), version=read_version(texts.get(f"{sha}:{settings.template_config}")),
                      remote=refs.remote)
            for ref, sha in tags]


def release_tags(commits: Iterable[str], refs: RefView, settings: Settings) -> list[RefUpdate]:
    """The release tags (vX.Y.Z) that point at one of `commits`."""
    inside = set(commits)
    return tag_updates([(ref, sha) for ref, sha in refs.repo.refs("refs/tags/") if sha in inside and tag_version(ref)], refs, settings)

