"""How long `dlgit release` and `dlgit finish-task` take, next to a shell script running the same
git commands by hand.

    python bench/bench_flows.py [--files 10000] [--commits 500] [--runs 5] [--results 5000] [--ahead 20000] [--baseline DLGIT]

A repository with FILES files on main and COMMITS commits on dev (dlgit's hooks installed, so
that both sides pay for them) is built once; each run copies it and times, in turns, `dlgit
release` and the script a careful user would type (squash dev onto main with the trailer, bump
VERSION, tag, merge main back into dev). Target: dlgit ≤ 2× the script's wall time.

finish-task: a task with RESULTS result files, beside a dev AHEAD files ahead of main; the script
commits them and merges the task into main and dev by checking each out, as the seed types it.
Target: dlgit finish-task ≤ 1 s (it merges without checking out).

--baseline DLGIT: also time another install's `dlgit` command (a venv with main's dlgit, say) in
the same turns, in repositories built by it (their hooks name its Python): before and after in one run.

Run it from a fresh venv with a regular install (see bench_hooks.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TARGET = 2.0
FINISH_TARGET = 1.0  # seconds
FINISH_SCRIPT = """\
set -e
task=$(git branch --show-current)
git add -A -- "tasks/$task"
git commit -q -m "task: results of big"
git switch -q main
git merge -q --no-ff -m "task: merge $task" "$task"
git switch -q dev
git merge -q --no-ff -m "task: merge $task" "$task"
git branch -q -d "$task"
"""
SCRIPT = """\
set -e
git switch -q main
dev=$(git rev-parse dev)
git merge --squash -q dev
git commit -q -m "chore(release): 0.2.0 from dev

Squashed-from: dev@$dev"
sed -i 's/^VERSION: 0.1.0/VERSION: 0.2.0/' tasks/main/config.yaml
git add tasks/main/config.yaml
git commit -q -m "bump: version 0.1.0 → 0.2.0"
git tag -a v0.2.0 -m "release 0.2.0" "$(git rev-parse HEAD)"
git switch -q dev
git merge -q --no-ff -m "Merge branch 'main' into dev" main
"""
ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "bench",
       "GIT_COMMITTER_EMAIL": "b@x", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def git(repo: Path, *args: str, stdin: str | None = None) -> None:
    subprocess.run(["git", *args], cwd=repo, env=ENV, check=True, capture_output=True, input=stdin, text=True)


def build(root: Path, files: int, commits: int, dlgit: str = "dlgit") -> Path:
    repo = root / "repo"
    repo.mkdir()
    subprocess.run([dlgit, "init"], cwd=repo, env=ENV, check=True, capture_output=True)
    git(repo, "config", "gc.auto", "0")  # no gc in the background while the repository is copied
    git(repo, "switch", "-q", "dev")
    for i in range(files):
        path = repo / "src" / f"pkg{i % 100}" / f"module{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"VALUE = {i}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "feat: the core code")
    # many small commits, written by fast-import (as a history of feature work)
    stream: list[str] = []
    now = int(time.time())  # dates after the parent's: git's range walks assume no clock skew
    parent = subprocess.run(["git", "rev-parse", "dev"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    for mark, i in enumerate(range(commits), 1):
        content = f"VALUE = {i} * 2\n"
        stream += ["commit refs/heads/dev", f"mark :{mark}", f"committer bench <b@x> {now + i} +0000",
                   f"data {len(f'fix: change {i}')}", f"fix: change {i}", *([f"from {parent}"] if i == 0 else []),
                   f"M 100644 inline src/pkg{i % 100}/module{i}.py", f"data {len(content)}", content]
    git(repo, "fast-import", "--quiet", stdin="\n".join(stream) + "\n")
    git(repo, "reset", "-q", "--hard", "dev")
    git(repo, "switch", "-q", "main")
    git(repo, "repack", "-adq")
    return repo


def build_finish(root: Path, results: int, ahead: int, dlgit: str = "dlgit") -> Path:
    """main as `dlgit init` makes it, dev AHEAD files ahead, a task from main with RESULTS result files."""
    repo = root / "finish"
    repo.mkdir()
    subprocess.run([dlgit, "init"], cwd=repo, env=ENV, check=True, capture_output=True)
    git(repo, "config", "gc.auto", "0")
    main = subprocess.run(["git", "rev-parse", "main"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    stream = ["commit refs/heads/dev", "committer bench <b@x> 1700000000 +0000", "data 19", "feat: the core code", f"from {main}"]
    for i in range(ahead):
        stream += [f"M 100644 inline src/pkg{i % 100}/module{i}.py", f"data {len(f'VALUE = {i}') + 1}", f"VALUE = {i}\n"]
    git(repo, "fast-import", "--quiet", "--force", stdin="\n".join(stream) + "\n")
    subprocess.run([dlgit, "start-task", "big"], cwd=repo, env=ENV, check=True, capture_output=True)
    task = subprocess.run(["git", "branch", "--show-current"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    for i in range(results):
        path = repo / "tasks" / task / "results" / f"part{i % 50}" / f"r{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"result {i}\n")
    return repo


def timed(command: list[str], repo: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=repo, env=ENV, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def medians(bases: dict[str, Path], script: str, commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Median wall times of the script (in the repository "dlgit" built) and of each command (in the
    one its install built), each run in a fresh copy of that repository, in turns."""
    times: dict[str, list[float]] = {"script": [], **{name: [] for name in commands}}
    for run in range(runs):
        for name, args in (("script", ["sh", "-c", script]), *commands.items()):
            base = bases["dlgit" if name == "script" else name]
            copy = base.parent / f"{name}-{run}"
            shutil.copytree(base, copy, symlinks=True)
            times[name].append(timed(args, copy))
            shutil.rmtree(copy)
    return {name: statistics.median(values) for name, values in times.items()}


