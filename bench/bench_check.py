#!/usr/bin/env python3
"""Benchmark `dlgit check` over generated histories next to the git work the same verification needs.

Two histories, each written once with `git fast-import` and cached under /tmp (rebuilt only when the
parameters change):

* **model** (10,000 commits): a 100,000-file root commit on main; then feature branches merged into
  dev, task branches (their own tasks/<branch>/ folder) merged into main and dev, and now and then a
  release (squash of dev onto main with its Squashed-from trailer, a VERSION bump, a tag, main
  merged back into dev). Finished feature and task branches are deleted, as after `dlgit feature
  finish`. Merge messages name their branch. dlgit must find no violation here.
* **pull requests** (shaped like pallets/click or psf/requests): a 2,000-file root; thousands of
  pull requests merged into dev as `Merge pull request #123 from user7/topic-123`, their branches
  deleted (the message names no branch of the model); pull requests come in pairs from the same dev
  tip, and now and then (about one in thirty) both edit one file: the second conflicts and is
  resolved to its own side; every 200 a release merges dev into main (`Merge pull request #N from
  org/dev`), bumps VERSION, tags it and merges main back into dev.

Per history, in one run: `dlgit check --branch dev dev` beside `git log --name-status -z
--no-renames dev` plus `git log --remerge-diff --first-parent dev` (what the same verification
costs git: every commit's paths, every merge of the branch recomputed); the script prints medians,
the ratio (target: dlgit check <= 2x) and dlgit's verdict. `--repo PATH:BRANCH` (repeatable) does
the same over an existing repository (a clone of pallets/click or psf/requests: `--history none
--repo click:main`); `--baseline DLGIT` times another dlgit executable in the same run, interleaved
(an install of the code before a change: the "before" column).

    python bench/bench_check.py [--history model|pr|both|refs|none] [--repo PATH:BRANCH ...] [--baseline DLGIT]
                                [--commits 10000] [--files 100000] [--prs 3000] [--refs 1000] [--runs 5]

**many refs** (`--history refs`, also part of `both`): a push of 1,000 new branches (one commit each)
and 1,000 tags to a server with `dlgit install --server`, beside the same push to a server without
hooks and to one with a no-op reference-transaction hook (git's own floor for such a hook), plain and
--atomic, and the same push carrying a release tag; target: dlgit adds <= 3 s.
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
from collections.abc import Callable, Sequence
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
    _finish(repo, "refs/heads/feature-*", "refs/heads/task-*")


class PullRequests:
    """A history shaped like a hosted project's: pull requests of deleted topic branches merged into dev."""

    def __init__(self, importer: Importer, files: int, rng: random.Random) -> None:
        self.git, self.rng, self.files = importer, rng, files
        self.version = [0, 1, 0]
        root = {self.path(i): f"X = {i}\n" for i in range(files)}
        root[CONFIG] = TEMPLATE.format(version=self.ver)
        self.main = importer.commit("main", "chore: initial layout", [], root)
        self.dev = importer.commit("dev", "chore: start dev", [self.main], {"docs/dev.md": "dev\n"})
        self.number = 0
        self.main_state: dict[str, str] = {}  # what differs from the root tree
        self.dev_state: dict[str, str] = {"docs/dev.md": "dev\n"}

    @property
    def ver(self) -> str:
        return ".".join(map(str, self.version))

    def path(self, i: int) -> str:
        return f"src/pkg{i // 100:02d}/m{i:05d}.py"

    def topic(self, base: int, shared: str | None = None) -> tuple[int, dict[str, str], str]:
        """A topic branch from `base`: 1-3 commits editing 1-2 files (and `shared`, when given)."""
        self.number += 1
        name, tip, changes = f"topic-{self.number}", base, {}
        for step in range(self.rng.randint(1, 3)):
            edit = {self.path(self.rng.randrange(self.files)): f"X = {self.number}.{step}\n" for _ in range(self.rng.randint(1, 2))}
            if shared and step == 0:
                edit[shared] = f"X = shared by #{self.number}\n"
            tip = self.git.commit(name, f"fix: step {step} of #{self.number}", [tip], edit)
            changes.update(edit)
        return tip, changes, name

    def merge(self, tip: int, changes: dict[str, str], name: str) -> None:
        message = f"Merge pull request #{self.number} from user{self.number % 50}/{name}\n\nfix: the change of #{self.number}\n"
        self.dev = self.git.commit("dev", message, [self.dev, tip], changes)
        self.dev_state.update(changes)

    def pull_requests(self) -> None:
        """Two pull requests from the same dev tip; in one pair of ten both edit one file, and the
        second is resolved to its own side (a conflict the remerge diff shows)."""
        shared = self.path(self.rng.randrange(self.files)) if self.number % 20 == 18 else None
        base = self.dev
        first, second = self.topic(base, shared), self.topic(base, shared)
        self.merge(*first)
        self.merge(*second)

    def release(self) -> None:
        """dev merged into main (main holds nothing dev lacks: the tree is dev's), a bump, a tag, main back into dev."""
        self.number += 1
        released = {path: text for path, text in self.dev_state.items() if self.main_state.get(path) != text}
        message = f"Merge pull request #{self.number} from org/dev\n\nchore: release\n"
        self.main = self.git.commit("main", message, [self.main, self.dev], released)
        old = self.ver
        self.version = [self.version[0], self.version[1] + 1, 0]
        bump = {CONFIG: TEMPLATE.format(version=self.ver)}
        self.main = self.git.commit("main", f"bump: version {old} → {self.ver}", [self.main], bump)
        self.git.tag(f"v{self.ver}", self.main)
        self.dev = self.git.commit("dev", "Merge branch 'main' into dev", [self.dev, self.main], bump)
        self.dev_state.update(bump)
        self.main_state = dict(self.dev_state)


