"""How long `dlgit release` takes, next to a shell script running the same git commands by hand.

    python bench/bench_flows.py [--files 10000] [--commits 500] [--runs 5]

A repository with FILES files on main and COMMITS commits on dev (dlgit's hooks installed, so
that both sides pay for them) is built once; each run copies it and times, in turns, `dlgit
release` and the script a careful user would type (squash dev onto main with the trailer, bump
VERSION, tag, merge main back into dev). Target: dlgit ≤ 2× the script's wall time. Run it from a
fresh venv with a regular install (see bench_hooks.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

TARGET = 2.0
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


def build(root: Path, files: int, commits: int) -> Path:
    repo = root / "repo"
    repo.mkdir()
    subprocess.run(["dlgit", "init"], cwd=repo, env=ENV, check=True, capture_output=True)
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


def timed(command: list[str], repo: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=repo, env=ENV, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--commits", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dlgit-bench-flows-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        base = build(root, options.files, options.commits)
        print(f"built main with {options.files:,} files and dev with {options.commits} commits in {time.perf_counter() - started:.1f} s")
        times: dict[str, list[float]] = {"script": [], "dlgit": []}
        for run in range(options.runs):
            for name, command in (("script", ["sh", "-c", SCRIPT]), ("dlgit", ["dlgit", "release"])):
                copy = root / f"{name}-{run}"
                shutil.copytree(base, copy, symlinks=True)
                times[name].append(timed(command, copy))
                shutil.rmtree(copy)
    script, dlgit = (statistics.median(times[name]) for name in ("script", "dlgit"))
    print(f"release, median of {options.runs} (hooks on in both)")
    print(f"  the same git commands by hand   {script * 1000:8.0f} ms")
    print(f"  dlgit release                   {dlgit * 1000:8.0f} ms   ({dlgit / script:.2f}x)")
    verdict = "PASS" if dlgit <= TARGET * script else "MISS"
    print(f"{verdict}  dlgit release <= {TARGET:g}x the script's wall time")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
