"""start-task, finish-task and debug start/finish through real git, real DVC and dlgit's hooks: the
whole life of a task, task worktrees, and for each flow a crash after every step, continue and abort."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import Repo
from flowkit import CONFLICT, commits, flow, killed, ok, picture, released_dvc_repo, steps_of

from dlgit.tasks.flows import PACK_FROM

TRAIN = '''\
import os, sys, time
import yaml
from tqdm import tqdm

config = yaml.safe_load(open(os.environ["DLGIT_CONFIG"]))
for _ in tqdm(range(200), file=sys.stderr, mininterval=0):
    pass
print("lr", config.get("lr"), "debug", config["DEBUG"], "resume", config["RESUME"])
os.makedirs("checkpoints", exist_ok=True)
with open("checkpoints/best.pt", "wb") as out:  # over the large-file limit and a checkpoint pattern
    out.truncate(6 * 1024 * 1024)
with open("metrics.json", "w") as out:
    out.write('{"loss": 0.1}')
time.sleep(float(os.environ.get("TRAIN_SECONDS", "0")))
'''


def tree(repo: Repo, rev: str) -> set[str]:
    return set(repo.git("ls-tree", "-r", "--name-only", rev).stdout.split())


def task_branch(repo: Repo) -> str:
    return next(name for line in repo.git("branch").stdout.splitlines() if (name := line.strip(" *+")).startswith("task-"))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`dlgit init --dvc` in an empty folder, a train.py that logs through tqdm and writes a big
    checkpoint, lr in the template config; released once so that main and dev hold it."""
    root = tmp_path_factory.mktemp("tasks")
    extra = "lr: 0.1         # the learning rate\noptimizer:\n  momentum: 0.9  # SGD\n"
    return released_dvc_repo(root / "repo", TRAIN, extra).path


@pytest.fixture
def repo(base: Path, tmp_path: Path) -> Repo:
    copy = tmp_path / "repo"
    shutil.copytree(base, copy, symlinks=True)
    return Repo(copy)


# --- start-task -----------------------------------------------------------------------------------


def test_start_task_copies_the_template_and_keeps_the_config_text(repo: Repo) -> None:
    template = (repo.path / "tasks/main/config.yaml").read_text()
    ok(flow(repo, "start-task", "--set", "lr=0.01", "--set", "optimizer.momentum=0.5"))
    branch = repo.branch()
    assert branch.startswith("task-0.2.0-") and branch.endswith("-lr0.01-momentum0.5")
    config = (repo.path / f"tasks/{branch}/config.yaml").read_text()
    assert config == template.replace("lr: 0.1", "lr: 0.01").replace("momentum: 0.9", "momentum: 0.5")  # only the values change
    assert tree(repo, "HEAD") - tree(repo, "main") == {f"tasks/{branch}/config.yaml", f"tasks/{branch}/train.py"}
    assert repo.git("log", "-1", "--format=%s").stdout.strip() == "task: start lr0.01-momentum0.5"


def test_start_task_refusals_change_nothing(repo: Repo) -> None:
    before = picture(repo)
    unknown = flow(repo, "start-task", "--set", "learning_rate=1")
    assert unknown.returncode == 2 and "learning_rate" in unknown.stderr and "--add" in unknown.stderr
    bad = flow(repo, "start-task", "--set", "lr")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    assert picture(repo) == before
    for start in ("dev", "feature-x", "hotfix-y"):
        if start != "dev":
            repo.git("branch", start, "dev")
        repo.git("switch", "-q", start)
        refused = flow(repo, "start-task", "x")
        assert refused.returncode == 2 and "starts from main or another task branch" in refused.stderr
    assert "-key1 from main" in ok(flow(repo, "start-task", "--add", "--set", "new.key=1", "--from", "main", "--dry-run"))


# --- the life of a task ------------------------------------------------------------------------------