def generate_pull_requests(repo: Path, prs: int, files: int) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=ENV)
    importer = Importer(repo)
    history = PullRequests(importer, files, random.Random(7))
    while history.number < prs:
        history.pull_requests()
        if history.number % 200 < 2:
            history.release()
    history.release()
    importer.close()
    _finish(repo, "refs/heads/topic-*")


def _finish(repo: Path, *patterns: str) -> None:
    """Delete the finished branches (`patterns`), check out dev, pack."""
    refs = subprocess.run(["git", "for-each-ref", "--format=delete %(refname)", *patterns], cwd=repo, env=ENV, capture_output=True,
                          check=True).stdout
    subprocess.run(["git", "update-ref", "--stdin"], cwd=repo, env=ENV, input=refs, check=True)
    subprocess.run(["git", "switch", "-q", "dev"], cwd=repo, env=ENV, check=True)
    subprocess.run(["git", "gc", "-q"], cwd=repo, env=ENV, check=True)


def cached(name: str, build: Callable[[Path], None]) -> Path:
    repo = Path(f"/tmp/dlgit-bench-check-{name}")
    if not (repo / ".bench-complete").exists():
        shutil.rmtree(repo, ignore_errors=True)
        started = time.perf_counter()
        build(repo)
        (repo / ".bench-complete").write_text("ok\n")
        print(f"generated {repo} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return repo


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: Sequence[str], repo: Path, allowed: tuple[int, ...] = (0,)) -> tuple[float, float, subprocess.CompletedProcess[bytes]]:
    """Wall and CPU time (the command and the processes it waited for) of one run, output captured
    as a hook or CI job would read it. CPU time shows the cost when other jobs share the cores."""
    started, cpu = time.perf_counter(), _cpu()
    proc = subprocess.run(cmd, cwd=repo, env=ENV, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode not in allowed:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout.decode()[-3000:]}\n{proc.stderr.decode()[-3000:]}")
    return elapsed, _cpu() - cpu, proc


GIT_WORK = (("git", "log", "--name-status", "-z", "--no-renames"), ("git", "log", "--remerge-diff", "--first-parent"))


