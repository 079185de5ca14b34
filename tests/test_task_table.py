"""`dlgit tasks` and `dlgit tasks diff` over real task branches, worktrees and runs; then the pure
parts in-process (flattening, differences, fitting a table, finding a task)."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
from pathlib import Path

import pytest
from conftest import TEMPLATE_CONFIG, Repo

from dlgit.errors import UsageError
from dlgit.tasks import lock
from dlgit.tasks.table import TaskInfo, differences, find, flatten, render

MERGED = "task-0.1.0-20260101T000000-lr0.02"
FAILED = "task-0.1.0-20260102T000000-lr0.05"  # run in a worktree of its own, which keeps its records
RUNNING = "task-0.1.0-20260103T000000-lr0.1-bs64"
FINISHED = "task-0.1.0-20260104T000000-seed7"
OPEN = "task-0.1.0-20260105T000000-lr0.05"
METRICS_SCRIPT = "import json, sys\njson.dump({metrics}, open('metrics.json', 'w'))\nsys.exit({code})\n"
LONG_NOTE = "a long note about this experiment " * 4


def task(repo: Repo, name: str, config: str, script: str = "print('train')\n") -> None:
    """A task branch from main with its folder committed (hooks skipped: the setup is not under test)."""
    repo.git("switch", "-q", "-c", name, "main")
    repo.write(f"tasks/{name}/config.yaml", config)
    repo.write(f"tasks/{name}/train.py", script)
    repo.commit(f"task: start {name}", f"tasks/{name}", extra=("--no-verify",))


def with_values(**values: object) -> str:
    text = TEMPLATE_CONFIG
    for key, value in values.items():
        if f"\n{key}: " in text:
            text = "\n".join(f"{key}: {value}" if line.startswith(f"{key}:") else line for line in text.split("\n"))
        else:
            text += f"{key}: {value}\n"
    return text


def ran(repo: Repo, cwd: Path | None = None) -> int:
    result = repo.dlgit("run") if cwd is None else Repo(cwd).dlgit("run")
    return result.returncode


def scenario(repo: Repo, tmp_path: Path) -> None:
    """A merged task (its branch deleted), a failed run in a worktree, a running task, a finished
    one and an open one."""
    task(repo, MERGED, with_values(lr=0.02), METRICS_SCRIPT.format(metrics={"acc": 0.8, "loss": {"val": 0.5}}, code=0))
    assert ran(repo) == 0
    repo.commit("task: results of lr0.02", f"tasks/{MERGED}", extra=("--no-verify",))
    repo.git("switch", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "--no-verify", "-m", f"task: merge {MERGED}", MERGED)
    repo.git("branch", "-q", "-d", MERGED)

    task(repo, FAILED, with_values(lr=0.05), "raise SystemExit(1)\n")
    repo.git("switch", "-q", "main")
    repo.git("worktree", "add", "-q", str(tmp_path / "failed-worktree"), FAILED)
    assert ran(repo, tmp_path / "failed-worktree") == 1

    task(repo, RUNNING, with_values(lr=0.1, bs=64))
    task(repo, FINISHED, with_values(RANDOM_SEED=7), METRICS_SCRIPT.format(metrics={"acc": 0.85}, code=0))
    assert ran(repo) == 0
    repo.commit("task: record the run", f"tasks/{FINISHED}", extra=("--no-verify",))
    task(repo, OPEN, with_values(lr=0.05, note=repr(LONG_NOTE)))
    repo.git("switch", "-q", "main")


def hold_lock(repo: Repo, branch: str) -> lock.RunLock:
    held, _ = lock.acquire(lock.Holder(os.getpid(), socket.gethostname(), branch, str((repo.path / ".git").resolve()),
                                       str(repo.path), "2026-01-03T00:00:00"))
    return held


def test_tasks_in_every_state_as_json_csv_and_a_table(repo: Repo, tmp_path: Path) -> None:
    scenario(repo, tmp_path)
    held = hold_lock(repo, RUNNING)
    try:
        trace = tmp_path / "trace"
        result = repo.dlgit("tasks", "--format", "json", env={"GIT_TRACE": str(trace)})
        as_csv = repo.dlgit("tasks", "--format", "csv")
        table = repo.dlgit("tasks", env={"COLUMNS": "120"})
    finally:
        held.release()
    assert result.returncode == 0, result.stderr
    tasks = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert list(tasks) == [MERGED, FAILED, RUNNING, FINISHED, OPEN]
    assert {name: entry["state"] for name, entry in tasks.items()} == {
        MERGED: "merged", FAILED: "open", RUNNING: "running", FINISHED: "finished", OPEN: "open"}
    merged, failed, running, finished, still_open = tasks.values()
    assert merged["branch"] is False and merged["runs"] == 1 and merged["last_run"]["exit_code"] == 0
    assert merged["params"] == {"lr": 0.02} and merged["metrics"] == {"acc": 0.8, "loss.val": 0.5}
    assert (merged["version"], merged["time"], merged["desc"]) == ("0.1.0", "20260101T000000", "lr0.02")
    assert failed["last_run"]["exit_code"] == 1 and failed["last_run"]["state"] == "failed"  # read from its worktree
    assert failed["last_run"]["duration_s"] > 0 and failed["params"] == {"lr": 0.05}
    assert running["holder"]["pid"] == os.getpid() and running["params"] == {"lr": 0.1, "bs": 64} and running["last_run"] is None
    assert finished["params"] == {"RANDOM_SEED": 7} and finished["metrics"] == {"acc": 0.85}
    assert still_open["runs"] == 0 and still_open["metrics"] == {}
    git_processes = trace.read_text().count("trace: built-in: git")
    assert git_processes <= 8, trace.read_text()  # a handful in all, not several per task

    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [row["name"] for row in rows] == list(tasks)
    assert rows[0]["params.lr"] == "0.02" and rows[0]["metrics.loss.val"] == "0.5" and rows[2]["params.bs"] == "64"
    assert rows[1]["last_exit_code"] == "1" and rows[3]["metrics.acc"] == "0.85" and rows[4]["params.note"] == LONG_NOTE
    assert rows[4]["metrics.acc"] == "" and rows[2]["state"] == "running"

    lines = table.stdout.splitlines()
    assert lines[0].split() == ["TASK", "VERSION", "CREATED", "STATE", "EXIT", "TOOK", "PARAMS", "METRICS"]
    assert len(lines) == 6 and all(len(line) <= 120 for line in lines)
    assert "merged" in lines[1] and "acc=0.8 loss.val=0.5" in lines[1] and "lr=0.02" in lines[1]
    assert f"running (pid {os.getpid()})" in lines[3] and "2026-01-03 00:00" in lines[3]
    assert "…" in lines[5]  # the long note is cut to fit


def test_tasks_of_the_checked_out_branch_read_from_the_work_tree(repo: Repo) -> None:
    task(repo, OPEN, with_values(lr=0.05))
    assert ran(repo) == 0  # the record is not committed
    repo.write(f"tasks/{OPEN}/metrics.yaml", "acc: 0.7\nper_class: {cat: 0.6, dog: 0.8}\n")
    result = repo.dlgit("tasks", "--format", "json")
    [entry] = json.loads(result.stdout)
    assert entry["runs"] == 1 and entry["state"] == "finished"
    assert entry["metrics"] == {"acc": 0.7, "per_class.cat": 0.6, "per_class.dog": 0.8}


def test_no_tasks_and_not_a_repository(repo: Repo, tmp_path: Path) -> None:
    empty = repo.dlgit("tasks")
    assert empty.returncode == 0 and "dlgit start-task" in empty.stdout
    assert json.loads(repo.dlgit("tasks", "--format", "json").stdout) == []
    outside = Repo(tmp_path).dlgit("tasks")
    assert outside.returncode == 2 and "not inside a git repository" in outside.stderr


def test_tasks_diff(repo: Repo) -> None:
    task(repo, FAILED, with_values(lr=0.05))
    repo.write(f"tasks/{FAILED}/metrics.json", json.dumps({"acc": 0.8, "loss": {"val": 0.5}}))
    repo.commit("task: results of lr0.05", f"tasks/{FAILED}", extra=("--no-verify",))
    task(repo, FINISHED, with_values(RANDOM_SEED=7, bs=32))
    repo.write(f"tasks/{FINISHED}/metrics.json", json.dumps({"acc": 0.85, "loss": {"val": 0.5}}))
    repo.commit("task: results of seed7", f"tasks/{FINISHED}", extra=("--no-verify",))
    task(repo, OPEN, with_values(lr=0.05))
    repo.git("switch", "-q", "main")

    shown = repo.dlgit("tasks", "diff", "20260102T000000-lr0.05", "seed7", env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    rows = [line.split() for line in shown.stdout.splitlines()]
    assert rows[0] == ["KEY", FAILED, FINISHED]
    assert rows[1:] == [["config", "RANDOM_SEED", "42", "7"], ["config", "lr", "0.05", "0.01"], ["config", "bs", "—", "32"],
                        ["metrics", "acc", "0.8", "0.85"]]
    as_json = json.loads(repo.dlgit("tasks", "diff", FAILED, "seed7", "--format", "json").stdout)
    assert as_json["a"] == FAILED and as_json["b"] == FINISHED
    assert as_json["config"] == {"RANDOM_SEED": {"a": 42, "b": 7}, "lr": {"a": 0.05, "b": 0.01}, "bs": {"b": 32}}
    assert as_json["metrics"] == {"acc": {"a": 0.8, "b": 0.85}}
    no_metrics = json.loads(repo.dlgit("tasks", "diff", FAILED, OPEN, "--format", "json").stdout)
    assert no_metrics["config"] == {} and no_metrics["metrics"] == {"acc": {"a": 0.8}, "loss.val": {"a": 0.5}}
    same = repo.dlgit("tasks", "diff", FAILED, FAILED)
    assert same.returncode == 0 and "same config and metrics" in same.stdout
    ambiguous = repo.dlgit("tasks", "diff", "lr0.05", "seed7")
    assert ambiguous.returncode == 2 and FAILED in ambiguous.stderr and OPEN in ambiguous.stderr
    unknown = repo.dlgit("tasks", "diff", "nothing", "seed7")
    assert unknown.returncode == 2 and "no task is named or ends in nothing" in unknown.stderr


# --- in-process ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "flat"), [
    ({"a": 1, "b": {"c": 2, "d": {"e": [1, 2]}}}, {"a": 1, "b.c": 2, "b.d.e": [1, 2]}),
    ({"empty": {}}, {"empty": {}}),
    ([1, 2], {}),
    (None, {}),
])
def test_flatten(value: object, flat: dict) -> None:
    assert flatten(value) == flat


def test_differences_name_the_sides_that_have_a_key() -> None:
    assert differences({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 5, "d": 4}) == {"b": {"a": 2, "b": 5}, "c": {"a": 3}, "d": {"b": 4}}


def test_render_cuts_the_widest_flexible_column_first() -> None:
    text = render(("NAME", "STATE", "PARAMS"), [("x" * 30, "open", "y" * 60)], flexible=(0, 2), width=70)
    _, row = text.splitlines()
    assert len(row) == 70 and row.startswith("x" * 30 + "  open   ") and row.endswith("y…")
    narrower = render(("NAME", "STATE", "PARAMS"), [("x" * 30, "open", "y" * 60)], flexible=(0, 2), width=60).splitlines()[1]
    assert len(narrower) == 60 and "x…  open" in narrower


def test_find_by_name_or_unique_end() -> None:
    def info(name: str) -> TaskInfo:
        return TaskInfo(name, None, None, None, "open", True, None, (), {}, {}, {})

    tasks = [info(FAILED), info(OPEN), info(FINISHED)]
    assert find(tasks, FINISHED).name == FINISHED and find(tasks, "seed7").name == FINISHED
    with pytest.raises(UsageError, match="several"):
        find(tasks, "lr0.05")
    with pytest.raises(UsageError, match="no task"):
        find(tasks, "lr9")
