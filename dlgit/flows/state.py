"""Where a flow's progress lives: the run state of the unfinished flow, the last finished flow (for
`dlgit undo`) and an append-only log of every flow, written atomically (temp file, fsync, rename)
so that a crash at any moment leaves either the old or the new content, never half of it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from dlgit.errors import UsageError
from dlgit.git import Git

STATE_DIR = "dlgit"
RUNNING = "flow.json"  # per work tree: the flow under way (its remaining steps are its state)
LAST = "last-flow.json"  # per work tree: the last finished flow, for `dlgit undo`
LOG = "flows.jsonl"  # shared by all work trees: one line per flow finished, aborted or undone


def state_path(repo: Git, name: str) -> Path:
    return repo.git_dir / STATE_DIR / name


def log_path(repo: Git) -> Path:
    return repo.common_dir / STATE_DIR / LOG


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
    path = log_path(repo)
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
        lines = log_path(repo).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a crash
    return entries
