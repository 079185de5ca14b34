"""Sub-tasks: what a sweep costs per sub-task, and that kills lose nothing and repeat nothing.

    python bench/bench_sweep.py [--subtasks 100] [--kill-grid 24] [--kills 10] [--parallel 100] [--check]

1. Overhead: a grid of --subtasks sub-tasks of a script that exits at once, run by one `dlgit run`
   (each a full run: its config.yaml, log, record, index.csv), against the same script run
   directly in a shell loop, `for d in ...; do (cd "$d" && python train.py); done`. Printed: both
   times and dlgit's overhead per sub-task (target ≤ 50 ms).
2. Kills: a --kill-grid grid of a script that runs ~50 ms, its `dlgit run` killed with SIGKILL (its
   whole process group: the machine going down) at --kills random moments, re-run after each, then
   run to the end. From the scripts' own journal and the run records: finished sub-tasks run again
   (target 0), partial ones repeated (target ≤ 1 per kill), sub-tasks lost (target 0).
3. Parallel: --parallel quick sub-tasks with `-j 4`: lost and duplicated (targets 0).

Run it from a regular install on a quiet machine (an editable install's finder adds ~8 ms to every
Python start, the children of -j N included):

    python -m venv /tmp/bench-sweep && /tmp/bench-sweep/bin/pip install . && /tmp/bench-sweep/bin/python bench/bench_sweep.py
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from bench_run import ENV, dlgit, git  # the same environment and helpers as the run bench (bench/ is on the path)

OVERHEAD_TARGET_MS = 50
CONFIG = "VERSION: 0.1.0\nDEBUG: false\nRESUME: null\nTRAIN: true\nTEST: false\nMODEL_PATH: null\nRANDOM_SEED: 42\nseed: 0\n"
JOURNAL_SCRIPT = """\
import os, sys, time
def note(what):
    with open(os.environ["JOURNAL"], "a") as out:
        out.write(f"{what} {os.environ['DLGIT_SUBTASK']} {time.time():.6f}\\n")
