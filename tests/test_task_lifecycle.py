"""A task's whole life as a researcher lives it, with real git, real DVC and a trainer that reads
its own config.yaml, draws nested tqdm bars and writes a 6 MB checkpoint: nothing a run produces is
lost (one DVC cache for every work tree; a work tree holding the only copy of a file is kept) or
mislabelled (a resumed task is named by the core it runs on)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from conftest import Repo
from flowkit import ok, released_dvc_repo

TRAINER = '''\
import json, os, sys, yaml
from tqdm import tqdm

config = yaml.safe_load(open("config.yaml"))  # its own file, not $DLGIT_CONFIG
for epoch in tqdm(range(2), desc="epoch", file=sys.stderr, mininterval=0):
    for batch in tqdm(range(30), desc="batch", leave=False, file=sys.stderr, mininterval=0):
        pass
    print(f"epoch {epoch} done")
os.makedirs("checkpoints", exist_ok=True)
with open("checkpoints/model.pt", "wb") as out:
    out.write(os.urandom(6 * 1024 * 1024))
json.dump({"loss": 0.25, "debug": config["DEBUG"], "resume": config["RESUME"]}, open("metrics.json", "w"))
'''


def tree(repo: Repo, rev: str) -> set[str]:
    return set(repo.git("ls-tree", "-r", "--name-only", rev).stdout.split())


def task_branches(repo: Repo) -> list[str]:
    return sorted(name for line in repo.git("branch").stdout.splitlines() if (name := line.strip(" *+")).startswith("task-"))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lifecycle")
    return released_dvc_repo(root / "repo", TRAINER).path


@pytest.fixture
def repo(base: Path, tmp_path: Path) -> Repo:
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(base, copy, symlinks=True)
    return Repo(copy)


def worktree_task(repo: Repo, desc: str) -> tuple[str, Repo]:
    before = set(task_branches(repo))
    ok(repo.dlgit("start-task", desc, "--worktree"))
    branch = next(name for name in task_branches(repo) if name not in before)
    return branch, Repo(repo.path.parent / f"{repo.path.name}.tasks" / branch)


def test_a_worktree_task_checkpoint_survives_the_work_tree(repo: Repo) -> None:
    branch, task = worktree_task(repo, "wt")
    assert task.dlgit("run").returncode == 0
    digest = hashlib.md5((task.path / f"tasks/{branch}/checkpoints/model.pt").read_bytes()).hexdigest()
    out = ok(task.dlgit("finish-task"))
    assert "removed the task's work tree" in out and not task.path.exists(), out
    assert "dvc push" not in out and "dvc remote add" in out  # no remote yet: no promise `dvc push` cannot keep
    assert f"tasks/{branch}/checkpoints/model.pt.dvc" in tree(repo, "main")
    repo.git("switch", "-q", "main")
    proc = subprocess.run(["dvc", "checkout"], cwd=repo.path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert hashlib.md5((repo.path / f"tasks/{branch}/checkpoints/model.pt").read_bytes()).hexdigest() == digest


def test_a_work_tree_that_holds_the_only_copy_of_a_file_is_kept(repo: Repo) -> None:
    _, task = worktree_task(repo, "keep")
    assert task.dlgit("run").returncode == 0
    (task.path / ".dvc" / "config.local").unlink()  # a tree set up before the cache was shared
    (task.path / "scratch").mkdir()
    (task.path / "scratch" / "notes.txt").write_text("only here\n")
    (repo.path / ".git" / "info" / "exclude").write_text("scratch/\n")  # ignored: `git worktree remove` would delete it
    out = ok(task.dlgit("finish-task"))
    assert "left the work tree" in out and "scratch/" in out and task.path.exists(), out
    assert (task.path / "scratch" / "notes.txt").read_text() == "only here\n"
    repo.git("switch", "-q", "main")
    proc = subprocess.run(["dvc", "checkout"], cwd=repo.path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # finish-task shared the cache again before `dvc add`


def test_a_resumed_task_is_named_and_versioned_by_the_core_it_runs_on(repo: Repo) -> None:
    ok(repo.dlgit("start-task", "old", "--set", "RANDOM_SEED=7"))
    old = repo.branch()
    assert old.startswith("task-0.2.0-")  # the fixture's release
    assert repo.dlgit("run").returncode == 0
    ok(repo.dlgit("finish-task"))
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 2\n")
    repo.commit("feat: a better net")
    ok(repo.dlgit("release"))  # main is at 0.3.0 now
    repo.git("switch", "-q", "main")
    ok(repo.dlgit("start-task", "--resume", "old", "new"))  # the old task by its desc, as `tasks diff` takes it
    new = repo.branch()
    assert new.startswith("task-0.3.0-") and new.endswith("-new"), new
    config = (repo.path / f"tasks/{new}/config.yaml").read_text()
    assert "VERSION: 0.3.0" in config and f"RESUME: ../{old}/checkpoints/model.pt" in config and "RANDOM_SEED: 7" in config
    assert repo.dlgit("run").returncode == 0
    ok(repo.dlgit("finish-task"))
    ok(repo.dlgit("check"))
    rows = {row["name"]: row for row in json.loads(ok(repo.dlgit("tasks", "--format", "json")))}
    assert rows[new]["version"] == "0.3.0" and rows[old]["version"] == "0.2.0"


def test_the_no_dvc_plan_never_merges_main_into_the_task(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "plain")
    repo.path.mkdir()
    ok(repo.dlgit("init"))
    ok(repo.dlgit("start-task", "big", "--set", "RANDOM_SEED=3"))
    (repo.path / f"tasks/{repo.branch()}/model.pt").write_bytes(b"\0" * 100)
    proc = repo.dlgit("finish-task")
    assert proc.returncode == 2 and "dlgit init --dvc" in proc.stderr
    assert "git merge" not in proc.stderr
    assert "git switch main && dlgit start-task big --set RANDOM_SEED=3" in proc.stderr, proc.stderr


def test_debug_finish_sets_a_big_file_aside_outside_git(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    ok(repo.dlgit("debug", "start"))
    branch = repo.branch()
    assert repo.dlgit("run").returncode == 0
    out = ok(repo.dlgit("debug", "finish"))
    sizes = repo.git("cat-file", "--batch-all-objects", "--batch-check=%(objectsize)").stdout.split()
    assert max(map(int, sizes)) < 1024 * 1024  # no checkpoint in git's objects (a stash would have put it there)
    aside = repo.path / ".git" / "dlgit" / "set-aside" / branch / f"tasks/{branch}/checkpoints/model.pt"
    assert aside.stat().st_size == 6 * 1024 * 1024 and str(aside.parent.parent.parent.parent) in out.replace("\n", "")
    assert repo.git("stash", "list").stdout.count("logs of") == 1  # the rest of the logs, as before
