"""The pure parsers of git's output, byte by byte: hand-written records, and real git output fed
in every split (one byte at a time included), renames and odd paths among them."""

from __future__ import annotations

import pytest
from conftest import Repo

from dlgit.git import Git
from dlgit.git.parse import (
    LOG_FORMAT,
    LogParser,
    PatchSizes,
    Sized,
    Staged,
    parse_index_sizes,
    parse_merge_tree,
    parse_objects,
    parse_raw,
)

A, B, Z = "a" * 40, "b" * 40, "0" * 40


def meta(old: str, new: str, status: str, old_mode: str = "100644", new_mode: str = "100644") -> bytes:
    return f":{old_mode} {new_mode} {old} {new} {status}".encode()


def raw(*records: tuple[bytes, ...]) -> bytes:
    return b"".join(b"\0".join(record) + b"\0" for record in records)


@pytest.mark.parametrize(("data", "expected"), [
    (b"", Staged([], [], [], [])),
    (raw((meta(Z, A, "A", "000000"), b"new file")), Staged(["A"], ["new file"], [None], [A])),
    (raw((meta(A, Z, "D", new_mode="000000"), b"gone")), Staged(["D"], ["gone"], [None], [None])),
    (raw((meta(A, B, "M"), b"a\nb"), (meta(Z, A, "A", "000000"), "é.txt".encode())),
     Staged(["M", "A"], ["a\nb", "é.txt"], [None, None], [B, A])),
    (raw((meta(A, A, "R100"), b"old name", b"new name"), (meta(A, B, "M"), b"x")),
     Staged(["R", "M"], ["new name", "x"], ["old name", None], [A, B])),
    (raw((meta(A, B, "C75"), b"src", b"copy")), Staged(["C"], ["copy"], ["src"], [B])),
])
def test_parse_raw(data: bytes, expected: Staged) -> None:
    assert parse_raw(data) == expected


def test_parse_raw_keeps_undecodable_bytes() -> None:
    parsed = parse_raw(raw((meta(Z, A, "A", "000000"), b"caf\xe9")))
    assert parsed.paths == ["caf\udce9"] and parsed.paths[0].encode("utf-8", "surrogateescape") == b"caf\xe9"


_PATCH = (b"diff --git a/a.py b/a.py\nindex 1..2 100644\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-old\n+new line\n"
          b"\\ No newline at end of file\n"
          b"diff --git a/old.py b/new.py\nsimilarity index 100%\nrename from old.py\nrename to new.py\n"
          b'diff --git "a/x\\ty" "b/x\\ty"\nnew file mode 100644\n--- /dev/null\n+++ "b/x\\ty"\n@@ -0,0 +1,2 @@\n+\0\x01\n+--- a\n')


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_patch_sizes_count_lines_and_bytes_of_every_file_as_text(chunk: int) -> None:
    counter = PatchSizes(10_000)
    for start in range(0, len(_PATCH), chunk):
        counter.feed(_PATCH[start:start + chunk])
    counter.feed(b"", final=True)
    assert counter.result() == (Sized("a.py", 2, 13), Sized("new.py", 0, 0), Sized("x\ty", 2, 9))


def test_patch_sizes_stop_once_past_the_limit() -> None:
    counter = PatchSizes(5)
    counter.feed(_PATCH)
    assert counter.over and counter.result() == (Sized("a.py", 2, 13),)


def test_parse_batch_leaves_missing_names_out() -> None:
    data = f"{A} blob 3\nabc\nnope missing\n{B} blob 0\n\n".encode()
    assert {name: obj.data for name, obj in parse_objects([A, "nope", B], data).items()} == {A: b"abc", B: b""}
    assert parse_objects([A], f"{A} tree 0\n\n".encode())[A].entries() == []


def test_parse_merge_tree() -> None:
    assert parse_merge_tree(b"") is None
    assert parse_merge_tree(A.encode() + b"\0") == (A, ())
    assert parse_merge_tree(A.encode() + b"\0a.txt\0b c\0\0") == (A, ("a.txt", "b c"))


