"""What a run writes down and what finish-task accepts: secrets in arguments masked, `--debug`
taking effect for a script that reads its own config.yaml (and the file restored after a kill),
finish-task refusing a debug or dirty last run unless told, `--set` refusing a change of type."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import Repo

from dlgit.tasks.run import MASK, masked

OWN_CONFIG = """\
import hashlib, json, sys, time, yaml
config = yaml.safe_load(open("config.yaml"))
print("DEBUG", config["DEBUG"], "args", hashlib.md5(" ".join(sys.argv[1:]).encode()).hexdigest(), flush=True)
json.dump({"debug": config["DEBUG"]}, open("metrics.json", "w"))
time.sleep(float(config.get("sleep", 0)) if config["DEBUG"] else 0)
"""


def a_task(repo: Repo, *sets: str) -> Path:
    assert repo.dlgit("start-task", "safety", *sets).returncode == 0
    folder = repo.path / f"tasks/{repo.branch()}"
    (folder / "train.py").write_text(OWN_CONFIG)
    repo.commit("task: the trainer", str(folder.relative_to(repo.path)))
    return folder


def records(folder: Path) -> list[dict]:
    return [yaml.safe_load(path.read_text()) for path in sorted((folder / "runs").glob("*.yaml")) if not path.name.endswith(".config.yaml")]


def test_secret_arguments_are_masked_in_what_dlgit_writes(repo: Repo) -> None:
    folder = a_task(repo)
    args = ["--api-token=S3CRET-ONE", "--password", "S3CRET-TWO", "db.auth_key=S3CRET-THREE", "--lr", "0.1"]
    proc = repo.dlgit("run", "--", *args)
    assert proc.returncode == 0, proc.stderr
    assert hashlib.md5(" ".join(args).encode()).hexdigest() in proc.stdout  # the script got them as given
    (record,) = records(folder)
    assert record["args"] == ["--api-token=***", "--password", "***", "db.auth_key=***", "--lr", "0.1"]
    assert record["command"][-6:] == record["args"]
    assert (folder / record["log"]).read_text().startswith("DEBUG False args ")  # no header: the log is what the screen showed
    for path in folder.rglob("*"):
        assert not path.is_file() or b"S3CRET" not in path.read_bytes(), path
    finished = repo.dlgit("finish-task")
    assert finished.returncode == 0 and "S3CRET" not in finished.stdout + finished.stderr
    assert "S3CRET" not in repo.git("log", "-p", "--all", "--format=%B").stdout  # no commit message nor file of any branch
    for path in (repo.path / ".git" / "dlgit").rglob("*"):  # dlgit's own state: flows, the pip freeze cache
        assert not path.is_file() or b"S3CRET" not in path.read_bytes(), path
    assert "S3CRET" not in repo.dlgit("tasks", "--format", "json").stdout + repo.dlgit("log").stdout


@pytest.mark.parametrize(("args", "expected"), [
    (["--token", "t", "x"], ["--token", MASK, "x"]),
    (["--secret-key=abc", "--keep", "1"], ["--secret-key=" + MASK, "--keep", "1"]),
    (["PASSWORD=x", "lr=0.1"], ["PASSWORD=" + MASK, "lr=0.1"]),
    (["--auth", "--verbose"], ["--auth", "--verbose"]),  # a flag followed by an option: nothing to hide
])
def test_masked(args: list[str], expected: list[str]) -> None:
    assert masked(args) == expected


def test_debug_takes_effect_for_a_script_that_reads_its_own_config(repo: Repo) -> None:
    folder = a_task(repo)
    before = (folder / "config.yaml").read_bytes()
    proc = repo.dlgit("run", "--debug")
    assert proc.returncode == 0 and "DEBUG True" in proc.stdout, proc.stdout + proc.stderr
    assert (folder / "config.yaml").read_bytes() == before and not list(folder.glob("config.yaml.dlgit-*"))
    assert records(folder)[0]["debug"] is True


def test_a_killed_debug_run_gets_its_config_back_next_time(repo: Repo) -> None:
    folder = a_task(repo, "--set", "sleep=30", "--add")
    before = (folder / "config.yaml").read_bytes()
    proc = subprocess.Popen(["dlgit", "run", "--debug"], cwd=repo.path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    assert proc.stdout is not None and b"DEBUG True" in proc.stdout.readline()
    os.killpg(proc.pid, signal.SIGKILL)  # dlgit and its script, at once
    proc.wait()
    assert b"DEBUG: true" in (folder / "config.yaml").read_bytes()
    out = repo.dlgit("run")
    assert "DEBUG False" in out.stdout, out.stdout + out.stderr  # restored before the next run started
    assert (folder / "config.yaml").read_bytes() == before


def test_finish_task_refuses_a_debug_or_dirty_last_run_unless_told(repo: Repo) -> None:
    a_task(repo)
    assert repo.dlgit("run", "--debug").returncode == 0
    proc = repo.dlgit("finish-task")
    assert proc.returncode == 2 and "--debug run" in proc.stderr and "--accept-debug" in proc.stderr, proc.stderr
    assert repo.dlgit("run").returncode == 0  # a clean run after it: fine
    repo.write("model/net.py", "NET = 'tried something'\n")
    assert repo.dlgit("run", "--allow-dirty").returncode == 0
    repo.git("checkout", "--", "model/net.py")
    proc = repo.dlgit("finish-task")
    assert proc.returncode == 2 and "dirty run" in proc.stderr, proc.stderr
    proc = repo.dlgit("finish-task", "--accept-debug")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    message = repo.git("log", "-1", "--format=%B", "HEAD^2" if repo.branch() == "main" else "HEAD").stdout
    assert "Accepted: a dirty run" in repo.git("log", "--format=%B", "main").stdout, message


def test_set_refuses_a_change_of_type_unless_retype(repo: Repo) -> None:
    proc = repo.dlgit("start-task", "x", "--set", "RANDOM_SEED=ten")
    assert proc.returncode == 2 and "RANDOM_SEED" in proc.stderr and "--retype" in proc.stderr, proc.stderr
    assert repo.branch() == "main"
    assert repo.dlgit("start-task", "x", "--set", "lr=1", "--set", "MODEL_PATH=net.pt").returncode == 0  # a number still, a null
    repo.git("switch", "-q", "main")
    assert repo.dlgit("start-task", "y", "--set", "lr=fast", "--retype").returncode == 0
    assert "lr: fast" in (repo.path / f"tasks/{repo.branch()}/config.yaml").read_text()