def test_a_task_runs_and_its_results_reach_main_and_dev_through_dvc(repo: Repo) -> None:
    ok(flow(repo, "start-task", "base", "--set", "lr=0.05"))
    branch = repo.branch()
    folder = f"tasks/{branch}"
    ran = repo.dlgit("run")
    assert ran.returncode == 0, ran.stderr
    log = next((repo.path / folder / "logs").iterdir()).read_text()
    assert log.count("200/200") == 1 and "\r" not in log and "lr 0.05" in log
    out = ok(flow(repo, "finish-task"))
    assert "dvc remote add" in out  # no remote yet: how to add one, not a `dvc push` that fails
    for target in ("main", "dev"):
        files = tree(repo, target)
        assert f"{folder}/checkpoints/best.pt.dvc" in files and f"{folder}/checkpoints/best.pt" not in files
        assert f"{folder}/metrics.json" in files and any(path.startswith(f"{folder}/runs/") for path in files)
        merge = repo.git("log", "-1", "--format=%s", target).stdout.strip()
        assert merge == f"task: merge {branch}"
        changed = repo.git("diff", "--name-only", f"{target}^1", target).stdout.split()
        assert all(path.startswith(folder + "/") for path in changed)
        ok(repo.dlgit("check", "--branch", target, target))
    [frozen] = [path for path in tree(repo, "main") if path.startswith(f"{folder}/runs/") and path.endswith(".pip-freeze.txt")]
    assert "tqdm==" in repo.git("show", f"main:{frozen}").stdout  # the run's packages, committed though the run did not wait for them
    assert branch not in repo.git("branch").stdout
    listed = json.loads(ok(repo.dlgit("tasks", "--format", "json")))
    [mine] = [task for task in listed if task["name"] == branch]
    assert mine["state"] == "merged" and mine["metrics"] == {"loss": 0.1}
    # a second task from the first (merged into main): its config, not its outputs
    ok(flow(repo, "start-task", "again", "--from", "main", "--resume", branch))
    second = repo.branch()
    assert tree(repo, "HEAD") - tree(repo, "main") == {f"tasks/{second}/config.yaml", f"tasks/{second}/train.py"}
    config = (repo.path / f"tasks/{second}/config.yaml").read_text()
    assert "lr: 0.05" in config and f"RESUME: ../{branch}/checkpoints/best.pt" in config


def test_finish_task_without_dvc_stops_before_any_commit(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "plain")
    repo.path.mkdir()
    ok(repo.dlgit("init"))
    ok(flow(repo, "start-task", "big"))
    folder = repo.path / f"tasks/{repo.branch()}"
    (folder / "model.pt").write_bytes(b"\0" * 100)
    before = picture(repo)
    proc = flow(repo, "finish-task")
    assert proc.returncode == 2 and "model.pt" in proc.stderr and "dlgit init --dvc" in proc.stderr
    assert picture(repo) == before and (folder / "model.pt").exists()


def loose_objects(repo: Repo) -> int:
    return int(dict(line.split(": ") for line in repo.git("count-objects", "-v").stdout.splitlines())["count"])


def test_many_results_go_into_one_pack_and_their_commit_is_judged_in_process(repo: Repo) -> None:
    """From PACK_FROM results on, their commit stages them into one pack file (not one loose object
    each); dlgit's own hooks judge it in dlgit's process, and check agrees with them."""
    ok(flow(repo, "start-task", "many"))
    folder = f"tasks/{repo.branch()}"
    for i in range(PACK_FROM):
        repo.write(f"{folder}/results/r{i}.txt", f"{i}\n")
    loose = loose_objects(repo)
    out = ok(flow(repo, "finish-task"))
    assert "judged by dlgit's pre-commit and commit-msg hooks, in this process" in out
    assert loose_objects(repo) - loose < 20  # trees and commits, not a blob per result
    for target in ("main", "dev"):
        assert {f"{folder}/results/r{i}.txt" for i in range(PACK_FROM)} <= tree(repo, target)
        ok(repo.dlgit("check", "--branch", target, target))


