#!/usr/bin/env python3
"""Benchmark `dlgit check` over a generated 10,000-commit history next to `git log --name-status -z`.

The history (cached under /tmp, rebuilt only when the parameters change) is written with
`git fast-import`: a 100,000-file root commit on main; then feature branches merged into dev, task
branches (their own tasks/<branch>/ folder) merged into main and dev, and now and then a release
(squash of dev onto main with its Squashed-from trailer, a VERSION bump, a tag, main merged back into
dev). Finished feature and task branches are deleted, as after `dlgit feature finish`.

Both commands run over the same range (all of dev, which reaches every commit); the script prints
their medians side by side and the ratio (target: dlgit check <= 2x git's own time). The check must
find no violation: the generated history is an honest one.

    python bench/bench_check.py [--commits 10000] [--files 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

TEMPLATE = ("# the template task\nVERSION: {version}\nDEBUG: false\nRESUME: null\nTRAIN: true\nTEST: false\n"
            "MODEL_PATH: null\nRANDOM_SEED: 42\n")
CONFIG = "tasks/main/config.yaml"
ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}


class Importer:
    """A `git fast-import` process fed commit by commit; `sha(mark)` asks it for a commit's id."""

    def __init__(self, repo: Path) -> None:
        self.read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(["git", "fast-import", "--quiet", f"--cat-blob-fd={write_fd}"], cwd=repo, env=ENV,
                                     stdin=subprocess.PIPE, pass_fds=(write_fd,))
        os.close(write_fd)
        self.replies = os.fdopen(self.read_fd, "rb")
        self.stdin: BinaryIO = self.proc.stdin  # type: ignore[assignment]
        self.mark = 0
        self.clock = 1_767_225_600  # 2026-01-01
        self.count = 0

    def _data(self, text: str) -> None:
        raw = text.encode()
        self.stdin.write(b"data %d\n%s\n" % (len(raw), raw))

    def commit(self, ref: str, message: str, parents: Sequence[int], changes: dict[str, str]) -> int:
        self.mark += 1
        self.clock += 37
        self.count += 1
        self.stdin.write(f"commit refs/heads/{ref}\nmark :{self.mark}\ncommitter Bench <bench@example.com> {self.clock} +0000\n".encode())
        self._data(message)
        for i, parent in enumerate(parents):
            self.stdin.write(f"{'from' if i == 0 else 'merge'} :{parent}\n".encode())
        for path, content in changes.items():
            self.stdin.write(f"M 100644 inline {path}\n".encode())
            self._data(content)
        self.stdin.write(b"\n")
        return self.mark

    def tag(self, name: str, mark: int) -> None:
        self.stdin.write(f"tag {name}\nfrom :{mark}\ntagger Bench <bench@example.com> {self.clock} +0000\n".encode())
        self._data(f"release {name}")

    def sha(self, mark: int) -> str:
        self.stdin.write(f"get-mark :{mark}\n".encode())
        self.stdin.flush()
        return self.replies.readline().decode().strip()

    def close(self) -> None:
        self.stdin.close()
        if self.proc.wait() != 0:
            raise SystemExit("git fast-import failed")
        self.replies.close()


class History:
    """Branch states as {path: content} changes over the root tree; tips as fast-import marks."""

    def __init__(self, importer: Importer, files: int, rng: random.Random) -> None:
        self.git, self.rng, self.files = importer, rng, files
        self.version = [0, 1, 0]
        root = {f"model/pkg{i // 1000:03d}/m{i:06d}.py": f"X = {i}\n" for i in range(files)}
        root[CONFIG] = TEMPLATE.format(version=self.ver)
        root["tasks/main/train.py"] = "print('train')\n"
        self.main = self.dev = importer.commit("main", "chore: initial layout", [], root)
        importer.commit("dev", "chore: start dev", [self.main], {"docs/dev.md": "dev\n"})
        self.dev = importer.mark
        self.main_state: dict[str, str] = {}
        self.dev_state: dict[str, str] = {"docs/dev.md": "dev\n"}

    @property
    def ver(self) -> str:
        return ".".join(map(str, self.version))

    def feature(self, n: int) -> None:
        name, changes, tip = f"feature-f{n}", {}, self.dev
        for step in range(3):
            picked = (self.rng.randrange(self.files) for _ in range(2))
            edit = {f"model/pkg{i // 1000:03d}/m{i:06d}.py": f"X = {n}.{step}\n" for i in picked}
            tip = self.git.commit(name, f"feat: step {step} of f{n}", [tip], edit)
            changes.update(edit)
        self.dev = self.git.commit("dev", f"Merge branch '{name}' into dev", [self.dev, tip], changes)
        self.dev_state.update(changes)

    def task(self, n: int) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.git.clock))
        name = f"task-{self.ver}-{stamp}-t{n}"
        start = {f"tasks/{name}/config.yaml": TEMPLATE.format(version=self.ver) + f"lr: 0.{n}\n"}
        tip = self.git.commit(name, f"task: start t{n}", [self.main], start)
        result = {f"tasks/{name}/log.txt": f"loss {n}\n"}
        tip = self.git.commit(name, f"task: results of t{n}", [tip], result)
        changes = {**start, **result}
        self.main = self.git.commit("main", f"task: merge {name}", [self.main, tip], changes)
        self.dev = self.git.commit("dev", f"task: merge {name}", [self.dev, tip], changes)
        self.main_state.update(changes)
        self.dev_state.update(changes)

    def release(self) -> None:
        squash = {path: text for path, text in self.dev_state.items() if self.main_state.get(path) != text}
        trailer = f"Squashed-from: dev@{self.git.sha(self.dev)}"
        self.main = self.git.commit("main", f"chore: release\n\n{trailer}\n", [self.main], squash)
        self.main_state.update(squash)
        old = self.ver
        self.version = [self.version[0], self.version[1] + 1, 0]
        bump = {CONFIG: TEMPLATE.format(version=self.ver)}
        self.main = self.git.commit("main", f"bump: version {old} → {self.ver}", [self.main], bump)
        self.git.tag(f"v{self.ver}", self.main)
        self.main_state.update(bump)
        self.dev = self.git.commit("dev", "Merge branch 'main' into dev", [self.dev, self.main], bump)
        self.dev_state.update(bump)


