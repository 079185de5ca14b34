"""Sub-tasks (seed §7): a sweep of configurations inside one task — pure parts and files.

A task's config.yaml may hold a `sweep:` block (what `start-task --sweep KEY=V1,V2` writes):

    sweep:
      grid:            # every combination of these values (dotted keys, or nested maps of lists)
        lr: [0.01, 0.1]
        seed: [1, 2]
      list:            # and/or explicit sub-tasks: one mapping of overrides each
        - {lr: 0.3, seed: 7}
      add: true        # the swept keys may be keys the config does not have (start-task --add)

Each sub-task lives in `tasks/<task>/subtasks/<id>/` (its full effective config.yaml: the task's
config without the block, its overrides applied; its own logs/, runs/, outputs) and
`tasks/<task>/subtasks/index.csv` lists them all. An id reads as its values, keys sorted —
`lr=0.01,seed=1` — each value as YAML writes it (`render`), the characters unsafe in a path or in
the id's own syntax percent-escaped; a short hash of the values is appended only when the id is too
long or another sub-task took it (in any letter case: case-insensitive file systems). An id depends
on its own values only, and ids already given (index.csv, the folders) are kept: adding values to
the grid adds sub-tasks and renames none.

A sub-task's state is its newest run record's (`runs/*.yaml`, written whole by temp file and
rename, last of all): nothing else needs to survive a kill.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import itertools
import json
import os
import re
import socket
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from dlgit.errors import UsageError
from dlgit.shell import quote

SWEEP_KEY = "sweep"
SUBTASKS = "subtasks"
INDEX = "index.csv"
INDEX_BYTES = 16 << 20  # index.csv read at most: 16 KiB a row for the most sub-tasks a sweep may have by default
MAX_ID_BYTES = 100  # an id is a folder name: far below the 255 bytes a file system allows
HASH_CHARS = 8
RESERVED_KEYS = ("VERSION", SWEEP_KEY)  # VERSION names the core a task ran on; it is the task's, never a sub-task's
_UNSAFE = re.compile(r"[\x00-\x20\x7f/\\%,=:*?\"<>|]")  # path separators, the id's own syntax, what Windows refuses
INDEX_FIXED = ("id", "status", "exit_code", "last_run", "duration_s")
DONE, FAILED, INTERRUPTED, RUNNING, PENDING = "done", "failed", "interrupted", "running", "pending"


class SweepError(UsageError):
    """A sweep that cannot be declared or expanded; the message says why and what to change."""


class SubTask(NamedTuple):
    id: str
    overrides: tuple[tuple[str, Any], ...]  # (dotted key, value), keys sorted
    rendered: tuple[tuple[str, str], ...]  # (dotted key, the value as the id and index.csv write it)

    def values(self) -> dict[str, str]:
        """key -> the value as the id and index.csv write it."""
        return dict(self.rendered)


class Sweep(NamedTuple):
    keys: tuple[str, ...]  # every swept key, in the order first declared
    subtasks: tuple[SubTask, ...]
    add: bool  # keys the config does not have may be added


# --- declaring: --sweep KEY=V1,V2 ------------------------------------------------------------------


def parse_option(item: str) -> tuple[str, list[Any]]:
    """`KEY=V1,V2,…` -> (KEY, typed values). Values are YAML (as --set types them); a comma inside
    brackets or quotes belongs to its value (`shape=[1, 2],[3, 4]` is two values)."""
    from dlgit.tasks.yamledit import EditError, parse_override

    key, equals, values = item.partition("=")
    if not equals or not key:
        raise SweepError(f"--sweep {quote(item)} is not KEY=V1,V2,…")
    parts = _split_values(values)
    if not any(part.strip() for part in parts):
        raise SweepError(f"--sweep {quote(item)} gives {key} no values: an empty grid has no sub-task.")
    try:
        return key, [parse_override(f"{key}={part}")[1] for part in parts]
    except EditError as exc:
        raise SweepError(f"--sweep {quote(item)}: {exc}.") from None


def _split_values(text: str) -> list[str]:
    parts, depth, quote_char, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote_char:
            quote_char = "" if ch == quote_char else quote_char
        elif ch in "'\"" and (i == start or not text[start:i].strip()):
            quote_char = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth <= 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def write_grid(text: str, options: Sequence[str], add: bool) -> str:
    """The config's text with `--sweep` options written into its sweep block (a key given twice:
    the later wins), every other byte kept."""
    from dlgit.tasks.yamledit import EditError, set_key

    grid: dict[str, list[Any]] = {}
    for item in options:
        key, values = parse_option(item)
        grid[key] = values
    try:
        for key, values in grid.items():
            text = set_key(text, f"{SWEEP_KEY}.grid.{key}", values)
        if add:
            text = set_key(text, f"{SWEEP_KEY}.add", True)
    except EditError as exc:
        raise SweepError(f"config.yaml: cannot write the sweep block: {exc}.") from None
    return text


# --- reading the block -----------------------------------------------------------------------------


def has_sweep(text: str | bytes | None) -> bool:
    """Whether a config's text declares sub-tasks (a quick test, before any parsing)."""
    if text is None:
        return False
    line = f"{SWEEP_KEY}:".encode() if isinstance(text, bytes) else f"{SWEEP_KEY}:"
    return any(raw.startswith(line) for raw in text.splitlines())  # type: ignore[arg-type]


