"""Sub-tasks run through the installed command in real repositories, with real tqdm scripts: a kill
after a sub-task and in the middle of one, then the re-run (asserted from the run records); `-j 2`
on two fake GPUs; a failing sub-task; --only, --retry-failed, --fail-fast; the machine lock;
hostile values; finish-task over a sweep through real DVC and `dlgit tasks` rows."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import Repo, setup_commit
from flowkit import flow, ok, released_dvc_repo

from dlgit.tasks import lock
from dlgit.tasks import sweep as sw

KILL_SCRIPT = '''\
import json, os, pathlib, signal, sys, time
import yaml
from tqdm import tqdm

config = yaml.safe_load(open("config.yaml"))
plan_path = pathlib.Path(os.environ["KILL_PLAN"])
plan = json.loads(plan_path.read_text())
when = plan.pop(os.environ["DLGIT_SUBTASK"], None)
plan_path.write_text(json.dumps(plan))
if when:  # the kill comes once this run's record is written (as any kill would find it)
    while not list(pathlib.Path("runs").glob("*.yaml")):
        time.sleep(0.01)
start = int(pathlib.Path(config["RESUME"]).read_text()) if config["RESUME"] else 0
print("start at", start, "from", config["RESUME"], flush=True)
if when == "before":
    os.killpg(os.getpgid(0), signal.SIGKILL)  # the machine goes down: dlgit and this script
os.makedirs("checkpoints", exist_ok=True)
for epoch in tqdm(range(start, 3), mininterval=0, miniters=1, ascii=True):
    pathlib.Path(f"checkpoints/ep{epoch}.txt").write_text(str(epoch + 1))
    if when == "middle":
        os.kill(os.getppid(), signal.SIGKILL)  # dlgit alone: this script is left running until the test releases it
        release = pathlib.Path(os.environ["RELEASE"])
        for _ in range(6000):
            if release.exists():
                break
            time.sleep(0.01)
        sys.exit(0)
    time.sleep(0.01)
pathlib.Path("metrics.json").write_text(json.dumps({"seed": config["RANDOM_SEED"], "start": start}))
'''

GPU_SCRIPT = '''\
import json, os, time
from tqdm import tqdm
begin = time.time()
for _ in tqdm(range(20), mininterval=0, ascii=True):
    time.sleep(0.03)
with open("metrics.json", "w") as out:
    json.dump({"gpu": os.environ.get("CUDA_VISIBLE_DEVICES"), "begin": begin, "end": time.time()}, out)
'''

FAIL_SCRIPT = '''\
import os, sys
import yaml
seed = yaml.safe_load(open("config.yaml"))["RANDOM_SEED"]
print("seed", seed, "in", os.path.basename(os.getcwd()))
if str(seed) in os.environ.get("FAIL_SEEDS", "").split(","):
    print(f"boom at seed {seed}", file=sys.stderr)
    sys.exit(3)
'''


def sweep_task(repo: Repo, script: str, *sweeps: str, extra: tuple[str, ...] = ()) -> Path:
    """A task with sub-tasks started from main, whose template's train.py is `script`."""
    repo.write("tasks/main/train.py", script)
    setup_commit(repo, "feat: the trainer", "tasks/main/train.py")
    ok(repo.dlgit("start-task", "sweep", *extra, *(arg for item in sweeps for arg in ("--sweep", item))))
    return repo.path / "tasks" / repo.branch()


