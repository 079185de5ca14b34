"""Where a flow's progress lives: the run state of the unfinished flow, the last finished flow (for
`dlgit undo`) and an append-only log of every flow, written atomically (temp file, fsync, rename)
so that a crash at any moment leaves either the old or the new content, never half of it.

All of it is per repository (git's common dir), seen alike from every work tree: the branches a
flow moves are the repository's. One flow runs at a time: a flow holds `flow.lock` (an advisory
lock the kernel drops when its process ends, even by SIGKILL) from its precondition checks to the
end of the command, so two flows started at once never overwrite each other's state."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from dlgit.errors import UsageError
from dlgit.git import Git

STATE_DIR = "dlgit"
RUNNING = "flow.json"  # the flow under way (its remaining steps are its state)
LAST = "last-flow.json"  # the last finished flow, for `dlgit undo`
LOG = "flows.jsonl"  # one line per flow finished, aborted or undone
LOCK = "flow.lock"  # held by the process running a flow


def state_path(repo: Git, name: str) -> Path:
    return repo.common_dir / STATE_DIR / name


def unfinished(repo: Git) -> dict[str, Any] | None:
    """The flow under way in this repository, if any (started in any of its work trees)."""
    return read(state_path(repo, RUNNING))


_HELD: dict[Path, int] = {}  # lock file -> its open descriptor, kept until the process ends


def hold(repo: Git) -> None:
    """Take the repository's flow lock for the rest of this process (again: nothing to do);
    refused at once (exit 2) while another process holds it."""
    path = state_path(repo, LOCK)
    if path in _HELD:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise UsageError(f"cannot open {path}: {exc.strerror}.") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise UsageError(f"another dlgit flow is running in this repository right now (pid {holder}); "
                         "wait for it to end, then run this again.") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[path] = fd


def read(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}.") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise UsageError(f"{path} is damaged (not JSON); move it away to start afresh, after checking the branches it names.") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is damaged (not a JSON object); move it away to start afresh.")
    return data


def write(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` with `data` atomically; an error leaves the old file and no temp file."""
    text = json.dumps(data, indent=1, ensure_ascii=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}; nothing was changed by this step.") from None


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def append_log(repo: Git, entry: dict[str, Any]) -> None:
    path = state_path(repo, LOG)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as file:
            file.write(json.dumps(entry, ensure_ascii=False) + "\n")
            file.flush()
            os.fsync(file.fileno())
    except OSError as exc:
        raise UsageError(f"cannot append to {path}: {exc.strerror}.") from None


def read_log(repo: Git) -> list[dict[str, Any]]:
    try:
        lines = state_path(repo, LOG).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a crash
    return entries
