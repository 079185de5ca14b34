"""Pure parsers of git's output: raw diffs, the log stream, patch sizes, the index listing and
`cat-file --batch`. Bytes in, plain data out; no processes (tested byte by byte).

Paths are decoded as `os.fsdecode` does (surrogateescape), so spaces, newlines and non-UTF-8
bytes survive a round trip.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from typing import NamedTuple

_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()  # os.fsdecode, minus its checks
_ZERO_IDS = frozenset({b"0" * 40, b"0" * 64})
_new_tuple = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (a whole history has 100,000s)
_SINGLE_PATH_CODES = frozenset("AMDTUX")  # statuses with one path; R and C carry a score and two


def fsdecode(data: bytes) -> str:
    return data.decode(_FS_ENCODING, _FS_ERRORS)


def split_z(data: bytes) -> list[str]:
    return [fsdecode(part) for part in data.split(b"\0") if part]


class RawEntry(NamedTuple):  # a NamedTuple: `dlgit check` makes one per changed path of a whole history
    """One line of `git diff --raw`: a path changed between two trees."""

    status: str  # A, M, D, R, C, T
    path: str
    old_path: str | None
    new_blob: str | None  # None for deletions
    old_blob: str | None = None  # None for additions


class Staged(NamedTuple):
    """`git diff --cached --raw` as one list per field: a commit may stage 20,000 paths, and
    whole-list operations cost less than an object per path."""

    statuses: list[str]  # A, M, D, R, C, T, U
    paths: list[str]
    old_paths: list[str | None]  # renames and copies
    new_blobs: list[str | None]  # None for deletions


def id_spans(meta_length: int) -> tuple[slice, slice]:
    """Where the old and new object ids sit in a one-path `:mode mode old new X` field."""
    width = (meta_length - 18) // 2  # ':' mode ' ' mode ' ' old ' ' new ' ' X: 18 characters besides the ids
    return slice(15, 15 + width), slice(16 + width, 16 + 2 * width)


def parse_raw(data: bytes) -> Staged:
    """`diff --raw -z` output. Without renames or copies the fields alternate meta, path: no parse per record."""
    fields = fsdecode(data).split("\0")
    metas, paths = fields[0:-1:2], fields[1::2]
    codes = [meta[-1:] for meta in metas]
    if not _SINGLE_PATH_CODES.issuperset(codes):  # the first rename or copy shows: its score ends in a digit
        entries = [raw_entry(meta.split(b" "), moved) for meta, moved in _raw_records(data)]
        return Staged(*[list(column) for column in zip(*entries, strict=True)][:4])
    if not metas:
        return Staged([], [], [], [])
    new_id = id_spans(len(metas[0]))[1]
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


def raw_entry(meta: list[bytes], paths: list[bytes]) -> RawEntry:
    """A RawEntry from a split `:mode mode old new status` field and its one or two paths."""
    _, _, old_sha, new_sha, status = meta
    code = chr(status[0])
    path = fsdecode(paths[-1])
    old_path = fsdecode(paths[0]) if len(paths) == 2 else None
    new_blob = None if code == "D" or new_sha in _ZERO_IDS else new_sha.decode()
    return _new_tuple(RawEntry, (code, path, old_path, new_blob, None if old_sha in _ZERO_IDS else old_sha.decode()))


def mode_changes(data: bytes) -> set[str]:
    """`diff --raw -z` (one path, no renames), or `diff-tree --stdin` of it with each commit's id
    before its entries -> the commits ("" without ids) whose entry changes the file's mode."""
    found, commit, fields, i = set(), "", data.split(b"\0"), 0
    while i < len(fields):
        field = fields[i].strip(b"\n")
        if field.startswith(b":"):
            old_mode, new_mode = field[1:].split(b" ")[:2]
            if old_mode != new_mode:
                found.add(commit)
            i += 2
        else:
            commit = field.decode() if field else commit
            i += 1
    return found


_DEBUG_LINES = 5  # `ls-files --debug -z`: ctime, mtime, dev/ino, uid/gid, size/flags after each path
_DEBUG_ENTRY = rb"([^\0]*)\0  ctime: [^\n]*\n  mtime: [^\n]*\n  dev: [^\n]*\n  uid: [^\n]*\n  size: ([0-9]+)\t[^\n]*\n"


