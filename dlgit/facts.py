"""Gather the facts about the commit being made (index, HEAD, merge/squash state) from git.

Only git plumbing, each a single process; the policy never sees git.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from dlgit import config
from dlgit.config import CONFIG_FILE, Settings
from dlgit.evidence import (
    RECOMPUTED,
    HotfixDiff,
    RefView,
    brought,
    claimed_source,
    hotfix_diff,
    merge_evidence,
    merge_source,
    squash_evidence,
    stale_release,
    task_brings,
    task_merge_reaches_out,
)
from dlgit.git import Background, Git, Staged, require_version
from dlgit.git.ancestry import amending
from dlgit.git.parse import parse_index_sizes
from dlgit.model import (
    SQUASH_SOURCES_INTO_MAIN,
    Branch,
    Kind,
    is_task_config,
    parse_branch,
    parse_squash_trailer,
    read_version,
    task_folder,
    utc_stamp,
)
from dlgit.policy import Change, Entry, Merge
from dlgit.policy.change import MergeEvidence, SquashEvidence

# Patterns are compiled on first use (re caches them): a hook process pays only for those it needs.
_QUOTED = r"'([^']+)'"
_REV_SYNTAX = r"[~^:?*\[\\\s]|@\{|\.\."


def _merge_in_progress(repo: Git, target: Branch | None, settings: Settings, paths: list[str]) -> Merge | None:
    """MERGE_HEAD (a conflicted merge being concluded), a clean merge at pre-merge-commit
    (GIT_REFLOG_ACTION), or SQUASH_MSG (merge --squash). `paths`: what the index changes."""
    shas = repo.merge_heads()
    if shas:
        names = re.findall(_QUOTED, repo.merge_msg_subject())
        return _merge(_source(repo, names, shas[0], target, settings, paths), shas[0], octopus=len(shas) > 1)
    words = os.environ.get("GIT_REFLOG_ACTION", "").split()
    if words and words[0] == "merge":
        names = [w for w in words[1:] if not w.startswith("-")]
        sha = repo.rev(names[-1]) if names else None
        return _merge(_source(repo, names[-1:], sha, target, settings, paths), sha, octopus=len(names) > 1) if sha else None
    if words and words[0] == "pull":  # `git pull` merges what it fetched: FETCH_HEAD, which git wrote, names it
        fetched = repo.fetched_for_merge()
        if fetched:
            sha, name = fetched[0]
            found = (parse_branch(name, settings), False) if name else _source(repo, [], sha, target, settings, paths)
            return _merge(found, sha, octopus=len(fetched) > 1)
    squashed = repo.squashed_commit()
    if squashed:
        return _squash(repo, squashed, target, settings, paths)
    return None


def _squash(repo: Git, sha: str, target: Branch | None, settings: Settings, paths: list[str], named: list[str] | None = None) -> Merge:
    into_main = target is not None and target.kind is Kind.MAIN
    found = _source(repo, named or [], sha, target, settings, paths, SQUASH_SOURCES_INTO_MAIN if into_main else None, True)
    return _merge(found, sha, squash=True)


def _merge(found: tuple[Branch | None, bool], sha: str, squash: bool = False, octopus: bool = False) -> Merge:
    """A Merge from what `_source` found: the branch, and whether only the content vouches for it."""
    return Merge(found[0], sha, squash=squash, octopus=octopus, by_content=found[1])


def _source(repo: Git, names: list[str], sha: str, target: Branch | None, settings: Settings, paths: list[str],
            preferred: frozenset[Kind] | None = None, squash: bool = False) -> tuple[Branch | None, bool]:
    """The branch being merged, as `dlgit check` will find it: the branch owning `sha` (a name git
    recorded first, not a sha, tag or `dev~1`), else a claim of those names that the change's
    content can prove; and whether only the content vouches for it."""
    branch_names = [name for name in names if not re.search(_REV_SYNTAX, name)]
    found = merge_source(branch_names, sha, target, RefView.load(repo), settings, preferred)
    if found is not None:
        return found, False
    claimed = claimed_source([parse_branch(name, settings) for name in branch_names], target, paths, settings, squash)
    return claimed, claimed is not None


def _amended_merge(repo: Git, parents: list[str], message: str, target: Branch | None, settings: Settings,
                   paths: list[str]) -> Merge | None:
    """`git commit --amend` of a merge keeps its second parent: the amend is still that merge.
    The amend of a squash on main is still that squash when the old message names it (trailer)."""
    if len(parents) > 1:
        return _merge(_source(repo, [], parents[1], target, settings, paths), parents[1], octopus=len(parents) > 2)
    trailer = parse_squash_trailer(message) if target is not None and target.kind is Kind.MAIN else None
    sha = repo.rev(trailer[1]) if trailer else None
    if sha is None or trailer is None:
        return None
    return _squash(repo, sha, target, settings, paths, [trailer[0]])


BULK_PATHS = 500  # new files from which the sizes the index recorded replace asking git per blob,
INDEX_BYTES_PER_BLOB = 2000  # unless the index is larger: listing this many of its bytes costs about one query


def _blob_sizes(repo: Git, staged: Staged, limit: int, listing: Background | None, index_bytes: int) -> dict[str, int]:
    """Sizes of the staged blobs, as far as large-file needs them: a blob left out is under half
    the limit. git tells each blob's size exactly (`cat-file --batch-check`, about 30 µs per new
    loose object here): fine for an ordinary commit, most of a second at 20,000 files. So from
    BULK_PATHS new files on, the size the index recorded when a file was staged stands for its
    blob (one `ls-files` pass), and only entries that recorded nothing or over half the limit are
    asked exactly. There a file of 4 GiB or more may pass as small (the index keeps 32 bits), as
    may one that a clean filter enlarges; `dlgit check` and pre-push read every object."""
    adding = [(path, blob) for path, blob in zip(staged.paths, staged.new_blobs, strict=True) if blob]
    if listing is None or len(adding) < max(BULK_PATHS, index_bytes // INDEX_BYTES_PER_BLOB):
        return repo.object_sizes([blob for _, blob in adding])
    half = limit // 2
    recorded = parse_index_sizes(listing.result(), half)  # not listed: under `half`
    listed = [(blob, recorded[path]) for path, blob in adding if path in recorded]
    sizes = {blob: size for blob, size in listed if 0 < size <= half}
    sizes.update(repo.object_sizes([blob for blob, size in listed if size == 0 or size > half]))
    return sizes


def current_branch(repo: Git, settings: Settings) -> Branch | None:
    """The checked-out branch as a Branch of the model; None on a detached HEAD."""
    return parse_branch(repo.info.branch, settings) if repo.info.branch else None


def gather(repo: Git, settings: Settings, branch: Branch | None, message: str | None = None) -> Change:
    """Facts about the commit `git commit` (or `git merge`) is about to make on `branch`."""
    head = base = repo.info.head
    amending_parents: list[str] | None = None
    old_message = ""
    is_amend = bool(head) and amending()
    if is_amend:  # the amended commit replaces HEAD, keeping its parents
        amending_parents, old_message = repo.parents_and_message(head)
        base = amending_parents[0] if amending_parents else None
    # A large index is listed alongside the diff, in case the commit is large too (_blob_sizes).
    index_bytes = repo.index_bytes()
    listing = repo.start_index_listing() if index_bytes >= 64 * BULK_PATHS else None
    try:
        staged = repo.staged(base)
        size = _blob_sizes(repo, staged, settings.large_file_max_bytes, listing, index_bytes).get
    finally:
        if listing is not None:
            listing.cancel()
    new = tuple.__new__  # 20,000 entries: no NamedTuple __new__ per path
    rows = zip(staged.statuses, staged.paths, staged.old_paths, map(size, staged.new_blobs), strict=True)
    entries = tuple([new(Entry, row) for row in rows])
    config_blobs = {path: blob for path, blob in zip(staged.paths, staged.new_blobs, strict=True)
                    if blob and path.endswith("/config.yaml") and is_task_config(path, settings)
                    and (size(blob) or 0) <= settings.large_file_max_bytes}  # large-file refuses the others: not parsed as well
    own = _own_config(branch, settings)  # a task's config and its core, when the commit changes either
    core = settings.template_config
    versions = [f":{own}", f":{core}"] if own and (own in config_blobs or core in config_blobs) else []
    contents = repo.read_objects(sorted(set(config_blobs.values())) + versions)
    before = repo.show_file(base, settings.template_config) if base and settings.template_config in config_blobs else None
    paths = [*staged.paths, *(path for path in staged.old_paths if path)]
    merge = _merge_in_progress(repo, branch, settings, paths)
    if merge is None and amending_parents is not None:
        merge = _amended_merge(repo, amending_parents, old_message, branch, settings, paths)
    recorded = _Recorded(repo, merge, branch, base)
    on_main = branch is not None and branch.kind is Kind.MAIN
    return Change(
        branch=branch,
        entries=entries,
        merge=merge,
        squash_evidence=recorded.squash(),
        merge_evidence=recorded.merge(),
        brought=recorded.brought(settings.hotfix_max_bytes),
        stale_release=recorded.stale(settings),
        is_root=base is None,
        message=message,
        configs=tuple((path, contents.get(blob, b"")) for path, blob in config_blobs.items()),
        template_config_before=before,
        template_mode_changed=bool(before is not None and base and len(entries) == 1 and repo.mode_changed(base, settings.template_config)),
        hotfix_diff=_hotfix_diff(repo, branch, head, settings),
        amending=is_amend,
        dev_missing=on_main and repo.ref(f"refs/heads/{settings.dev}") is None,
        dev_worktree=_elsewhere(repo, settings.dev) if on_main else None,
        uses_dvc=repo.root is not None and (repo.root / ".dvc" / "config").is_file(),
        settings_problem=_settings_problem(repo, staged, size, settings.large_file_max_bytes),
        task_versions=(read_version(contents.get(versions[0])), read_version(contents.get(versions[1]))) if versions else None,
        **(_rename_facts(repo, branch, head, settings) if branch is not None and not branch.valid else {}),
        foreign_paths=_foreign(repo, branch, head, settings) if merge is None else (),
        task_brings=task_brings(RefView.load(repo), settings, merge.sha) if merge and merge.sha and
        task_merge_reaches_out(branch, merge, paths, settings) else None,
    )


def _own_config(branch: Branch | None, settings: Settings) -> str | None:
    """A task or debug branch's own tasks/<branch>/config.yaml."""
    return f"{task_folder(branch.name, settings)}/config.yaml" if branch is not None and branch.kind in (Kind.TASK, Kind.DEBUG) else None


