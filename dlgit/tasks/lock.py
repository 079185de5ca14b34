"""One task run per machine (seed §7): a lock every `dlgit run` of this user takes, whatever the
repository or worktree.

The lock is an `flock` on `~/.cache/dlgit/run-<host>.lock`: the kernel drops it when its holder
ends, however it ends, so a lock is never held by a dead process (the script of a `dlgit run`
killed with SIGKILL goes on unlocked: the lock is not handed to scripts, whose forked helpers could
otherwise hold it for ever). The file also names the holder
(pid, host, branch, repository, worktree, start time) for the message a second run prints; a name
left in a file nobody holds is a stale lock, taken over with a warning. The path depends on HOME
and the host name only, not on session variables (XDG_RUNTIME_DIR is unset under some `sudo`,
`cron` or `tmux` sessions, which would otherwise see another lock); the host name in it keeps a
home shared over NFS from locking every machine at once.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import NamedTuple

from dlgit.errors import UsageError
from dlgit.shell import quote

RETRY_SECONDS = 1.0  # how long a lock whose holder is still writing its name may stay unnamed


class Holder(NamedTuple):
    """Who holds the lock: the `dlgit run` process and what it runs."""

    pid: int
    host: str
    branch: str
    repository: str  # the repository's common git dir: the same for all its worktrees
    worktree: str
    started: str  # UTC ISO time

    def describe(self) -> str:
        return (f"pid {self.pid} on {self.host}, branch {self.branch}, repository {quote(self.repository)}, "
                f"worktree {quote(self.worktree)}, started {self.started}")


def lock_path() -> Path:
    host = re.sub(r"[^A-Za-z0-9._-]", "_", host_name()) or "localhost"
    return Path.home() / ".cache" / "dlgit" / f"run-{host}.lock"


class RunLock:
    """The held lock; `release()` (or the end of the process) frees it."""

    def __init__(self, fd: int, holder: Holder) -> None:
        self.fd = fd
        self.holder = holder

    def release(self) -> None:
        if self.fd < 0:
            return
        os.ftruncate(self.fd, 0)  # no name left behind: the next run takes it silently
        os.close(self.fd)  # closing drops the flock
        self.fd = -1


def host_name() -> str:
    """This machine's name, as socket.gethostname() gives it (without importing socket: `dlgit tasks` asks)."""
    return os.uname().nodename


def acquire(holder: Holder) -> tuple[RunLock, Holder | None]:
    """Take the lock for `holder`; returns it and the stale holder it replaced (None when the lock was
    free). UsageError naming the holder when another run has it."""
    import fcntl

    from dlgit.tasks.jobs import under_scheduler

    if under_scheduler():  # the scheduler shares the node out: array elements on one node never wait for each other
        return RunLock(-1, holder), None
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            other = _read(fd)
            if (other is not None and _alive(other)) or time.monotonic() > deadline:
                os.close(fd)
                raise UsageError(_busy_message(other)) from None
            time.sleep(0.05)  # taken a moment ago, or probed by `active`: its holder shows soon
    stale = _read(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder._asdict()).encode() + b"\n", 0)
    return RunLock(fd, holder), stale


def _alive(holder: Holder) -> bool:
    """Whether the holder's process exists (on another host: assumed so)."""
    if holder.host != host_name():
        return True
    if holder.pid <= 0:
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _busy_message(other: Holder | None) -> str:
    who = other.describe() if other else "a process that has not yet written its name"
    return (f"another task is running on this machine ({who}). One task runs per machine at a time "
            f"(the lock {quote(str(lock_path()))} is held until that run ends); wait for it to finish or stop it, then run again.")


def _read(fd: int) -> Holder | None:
    try:
        data = json.loads(os.pread(fd, 65536, 0) or b"null")
        return Holder(**data) if isinstance(data, dict) else None
    except (ValueError, TypeError):
        return None


def active() -> Holder | None:
    """The run holding the lock now, or None when no run is active on this machine."""
    import fcntl

    try:
        fd = os.open(lock_path(), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd) or Holder(0, host_name(), "?", "?", "?", "?")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def run_active(branch: str, repository: Path | str) -> Holder | None:
    """The active run of `branch` in this repository (any of its worktrees), or None: what
    finish-task asks before it commits a task's results."""
    holder = active()
    if holder and holder.branch == branch and Path(holder.repository) == Path(repository).resolve():
        return holder
    return None
