"""Starting git processes: the environment they run in, errors, and processes that work alongside
the caller (their output in anonymous files, or read by a thread)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from dlgit.errors import UsageError

MIN_GIT_VERSION = (2, 38)  # merge-tree --write-tree
CHUNK = 1 << 20
_NO_GIT = "git is not installed or not on PATH; dlgit needs git 2.38 or newer."


class GitError(Exception):
    """A git command failed in a way the caller did not expect."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {stderr.strip()}")
        self.command = tuple(args)
        self.returncode = returncode
        self.stderr = stderr


# git reads attributes when it diffs and merges: merge drivers and `merge=union`, `-diff` and `binary`,
# textconv, eol and conflict-marker-size, from the work tree's and the index's .gitattributes, from
# core.attributesFile and from the system file. Judged content is read with none of them (git 2.39 has
# no --attr-source): as a bare repository reads it (`--git-dir`, no work tree, so no .gitattributes of
# the work tree or the index), no global or system attributes file, no renormalizing. What is left is
# $GIT_DIR/info/attributes: the repository owner's, like its config, never content a commit brings.
NO_ATTRIBUTES = ("-c", "core.bare=true", "-c", "core.attributesFile=/dev/null", "-c", "merge.renormalize=false")
NO_ATTRIBUTES_ENV: dict[str, str | None] = {"GIT_ATTR_NOSYSTEM": "1", "GIT_WORK_TREE": None}


def git_env(extra: dict[str, str | None] | None = None) -> dict[str, str]:
    """The environment git runs in; `extra` sets variables (None: removes one)."""
    env = dict(os.environ)
    # git hands hooks a GIT_INDEX_FILE relative to the repo root; pin it before any cwd change.
    index = env.get("GIT_INDEX_FILE")
    if index and not os.path.isabs(index):
        env["GIT_INDEX_FILE"] = os.path.abspath(index)
    env.setdefault("LC_ALL", "C")
    env["GIT_NO_REPLACE_OBJECTS"] = "1"  # history is judged as it is stored, never through refs/replace/
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run(args: Sequence[str], cwd: Path | str | None, stdin: bytes | None = None, check: bool = True,
        env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run `git ARGS` and return the completed process (stdout and stderr as bytes)."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, env=git_env(env), check=False)
    except FileNotFoundError:
        raise UsageError(_NO_GIT) from None
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, os.fsdecode(proc.stderr))
    return proc


def version() -> tuple[int, int]:
    text = os.fsdecode(run(["--version"], None).stdout)
    match = re.search(r"([0-9]+)\.([0-9]+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def require_version() -> None:
    found = version()
    if found < MIN_GIT_VERSION:
        need = ".".join(map(str, MIN_GIT_VERSION))
        raise UsageError(f"git {found[0]}.{found[1]} is too old; dlgit needs git {need} or newer.")


def popen(args: Sequence[str], cwd: Path | str | None, stdin: bool = False, env: dict[str, str | None] | None = None,
          stdout: int | BinaryIO = subprocess.PIPE, stderr: int | BinaryIO = subprocess.PIPE) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(["git", *args], cwd=cwd, env=git_env(env), stdout=stdout, stderr=stderr,
                                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL)
    except FileNotFoundError:
        raise UsageError(_NO_GIT) from None


def finish(proc: subprocess.Popen[bytes], args: Sequence[str]) -> None:
    stderr = proc.stderr.read() if proc.stderr else b""
    if proc.wait() != 0:
        raise GitError(args, proc.returncode, os.fsdecode(stderr))


class Background:
    """`git ARGS` running while the caller works (`stdin`: what it reads first). Its output goes to
    anonymous files, not pipes, so nothing has to drain them meanwhile. `result()` waits for
    stdout; `cancel()` stops it."""

    def __init__(self, args: Sequence[str], cwd: Path | str | None = None, stdin: bytes | None = None) -> None:
        self.args = args
        self.stdout, self.stderr = _anonymous_file(), _anonymous_file()
        self.proc = popen(args, cwd, stdin=stdin is not None, stdout=self.stdout, stderr=self.stderr)
        if stdin is not None:  # no deadlock: git reads all of it before it writes, and its output goes to files
            assert self.proc.stdin
            with contextlib.suppress(BrokenPipeError):  # git failed first: result() says why
                self.proc.stdin.write(stdin)
                self.proc.stdin.close()

    def result(self) -> bytes:
        try:
            if self.proc.wait() != 0:
                raise GitError(self.args, self.proc.returncode, os.fsdecode(_read_all(self.stderr)))
            return _read_all(self.stdout)
        finally:
            self.cancel()

    def cancel(self) -> None:
        _stop(self.proc)
        self.stdout.close()
        self.stderr.close()


class TooMuchWork(Exception):
    """A bounded git process met more than its limit of `marker` lines: it was stopped."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} > {limit}")
        self.count, self.limit = count, limit


class BoundedOutput:
    """`git ARGS` running alongside the caller, its stdout read by a thread that counts the lines
    starting with `marker` and stops git once they pass `limit`: the work it may cost is bounded.
    `spent` is counted in with the rest (what the caller already used of the same budget)."""

    def __init__(self, args: Sequence[str], cwd: Path | str | None, stdin: bytes, marker: bytes, limit: int,
                 env: dict[str, str | None] | None = None) -> None:
        self.args, self.limit, self.count = args, limit, 0
        self.stderr = _anonymous_file()
        self.proc = popen(args, cwd, stdin=True, env=env, stderr=self.stderr)
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._marker = b"\n" + marker
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        assert self.proc.stdin
        with contextlib.suppress(BrokenPipeError):  # git failed first, or was stopped: result() says why
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()

    def _read(self) -> None:
        assert self.proc.stdout
        tail, keep = b"\n", len(self._marker) - 1
        while chunk := self.proc.stdout.read(CHUNK // 4):
            self._chunks.append(chunk)
            with self._lock:
                self.count += (tail + chunk).count(self._marker)
            tail = (tail + chunk)[-keep:]
            if self.exhausted:
                self.proc.kill()
                break

    def spend(self, count: int) -> None:
        """Count work done elsewhere against the same budget; stop git when it is used up."""
        with self._lock:
            self.count += count
        if self.exhausted:
            self.proc.kill()

    @property
    def exhausted(self) -> bool:
        return self.count > self.limit

    def result(self) -> bytes:
        """git's output; TooMuchWork when the limit was passed."""
        try:
            self._reader.join()
            code = self.proc.wait()
            if self.exhausted:
                raise TooMuchWork(self.count, self.limit)
            if code != 0:
                raise GitError(self.args, code, os.fsdecode(_read_all(self.stderr)))
            return b"".join(self._chunks)
        finally:
            self.cancel()

    def cancel(self) -> None:
        _stop(self.proc)
        self._reader.join()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.stderr.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


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
        self.proc = popen(self.ARGS, cwd, stdin=True)
        self.sizes: dict[str, int] = {}
        self.seen: set[str] = set()
        self.requested = self.answered = 0
        assert self.proc.stdout
        self.reader = threading.Thread(target=self._drain, args=(self.proc.stdout.fileno(),), daemon=True)
        self.reader.start()

    def _drain(self, fd: int) -> None:
        rest = b""
        while chunk := os.read(fd, CHUNK):
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
        finish(self.proc, self.ARGS)
        return self.sizes