def _settings_problem(repo: Git, staged: Staged, size: Callable[[str], int | None], limit: int) -> str | None:
    """The parser's reason when the commit stages a .dlgit.yaml that does not parse (PyYAML only then;
    one over the large-file limit is large-file's)."""
    if CONFIG_FILE not in staged.paths:
        return None
    blob = staged.new_blobs[staged.paths.index(CONFIG_FILE)]
    raw = repo.read_blob(blob) if blob and (size(blob) or 0) <= limit else None
    return None if raw is None else config.problem(raw, f"the staged {CONFIG_FILE}")


def _foreign(repo: Git, branch: Branch | None, head: str | None, settings: Settings) -> tuple[str, ...]:
    """On a task branch started from dev: what the dev commits it carries change outside the tasks
    folder (those main lacks)."""
    if branch is None or branch.kind is not Kind.TASK or head is None:
        return ()
    main, dev = repo.rev(f"refs/heads/{settings.main}"), repo.rev(f"refs/heads/{settings.dev}")
    fork = repo.merge_base(dev, head) if main and dev else None
    if fork is None or repo.is_ancestor(fork, main):  # nothing of dev's beyond main
        return ()
    return tuple(repo.changed_on(main, fork, settings.tasks_dir + "/"))


def _rename_facts(repo: Git, branch: Branch, head: str | None, settings: Settings) -> dict[str, object]:
    """What a malformed branch name's fix needs to print the exact task name."""
    version = read_version(repo.show_file(head, settings.template_config)) if head else None
    return {"core_version": version, "now": utc_stamp(),
            "has_task_folder": repo.root is not None and (repo.root / task_folder(branch.name, settings)).is_dir()}


