"""What `dlgit run` costs over running the task script directly.

    python bench/bench_run.py [--runs N] [--updates 100000] [--lines 10000] [--check]

The script draws a tqdm-style progress bar (a carriage-return update, flushed, as tqdm writes
them: --updates of them to stderr) and prints --lines lines to stdout. It runs (a) directly,
`python train.py > out 2>&1`, and (b) as `dlgit run > out 2>&1` in a committed repository (the
log, the run record, the lock and the pip freeze included: computed once for the environment, in the
background, then copied from the repository's cache), round-robin, --runs times each (after the
first run the bench waits for that freeze, which would slow the next measurement); then an
empty script both ways, which shows dlgit's fixed cost (its own interpreter, git status, the
record) apart from the cost per byte. Printed: the medians, their ratio against the target (≤ 1.2×
the direct run), and the sizes of what the terminal got and of the log (which keeps the bar only
in its final state: it must stay small). --check exits 1 when the target or the log's size is missed.

The ratio is mostly dlgit's fixed cost over a short script, so run it on a quiet machine, from a
regular install (an editable install's finder adds ~8 ms to every Python start):

    python -m venv /tmp/bench-run && /tmp/bench-run/bin/pip install . && /tmp/bench-run/bin/python bench/bench_run.py
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

TARGET_RATIO = 1.2
SCRIPT = """\
import sys
updates, lines = {updates}, {lines}
every = max(1, updates // lines)
bar = sys.stderr
for i in range(updates):
    done = (i + 1) * 100 // updates
    bar.write(f"\\r{{done:3d}}%|{{'#' * (done // 10):<10}}| {{i + 1}}/{{updates}} [00:01<00:00, 98765.43it/s]")
    bar.flush()
    if i % every == 0:
        print(f"step {{i}}: loss {{1 / (i + 1):.6f}}")
bar.write("\\n")
"""
CONFIG = "VERSION: 0.1.0\nDEBUG: false\nRESUME: null\nTRAIN: true\nTEST: false\nMODEL_PATH: null\nRANDOM_SEED: 42\n"
ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}


def dlgit() -> str:
    beside = Path(sys.executable).parent / "dlgit"
    found = str(beside) if beside.is_file() else shutil.which("dlgit")
    if not found:
        sys.exit("bench: no dlgit command; install dlgit in this interpreter's environment")
    return found


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True)


def make_repo(root: Path, updates: int, lines: int) -> Path:
    repo = root / "repo"
    (repo / "tasks/main").mkdir(parents=True)
    (repo / "tasks/main/config.yaml").write_text(CONFIG)
    (repo / "tasks/main/train.py").write_text(SCRIPT.format(updates=updates, lines=lines))
    (repo / "tasks/main/empty.py").write_text("")
    (repo / ".gitignore").write_text("tasks/main/logs/\ntasks/main/runs/\n")  # the runs pile up; the tree stays clean
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "chore: bench layout")
    return repo


def timed(command: list[str], cwd: Path, out: Path, env: dict[str, str]) -> float:
    with open(out, "wb") as sink:
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, check=False)
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench: `{' '.join(command)}` exited {proc.returncode}:\n{out.read_text(errors='replace')[-2000:]}")
    return elapsed


def settle(repo: Path) -> None:
    """Wait for a pip freeze being computed (the environment's first run starts it and does not wait
    for it): left running, it would take CPU from the next measurement."""
    cache, deadline = repo / ".git/dlgit/freeze", time.monotonic() + 30
    while (any(cache.glob("*.partial")) or not any(cache.glob("*.txt"))) and time.monotonic() < deadline:  # renamed when whole
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--updates", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dlgit-bench-run-") as tmp:
        root = Path(tmp)
        repo = make_repo(root, options.updates, options.lines)
        env = {**ENV, "HOME": str(root)}  # a lock of its own
        folder = repo / "tasks/main"
        direct, through, empty_direct, empty_through = [], [], [], []
        for _ in range(options.runs):
            direct.append(timed([sys.executable, "train.py"], folder, root / "direct.out", env))
            through.append(timed([dlgit(), "run"], repo, root / "dlgit.out", env))
            settle(repo)
        log_bytes = max((folder / "logs").glob("*.log"), key=lambda path: path.stat().st_mtime).stat().st_size
        terminal_bytes = (root / "dlgit.out").stat().st_size
        direct_bytes = (root / "direct.out").stat().st_size
        for _ in range(options.runs):
            empty_direct.append(timed([sys.executable, "empty.py"], folder, root / "direct.out", env))
            empty_through.append(timed([dlgit(), "run", "empty.py"], repo, root / "dlgit.out", env))
            settle(repo)
    ratio = statistics.median(through) / statistics.median(direct)
    line_bytes = options.lines * 40  # a printed line is about 25 bytes, the bar's last state 60: a generous bound
    print(f"{options.updates} progress updates + {options.lines} lines, {options.runs} runs each (medians)")
    print(f"  python train.py > file    {statistics.median(direct) * 1000:8.0f} ms   output {direct_bytes:>10,} bytes")
    print(f"  dlgit run > file          {statistics.median(through) * 1000:8.0f} ms   output {terminal_bytes:>10,} bytes")
    print(f"  ratio                     {ratio:8.2f}x   (target ≤ {TARGET_RATIO}x)")
    print(f"  log                       {log_bytes:>10,} bytes   (the bar in its final state only; bound {line_bytes:,})")
    fixed = statistics.median(empty_through) - statistics.median(empty_direct)
    print(f"  an empty script: python {statistics.median(empty_direct) * 1000:.0f} ms, dlgit run "
          f"{statistics.median(empty_through) * 1000:.0f} ms: dlgit's fixed cost {fixed * 1000:.0f} ms")
    missed = ratio > TARGET_RATIO or log_bytes > line_bytes
    print("targets:", "missed" if missed else "met")
    return 1 if options.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
