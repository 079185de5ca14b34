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
import io
import json
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from dlgit import config
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
MISSING = "—"  # a key one side of a diff does not have


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


# --- reading -------------------------------------------------------------------------------------


def collect(cwd: Path | str | None = None) -> list[TaskInfo]:
    """Every task, oldest first."""
    repo = Git.open(cwd)
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
    folder = root / task_folder(name, settings)
    runs = folder / "runs"
    records = {path.name[:-len(RECORD_SUFFIX)]: path.read_bytes() for path in (runs.iterdir() if runs.is_dir() else ())
               if _is_record(path.name) and path.is_file()}
    metrics = next(((metric, (folder / metric).read_bytes()) for metric in settings.task_metrics if (folder / metric).is_file()), None)
    return _Files(_read_file(folder / "config.yaml"), _read_file(root / settings.template_config), records, metrics)


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _is_record(filename: str) -> bool:
    return filename.endswith(RECORD_SUFFIX) and not filename.endswith(NOT_RECORDS) and not filename.startswith(".")


def _read_commits(repo: Git, revs: dict[str, str], settings: Settings) -> dict[str, _Files]:
    """name -> its folder's files at a commit: two `cat-file --batch` rounds for all of them (the
    files and the runs folder's listing, then the run records)."""
    def paths(name: str, rev: str) -> dict[str, str]:
        folder = task_folder(name, settings)
        wanted = {"config": f"{rev}:{folder}/config.yaml", "template": f"{rev}:{settings.template_config}",
                  "runs": f"{rev}:{folder}/runs"}
        wanted.update({f"metrics:{metric}": f"{rev}:{folder}/{metric}" for metric in settings.task_metrics})
        return wanted

    asked = {name: paths(name, rev) for name, rev in revs.items()}
    found = repo.objects([path for wanted in asked.values() for path in wanted.values()])
    blob = {name: obj.data for name, obj in found.items() if obj.type == "blob"}
    listings = {name: found[wanted["runs"]].entries() if wanted["runs"] in found else [] for name, wanted in asked.items()}
    blobs = repo.read_blobs([entry.sha for entries in listings.values() for entry in entries if _is_record(entry.name)])
    files = {}
    for name, wanted in asked.items():
        records = {entry.name[:-len(RECORD_SUFFIX)]: blobs[entry.sha] for entry in listings[name]
                   if _is_record(entry.name) and entry.sha in blobs}
        metrics = next(((metric, blob[wanted[f"metrics:{metric}"]]) for metric in settings.task_metrics
                        if wanted[f"metrics:{metric}"] in blob), None)
        files[name] = _Files(blob.get(wanted["config"]), blob.get(wanted["template"]), records, metrics)
    return files


def _task(name: str, settings: Settings, files: _Files, holder: lock.Holder | None, has_branch: bool, merged: bool,
          results_committed: bool) -> TaskInfo:
    branch = parse_branch(name, settings)
    runs = tuple(Run(stem, record) for stem, record in sorted(((stem, _load_yaml(data)) for stem, data in files.records.items()),
                                                              key=lambda item: _run_order(item[0])) if isinstance(record, dict))
    task_config = flatten(_load_yaml(files.config))
    template = flatten(_load_yaml(files.template))
    params = {key: value for key, value in task_config.items() if key not in template or template[key] != value}
    metrics = flatten(_load_metrics(*files.metrics)) if files.metrics else {}
    if holder:
        state = "running"
    elif merged:
        state = "merged"
    elif results_committed or any(run.record.get("exit_code") == 0 and not run.record.get("interrupted") for run in runs):
        state = "finished"
    else:
        state = "open"
    return TaskInfo(name, branch.version, branch.time, branch.desc, state, has_branch, holder, runs, task_config, params, metrics)


def _run_order(stem: str) -> tuple[str, int]:
    match = _STEM.fullmatch(stem)
    return (match[1], int(match[2] or 0)) if match else (stem, 0)


def _load_yaml(data: bytes | None) -> Any:
    import yaml

    if data is None:
        return None
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError:
        return None


def _load_metrics(filename: str, data: bytes) -> Any:
    if filename.endswith(".json"):
        try:
            return json.loads(data)
        except ValueError:
            return None
    return _load_yaml(data)


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
    tasks = collect(cwd)
    submitted = jobs.by_task(Git.open(cwd).info.common_dir)  # one scheduler query for every submitted job
    if output_format == "json":
        print(json.dumps([{**_as_json(task), "jobs": [job.as_json() for job in submitted.get(task.name, [])]} for task in tasks],
                         indent=2, default=str, ensure_ascii=False))
    elif output_format == "csv":
        print(_as_csv(tasks), end="")
    elif not tasks:
        print("no tasks yet: start one with `dlgit start-task [DESC]`.")
    else:
        header = ("TASK", "VERSION", "CREATED", "STATE", "EXIT", "TOOK", "PARAMS", "METRICS")
        rows = [(f"  {task.subtask}" if task.subtask else task.desc or task.name, task.version or "", _created(task.time),
                 jobs.summary(submitted[task.name]) if task.name in submitted else _state_text(task), _exit_text(task),
                 _duration(task.last.record.get("duration_s")) if task.last else "", _pairs(task.params), _pairs(task.metrics))
                for task in tasks]
        print(render(header, rows, flexible=(0, 6, 7)))
    return 0


def _as_json(task: TaskInfo) -> dict[str, Any]:
    last = task.last
    return {
        "name": task.name, "task": task.task, "subtask": task.subtask, "subtasks": task.subtasks,
        "version": task.version, "time": task.time, "desc": task.desc, "state": task.state,
        "branch": task.branch, "holder": task.holder._asdict() if task.holder else None, "runs": len(task.runs),
        "last_run": {"record": f"runs/{last.stem}{RECORD_SUFFIX}", **{key: last.record.get(key) for key in
                     ("state", "exit_code", "duration_s", "start", "end", "interrupted", "signal", "commit")}} if last else None,
        "params": task.params, "metrics": task.metrics,
    }


def _as_csv(tasks: list[TaskInfo]) -> str:
    param_keys = sorted({key for task in tasks for key in task.params})
    metric_keys = sorted({key for task in tasks for key in task.metrics})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "task", "subtask", "version", "time", "desc", "state", "runs", "last_exit_code", "last_duration_s",
                     *(f"params.{key}" for key in param_keys), *(f"metrics.{key}" for key in metric_keys)])
    for task in tasks:
        last = task.last.record if task.last else {}
        writer.writerow([task.name, task.task, task.subtask or "", task.version, task.time, task.desc, task.state, len(task.runs),
                         _csv_value(last.get("exit_code")), _csv_value(last.get("duration_s")),
                         *(_csv_value(task.params.get(key)) for key in param_keys),
                         *(_csv_value(task.metrics.get(key)) for key in metric_keys)])
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
    return " ".join(f"{key}={_scalar(value)}" for key, value in values.items())


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
    values cut with '…'), the widest first."""
    cells = [[escape(cell) for cell in row] for row in [tuple(header), *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    room = (width or shutil.get_terminal_size((120, 24)).columns) - 2 * (len(widths) - 1)
    while sum(widths) > room:
        widest = max(flexible, key=lambda i: widths[i])
        if widths[widest] <= 8:
            break  # a narrow terminal: let it wrap rather than cut everything to nothing
        widths[widest] -= 1
    lines = ["  ".join(_cut(cell, widths[i]).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    return "\n".join(lines)


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
