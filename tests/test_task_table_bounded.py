"""`dlgit tasks` over hostile task files (a task branch is anyone's push): every file the table
reads — config.yaml, the run records, the metrics file, in a work tree and in a commit — goes
through the bounded loaders; one bad task is one note on its row, and a symlink is never followed
out of the task folder."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest
from conftest import TEMPLATE_CONFIG, Repo

from dlgit.tasks.sweep import read_index

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(7))
GOOD = "task-0.1.0-20260101T000000-good"
BAD = "task-0.1.0-20260102T000000-bad"
NO_TERMINAL = {"COLUMNS": ""}  # output to a pipe, no width given
RECORD = "state: finished\nexit_code: 0\nduration_s: 1.5\ninterrupted: false\n"

HOSTILE = {  # file in the task folder -> content
    "config.yaml": ALIAS_BOMB,
    "runs/20260102T000000.yaml": "[" * 100_000 + "]" * 100_000,
    "metrics.json": "[" * 100_000 + "]" * 100_000,
}


def task_branch(repo: Repo, name: str, files: dict[str, str | bytes]) -> None:
    repo.git("switch", "-q", "-c", name, "main")
    repo.write(f"tasks/{name}/config.yaml", TEMPLATE_CONFIG)
    for path, content in files.items():
        repo.write(f"tasks/{name}/{path}", content)
    repo.commit(f"task: start {name}", f"tasks/{name}", extra=("--no-verify",))
    repo.git("switch", "-q", "main")


def rows(repo: Repo, cwd: Path | None = None) -> dict[str, dict]:
    started = time.monotonic()
    proc = (repo if cwd is None else Repo(cwd)).dlgit("tasks", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - started < 20  # bounded work (the bomb took minutes before)
    return {row["name"]: row for row in json.loads(proc.stdout)}


@pytest.mark.parametrize("where", ["commit", "worktree"])
def test_hostile_files_are_notes_on_their_row_and_the_rest_of_the_table_stands(repo: Repo, tmp_path: Path, where: str) -> None:
    task_branch(repo, GOOD, {"runs/20260101T000000.yaml": RECORD, "metrics.json": json.dumps({"acc": 0.9})})
    task_branch(repo, BAD, HOSTILE)
    if where == "worktree":  # the files are read from the work tree that has the branch checked out
        repo.git("worktree", "add", "-q", str(tmp_path / "bad"), BAD)
    table = rows(repo)
    assert table[GOOD]["metrics"] == {"acc": 0.9} and table[GOOD]["notes"] == []
    notes = " | ".join(table[BAD]["notes"])
    assert "config.yaml" in notes and "metrics.json" in notes and "runs/20260102T000000.yaml" in notes, notes
    assert table[BAD]["metrics"] == {} and table[BAD]["runs"] == 0
    plain = repo.dlgit("tasks", env=NO_TERMINAL)
    assert plain.returncode == 0 and "NOTES" in plain.stdout and "not read" in plain.stdout


def test_big_files_are_not_parsed(repo: Repo) -> None:
    task_branch(repo, BAD, {"metrics.json": json.dumps({f"k{i}": i for i in range(1_000_000)}),
                            "runs/20260102T000000.yaml": "k: v\n" * 300_000})
    notes = " | ".join(rows(repo)[BAD]["notes"])
    assert "metrics.json: larger than" in notes and "runs/20260102T000000.yaml: larger than" in notes


def test_a_symlink_out_of_the_task_folder_is_never_followed(repo: Repo, tmp_path: Path) -> None:
    secret = tmp_path / "docker-config.json"
    secret.write_text(json.dumps({"auths": {"registry": {"auth": "c2VjcmV0LXRva2Vu"}}}))
    task_branch(repo, BAD, {})
    repo.git("worktree", "add", "-q", str(tmp_path / "bad"), BAD)
    folder = tmp_path / "bad" / "tasks" / BAD
    (folder / "metrics.json").symlink_to(secret)
    (folder / "runs").mkdir()
    (folder / "runs" / "20260102T000000.yaml").symlink_to(secret)
    for output in ("json", "csv", "table"):
        proc = repo.dlgit("tasks", "--format", output)
        assert proc.returncode == 0 and "c2VjcmV0" not in proc.stdout, proc.stdout
    assert "symlink out of the task folder" in " ".join(rows(repo)[BAD]["notes"])


def test_a_committed_symlink_is_a_note_not_its_target(repo: Repo, tmp_path: Path) -> None:
    secret = tmp_path / "docker-config.json"
    secret.write_text(json.dumps({"auths": {"registry": {"auth": "c2VjcmV0LXRva2Vu"}}}))
    repo.git("switch", "-q", "-c", BAD, "main")
    repo.write(f"tasks/{BAD}/config.yaml", TEMPLATE_CONFIG)
    (repo.path / "tasks" / BAD / "metrics.json").symlink_to(secret)
    repo.commit(f"task: start {BAD}", f"tasks/{BAD}", extra=("--no-verify",))
    repo.git("switch", "-q", "main")
    (repo.path / "tasks" / BAD).mkdir(exist_ok=True)  # nothing on disk: the branch is read from its commit
    row = rows(repo)[BAD]
    assert row["metrics"] == {} and "metrics.json: a symlink" in " ".join(row["notes"])


def test_the_table_rounds_floats_and_a_pipe_gets_whole_lines(repo: Repo) -> None:
    task_branch(repo, GOOD, {"metrics.json": json.dumps({"acc": 0.912345678, "note": "x" * 300})})
    proc = repo.dlgit("tasks", env=NO_TERMINAL)
    assert "acc=0.9123 " in proc.stdout and "x" * 300 in proc.stdout  # not cut at 80 columns: no terminal
    assert rows(repo)[GOOD]["metrics"]["acc"] == 0.912345678


def tasks_in_a_terminal(repo: Repo, columns: int) -> list[str]:
    """`dlgit tasks` with a real terminal (a pty of `columns` columns) as its output, COLUMNS unset:
    the width comes from the terminal itself."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {name: value for name, value in os.environ.items() if name not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(["dlgit", "tasks"], cwd=repo.path, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    screen = b""
    while select.select([leader], [], [], 60)[0]:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: dlgit closed the terminal
            break
        if not data:
            break
        screen += data
    os.close(leader)
    assert proc.wait(timeout=30) == 0, screen
    return screen.decode().replace("\r\n", "\n").splitlines()


