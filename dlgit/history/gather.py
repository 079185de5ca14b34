"""Facts about commits already in history, for `dlgit check`, pre-push and pre-receive.

One streamed `git log --raw -z` pass (ordinary commits and merges in two processes side by side)
gives every commit of a range with its diff against its first parent; a `cat-file --batch-check`
running alongside sizes the blobs they add, one `cat-file --batch` reads the task configs.

Which branch's rules judge a commit follows the graph: the tip's first-parent chain is what was put
on the target branch; the commits a merge brought in are judged by the rules of the branch that
merge came from: the branch that owns its side (dlgit.evidence: a name in the message counts only
when that branch owns the commit), else the name the message gives when the content can prove it
(a task, a hotfix into main), else no branch. Every merge placed on main or dev is recomputed by
one `git log --remerge-diff` alongside the rest; a squash on main with `git merge-tree`. All git
work happens here: the rules only read the facts.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dlgit import config
from dlgit.config import CONFIG_FILE, Settings
from dlgit.errors import UsageError
from dlgit.evidence import (
    RECOMPUTED,
    HotfixDiff,
    RefView,
    brought,
    claimed_source,
    hotfix_diff,
    merge_source,
    previous_release,
    squash_evidence,
    task_brings,
    task_merge_reaches_out,
    unexplained,
)
from dlgit.git import Git, LogCommit, RawEntry
from dlgit.git.parse import parse_patches
from dlgit.git.proc import BoundedOutput, TooMuchWork
from dlgit.model import (
    SQUASH_SOURCES_INTO_MAIN,
    Branch,
    Kind,
    is_task_config,
    parse_branch,
    parse_squash_trailer,
    read_version,
    short_branch,
    tag_version,
    task_folder,
)
from dlgit.policy import Change, Entry, Merge
from dlgit.policy.change import Committed, MergeEvidence, RefUpdate, SquashEvidence, Unexplained

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


def _changed_paths(commit: LogCommit) -> list[str]:
    """Every path a commit changes against its first parent (both sides of a rename)."""
    return [path for entry in commit.entries for path in (entry.path, entry.old_path) if path]


def _merge_source(commit: LogCommit, target: Branch | None, refs: RefView, settings: Settings) -> tuple[Branch | None, bool]:
    """The branch a merge commit brought in and whether only its content vouches for it: the branch
    owning its side (the message's names first), else a claim of the message its content can prove."""
    named = named_branches(commit.message, settings)
    source = merge_source([branch.name for branch in named], commit.parents[1], target, refs, settings)
    if source is not None:
        return source, False
    claimed = claimed_source(named, target, _changed_paths(commit), settings)
    return claimed, claimed is not None


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
    by_content: bool = False  # merges: no branch owns the source; it is the message's claim
    chain_start: bool = False  # the newest commit of a branch's run (a hotfix's tip)
    head: str = ""  # the judged tip whose walk placed it


def _place(heads: Sequence[tuple[str, Branch | None]], graph: dict[str, LogCommit], refs: RefView,
           settings: Settings) -> tuple[dict[str, _Place], set[str]]:
    """Walk first-parent chains from each tip (in order): the tip's chain belongs to its target; each
    merge's other parents start a chain of the branch it came from (older merges claim shared commits
    first). Also: the tips whose walk met a commit an earlier tip had placed."""
    places: dict[str, _Place] = {}
    met: set[str] = set()
    main = parse_branch(settings.main, settings)
    for tip, target in heads:
        queue: deque[tuple[str, Branch | None, str | None]] = deque([(tip, target, None)])
        while queue:
            sha, branch, via = queue.popleft()
            chain: list[LogCommit] = []
            while sha in graph and sha not in places:
                if via is not None and branch is not None and branch.kind is Kind.TASK and refs.owns(main.name, sha):
                    branch = main  # a task started from main holds main's history: a merge of it brings those as a back-merge would
                places[sha] = _Place(branch, via, chain_start=not chain, head=tip)
                chain.append(graph[sha])
                sha = graph[sha].parents[0] if graph[sha].parents else ""
            if sha in places and places[sha].head != tip:
                met.add(tip)
            for commit in reversed(chain):
                if len(commit.parents) > 1:
                    place = places[commit.sha]
                    place.source, place.by_content = _merge_source(commit, place.branch, refs, settings)
                    queue.extend((parent, place.source, commit.sha) for parent in commit.parents[1:])
    return places, met


@dataclass(frozen=True)
class _Blobs:
    entries: dict[str, tuple[Entry, ...]]  # commit -> its entries, sized
    contents: dict[str, bytes]  # task configs after, template config before
    configs: dict[str, list[RawEntry]]  # commit -> the task configs it adds or edits
    mode_changed: set[str]  # commits that edit only the template config and change its mode (no VERSION bump then)
    settings: dict[str, str]  # commit -> the .dlgit.yaml blob it adds or edits


def _read_range(repo: Git, revs: Sequence[str], settings: Settings) -> tuple[list[LogCommit], _Blobs]:
    """The range's commits (oldest first) from the streamed `git log`, the sizes of the blobs they add from a
    `cat-file` running alongside it, then the task configs they touch in one `cat-file --batch`."""
    sizes = repo.sizes_alongside()
    commits: list[LogCommit] = []
    configs: dict[str, list[RawEntry]] = {}
    policies: dict[str, str] = {}
    entries: dict[str, tuple[Entry, ...]] = {}
    waiting: deque[tuple[LogCommit, int]] = deque()  # commits whose blob sizes are on their way
    for commit in repo.iter_log(revs):
        commits.append(commit)
        waiting.append((commit, sizes.add([blob for _, _, _, blob, _ in commit.entries if blob])))
        touched = [e for e in commit.entries if e.new_blob and e.path.endswith("/config.yaml") and is_task_config(e.path, settings)]
        policy = next((e.new_blob for e in commit.entries if e.path == CONFIG_FILE and e.new_blob), None)
        if policy:
            policies[commit.sha] = policy
        if touched:
            configs[commit.sha] = touched
        while waiting and waiting[0][1] <= sizes.answered:  # size what we can while git still works
            done = waiting.popleft()[0]
            entries[done.sha] = _sized(done, sizes.sizes)
    known = sizes.result()
    entries.update((commit.sha, _sized(commit, known)) for commit, _ in waiting)
    for sha, touched in list(configs.items()):  # a config large-file refuses is not parsed as well
        configs[sha] = [e for e in touched if known.get(e.new_blob or "", 0) <= settings.large_file_max_bytes]
    wanted = [e.new_blob for touched in configs.values() for e in touched if e.new_blob]
    wanted += [e.old_blob for touched in configs.values() for e in touched if e.old_blob and e.path == settings.template_config]
    wanted += [f"{sha}:{settings.template_config}" for sha in configs]  # the core each task config is committed on
    policies = {sha: blob for sha, blob in policies.items() if known.get(blob, 0) <= settings.large_file_max_bytes}  # else large-file's
    wanted += policies.values()
    bumps = [commit.sha for commit in commits if len(commit.entries) == 1 and commit.entries[0].path == settings.template_config
             and commit.entries[0].status == "M"]  # the commits that may be VERSION bumps
    commits.sort(key=lambda commit: commit.time)  # oldest first, for people reading the report
    return commits, _Blobs(entries, repo.read_objects(sorted(set(wanted))), configs, repo.mode_changes(bumps, settings.template_config),
                            policies)


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


@dataclass(frozen=True)
class _Squash:
    sha: str  # the squashed commit (as the trailer gives it when it names no commit here)
    source: Branch | None
    by_content: bool
    evidence: SquashEvidence


def _squash(commit: LogCommit, trailer: tuple[str, str], resolved: dict[str, str], refs: RefView, settings: Settings,
            budget: BoundedOutput) -> _Squash:
    """A squash onto main: its source (the branch owning the squashed commit, else a hotfix the trailer
    names, proven by what the squash brings) and the squash recomputed from its parent and that commit."""
    named, given = trailer
    claimed, found = parse_branch(named, settings), resolved.get(given)
    if found is None:
        return _Squash(given, claimed, False, SquashEvidence(exists=False))
    owned = refs.owns(named, found) if refs.known(named) else None
    evidence = squash_evidence(refs.repo, commit.parents[0], found, commit.tree, owned, budget)
    main = parse_branch(settings.main, settings)
    source = merge_source([named], found, main, refs, settings, SQUASH_SOURCES_INTO_MAIN)
    if source is not None:
        return _Squash(found, source, False, evidence)
    source = claimed_source([claimed], main, _changed_paths(commit), settings, squash=True)
    return _Squash(found, source, source is not None, evidence)


def _hotfix_diff(sha: str, place: _Place, graph: dict[str, LogCommit], refs: RefView, settings: Settings) -> HotfixDiff | None:
    """A hotfix tip's diff from its fork point with main (main as it was before the merge, if merged)."""
    return hotfix_diff(refs.repo, graph[place.via].parents[0] if place.via else refs.tip(settings.main), sha,
                       settings.hotfix_max_bytes)


def _stale_releases(tip: str, graph: dict[str, LogCommit], places: dict[str, _Place], squashes: dict[str, _Squash],
                    refs: RefView, settings: Settings) -> dict[str, str]:
    """release on main -> the dev commit an earlier release took that it does not contain: main takes
    dev only forward. Along main's first-parent chain in the range, oldest first; the release before
    the range is found once, by one walk from where the chain leaves it."""
    chain: list[str] = []
    sha: str | None = tip
    while sha in graph and places[sha].branch is not None and places[sha].branch.kind is Kind.MAIN and places[sha].via is None:
        chain.append(sha)
        sha = graph[sha].parents[0] if graph[sha].parents else None
    releases = [(sha, taken) for sha in reversed(chain) if (taken := _taken_from_dev(graph[sha], places[sha], squashes))]
    if not releases:
        return {}
    oldest = graph[chain[-1]]
    earlier = previous_release(refs, oldest.parents[0], settings) if oldest.parents else None
    stale: dict[str, str] = {}
    for sha, taken in releases:
        if earlier is not None and earlier != taken and not refs.repo.is_ancestor(earlier, taken):
            stale[sha] = earlier
        else:
            earlier = taken
    return stale


def _taken_from_dev(commit: LogCommit, place: _Place, squashes: dict[str, _Squash]) -> str | None:
    """The dev commit a commit on main takes: a merge or squash whose source is dev."""
    if commit.sha in squashes:
        squash = squashes[commit.sha]
        return squash.sha if squash.source is not None and squash.source.kind is Kind.DEV and squash.evidence.exists else None
    return commit.parents[1] if len(commit.parents) == 2 and place.source is not None and place.source.kind is Kind.DEV else None


def _recomputed_merges(commits: Iterable[LogCommit], places: dict[str, _Place]) -> list[LogCommit]:
    """The merges placed on main, dev or a task (octopus merges are refused there, and git cannot recompute them)."""
    return [commit for commit in commits if len(commit.parents) == 2 and (branch := places[commit.sha].branch) is not None
            and branch.kind in RECOMPUTED]


def _children_first(graph: dict[str, LogCommit]) -> list[str]:
    """The range's commits, each after every child it has in the range (Kahn's order)."""
    children = dict.fromkeys(graph, 0)
    for commit in graph.values():
        for parent in commit.parents:
            if parent in children:
                children[parent] += 1
    ready = [sha for sha, count in children.items() if count == 0]
    order = []
    while ready:
        sha = ready.pop()
        order.append(sha)
        for parent in graph[sha].parents:
            if parent in children:
                children[parent] -= 1
                if children[parent] == 0:
                    ready.append(parent)
    return order


def _redundant(merges: Sequence[LogCommit], graph: dict[str, LogCommit], repo: Git) -> set[str]:
    """The merges whose second parent is already contained in their first. Inside the range, one
    children-first pass carries each merge's bit from its first parent to every ancestor; a second
    parent outside the range (already known before it) is asked of git."""
    seeds: dict[str, int] = {}
    for i, merge in enumerate(merges):
        if merge.parents[0] in graph:
            seeds[merge.parents[0]] = seeds.get(merge.parents[0], 0) | 1 << i
    below = dict(seeds)
    for sha in _children_first(graph) if seeds else ():
        bits = below.get(sha)
        if bits:
            for parent in graph[sha].parents:
                if parent in graph:
                    below[parent] = below.get(parent, 0) | bits
    found = set()
    for i, merge in enumerate(merges):
        first, second = merge.parents
        if second in graph:
            if below.get(second, 0) >> i & 1:
                found.add(merge.sha)
        elif repo.is_ancestor(second, first):
            found.add(merge.sha)
    return found


def _hotfix_brought(commits: Iterable[LogCommit], places: dict[str, _Place], squashes: dict[str, _Squash]) -> list[LogCommit]:
    """The merges and squashes that bring a hotfix onto main: hotfix-size judges what they bring."""
    found = []
    for commit in commits:
        place = places[commit.sha]
        source = squashes[commit.sha].source if commit.sha in squashes else place.source if len(commit.parents) == 2 else None
        if place.branch is not None and place.branch.kind is Kind.MAIN and source is not None and source.kind is Kind.HOTFIX:
            found.append(commit)
    return found


@dataclass
class _Range:
    """Everything gathered about a range, shared by the per-commit facts."""

    graph: dict[str, LogCommit]
    places: dict[str, _Place]
    blobs: _Blobs
    squashes: dict[str, _Squash]  # squash commit -> its source and what recomputing it showed
    recomputed: dict[str, MergeEvidence]  # merge on main or dev -> what recomputing it showed
    brought: dict[str, HotfixDiff]  # merge or squash of a hotfix onto main -> what it brings
    stale: dict[str, str]  # release onto main -> the dev commit an earlier release took, which it does not contain
    refs: RefView
    settings: Settings
    has_base: bool
    tips: frozenset[str]  # the judged ranges' newest commits


def gather(tip: str, bases: Sequence[str], target: Branch | None, settings: Settings, refs: RefView, has_base: bool) -> list[Judged]:
    """Facts for every commit reachable from `tip` and not from `bases`, oldest first. `has_base`:
    the range continues an existing history (a parentless commit is then no new repository's root)."""
    return gather_many([(tip, target)], bases, settings, refs, has_base)[0][tip]


def gather_many(heads: Sequence[tuple[str, Branch | None]], bases: Sequence[str], settings: Settings, refs: RefView,
                has_base: bool) -> tuple[dict[str, list[Judged]], set[str]]:
    """`gather` for several distinct tips sharing `bases` (a push of many refs), each git command run
    once for all: tip -> its commits' facts, each commit placed by the first tip whose walk reaches
    it; and the tips whose walk met commits an earlier tip placed (judge those alone when it matters)."""
    repo = refs.repo
    revs = [*(tip for tip, _ in heads), *(f"^{base}" for base in bases)]
    remerge = repo.start_remerge(revs, settings.max_merge_paths)  # every merge of the range, alongside the log passes
    try:
        commits, blobs = _read_range(repo, revs, settings)
        graph = {commit.sha: commit for commit in commits}
        places, met = _place(heads, graph, refs, settings)
        merges = _recomputed_merges(commits, places)
        trailers = _squashes(commits, places)
        resolved = repo.resolve_commits(sha for _, sha in trailers.values())
        with ThreadPoolExecutor(max_workers=4) as pool:  # a few git processes each, side by side
            squashes = dict(zip(trailers, pool.map(lambda sha: _squash(graph[sha], trailers[sha], resolved, refs, settings, remerge),
                                                   trailers), strict=True))
            hotfixes = [commit.sha for commit in _hotfix_brought(commits, places, squashes)]
            limit = settings.hotfix_max_bytes
            counted = dict(zip(hotfixes, pool.map(lambda sha: brought(repo, graph[sha].parents[0], sha, limit), hotfixes), strict=True))
        stale = {release: commit for tip, target in heads if target is not None and target.kind is Kind.MAIN
                 for release, commit in _stale_releases(tip, graph, places, squashes, refs, settings).items()}
        redundant = _redundant(merges, graph, repo)
        recomputed = _merge_evidence(merges, _remerged(remerge), redundant, repo)
    finally:
        remerge.cancel()
    blobs.contents.update(_task_configs_under_a_new_core(commits, places, blobs, repo, settings))
    context = _Range(graph, places, blobs, squashes, recomputed, counted, stale, refs, settings, has_base,
                     frozenset(tip for tip, _ in heads))
    judged: dict[str, list[Judged]] = {tip: [] for tip, _ in heads}
    for commit in commits:
        judged[places[commit.sha].head].append(Judged(commit, _change(commit, context), places[commit.sha].via))
    return judged, met


def _remerged(remerge: BoundedOutput) -> bytes:
    """The remerge patches, or exit 2 when recomputing the range's merges and squashes passed the limit."""
    try:
        return remerge.result()
    except TooMuchWork as exc:
        raise UsageError(
            f"recomputing the merges and squashes of this range meets more than {exc.limit:,} paths where git's own merge "
            f"differs from the recorded one (limits.max_merge_paths in {CONFIG_FILE}); dlgit stopped instead of judging it, "
            "so it is not accepted. Bring such merges in smaller pushes, or have the settings' owner raise the limit.") from None


def _merge_evidence(merges: Sequence[LogCommit], patches: bytes, redundant: set[str], repo: Git) -> dict[str, MergeEvidence]:
    """merge -> what recomputing it showed (the remerge diff classified, and whether it is redundant)."""
    files = parse_patches(patches, wanted={merge.sha for merge in merges})
    problems: dict[str, Unexplained] = unexplained(repo, {m.sha: (files[m.sha], *m.parents) for m in merges if m.sha in files})
    return {m.sha: MergeEvidence(problems.get(m.sha, ()), m.sha in redundant) for m in merges}


def _change(commit: LogCommit, context: _Range) -> Change:
    place, settings, blobs = context.places[commit.sha], context.settings, context.blobs
    merge, evidence = None, None
    if commit.sha in context.squashes:
        squash = context.squashes[commit.sha]
        merge = Merge(squash.source, squash.sha, squash=True, by_content=squash.by_content)
        evidence = squash.evidence
    elif len(commit.parents) > 1:
        merge = Merge(place.source, commit.parents[1], octopus=len(commit.parents) > 2, by_content=place.by_content)
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
        template_mode_changed=commit.sha in blobs.mode_changed,
        settings_problem=_settings_problem(commit.sha, blobs),
        task_versions=_task_versions(commit.sha, place.branch, changed_configs, blobs, settings),
        hotfix_diff=_hotfix_diff(commit.sha, place, context.graph, context.refs, settings) if hotfix else None,
        squash_evidence=evidence,
        merge_evidence=context.recomputed.get(commit.sha),
        brought=context.brought.get(commit.sha),
        stale_release=context.stale.get(commit.sha),
        commit=Committed(commit.sha, tip=commit.sha in context.tips, merged_by=place.via, remote=context.refs.remote,
                         on_dev=_direct_on_main(commit, place) and bool(context.refs.owns(settings.dev, commit.sha))),
        task_brings=task_brings(context.refs, settings, commit.parents[1]) if merge is not None and
        task_merge_reaches_out(place.branch, merge, _changed_paths(commit), settings) else None,
        unrecorded=context.refs.unrecorded() if merge is not None and (merge.source is None or merge.by_content or
                                                             (evidence is not None and evidence.on_branch is False)) else None,
    )


