"""`dlgit submit`, `dlgit cancel` and job states against a real one-node Slurm (tests/slurm.py): a
task submitted and finished, a commit after submit changes nothing that runs, finish-task refused
while queued, a time limit reached mid-run resumes from the checkpoint on requeue, sweep arrays;
then the pure parts in-process (options, the missing extra, state mapping)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import TEMPLATE_CONFIG, Repo, setup_commit, start_task
from slurm import PARTITION

from dlgit.config import Settings
from dlgit.errors import UsageError
from dlgit.tasks import jobs, submit

TASK = "task-0.1.0-20260301T090000-cluster"
WAIT = 90.0  # seconds a job of these tests may take to end (they sleep a few seconds at most)
HAS_SWEEP = importlib.util.find_spec("dlgit.tasks.sweep") is not None

TRAIN = """\
import os, pathlib, sys, time
print("edited", open(__file__).read().splitlines()[-1] == "# after submit", "task", os.environ.get("DLGIT_TASK"))
pathlib.Path("metrics.json").write_text('{"acc": 0.5}')
time.sleep(float(os.environ.get("SLEEP", "0")))
"""

# A training loop that checkpoints every step and never ends on its own, unless it resumes from a
# checkpoint (DLGIT_RESUME, after a requeue): then it finishes three steps later.
CHECKPOINTING = """\
import os, pathlib, time
ckpt = pathlib.Path("checkpoints"); ckpt.mkdir(exist_ok=True)
resume = os.environ.get("DLGIT_RESUME")
step = int(pathlib.Path(resume).read_text()) if resume else 0
print("start at", step, flush=True)
end = step + 3 if resume else 10**9
while step < end:
    step += 1
    (ckpt / f"step-{step:05d}.txt").write_text(str(step))
    time.sleep(0.5)