def run(repo: Repo, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`dlgit run` in a session of its own: a script may kill its process group (the machine)."""
    return subprocess.run([shutil.which("dlgit") or "dlgit", "run", *args], cwd=repo.path, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, start_new_session=True, check=False, timeout=300)


def records(task_dir: Path, sid: str) -> list[dict]:
    return [{**r, "_record": r["_stem"]} for r in sw.records(sw.folder(task_dir, sid))]


def states(task_dir: Path, sid: str) -> list[str]:
    return [record["state"] for record in records(task_dir, sid)]


def test_kill_after_a_subtask_and_in_the_middle_of_one_then_resume(repo: Repo, tmp_path: Path) -> None:
    task_dir = sweep_task(repo, KILL_SCRIPT, "RANDOM_SEED=1,2,3,4")
    ids = [f"RANDOM_SEED={n}" for n in (1, 2, 3, 4)]
    assert sw.subtask_ids(task_dir) == ids
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({ids[1]: "before", ids[2]: "middle"}))
    env = {"KILL_PLAN": str(plan), "RELEASE": str(tmp_path / "release")}

    first = run(repo, env=env)  # killed (with its script) as sub-task 2 starts: after sub-task 1
    assert first.returncode == -signal.SIGKILL
    assert [states(task_dir, sid) for sid in ids] == [["finished"], ["running"], [], []]
    assert sw.state(sw.folder(task_dir, ids[1])).status == sw.INTERRUPTED  # its dlgit is gone

    second = run(repo, env=env)  # sub-task 2 again, from the start; dlgit killed in the middle of sub-task 3
    assert second.returncode == -signal.SIGKILL
    assert "RANDOM_SEED=2 was cut off" in second.stderr and "before its first checkpoint" in second.stderr
    assert [states(task_dir, sid) for sid in ids] == [["finished"], ["running", "finished"], ["running"], []]

    # the next run waits for sub-task 3's orphaned script, then resumes it from its checkpoint
    third_proc = subprocess.Popen([shutil.which("dlgit") or "dlgit", "run"], cwd=repo.path, env={**os.environ, **env},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert third_proc.stderr is not None
    said = []
    for line in third_proc.stderr:
        said.append(line)
        if "its script from a killed run is still running" in line:
            break
    (tmp_path / "release").touch()
    out, rest = third_proc.communicate(timeout=300)
    third = subprocess.CompletedProcess(third_proc.args, third_proc.returncode, out, "".join(said) + rest)
    assert third.returncode == 0, third.stderr
    assert "its script from a killed run is still running" in third.stderr
    assert "RANDOM_SEED=3 was cut off" in third.stderr and "resuming it from checkpoints/ep0.txt" in third.stderr
    assert [states(task_dir, sid) for sid in ids] == [["finished"], ["running", "finished"], ["running", "finished"], ["finished"]]
    resumed = records(task_dir, ids[2])[-1]
    assert resumed["resumed_from"] == "checkpoints/ep0.txt" and resumed["subtask"] == ids[2]
    assert resumed["sweep_values"] == {"RANDOM_SEED": 3} and resumed["task_dir"].endswith(f"/subtasks/{ids[2]}")
    third_dir = sw.folder(task_dir, ids[2])
    assert json.loads((third_dir / "metrics.json").read_text()) == {"seed": 3, "start": 1}
    assert yaml.safe_load((third_dir / "config.yaml").read_text())["RESUME"] == "checkpoints/ep0.txt"
    assert yaml.safe_load((sw.folder(task_dir, ids[3]) / "config.yaml").read_text())["RESUME"] is None
    log = (third_dir / resumed["log"]).read_text()
    assert "start at 1 from checkpoints/ep0.txt" in log and log.count("2/2") == 1 and "\r" not in log
    assert [records(task_dir, sid)[-1]["exit_code"] for sid in ids] == [0, 0, 0, 0]

    fourth = run(repo, env=env)  # nothing left: nothing runs again
    assert fourth.returncode == 0 and "all 4 sub-tasks are done" in fourth.stderr
    assert [len(records(task_dir, sid)) for sid in ids] == [1, 2, 2, 1]
    index = sw.read_index(task_dir)
    assert [(row["id"], row["RANDOM_SEED"], row["status"], row["exit_code"]) for row in index] == [
        (sid, sid[-1], "done", "0") for sid in ids]
    assert index[2]["last_run"] == resumed["_stem"]


def test_two_at_once_on_two_fake_gpus(repo: Repo) -> None:
    task_dir = sweep_task(repo, GPU_SCRIPT, "RANDOM_SEED=1,2,3,4")
    proc = run(repo, "-j", "2", "--gpus", "0,1")
    assert proc.returncode == 0, proc.stderr
    ids = sw.subtask_ids(task_dir)
    spans: dict[str, list[tuple[float, float]]] = {"0": [], "1": []}
    for sid in ids:
        [record] = records(task_dir, sid)
        metrics = json.loads((sw.folder(task_dir, sid) / "metrics.json").read_text())
        assert record["state"] == "finished" and record["cuda_visible_devices"] == metrics["gpu"] in spans
        assert f"{sid} started on GPU {metrics['gpu']}" in proc.stderr
        spans[metrics["gpu"]].append((metrics["begin"], metrics["end"]))
    for gpu, intervals in spans.items():  # one sub-task at a time on each GPU, both GPUs used
        intervals.sort()
        assert intervals and all(a[1] <= b[0] for a, b in itertools.pairwise(intervals)), (gpu, intervals)
    all_spans = sorted(span for intervals in spans.values() for span in intervals)
    assert any(a[1] > b[0] for a, b in itertools.pairwise(all_spans))  # two ran at the same time
    assert [row["status"] for row in sw.read_index(task_dir)] == ["done"] * 4


def test_a_failing_subtask_is_reported_at_once_and_the_others_go_on(repo: Repo) -> None:
    task_dir = sweep_task(repo, FAIL_SCRIPT, "RANDOM_SEED=1,2,3")
    ids = sw.subtask_ids(task_dir)
    env = {"FAIL_SEEDS": "2"}
    fast = run(repo, "--fail-fast", env=env)
    assert fast.returncode == 1 and "--fail-fast" in fast.stderr
    assert [states(task_dir, sid) for sid in ids] == [["finished"], ["failed"], []]

    proc = run(repo, env=env)  # the failed one is not re-run; the rest is
    assert proc.returncode == 1
    assert "1 failed sub-task(s) are not re-run (RANDOM_SEED=2); --retry-failed re-runs them" in proc.stderr
    assert [states(task_dir, sid) for sid in ids] == [["finished"], ["failed"], ["finished"]]

    again = run(repo, "-j", "2", "--retry-failed", env=env)  # reported the moment it fails, with its log's end
    assert again.returncode == 1
    assert "✗ sub-task RANDOM_SEED=2 exited 3" in again.stderr and "    boom at seed 2" in again.stderr
    fixed = run(repo, "--retry-failed")
    assert fixed.returncode == 0, fixed.stderr
    assert [states(task_dir, sid) for sid in ids] == [["finished"], ["failed", "failed", "finished"], ["finished"]]
    table = fixed.stderr.splitlines()
    assert any(line.split()[:3] == ["RANDOM_SEED=2", "done", "0"] for line in table), fixed.stderr

    report = fast.stderr
    assert report.index("✗ sub-task RANDOM_SEED=2 exited 3") < report.index("SUB-TASK")
    seq = run(repo, "--only", ids[0], "--only", ids[2], env={"FAIL_SEEDS": "3"})  # done ones, named: they run again
    assert seq.returncode == 1 and "RANDOM_SEED=1 (1/2)" in seq.stderr and "RANDOM_SEED=3 (2/2)" in seq.stderr
    assert "boom at seed 3" in seq.stderr and seq.stderr.index("boom at seed 3") < seq.stderr.index("SUB-TASK")
    only = run(repo, "--only", ids[1], env={"FAIL_SEEDS": "2"})
    assert only.returncode == 3  # --only ID: that sub-task's exit code
    assert [len(records(task_dir, sid)) for sid in ids] == [2, 4, 2]
    unknown = run(repo, "--only", "RANDOM_SEED=9")
    assert unknown.returncode == 2 and "no sub-task RANDOM_SEED=9" in unknown.stderr and "Traceback" not in unknown.stderr


def test_one_run_per_machine_and_a_subtask_without_the_lock(repo: Repo, capfd: pytest.CaptureFixture[str]) -> None:
    task_dir = sweep_task(repo, FAIL_SCRIPT, "RANDOM_SEED=1,2")
    held, _ = lock.acquire(lock.Holder(os.getpid(), os.uname().nodename, "other", "/elsewhere", "/elsewhere", "now"))
    try:
        busy = run(repo)
        assert busy.returncode == 2 and "another task is running on this machine" in busy.stderr
        assert not (task_dir / sw.SUBTASKS / sw.INDEX).exists()
        from dlgit.tasks.sweeprun import run_subtask

        assert run_subtask(task_dir, "RANDOM_SEED=2", take_lock=False) == 0  # a cluster job's way: the node is its own
    finally:
        held.release()
    assert "seed 2 in RANDOM_SEED=2" in capfd.readouterr().out
    assert [states(task_dir, sid) for sid in sw.subtask_ids(task_dir)] == [[], ["finished"]]
    plain = run(repo, "--only", "x")
    assert plain.returncode == 2
    repo.git("switch", "-q", "main")
    not_sweep = run(repo, "--allow-dirty", "--only", "x")
    assert not_sweep.returncode == 2 and "declares no sub-tasks" in not_sweep.stderr


def test_hostile_values_stay_inside_the_task_folder(repo: Repo) -> None:
    hostile = ["../../../escape", "/abs", "..", "é ü", "v" * 300, "$(touch pwned)", "-rf"]
    values = ",".join(json.dumps(value) for value in hostile)
    task_dir = sweep_task(repo, FAIL_SCRIPT, f"name={values}", extra=("--add",))
    folder = task_dir.relative_to(repo.path).as_posix()
    proc = run(repo)
    assert proc.returncode == 0, proc.stderr
    ids = sw.subtask_ids(task_dir)
    assert len(ids) == len(hostile)
    assert sorted(path.name for path in (task_dir / sw.SUBTASKS).iterdir() if path.is_dir()) == sorted(ids)
    for sid, value in zip(ids, hostile, strict=True):
        assert yaml.safe_load((sw.folder(task_dir, sid) / "config.yaml").read_text())["name"] == value
    changed = [line[3:].strip('"') for line in repo.git("status", "--porcelain", "-uall").stdout.splitlines()]
    assert changed and all(path.startswith(folder + "/") for path in changed), changed
    assert not (repo.path / "pwned").exists() and not (repo.path.parent / "escape").exists()


# --- finish-task and the table, with DVC --------------------------------------------------------------

BIG_SCRIPT = '''\
import json, os
import yaml
config = yaml.safe_load(open("config.yaml"))
os.makedirs("checkpoints", exist_ok=True)
with open("checkpoints/best.pt", "wb") as out:
    out.truncate(6 * 1024 * 1024)
os.makedirs("results", exist_ok=True)
with open("results/curve.csv", "w") as out:
    out.write("epoch,loss\\n1,0.5\\n")
with open("metrics.json", "w") as out:
    json.dump({"loss": round(1 / config["lr"]) / 100}, out)
'''


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Repo:
    return released_dvc_repo(tmp_path / "repo", BIG_SCRIPT, "lr: 0.1\n")


def test_finish_task_over_a_sweep_and_the_tasks_rows(dvc_repo: Repo) -> None:
    repo = dvc_repo
    ok(flow(repo, "start-task", "grid", "--sweep", "lr=0.1,0.5"))
    branch = repo.branch()
    folder = f"tasks/{branch}"
    task_dir = repo.path / folder
    ids = ["lr=0.1", "lr=0.5"]
    listed = json.loads(ok(repo.dlgit("tasks", "--format", "json")))
    rows = {row["name"]: row for row in listed}
    assert rows[branch]["subtasks"] == {"pending": 2} and rows[f"{branch}/lr=0.1"]["state"] == "pending"

    # a sub-task running (here, or on a cluster node): finish-task waits
    sub_runs = sw.folder(task_dir, ids[0]) / "runs"
    sub_runs.mkdir(parents=True)
    (sub_runs / "20260101T000000.yaml").write_text(yaml.safe_dump({"state": "running", "pid": os.getpid(),
                                                                   "host": os.uname().nodename, "start": "now"}))
    refused = repo.dlgit("finish-task")
    assert refused.returncode == 2 and "sub-task lr=0.1" in refused.stderr and "is running" in refused.stderr
    shutil.rmtree(sw.folder(task_dir, ids[0]))

    ran = run(repo)
    assert ran.returncode == 0, ran.stderr
    listed = json.loads(ok(repo.dlgit("tasks", "--format", "json")))
    rows = {row["name"]: row for row in listed}
    assert rows[branch]["subtasks"] == {"done": 2} and rows[branch]["state"] == "finished" and rows[branch]["subtask"] is None
    for sid, loss in zip(ids, (0.1, 0.02), strict=True):
        row = rows[f"{branch}/{sid}"]
        assert (row["task"], row["subtask"], row["state"]) == (branch, sid, "done")
        assert row["params"] == {"lr": float(sid[3:])} and row["metrics"] == {"loss": loss}
        assert row["last_run"]["exit_code"] == 0 and row["runs"] == 1
    as_csv = ok(repo.dlgit("tasks", "--format", "csv")).splitlines()
    assert as_csv[0].startswith("name,task,subtask,") and any(line.startswith(f"{branch}/lr=0.1,{branch},lr=0.1,") for line in as_csv)
    diff = json.loads(ok(repo.dlgit("tasks", "diff", f"{branch}/lr=0.1", "lr=0.5", "--format", "json")))
    assert diff["config"]["lr"] == {"a": 0.1, "b": 0.5} and diff["metrics"]["loss"] == {"a": 0.1, "b": 0.02}

    out = ok(flow(repo, "finish-task"))
    assert "DVC cache" in out  # and how to share it (dvc push once a remote is set)
    for target in ("main", "dev"):
        files = set(repo.git("ls-tree", "-r", "--name-only", target).stdout.splitlines())
        assert f"{folder}/{sw.SUBTASKS}/{sw.INDEX}" in files
        for sid in ids:
            sub = f"{folder}/{sw.SUBTASKS}/{sid}"
            assert {f"{sub}/config.yaml", f"{sub}/checkpoints/best.pt.dvc", f"{sub}/metrics.json", f"{sub}/results/curve.csv"} <= files
            assert f"{sub}/checkpoints/best.pt" not in files and any(path.startswith(f"{sub}/runs/") for path in files)
        ok(repo.dlgit("check", "--branch", target, target))
    body = repo.git("log", "-1", "--format=%B", "main^2").stdout
    assert "sub-tasks: 2 done (subtasks/index.csv)" in body
    merged = {row["name"]: row for row in json.loads(ok(repo.dlgit("tasks", "--format", "json")))}  # read from main's commit
    assert merged[branch]["state"] == "merged" and merged[branch]["subtasks"] == {"done": 2}
    assert merged[f"{branch}/lr=0.5"]["metrics"] == {"loss": 0.02} and merged[f"{branch}/lr=0.5"]["state"] == "done"
    table = ok(repo.dlgit("tasks"))
    assert "merged (2 done)" in table and "  lr=0.5" in table

    # a new task from one sub-task: its config (no sweep), its checkpoint
    repo.git("switch", "-q", "main")
    ok(flow(repo, "start-task", "more", "--resume", f"{branch}/lr=0.5"))
    config = yaml.safe_load((repo.path / "tasks" / repo.branch() / "config.yaml").read_text())
    assert config["lr"] == 0.5 and "sweep" not in config
    assert config["RESUME"] == f"../{branch}/subtasks/lr=0.5/checkpoints/best.pt"
    repo.git("switch", "-q", "main")
    ok(flow(repo, "start-task", "named", "--resume", f"{branch}/lr=0.1:checkpoints/best.pt"))
    config = yaml.safe_load((repo.path / "tasks" / repo.branch() / "config.yaml").read_text())
    assert config["lr"] == 0.1 and config["RESUME"] == f"../{branch}/subtasks/lr=0.1/checkpoints/best.pt"
    repo.git("switch", "-q", "main")
    missing = repo.dlgit("start-task", "--resume", f"{branch}/lr=9")
    assert missing.returncode == 2 and "no sub-task folder" in missing.stderr


WAIT_SCRIPT = '''\
import os, pathlib, sys, time
import yaml
config = yaml.safe_load(open(os.environ["DLGIT_CONFIG"]))
print("DEBUG", config["DEBUG"], "seed", config["RANDOM_SEED"], flush=True)
if config["RANDOM_SEED"] == 2 and not os.environ.get("NO_WAIT"):
    pathlib.Path(os.environ["STARTED"]).write_text("")
    time.sleep(60)
sum(i * i for i in range(1000))
'''


def test_ctrl_c_stops_the_sweep_and_the_next_run_goes_on(repo: Repo, tmp_path: Path) -> None:
    task_dir = sweep_task(repo, WAIT_SCRIPT, "RANDOM_SEED=1,2,3")
    ids = sw.subtask_ids(task_dir)
    started = tmp_path / "started"
    proc = subprocess.Popen([shutil.which("dlgit") or "dlgit", "run"], cwd=repo.path, env={**os.environ, "STARTED": str(started)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for _ in range(3000):
        if started.exists() or proc.poll() is not None:
            break
        subprocess.run(["sleep", "0.02"], check=False)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends the whole foreground group on Ctrl-C
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "the sweep was interrupted; `dlgit run` goes on where it stopped" in err
    assert [states(task_dir, sid) for sid in ids] == [["finished"], ["interrupted"], []]
    again = run(repo, env={"NO_WAIT": "1"})
    assert again.returncode == 0, again.stderr
    assert "RANDOM_SEED=2 was cut off" in again.stderr  # no checkpoint: from the start, and it says so
    assert [states(task_dir, sid) for sid in ids] == [["finished"], ["interrupted", "finished"], ["finished"]]


def test_debug_and_profile_reach_each_subtask(repo: Repo) -> None:
    task_dir = sweep_task(repo, WAIT_SCRIPT, "RANDOM_SEED=1,3")
    proc = run(repo, "--debug", "--profile", "--only", "RANDOM_SEED=3", env={"NO_WAIT": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "DEBUG True seed 3" in proc.stdout and "cumulative" in proc.stdout  # the profile's table
    [record] = records(task_dir, "RANDOM_SEED=3")
    sub_dir = sw.folder(task_dir, "RANDOM_SEED=3")
    assert record["debug"] is True and yaml.safe_load((sub_dir / record["config"]).read_text())["DEBUG"] is True
    assert (sub_dir / record["profile"]).is_file() and yaml.safe_load((sub_dir / "config.yaml").read_text())["DEBUG"] is False
    assert records(task_dir, "RANDOM_SEED=1") == []


def test_the_plain_git_twin_edit_the_grid_commit_the_results(repo: Repo) -> None:
    """What the flows do, typed by hand: the sweep block edited and committed with git (values
    added), a run, the results committed with git through the hooks, then `dlgit check`."""
    task_dir = sweep_task(repo, FAIL_SCRIPT, "RANDOM_SEED=1,2")
    folder = task_dir.relative_to(repo.path).as_posix()
    assert run(repo).returncode == 0
    before = {sid: records(task_dir, sid)[0]["_stem"] for sid in sw.subtask_ids(task_dir)}
    config = task_dir / "config.yaml"
    config.write_text(config.read_text().replace("RANDOM_SEED: [1, 2]", "RANDOM_SEED: [0, 1, 2, 3]"))
    repo.commit("chore: two more seeds", f"{folder}/config.yaml")
    proc = run(repo)
    assert proc.returncode == 0, proc.stderr
    ids = sw.subtask_ids(task_dir)
    assert ids == ["RANDOM_SEED=0", "RANDOM_SEED=1", "RANDOM_SEED=2", "RANDOM_SEED=3"]
    assert {sid: records(task_dir, sid)[0]["_stem"] for sid in before} == before  # kept, not run again
    assert [len(records(task_dir, sid)) for sid in ids] == [1, 1, 1, 1]
    assert "2 of 4 sub-tasks to run (2 done, 2 pending)" in proc.stderr
    committed = repo.commit("task: results of the sweep", folder)
    assert committed.returncode == 0, committed.stderr
    assert repo.git("status", "--porcelain").stdout == ""
    assert repo.dlgit("check", "main..HEAD").returncode == 0


def test_a_subtask_that_cannot_start_is_reported_and_the_others_run(repo: Repo) -> None:
    task_dir = sweep_task(repo, FAIL_SCRIPT, "RANDOM_SEED=1,2")
    folder = task_dir.relative_to(repo.path).as_posix()
    config = task_dir / "config.yaml"
    config.write_text(config.read_text() + "  list:\n    - {nope: 1}\n")  # by hand: a key the config lacks, no `add`
    repo.commit("chore: one more sub-task", f"{folder}/config.yaml")
    for args in ((), ("-j", "2")):
        proc = run(repo, *args)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "✗ sub-task nope=1 did not run" in proc.stderr and "unknown key 'nope'" in proc.stderr
        assert [row["status"] for row in sw.read_index(task_dir)] == ["done", "done", "pending"]