def _config(text: str) -> dict[str, Any]:
    import yaml

    from dlgit import safeyaml

    try:
        data = safeyaml.load(text)
    except (yaml.YAMLError, safeyaml.YamlLimitError) as exc:
        raise SweepError(f"config.yaml is not valid YAML ({safeyaml.reason(exc)}).") from None
    return data if isinstance(data, dict) else {}


def _flat_grid(grid: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """A grid's (dotted key, values): nested maps are dotted paths, a list is a key's values."""
    for key, item in grid.items():
        dotted = f"{prefix}{key}"
        if isinstance(item, dict):
            yield from _flat_grid(item, dotted + ".")
        else:
            yield dotted, item


def read(text: str, known: dict[tuple[tuple[str, str], ...], str] | None = None, limit: int | None = None) -> Sweep | None:
    """The sweep a config's text declares (None when it has no sweep block), its sub-tasks with
    ids: `known` (values -> id, from index.csv) keeps the ids already given. SweepError when the
    block is malformed, empty, names a reserved key, or holds more than `limit` sub-tasks."""
    block = _config(text).get(SWEEP_KEY)
    if block is None:
        return None
    where = f"the {SWEEP_KEY}: block of config.yaml"
    if not isinstance(block, dict) or not set(block) <= {"grid", "list", "add"}:
        raise SweepError(f"{where} must be a map of `grid:` (key -> list of values), `list:` (a list of override maps) "
                         "and `add:` (true to let sub-tasks add keys).")
    grid = block.get("grid") or {}
    entries = block.get("list") or []
    if not isinstance(grid, dict) or not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SweepError(f"{where}: `grid:` must be a map of key -> list of values, `list:` a list of maps.")
    axes = list(_flat_grid(grid))
    for key, values in axes:
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where}: grid key {quote(key)} needs a non-empty list of values (it has {_shown(values)}).")
        rendered = [json.dumps(value, sort_keys=True, default=str) for value in values]
        if len(set(rendered)) < len(rendered):
            raise SweepError(f"{where}: grid key {quote(key)} lists a value twice ({_shown(values)}).")
    flat_entries = [dict(_flat_grid(entry)) for entry in entries]
    count = (_product([len(values) for _, values in axes]) if axes else 0) + len(flat_entries)
    if count == 0:
        raise SweepError(f"{where} declares no sub-task (an empty grid); give the grid values, or remove the block.")
    if limit is not None and count > limit:
        raise SweepError(f"{where} makes {count} sub-tasks, more than tasks.max_subtasks ({limit}) in .dlgit.yaml allows; "
                         "sweep fewer values (or raise the limit).")
    keys = tuple(dict.fromkeys([key for key, _ in axes] + [key for entry in flat_entries for key in entry]))
    for key in keys:
        if key.split(".")[0] in RESERVED_KEYS:
            raise SweepError(f"{where} sweeps {quote(key)}: {key.split('.')[0]} is the task's own, the same in every sub-task.")
    combos = [tuple(zip([key for key, _ in axes], values, strict=True)) for values in itertools.product(*(v for _, v in axes))
              ] if axes else []
    overrides = [tuple(sorted(combo)) for combo in combos] + [tuple(sorted(entry.items())) for entry in flat_entries]
    return Sweep(keys, tuple(assign_ids(overrides, known or {})), bool(block.get("add")))


def _product(sizes: list[int]) -> int:
    total = 1
    for size in sizes:
        total *= size
    return total


def _shown(value: Any) -> str:
    from dlgit import safeyaml

    return safeyaml.shown(value)


# --- ids -------------------------------------------------------------------------------------------


def plain_id(overrides: Iterable[tuple[str, Any]]) -> str:
    """`lr=0.01,seed=1`: keys sorted, values as YAML writes them, unsafe characters escaped."""
    from dlgit.tasks.yamledit import render

    return _plain(tuple(sorted((key, render(value)) for key, value in overrides)))