def measure(label: str, repo: Path, branch: str, runs: int, baseline: str | None) -> None:
    """dlgit check over all of BRANCH beside the git work the same verification needs (and the
    baseline dlgit, if any), interleaved so that all see the same machine load."""
    def count(*options: str) -> str:
        return subprocess.run(["git", "rev-list", "--count", *options, branch], cwd=repo, env=ENV, capture_output=True, text=True,
                              check=True).stdout.strip()

    dlgits = {"dlgit": shutil.which("dlgit") or "dlgit", **({"baseline": baseline} if baseline else {})}
    checks = {name: [exe, "check", "--branch", branch, branch] for name, exe in dlgits.items()}
    commands = [[*cmd, branch] for cmd in GIT_WORK]
    samples: dict[str, list[tuple[float, float]]] = {" ".join(cmd): [] for cmd in commands}
    samples.update((name, []) for name in checks)
    verdicts: dict[str, str] = {}
    for _ in range(runs):
        for cmd in commands:
            samples[" ".join(cmd)].append(timed(cmd, repo)[:2])
        for name, cmd in checks.items():
            wall, cpu, proc = timed(cmd, repo, (0, 1))  # exit 1: violations found (real histories have them)
            samples[name].append((wall, cpu))
            lines = proc.stdout.decode(errors="replace").strip().splitlines()
            verdicts[name] = lines[-1] if lines else "(nothing)"
    medians = {name: tuple(statistics.median(m) for m in zip(*runs_, strict=True)) for name, runs_ in samples.items()}
    git_wall = sum(wall for name, (wall, _) in medians.items() if name not in checks)
    git_cpu = sum(cpu for name, (_, cpu) in medians.items() if name not in checks)
    print(f"\n{label}: {count()} commits, {count('--merges')} merges ({repo}, {branch}); {runs} run(s), load {os.getloadavg()[0]:.1f}")
    print(f"{'command':<60} {'median wall':>12} {'median CPU':>12}")
    for name, (wall, cpu) in medians.items():
        shown = f"{name} check --branch {branch} {branch}" if name in checks else name
        print(f"{shown:<60} {wall * 1000:>9.0f} ms {cpu * 1000:>9.0f} ms")
    for name in checks:
        wall, cpu = medians[name]
        print(f"ratio {name} / git's work: {wall / git_wall:.2f}x wall, {cpu / git_cpu:.2f}x CPU (target <= 2x); says: {verdicts[name]}")