def test_parse_index_sizes_by_digits_and_newlines() -> None:
    def entry(path: bytes, size: int) -> bytes:
        return path + b"\0  ctime: 1:0\n  mtime: 1:0\n  dev: 1\tino: 2\n  uid: 0\tgid: 0\n  size: %d\tflags: 0\n" % size

    plain = entry(b"small", 10) + entry(b"big", 2_000_000) + entry(b"unknown", 0)
    assert parse_index_sizes(plain, 1_000_000) == {"big": 2_000_000, "unknown": 0}
    odd = entry(b"two\nlines", 3_000_000) + entry(b"small", 5)
    assert parse_index_sizes(odd, 1_000_000) == {"two\nlines": 3_000_000}


# --- the log stream --------------------------------------------------------------------------------


@pytest.fixture
def log_bytes(repo: Repo) -> bytes:
    """Real `git log` output over commits with a rename, a deletion, odd paths, a merge and a long message."""
    repo.git("switch", "-q", "dev")
    repo.write("a file.txt", "one\n" * 50)
    repo.write("two\nlines.txt", "x\n")
    repo.commit("feat: odd paths", extra=("--no-verify",))
    repo.git("mv", "a file.txt", "renamed file.txt")
    repo.git("rm", "-q", "two\nlines.txt")
    repo.commit("refactor: rename\n\n" + "body line\n" * 2000, extra=("--no-verify",))
    repo.git("switch", "-q", "-c", "feature-x")
    repo.write("x.py")
    repo.commit("feat: x", extra=("--no-verify",))
    repo.git("switch", "-q", "dev")
    repo.git("merge", "-q", "--no-ff", "--no-verify", "-m", "Merge branch 'feature-x' into dev", "feature-x")
    return Git(repo.path).run("log", f"--format={LOG_FORMAT}", "-z", "--raw", "--no-abbrev", "-M", "--root",
                              "--diff-merges=first-parent", "dev").stdout


def _parse_in_pieces(data: bytes, size: int) -> list:
    parser = LogParser()
    commits = []
    for start in range(0, len(data), size):
        commits += parser.feed(data[start:start + size])
    return commits + parser.feed(b"", final=True)


def test_log_parser_reads_renames_deletions_and_merges(log_bytes: bytes) -> None:
    commits = _parse_in_pieces(log_bytes, len(log_bytes))
    by_subject = {c.message.partition("\n")[0]: c for c in commits}
    rename = by_subject["refactor: rename"]
    assert sorted(e[:3] for e in rename.entries) == [("D", "two\nlines.txt", None), ("R", "renamed file.txt", "a file.txt")]
    assert rename.message.count("body line") == 2000
    merge = by_subject["Merge branch 'feature-x' into dev"]
    assert len(merge.parents) == 2 and [e.path for e in merge.entries] == ["x.py"]
    assert by_subject["chore: initial layout"].parents == ()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 41, 64, 1000])
def test_log_parser_gives_the_same_commits_whatever_the_pieces(log_bytes: bytes, size: int) -> None:
    assert _parse_in_pieces(log_bytes, size) == _parse_in_pieces(log_bytes, len(log_bytes))


def test_log_parser_joins_a_long_field_once() -> None:
    """A message fed in many pieces without a NUL is kept as pieces, not re-joined per piece."""
    body = b"x" * 100_000
    header = b"\0".join([A.encode(), b"", B.encode(), b"1700000000", b"feat: big\n\n" + body]) + b"\0"
    parser = LogParser()
    for start in range(0, len(header), 1000):
        assert parser.feed(header[start:start + 1000]) == []
    [commit] = parser.feed(b"", final=True)
    assert commit.message.endswith("x" * 10) and len(commit.message) == len("feat: big\n\n") + len(body)
    assert commit.entries == ()


def test_patch_sizes_count_a_line_longer_than_any_chunk_as_it_comes() -> None:
    counter = PatchSizes(10 * PatchSizes.LONG)
    counter.feed(b"diff --git a/b.so b/b.so\n--- a/b.so\n+++ b/b.so\n@@ -0,0 +1 @@\n+")
    for _ in range(4):
        counter.feed(b"\0" * PatchSizes.LONG)
        assert len(counter.rest) <= PatchSizes.LONG + 1
    counter.feed(b"\ndiff --git a/c b/c\n--- a/c\n+++ b/c\n@@ -1 +1 @@\n-x\n", final=True)
    assert counter.result() == (Sized("b.so", 1, 4 * PatchSizes.LONG + 1), Sized("c", 1, 2))
