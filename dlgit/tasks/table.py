"""`dlgit tasks` and `dlgit tasks diff A B`: every experiment side by side, as `dvc exp show` does,
from plain branches and folders.

A task is a task branch (a local ref) or a task folder on the current branch (a merged task whose
branch is gone). Its files are read where they are newest: from the work tree of the worktree that
has its branch checked out (a run's records are not committed until finish-task), else from the
branch's tip, else from HEAD — through `git cat-file --batch`, never by checking out. The whole
table costs a handful of git processes, however many tasks there are.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import stat
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from dlgit import config, safeyaml
from dlgit.config import Settings
from dlgit.errors import UsageError
from dlgit.git import Git, GitObject
from dlgit.model import Kind, parse_branch, task_folder
from dlgit.shell import escape, quote
from dlgit.tasks import jobs, lock

RESULTS_SUBJECT = "task: results"  # how finish-task's results commit begins
RECORD_SUFFIX = ".yaml"
NOT_RECORDS = (".config.yaml",)  # the effective config of a --debug run sits beside the records
_STEM = re.compile(r"([0-9]{8}T[0-9]{6})(?:-([0-9]+))?")
SYMLINK = "120000"  # a tree entry's mode for a symbolic link
MISSING = "—"  # a key one side of a diff does not have
METRICS_BYTES = 8 * 1024 * 1024  # a metrics file read at most (JSON parses this in well under a second)


class Run(NamedTuple):
    stem: str
    record: dict[str, Any]


class TaskInfo(NamedTuple):
    name: str
    version: str | None
    time: str | None
    desc: str | None
    state: str  # open, running, finished, merged
    branch: bool  # a local branch holds it (else: only a folder on the current branch)
    holder: lock.Holder | None  # the run holding the machine's lock, when it is this task's
    runs: tuple[Run, ...]  # oldest first
    config: dict[str, Any]  # the task's config.yaml, flattened (dotted keys)
    params: dict[str, Any]  # the config values that differ from the template's
    metrics: dict[str, Any]  # the metrics file, flattened
    subtask: str | None = None  # a sub-task's row (`<task>/<id>`): its id
    subtasks: dict[str, int] | None = None  # a sweep task's row: status -> how many of its sub-tasks have it
    notes: tuple[str, ...] = ()  # files of the task that were not read (too big, too deep, malformed, a symlink out)

    @property
    def task(self) -> str:
        """The task a row belongs to: its own name, or a sub-task's task."""
        return self.name.removesuffix(f"/{self.subtask}") if self.subtask else self.name

    @property
    def last(self) -> Run | None:
        return self.runs[-1] if self.runs else None


class _Files(NamedTuple):
    """What one task's folder holds, wherever it was read from."""

    config: bytes | None
    template: bytes | None
    records: dict[str, bytes]  # stem -> run record
    metrics: tuple[str, bytes] | None  # (file name, content) of the first metrics file found
    notes: tuple[str, ...] = ()  # files that were not read, and why


# --- reading -------------------------------------------------------------------------------------


def collect(cwd: Path | str | None = None, repo: Git | None = None) -> list[TaskInfo]:
    """Every task, oldest first (of `repo`, else of the repository at `cwd`)."""
    repo = repo or Git.open(cwd)
    info = repo.info
    settings = config.load(info.toplevel)
    heads = {head.name: head for head in repo.branch_heads() if parse_branch(head.name, settings).kind is Kind.TASK}
    merged = repo.merged_branches(f"refs/heads/{settings.main}")
    checked_out = repo.worktrees() if info.toplevel is not None else {}
    folders = _task_folders(repo, ["HEAD", f"refs/heads/{settings.main}"], settings)
    names = sorted(set(heads) | folders["HEAD"], key=lambda name: (parse_branch(name, settings).time or "", name))
    disk = {name: checked_out[name] for name in names if name in checked_out}
    files = {name: _read_disk(root, name, settings) for name, root in disk.items()}
    files.update(_read_commits(repo, {name: heads[name].sha if name in heads else "HEAD" for name in names if name not in disk},
                               settings))
    holder = lock.active()
    tasks = []
    for name in names:
        own_holder = holder if holder and holder.branch == name and Path(holder.repository) == info.common_dir else None
        head = heads.get(name)
        is_merged = name in merged if head else name in folders[f"refs/heads/{settings.main}"]
        tasks.append(_task(name, settings, files[name], own_holder, head is not None, is_merged,
                           head is not None and head.subject.startswith(RESULTS_SUBJECT)))
    return _with_subtasks(repo, tasks, files, {name: disk.get(name) or (heads[name].sha if name in heads else "HEAD") for name in names},
                          settings)


