"""Gather the facts about the commit being made (index, HEAD, merge/squash state) from git.

Only git plumbing, each a single process (and, off Linux, one `ps` listing to find the options of
the git command running the hook); the policy never sees git.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from itertools import takewhile
from pathlib import Path

from dlgit import git
from dlgit.config import Settings
from dlgit.model import MERGE_SOURCES, SQUASH_SOURCES_INTO_MAIN, Branch, Kind, is_task_config, parse_branch, parse_squash_trailer
from dlgit.policy import Change, Entry, Merge
from dlgit.policy.model import SquashEvidence


def rebase_in_progress(git_dir: Path) -> bool:
    return (git_dir / "rebase-merge").exists() or (git_dir / "rebase-apply").exists()


def git_options() -> list[bytes] | None:
    """The arguments of the git command running this hook, found among the ancestor processes
    (git tells hooks nothing about its options); None when no ancestor is git."""
    ancestry = _proc_ancestry if os.path.isdir("/proc/self") else _ps_ancestry
    for argv in ancestry(os.getppid()):
        if argv and os.path.basename(argv[0]) in (b"git", b"git.exe"):
            return argv[1:argv.index(b"--")] if b"--" in argv else argv[1:]
    return None


def _options_before_free_text(argv: list[bytes]) -> list[bytes]:
    if b"commit" not in argv:
        return argv
    start = argv.index(b"commit") + 1
    return argv[:start] + list(takewhile(lambda word: word.startswith(b"-"), argv[start:]))


ANCESTORS = 6  # git -> pre-commit -> ... -> this hook: how far up to look


def _proc_ancestry(pid: int) -> Iterator[list[bytes]]:
    """argv of `pid` and its ancestors, exactly, from /proc (Linux)."""
    for _ in range(ANCESTORS):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline, open(f"/proc/{pid}/stat", "rb") as status:
                argv, stat_line = cmdline.read().removesuffix(b"\0").split(b"\0"), status.read()
        except OSError:
            return
        yield argv
        pid = int(stat_line.rsplit(b")", 1)[1].split()[1])
        if pid <= 1:
            return


def _ps_ancestry(pid: int) -> Iterator[list[bytes]]:
    """argv of `pid` and its ancestors from one `ps` listing (macOS, BSD; -ww: never cut to the
    terminal's width). ps joins the arguments with spaces, so the words of `commit -m "a message"`
    look like arguments too: after `commit`, only the words up to the first non-option are kept
    (an option missed there is the safe side: the commit is judged as a new one)."""
    try:
        listing = subprocess.run(["ps", "-ww", "-A", "-o", "pid=", "-o", "ppid=", "-o", "args="], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return
    table = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[0].isdigit() and fields[1].isdigit():
            table[int(fields[0])] = (int(fields[1]), fields[2:])
    for _ in range(ANCESTORS):
        if pid not in table:
            return
        pid, argv = table[pid]
        yield _options_before_free_text(argv)
        if pid <= 1:
            return


def amending() -> bool:
    """Is the hook running for `git commit --amend`? git accepts unique abbreviations (`--amen`),
    and an alias (`git ci --amend`) keeps the option."""
    return any(len(arg) >= 4 and b"--amend".startswith(arg) for arg in git_options() or ())


def message_keeps_comments(configured_cleanup: str | None) -> bool:
    """Does git keep '#' lines of this message? Yes for `git commit -m/-F/-C` without an editor
    under the default cleanup, and for --cleanup=verbatim|whitespace|scissors (or commit.cleanup)."""
    options = git_options()
    if not options or b"commit" not in options:
        return False
    modes = [arg.partition(b"=")[2].decode() for arg in options if arg.startswith(b"--cleanup=")]
    mode = modes[-1] if modes else configured_cleanup or "default"
    if mode != "default":
        return mode in ("verbatim", "whitespace", "scissors")
    edits = any(arg in (b"-e", b"--edit") for arg in options)
    given = any(arg.startswith((b"--message", b"--file", b"--reuse-message")) or _short_flags(arg) & set("mFC") for arg in options)
    return given and not edits


def _short_flags(arg: bytes) -> set[str]:
    """The letters of a short-option cluster (`-am` -> {a, m}); empty for anything else."""
    return set(arg[1:].decode(errors="replace")) if arg[:1] == b"-" and arg[1:2] not in (b"-", b"") else set()


def resolve_source(name: str, settings: Settings, cwd: Path | None = None) -> Branch:
    """A branch named in a merge (local, `origin/x`, `refs/heads/x`) as a Branch of the model."""
    for prefix in ("refs/heads/", "refs/remotes/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            if prefix == "refs/remotes/":
                name = name.split("/", 1)[-1]
            return parse_branch(name, settings)
    if "/" in name and git.rev(f"refs/remotes/{name}", cwd) and not git.rev(f"refs/heads/{name}", cwd):
        name = name.split("/", 1)[1]
    return parse_branch(name, settings)


def _source_for_sha(sha: str, preferred: frozenset[Kind], settings: Settings, cwd: Path | None) -> Branch | None:
    """The branch that holds `sha`: one pointing at it, else one containing it; preferring kinds
    that may be merged here so that a tip shared by two branches is read generously."""
    for candidates in (git.branches_at(sha, cwd), git.branches_containing(sha, cwd)):
        found = [resolve_source(name, settings, cwd) for name in candidates]
        found = [b for b in found if b.kind is not Kind.MAIN or b.name != settings.main] or found
        if found:
            return next((b for b in found if b.kind in preferred), found[0])
    return None


# Patterns are compiled on first use (re caches them): a hook process pays only for those it needs.
_QUOTED = r"'([^']+)'"
_REV_SYNTAX = r"[~^:?*\[\\\s]|@\{|\.\."


def _merge_in_progress(git_dir: Path, target: Branch | None, settings: Settings, cwd: Path | None) -> Merge | None:
    """MERGE_HEAD (a conflicted merge being concluded), a clean merge at pre-merge-commit
    (GIT_REFLOG_ACTION), or SQUASH_MSG (merge --squash)."""
    preferred = MERGE_SOURCES.get(target.kind, frozenset()) if target else frozenset()
    merge_head = git_dir / "MERGE_HEAD"
    if merge_head.exists():
        shas = merge_head.read_text().split()
        names = re.findall(_QUOTED, _first_line(git_dir / "MERGE_MSG"))
        return Merge(_pick(names, shas[0], preferred, settings, cwd), shas[0], octopus=len(shas) > 1)
    action = os.environ.get("GIT_REFLOG_ACTION", "")
    words = action.split()
    if words and words[0] == "merge":
        names = [w for w in words[1:] if not w.startswith("-")]
        sha = git.rev(names[-1], cwd) if names else None
        return Merge(_pick(names[-1:], sha, preferred, settings, cwd), sha, octopus=len(names) > 1) if sha else None
    if words and words[0] == "pull":  # `git pull` merges what it fetched: FETCH_HEAD names it
        fetched = _fetched_for_merge(git_dir)
        if fetched:
            sha, name = fetched[0]
            source = parse_branch(name, settings) if name else _source_for_sha(sha, preferred, settings, cwd)
            return Merge(source, sha, octopus=len(fetched) > 1)
    squash_msg = git_dir / "SQUASH_MSG"
    if squash_msg.exists():
        match = re.search(r"^commit ([0-9a-f]{40,64})$", squash_msg.read_text(errors="replace"), re.M)
        if match:
            into_main = target is not None and target.kind is Kind.MAIN
            source = _source_for_sha(match.group(1), SQUASH_SOURCES_INTO_MAIN if into_main else preferred, settings, cwd)
            return Merge(source, match.group(1), squash=True)
    return None


def _fetched_for_merge(git_dir: Path) -> list[tuple[str, str | None]]:
    """(sha, remote branch name) of each FETCH_HEAD line that `git pull` merges (several: an octopus)."""
    try:
        lines = (git_dir / "FETCH_HEAD").read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        sha, _, rest = line.partition("\t")
        flag, _, description = rest.partition("\t")
        if sha and not flag:
            match = re.match(r"^branch '([^']+)' of ", description)
            found.append((sha, match.group(1) if match else None))
    return found


def _pick(names: list[str], sha: str | None, preferred: frozenset[Kind], settings: Settings, cwd: Path | None) -> Branch | None:
    """The source branch: the name git recorded when it is a branch at that commit (not a sha,
    tag or `dev~1`), else whoever holds the sha."""
    for name in names:
        if re.search(_REV_SYNTAX, name):  # `dev~1`, `dev^2`, `dev@{1}` are commits, not branches
            continue
        refs = [name] if name.startswith(("refs/heads/", "refs/remotes/")) else [f"refs/heads/{name}", f"refs/remotes/{name}"]
        if sha and any(git.rev(ref, cwd) == sha for ref in refs):
            return resolve_source(name, settings, cwd)
    return _source_for_sha(sha, preferred, settings, cwd) if sha else None


def _amended_merge(parents: list[str], message: str, target: Branch | None, settings: Settings, cwd: Path | None) -> Merge | None:
    """`git commit --amend` of a merge keeps its second parent: the amend is still that merge.
    The amend of a squash on main is still that squash when the old message names it (trailer)."""
    if len(parents) > 1:
        preferred = MERGE_SOURCES.get(target.kind, frozenset()) if target else frozenset()
        return Merge(_source_for_sha(parents[1], preferred, settings, cwd), parents[1], octopus=len(parents) > 2)
    trailer = parse_squash_trailer(message) if target is not None and target.kind is Kind.MAIN else None
    sha = git.rev(trailer[1], cwd) if trailer else None
    if sha is None:
        return None
    return Merge(_source_for_sha(sha, SQUASH_SOURCES_INTO_MAIN, settings, cwd), sha, squash=True)


def _first_line(path: Path) -> str:
    try:
        return path.read_text(errors="replace").partition("\n")[0]
    except OSError:
        return ""


BULK_PATHS = 500  # new files from which the sizes the index recorded replace asking git per blob,
INDEX_BYTES_PER_BLOB = 2000  # unless the index is larger: listing this many of its bytes costs about one query


def _blob_sizes(staged: git.Staged, limit: int, listing: git.Background | None, index_bytes: int, cwd: Path | None) -> dict[str, int]:
    """Sizes of the staged blobs, as far as large-file needs them: a blob left out is under half
    the limit. git tells each blob's size exactly (`cat-file --batch-check`, about 30 µs per new
    loose object here): fine for an ordinary commit, most of a second at 20,000 files. So from
    BULK_PATHS new files on, the size the index recorded when a file was staged stands for its
    blob (one `ls-files` pass), and only entries that recorded nothing or over half the limit are
    asked exactly. There a file of 4 GiB or more may pass as small (the index keeps 32 bits), as
    may one that a clean filter enlarges; `dlgit check` and pre-push read every object."""
    adding = [(path, blob) for path, blob in zip(staged.paths, staged.new_blobs, strict=True) if blob]
    if listing is None or len(adding) < max(BULK_PATHS, index_bytes // INDEX_BYTES_PER_BLOB):
        return git.object_sizes([blob for _, blob in adding], cwd)
    half = limit // 2
    recorded = git.recorded_sizes(listing, half)  # not listed: under `half`
    listed = [(blob, recorded[path]) for path, blob in adding if path in recorded]
    sizes = {blob: size for blob, size in listed if 0 < size <= half}
    sizes.update(git.object_sizes([blob for blob, size in listed if size == 0 or size > half], cwd))
    return sizes


def current_branch(info: git.RepoInfo, settings: Settings) -> Branch | None:
    """The checked-out branch as a Branch of the model; None on a detached HEAD."""
    return parse_branch(info.branch, settings) if info.branch else None


def gather(info: git.RepoInfo, settings: Settings, branch: Branch | None, message: str | None = None, cwd: Path | None = None) -> Change:
    """Facts about the commit `git commit` (or `git merge`) is about to make on `branch`."""
    git_dir = info.git_dir
    head = base = info.head
    amended = None
    if head and amending():  # the amended commit replaces HEAD, keeping its parents
        parents, old_message = git.parents_and_message(head, cwd)
        base = parents[0] if parents else None
        amended = _amended_merge(parents, old_message, branch, settings, cwd)
    # A large index is listed alongside the diff, in case the commit is large too (_blob_sizes).
    index_bytes = git.index_bytes(git_dir)
    listing = git.start_index_listing(cwd) if index_bytes >= 64 * BULK_PATHS else None
    try:
        staged = git.staged(base, cwd)
        size = _blob_sizes(staged, settings.large_file_max_bytes, listing, index_bytes, cwd).get
    finally:
        if listing is not None:
            listing.cancel()
    new = tuple.__new__  # 20,000 entries: no NamedTuple __new__ per path
    rows = zip(staged.statuses, staged.paths, staged.old_paths, map(size, staged.new_blobs), strict=True)
    entries = tuple([new(Entry, row) for row in rows])
    config_blobs = {path: blob for path, blob in zip(staged.paths, staged.new_blobs, strict=True)
                    if blob and path.endswith("/config.yaml") and is_task_config(path, settings)}
    contents = git.read_blobs(list(config_blobs.values()), cwd)
    before = git.show_file(base, settings.template_config, cwd) if base and settings.template_config in config_blobs else None
    merge = _merge_in_progress(git_dir, branch, settings, cwd) or amended
    return Change(
        branch=branch,
        entries=entries,
        merge=merge,
        squash_evidence=_squash_evidence(merge, branch, base, cwd),
        is_root=base is None,
        message=message,
        configs=tuple((path, contents.get(blob, b"")) for path, blob in config_blobs.items()),
        template_config_before=before,
        hotfix_diff=_hotfix_diff(branch, head, settings, cwd),
    )


def _squash_evidence(merge: Merge | None, branch: Branch | None, base: str | None, cwd: Path | None) -> SquashEvidence | None:
    """A squash onto main is recomputed like `dlgit check` does, so that a stale SQUASH_MSG or
    changes added to the squash cannot pass as the squashed branch."""
    if not (merge and merge.squash and merge.sha and merge.source and base and branch and branch.kind is Kind.MAIN):
        return None
    git.require_version()  # merge-tree --write-tree
    return SquashEvidence(exists=True, differing=git.unmerged_differences(base, merge.sha, git.write_tree(cwd), cwd))


def _hotfix_diff(branch: Branch | None, head: str | None, settings: Settings, cwd: Path | None) -> tuple[tuple[str, int], ...] | None:
    if branch is None or branch.kind is not Kind.HOTFIX or head is None:
        return None
    fork = git.merge_base(settings.main, head, cwd) or next(  # a clone may lack a local main
        (base for ref in git.remote_tracking(settings.main, cwd) if (base := git.merge_base(ref, head, cwd))), None)
    if fork is None:
        return None
    return tuple((path, added + deleted) for path, (added, deleted) in git.numstat(fork, cwd=cwd).items())