def _plain(rendered: tuple[tuple[str, str], ...]) -> str:
    parts = [f"{_escape(key)}={_escape(value)}" for key, value in rendered]
    return unicodedata.normalize("NFC", ",".join(parts)) or "base"


def _escape(text: str) -> str:
    return _UNSAFE.sub(lambda match: "".join(f"%{byte:02X}" for byte in match[0].encode()), text)


def hashed_id(overrides: Iterable[tuple[str, Any]]) -> str:
    """The plain id cut to fit, with a hash of the full values: unique, and the same every time."""
    import hashlib

    plain = plain_id(overrides)
    digest = hashlib.sha256(_values_key(overrides).encode()).hexdigest()[:HASH_CHARS]
    head = plain.encode()[:MAX_ID_BYTES - HASH_CHARS - 1].decode("utf-8", "ignore")
    cut = head.rfind("%", len(head) - 2)  # never half an escape
    return f"{head[:cut] if cut >= 0 else head}~{digest}"


def _values_key(overrides: Iterable[tuple[str, Any]]) -> str:
    return json.dumps(sorted(overrides), default=str, ensure_ascii=False)


def assign_ids(overrides: list[tuple[tuple[str, Any], ...]], known: dict[tuple[tuple[str, str], ...], str]) -> list[SubTask]:
    """Ids for these sub-tasks (in order): a known id first, then the plain one unless it is too
    long or taken (case-insensitively), else the hashed one."""
    from dlgit.tasks.yamledit import render

    taken = {name.casefold() for name in known.values()}
    memo: dict[str, str] = {}  # a grid repeats each value many times: render it once

    def shown(value: Any) -> str:
        key = json.dumps([type(value).__name__, value], sort_keys=True, default=str)
        if key not in memo:
            memo[key] = render(value)
        return memo[key]

    result = []
    for item in overrides:
        rendered = tuple(sorted((key, shown(value)) for key, value in item))
        given = known.get(rendered)
        if given is None:
            given = _plain(rendered)
            if len(given.encode()) > MAX_ID_BYTES or given.casefold() in taken:
                given = hashed_id(item)
            taken.add(given.casefold())
        result.append(SubTask(given, item, rendered))
    return result


def known_ids(task_dir: Path) -> dict[tuple[tuple[str, str], ...], str]:
    """values -> id of the sub-tasks the folder's index.csv lists (the ids already given)."""
    return known_from_index(read_index(task_dir))


def known_from_index(rows: list[dict[str, str]]) -> dict[tuple[tuple[str, str], ...], str]:
    """values -> id of index.csv's rows."""
    known = {}
    for row in rows:
        values = tuple(sorted((key, value) for key, value in row.items() if key not in INDEX_FIXED and value != ""))
        if row.get("id"):
            known[values] = row["id"]
    return known


def ids_from_config(text: str, index: dict[tuple[tuple[str, str], ...], str] | None = None) -> list[str]:
    """The sub-task ids a config's text declares (none when it has no sweep block)."""
    sweep = read(text, index)
    return [subtask.id for subtask in sweep.subtasks] if sweep else []


def subtask_ids(task_dir: Path) -> list[str]:
    """The sub-task ids of the task folder `task_dir`, in order: what a job array is made of."""
    return ids_from_config(_read_config(task_dir), known_ids(task_dir))


def load(task_dir: Path, limit: int | None = None) -> Sweep | None:
    """The sweep of a task folder on disk, ids kept from its index.csv."""
    return read(_read_config(task_dir), known_ids(task_dir), limit)


def _read_config(task_dir: Path) -> str:
    from dlgit import safeyaml

    try:
        return safeyaml.read_file(task_dir / "config.yaml").decode("utf-8")
    except (OSError, UnicodeDecodeError, safeyaml.YamlLimitError) as exc:
        raise SweepError(f"cannot read {quote(str(task_dir / 'config.yaml'))}: {exc}.") from None


def find(sweep: Sweep, wanted: str) -> SubTask:
    """A sub-task by its id."""
    for subtask in sweep.subtasks:
        if subtask.id == wanted:
            return subtask
    shown = ", ".join(quote(s.id) for s in sweep.subtasks[:10]) + (" …" if len(sweep.subtasks) > 10 else "")
    raise SweepError(f"no sub-task {quote(wanted)} in this task (its sub-tasks: {shown}; `dlgit tasks` lists them).")