def generate(repo: Path, commits: int, files: int) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=ENV)
    importer = Importer(repo)
    history = History(importer, files, random.Random(7))
    cycle = 0
    while importer.count < commits - 3:
        cycle += 1
        if cycle % 250 == 0:
            history.release()
        elif cycle % 3 == 0:
            history.task(cycle)
        else:
            history.feature(cycle)
    importer.close()
    refs = subprocess.run(["git", "for-each-ref", "--format=delete %(refname)", "refs/heads/feature-*", "refs/heads/task-*"],
                          cwd=repo, env=ENV, capture_output=True, check=True).stdout
    subprocess.run(["git", "update-ref", "--stdin"], cwd=repo, env=ENV, input=refs, check=True)
    subprocess.run(["git", "switch", "-q", "dev"], cwd=repo, env=ENV, check=True)
    subprocess.run(["git", "gc", "-q"], cwd=repo, env=ENV, check=True)


def cached_repo(commits: int, files: int) -> Path:
    repo = Path(f"/tmp/dlgit-bench-check-v1-{commits}-{files}")
    if not (repo / ".bench-complete").exists():
        shutil.rmtree(repo, ignore_errors=True)
        started = time.perf_counter()
        generate(repo, commits, files)
        (repo / ".bench-complete").write_text("ok\n")
        print(f"generated {repo} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return repo


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: Sequence[str], repo: Path) -> tuple[float, float, subprocess.CompletedProcess[bytes]]:
    """Wall and CPU time (the command and the processes it waited for) of one run, output captured
    as a hook or CI job would read it. CPU time shows the cost when other jobs share the cores."""
    started, cpu = time.perf_counter(), _cpu()
    proc = subprocess.run(cmd, cwd=repo, env=ENV, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout.decode()[-3000:]}\n{proc.stderr.decode()[-3000:]}")
    return elapsed, _cpu() - cpu, proc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    repo = cached_repo(args.commits, args.files)
    count = subprocess.run(["git", "rev-list", "--count", "dev"], cwd=repo, env=ENV, capture_output=True, text=True, check=True).stdout
    count = count.strip()
    dlgit = [shutil.which("dlgit") or "dlgit", "check", "--branch", "dev", "dev"]
    git_cmd = ["git", "log", "--name-status", "-z", "dev"]
    runs: dict[str, list[tuple[float, float]]] = {"git": [], "dlgit": []}
    proc = None
    for _ in range(args.runs):  # interleaved, so that both see the same machine load
        runs["git"].append(timed(git_cmd, repo)[:2])
        wall, cpu, proc = timed(dlgit, repo)
        runs["dlgit"].append((wall, cpu))
    assert proc is not None
    git_wall, git_cpu = (statistics.median(m) for m in zip(*runs["git"], strict=True))
    dlgit_wall, dlgit_cpu = (statistics.median(m) for m in zip(*runs["dlgit"], strict=True))
    last = proc.stdout.decode().strip().splitlines()[-1]
    print(f"history: {count} commits, {args.files:,} files in the root tree ({repo}); {args.runs} runs, load {os.getloadavg()[0]:.1f}")
    print(f"{'command':<34} {'median wall':>12} {'median CPU':>12}")
    print(f"{' '.join(git_cmd):<34} {git_wall * 1000:>9.0f} ms {git_cpu * 1000:>9.0f} ms")
    print(f"{'dlgit ' + ' '.join(dlgit[1:]):<34} {dlgit_wall * 1000:>9.0f} ms {dlgit_cpu * 1000:>9.0f} ms")
    print(f"ratio dlgit/git: {dlgit_wall / git_wall:.2f}x wall, {dlgit_cpu / git_cpu:.2f}x CPU (target <= 2x); dlgit says: {last}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