note("start")
time.sleep(float(os.environ.get("WORK", "0")))
note("end")
"""
def sweep_repo(root: Path, name: str, count: int, script: str) -> tuple[Path, Path]:
    """A repository whose checked-out task has `count` sub-tasks (seed=0..count-1): (repo, task folder)."""
    repo = root / name
    (repo / "tasks/main").mkdir(parents=True)
    (repo / "tasks/main/config.yaml").write_text(CONFIG)
    (repo / "tasks/main/train.py").write_text(script)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "chore: bench layout")
    git(repo, "branch", "dev")
    seeds = ",".join(map(str, range(count)))
    proc = subprocess.run([dlgit(), "start-task", "bench", "--sweep", f"seed={seeds}"], cwd=repo, env=ENV,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"bench: start-task failed:\n{proc.stderr}")
    branch = subprocess.run(["git", "branch", "--show-current"], cwd=repo, env=ENV, capture_output=True, text=True,
                            check=True).stdout.strip()
    return repo, repo / "tasks" / branch


def records(task_dir: Path) -> dict[str, list[dict]]:
    """id -> its run records, oldest first."""
    from dlgit.tasks import sweep

    return {path.name: sweep.records(path) for path in sorted((task_dir / "subtasks").iterdir()) if path.is_dir()}


def journal(path: Path) -> list[tuple[str, str, float]]:
    if not path.exists():
        return []
    return [(what, sid, float(when)) for what, sid, when in (line.split() for line in path.read_text().splitlines() if line)]


def overhead(root: Path, count: int, env: dict[str, str]) -> tuple[float, float]:
    repo, task_dir = sweep_repo(root, "overhead", count, "")
    folders = [task_dir / "subtasks" / f"seed={n}" for n in range(count)]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    loop = "; ".join(f'(cd "{folder}" && "{sys.executable}" ../../train.py)' for folder in folders)
    start = time.perf_counter()
    subprocess.run(["sh", "-c", loop], env=env, check=True)
    direct = time.perf_counter() - start
    start = time.perf_counter()
    proc = subprocess.run([dlgit(), "run"], cwd=repo, env=env, capture_output=True, text=True, check=False)
    through = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench: dlgit run exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return direct, through


def kills(root: Path, count: int, times: int, env: dict[str, str]) -> dict[str, int]:
    work = 0.05
    repo, task_dir = sweep_repo(root, "kills", count, JOURNAL_SCRIPT)
    notes = root / "kills.journal"
    env = {**env, "JOURNAL": str(notes), "WORK": str(work)}
    rng = random.Random(18)
    for _ in range(times):
        proc = subprocess.Popen([dlgit(), "run"], cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(rng.uniform(0.05, 1.5))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    final = subprocess.run([dlgit(), "run"], cwd=repo, env=env, capture_output=True, text=True, check=False)
    if final.returncode != 0:
        sys.exit(f"bench: the last dlgit run exited {final.returncode}:\n{final.stderr[-3000:]}")
    found = records(task_dir)
    starts = Counter(sid for what, sid, _ in journal(notes) if what == "start")
    finished_again = 0
    for sid, runs in found.items():
        done = [run for run in runs if run.get("state") == "finished"]
        if done:
            end = datetime.fromisoformat(done[0]["end"]).timestamp()
            finished_again += sum(1 for what, who, when in journal(notes) if what == "start" and who == sid and when > end)
    return {
        "finished re-executed": finished_again,
        "partial repeated": sum(n - 1 for n in starts.values() if n > 1),
        "lost": sum(1 for n in range(count) if not any(run.get("state") == "finished" for run in found.get(f"seed={n}", []))),
    }


def parallel(root: Path, count: int, env: dict[str, str]) -> dict[str, int | float]:
    repo, task_dir = sweep_repo(root, "parallel", count, JOURNAL_SCRIPT)
    notes = root / "parallel.journal"
    start = time.perf_counter()
    proc = subprocess.run([dlgit(), "run", "-j", "4"], cwd=repo, env={**env, "JOURNAL": str(notes)}, capture_output=True, text=True,
                          check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench: dlgit run -j 4 exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    found = records(task_dir)
    starts = Counter(sid for what, sid, _ in journal(notes) if what == "start")
    return {
        "lost": sum(1 for n in range(count) if not any(run.get("state") == "finished" for run in found.get(f"seed={n}", []))),
        "duplicated": sum(n - 1 for n in starts.values() if n > 1) + sum(len(runs) - 1 for runs in found.values() if len(runs) > 1),
        "seconds": round(took, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subtasks", type=int, default=100)
    parser.add_argument("--kill-grid", type=int, default=24)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=100)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dlgit-bench-sweep-") as tmp:
        root = Path(tmp)
        env = {**ENV, "HOME": str(root)}  # a run lock of its own
        direct, through = overhead(root, options.subtasks, env)
        per = (through - direct) / options.subtasks * 1000
        print(f"{options.subtasks} sub-tasks of a script that exits at once")
        print(f"  shell loop, python train.py   {direct:8.2f} s")
        print(f"  dlgit run (the sweep)         {through:8.2f} s")
        print(f"  dlgit's overhead per sub-task {per:8.1f} ms   (target ≤ {OVERHEAD_TARGET_MS} ms)")
        killed = kills(root, options.kill_grid, options.kills, env)
        print(f"{options.kill_grid} sub-tasks, SIGKILL of the run's process group at {options.kills} random moments, re-run each time")
        for name, value in killed.items():
            print(f"  {name:<22} {value:4d}")
        par = parallel(root, options.parallel, env)
        print(f"{options.parallel} quick sub-tasks with -j 4 ({par['seconds']} s)")
        print(f"  lost {par['lost']}, duplicated {par['duplicated']}")
    missed = (per > OVERHEAD_TARGET_MS or killed["finished re-executed"] or killed["partial repeated"] > options.kills
              or killed["lost"] or par["lost"] or par["duplicated"])
    print("targets:", "missed" if missed else "met")
    return 1 if options.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
