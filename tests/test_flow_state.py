"""Flow state is the repository's: one lock around it (two flows started at once never overwrite
each other's state), and the unfinished flow and the undo record are seen from every work tree,
so that a task finished in its own work tree is continued, aborted or undone from the main one."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Repo
from flowkit import commits, flow, killed, ok, picture
from test_task_flows import (
    base,  # noqa: F401  (a fixture: a repository with DVC, a trainer and a release)
    outside_dvc,
    tree,
)


@pytest.fixture
def repo(base: Path, tmp_path: Path) -> Repo:  # noqa: F811  (the task repository, not conftest's)
    copy = tmp_path / "repo"
    shutil.copytree(base, copy, symlinks=True)
    return Repo(copy)


LOCK_MESSAGE = "another dlgit flow is running in this repository"


def state_dir(repo: Repo) -> Path:
    return repo.path / ".git" / "dlgit"


def test_a_held_flow_lock_refuses_any_other_flow_and_changes_nothing(repo: Repo) -> None:
    before = picture(repo)
    lock = state_dir(repo) / "flow.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        for args in (("feature", "start", "x"), ("start-task", "y"), ("continue",), ("abort",), ("undo",)):
            refused = flow(repo, *args)
            assert refused.returncode == 2 and LOCK_MESSAGE in refused.stderr, refused.stderr
        assert picture(repo) == before
    ok(flow(repo, "feature", "start", "x"))


def test_flows_started_at_once_never_overwrite_each_others_state(repo: Repo) -> None:
    dlgit = shutil.which("dlgit") or "dlgit"
    succeeded: list[str] = []
    for round_ in range(6):
        names = [f"r{round_}a", f"r{round_}b"]
        procs = [subprocess.Popen([dlgit, "feature", "start", name], cwd=repo.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for name in names]
        for name, proc in zip(names, procs, strict=True):
            out, err = proc.communicate(timeout=120)
            assert proc.returncode in (0, 2), out + err
            if proc.returncode == 2:
                assert LOCK_MESSAGE in err, err
            else:
                succeeded.append(f"feature-{name}")
        assert not (state_dir(repo) / "flow.json").exists()  # nothing left unfinished
    branches = repo.git("branch", "--format=%(refname:short)").stdout.split()
    assert set(succeeded) <= set(branches) and succeeded
    log = [json.loads(line) for line in (state_dir(repo) / "flows.jsonl").read_text().splitlines()]
    assert sorted(entry["title"].split()[0] for entry in log if entry["status"] == "finished" and entry["name"] == "feature start") \
        == sorted(succeeded)


def _task_in_worktree(repo: Repo, desc: str) -> tuple[Repo, str]:
    ok(flow(repo, "start-task", desc, "--worktree"))
    branch = next(name for name in repo.git("branch", "--format=%(refname:short)").stdout.split() if name.endswith(f"-{desc}"))
    task = Repo(repo.path.parent / f"{repo.path.name}.tasks" / branch)
    assert task.dlgit("run").returncode == 0
    return task, branch


@pytest.mark.parametrize("step", [3, 4, 7])
def test_a_killed_worktree_finish_task_is_continued_from_the_main_work_tree(repo: Repo, step: int) -> None:
    task, branch = _task_in_worktree(repo, "wt")
    known = commits(repo)
    assert killed(flow(task, "finish-task", crash=step))
    shown = repo.dlgit("feature", "start", "z")
    assert shown.returncode == 2 and "finish-task" in shown.stderr and "dlgit continue" in shown.stderr  # seen from the main tree
    out = ok(flow(repo, "continue"))
    assert "the flow runs in the work tree" in out
    assert not task.path.exists(), out  # the task's own work tree went, as without the crash
    pointer = f"tasks/{branch}/checkpoints/best.pt.dvc"
    assert pointer in tree(repo, "main") and pointer in tree(repo, "dev")
    assert known <= commits(repo) and repo.branch() == "main"
    assert branch not in repo.git("branch", "--format=%(refname:short)").stdout.split()


def test_a_killed_worktree_finish_task_is_aborted_from_the_main_work_tree(repo: Repo) -> None:
    task, branch = _task_in_worktree(repo, "wt")
    tip, results = task.head(), task.git("status", "--porcelain", "--untracked-files=all").stdout
    main, dev = repo.head("main"), repo.head("dev")
    assert killed(flow(task, "finish-task", crash=4))
    ok(flow(repo, "abort"))
    assert (repo.head("main"), repo.head("dev"), repo.head(branch)) == (main, dev, tip)
    assert task.branch() == branch
    assert outside_dvc(task.git("status", "--porcelain", "--untracked-files=all").stdout) == outside_dvc(results)
    assert repo.branch() == "main"


def test_undo_after_a_worktree_finish_task_takes_back_the_finish(repo: Repo) -> None:
    task, branch = _task_in_worktree(repo, "wt")
    main, dev, tip = repo.head("main"), repo.head("dev"), task.head()
    checkpoint = task.path / f"tasks/{branch}/checkpoints/best.pt"
    digest = hashlib.md5(checkpoint.read_bytes()).hexdigest()
    ok(flow(task, "finish-task"))
    assert not task.path.exists()  # the work tree went
    out = ok(flow(repo, "undo"))
    assert "dlgit undo: finish-task" in out and f"the task's work tree {task.path} is back" in out
    assert (repo.head("main"), repo.head("dev"), repo.head(branch)) == (main, dev, tip)
    assert repo.branch() == "main" and task.branch() == branch  # the task's branch in its own work tree again, main where it was
    assert hashlib.md5(checkpoint.read_bytes()).hexdigest() == digest  # out of the shared DVC cache
    status = task.git("status", "--porcelain", "--untracked-files=all").stdout
    assert f"?? tasks/{branch}/checkpoints/best.pt" in status and ".dvc" not in status  # uncommitted again, no DVC pointer
    assert (task.path / ".dvc" / "config.local").is_file()
    cache = subprocess.run(["dvc", "cache", "dir"], cwd=task.path, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(cache).resolve() == (repo.path / ".dvc" / "cache").resolve()  # as start-task shares it
    ok(flow(task, "finish-task"))  # and it finishes again, from the restored tree
    assert not task.path.exists() and f"tasks/{branch}/checkpoints/best.pt.dvc" in tree(repo, "main")


@pytest.mark.parametrize("typed_in", ["main", "worktree"])
def test_undo_finds_the_same_record_from_every_work_tree(repo: Repo, typed_in: str) -> None:
    task, branch = _task_in_worktree(repo, "kept")
    main, tip = repo.head("main"), task.head()
    ok(flow(task, "finish-task", "--keep-worktree", "--keep-branch"))
    logged = [ok(where.dlgit("log", "--format", "json")) for where in (repo, task)]
    assert logged[0] == logged[1]
    out = ok(flow(repo if typed_in == "main" else task, "undo"))
    assert "dlgit undo: finish-task" in out
    assert (repo.head("main"), repo.head(branch), task.branch()) == (main, tip, branch)
    again = flow(task if typed_in == "main" else repo, "undo")
    assert again.returncode == 2 and "no finished flow to undo" in again.stderr  # one record, taken back once


def test_worktree_is_a_flag_and_never_eats_the_description(repo: Repo) -> None:
    planned = ok(flow(repo, "start-task", "--worktree", "mydesc", "--dry-run"))
    assert "-mydesc" in planned and f"{repo.path.name}.tasks" in planned
    elsewhere = repo.path.parent / "elsewhere"
    ok(flow(repo, "start-task", "--worktree-path", str(elsewhere), "run2"))
    assert Repo(elsewhere).branch().endswith("-run2")
    assert os.path.isdir(elsewhere / "tasks" / Repo(elsewhere).branch())
