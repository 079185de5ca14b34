"""What `dlgit submit` and `dlgit tasks` cost over a 100-element job array, on a real Slurm.

    python bench/bench_submit.py [--elements 100] [--runs 3] [--check]

Starts a one-node Slurm on this machine (tests/slurm.py: Debian's slurmctld, slurmd and munge, as
root), makes a task with --elements sub-tasks (`subtasks/<id>/config.yaml`), and times, --runs times
each: (a) `dlgit submit --dry-run` (settings, checks, the #SBATCH lines), (b) `dlgit submit` (the
snapshot, 100 pickled jobs, one sbatch), beside the bare `sbatch --array` of the same size; then
(c) `dlgit tasks --format json` over every submitted element (one squeue for all of them), beside
the same command before anything was submitted. Targets:
submit ≤ 2 s, tasks ≤ 0.5 s; --check exits 1 when one is missed. The array's jobs are cancelled
before they run (the node is drained first). From a regular install:

    python -m venv /tmp/b && /tmp/b/bin/pip install ".[cluster]" pytest && /tmp/b/bin/python bench/bench_submit.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import slurm  # the test cluster

SUBMIT_TARGET = 2.0
TASKS_TARGET = 0.5
TASK = "task-0.1.0-20260301T090000-bench"
CONFIG = "VERSION: 0.1.0\nDEBUG: false\nRESUME: null\nTRAIN: true\nTEST: false\nMODEL_PATH: null\nRANDOM_SEED: 42\n"
ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "bench",
       "GIT_AUTHOR_EMAIL": "bench@example.invalid", "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}


def dlgit() -> str:
    beside = Path(sys.executable).parent / "dlgit"
    return str(beside) if beside.exists() else shutil.which("dlgit") or "dlgit"


def run(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return took


def make_repo(root: Path, elements: int, env: dict[str, str]) -> Path:
    """A task with `elements` sub-tasks: made by `start-task --sweep` where dlgit has sweeps, else laid
    out by hand (`subtasks/<id>/config.yaml`, the layout `dlgit submit` reads)."""
    repo = root / "repo"
    (repo / "tasks" / "main").mkdir(parents=True)
    (repo / "tasks" / "main" / "config.yaml").write_text(CONFIG + "lr: 0.1\n")
    (repo / "tasks" / "main" / "train.py").write_text("print('train')\n")

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("commit", "-qm", "chore: layout")
    values = ",".join(f"{(index + 1) / 10000:g}" for index in range(elements))
    if subprocess.run([dlgit(), "start-task", "bench", "--sweep", f"lr={values}"], cwd=repo, env=env, capture_output=True).returncode:
        git("switch", "-qc", TASK)
        folder = repo / "tasks" / TASK
        shutil.copytree(repo / "tasks" / "main", folder)
        for value in values.split(","):
            sub = folder / "subtasks" / f"lr={value}"
            sub.mkdir(parents=True)
            (sub / "config.yaml").write_text(CONFIG + f"lr: {value}\n")
        git("add", ".")
        git("commit", "-qm", "task: start")
    return repo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    reason = slurm.missing()
    if reason:
        raise SystemExit(f"bench_submit: {reason}")
    with tempfile.TemporaryDirectory(prefix="dlgit-bench-submit-") as temporary:
        cluster, daemons = slurm.start(Path(f"/tmp/dlgit-slurm-bench-{os.getpid()}"))
        env = {**ENV, **cluster.env, "HOME": temporary}
        try:
            cluster.run("scontrol", "update", f"NodeName={slurm.NODE}", "State=DRAIN", "Reason=bench")  # queue, never run
            repo = make_repo(Path(temporary), args.elements, env)
            times: dict[str, list[float]] = {"dlgit tasks (nothing submitted)": [run([dlgit(), "tasks", "--format", "json"], repo, env)
                                                                                 for _ in range(args.runs)],
                                             "dlgit submit --dry-run": [], "dlgit submit": [], "sbatch --array (bare)": [],
                                             "dlgit tasks --format json": []}
            for _ in range(args.runs):
                times["dlgit submit --dry-run"].append(run([dlgit(), "submit", "--dry-run"], repo, env))
                times["dlgit submit"].append(run([dlgit(), "submit"], repo, env))
                times["sbatch --array (bare)"].append(run(["sbatch", f"--array=0-{args.elements - 1}", "--output=/dev/null",
                                                           "--wrap=true"], repo, env))
            for _ in range(args.runs):
                times["dlgit tasks --format json"].append(run([dlgit(), "tasks", "--format", "json"], repo, env))
        finally:
            cluster.run("scancel", "--full", "--quiet", "--partition", slurm.PARTITION)
            daemons.stop()
            shutil.rmtree(cluster.folder, ignore_errors=True)
    print(f"{args.elements}-element array, {args.runs} runs each (median seconds):")
    for name, values in times.items():
        print(f"  {name:<28} {statistics.median(values):6.3f}")
    submit, tasks = statistics.median(times["dlgit submit"]), statistics.median(times["dlgit tasks --format json"])
    print(f"targets: submit {submit:.3f} s (≤ {SUBMIT_TARGET} s), tasks over {args.elements * args.runs} elements "
          f"{tasks:.3f} s (≤ {TASKS_TARGET} s)")
    missed = submit > SUBMIT_TARGET or tasks > TASKS_TARGET
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