print("done at", step, flush=True)
"""


def _task_repo(repo: Repo, train: str = TRAIN, settings: str | None = None) -> Repo:
    if settings is not None:
        repo.write(".dlgit.yaml", settings)
        setup_commit(repo, "chore: cluster settings", ".dlgit.yaml")
    start_task(repo, TASK)
    repo.write(f"tasks/{TASK}/train.py", train)
    setup_commit(repo, "feat: the training script", f"tasks/{TASK}")
    return repo


def _tasks_json(repo: Repo) -> list[dict[str, Any]]:
    proc = repo.dlgit("tasks", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _jobs(repo: Repo, task: str = TASK) -> list[dict[str, Any]]:
    return next(row for row in _tasks_json(repo) if row["name"] == task)["jobs"]


def _wait(repo: Repo, done: Any, what: str, timeout: float = WAIT, task: str = TASK) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = _jobs(repo, task)
        if done(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {found}\n{_job_logs(repo)}")
        time.sleep(0.5)


def _ended(found: list[dict[str, Any]]) -> bool:
    return bool(found) and all(job["state"] not in jobs.ACTIVE for job in found)


def _records(folder: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in sorted((folder / "runs").glob("*.yaml"))]


# --- against Slurm -------------------------------------------------------------------------------


def test_a_task_submitted_runs_its_commit_and_finishes(repo: Repo, slurm: Any) -> None:
    _task_repo(repo)
    submitted = repo.head()
    proc = repo.dlgit("submit", "--time", "5", env={"SLEEP": "2"})
    assert proc.returncode == 0, proc.stderr
    assert "submitted" in proc.stdout and "job" in proc.stdout
    # A commit made after submitting changes nothing the queued job runs.
    repo.write(f"tasks/{TASK}/train.py", TRAIN + "# after submit\n")
    setup_commit(repo, "feat: a change after submit", f"tasks/{TASK}")
    found = _wait(repo, _ended, "the job to end")
    assert [job["state"] for job in found] == ["done"]
    folder = repo.path / "tasks" / TASK
    [record] = _records(folder)
    assert record["commit"] == submitted != repo.head()
    assert record["state"] == "finished" and record["exit_code"] == 0
    assert record["executor"] == "slurm" and record["job_id"] == found[0]["job_id"]
    assert record["partition"] == PARTITION and record["node"] and record["requeues"] == 0
    log = (folder / record["log"]).read_text()
    assert "edited False task " + TASK in log  # the submitted train.py, not the one committed after
    assert json.loads((folder / "metrics.json").read_text()) == {"acc": 0.5}
    # finish-task commits the job's results as for a local run, then drops the snapshot.
    snapshot = Path(_submission(repo)["snapshot"])
    finish = repo.dlgit("finish-task")
    assert finish.returncode == 0, finish.stderr
    assert repo.git("ls-tree", "-r", "--name-only", "main", f"tasks/{TASK}/runs").stdout.strip()
    assert not snapshot.exists() and str(snapshot) not in repo.git("worktree", "list").stdout


def test_a_task_in_its_own_worktree_is_submitted_and_its_results_come_back_there(repo: Repo, slurm: Any) -> None:
    repo.write("tasks/main/train.py", TRAIN)
    setup_commit(repo, "feat: the training script", "tasks/main")
    repo.git("branch", "-f", "dev", "main")  # as a release leaves them
    assert repo.dlgit("start-task", "wt", "--worktree").returncode == 0
    name = next(line.split()[-1] for line in repo.git("branch").stdout.splitlines() if "task-" in line)
    task = Repo(repo.path.parent / f"{repo.path.name}.tasks" / name)
    proc = task.dlgit("submit")
    assert proc.returncode == 0, proc.stderr
    found = _wait(task, _ended, "the job to end", task=name)
    assert [job["state"] for job in found] == ["done"]
    [record] = _records(task.path / "tasks" / name)
    assert record["commit"] == task.head() and record["executor"] == "slurm"
    table = task.dlgit("tasks").stdout
    assert f"done (job {found[0]['job_id']})" in table
    finish = task.dlgit("finish-task")
    assert finish.returncode == 0, finish.stdout + finish.stderr


def test_finish_task_is_refused_while_a_job_is_queued_and_cancel_cancels(repo: Repo, slurm: Any) -> None:
    _task_repo(repo)
    assert repo.dlgit("submit", env={"SLEEP": "60"}).returncode == 0
    _wait(repo, lambda found: found and found[0]["state"] in ("queued", "running"), "the job to be queued")
    job_id = _jobs(repo)[0]["job_id"]
    finish = repo.dlgit("finish-task")
    assert finish.returncode == 2
    assert "still queued or running" in finish.stderr and job_id in finish.stderr and "dlgit cancel" in finish.stderr
    cancelled = repo.dlgit("cancel")
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"cancelled {TASK} (job {job_id}" in cancelled.stdout
    assert [job["state"] for job in _wait(repo, _ended, "the cancel")] == ["cancelled"]
    assert "nothing to cancel" in repo.dlgit("cancel", TASK).stdout


def test_dry_run_prints_the_sbatch_lines_and_submits_nothing(repo: Repo) -> None:
    _task_repo(repo)
    proc = repo.dlgit("submit", "--dry-run", "--time", "7", "--cpus", "2", "--mem", "1G", "--sbatch", "comment=lab run")
    assert proc.returncode == 0, proc.stderr
    for line in ("#SBATCH --time=7", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=1G", "#SBATCH --signal=USR2@90",
                 "#SBATCH --comment='lab run'"):
        assert line in proc.stdout
    assert "&& dlgit run" in proc.stdout and repo.head()[:12] in proc.stdout
    assert _jobs(repo) == []


def test_a_dirty_task_is_refused_unless_allowed_and_then_recorded(repo: Repo, slurm: Any) -> None:
    _task_repo(repo)
    repo.write(f"tasks/{TASK}/train.py", TRAIN + "# uncommitted\n")
    proc = repo.dlgit("submit")
    assert proc.returncode == 2
    assert "uncommitted changes" in proc.stderr and "--allow-dirty" in proc.stderr and "train.py" in proc.stderr
    repo.write(f"tasks/{TASK}/logs/old.log", "an earlier run's log is no reason to refuse\n")
    assert repo.dlgit("submit", "--allow-dirty").returncode == 0
    _wait(repo, _ended, "the job to end")
    [record] = _records(repo.path / "tasks" / TASK)
    assert record["submitted_dirty"] is True and record["commit"] == repo.head()


def test_a_time_limit_mid_run_requeues_and_resumes_from_the_newest_checkpoint(repo: Repo, slurm: Any) -> None:
    # --time 1 with the warning 50 s before it: slurmctld signals within its 30 s check period.
    _task_repo(repo, CHECKPOINTING, settings="cluster:\n  signal_delay: 50\n")
    assert repo.dlgit("submit", "--time", "1", "--max-requeues", "2").returncode == 0
    [job] = _wait(repo, lambda found: found and found[0]["state"] == "requeued", "the requeue", timeout=120)
    # Slurm holds a requeued batch job back (BeginTime) for a while: start it now rather than wait.
    slurm.run("scontrol", "update", f"JobId={job['job_id']}", "StartTime=now")
    found = _wait(repo, _ended, "the requeued job to finish")
    assert [job["state"] for job in found] == ["done"] and found[0]["requeues"] == 1
    common = Path(repo.git("rev-parse", "--path-format=absolute", "--git-common-dir").stdout.strip())
    [(submission, _)] = jobs.submissions(common, TASK)
    assert (jobs.read_json(submission / "state" / "0.json") or {}).get("state") == "done"  # its own word, once squeue forgets it
    first, second = _records(repo.path / "tasks" / TASK)
    assert first["state"] == "requeued" and first["requeued"] == 1
    assert second["state"] == "finished" and second["requeues"] == 1
    resumed = repo.path / "tasks" / TASK / second["resumed_from"]  # from the task folder, as a local run records it
    assert resumed.name == sorted(path.name for path in resumed.parent.iterdir())[-4]  # the newest when it was requeued
    log = (repo.path / "tasks" / TASK / second["log"]).read_text()
    step = int(resumed.read_text())
    assert f"start at {step}" in log and f"done at {step + 3}" in log
    assert first["job_id"] == second["job_id"] and first["commit"] == second["commit"]


def test_a_job_the_scheduler_requeues_resumes_from_the_newest_checkpoint(repo: Repo, slurm: Any) -> None:
    _task_repo(repo, CHECKPOINTING)
    assert repo.dlgit("submit", "--time", "10").returncode == 0
    folder = repo.path / "tasks" / TASK
    [job] = _wait(repo, lambda found: found and found[0]["state"] == "running", "the job to run")
    snapshot = Path(_submission(repo)["snapshot"]) / "tasks" / TASK / "checkpoints"
    deadline = time.monotonic() + WAIT
    while len(list(snapshot.glob("*.txt"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slurm.run("scontrol", "requeue", job["job_id"]).returncode == 0  # as a preemption with PreemptMode=REQUEUE does
    _wait(repo, lambda found: found[0]["state"] in ("queued", "requeued"), "the requeue")
    slurm.run("scontrol", "update", f"JobId={job['job_id']}", "StartTime=now")
    found = _wait(repo, _ended, "the requeued job to finish")
    assert [job["state"] for job in found] == ["done"] and found[0]["requeues"] == 1
    first, second = _records(folder)
    assert first["state"] == "requeued" and second["state"] == "finished" and second["requeues"] == 1
    step = int((folder / second["resumed_from"]).read_text())
    assert step >= 3 and f"done at {step + 3}" in (folder / second["log"]).read_text()


def _job_logs(repo: Repo) -> str:
    """What the jobs printed (submitit's logs): shown when a test's jobs did not end as expected."""
    root = jobs.jobs_dir(Path(repo.git("rev-parse", "--path-format=absolute", "--git-common-dir").stdout.strip()))
    return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}" for path in sorted(root.rglob("*_log.*")))


def _submission(repo: Repo) -> dict[str, Any]:
    [(_, data)] = jobs.submissions(Path(repo.git("rev-parse", "--path-format=absolute", "--git-common-dir").stdout.strip()), TASK)
    return data


@pytest.mark.skipif(not HAS_SWEEP, reason="sub-tasks come with the sweep support (dlgit.tasks.sweep), not in this tree yet")
def test_a_sweep_runs_as_an_array_with_limited_parallelism(repo: Repo, slurm: Any) -> None:
    repo.write("tasks/main/train.py", TRAIN)
    setup_commit(repo, "feat: the training script", "tasks/main")
    proc = repo.dlgit("start-task", "grid", "--sweep", "lr=0.1,0.2", "--sweep", "RANDOM_SEED=1,2")
    assert proc.returncode == 0, proc.stderr
    name = repo.branch()
    submitted = repo.head()
    proc = repo.dlgit("submit", "--array-parallelism", "2", env={"SLEEP": "2"})
    assert proc.returncode == 0, proc.stderr
    assert "array of 4 sub-tasks" in proc.stdout
    # A commit made after submitting changes nothing any element runs, queued or running.
    repo.write(f"tasks/{name}/train.py", TRAIN + "# after submit\n")
    setup_commit(repo, "feat: a change after submit", f"tasks/{name}/train.py")
    found = _wait(repo, _ended, "the array to end", timeout=180, task=name)
    assert sorted(job["state"] for job in found) == ["done"] * 4, _job_logs(repo)
    assert sorted(job["array_index"] for job in found) == [0, 1, 2, 3]
    spans = []
    for job in found:
        folder = repo.path / "tasks" / name / "subtasks" / job["subtask"]
        [record] = _records(folder)
        assert record["commit"] == submitted != repo.head() and record["array_index"] == job["array_index"]
        assert "edited False" in (folder / record["log"]).read_text()  # the submitted train.py
        assert record["executor"] == "slurm" and record["job_id"] == job["job_id"] and record["state"] == "finished"
        spans.append((datetime.fromisoformat(record["start"]), datetime.fromisoformat(record["end"])))
    at_once = max(sum(start <= moment < end for start, end in spans) for moment, _ in spans)
    assert at_once == 2  # two elements on one node at once (no machine lock between them), never three


def test_the_local_executor_runs_the_same_code_under_the_machine_lock(repo: Repo) -> None:
    _task_repo(repo)
    submitted = repo.head()
    proc = repo.dlgit("submit", "--executor", "local")
    assert proc.returncode == 0, proc.stderr
    [job] = _wait(repo, _ended, "the local job to end")
    assert job["state"] == "done" and job["executor"] == "local"
    [record] = _records(repo.path / "tasks" / TASK)
    assert record["commit"] == submitted and record["executor"] == "local" and record["state"] == "finished"
    assert record["partition"] is None and record["array_index"] is None


@pytest.mark.skipif(not HAS_SWEEP, reason="sub-tasks come with the sweep support (dlgit.tasks.sweep), not in this tree yet")
def test_cancel_one_sub_task_then_the_rest(repo: Repo, slurm: Any) -> None:
    repo.write("tasks/main/train.py", TRAIN)
    setup_commit(repo, "feat: the training script", "tasks/main")
    assert repo.dlgit("start-task", "grid", "--sweep", "lr=0.1,0.2").returncode == 0
    name = repo.branch()
    assert repo.dlgit("submit", "--array-parallelism", "1", env={"SLEEP": "60"}).returncode == 0
    found = _wait(repo, lambda found: sorted(job["state"] for job in found) == ["queued", "running"], "one running, one queued",
                  task=name)
    queued = next(job for job in found if job["state"] == "queued")
    proc = repo.dlgit("cancel", f"{name}/{queued['subtask']}")
    assert proc.returncode == 0, proc.stderr
    assert f"cancelled {name}/{queued['subtask']} (job {queued['job_id']}, was queued)" in proc.stdout
    states = {job["subtask"]: job["state"] for job in _wait(repo, lambda found: any(job["state"] == "cancelled" for job in found),
                                                            "the sub-task's cancel", task=name)}
    assert states[queued["subtask"]] == "cancelled" and "running" in states.values()
    assert repo.dlgit("cancel").returncode == 0
    assert [job["state"] for job in _wait(repo, _ended, "the cancel", task=name)] == ["cancelled", "cancelled"]


ROW_KEYS = ("name", "task", "subtask", "state", "params", "metrics", "runs")


def _rows(repo: Repo, name: str) -> list[dict[str, Any]]:
    """A sweep's rows as both executors must leave them (job ids, times and hosts apart)."""
    rows = [row for row in _tasks_json(repo) if row["name"] == name or row["name"].startswith(name + "/")]
    return [{**{key: row.get(key).replace(name, "TASK") if key in ("name", "task") else row.get(key) for key in ROW_KEYS},
             "last_run": {key: (row["last_run"] or {}).get(key) for key in ("state", "exit_code")},
             "ran_submitted_commit": (row["last_run"] or {}).get("commit") in (None, repo.head())} for row in rows]


@pytest.mark.skipif(not HAS_SWEEP, reason="sub-tasks come with the sweep support (dlgit.tasks.sweep), not in this tree yet")
def test_a_sweep_leaves_the_same_rows_under_the_local_and_the_slurm_executor(tmp_path: Path, slurm: Any) -> None:
    from conftest import make_repo

    rows = {}
    for executor in ("local", "slurm"):
        repo = make_repo(tmp_path / executor)
        repo.write("tasks/main/config.yaml", TEMPLATE_CONFIG)
        repo.write("tasks/main/train.py", TRAIN)
        repo.commit("chore: initial layout")
        proc = repo.dlgit("start-task", "grid", "--sweep", "lr=0.1,0.2")
        assert proc.returncode == 0, proc.stderr
        name = repo.branch()
        assert repo.dlgit("submit", "--executor", executor).returncode == 0
        _wait(repo, _ended, f"the {executor} jobs to end", timeout=180, task=name)
        rows[executor] = _rows(repo, name)
    assert rows["local"] == rows["slurm"]
    assert len(rows["slurm"]) == 3 and all(row["ran_submitted_commit"] for row in rows["slurm"])
    assert [row["last_run"]["state"] for row in rows["slurm"] if row["subtask"]] == ["finished", "finished"]


def test_a_snapshot_whose_head_moved_is_refused(repo: Repo) -> None:
    from dlgit.tasks.jobrun import TaskJob
    from dlgit.tasks.run import locate

    _task_repo(repo)
    task, _ = locate(repo.path)
    snapshot = submit.make_snapshot(task)
    assert submit.make_snapshot(task) == snapshot  # one per commit
    assert Repo(snapshot).head() == task.commit and Repo(snapshot).git("status", "--porcelain").stdout == ""
    job = TaskJob(str(repo.path), str(snapshot), task.folder, task.branch, task.commit, None, 0, "slurm", 3, False)
    assert job.check_snapshot() is None
    Repo(snapshot).git("commit", "-q", "--allow-empty", "--no-verify", "-m", "chore: not submitted")
    assert "not the submitted commit" in (job.check_snapshot() or "")
    refused = Repo(snapshot).dlgit("run")
    assert refused.returncode == 2 and "a job runs exactly the commit it was submitted with" in refused.stderr
    jobs.snapshot_marker(snapshot).unlink()  # a half-made snapshot (no marker) is never run
    assert "incomplete" in (job.check_snapshot() or "")


# --- in-process ----------------------------------------------------------------------------------


def test_without_submitit_the_exact_install_line_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)
    with pytest.raises(UsageError, match=r"pip install 'dlgit\[cluster\]'"):
        submit._submitit()


