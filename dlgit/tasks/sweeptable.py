"""Sub-tasks in `dlgit tasks`: after a sweep task's row (which counts its sub-tasks: done, failed,
pending...), one row per sub-task, named `<task>/<id>`, its swept values as its params, its own
runs and metrics. Read where the task was read (its work tree, or a commit) by the table's own
readers: a sub-task's folder is read as a task folder is, in the same few `cat-file` rounds for
every task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlgit.config import Settings
from dlgit.git import Git
from dlgit.model import task_folder
from dlgit.tasks import sweep as sw
from dlgit.tasks import table


def expand(repo: Git, tasks: list[table.TaskInfo], files: dict[str, Any], where: dict[str, Path | str],
           settings: Settings) -> list[table.TaskInfo]:
    """The tasks with each sweep task's sub-task rows after it. `where`: name -> the work tree
    it was read from, or the revision."""
    sweeps = [task for task in tasks if sw.has_sweep(files[task.name].config)]
    if not sweeps:
        return tasks
    listed = _listings(repo, {task.name: where[task.name] for task in sweeps}, settings)
    sub_files: dict[str, Any] = {}
    on_disk = {f"{name}/{sw.SUBTASKS}/{sid}": root for name, (ids, _) in listed.items() if isinstance(root := where[name], Path)
               for sid in ids}
    for pseudo, root in on_disk.items():
        sub_files[pseudo] = table._read_disk(root, pseudo, settings)
    sub_files.update(table._read_commits(repo, {f"{name}/{sw.SUBTASKS}/{sid}": str(where[name]) for name, (ids, _) in listed.items()
                                                if not isinstance(where[name], Path) for sid in ids}, settings))
    result = []
    for task in tasks:
        if task.name not in listed:
            result.append(task)
            continue
        rows = _rows(task, files[task.name].config, *listed[task.name], sub_files, settings)
        tally = sw.counts({row.subtask or "": sw.State(row.state, None, None, None, None) for row in rows})
        state = "finished" if task.state == "open" and rows and tally.get(sw.DONE) == len(rows) else task.state
        result += [task._replace(state=state, subtasks=tally), *rows]
    return result


def _listings(repo: Git, sources: dict[str, Path | str], settings: Settings) -> dict[str, tuple[list[str], list[dict[str, str]]]]:
    """name -> (the sub-task folders there, index.csv's rows)."""
    found: dict[str, tuple[list[str], list[dict[str, str]]]] = {}
    asked = {}
    for name, source in sources.items():
        folder = f"{task_folder(name, settings)}/{sw.SUBTASKS}"
        if isinstance(source, Path):
            root = source / folder
            ids = sorted(entry.name for entry in root.iterdir() if entry.is_dir()) if root.is_dir() else []
            found[name] = (ids, sw.read_index(source / task_folder(name, settings)))
        else:
            asked[name] = (f"{source}:{folder}", f"{source}:{folder}/{sw.INDEX}")
    objects = repo.objects([path for pair in asked.values() for path in pair])
    for name, (tree, index) in asked.items():
        ids = sorted(entry.name for entry in objects[tree].entries() if entry.is_tree) if tree in objects else []
        found[name] = (ids, sw.parse_index(objects[index].data if index in objects else None))
    return found


def _rows(task: table.TaskInfo, config: bytes | None, folders: list[str], index: list[dict[str, str]], sub_files: dict[str, Any],
          settings: Settings) -> list[table.TaskInfo]:
    try:
        declared = sw.read((config or b"").decode("utf-8"), sw.known_from_index(index))
    except (sw.SweepError, UnicodeDecodeError):
        declared = None
    values = {subtask.id: dict(subtask.overrides) for subtask in declared.subtasks} if declared else {}
    ids = list(dict.fromkeys([*values, *folders]))
    rows = []
    for sid in ids:
        pseudo = f"{task.name}/{sw.SUBTASKS}/{sid}"
        files = sub_files.get(pseudo)
        info = table._task(pseudo, settings, files, None, False, False, False) if files else None
        runs = info.runs if info else ()
        state = sw.state_of([{**run.record, "_stem": run.stem} for run in runs]).status
        rows.append(task._replace(name=f"{task.name}/{sid}", desc=f"{task.desc or task.name}/{sid}", state=state, holder=None,
                                  runs=runs, config=info.config if info else {}, params=values.get(sid, {}),
                                  metrics=info.metrics if info else {}, subtask=sid, subtasks=None))
    return rows
