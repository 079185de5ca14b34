"""Sub-tasks in `dlgit tasks`: after a sweep task's row (which counts its sub-tasks: done, failed,
pending...), one row per sub-task, named `<task>/<id>`, its swept values as its params, its own
runs and metrics. The table reads each sub-task's folder as it reads a task folder (where the task
was read: its work tree, or a commit), in the same few `cat-file` rounds for every task; this
module says which folders, and turns what was read into rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlgit.config import Settings
from dlgit.git import Git
from dlgit.model import task_folder
from dlgit.tasks import sweep as sw

Listing = tuple[list[str], list[dict[str, str]]]  # the sub-task folders there, index.csv's rows


def folder_name(task: str, subtask_id: str) -> str:
    """A sub-task's folder as a name under the tasks folder (what the table's readers take)."""
    return f"{task}/{sw.SUBTASKS}/{subtask_id}"


def listings(repo: Git, sources: dict[str, Path | str], settings: Settings) -> dict[str, Listing]:
    """task -> its sub-task folders and index.csv rows, from its work tree (a Path) or a revision."""
    found: dict[str, Listing] = {}
    asked = {}
    for name, source in sources.items():
        folder = f"{task_folder(name, settings)}/{sw.SUBTASKS}"
        if isinstance(source, Path):
            root = source / folder
            ids = sorted(entry.name for entry in root.iterdir() if entry.is_dir() and not entry.is_symlink()) if root.is_dir() else []
            found[name] = (ids, sw.read_index(source / task_folder(name, settings)))
        else:
            asked[name] = (f"{source}:{folder}", f"{source}:{folder}/{sw.INDEX}")
    objects = repo.objects([path for pair in asked.values() for path in pair]) if asked else {}
    for name, (tree, index) in asked.items():
        ids = sorted(entry.name for entry in objects[tree].entries() if entry.is_tree) if tree in objects else []
        found[name] = (ids, sw.parse_index(objects[index].data if index in objects else None))
    return found


def expand(tasks: list[Any], configs: dict[str, bytes | None], listed: dict[str, Listing], read: dict[str, Any]) -> list[Any]:
    """The table's rows (TaskInfo) with each listed task's sub-task rows after it; `read`: the
    sub-task folders as the table read them (by `folder_name`)."""
    result = []
    for task in tasks:
        if task.name not in listed:
            result.append(task)
            continue
        rows = _rows(task, configs[task.name], *listed[task.name], read)
        tally = sw.counts({row.subtask: sw.State(row.state, None, None, None, None) for row in rows})
        state = "finished" if task.state == "open" and rows and tally.get(sw.DONE) == len(rows) else task.state
        result += [task._replace(state=state, subtasks=tally), *rows]
    return result


def _rows(task: Any, config: bytes | None, folders: list[str], index: list[dict[str, str]], read: dict[str, Any]) -> list[Any]:
    try:
        declared = sw.read((config or b"").decode("utf-8"), sw.known_from_index(index))
    except (sw.SweepError, UnicodeDecodeError):
        declared = None
    values = {subtask.id: dict(subtask.overrides) for subtask in declared.subtasks} if declared else {}
    rows = []
    for sid in dict.fromkeys([*values, *folders]):
        info = read.get(folder_name(task.name, sid))
        runs = info.runs if info else ()
        state = sw.state_of([{**run.record, "_stem": run.stem} for run in runs]).status
        rows.append(task._replace(name=f"{task.name}/{sid}", desc=f"{task.desc or task.name}/{sid}", state=state, holder=None,
                                  runs=runs, config=info.config if info else {}, params=values.get(sid, {}),
                                  metrics=info.metrics if info else {}, notes=info.notes if info else (), subtask=sid,
                                  subtasks=None))
    return rows