def parse_index_sizes(data: bytes, min_bytes: int) -> dict[str, int]:
    """`ls-files --debug -z` -> path: recorded size, for the entries that recorded 0 (none
    recorded, or smudged as racily clean: unknown) or at least about `min_bytes`; every other
    entry is smaller than `min_bytes`. Sizes are found by their number of digits."""
    digits = len(str(min_bytes))
    found: dict[str, int] = {}
    if data.count(b"\n") != _DEBUG_LINES * data.count(b"\0"):  # some path holds a newline: read every entry
        for path, size in re.findall(_DEBUG_ENTRY, data):
            if size == b"0" or len(size) >= digits:
                found[fsdecode(path)] = int(size)
        return found
    for match in re.finditer(rb"\n  size: (0|[1-9][0-9]{%d,})\t" % (digits - 1), data):
        end = data.rfind(b"\0", 0, match.start())  # a path runs from the newline before it to its NUL
        found[fsdecode(data[data.rfind(b"\n", 0, end) + 1:end])] = int(match.group(1))
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
            entries.append(TreeEntry(mode.decode(), fsdecode(name), self.data[nul + 1:nul + 1 + width].hex()))
            pos = nul + 1 + width
        return entries


def parse_objects(names: Sequence[str], data: bytes) -> dict[str, GitObject]:
    """`cat-file --batch` answers, one per name in order -> name: object (missing names left out)."""
    found: dict[str, GitObject] = {}
    pos = 0
    for name in names:
        eol = data.index(b"\n", pos)
        header = data[pos:eol].decode().split(" ")
        pos = eol + 1
        if len(header) != 3 or not header[2].isdigit():  # "<name> missing", "<name> ambiguous" (a name may hold spaces)
            continue
        size = int(header[2])
        found[name] = GitObject(header[0], header[1], data[pos:pos + size])
        pos += size + 1
    return found


class MergeResult(NamedTuple):
    tree: str
    conflicted: tuple[str, ...]  # paths merge-tree could not merge cleanly


def parse_merge_tree(data: bytes) -> MergeResult | None:
    """`merge-tree --write-tree -z --name-only --no-messages` output; None when it holds no tree."""
    fields = data.split(b"\0")
    if not fields[0]:
        return None
    conflicted = fields[1:fields.index(b"", 1)] if b"" in fields[1:] else fields[1:]
    return MergeResult(fields[0].decode(), tuple(fsdecode(path) for path in conflicted))


# --- the log stream: `dlgit check`, pre-push and pre-receive -------------------------------------


class LogCommit(NamedTuple):
    sha: str
    parents: tuple[str, ...]
    tree: str
    time: int  # committer time (seconds since the epoch)
    message: str
    entries: tuple[RawEntry, ...]  # the diff against the first parent (a root commit: every file)


LOG_FORMAT = "%H%x00%P%x00%T%x00%ct%x00%B"
_HEADER_FIELDS = 5