def folder(task_dir: Path, subtask_id: str) -> Path:
    """tasks/<task>/subtasks/<id>: an id never leaves it (no separator, never '.' or '..')."""
    if not subtask_id or "/" in subtask_id or "\\" in subtask_id or subtask_id in (".", "..") or "\x00" in subtask_id:
        raise SweepError(f"{quote(subtask_id)} is no sub-task id.")
    return task_dir / SUBTASKS / subtask_id


# --- the effective config --------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)  # every sub-task of a sweep starts from the same text
def base_text(text: str) -> str:
    """The config's text without its top-level sweep block (every other byte kept)."""
    from dlgit import safeyaml

    node = safeyaml.compose(text)
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return text
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == SWEEP_KEY:
            start = text.rfind("\n", 0, key.start_mark.index) + 1
            end = value.end_mark.index
            if not (end > 0 and text[end - 1] == "\n"):
                newline = text.find("\n", end)
                end = len(text) if newline < 0 else newline + 1
            return text[:start] + text[end:]
    return text


def check_keys(text: str, sweep: Sweep) -> None:
    """Every swept key is in the config, unless the sweep may add keys (UsageError naming the first not)."""
    from dlgit.tasks.yamledit import EditError, UnknownKey, set_key

    base = base_text(text)
    first = {}
    for subtask in sweep.subtasks:
        for key, value in subtask.overrides:
            first.setdefault(key, value)
    for key, value in first.items():
        try:
            set_key(base, key, value, add=sweep.add)
        except UnknownKey as exc:
            raise SweepError(f"--sweep: {exc}; pass --add to let sub-tasks add it.") from None
        except EditError as exc:
            raise SweepError(f"--sweep {key}: {exc}.") from None


def effective_config(text: str, subtask: SubTask, add: bool, extra: dict[str, Any] | None = None) -> str:
    """A sub-task's config.yaml: the task's text without the sweep block, its overrides applied
    (and `extra`, e.g. RESUME), comments and order kept."""
    from dlgit.tasks.yamledit import EditError, set_key

    result = base_text(text)
    try:
        for key, value in [*subtask.overrides, *(extra or {}).items()]:
            result = set_key(result, key, value, add=add or key in (extra or {}))
    except EditError as exc:
        raise SweepError(f"sub-task {quote(subtask.id)}: {exc}.") from None
    return result


# --- state: from the run records -------------------------------------------------------------------


class State(NamedTuple):
    status: str  # done, failed, interrupted, running, pending
    exit_code: int | None
    last_run: str | None  # the newest record's stem
    duration_s: float | None
    record: dict[str, Any] | None


def _records(sub_dir: Path) -> list[Path]:
    runs = sub_dir / "runs"
    if not runs.is_dir():
        return []
    records = [path for path in runs.iterdir()
               if path.name.endswith(".yaml") and not path.name.endswith(".config.yaml") and not path.name.startswith(".")]
    return sorted(records, key=lambda path: _stem_order(path.name[:-5]))


def _stem_order(stem: str) -> tuple[str, int]:
    base, _, n = stem.partition("-")
    return base, int(n) if n.isdigit() else 0


def records(sub_dir: Path) -> list[dict[str, Any]]:
    """A sub-task's run records, oldest first (unreadable ones left out)."""
    import yaml

    from dlgit import safeyaml

    found = []
    for path in _records(sub_dir):
        with contextlib.suppress(OSError, yaml.YAMLError, safeyaml.YamlLimitError, UnicodeDecodeError):
            record = safeyaml.load(safeyaml.read_file(path))
            if isinstance(record, dict):
                found.append({**record, "_stem": path.name[:-5]})
    return found


def state(sub_dir: Path) -> State:
    """A sub-task's state: its newest run record's. A record still `running` whose dlgit process
    is gone (on this host) was killed: interrupted."""
    return state_of(records(sub_dir))


def state_of(found: list[dict[str, Any]]) -> State:
    """The state the newest of these run records (oldest first, each with its `_stem`) gives."""
    if not found:
        return State(PENDING, None, None, None, None)
    record = found[-1]
    status = {"finished": DONE, "failed": FAILED, "interrupted": INTERRUPTED}.get(record.get("state"), RUNNING)
    if status == RUNNING and not _alive(record):
        status = INTERRUPTED
    return State(status, record.get("exit_code"), record["_stem"], record.get("duration_s"), record)


def _alive(record: dict[str, Any]) -> bool:
    pid = record.get("pid")
    if record.get("host") != socket.gethostname():
        return True  # another machine's (a cluster node's): assumed running
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not _reused(pid, record.get("start"))