def _with_subtasks(repo: Git, tasks: list[TaskInfo], files: dict[str, _Files], where: dict[str, Path | str],
                   settings: Settings) -> list[TaskInfo]:
    """Each sweep task followed by its sub-tasks' rows (`dlgit.tasks.sweeptable`), their folders
    read as task folders are, where their task was read."""
    from dlgit.tasks import sweeptable
    from dlgit.tasks.sweep import has_sweep

    listed = sweeptable.listings(repo, {task.name: where[task.name] for task in tasks if has_sweep(files[task.name].config)}, settings)
    if not listed:
        return tasks
    folders = {sweeptable.folder_name(name, sid): where[name] for name, (ids, _) in listed.items() for sid in ids}
    found = {name: _read_disk(root, name, settings) for name, root in folders.items() if isinstance(root, Path)}
    found.update(_read_commits(repo, {name: rev for name, rev in folders.items() if not isinstance(rev, Path)}, settings))
    read = {name: _task(name, settings, data, None, False, False, False) for name, data in found.items()}
    return sweeptable.expand(tasks, {task.name: files[task.name].config for task in tasks}, listed, read)


def _task_folders(repo: Git, revs: list[str], settings: Settings) -> dict[str, set[str]]:
    """rev -> the task folders (named like task branches) under the tasks folder of that commit."""
    trees = repo.objects([f"{rev}:{settings.tasks_dir}" for rev in revs])
    empty = GitObject("", "none", b"")
    return {rev: {entry.name for entry in trees.get(f"{rev}:{settings.tasks_dir}", empty).entries()
                  if entry.is_tree and parse_branch(entry.name, settings).kind is Kind.TASK} for rev in revs}


def _read_disk(root: Path, name: str, settings: Settings) -> _Files:
    """The task's files in a work tree, each read only when it lies inside the task folder (a
    symlink out of it is a note, never followed) and within the size limit."""
    folder = root / task_folder(name, settings)
    notes: list[str] = []
    if not _inside(folder, root, notes):
        return _Files(None, _read_file(root / settings.template_config), {}, None, tuple(notes))
    runs = folder / "runs"
    names = sorted(path.name for path in runs.iterdir()) if _inside(runs, folder, notes) and runs.is_dir() else []
    records = {filename[:-len(RECORD_SUFFIX)]: data for filename in names if _is_record(filename)
               if (data := _read_bounded(runs / filename, folder, notes)) is not None}
    metrics = next(((metric, data) for metric in settings.task_metrics
                    if (data := _read_bounded(folder / metric, folder, notes, METRICS_BYTES)) is not None), None)
    return _Files(_read_bounded(folder / "config.yaml", folder, notes), _read_file(root / settings.template_config), records,
                  metrics, tuple(notes))


def _inside(path: Path, folder: Path, notes: list[str]) -> bool:
    """Whether `path`, symlinks resolved, stays inside the task folder (a note when it does not);
    resolved only when a symlink lies on the way (an lstat a step, not a realpath of both)."""
    if not _link_on_the_way(path, folder):
        return True
    try:
        inside = path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    if not inside:
        notes.append(f"{path.relative_to(folder).as_posix() if path != folder else path.name}: a symlink out of the task folder, not read")
    return inside


def _link_on_the_way(path: Path, folder: Path) -> bool:
    """Whether `path` is not plainly below `folder`: a `..` or a symlink on the way (True), or
    folders and a file that are no links, or do not exist (False)."""
    try:
        steps = path.relative_to(folder).parts
    except ValueError:
        return True
    if ".." in steps:
        return True
    current = folder
    for step in steps:
        current = current / step
        try:
            if stat.S_ISLNK(os.lstat(current).st_mode):
                return True
        except FileNotFoundError:
            return False
        except OSError:
            return True
    return False


