"""The one place that runs git.

Every function is one git command. Paths come back NUL-separated (`-z`) and are decoded with
`os.fsdecode` (surrogateescape), so spaces, newlines and non-UTF-8 bytes survive a round trip.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

from dlgit.errors import UsageError

MIN_GIT_VERSION = (2, 38)  # merge-tree --write-tree


class GitError(Exception):
    """A git command failed in a way the caller did not expect."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # git hands hooks a GIT_INDEX_FILE relative to the repo root; pin it before any cwd change.
    index = env.get("GIT_INDEX_FILE")
    if index and not os.path.isabs(index):
        env["GIT_INDEX_FILE"] = os.path.abspath(index)
    env.setdefault("LC_ALL", "C")
    return env


def run(
    *args: str, cwd: Path | str | None = None, stdin: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """Run `git ARGS` and return the completed process (stdout as bytes)."""
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, input=stdin, capture_output=True, env=_env(), check=False
        )
    except FileNotFoundError:
        raise UsageError("git is not installed or not on PATH; dlgit needs git 2.38 or newer.") from None
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, os.fsdecode(proc.stderr))
    return proc


def out(*args: str, cwd: Path | str | None = None) -> str:
    """Stdout of a git command that must succeed, decoded and stripped of the final newline."""
    return os.fsdecode(run(*args, cwd=cwd).stdout).rstrip("\n")


def split_z(data: bytes) -> list[str]:
    return [os.fsdecode(part) for part in data.split(b"\0") if part]


def version() -> tuple[int, int]:
    text = out("--version")
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def require_version() -> None:
    found = version()
    if found < MIN_GIT_VERSION:
        need = ".".join(map(str, MIN_GIT_VERSION))
        raise UsageError(f"git {found[0]}.{found[1]} is too old; dlgit needs git {need} or newer.")


class RepoInfo(NamedTuple):
    git_dir: Path  # this worktree's git dir (MERGE_HEAD, SQUASH_MSG, rebase state live here)
    common_dir: Path  # shared by all worktrees (refs, config, dlgit's flow state)
    toplevel: Path | None  # None in a bare repository
    head: str | None  # the commit HEAD names; None on an unborn branch
    branch: str | None  # the checked-out branch (also when unborn); None on a detached HEAD


def repo_info(cwd: Path | str | None = None) -> RepoInfo:
    """Where the repository is, and HEAD as a commit and as a branch: one process in the usual
    case (a work tree with commits), since the hooks ask on every commit."""
    proc = run("rev-parse", "--absolute-git-dir", "--git-common-dir", "--is-bare-repository", "--show-toplevel",
               "HEAD", "--symbolic-full-name", "HEAD", cwd=cwd, check=False)
    lines = os.fsdecode(proc.stdout).splitlines()
    if proc.returncode == 0 and len(lines) == 6:
        git_dir, common, _, toplevel, head, ref = lines
        return _repo_info(git_dir, common, toplevel, cwd, head, ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None)
    # One question at a time: a bare repository or the inside of .git (no work tree), an unborn
    # branch (no HEAD commit), a path holding a newline.
    git_dir = _rev_parse("--absolute-git-dir", cwd)
    if git_dir is None:
        where = os.path.abspath(cwd or os.getcwd())
        raise UsageError(f"{where} is not inside a git repository; run dlgit from a repository's work tree.")
    bare = _rev_parse("--is-bare-repository", cwd) == "true"
    toplevel = None if bare else _rev_parse("--show-toplevel", cwd)
    if not bare and toplevel is None:
        raise UsageError(f"{os.path.abspath(cwd or os.getcwd())} is inside the .git folder; run dlgit from the repository's work tree.")
    return _repo_info(git_dir, _rev_parse("--git-common-dir", cwd) or git_dir, toplevel, cwd, rev("HEAD", cwd), current_branch(cwd))


def _rev_parse(option: str, cwd: Path | str | None) -> str | None:
    """One answer of `git rev-parse OPTION`, whole (a path may end in any character but its newline)."""
    proc = run("rev-parse", option, cwd=cwd, check=False)
    return os.fsdecode(proc.stdout).removesuffix("\n") if proc.returncode == 0 else None


def _repo_info(git_dir: str, common: str, toplevel: str | None, cwd: Path | str | None, head: str | None, branch: str | None) -> RepoInfo:
    common_dir = Path(common) if os.path.isabs(common) else Path(cwd or os.getcwd()) / common
    return RepoInfo(Path(git_dir), common_dir.resolve(), Path(toplevel) if toplevel is not None else None, head, branch)