@pytest.mark.parametrize("columns", [60, 200])
def test_the_table_fits_the_terminal_it_is_shown_in(repo: Repo, columns: int) -> None:
    task_branch(repo, GOOD, {"metrics.json": json.dumps({"acc": 0.912345678, "note": "x" * 300})})
    lines = tasks_in_a_terminal(repo, columns)
    assert any(line.startswith("good ") for line in lines), lines
    assert max(map(len, lines)) <= columns and any(len(line) > columns - 10 for line in lines), lines
    assert any(line.endswith("…") for line in lines)  # the metrics column is cut, marked
    piped = repo.dlgit("tasks", env=NO_TERMINAL).stdout
    assert "x" * 300 in piped  # the same table into a pipe: whole lines


SWEEP = "task-0.1.0-20260103T000000-sweep"


@pytest.mark.parametrize("where", ["commit", "worktree"])
def test_hostile_sub_task_files_are_notes_on_their_rows(repo: Repo, tmp_path: Path, where: str) -> None:
    """The sub-tasks' files too: their config, records and metrics, and the sweep's index.csv (too
    big to read; in a work tree, a symlink out of the folder, as is a sub-task folder)."""
    secret = tmp_path / "docker-config.json"
    secret.write_text("id,status\nc2VjcmV0,done\n")
    files: dict[str, str | bytes] = {f"subtasks/lr=0.1/{path}": content for path, content in HOSTILE.items()}
    files.update({"config.yaml": TEMPLATE_CONFIG + "sweep:\n  grid:\n    lr: [0.1, 0.2]\n",
                  "subtasks/lr=0.2/metrics.json": json.dumps({"acc": 0.8}), "subtasks/lr=0.2/runs/20260101T000000.yaml": RECORD,
                  "subtasks/index.csv": "id,status\n" + "lr=0.1,done\n" * 1_500_000})  # 18 MB
    task_branch(repo, SWEEP, files)
    if where == "worktree":
        repo.git("worktree", "add", "-q", str(tmp_path / "sweep"), SWEEP)
        folder = tmp_path / "sweep" / "tasks" / SWEEP / "subtasks"
        (folder / "index.csv").unlink()
        (folder / "index.csv").symlink_to(secret)
        (folder / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
        assert read_index(folder.parent) == []  # not followed
    table = rows(repo)
    assert table[f"{SWEEP}/lr=0.2"]["metrics"] == {"acc": 0.8} and table[f"{SWEEP}/lr=0.2"]["notes"] == []
    bad = table[f"{SWEEP}/lr=0.1"]
    notes = " | ".join(bad["notes"])
    assert "config.yaml" in notes and "metrics.json" in notes and "runs/20260102T000000.yaml" in notes, notes
    assert bad["metrics"] == {} and f"{SWEEP}/elsewhere" not in table
    for output in ("json", "csv", "table"):
        proc = repo.dlgit("tasks", "--format", output)
        assert proc.returncode == 0 and "c2VjcmV0" not in proc.stdout, proc.stdout