def _read_bounded(path: Path, folder: Path, notes: list[str], limit: int = safeyaml.MAX_BYTES) -> bytes | None:
    """A regular file's bytes inside the task folder, at most `limit` of them (a note otherwise)."""
    if not (path.exists() or path.is_symlink()) or not _inside(path, folder, notes):
        return None
    shown = path.relative_to(folder).as_posix()
    try:
        with open(path, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                notes.append(f"{shown}: not a regular file, not read")
                return None
            data = file.read(limit + 1)
    except OSError as exc:
        notes.append(f"{shown}: cannot be read ({exc.strerror})")
        return None
    return _within(shown, data, limit, notes)


def _within(shown: str, data: bytes, limit: int, notes: list[str]) -> bytes | None:
    """The data when it is within the limit; None, and a note, otherwise."""
    if len(data) > limit:
        notes.append(f"{shown}: larger than {limit:,} bytes, not read")
        return None
    return data


def _read_file(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read(safeyaml.MAX_BYTES + 1)  # a bigger one is refused by the loader
    except OSError:
        return None


def _is_record(filename: str) -> bool:
    return filename.endswith(RECORD_SUFFIX) and not filename.endswith(NOT_RECORDS) and not filename.startswith(".")


def _read_commits(repo: Git, revs: dict[str, str], settings: Settings) -> dict[str, _Files]:
    """name -> its folder's files at a commit: two `cat-file --batch` rounds for all of them (the
    folder's and the runs folder's listings with the files, then the run records). A symlink
    committed in place of a file is a note (its target is never read)."""
    def paths(name: str, rev: str) -> dict[str, str]:
        folder = task_folder(name, settings)
        wanted = {"folder": f"{rev}:{folder}", "config": f"{rev}:{folder}/config.yaml", "template": f"{rev}:{settings.template_config}",
                  "runs": f"{rev}:{folder}/runs"}
        wanted.update({f"metrics:{metric}": f"{rev}:{folder}/{metric}" for metric in settings.task_metrics})
        return wanted

    asked = {name: paths(name, rev) for name, rev in revs.items()}
    found = repo.objects([path for wanted in asked.values() for path in wanted.values()])
    blob = {name: obj.data for name, obj in found.items() if obj.type == "blob"}
    listings = {name: found[wanted["runs"]].entries() if wanted["runs"] in found else [] for name, wanted in asked.items()}
    wanted_records = [entry.sha for entries in listings.values() for entry in entries if _is_record(entry.name) and entry.mode != SYMLINK]
    blobs = repo.read_blobs(wanted_records)
    files = {}
    for name, wanted in asked.items():
        notes: list[str] = []
        links = {entry.name for entry in found[wanted["folder"]].entries() if entry.mode == SYMLINK} if wanted["folder"] in found else set()

        def bounded(filename: str, data: bytes | None, limit: int = safeyaml.MAX_BYTES, links: set[str] = links,
                    notes: list[str] = notes) -> bytes | None:
            if data is None:
                return None
            if filename in links:
                notes.append(f"{filename}: a symlink, not followed")
                return None
            return _within(filename, data, limit, notes)

        records = {}
        for entry in listings[name]:
            if _is_record(entry.name) and entry.mode == SYMLINK:
                notes.append(f"runs/{entry.name}: a symlink, not followed")
            elif _is_record(entry.name) and (data := bounded(f"runs/{entry.name}", blobs.get(entry.sha))) is not None:
                records[entry.name[:-len(RECORD_SUFFIX)]] = data
        metrics = next(((metric, data) for metric in settings.task_metrics
                        if (data := bounded(metric, blob.get(wanted[f"metrics:{metric}"]), METRICS_BYTES)) is not None), None)
        files[name] = _Files(bounded("config.yaml", blob.get(wanted["config"])), blob.get(wanted["template"]), records, metrics,
                             tuple(notes))
    return files


def _task(name: str, settings: Settings, files: _Files, holder: lock.Holder | None, has_branch: bool, merged: bool,
          results_committed: bool) -> TaskInfo:
    branch = parse_branch(name, settings)
    notes = list(files.notes)
    loaded = ((stem, _load(f"runs/{stem}{RECORD_SUFFIX}", data, notes)) for stem, data in files.records.items())
    runs = tuple(Run(stem, record) for stem, record in sorted(loaded, key=lambda item: _run_order(item[0])) if isinstance(record, dict))
    task_config = flatten(_load("config.yaml", files.config, notes))
    template = _template(settings.template_config, files.template)
    params = {key: value for key, value in task_config.items() if key not in template or template[key] != value}
    metrics = flatten(_load(*files.metrics, notes)) if files.metrics else {}
    if holder:
        state = "running"
    elif merged:
        state = "merged"
    elif results_committed or any(run.record.get("exit_code") == 0 and not run.record.get("interrupted") for run in runs):
        state = "finished"
    else:
        state = "open"
    return TaskInfo(name, branch.version, branch.time, branch.desc, state, has_branch, holder, runs, task_config, params, metrics,
                    notes=tuple(notes))


@functools.lru_cache(maxsize=4)
def _template(filename: str, data: bytes | None) -> dict[str, Any]:
    """The template's config, flattened: parsed once for every row (sub-tasks share one), read only."""
    return flatten(_load(filename, data, []))


def _run_order(stem: str) -> tuple[str, int]:
    match = _STEM.fullmatch(stem)
    return (match[1], int(match[2] or 0)) if match else (stem, 0)


def _load(filename: str, data: bytes | None, notes: list[str]) -> Any:
    """A task file's data through the bounded loaders (JSON for `.json`, YAML otherwise); None,
    and a note, when it is malformed or over a limit."""
    import yaml

    if data is None:
        return None
    try:
        if filename.endswith(".json"):
            return safeyaml.load_json(data, max_bytes=METRICS_BYTES)
        return safeyaml.load(data)
    except safeyaml.YamlLimitError as exc:
        notes.append(f"{filename}: not read ({exc})")
    except (yaml.YAMLError, ValueError) as exc:
        notes.append(f"{filename}: malformed ({' '.join(str(exc).split())[:120]})")
    return None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one mapping with dotted keys: {"optimizer": {"lr": 0.1}} -> {"optimizer.lr": 0.1}.
    Anything but a mapping at the top flattens to nothing."""
    if not isinstance(value, dict):
        return {}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        dotted = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            flat.update(flatten(item, dotted + "."))
        else:
            flat[dotted] = item
    return flat


# --- output --------------------------------------------------------------------------------------


def show(output_format: str = "table", cwd: Path | str | None = None) -> int:
    """`dlgit tasks`."""
    repo = Git.open(cwd)
    tasks = collect(repo=repo)
    submitted = jobs.by_task(repo.info.common_dir)  # one scheduler query for every submitted job
    if output_format == "json":
        print(json.dumps([{**_as_json(task), "jobs": [job.as_json() for job in submitted.get(task.name, [])]} for task in tasks],
                         indent=2, default=str, ensure_ascii=False))
    elif output_format == "csv":
        print(_as_csv(tasks), end="")
    elif not tasks:
        print("no tasks yet: start one with `dlgit start-task [DESC]`.")
    else:
        noted = any(task.notes for task in tasks)
        header = ("TASK", "VERSION", "CREATED", "STATE", "EXIT", "TOOK", "PARAMS", "METRICS", *(("NOTES",) if noted else ()))
        rows = [(f"  {task.subtask}" if task.subtask else task.desc or task.name, task.version or "", _created(task.time),
                 jobs.summary(submitted[task.name]) if task.name in submitted else _state_text(task), _exit_text(task),
                 _duration(task.last.record.get("duration_s")) if task.last else "", _pairs(task.params), _pairs(task.metrics),
                 *(("; ".join(task.notes),) if noted else ()))
                for task in tasks]
        print(render(header, rows, flexible=(0, 6, 7, 8) if noted else (0, 6, 7)))
    return 0


def _as_json(task: TaskInfo) -> dict[str, Any]:
    last = task.last
    return {
        "name": task.name, "task": task.task, "subtask": task.subtask, "subtasks": task.subtasks,
        "version": task.version, "time": task.time, "desc": task.desc, "state": task.state,
        "branch": task.branch, "holder": task.holder._asdict() if task.holder else None, "runs": len(task.runs),
        "last_run": {"record": f"runs/{last.stem}{RECORD_SUFFIX}", **{key: last.record.get(key) for key in
                     ("state", "exit_code", "duration_s", "start", "end", "interrupted", "signal", "commit")}} if last else None,
        "params": task.params, "metrics": task.metrics, "notes": list(task.notes),
    }


def _as_csv(tasks: list[TaskInfo]) -> str:
    param_keys = sorted({key for task in tasks for key in task.params})
    metric_keys = sorted({key for task in tasks for key in task.metrics})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "task", "subtask", "version", "time", "desc", "state", "runs", "last_exit_code", "last_duration_s",
                     *(f"params.{key}" for key in param_keys), *(f"metrics.{key}" for key in metric_keys), "notes"])
    for task in tasks:
        last = task.last.record if task.last else {}
        writer.writerow([task.name, task.task, task.subtask or "", task.version, task.time, task.desc, task.state, len(task.runs),
                         _csv_value(last.get("exit_code")), _csv_value(last.get("duration_s")),
                         *(_csv_value(task.params.get(key)) for key in param_keys),
                         *(_csv_value(task.metrics.get(key)) for key in metric_keys), "; ".join(task.notes)])
    return out.getvalue()


def _csv_value(value: Any) -> str:
    return "" if value is None else _scalar(value)


def _scalar(value: Any) -> str:
    """A value as YAML would write it on one line (true, null, 0.01, [1, 2])."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value, default=str, ensure_ascii=False)


def _pairs(values: dict[str, Any]) -> str:
    return " ".join(f"{key}={_shown(value)}" for key, value in values.items())


def _shown(value: Any) -> str:
    """A value for the table: floats to 4 significant digits (json and csv keep them whole)."""
    return f"{value:.4g}" if isinstance(value, float) else _scalar(value)


def _created(stamp: str | None) -> str:
    return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]} {stamp[9:11]}:{stamp[11:13]}" if stamp else ""