def current_branch(cwd: Path | str | None = None) -> str | None:
    """Short name of the checked-out branch (also when unborn); None on a detached HEAD."""
    proc = run("symbolic-ref", "-q", "--short", "HEAD", cwd=cwd, check=False)
    return os.fsdecode(proc.stdout).strip() or None if proc.returncode == 0 else None


def rev(spec: str, cwd: Path | str | None = None) -> str | None:
    """Full sha of a commit-ish, or None when it does not exist (unborn HEAD, bad name)."""
    proc = run("rev-parse", "-q", "--verify", "--end-of-options", f"{spec}^{{commit}}", cwd=cwd, check=False)
    return os.fsdecode(proc.stdout).strip() or None if proc.returncode == 0 else None


def merge_base(a: str, b: str, cwd: Path | str | None = None) -> str | None:
    proc = run("merge-base", a, b, cwd=cwd, check=False)
    return os.fsdecode(proc.stdout).strip() or None if proc.returncode == 0 else None


def branches_at(sha: str, cwd: Path | str | None = None) -> list[str]:
    """Local and remote-tracking branches whose tip is `sha` (remote names keep their prefix)."""
    data = run("for-each-ref", "--format=%(refname)", "--points-at", sha, "refs/heads", "refs/remotes", cwd=cwd).stdout
    return [_short_ref(ref) for ref in os.fsdecode(data).splitlines()]


def remote_tracking(branch: str, cwd: Path | str | None = None) -> list[str]:
    """Remote-tracking refs of that branch name on any remote (refs/remotes/*/<branch>)."""
    data = run("for-each-ref", "--format=%(refname)", f"refs/remotes/*/{branch}", cwd=cwd).stdout
    return os.fsdecode(data).splitlines()


def branches_containing(sha: str, cwd: Path | str | None = None) -> list[str]:
    data = run("for-each-ref", "--format=%(refname)", "--contains", sha, "refs/heads", cwd=cwd).stdout
    return [_short_ref(ref) for ref in os.fsdecode(data).splitlines()]


