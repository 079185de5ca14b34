"""The options of the git command running a hook. git tells its hooks nothing about them, so
they are read from the ancestor processes: /proc on Linux, one `ps` listing elsewhere; or, for
hooks called in dlgit's own process (`judging`), given by the caller."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Sequence
from itertools import takewhile

ANCESTORS = 6  # git -> pre-commit -> ... -> this hook: how far up to look
_JUDGED: list[bytes] | None = None  # argv of the git command the hooks judge in this process (see `judging`)


@contextlib.contextmanager
def judging(args: Sequence[str]) -> Iterator[None]:
    """Hooks called in this process for the `git ARGS` that the caller runs next itself (a flow's
    own commit, made with --no-verify) read that command's options, not their ancestors'."""
    global _JUDGED
    _JUDGED = [b"git", *(arg.encode() for arg in args)]
    try:
        yield
    finally:
        _JUDGED = None


def git_options() -> list[bytes] | None:
    """The arguments of the git command running this hook; None when no ancestor is git."""
    argv, _ = _git_ancestor()
    if argv is None:
        return None
    return argv[1:argv.index(b"--")] if b"--" in argv else argv[1:]


def under_git() -> bool:
    """Is a git process among this process's nearest ancestors, as for every hook git runs? False
    for `pre-commit run` or `dlgit hook ...` typed in a shell or a CI script. True when no ancestor
    could be read at all: the safe side for a caller that skips its checks without git."""
    argv, read = _git_ancestor()
    return argv is not None or not read


def _git_ancestor() -> tuple[list[bytes] | None, bool]:
    """(argv of the nearest git ancestor, or None; whether any ancestor could be read)."""
    if _JUDGED is not None:
        return _JUDGED, True
    ancestry = _proc_ancestry if os.path.isdir("/proc/self") else _ps_ancestry
    read = False
    for argv in ancestry(os.getppid()):
        read = True
        if argv and os.path.basename(argv[0]) in (b"git", b"git.exe"):
            return argv, True
    return None, read


def amending() -> bool:
    """Is the hook running for `git commit --amend`? git accepts unique abbreviations (`--amen`),
    and an alias (`git ci --amend`) keeps the option."""
    return any(len(arg) >= 4 and b"--amend".startswith(arg) for arg in git_options() or ())


def allows_empty_message() -> bool:
    """Is the hook running for `git commit --allow-empty-message` (or a unique abbreviation of it;
    `--allow-empty` is another option)?"""
    option = b"--allow-empty-message"
    return any(len(arg) > len(b"--allow-empty") and option.startswith(arg) for arg in git_options() or ())


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


def _options_before_free_text(argv: list[bytes]) -> list[bytes]:
    if b"commit" not in argv:
        return argv
    start = argv.index(b"commit") + 1
    return argv[:start] + list(takewhile(lambda word: word.startswith(b"-"), argv[start:]))


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