def _reused(pid: int, start: Any) -> bool:
    """Whether process `pid` began after the run that recorded it did: after a reboot the pid is
    another process's, and the run was cut off."""
    from datetime import datetime

    try:
        began = datetime.fromisoformat(str(start)).timestamp()
        with open(f"/proc/{pid}/stat", "rb") as f:
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])  # field 22: start time, in clock ticks after boot
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return False  # no /proc (not Linux): the pid's word is taken
    return boot + ticks / os.sysconf("SC_CLK_TCK") > began + 2


def states(task_dir: Path, sweep: Sweep) -> dict[str, State]:
    return {subtask.id: state(folder(task_dir, subtask.id)) for subtask in sweep.subtasks}


# --- index.csv -------------------------------------------------------------------------------------


def read_index(task_dir: Path) -> list[dict[str, str]]:
    """index.csv's rows: a regular file in the folder (a symlink is not followed), read up to
    INDEX_BYTES (a bigger one is unreadable: a task branch is anyone's push)."""
    import stat

    try:
        fd = os.open(task_dir / SUBTASKS / INDEX, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as file:
        data = file.read(INDEX_BYTES + 1) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    return parse_index(data if 0 < len(data) <= INDEX_BYTES else None)


def parse_index(data: bytes | None) -> list[dict[str, str]]:
    """index.csv's rows (none when it is missing, unreadable or over INDEX_BYTES)."""
    if data is None or len(data) > INDEX_BYTES:
        return []
    try:
        return [row for row in csv.DictReader(io.StringIO(data.decode("utf-8"))) if isinstance(row.get("id"), str)]
    except (csv.Error, UnicodeDecodeError):
        return []


def write_index(task_dir: Path, sweep: Sweep, updates: dict[str, State]) -> Path:
    """Rewrite index.csv whole (temp file, rename) with these sub-tasks' new states, the others'
    rows kept (read from their records when the index has none). Under a lock on the folder:
    writers on several nodes of a cluster leave every update, never a half file."""
    import fcntl

    root = task_dir / SUBTASKS
    root.mkdir(parents=True, exist_ok=True)
    guard = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the folder itself: no lock file to commit
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        for stale in root.glob(f".{INDEX}.*.tmp"):  # a writer killed mid-write (none writes without the lock)
            stale.unlink(missing_ok=True)
        kept = {row["id"]: row for row in read_index(task_dir)}
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([INDEX_FIXED[0], *sweep.keys, *INDEX_FIXED[1:]])
        for subtask in sweep.subtasks:
            values = subtask.values()
            if subtask.id not in updates and subtask.id in kept:
                fixed = [kept[subtask.id].get(column) or "" for column in INDEX_FIXED[1:]]
            else:
                st = updates.get(subtask.id) or state(folder(task_dir, subtask.id))
                fixed = [st.status, "" if st.exit_code is None else st.exit_code, st.last_run or "",
                         "" if st.duration_s is None else st.duration_s]
            writer.writerow([subtask.id, *(values.get(key, "") for key in sweep.keys), *fixed])
        temporary = root / f".{INDEX}.{os.getpid()}.tmp"
        temporary.write_text(out.getvalue(), encoding="utf-8")
        os.replace(temporary, root / INDEX)
    finally:
        os.close(guard)
    return root / INDEX


def counts(found: dict[str, State]) -> dict[str, int]:
    """status -> how many sub-tasks have it."""
    tally: dict[str, int] = {}
    for st in found.values():
        tally[st.status] = tally.get(st.status, 0) + 1
    return tally


def declare(text: str, options: Sequence[str], add: bool, limit: int) -> str:
    """A new task's config text with its `--sweep` options written, the sweep (written or
    inherited) checked: what start-task refuses before anything moves."""
    if options:
        text = write_grid(text, options, add)
    found = read(text, None, limit)
    if found is not None:
        check_keys(text, found)
    return text


def running(task_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """The sub-tasks of a task folder whose run is going on now (here, or on another host): (id, record)."""
    root = task_dir / SUBTASKS
    found = []
    for sub_dir in sorted(root.iterdir()) if root.is_dir() else ():
        if sub_dir.is_dir() and (st := state(sub_dir)).status == RUNNING:
            found.append((sub_dir.name, st.record or {}))
    return found


def summary(task_dir: Path) -> str:
    """One line on a sweep's sub-tasks for the results commit ('' for a task without them)."""
    try:
        found = load(task_dir)
    except UsageError:
        return ""
    if found is None:
        return ""
    tally = counts(states(task_dir, found))
    return f"sub-tasks: {', '.join(f'{n} {status}' for status, n in sorted(tally.items()))} (subtasks/{INDEX})"