def _state_text(task: TaskInfo) -> str:
    if task.holder:
        return f"running (pid {task.holder.pid})"
    return f"{task.state} ({', '.join(f'{n} {status}' for status, n in sorted(task.subtasks.items()))})" if task.subtasks else task.state


def _exit_text(task: TaskInfo) -> str:
    if not task.last:
        return ""
    record = task.last.record
    if record.get("state") == "running" and not task.holder:
        return "?"  # dlgit itself ended before the run did
    if record.get("interrupted"):
        return "int"
    return "" if record.get("exit_code") is None else str(record["exit_code"])


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def render(header: Iterable[str], rows: list[tuple[str, ...]], flexible: tuple[int, ...], width: int | None = None) -> str:
    """Rows as aligned columns that fit the terminal: the flexible columns give up width (their
    values cut with '…'), the widest first, down to 8 characters; on a terminal narrower still, the
    lines are cut at its edge (a wrapped table is no table)."""
    cells = [[escape(cell) for cell in row] for row in [tuple(header), *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    total = width or _terminal_width()
    room = total - 2 * (len(widths) - 1)
    while sum(widths) > room:
        widest = max(flexible, key=lambda i: widths[i])
        if widths[widest] <= 8:
            break
        widths[widest] -= 1
    lines = ["  ".join(_cut(cell, widths[i]).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    return "\n".join(_cut(line, total) for line in lines)


def _terminal_width() -> int:
    """The terminal's width ($COLUMNS first); no limit when the output goes to a file or a pipe."""
    import shutil

    if os.environ.get("COLUMNS", "").isdigit() or sys.stdout.isatty():
        return shutil.get_terminal_size((120, 24)).columns
    return sys.maxsize // 4


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


# --- tasks diff ----------------------------------------------------------------------------------


def find(tasks: list[TaskInfo], query: str) -> TaskInfo:
    """A task by its name or a unique end of it (its desc, or time and desc)."""
    for task in tasks:
        if task.name == query:
            return task
    matches = [task for task in tasks if task.name.endswith(query)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"{quote(query)} is the end of several tasks' names ({', '.join(t.name for t in matches)}); "
                         "give more of the name.")
    known = ", ".join(task.name for task in tasks[-10:]) or "none yet"
    raise UsageError(f"no task is named or ends in {quote(query)} (tasks: {known}); see `dlgit tasks`.")


def differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """key -> {"a": value, "b": value} where they differ; a side without the key has no entry."""
    keys = list(dict.fromkeys([*a, *b]))
    return {key: {side: values[key] for side, values in (("a", a), ("b", b)) if key in values}
            for key in keys if key not in a or key not in b or a[key] != b[key]}


def diff(query_a: str, query_b: str, output_format: str = "table", cwd: Path | str | None = None) -> int:
    """`dlgit tasks diff A B`: the config and metrics values that differ between two tasks."""
    tasks = collect(cwd)
    a, b = find(tasks, query_a), find(tasks, query_b)
    sections = {"config": differences(a.config, b.config), "metrics": differences(a.metrics, b.metrics)}
    if output_format == "json":
        print(json.dumps({"a": a.name, "b": b.name, **sections}, indent=2, default=str, ensure_ascii=False))
        return 0
    if not any(sections.values()):
        print(f"{a.name} and {b.name} have the same config and metrics.")
        return 0
    rows = [(section, key, *(_scalar(values[side]) if side in values else MISSING for side in ("a", "b")))
            for section, found in sections.items() for key, values in found.items()]
    print(render(("", "KEY", a.name, b.name), rows, flexible=(1, 2, 3)))
    return 0