@pytest.mark.parametrize("hook", ["dlgit's", "the user's"])
def test_a_results_commit_the_rules_refuse_stops_finish_task_whoever_runs_the_hook(repo: Repo, tmp_path: Path, hook: str) -> None:
    """A task config that lost VERSION: the results commit is refused by the pre-commit hook,
    judged in dlgit's process (its own hooks) or run by git (a hook of the user's that calls
    dlgit: git runs every hook then, dlgit's too); nothing reaches main, abort goes back."""
    ok(flow(repo, "start-task", "broken"))
    folder = repo.path / f"tasks/{repo.branch()}"
    config = folder / "config.yaml"
    config.write_text("".join(line for line in config.read_text().splitlines(keepends=True) if not line.startswith("VERSION:")))
    (folder / "result.txt").write_text("1\n")
    marker = tmp_path / "ran"
    if hook == "the user's":
        script = repo.path / ".git" / "hooks" / "pre-commit"
        script.write_text(f"#!/bin/sh\necho ran >> '{marker}'\nexec dlgit hook pre-commit\n")
        script.chmod(0o755)
    main = repo.head("main")
    proc = flow(repo, "finish-task")
    assert proc.returncode == 1 and "task-config" in proc.stdout, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and repo.head("main") == main
    assert marker.exists() is (hook == "the user's")
    ok(flow(repo, "abort"))
    assert repo.head("main") == main and (folder / "result.txt").exists()