def _short_ref(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/remotes/"):
        if ref.startswith(prefix):
            return ref[len(prefix):]
    return ref


class RawEntry(NamedTuple):  # a NamedTuple: `dlgit check` makes one per changed path of a whole history
    """One line of `git diff --raw`: a path changed between two trees."""

    status: str  # A, M, D, R, C, T
    path: str
    old_path: str | None
    new_blob: str | None  # None for deletions
    old_blob: str | None = None  # None for additions


_ZERO_IDS = frozenset({b"0" * 40, b"0" * 64})
_new_tuple = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (a whole history has 100,000s)
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()  # os.fsdecode, minus its checks


_SINGLE_PATH_CODES = frozenset("AMDTUX")  # statuses with one path; R and C carry a score and two


class Staged(NamedTuple):
    """`git diff --cached --raw` as one list per field: a commit may stage 20,000 paths, and
    whole-list operations cost less than an object per path."""

    statuses: list[str]  # A, M, D, R, C, T, U
    paths: list[str]
    old_paths: list[str | None]  # renames and copies
    new_blobs: list[str | None]  # None for deletions


def _id_spans(meta_length: int) -> tuple[slice, slice]:
    """Where the old and new object ids sit in a one-path `:mode mode old new X` field."""
    width = (meta_length - 18) // 2  # ':' mode ' ' mode ' ' old ' ' new ' ' X: 18 characters besides the ids
    return slice(15, 15 + width), slice(16 + width, 16 + 2 * width)


def _parse_raw(data: bytes) -> Staged:
    """Without renames or copies the fields alternate meta, path: no parse per record."""
    fields = data.decode(_FS_ENCODING, _FS_ERRORS).split("\0")
    metas, paths = fields[0:-1:2], fields[1::2]
    codes = [meta[-1:] for meta in metas]
    if not _SINGLE_PATH_CODES.issuperset(codes):  # the first rename or copy shows: its score ends in a digit
        entries = [_entry(meta.split(b" "), moved) for meta, moved in _raw_records(data)]
        return Staged(*[list(column) for column in zip(*entries, strict=True)][:4])
    if not metas:
        return Staged([], [], [], [])
    new_id = _id_spans(len(metas[0]))[1]
    zero = "0" * (new_id.stop - new_id.start)
    news = [meta[new_id] for meta in metas]
    news = [None if code == "D" or blob == zero else blob for code, blob in zip(codes, news, strict=True)]
    return Staged(codes, paths, [None] * len(paths), news)


def _raw_records(data: bytes) -> Iterator[tuple[bytes, list[bytes]]]:
    """(meta, its one or two paths) per record, walking the fields."""
    fields = data.split(b"\0")
    i = 0
    while i < len(fields) - 1:
        meta = fields[i][1:]
        width = 2 if meta[-1:].isdigit() else 1  # R100 / C75: two paths follow
        yield meta, fields[i + 1:i + 1 + width]
        i += 1 + width


def _entry(meta: list[bytes], paths: list[bytes]) -> RawEntry:
    """A RawEntry from a split `:mode mode old new status` field and its one or two paths."""
    _, _, old_sha, new_sha, status = meta
    code = chr(status[0])
    path = paths[-1].decode(_FS_ENCODING, _FS_ERRORS)
    old_path = paths[0].decode(_FS_ENCODING, _FS_ERRORS) if len(paths) == 2 else None
    new_blob = None if code == "D" or new_sha in _ZERO_IDS else new_sha.decode()
    return _new_tuple(RawEntry, (code, path, old_path, new_blob, None if old_sha in _ZERO_IDS else old_sha.decode()))


def staged(base: str | None, cwd: Path | str | None = None) -> Staged:
    """What the index changes relative to `base` (a commit; None = nothing, for a first commit)."""
    args = ["diff", "--cached", "--raw", "--no-abbrev", "-z", "-M", "--no-ext-diff", "--no-textconv", "--ignore-submodules=none"]
    if base is not None:
        args.append(base)
    return _parse_raw(run(*args, cwd=cwd).stdout)


def numstat(base: str | None, cached: bool = True, cwd: Path | str | None = None) -> dict[str, tuple[int, int]]:
    """path -> (added, deleted) lines from `base` to the index; binary files count as (0, 0)."""
    args = ["diff", "--numstat", "-z", "-M", "--no-ext-diff", "--no-textconv"]
    if cached:
        args.append("--cached")
    if base is not None:
        args.append(base)
    return _parse_numstat(run(*args, cwd=cwd).stdout)


def diff_numstat(old: str, new: str, cwd: Path | str | None = None) -> dict[str, tuple[int, int]]:
    """path -> (added, deleted) lines between two commits; binary files count as (0, 0)."""
    return _parse_numstat(run("diff", "--numstat", "-z", "-M", "--no-ext-diff", "--no-textconv", old, new, cwd=cwd).stdout)


def _parse_numstat(data: bytes) -> dict[str, tuple[int, int]]:
    result: dict[str, tuple[int, int]] = {}
    fields = data.split(b"\0")
    i = 0
    while i < len(fields):
        head = fields[i]
        if not head:
            i += 1
            continue
        added, deleted, path = head.split(b"\t", 2)
        if path == b"":  # rename: old and new paths follow
            path = fields[i + 2]
            i += 3
        else:
            i += 1
        result[os.fsdecode(path)] = (int(added) if added != b"-" else 0, int(deleted) if deleted != b"-" else 0)
    return result


def object_sizes(shas: Iterable[str], cwd: Path | str | None = None) -> dict[str, int]:
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    data = run("cat-file", "--batch-check=%(objectname) %(objectsize)", cwd=cwd, stdin="\n".join(wanted).encode() + b"\n").stdout
    sizes: dict[str, int] = {}
    for line in data.decode().splitlines():
        sha, _, size = line.partition(" ")
        if size.isdigit():
            sizes[sha] = int(size)
    return sizes


_DEBUG_LINES = 5  # `ls-files --debug -z`: ctime, mtime, dev/ino, uid/gid, size/flags after each path
_DEBUG_ENTRY = rb"([^\0]*)\0  ctime: [^\n]*\n  mtime: [^\n]*\n  dev: [^\n]*\n  uid: [^\n]*\n  size: (\d+)\t[^\n]*\n"


def index_bytes(git_dir: Path | str) -> int:
    """Size of the index file git uses here (GIT_INDEX_FILE during `git commit <path>`)."""
    try:
        return os.stat(os.environ.get("GIT_INDEX_FILE") or os.path.join(git_dir, "index")).st_size
    except OSError:
        return 0


def start_index_listing(cwd: Path | str | None = None) -> Background:
    """`git ls-files --debug -z` (every index entry with its stat data), for `recorded_sizes`."""
    return Background(("ls-files", "--debug", "-z"), cwd)


def recorded_sizes(listing: Background, min_bytes: int) -> dict[str, int]:
    """path -> the file size the index recorded when it was staged, for the entries that recorded
    0 (none recorded, or smudged as racily clean: unknown) or at least about `min_bytes`; every
    other entry is smaller than `min_bytes`. One pass over the index instead of a stat per path;
    the index keeps the low 32 bits of a size."""
    data = listing.result()
    digits = len(str(min_bytes))  # sizes are found by their number of digits
    found: dict[str, int] = {}
    if data.count(b"\n") != _DEBUG_LINES * data.count(b"\0"):  # some path holds a newline: read every entry
        for path, size in re.findall(_DEBUG_ENTRY, data):
            if size == b"0" or len(size) >= digits:
                found[path.decode(_FS_ENCODING, _FS_ERRORS)] = int(size)
        return found
    for match in re.finditer(rb"\n  size: (0|[1-9]\d{%d,})\t" % (digits - 1), data):
        end = data.rfind(b"\0", 0, match.start())  # a path runs from the newline before it to its NUL
        found[data[data.rfind(b"\n", 0, end) + 1:end].decode(_FS_ENCODING, _FS_ERRORS)] = int(match.group(1))
    return found


def read_blobs(shas: Sequence[str], cwd: Path | str | None = None) -> dict[str, bytes]:
    """Contents of several blobs in one `cat-file --batch` process."""
    return read_objects(sorted(set(shas)), cwd)


def read_objects(names: Sequence[str], cwd: Path | str | None = None) -> dict[str, bytes]:
    """name -> content for object names (`<sha>`, `<commit>:<path>`) in one `cat-file --batch`;
    names that name nothing are left out."""
    wanted = list(dict.fromkeys(name for name in names if "\n" not in name))
    if not wanted:
        return {}
    data = run("cat-file", "--batch", cwd=cwd, stdin="\n".join(wanted).encode() + b"\n").stdout
    found: dict[str, bytes] = {}
    pos = 0
    for name in wanted:  # one answer per name, in order
        eol = data.index(b"\n", pos)
        header = data[pos:eol].decode().split(" ")
        pos = eol + 1
        if len(header) < 3:  # "<name> missing", "<name> ambiguous"
            continue
        size = int(header[2])
        found[name] = data[pos:pos + size]
        pos += size + 1
    return found


def show_file(commit: str, path: str, cwd: Path | str | None = None) -> bytes | None:
    """A file's content at a commit, or None when it is not there."""
    proc = run("cat-file", "blob", f"{commit}:{path}", cwd=cwd, check=False)
    return proc.stdout if proc.returncode == 0 else None


def index_file(path: str, cwd: Path | str | None = None) -> bytes | None:
    """A file's staged content, or None when it is not in the index."""
    proc = run("cat-file", "blob", f":{path}", cwd=cwd, check=False)
    return proc.stdout if proc.returncode == 0 else None


def config_get(key: str, cwd: Path | str | None = None) -> str | None:
    proc = run("config", "--get", key, cwd=cwd, check=False)
    return os.fsdecode(proc.stdout).strip() if proc.returncode == 0 else None


def git_path(name: str, cwd: Path | str | None = None) -> Path:
    """`git rev-parse --git-path NAME`, absolute (honours core.hooksPath and worktrees)."""
    path = Path(out("rev-parse", "--git-path", name, cwd=cwd))
    return path if path.is_absolute() else (Path(cwd or os.getcwd()) / path).resolve()


def check_ref_format(branch: str) -> bool:
    return run("check-ref-format", "--branch", branch, check=False).returncode == 0


def parents_and_message(commit: str, cwd: Path | str | None = None) -> tuple[list[str], str]:
    """The parent shas and the raw message of a commit (one `git cat-file commit`)."""
    data = os.fsdecode(run("cat-file", "commit", commit, cwd=cwd).stdout)
    header, _, message = data.partition("\n\n")
    parents = [line.split(" ", 1)[1] for line in header.splitlines() if line.startswith("parent ")]
    return parents, message


# --- history: `dlgit check`, pre-push and pre-receive ------------------------------------------


class LogCommit(NamedTuple):
    sha: str
    parents: tuple[str, ...]
    tree: str
    time: int  # committer time (seconds since the epoch)
    message: str
    entries: tuple[RawEntry, ...]  # the diff against the first parent (a root commit: every file)


_LOG_FORMAT = "%H%x00%P%x00%T%x00%ct%x00%B"
_HEADER_FIELDS = 5
_CHUNK = 1 << 20


def _popen(args: Sequence[str], cwd: Path | str | None, stdin: bool = False, env: dict[str, str] | None = None,
           stdout: int | BinaryIO = subprocess.PIPE, stderr: int | BinaryIO = subprocess.PIPE) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(["git", *args], cwd=cwd, env={**_env(), **(env or {})}, stdout=stdout, stderr=stderr,
                                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL)
    except FileNotFoundError:
        raise UsageError("git is not installed or not on PATH; dlgit needs git 2.38 or newer.") from None


def _finish(proc: subprocess.Popen[bytes], args: Sequence[str]) -> None:
    stderr = proc.stderr.read() if proc.stderr else b""
    if proc.wait() != 0:
        raise GitError(args, proc.returncode, os.fsdecode(stderr))


def iter_log(revs: Sequence[str], cwd: Path | str | None = None) -> Iterator[LogCommit]:
    """Every commit that `revs` (tips and ^exclusions) name, each with its raw diff against its first
    parent, streamed as git produces it from two `git log` passes running side by side: ordinary
    commits, and merges (whose first-parent diffs are the costly part). Order: as they come. The
    revisions go through stdin so that any number of exclusions fit. Replace refs are ignored:
    history is judged as it is stored."""
    if all(rev.startswith("^") for rev in revs):
        return  # no tip: `git log` would fall back to HEAD
    args = ("--no-replace-objects", "log", "--stdin", f"--format={_LOG_FORMAT}", "-z", "--raw", "--no-abbrev", "-M", "--root",
            "--reverse", "--no-show-signature", "--no-color")  # oldest first: a root commit's many files come early
    passes = [(*args, "--no-merges"), (*args, "--merges", "--diff-merges=first-parent")]
    procs = [_popen(pass_args, cwd, stdin=True, env={"GIT_FLUSH": "0"}) for pass_args in passes]  # big writes, not one per commit
    selector = selectors.DefaultSelector()
    for proc in procs:
        assert proc.stdin and proc.stdout
        proc.stdin.write("\n".join(revs).encode() + b"\n")
        proc.stdin.close()
        selector.register(proc.stdout, selectors.EVENT_READ, _LogParser())
    while selector.get_map():
        for key, _ in selector.select():
            chunk = os.read(key.fd, _CHUNK)
            if not chunk:
                selector.unregister(key.fileobj)
            yield from key.data.feed(chunk, final=not chunk)
    for proc, pass_args in zip(procs, passes, strict=True):
        _finish(proc, pass_args)


class _LogParser:
    """Fields of `git log -z --raw --format=%H%x00%P%x00%T%x00%B` -> LogCommits, fed in pieces: a
    commit is 4 header fields, then `:meta` fields each followed by its one or two paths. Fields
    that may belong to an unfinished entry or commit wait for the next piece."""

    def __init__(self) -> None:
        self.header: list[bytes] | None = None
        self.entries: list[RawEntry] = []
        self.rest: list[bytes] = []
        self.tail = b""  # an unfinished field

    def feed(self, chunk: bytes, final: bool = False) -> list[LogCommit]:
        """Parse the next piece of output (`final`: the last one)."""
        fields = (self.tail + chunk).split(b"\0")
        self.tail = fields.pop()  # after the last NUL: empty when the output so far ends a field
        if final and self.tail:
            fields.append(self.tail)
        return self.feed_fields(fields, final)

    def feed_fields(self, fields: list[bytes], final: bool = False) -> list[LogCommit]:
        fields = self.rest + fields if self.rest else fields
        done: list[LogCommit] = []
        i, n = 0, len(fields)
        while True:
            if self.header is None:
                if i + _HEADER_FIELDS > n:
                    break
                self.header, i = fields[i:i + _HEADER_FIELDS], i + _HEADER_FIELDS
            i, ended = self._entries(fields, i)
            if not (ended or final):
                break  # the commit may go on in the next piece
            done.append(self._commit())
            if i == n:
                break
        self.rest = fields[i:]
        return done

    def _entries(self, fields: list[bytes], i: int) -> tuple[int, bool]:
        """Consume entries from fields[i]; (next index, whether the next commit's header follows)."""
        n, append, zero = len(fields), self.entries.append, _ZERO_IDS
        while i < n:
            meta = fields[i]
            if meta[:1] != b":":
                if meta[:2] != b"\n:":
                    return i, True
                meta = meta[1:]
            if not meta[-1:].isalpha():  # R100, C75: two paths follow
                if i + 2 >= n:
                    break  # its paths are in the next piece
                append(_entry(meta.split(b" "), fields[i + 1:i + 3]))
                i += 3
                continue
            if i + 1 >= n:
                break
            old_id, new_id = _id_spans(len(meta))
            old, new = meta[old_id], meta[new_id]
            code = chr(meta[-1])
            append(_new_tuple(RawEntry, (code, fields[i + 1].decode(_FS_ENCODING, _FS_ERRORS), None,
                                         None if code == "D" or new in zero else new.decode(), None if old in zero else old.decode())))
            i += 2
        return i, False

    def _commit(self) -> LogCommit:
        assert self.header is not None
        sha, parents, tree, time, body = self.header
        commit = LogCommit(sha.decode(), tuple(parents.decode().split()), tree.decode(), int(time), body.decode("utf-8", "replace"),
                           tuple(self.entries))
        self.header, self.entries = None, []
        return commit


class Background:
    """`git ARGS` running while the caller works. Its output goes to anonymous files, not pipes,
    so nothing has to drain them meanwhile. `result()` waits for stdout; `cancel()` stops it."""

    def __init__(self, args: Sequence[str], cwd: Path | str | None = None) -> None:
        self.args = args
        self.stdout, self.stderr = _anonymous_file(), _anonymous_file()
        self.proc = _popen(args, cwd, stdout=self.stdout, stderr=self.stderr)

    def result(self) -> bytes:
        try:
            if self.proc.wait() != 0:
                raise GitError(self.args, self.proc.returncode, os.fsdecode(_read_all(self.stderr)))
            return _read_all(self.stdout)
        finally:
            self.cancel()

    def cancel(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stdout.close()
        self.stderr.close()


def _anonymous_file() -> BinaryIO:
    try:  # Linux: in memory, and no tempfile import on a hook's path
        return open(os.memfd_create("dlgit"), "w+b")
    except (AttributeError, OSError):  # elsewhere, or a kernel without memfd
        pass
    import tempfile

    return tempfile.TemporaryFile()


def _read_all(file: BinaryIO) -> bytes:
    file.seek(0)
    return file.read()


class ObjectSizes:
    """`git cat-file --batch-check` running alongside the caller: `add` object ids as they become
    known; a thread reads the answers (in the order asked) into `sizes` as they arrive, counting
    them in `answered`; `result()` waits for the rest. Missing objects get no size."""

    ARGS = ("cat-file", "--batch-check=%(objectname) %(objectsize)", "--buffer")

    def __init__(self, cwd: Path | str | None = None) -> None:
        self.proc = _popen(self.ARGS, cwd, stdin=True)
        self.sizes: dict[str, int] = {}
        self.seen: set[str] = set()
        self.requested = self.answered = 0
        assert self.proc.stdout
        self.reader = threading.Thread(target=self._drain, args=(self.proc.stdout.fileno(),), daemon=True)
        self.reader.start()

    def _drain(self, fd: int) -> None:
        rest = b""
        while chunk := os.read(fd, _CHUNK):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                sha, _, size = line.partition(b" ")
                if size.isdigit():
                    self.sizes[sha.decode()] = int(size)
            self.answered += len(lines)

    def add(self, ids: Iterable[str]) -> int:
        """Ask for these ids; return the `answered` count at which all of them are known."""
        new = [i for i in ids if i not in self.seen]
        if new:
            self.seen.update(new)
            self.requested += len(new)
            assert self.proc.stdin
            self.proc.stdin.write("\n".join(new).encode() + b"\n")
        return self.requested

    def result(self) -> dict[str, int]:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.reader.join()
        _finish(self.proc, self.ARGS)
        return self.sizes


def rev_parse_range(spec: str, cwd: Path | str | None = None) -> list[str] | None:
    """The revisions a range names (tips as shas, exclusions as ^sha); None when git cannot read it."""
    proc = run("rev-parse", "--end-of-options", spec, "--", cwd=cwd, check=False)
    if proc.returncode != 0:
        return None
    return [line for line in proc.stdout.decode().splitlines() if line and line not in ("--", "--end-of-options")]


def refs(*patterns: str, cwd: Path | str | None = None) -> list[tuple[str, str]]:
    """(refname, commit sha) for the refs under `patterns`; tags are peeled to their commit."""
    data = run("for-each-ref", "--format=%(refname)%00%(objectname)%00%(*objectname)", *patterns, cwd=cwd).stdout
    found = []
    for line in os.fsdecode(data).splitlines():
        name, sha, peeled = line.split("\0")
        found.append((name, peeled or sha))
    return found


def is_ancestor(ancestor: str, descendant: str, cwd: Path | str | None = None) -> bool:
    proc = run("merge-base", "--is-ancestor", ancestor, descendant, cwd=cwd, check=False)
    if proc.returncode > 1:
        raise GitError(("merge-base", "--is-ancestor", ancestor, descendant), proc.returncode, os.fsdecode(proc.stderr))
    return proc.returncode == 0


def resolve_commits(names: Iterable[str], cwd: Path | str | None = None) -> dict[str, str]:
    """name -> full commit sha for each name that names a commit (one `cat-file --batch-check`)."""
    wanted = [name for name in dict.fromkeys(names) if name and "\n" not in name]
    if not wanted:
        return {}
    data = run("cat-file", "--batch-check=%(objectname) %(objecttype)", cwd=cwd, stdin="\n".join(wanted).encode() + b"\n").stdout
    found = {}
    for name, line in zip(wanted, data.decode().splitlines(), strict=True):
        sha, _, kind = line.partition(" ")
        if kind == "commit":
            found[name] = sha
    return found


class MergeResult(NamedTuple):
    tree: str
    conflicted: tuple[str, ...]  # paths merge-tree could not merge cleanly


def merge_tree(ours: str, theirs: str, cwd: Path | str | None = None) -> MergeResult:
    """`git merge-tree --write-tree`: the tree a merge of two commits would record. On git 2.39 a
    bad revision also exits 1 (like a conflict): callers pass commits they have verified."""
    args = ("merge-tree", "--write-tree", "-z", "--name-only", "--no-messages", ours, theirs)
    proc = run(*args, cwd=cwd, check=False)
    fields = proc.stdout.split(b"\0")
    if proc.returncode > 1 or not fields[0]:
        raise GitError(args, proc.returncode, os.fsdecode(proc.stderr))
    conflicted = fields[1:fields.index(b"", 1)] if b"" in fields[1:] else fields[1:]
    return MergeResult(fields[0].decode(), tuple(os.fsdecode(path) for path in conflicted))


def unmerged_differences(parent: str, theirs: str, tree: str, cwd: Path | str | None = None) -> tuple[str, ...]:
    """Paths where `tree` differs from `merge-tree <parent> <theirs>`, other than those merge-tree
    reports as conflicted (a squash with hand-resolved conflicts may differ there)."""
    result = merge_tree(parent, theirs, cwd)
    if result.tree == tree:
        return ()
    conflicted = set(result.conflicted)
    return tuple(path for path in diff_tree_paths(result.tree, tree, cwd) if path not in conflicted)


def write_tree(cwd: Path | str | None = None) -> str:
    """The tree of the index (what the commit being made will record)."""
    return out("write-tree", cwd=cwd)


def diff_tree_paths(old: str, new: str, cwd: Path | str | None = None) -> list[str]:
    """Paths that differ between two trees (or commits), without rename detection."""
    return split_z(run("diff-tree", "-r", "-z", "--name-only", "--no-renames", old, new, cwd=cwd).stdout)


class MessageSettings(NamedTuple):
    comment: str  # what starts a comment line: '#' by default, several characters (git 2.45+) or 'auto'
    cleanup: str | None  # commit.cleanup, when set


def message_settings(cwd: Path | str | None = None) -> MessageSettings:
    """core.commentString or core.commentChar (whichever is set last) and commit.cleanup, in one call."""
    proc = run("config", "--get-regexp", r"^(core\.comment(char|string)|commit\.cleanup)$", cwd=cwd, check=False)
    comment, cleanup = "#", None
    for line in os.fsdecode(proc.stdout).splitlines():
        key, _, value = line.partition(" ")
        if key == "commit.cleanup":
            cleanup = value or None
        elif value:
            comment = value
    return MessageSettings(comment, cleanup)


# --- task runs and the task table (issue 10: `dlgit run`, `dlgit tasks`) ------------------------


def changed_paths(cwd: Path | str | None = None) -> list[str]:
    """Every path `git status` reports (staged, unstaged, untracked; both sides of a rename),
    relative to the top of the work tree. Optional locks off: a run must not contend with the
    user's git commands."""
    fields = run("--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all", cwd=cwd).stdout.split(b"\0")
    paths: list[str] = []
    i = 0
    while i < len(fields):
        field = fields[i]
        i += 1
        if len(field) < 4:
            continue
        paths.append(os.fsdecode(field[3:]))
        if b"R" in field[:2] or b"C" in field[:2]:  # a rename or copy: its source path follows
            paths.append(os.fsdecode(fields[i]))
            i += 1
    return paths


class BranchHead(NamedTuple):
    name: str  # short name (refs/heads/ removed)
    sha: str
    subject: str  # the tip commit's subject


def branch_heads(cwd: Path | str | None = None) -> list[BranchHead]:
    """Every local branch with its tip and the tip's subject (one `for-each-ref`)."""
    data = run("for-each-ref", "--format=%(refname)%00%(objectname)%00%(contents:subject)", "refs/heads", cwd=cwd).stdout
    heads = []
    for line in os.fsdecode(data).splitlines():
        name, sha, subject = line.split("\0", 2)
        heads.append(BranchHead(name.removeprefix("refs/heads/"), sha, subject))
    return heads


def merged_branches(target: str, cwd: Path | str | None = None) -> set[str]:
    """Local branches whose tip is reachable from `target` (empty when `target` does not exist)."""
    proc = run("for-each-ref", "--format=%(refname)", f"--merged={target}", "refs/heads", cwd=cwd, check=False)
    return {ref.removeprefix("refs/heads/") for ref in os.fsdecode(proc.stdout).splitlines()} if proc.returncode == 0 else set()


def worktree_branches(cwd: Path | str | None = None) -> dict[str, Path]:
    """branch -> the work tree it is checked out in (`git worktree list`, all worktrees)."""
    found: dict[str, Path] = {}
    path: str | None = None
    for field in split_z(run("worktree", "list", "--porcelain", "-z", cwd=cwd).stdout):
        key, _, value = field.partition(" ")
        if key == "worktree":
            path = value
        elif key == "branch" and path is not None:
            found[value.removeprefix("refs/heads/")] = Path(path)
    return found


class TreeEntry(NamedTuple):
    mode: str
    name: str
    sha: str

    @property
    def is_tree(self) -> bool:
        return self.mode == "40000"


class GitObject(NamedTuple):
    sha: str
    type: str  # blob, tree, commit, tag
    data: bytes

    def entries(self) -> list[TreeEntry]:
        """A tree's entries (`<mode> <name>\\0<binary id>` each); nothing for other objects."""
        if self.type != "tree":
            return []
        width = len(self.sha) // 2  # 20 bytes for SHA-1, 32 for SHA-256
        entries: list[TreeEntry] = []
        pos = 0
        while pos < len(self.data):
            nul = self.data.index(b"\0", pos)
            mode, _, name = self.data[pos:nul].partition(b" ")
            entries.append(TreeEntry(mode.decode(), os.fsdecode(name), self.data[nul + 1:nul + 1 + width].hex()))
            pos = nul + 1 + width
        return entries


def cat_objects(names: Sequence[str], cwd: Path | str | None = None) -> dict[str, GitObject]:
    """name -> the object (id, type, raw content) for object names (`<sha>`, `<rev>:<path>`) in one
    `cat-file --batch`; names that name nothing are left out. Like `read_objects`, with the type."""
    wanted = list(dict.fromkeys(name for name in names if "\n" not in name))
    if not wanted:
        return {}
    data = run("cat-file", "--batch", cwd=cwd, stdin="\n".join(wanted).encode() + b"\n").stdout
    found: dict[str, GitObject] = {}
    pos = 0
    for name in wanted:  # one answer per name, in order
        eol = data.index(b"\n", pos)
        header = data[pos:eol].decode().split(" ")
        pos = eol + 1
        if len(header) != 3 or not header[2].isdigit():  # "<name> missing", "<name> ambiguous" (a name may hold spaces)
            continue
        size = int(header[2])
        found[name] = GitObject(header[0], header[1], data[pos:pos + size])
        pos += size + 1
    return found