def _task_versions(sha: str, branch: Branch | None, changed: list[RawEntry], blobs: _Blobs,
                   settings: Settings) -> tuple[str | None, str | None] | None:
    """On a task or debug branch, a commit changing its own config.yaml or the template's: both VERSIONs there."""
    if branch is None or branch.kind not in (Kind.TASK, Kind.DEBUG):
        return None
    own = f"{task_folder(branch.name, settings)}/config.yaml"
    blob = next((entry.new_blob for entry in changed if entry.path == own and entry.new_blob), None)
    text = blobs.contents.get(blob) if blob else blobs.contents.get(f"{sha}:{own}")  # edited here, or under a core changed here
    if text is None:
        return None
    return read_version(text), read_version(blobs.contents.get(f"{sha}:{settings.template_config}"))


def _task_configs_under_a_new_core(commits: Sequence[LogCommit], places: dict[str, _Place], blobs: _Blobs, repo: Git,
                                   settings: Settings) -> dict[str, bytes]:
    """`sha:tasks/<task>/config.yaml` -> its content, for the commits on a task or debug branch that change the
    template config (a merge of main, say) and leave the task's own config as it was (one `cat-file --batch`)."""
    names = []
    for commit in commits:
        branch = places[commit.sha].branch
        touched = {entry.path for entry in blobs.configs.get(commit.sha, [])}
        if branch is not None and branch.kind in (Kind.TASK, Kind.DEBUG) and settings.template_config in touched:
            own = f"{task_folder(branch.name, settings)}/config.yaml"
            if own not in touched:
                names.append(f"{commit.sha}:{own}")
    return repo.read_objects(names) if names else {}


def _settings_problem(sha: str, blobs: _Blobs) -> str | None:
    """The parser's reason when the commit adds or edits a .dlgit.yaml that does not parse."""
    blob = blobs.settings.get(sha)
    return None if blob is None else config.problem(blobs.contents.get(blob, b""), f"{CONFIG_FILE} at {sha[:12]}")


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
    return [RefUpdate(ref, on_main=refs.owns(settings.main, sha), version=read_version(texts.get(f"{sha}:{settings.template_config}")),
                      remote=refs.remote)
            for ref, sha in tags]


def release_tags(commits: Iterable[str], refs: RefView, settings: Settings) -> list[RefUpdate]:
    """The release tags (vX.Y.Z) that point at one of `commits`, with the size of their tag objects."""
    inside = set(commits)
    found = [(ref, sha, size) for ref, sha, size in refs.repo.tags() if sha in inside and tag_version(ref)]
    updates = tag_updates([(ref, sha) for ref, sha, _ in found], refs, settings)
    return [update._replace(tag_bytes=size) for update, (_, _, size) in zip(updates, found, strict=True)]