def test_options_override_the_cluster_block() -> None:
    settings = Settings(cluster_partition="gpu", cluster_time=30, cluster_sbatch=("account=lab", "qos=low"))
    resolved = submit.resolve(submit.Options(time=5, sbatch=("qos=high",)), settings)
    assert (resolved.partition, resolved.time, resolved.sbatch) == ("gpu", 5, {"account": "lab", "qos": "high"})
    assert resolved.max_requeues == 3 and resolved.executor == "slurm"
    with pytest.raises(UsageError, match="KEY=VALUE"):
        submit.resolve(submit.Options(sbatch=("nokey",)), settings)


@pytest.mark.parametrize("options", [
    submit.Options(sbatch=("comment=two\nlines",)),  # a newline would end the #SBATCH line and start a command
    submit.Options(sbatch=("bad key=1",)),
    submit.Options(partition="gpu\nrm -rf ~"),
    submit.Options(mem=""),
])
def test_values_that_would_break_the_sbatch_script_are_refused(options: submit.Options) -> None:
    with pytest.raises(UsageError, match=r"#SBATCH|sbatch option's name"):
        submit.resolve(options, Settings())


@pytest.mark.parametrize(("live", "outcome", "cancelled", "state"), [
    ("PENDING", None, False, "queued"),
    ("PENDING", {"state": "requeued", "requeues": 1}, False, "requeued"),
    ("RUNNING", {"state": "running"}, False, "running"),
    ("COMPLETED", {"state": "done"}, False, "done"),
    (None, {"state": "done"}, False, "done"),
    (None, {"state": "failed"}, False, "failed"),
    (None, {"state": "running"}, False, "failed"),  # the job said running, the scheduler forgot it: it died
    (None, None, True, "cancelled"),
    ("CANCELLED", {"state": "running"}, True, "cancelled"),
    (None, {"state": "failed"}, True, "cancelled"),
])
def test_states_from_the_scheduler_and_the_outcome_files(live: str | None, outcome: dict[str, Any] | None, cancelled: bool,
                                                         state: str) -> None:
    assert jobs._outcome_state(outcome, cancelled, live) == state


def test_two_submissions_in_one_second_get_their_own_folders(tmp_path: Path) -> None:
    """The folder is named by the second: a second submission in it gets `-01`, sorted after the first."""
    base = tmp_path / "jobs" / "task-x" / "20261202T100130"
    made = [submit.claim_folder(base) for _ in range(3)]
    assert [path.name for path in made] == ["20261202T100130", "20261202T100130-01", "20261202T100130-02"]
    assert sorted(made) == made and all(path.is_dir() for path in made)
