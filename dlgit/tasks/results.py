"""Every task's results, read from commits: the rows of `dlgit report`'s summary (SPEC §5, seed §3, §11–§14).

A task folder holds, by convention, its config.yaml, a metrics file (`tasks.metrics`), run records
under runs/, and the raw data of its figures as tidy CSV under results/ (`results/loss.csv` with
`epoch,loss`); a sweep's sub-tasks the same under subtasks/<id>/. Folders are read from the commits
that hold them — the current branch's merged tasks, and with `branches` the unmerged task branches'
tips — through `git ls-tree` and `git cat-file --batch`, never by checking out. A task branch is
anyone's push, so every file is bounded before it is read (its size from the tree listing), YAML
goes through safeyaml, symlinks are never followed, and a bad file is one note on its task.

Rows depend only on a folder's tree and the template's blob, so they are cached by those ids: a
report over a thousand unchanged tasks reads no file again.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any, NamedTuple

from dlgit.config import Settings
from dlgit.git import Git
from dlgit.model import Kind, parse_branch

CONFIG = "config.yaml"
RESULTS = "results"
SUBTASKS = "subtasks"
RUNS = "runs"
MAX_SMALL_FILE = 1024 * 1024  # a config, metrics file or run record
MAX_CSV = 16 * 1024 * 1024  # a results CSV: tidy data for figures, small enough for git
MAX_FIELD = 64 * 1024  # one CSV cell
MAX_DEPTH = 32  # nesting of a metrics file
SYMLINK, SUBMODULE = "120000", "160000"


class Source(NamedTuple):
    """A task folder in a commit."""

    task: str
    commit: str
    tree: str  # the folder's tree id
    state: str  # merged (on the branch reported), finished or open (an unmerged task branch)


class Entry(NamedTuple):
    mode: str
    sha: str
    size: int
    path: str  # relative to the task folder


class Collected(NamedTuple):
    """What one task folder yields: its rows (the task, then each sub-task), its figure data and its notes."""

    rows: list[dict[str, Any]]
    figures: dict[str, list[dict[str, Any]]]  # name -> {"subtask", "header", "rows"} pieces, one per folder
    notes: list[str]


def sources(repo: Git, settings: Settings, head: str, branches: bool) -> list[Source]:
    """The task folders of `head`'s tasks folder (merged tasks) and, with `branches`, of each task
    branch whose folder `head` does not hold."""
    tasks_dir = settings.tasks_dir
    found = repo.objects([f"{head}:{tasks_dir}"]).get(f"{head}:{tasks_dir}")
    merged = {entry.name: entry.sha for entry in (found.entries() if found else [])
              if entry.is_tree and parse_branch(entry.name, settings).kind is Kind.TASK}
    result = [Source(name, head, tree, "merged") for name, tree in merged.items()]
    if branches:
        heads = [head_ for head_ in repo.branch_heads()
                 if head_.name not in merged and parse_branch(head_.name, settings).kind is Kind.TASK]
        trees = repo.object_ids(f"{head_.sha}:{tasks_dir}/{head_.name}" for head_ in heads)
        for head_ in heads:
            tree = trees.get(f"{head_.sha}:{tasks_dir}/{head_.name}")
            if tree:
                state = "finished" if head_.subject.startswith("task: results") else "open"
                result.append(Source(head_.name, head_.sha, tree, state))
    return sorted(result, key=lambda source: (parse_branch(source.task, settings).time or "", source.task))


def collect(repo: Git, settings: Settings, wanted: list[Source], template: dict[str, Any]) -> dict[str, Collected]:
    """tree id -> what that folder yields, for the folders given: one `ls-tree` per commit, one
    `cat-file --batch` for every file read."""
    listings: dict[str, list[Entry]] = {}
    by_commit: dict[str, list[Source]] = {}
    for source in wanted:
        by_commit.setdefault(source.commit, []).append(source)
    for commit, group in by_commit.items():
        folders = {f"{settings.tasks_dir}/{source.task}": source.tree for source in group}
        for folder, entries in _listing(repo, commit, folders).items():
            listings[folders[folder]] = entries
    plans = {tree: _FolderPlan(entries, settings) for tree, entries in listings.items()}
    blobs = repo.read_blobs([entry.sha for plan in plans.values() for entry in plan.to_read])
    return {tree: plan.collect(blobs, template) for tree, plan in plans.items()}


def _listing(repo: Git, commit: str, folders: dict[str, str]) -> dict[str, list[Entry]]:
    """folder -> every entry under it (paths relative to it), from one `git ls-tree -r -l`."""
    result: dict[str, list[Entry]] = {folder: [] for folder in folders}
    for mode, sha, size, path in repo.ls_tree_sized(commit, list(folders)):
        folder, rest = _split(path, result)
        if folder is not None:
            result[folder].append(Entry(mode, sha, size, rest))
    return result


def _split(path: str, folders: dict[str, list[Entry]]) -> tuple[str | None, str]:
    parts = path.split("/")
    folder = "/".join(parts[:2])  # tasks/<task>
    return (folder, "/".join(parts[2:])) if folder in folders else (None, path)


class _Folder(NamedTuple):
    """The files of the task itself ("") or of one sub-task."""

    subtask: str
    config: Entry | None
    metrics: Entry | None
    record: Entry | None  # the newest run record
    results: list[Entry]


class _FolderPlan:
    """Which files of one task folder are read, and how they become rows."""

    def __init__(self, entries: list[Entry], settings: Settings) -> None:
        self.notes: list[str] = []
        parts: dict[str, dict[str, Entry]] = {}
        for entry in entries:
            subtask, rest = _owner(entry.path)
            if entry.mode == SYMLINK:
                self.notes.append(f"{entry.path} is a symbolic link: not followed")
                continue
            if entry.mode != SUBMODULE:
                parts.setdefault(subtask, {})[rest] = entry
        self.folders = [self._folder(subtask, files, settings) for subtask, files in sorted(parts.items())]
        self.to_read = [entry for folder in self.folders for entry in self._bounded(folder)]

    @staticmethod
    def _folder(subtask: str, files: dict[str, Entry], settings: Settings) -> _Folder:
        records = sorted(path for path in files if _is_record(path))
        metrics = next((files[name] for name in settings.task_metrics if name in files), None)
        results = [entry for path, entry in sorted(files.items())
                   if PurePosixPath(path).parent.as_posix() == RESULTS and path.endswith(".csv")]
        return _Folder(subtask, files.get(CONFIG), metrics, files[records[-1]] if records else None, results)

    def _bounded(self, folder: _Folder) -> Iterable[Entry]:
        for entry, limit in ((folder.config, MAX_SMALL_FILE), (folder.metrics, MAX_SMALL_FILE), (folder.record, MAX_SMALL_FILE),
                             *((result, MAX_CSV) for result in folder.results)):
            if entry is None:
                continue
            if entry.size > limit:
                self.notes.append(f"{_shown_path(folder, entry)} is {entry.size:,} bytes, over the {limit:,}-byte limit: left out")
                continue
            yield entry

    def collect(self, blobs: dict[str, bytes], template: dict[str, Any]) -> Collected:
        rows, figures = [], {}
        for folder in self.folders:
            rows.append(self._row(folder, blobs, template))
            for entry in folder.results:
                data = blobs.get(entry.sha)
                if data is None:
                    continue
                table = self._table(folder, entry, data)
                if table is not None:
                    figures.setdefault(PurePosixPath(entry.path).stem, []).append({"subtask": folder.subtask, **table})
        return Collected(rows, figures, self.notes)

    def _row(self, folder: _Folder, blobs: dict[str, bytes], template: dict[str, Any]) -> dict[str, Any]:
        config = self._mapping(folder, folder.config, blobs)
        metrics = self._mapping(folder, folder.metrics, blobs)
        record = self._mapping(folder, folder.record, blobs)
        params = {key: value for key, value in config.items() if key not in template or template[key] != value}
        return {"subtask": folder.subtask, "version": config.get("VERSION"), "commit": record.get("commit"),
                "run_state": _run_state(record) if folder.record else None, "params": params, "metrics": metrics}

    def _mapping(self, folder: _Folder, entry: Entry | None, blobs: dict[str, bytes]) -> dict[str, Any]:
        """A YAML or JSON file as a flat mapping of scalars (dotted keys); a note when it is not one."""
        if entry is None or entry.sha not in blobs:
            return {}
        try:
            value = load_document(entry.path, blobs[entry.sha])
        except ValueError as exc:
            self.notes.append(f"{_shown_path(folder, entry)}: {exc}")
            return {}
        if not isinstance(value, dict):
            self.notes.append(f"{_shown_path(folder, entry)} holds {type(value).__name__}, not a mapping: left out")
            return {}
        return flat_scalars(value)

    def _table(self, folder: _Folder, entry: Entry, data: bytes) -> dict[str, Any] | None:
        """{"header": its columns, "lines": its records as CSV lines}: kept as text, so that stacking
        thousands of tables is string work; a file with quoted fields is parsed and written anew."""
        try:
            text = data.decode("utf-8")
            if '"' in text:
                rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
                lines = [csv_line(row) for row in rows]
            else:
                lines = [line for line in text.splitlines() if line]
                rows = [parse_line(lines[0])] if lines else []
        except UnicodeDecodeError as exc:
            self.notes.append(f"{_shown_path(folder, entry)} is not UTF-8 text (byte {exc.start}): left out")
            return None
        except csv.Error as exc:
            self.notes.append(f"{_shown_path(folder, entry)} is no CSV ({exc}): left out")
            return None
        if not rows or not rows[0]:
            return None
        return {"header": rows[0], "lines": lines[1:]}


def csv_line(row: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row)
    return out.getvalue()


def parse_line(line: str) -> list[str]:
    return next(csv.reader([line]), [])


def _owner(path: str) -> tuple[str, str]:
    """(sub-task id or "", the path inside that folder)."""
    parts = path.split("/")
    if parts[0] == SUBTASKS and len(parts) > 2:
        return parts[1], "/".join(parts[2:])
    return "", path


def _is_record(path: str) -> bool:
    name = PurePosixPath(path).name
    return PurePosixPath(path).parent.as_posix() == RUNS and name.endswith(".yaml") and not name.endswith(".config.yaml") \
        and not name.startswith(".")


def _run_state(record: dict[str, Any]) -> str:
    if record.get("interrupted"):
        return "interrupted"
    code = record.get("exit_code")
    return "running" if code is None else ("done" if code == 0 else "failed")


def _shown_path(folder: _Folder, entry: Entry) -> str:
    return f"{SUBTASKS}/{folder.subtask}/{entry.path}" if folder.subtask else entry.path


def load_document(path: str, data: bytes) -> Any:
    """A JSON or YAML file's value within the limits (ValueError with the reason otherwise)."""
    from dlgit import safeyaml

    kind = "JSON" if path.endswith(".json") else "YAML"
    try:
        if kind == "JSON":
            return safeyaml.load_json(data, max_bytes=MAX_SMALL_FILE, max_depth=MAX_DEPTH)
        return safeyaml.load(data, max_bytes=MAX_SMALL_FILE, max_depth=MAX_DEPTH)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
    except Exception as exc:  # parse errors and limits alike: the file is one note
        raise ValueError(f"not readable {kind} ({safeyaml.reason(exc)})") from None


def flat_scalars(value: dict[str, Any]) -> dict[str, Any]:
    """`dlgit tasks`' flattening (dotted keys), a list or other non-scalar as its JSON text: one CSV cell."""
    from dlgit.tasks.table import flatten

    return {key: item if item is None or isinstance(item, (bool, int, float, str))
            else json.dumps(item, default=str, ensure_ascii=False, sort_keys=True) for key, item in flatten(value).items()}