def installs(options: argparse.Namespace) -> dict[str, str]:
    """The `dlgit` commands timed: this one and, with --baseline, the baseline's."""
    return {"dlgit": "dlgit", **({"baseline": options.baseline} if options.baseline else {})}


def built(tmp: Path, options: argparse.Namespace, make: Callable[[Path, str], Path]) -> dict[str, Path]:
    """The bench repository made by each install timed, each in a folder of its own."""
    bases = {}
    for name, dlgit in installs(options).items():
        (tmp / name).mkdir()
        bases[name] = make(tmp / name, dlgit)
    return bases


def baseline_line(found: dict[str, float], what: str) -> None:
    if "baseline" in found:
        print(f"  {what + ' (--baseline)':<46}{found['baseline'] * 1000:8.0f} ms   ({found['baseline'] / found['script']:.2f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--commits", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--results", type=int, default=5_000)
    parser.add_argument("--ahead", type=int, default=20_000)
    parser.add_argument("--baseline", metavar="DLGIT", help="another install's dlgit command, timed in the same turns")
    options = parser.parse_args()
    release_ok = bench_release(options)
    finish_ok = bench_finish(options)
    return 0 if release_ok and finish_ok else 1


def bench_release(options: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(prefix="dlgit-bench-flows-") as tmp:
        started = time.perf_counter()
        bases = built(Path(tmp), options, lambda root, dlgit: build(root, options.files, options.commits, dlgit))
        print(f"built main with {options.files:,} files and dev with {options.commits} commits in {time.perf_counter() - started:.1f} s")
        found = medians(bases, SCRIPT, {name: [dlgit, "release"] for name, dlgit in installs(options).items()}, options.runs)
    script, dlgit = found["script"], found["dlgit"]
    print(f"release, median of {options.runs} (hooks on in both)")
    print(f"  the same git commands by hand   {script * 1000:8.0f} ms")
    baseline_line(found, "dlgit release")
    print(f"  dlgit release                   {dlgit * 1000:8.0f} ms   ({dlgit / script:.2f}x)")
    verdict = "PASS" if dlgit <= TARGET * script else "MISS"
    print(f"{verdict}  dlgit release <= {TARGET:g}x the script's wall time")
    return verdict == "PASS"


def bench_finish(options: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(prefix="dlgit-bench-finish-") as tmp:
        bases = built(Path(tmp), options, lambda root, dlgit: build_finish(root, options.results, options.ahead, dlgit))
        found = medians(bases, FINISH_SCRIPT, {name: [dlgit, "finish-task"] for name, dlgit in installs(options).items()}, options.runs)
    script, dlgit = found["script"], found["dlgit"]
    print(f"finish-task of {options.results:,} result files, dev {options.ahead:,} files ahead of main, median of {options.runs}")
    print(f"  the seed's git commands by hand (checkouts)   {script * 1000:8.0f} ms")
    baseline_line(found, "dlgit finish-task")
    print(f"  dlgit finish-task (no checkout)               {dlgit * 1000:8.0f} ms   ({dlgit / script:.2f}x)")
    verdict = "PASS" if dlgit <= FINISH_TARGET else "MISS"
    print(f"{verdict}  dlgit finish-task <= {FINISH_TARGET:g} s")
    return verdict == "PASS"


if __name__ == "__main__":
    raise SystemExit(main())
