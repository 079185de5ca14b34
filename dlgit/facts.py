"""Gather the facts about the commit being made (index, HEAD, merge/squash state) from git.

Only git plumbing, each a single process; the policy never sees git.
"""

from __future__ import annotations

import os
import re

from dlgit.config import Settings
from dlgit.evidence import RefView, hotfix_diff, merge_source, squash_evidence
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
from dlgit.policy.change import SquashEvidence

# Patterns are compiled on first use (re caches them): a hook process pays only for those it needs.
_QUOTED = r"'([^']+)'"
_REV_SYNTAX = r"[~^:?*\[\\\s]|@\{|\.\."


def _merge_in_progress(repo: Git, target: Branch | None, settings: Settings) -> Merge | None:
    """MERGE_HEAD (a conflicted merge being concluded), a clean merge at pre-merge-commit
    (GIT_REFLOG_ACTION), or SQUASH_MSG (merge --squash)."""
    shas = repo.merge_heads()
    if shas:
        names = re.findall(_QUOTED, repo.merge_msg_subject())
        return Merge(_source(repo, names, shas[0], target, settings), shas[0], octopus=len(shas) > 1)
    words = os.environ.get("GIT_REFLOG_ACTION", "").split()
    if words and words[0] == "merge":
        names = [w for w in words[1:] if not w.startswith("-")]
        sha = repo.rev(names[-1]) if names else None
        return Merge(_source(repo, names[-1:], sha, target, settings), sha, octopus=len(names) > 1) if sha else None
    if words and words[0] == "pull":  # `git pull` merges what it fetched: FETCH_HEAD, which git wrote, names it
        fetched = repo.fetched_for_merge()
        if fetched:
            sha, name = fetched[0]
            source = parse_branch(name, settings) if name else _source(repo, [], sha, target, settings)
            return Merge(source, sha, octopus=len(fetched) > 1)
    squashed = repo.squashed_commit()
    if squashed:
        into_main = target is not None and target.kind is Kind.MAIN
        source = _source(repo, [], squashed, target, settings, SQUASH_SOURCES_INTO_MAIN if into_main else None)
        return Merge(source, squashed, squash=True)
    return None


def _source(repo: Git, names: list[str], sha: str, target: Branch | None, settings: Settings,
            preferred: frozenset[Kind] | None = None) -> Branch | None:
    """The branch being merged: a name git recorded (not a sha, tag or `dev~1`), verified by the refs."""
    branch_names = [name for name in names if not re.search(_REV_SYNTAX, name)]
    return merge_source(branch_names, sha, target, RefView.load(repo), settings, preferred)


def _amended_merge(repo: Git, parents: list[str], message: str, target: Branch | None, settings: Settings) -> Merge | None:
    """`git commit --amend` of a merge keeps its second parent: the amend is still that merge.
    The amend of a squash on main is still that squash when the old message names it (trailer)."""
    if len(parents) > 1:
        return Merge(_source(repo, [], parents[1], target, settings), parents[1], octopus=len(parents) > 2)
    trailer = parse_squash_trailer(message) if target is not None and target.kind is Kind.MAIN else None
    sha = repo.rev(trailer[1]) if trailer else None
    if sha is None:
        return None
    return Merge(_source(repo, [], sha, target, settings, SQUASH_SOURCES_INTO_MAIN), sha, squash=True)


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
    amended = None
    is_amend = bool(head) and amending()
    if is_amend:  # the amended commit replaces HEAD, keeping its parents
        parents, old_message = repo.parents_and_message(head)
        base = parents[0] if parents else None
        amended = _amended_merge(repo, parents, old_message, branch, settings)
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
                    if blob and path.endswith("/config.yaml") and is_task_config(path, settings)}
    contents = repo.read_blobs(list(config_blobs.values()))
    before = repo.show_file(base, settings.template_config) if base and settings.template_config in config_blobs else None
    merge = _merge_in_progress(repo, branch, settings) or amended
    on_main = branch is not None and branch.kind is Kind.MAIN
    return Change(
        branch=branch,
        entries=entries,
        merge=merge,
        squash_evidence=_squash_evidence(repo, merge, branch, base),
        is_root=base is None,
        message=message,
        configs=tuple((path, contents.get(blob, b"")) for path, blob in config_blobs.items()),
        template_config_before=before,
        hotfix_diff=_hotfix_diff(repo, branch, head, settings),
        amending=is_amend,
        dev_missing=on_main and repo.ref(f"refs/heads/{settings.dev}") is None,
        dev_worktree=_elsewhere(repo, settings.dev) if on_main else None,
        uses_dvc=repo.root is not None and (repo.root / ".dvc" / "config").is_file(),
        **(_rename_facts(repo, branch, head, settings) if branch is not None and not branch.valid else {}),
        foreign_paths=_foreign(repo, branch, head, settings) if merge is None else (),
    )


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


def _squash_evidence(repo: Git, merge: Merge | None, branch: Branch | None, base: str | None) -> SquashEvidence | None:
    """A squash onto main is recomputed like `dlgit check` does, so that a stale SQUASH_MSG or
    changes added to the squash cannot pass as the squashed branch."""
    if not (merge and merge.squash and merge.sha and merge.source and base and branch and branch.kind is Kind.MAIN):
        return None
    require_version()  # merge-tree --write-tree
    return squash_evidence(repo, base, merge.sha, repo.write_tree())


def _hotfix_diff(repo: Git, branch: Branch | None, head: str | None, settings: Settings) -> tuple[tuple[str, int], ...] | None:
    if branch is None or branch.kind is not Kind.HOTFIX or head is None:
        return None
    main = repo.rev(settings.main) or next(iter(repo.remote_tracking(settings.main)), None)  # a clone may lack a local main
    return hotfix_diff(repo, main, None)