def _elsewhere(repo: Git, branch: str) -> str | None:
    """The other work tree `branch` is checked out in, if any."""
    path = repo.worktrees().get(branch)
    return str(path) if path is not None and repo.root is not None and path.resolve() != repo.root.resolve() else None


class _Recorded:
    """A merge or squash being made onto main or dev, recomputed like `dlgit check` recomputes it, so
    that content added to it (or a stale SQUASH_MSG) cannot pass as the merged branch's."""

    def __init__(self, repo: Git, merge: Merge | None, branch: Branch | None, base: str | None) -> None:
        self.repo, self.made, self.base = repo, merge, base
        self.kind = branch.kind if branch is not None and merge is not None and merge.sha and base else None
        self._tree: str | None = None

    def tree(self) -> str:
        if self._tree is None:
            require_version()  # merge-tree --write-tree
            self._tree = self.repo.write_tree()
        return self._tree

    def squash(self) -> SquashEvidence | None:
        merge = self.made
        if self.kind is not Kind.MAIN or merge is None or not merge.squash or merge.source is None:
            return None
        assert self.base and merge.sha
        return squash_evidence(self.repo, self.base, merge.sha, self.tree())

    def merge(self) -> MergeEvidence | None:
        merge = self.made
        if self.kind not in RECOMPUTED or merge is None or merge.squash or merge.octopus:
            return None
        assert self.base and merge.sha
        return merge_evidence(self.repo, self.base, merge.sha, self.tree())

    def stale(self, settings: Settings) -> str | None:
        merge = self.made
        if self.kind is not Kind.MAIN or merge is None or merge.source is None or merge.source.kind is not Kind.DEV:
            return None
        assert self.base and merge.sha
        return stale_release(RefView.load(self.repo), self.base, merge.sha, settings)

    def brought(self, limit: int) -> HotfixDiff | None:
        merge = self.made
        if self.kind is not Kind.MAIN or merge is None or merge.source is None or merge.source.kind is not Kind.HOTFIX:
            return None
        assert self.base
        return brought(self.repo, self.base, None, limit)


def _hotfix_diff(repo: Git, branch: Branch | None, head: str | None, settings: Settings) -> HotfixDiff | None:
    if branch is None or branch.kind is not Kind.HOTFIX or head is None:
        return None
    main = repo.rev(settings.main) or next(iter(repo.remote_tracking(settings.main)), None)  # a clone may lack a local main
    return hotfix_diff(repo, main, None, settings.hotfix_max_bytes)