def generate_many_refs(repo: Path, refs: int) -> None:
    """A small main + dev, then REFS feature branches off dev (one commit each) and REFS annotated
    tags on their tips: what a push of many refs at once brings (a mirror, an import); and a release
    tag v0.1.0 of main kept aside (refs/release/), for the push that carries one."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=ENV)
    git = Importer(repo)
    main = git.commit("main", "chore: initial layout", [], {CONFIG: TEMPLATE.format(version="0.1.0"), "model/net.py": "NET = 1\n"})
    dev = git.commit("dev", "feat: a loss", [main], {"model/loss.py": "LOSS = 1\n"})
    tips = [git.commit(f"feature-b{i}", f"feat: b{i}", [dev], {f"model/b{i}.py": f"B = {i}\n"}) for i in range(refs)]
    for i, mark in enumerate(tips):
        git.tag(f"mark-{i}", mark)
    git.tag("v0.1.0", main)
    git.close()
    subprocess.run(["git", "update-ref", "refs/release/v0.1.0", "refs/tags/v0.1.0"], cwd=repo, check=True, env=ENV)
    subprocess.run(["git", "update-ref", "-d", "refs/tags/v0.1.0"], cwd=repo, check=True, env=ENV)


NOOP_HOOK = "#!/bin/sh\nexit 0\n"  # git's own floor for any reference-transaction hook: one process per run
RELEASE = "refs/release/v0.1.0:refs/tags/v0.1.0"


def _server(repo: Path, setup: str) -> Path:
    """A fresh server holding main and dev: no hooks, a no-op reference-transaction hook, or `dlgit install --server`."""
    server = repo.parent / f"{repo.name}-server.git"
    shutil.rmtree(server, ignore_errors=True)
    subprocess.run(["git", "init", "-q", "--bare", str(server)], check=True, env=ENV)
    subprocess.run(["git", "push", "-q", str(server), "main", "dev"], cwd=repo, check=True, env=ENV)
    if setup == "noop":
        hook = server / "hooks" / "reference-transaction"
        hook.write_text(NOOP_HOOK)
        hook.chmod(0o755)
    elif setup == "dlgit":
        subprocess.run([shutil.which("dlgit") or "dlgit", "install", "--server"], cwd=server, check=True, env=ENV, capture_output=True)
    return server


def measure_many_refs(repo: Path, runs: int) -> None:
    """`git push` of every branch and tag to a server holding main and dev, plain and --atomic: without
    hooks, with a no-op reference-transaction hook (what any such hook costs: git starts it twice per
    transaction, and a push without --atomic makes one transaction per ref), with dlgit's server hooks
    (`dlgit install --server`: pre-receive, and the reference-transaction hook only while a push carries
    a release tag), and with dlgit's hooks for the same push carrying a release tag too (the guard in
    place). Each run onto a fresh server."""
    cases = {}
    for options in ([], ["--atomic"]):
        name = "git push --atomic" if options else "git push"
        cases |= {f"{name}, no hooks": ("none", options, []), f"{name}, no-op reference-transaction hook": ("noop", options, []),
                  f"{name}, dlgit install --server": ("dlgit", options, []),
                  f"{name} + a release tag, dlgit install --server": ("dlgit", options, [RELEASE])}
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in cases}
    for _ in range(runs):
        for label, (setup, options, extra) in cases.items():
            server = _server(repo, setup)
            started, cpu = time.perf_counter(), _cpu()
            refspecs = ["refs/heads/feature-*", "refs/tags/*", *extra]
            subprocess.run(["git", "push", "-q", *options, str(server), *refspecs], cwd=repo, check=True, env=ENV)
            samples[label].append((time.perf_counter() - started, _cpu() - cpu))
    count = len(subprocess.run(["git", "for-each-ref", "refs/tags"], cwd=repo, capture_output=True, check=True).stdout.splitlines())
    print(f"\nmany refs: a push of {count:,} branches and {count:,} tags; {runs} run(s), load {os.getloadavg()[0]:.1f}")
    print(f"{'':<60} {'wall':>12} {'CPU':>12}")
    medians = {label: tuple(statistics.median(column) for column in zip(*runs_, strict=True)) for label, runs_ in samples.items()}
    for label, (wall, cpu) in medians.items():
        print(f"{label:<60} {wall * 1000:>9.0f} ms {cpu * 1000:>9.0f} ms")
    for name in ("git push", "git push --atomic"):
        bare = medians[f"{name}, no hooks"]

        def cost(label: str, bare: tuple[float, ...] = bare) -> str:
            return f"{medians[label][0] - bare[0]:.2f} s wall / {medians[label][1] - bare[1]:.2f} s CPU"

        print(f"{name}: dlgit's cost {cost(f'{name}, dlgit install --server')} (target <= 3 s for 1,000 + 1,000); "
              f"a no-op reference-transaction hook's {cost(f'{name}, no-op reference-transaction hook')}; "
              f"dlgit's with a release tag {cost(f'{name} + a release tag, dlgit install --server')}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", choices=("model", "pr", "both", "refs", "none"), default="both",
                        help="both: model and pr; refs: only the many-refs push (also run by both)")
    parser.add_argument("--refs", type=int, default=1_000, help="many-refs push: branches (and as many tags)")
    parser.add_argument("--repo", action="append", default=[], metavar="PATH:BRANCH", help="an existing repository to judge too")
    parser.add_argument("--baseline", help="another dlgit executable to time in the same run (e.g. an install of the code before)")
    parser.add_argument("--commits", type=int, default=10_000, help="model history: commits")
    parser.add_argument("--files", type=int, default=100_000, help="model history: files in the root tree")
    parser.add_argument("--prs", type=int, default=3_000, help="pull-request history: pull requests")
    parser.add_argument("--pr-files", type=int, default=2_000, help="pull-request history: files in the root tree")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    if args.history in ("model", "both"):
        repo = cached(f"v1-{args.commits}-{args.files}", lambda path: generate(path, args.commits, args.files))
        measure(f"model history ({args.files:,} files in the root tree)", repo, "dev", args.runs, args.baseline)
    if args.history in ("pr", "both"):
        repo = cached(f"pr-v1-{args.prs}-{args.pr_files}", lambda path: generate_pull_requests(path, args.prs, args.pr_files))
        measure(f"pull-request history ({args.pr_files:,} files in the root tree)", repo, "dev", args.runs, args.baseline)
    if args.history in ("refs", "both"):
        repo = cached(f"refs-v2-{args.refs}", lambda path: generate_many_refs(path, args.refs))
        measure_many_refs(repo, args.runs)
    for spec in args.repo:
        path, _, branch = spec.rpartition(":") if ":" in spec else (spec, "", "main")
        measure(Path(path).name, Path(path).resolve(), branch or "main", args.runs, args.baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
