"""What a submitted job leaves, and how: the local executor's requeue at its time limit; outputs
moved (never duplicated, never half there) from the snapshot into the task folder, then through
finish-task into the shared DVC cache; finish-task refused while a job is only queued — against a
real one-node Slurm (tests/slurm.py) where a scheduler is needed; then the mover in-process."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import slurm as slurm_plugin
from conftest import Repo, setup_commit
from flowkit import ok, released_dvc_repo
from test_submit import CHECKPOINTING, TASK, _ended, _records, _task_repo, _wait

from dlgit.config import Settings
from dlgit.errors import UsageError
from dlgit.tasks import jobs, submit

# The checkpointing loop of test_submit, but with FOREVER set it never ends, resumed or not.
FOREVER = CHECKPOINTING.replace("end = step + 3 if resume else", "end = step + 3 if resume and not os.environ.get('FOREVER') else")

CHECKPOINT_MB = 6
TRAINER = f"""\
import json, os
os.makedirs("checkpoints", exist_ok=True)
with open("checkpoints/model.pt", "wb") as out:
    out.write(os.urandom({CHECKPOINT_MB} * 1024 * 1024))
json.dump({{"loss": 0.25}}, open("metrics.json", "w"))
"""


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# --- the local executor --------------------------------------------------------------------------


def test_the_local_executor_requeues_at_its_time_limit_resumes_and_stops_at_max_requeues(repo: Repo) -> None:
    # --time 1 with the warning 50 s before the limit: submitit's local controller sends it after 10 s.
    _task_repo(repo, FOREVER, settings="cluster:\n  signal_delay: 50\n")
    assert "FOREVER" in FOREVER
    proc = repo.dlgit("submit", "--executor", "local", "--time", "1", "--max-requeues", "1", env={"FOREVER": "1"})
    assert proc.returncode == 0, proc.stderr
    [job] = _wait(repo, _ended, "the local job to be requeued once, then stopped", timeout=120)
    assert job["state"] == "failed" and job["requeues"] == 1 and job["executor"] == "local"
    first, second = _records(repo.path / "tasks" / TASK)  # two runs: the first requeued, the second past --max-requeues
    assert first["state"] == "requeued" and first["requeued"] == 1 and first["signal"] == "SIGTERM"  # ended through dlgit run
    assert second["state"] != "requeued" and second["requeues"] == 1 and second["signal"] == "SIGTERM"
    assert first["job_id"] == second["job_id"] == job["job_id"]  # the controller's pid: the job's id in `dlgit tasks`
    assert first["executor"] == second["executor"] == "local"
    resumed = repo.path / "tasks" / TASK / second["resumed_from"]  # from the task folder, as a local run records it
    steps = sorted(path.name for path in resumed.parent.iterdir())
    assert second["resumed_from"].startswith("checkpoints/") and int(resumed.read_text()) >= 1
    assert steps.index(resumed.name) < len(steps) - 1  # the second run checkpointed after it
    log = (repo.path / "tasks" / TASK / second["log"]).read_text()
    assert f"start at {int(resumed.read_text())}" in log  # resumed from the newest checkpoint of the first run


# A sub-task's loop resumed as a sweep resumes it: RESUME in its config.yaml.
CONFIG_RESUMING = CHECKPOINTING.replace('resume = os.environ.get("DLGIT_RESUME")',
                                        'import yaml; resume = yaml.safe_load(open("config.yaml"))["RESUME"]')


def test_the_local_executor_requeues_a_sweep_and_the_sub_task_it_cut_off_resumes(repo: Repo) -> None:
    assert "safe_load" in CONFIG_RESUMING
    repo.write(".dlgit.yaml", "cluster:\n  signal_delay: 50\n")
    repo.write("tasks/main/train.py", CONFIG_RESUMING)
    setup_commit(repo, "chore: a checkpointing trainer", ".dlgit.yaml", "tasks/main/train.py")
    ok(repo.dlgit("start-task", "grid", "--sweep", "lr=0.1"))
    name = repo.branch()
    ok(repo.dlgit("submit", "--executor", "local", "--time", "1", "--max-requeues", "1"))
    [job] = _wait(repo, _ended, "the local sweep to be requeued, then finish", timeout=120, task=name)
    assert job["state"] == "done" and job["requeues"] == 1
    folder = repo.path / "tasks" / name / "subtasks" / "lr=0.1"
    first, second = _records(folder)
    assert first["state"] == "requeued" and first["requeued"] == 1 and first["job_id"] == job["job_id"]
    assert second["state"] == "finished" and second["resumed_from"].startswith("checkpoints/")
    step = int((folder / second["resumed_from"]).read_text())
    assert f"start at {step}" in (folder / second["log"]).read_text()


def test_a_time_limit_shorter_than_the_warning_is_refused() -> None:
    with pytest.raises(UsageError, match=r"--time 1 .*cluster.signal_delay \(90 s\)"):
        submit.resolve(submit.Options(time=1), Settings())
    assert submit.resolve(submit.Options(time=2), Settings()).time == 2


# --- against Slurm -------------------------------------------------------------------------------


def test_finish_task_is_refused_while_a_job_is_only_queued(repo: Repo, slurm: Any) -> None:
    _task_repo(repo)
    proc = repo.dlgit("submit", "--sbatch", "begin=now+3600")  # held back by the scheduler for an hour
    assert proc.returncode == 0, proc.stderr
    [job] = _wait(repo, lambda found: found and found[0]["state"] == "queued", "the job to be queued")
    assert f"queued (job {job['job_id']})" in repo.dlgit("tasks").stdout
    main = repo.head("main")
    finish = repo.dlgit("finish-task")
    assert finish.returncode == 2 and "Traceback" not in finish.stderr
    assert f"{TASK}: queued (job {job['job_id']})" in finish.stderr and f"dlgit cancel {TASK}" in finish.stderr
    assert repo.head("main") == main and repo.branch() == TASK  # nothing merged, nothing switched
    ok(repo.dlgit("cancel"))
    assert [job["state"] for job in _wait(repo, _ended, "the cancel")] == ["cancelled"]


def test_a_job_moves_its_checkpoint_into_the_task_folder_and_finish_task_puts_it_in_dvc(tmp_path: Path, slurm: Any) -> None:
    repo = released_dvc_repo(tmp_path / "repo", TRAINER)
    ok(repo.dlgit("start-task", "ckpt", "--worktree"))
    name = next(line.strip(" *+") for line in repo.git("branch").stdout.splitlines() if "task-" in line)
    task = Repo(repo.path.parent / f"{repo.path.name}.tasks" / name)
    ok(task.dlgit("submit"))
    found = _wait(task, _ended, "the job to end", task=name)
    assert [job["state"] for job in found] == ["done"]
    folder = task.path / "tasks" / name
    checkpoint = folder / "checkpoints" / "model.pt"
    assert checkpoint.stat().st_size == CHECKPOINT_MB * 1024 * 1024 and checkpoint.stat().st_nlink == 1
    common = Path(task.git("rev-parse", "--path-format=absolute", "--git-common-dir").stdout.strip())
    [(_, submitted)] = jobs.submissions(common, name)
    snapshot = Path(submitted["snapshot"])
    left = subprocess.run(["git", "-C", str(snapshot), "ls-files", "--others"], capture_output=True, text=True, check=True).stdout
    assert left == ""  # moved, not copied: the snapshot holds no second checkpoint (nor any other output)
    [record] = _records(folder)
    assert record["executor"] == "slurm" and record["state"] == "finished" and (folder / record["log"]).is_file()
    assert not list(folder.rglob(f"*{jobs.TEMPORARY}"))
    digest = _md5(checkpoint)
    out = ok(task.dlgit("finish-task"))
    assert not task.path.exists(), out
    assert f"tasks/{name}/checkpoints/model.pt.dvc" in repo.git("ls-tree", "-r", "--name-only", "main").stdout
    assert f"tasks/{name}/checkpoints/model.pt" not in repo.git("ls-tree", "-r", "--name-only", "main").stdout.split()
    assert not snapshot.exists()
    repo.git("switch", "-q", "main")
    proc = subprocess.run(["dvc", "checkout"], cwd=repo.path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _md5(repo.path / "tasks" / name / "checkpoints" / "model.pt") == digest


# --- the mover, in-process -----------------------------------------------------------------------


def _snapshot(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """A git work tree whose task folder holds `files`, untracked (what a job leaves)."""
    snapshot = tmp_path / "snapshot"
    (snapshot / "tasks" / TASK).mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(snapshot)], check=True)
    for relative, data in files.items():
        path = snapshot / "tasks" / TASK / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return snapshot


@pytest.mark.parametrize("filesystem", ["same", "another"])
def test_outputs_are_moved_whole_and_exist_once(tmp_path: Path, filesystem: str) -> None:
    big = os.urandom(3 * 1024 * 1024)
    snapshot = _snapshot(tmp_path, {"checkpoints/model.pt": big, "runs/1.yaml": b"state: finished\n", "logs/x.log.partial": b""})
    inode = (snapshot / "tasks" / TASK / "checkpoints" / "model.pt").stat().st_ino
    if filesystem == "another":
        shm = Path("/dev/shm")
        if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
            pytest.skip("no second filesystem (/dev/shm) to move across")
        destination = Path(os.path.join(shm, f"dlgit-test-{os.getpid()}-{tmp_path.name}"))
    else:
        destination = tmp_path / "work" / "tasks" / TASK
    try:
        moved = jobs.move_outputs(snapshot, f"tasks/{TASK}", destination)
        assert sorted(moved.moved) == ["checkpoints/model.pt", "runs/1.yaml"] and moved.kept == []
        assert (destination / "checkpoints" / "model.pt").read_bytes() == big
        assert ((destination / "checkpoints" / "model.pt").stat().st_ino == inode) == (filesystem == "same")  # a rename
        assert not (snapshot / "tasks" / TASK / "checkpoints" / "model.pt").exists()  # never in both places
        assert (snapshot / "tasks" / TASK / "logs" / "x.log.partial").exists()  # still being written: it stays
        assert not [path for path in destination.rglob("*") if path.name.startswith(".")]  # no temporary left
    finally:
        if filesystem == "another":
            subprocess.run(["rm", "-rf", str(destination)], check=False)


def test_a_newer_file_in_the_task_folder_is_kept_and_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = _snapshot(tmp_path, {"metrics.json": b'{"acc": 0.1}', "same.txt": b"same", "older.txt": b"job"})
    source = snapshot / "tasks" / TASK
    destination = tmp_path / "work" / "tasks" / TASK
    destination.mkdir(parents=True)
    (destination / "metrics.json").write_bytes(b'{"acc": 0.9}')  # written after the job's: newer
    os.utime(source / "metrics.json", (1_000_000_000, 1_000_000_000))
    (destination / "same.txt").write_bytes(b"same")
    os.utime(destination / "same.txt", ns=((source / "same.txt").stat().st_atime_ns, (source / "same.txt").stat().st_mtime_ns))
    (destination / "older.txt").write_bytes(b"user's, older")
    os.utime(destination / "older.txt", (1_000_000_000, 1_000_000_000))
    moved = jobs.move_outputs(snapshot, f"tasks/{TASK}", destination)
    assert moved.kept == ["metrics.json"] and moved.moved == ["older.txt"]
    assert (destination / "metrics.json").read_bytes() == b'{"acc": 0.9}'  # never overwritten
    assert (source / "metrics.json").exists()  # the job's stays where it was
    assert (destination / "older.txt").read_bytes() == b"job" and not (source / "same.txt").exists()
    common = tmp_path / "common"
    folder = jobs.jobs_dir(common) / TASK / "20260101T000000"
    folder.mkdir(parents=True)
    jobs.write_json(folder / jobs.SUBMISSION, {"task": TASK, "snapshot": str(snapshot), "folder": f"tasks/{TASK}", "elements": [None]})
    jobs.collect(common, TASK, f"tasks/{TASK}", destination)
    assert "metrics.json" in capsys.readouterr().err
    jobs.remove_snapshots(common, TASK)
    assert (source / "metrics.json").exists()  # a snapshot holding a job's file is not removed


def test_an_array_element_moves_its_own_sub_task_and_copies_the_sweep_index(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path, {"subtasks/index.csv": b"id,status\nlr=0.1,done\n", "subtasks/lr=0.1/runs/1.yaml": b"x: 1\n",
                                    "subtasks/lr=0.2/logs/1.log": b"still running\n"})
    destination = tmp_path / "work" / "tasks" / TASK
    within = ("subtasks/lr=0.1", *jobs.SHARED_OUTPUTS)
    moved = jobs.move_outputs(snapshot, f"tasks/{TASK}", destination, within)
    assert sorted(moved.moved) == ["subtasks/index.csv", "subtasks/lr=0.1/runs/1.yaml"]
    assert (snapshot / "tasks" / TASK / "subtasks" / "index.csv").exists()  # the other elements still update it
    assert (snapshot / "tasks" / TASK / "subtasks" / "lr=0.2" / "logs" / "1.log").exists()  # another element's, left alone
    assert jobs.move_outputs(snapshot, f"tasks/{TASK}", destination, within) == jobs.Moved([], [])  # the same index: nothing to do


# --- the fixture ---------------------------------------------------------------------------------


def test_without_slurm_the_tests_skip_saying_why_and_fail_when_slurm_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DLGIT_REQUIRE_SLURM", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Slurm is not installed"):
        slurm_plugin.unavailable("Slurm is not installed (sbatch missing)")
    monkeypatch.setenv("DLGIT_REQUIRE_SLURM", "1")
    with pytest.raises(pytest.fail.Exception, match="Slurm is not installed"):
        slurm_plugin.unavailable("Slurm is not installed (sbatch missing)")


def test_cancel_stops_a_local_job_through_dlgit_run(repo: Repo) -> None:
    _task_repo(repo)
    ok(repo.dlgit("submit", "--executor", "local", env={"SLEEP": "120"}))  # returns at once: the job holds none of its streams
    _wait(repo, lambda found: found and found[0]["state"] == "running", "the local job to run")
    common = Path(repo.git("rev-parse", "--path-format=absolute", "--git-common-dir").stdout.strip())
    [(_, submitted)] = jobs.submissions(common, TASK)
    run_folder = Path(submitted["snapshot"]) / "tasks" / TASK
    _until(lambda: _records(run_folder), "the run's record")
    assert "cancelled" in ok(repo.dlgit("cancel"))
    [job] = _wait(repo, _ended, "the cancel")
    assert job["state"] == "cancelled"
    _until(lambda: all(record.get("state") != "running" for record in _records(run_folder)), "the run to end")
    [record] = _records(run_folder)
    assert record["signal"] == "SIGTERM" and record["exit_code"] != 0  # the run was ended, and recorded, by dlgit run


def _until(done: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