def test_finish_task_refused_while_its_run_is_active(repo: Repo) -> None:
    ok(flow(repo, "start-task", "busy"))
    runner = subprocess.Popen([shutil.which("dlgit") or "dlgit", "run"], cwd=repo.path, env={**os.environ,
                              "TRAIN_SECONDS": "5"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while "running" not in repo.dlgit("tasks").stdout:
            assert time.monotonic() < deadline and runner.poll() is None, "the run never showed as running"
            time.sleep(0.05)
        proc = flow(repo, "finish-task")
        assert proc.returncode == 2 and "is active" in proc.stderr
    finally:
        runner.kill()
        runner.wait()


def test_a_task_in_its_own_worktree(repo: Repo) -> None:
    ok(flow(repo, "start-task", "wt", "--worktree"))
    branch = task_branch(repo)
    where = repo.path.parent / f"{repo.path.name}.tasks" / branch
    task = Repo(where)
    assert repo.branch() == "main" and task.branch() == branch
    runner = subprocess.Popen([shutil.which("dlgit") or "dlgit", "run"], cwd=where, env={**os.environ,
                              "TRAIN_SECONDS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    repo.git("switch", "-q", "dev")  # the researcher works on meanwhile
    repo.write("model/net.py", "NET = 2\n")
    repo.commit("feat: work goes on during the run")
    assert runner.wait(timeout=60) == 0
    out = ok(flow(task, "finish-task"))
    assert "removed the task's work tree" in out and not where.exists()
    for target in ("main", "dev"):
        assert f"tasks/{branch}/checkpoints/best.pt.dvc" in tree(repo, target)
    assert repo.branch() == "dev" and repo.git("status", "--porcelain").stdout == ""


# --- debug -------------------------------------------------------------------------------------------


def test_debug_carries_code_not_logs_to_dev(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    ok(flow(repo, "debug", "start", "tiny"))
    branch = repo.branch()
    assert branch.startswith("debug-0.2.0-") and "DEBUG: true" in (repo.path / f"tasks/{branch}/config.yaml").read_text()
    repo.write("model/net.py", "NET = 'fixed while debugging'\n")
    repo.write("model/new.py", "NEW = 1\n")
    repo.write(f"tasks/{branch}/logs/run.log", "debug output\n")
    ok(flow(repo, "debug", "finish"))
    assert repo.branch() == "dev" and branch not in repo.git("branch").stdout
    assert (repo.path / "model/net.py").read_text() == "NET = 'fixed while debugging'\n" and (repo.path / "model/new.py").exists()
    assert not (repo.path / f"tasks/{branch}").exists()
    assert repo.git("status", "--porcelain").stdout.split("\n")[0].endswith("model/net.py")


def test_debug_finish_pop_conflict_keeps_the_stash(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    ok(flow(repo, "debug", "start"))
    repo.write("model/net.py", "NET = 'debug'\n")
    # meanwhile dev gets the same line changed
    repo.git("stash", "-q")
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 'dev'\n")
    repo.commit("fix: net on dev")
    repo.git("switch", "-q", "-")
    repo.git("stash", "pop", "-q")
    stopped = flow(repo, "debug", "finish")
    assert stopped.returncode == CONFLICT and "model/net.py" in stopped.stdout
    assert "dlgit: code changes made" in repo.git("stash", "list").stdout
    repo.write("model/net.py", "NET = 'both'\n")
    repo.git("add", "model/net.py")
    ok(flow(repo, "continue"))
    assert "code changes made" not in repo.git("stash", "list").stdout
    assert (repo.path / "model/net.py").read_text() == "NET = 'both'\n" and repo.branch() == "dev"


# --- a crash after every step ------------------------------------------------------------------------


@pytest.mark.parametrize("step", [1, 2, 3])
def test_crash_of_start_task_in_a_worktree_then_abort_or_continue(repo: Repo, step: int) -> None:
    before = picture(repo)
    assert killed(flow(repo, "start-task", "x", "--worktree", crash=step))
    ok(flow(repo, "abort"))
    assert picture(repo) == before and not any((repo.path.parent / f"{repo.path.name}.tasks").glob("task-*"))
    assert killed(flow(repo, "start-task", "x", "--worktree", crash=step))
    ok(flow(repo, "continue"))
    branch = task_branch(repo)
    assert Repo(repo.path.parent / f"{repo.path.name}.tasks" / branch).branch() == branch


def prepare_finish(repo: Repo) -> tuple[str, ...]:
    ok(flow(repo, "start-task", "crash"))
    assert repo.dlgit("run").returncode == 0
    return ("finish-task",)


def prepare_debug_finish(repo: Repo) -> tuple[str, ...]:
    repo.git("switch", "-q", "dev")
    ok(flow(repo, "debug", "start"))
    repo.write("model/net.py", "NET = 'debug'\n")
    repo.write(f"tasks/{repo.branch()}/logs/run.log", "x\n")
    return ("debug", "finish")


PREPARED = {
    "start-task": (lambda repo: ("start-task", "x", "--set", "lr=0.2"), 3),
    "finish-task": (prepare_finish, 7),
    "debug start": (lambda repo: (repo.git("switch", "-q", "dev"), ("debug", "start"))[1], 3),
    "debug finish": (prepare_debug_finish, 5),
}
CASES = [(name, step) for name, (_, count) in PREPARED.items() for step in range(1, count + 1)]


@pytest.mark.parametrize(("name", "step"), CASES, ids=[f"{n}-after-step-{s}" for n, s in CASES])
def test_crash_after_a_step_then_continue_or_abort(repo: Repo, name: str, step: int) -> None:
    prepare, count = PREPARED[name]
    args = prepare(repo)
    assert steps_of(repo, *args) == count
    before, known = picture(repo), commits(repo)
    assert killed(flow(repo, *args, crash=step))
    twin = Repo(repo.path.with_name("twin"))
    shutil.copytree(repo.path, twin.path, symlinks=True)
    ok(flow(repo, "continue"))
    assert known <= commits(repo)
    if name == "finish-task":
        assert any(path.endswith("best.pt.dvc") for path in tree(repo, "main"))
    ok(flow(twin, "abort"))
    after = picture(twin)
    assert (after.refs, after.head, after.stash) == (before.refs, before.head, before.stash)
    assert outside_dvc(after.status) == outside_dvc(before.status)
    assert known <= commits(twin)


def outside_dvc(status: str) -> list[str]:
    """The status lines but DVC's cache (it keeps what it was given) and the run's pip freeze
    (finish-task copies it beside the run's record before its flow starts: it is the run's)."""
    return [line for line in status.splitlines() if not line.startswith("!! .dvc/") and not line.endswith(".pip-freeze.txt")]