class LogParser:
    """Fields of `git log -z --raw --format=LOG_FORMAT` -> LogCommits, fed in pieces: a commit is
    5 header fields, then `:meta` fields each followed by its one or two paths. Fields that may
    belong to an unfinished entry or commit wait for the next piece; an unfinished field is kept
    as a list of pieces, joined once (a 50 MB message read in 1 MB chunks costs one join)."""

    def __init__(self) -> None:
        self.header: list[bytes] | None = None
        self.entries: list[RawEntry] = []
        self.rest: list[bytes] = []
        self.tail: list[bytes] = []  # the pieces of an unfinished field

    def feed(self, chunk: bytes, final: bool = False) -> list[LogCommit]:
        """Parse the next piece of output (`final`: the last one)."""
        if b"\0" not in chunk and not final:
            self.tail.append(chunk)
            return []
        fields = (b"".join(self.tail) + chunk if self.tail else chunk).split(b"\0")
        last = fields.pop()  # after the last NUL: empty when the output so far ends a field
        self.tail = [last] if last else []
        if final and last:
            fields.append(last)
            self.tail = []
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
                append(raw_entry(meta.split(b" "), fields[i + 1:i + 3]))
                i += 3
                continue
            if i + 1 >= n:
                break
            old_id, new_id = id_spans(len(meta))
            old, new = meta[old_id], meta[new_id]
            code = chr(meta[-1])
            append(_new_tuple(RawEntry, (code, fsdecode(fields[i + 1]), None,
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


# --- recomputed merges: `git log --remerge-diff` and `diff-tree -p <auto> <recorded>` ---------------

REMERGE_MARK = "\x01dlgit-merge "  # starts each commit of the remerge stream (--format); no patch line can
_C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


class FileDiff(NamedTuple):
    """What a patch shows for one path: a recorded tree against git's own merge of the same parents
    (conflict markers included)."""

    path: str
    conflicted: bool  # git's merge could not merge it cleanly
    binary: bool
    deleted: bool  # the recorded tree has no such path
    markers: bool  # git's merged file holds conflict markers
    added: int  # lines of the recorded file that are not in git's merge: found on neither side
    dropped: int  # lines of git's merge missing from the recorded file outside conflict blocks
    new_blob: str | None  # the recorded blob (from the `index` line), for binary files


UNEXPLAINED = {  # FileDiff problem -> how a report says it
    "changed-clean": "changed although git merges it cleanly",
    "new-content": "holds lines found on neither side",
    "dropped": "drops lines both sides agree on",
    "binary": "a binary found on neither side",
}


def problem(diff: FileDiff, sides: frozenset[str] = frozenset()) -> str | None:
    """Why a path of a recorded merge is not explained by its parents (a key of UNEXPLAINED), or
    None. A resolved conflict may keep lines of either side and drop lines inside conflict blocks:
    the recorded file is then a subsequence of git's marked-up file, which a minimal (Myers) diff
    shows as deletions only. `sides`: the parents' blobs at the path (for a binary conflict)."""
    if not diff.conflicted:
        return "changed-clean"
    if diff.binary:
        return None if diff.new_blob is None or diff.new_blob in sides else "binary"
    if diff.deleted and not diff.markers:
        return None  # modify/delete, rename/delete: deleting is one side
    if diff.added:
        return "new-content"
    return "dropped" if diff.dropped else None


def parse_patches(data: bytes, conflicted: frozenset[str] = frozenset(), wanted: set[str] | None = None) -> dict[str, list[FileDiff]]:
    """Patches -> commit (the text after REMERGE_MARK; "" without marks) -> the FileDiff of each path.
    `git log --remerge-diff` says which paths conflicted (`remerge CONFLICT`); for a plain
    `diff-tree -p` pass them as `conflicted`. `wanted`: only these commits are read."""
    mark = REMERGE_MARK.encode()
    if data.startswith(mark):  # one piece per commit: its mark line, then its patches
        pieces = [(header.decode().strip(), body) for header, _, body in
                  (piece.partition(b"\n") for piece in data[len(mark):].split(b"\n" + mark))]
    else:
        pieces = [("", data)]
    found: dict[str, list[FileDiff]] = {}
    for key, body in pieces:
        if (wanted is not None and key not in wanted) or not body.strip():
            continue
        reader, files = _PatchReader(conflicted), []
        for raw in body.split(b"\n"):
            reader.feed(fsdecode(raw), files)
        reader.finish(files)
        if files:
            found[key] = files
    return found


class _OpenFile:
    """A file's patch being read."""

    __slots__ = ("added", "binary", "conflicted", "deleted", "dropped", "hunk", "inside", "markers", "new_blob", "path")

    def __init__(self, path: str, conflicted: bool) -> None:
        self.path, self.conflicted = path, conflicted
        self.binary = self.deleted = self.markers = self.hunk = self.inside = False
        self.added = self.dropped = 0
        self.new_blob: str | None = None

    def header(self, line: str) -> None:
        if line.startswith("@@"):
            self.hunk = True
        elif line.startswith("remerge CONFLICT ("):
            self.conflicted = True
        elif line.startswith("Binary files "):
            self.binary = True
        elif line.startswith("deleted file mode"):
            self.deleted = True
        elif line.startswith("index "):
            self.new_blob = line.split()[1].partition("..")[2] or None

    def body(self, line: str) -> None:
        """A hunk line: markers open and close conflict blocks; what lies outside them must stay."""
        sign, text = line[:1], line[1:]
        if sign == "+":
            self.added += 1
        elif sign in ("-", " "):
            if not self.inside and text.startswith("<<<<<<<") and text[7:8] in ("", " ", "<"):
                self.inside = self.markers = True
            elif self.inside and text.startswith(">>>>>>>") and text[7:8] in ("", " ", ">"):
                self.inside = False
            elif sign == "-" and not self.inside:
                self.dropped += 1

    def done(self) -> FileDiff:
        return FileDiff(self.path, self.conflicted, self.binary, self.deleted, self.markers, self.added, self.dropped, self.new_blob)


class _PatchReader:
    """Line by line through one commit's patches, one file at a time."""

    def __init__(self, conflicted: frozenset[str]) -> None:
        self.conflicted = conflicted
        self.file: _OpenFile | None = None

    def feed(self, line: str, into: list[FileDiff]) -> None:
        if line.startswith("diff --git "):
            self.finish(into)
            path = diff_header_path(line[len("diff --git "):])
            self.file = _OpenFile(path, path in self.conflicted)
        elif self.file is not None:
            (self.file.body if self.file.hunk else self.file.header)(line)

    def finish(self, into: list[FileDiff]) -> None:
        if self.file is not None:
            into.append(self.file.done())
            self.file = None


def diff_header_path(rest: str) -> str:
    """The path of a `diff --git a/P b/P` line (without renames both sides are P), C-quoted or not."""
    if rest.startswith('"'):
        return fsdecode(c_unquote(rest)[2:])
    return rest[2:(len(rest) - 3) // 2 + 1] if len(rest) >= 7 else rest


def c_unquote(text: str) -> bytes:
    """The bytes of the C-quoted string `text` starts with, as git writes paths ("a\\tb", octal bytes)."""
    out = bytearray()
    i = 1
    while i < len(text) and text[i] != '"':
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in "01234567":
                out.append(int(text[i + 1:i + 4], 8) & 0xFF)
                i += 4
                continue
            out.append(_C_ESCAPES.get(nxt, ord(nxt) & 0xFF))
            i += 2
            continue
        out += ch.encode("utf-8", "surrogateescape")
        i += 1
    return bytes(out)


def parse_first_parents(data: bytes) -> list[tuple[str, str | None]]:
    """`rev-list --parents` lines -> (commit, its first parent or None)."""
    pairs: list[tuple[str, str | None]] = []
    for line in data.decode().split("\n"):
        if line:
            fields = line.split(" ", 2)
            pairs.append((fields[0], fields[1] if len(fields) > 1 else None))
    return pairs


class Sized(NamedTuple):
    """One path of a diff, measured: its added plus deleted lines, and their bytes."""

    path: str
    lines: int
    bytes: int = 0


class PatchSizes:
    """`diff -p -U0 -a -M100%` fed chunk by chunk -> a Sized per path. Every file is read as text
    (a binary's bytes count, whatever attributes say); an identical rename has no hunk and costs
    nothing; `over` turns true once the counted bytes pass `limit` (the caller stops reading)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.total, self.rest = limit, 0, b""
        self.paths: list[str] = []
        self.lines: list[int] = []
        self.sizes: list[int] = []
        self.hunk = False
        self.continuing = False  # the last content line was counted in part: what comes before a newline is its rest

    @property
    def over(self) -> bool:
        return self.total > self.limit

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if self.continuing:
            end = chunk.find(b"\n")
            self._count(len(chunk) if end < 0 else end)
            if end < 0:
                return
            self.continuing, chunk = False, chunk[end + 1:]
        lines = (self.rest + chunk).split(b"\n")
        self.rest = b"" if final else lines.pop()
        for line in lines:
            self._line(line)
            if self.over:
                return
        if self.hunk and len(self.rest) > self.LONG and self.rest[:1] in (b"+", b"-"):  # a megabyte line: count it as it comes
            self._line(self.rest)
            self.rest, self.continuing = b"", True

    LONG = 1 << 16

    def _count(self, size: int) -> None:
        self.sizes[-1] += size
        self.total += size

    def _line(self, line: bytes) -> None:
        if line.startswith(b"diff --git "):
            self.paths.append(diff_header_path(fsdecode(line[len(b"diff --git "):])))
            self.lines.append(0)
            self.sizes.append(0)
            self.hunk = False
        elif not self.paths:
            return
        elif line.startswith(b"@@"):
            self.hunk = True
        elif self.hunk and line[:1] in (b"+", b"-"):
            self.lines[-1] += 1
            self._count(len(line))  # the line without its sign, plus its newline
        elif not self.hunk and line.startswith(b"rename to "):
            text = fsdecode(line[len(b"rename to "):])
            self.paths[-1] = fsdecode(c_unquote(text)) if text.startswith('"') else text

    def result(self) -> tuple[Sized, ...]:
        return tuple(map(Sized, self.paths, self.lines, self.sizes))
