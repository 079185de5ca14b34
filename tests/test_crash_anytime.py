"""A SIGKILL at a random moment (a timer, not a step boundary) during a 20,000-file release and a
finish-task with 5,000 result files beside a dev 20,000 files ahead of main: the kill lands inside
git children too (a half-written work tree, a lock file left), or kills dlgit alone while its git
goes on. Then `dlgit continue` (even trials) or `dlgit abort` (odd ones) finishes the job, or says
the one command that makes it work (the trial runs that command, as a user would, and tries again);
nothing is lost either way.

A few trials run in the normal suite; DLGIT_CRASH_TRIALS=N runs N of each (DLGIT_CRASH_SEED fixes
the random moments)."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import Repo
from flowkit import commits, ok

FILES = 20_000
RESULTS = 5_000
TRIALS = int(os.environ.get("DLGIT_CRASH_TRIALS", "2"))
SEED = int(os.environ.get("DLGIT_CRASH_SEED", str(random.randrange(1 << 30))))
DLGIT = shutil.which("dlgit") or "dlgit"


def _fast_import(repo: Repo, ref: str, parent: str, prefix: str, count: int, message: str) -> None:
    lines = [f"commit {ref}", "committer crash <c@x> 1700000000 +0000", f"data {len(message)}", message, f"from {parent}"]
    for i in range(count):
        content = f"VALUE = {i}\n"
        lines += [f"M 100644 inline {prefix}/pkg{i % 100}/m{i}.py", f"data {len(content)}", content]
    repo.git("fast-import", "--quiet", "--force", input="\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`dlgit init` (hooks installed), dev 20,000 files ahead of main."""
    root = tmp_path_factory.mktemp("crash")
    repo = Repo(root / "repo")
    repo.path.mkdir()
    ok(repo.dlgit("init"))
    repo.git("config", "gc.auto", "0")
    _fast_import(repo, "refs/heads/dev", repo.head("main"), "src", FILES, "feat: the core code")
    return repo.path


def _copy(base: Path, tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "repo")
    shutil.copytree(base, repo.path, symlinks=True)
    return repo


def _release_scene(repo: Repo) -> list[str]:
    repo.git("switch", "-q", "dev")
    return ["release"]


def _finish_scene(repo: Repo) -> list[str]:
    ok(repo.dlgit("start-task", "big"))
    folder = repo.path / "tasks" / repo.branch() / "results"
    for i in range(RESULTS):
        part = folder / f"p{i % 50}"
        part.mkdir(parents=True, exist_ok=True)
        (part / f"r{i}.txt").write_text(f"result {i}\n")
    return ["finish-task"]


SCENES = {"release": _release_scene, "finish-task": _finish_scene}


def _files(repo: Repo) -> dict[str, bytes]:
    """Every file in the work tree outside .git, by its content."""
    found = {}
    for path in repo.path.rglob("*"):
        if ".git" not in path.relative_to(repo.path).parts[:1] and path.is_file():
            found[str(path.relative_to(repo.path))] = path.read_bytes()
    return found


def _kill_at_random(repo: Repo, args: list[str], rng: random.Random) -> str:
    """Start the flow, SIGKILL it after a random delay: its whole process group (git children too)
    or dlgit alone (its git goes on). Says what was done, for the failure message."""
    proc = subprocess.Popen([DLGIT, *args], cwd=repo.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    delay, group = rng.uniform(0.0, 6.0), rng.random() < 0.7
    try:
        proc.wait(timeout=delay)
        return f"{args} ended before the kill at {delay:.2f}s (exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill()
        proc.wait()
        return f"{args} killed at {delay:.2f}s ({'with its git children' if group else 'dlgit alone'})"


def _recover(repo: Repo, verb: str, what: str) -> subprocess.CompletedProcess[str]:
    """`dlgit VERB` as a user would go on: wait while it says a git is at work, run the one command
    it names, try again."""
    for _ in range(60):
        proc = repo.dlgit(verb)
        assert "Traceback" not in proc.stderr, f"{what}\n{proc.stderr}"
        if proc.returncode == 0 or "no unfinished flow" in proc.stderr:
            return proc
        if "still at work" in proc.stderr:
            time.sleep(0.5)
            continue
        command = re.search(r"^  (rm -f .+)$", proc.stderr, re.MULTILINE)
        assert proc.returncode == 2 and command, f"{what}: `dlgit {verb}` neither worked nor named its command:\n{proc.stdout}{proc.stderr}"
        subprocess.run(["bash", "-c", command.group(1)], cwd=repo.path, check=True)
    raise AssertionError(f"{what}: `dlgit {verb}` kept waiting")


def _finished(repo: Repo, scene: str, what: str) -> None:
    if scene == "release":
        assert "VERSION: 0.2.0" in repo.git("show", "main:tasks/main/config.yaml").stdout, what
        assert repo.head("v0.2.0^{commit}") == repo.head("main") and repo.git("merge-base", "--is-ancestor", "main", "dev").returncode == 0
        assert int(repo.git("ls-tree", "-r", "--name-only", "main", "--", "src").stdout.count("\n")) == FILES
    else:
        for target in ("main", "dev"):
            listed = repo.git("ls-tree", "-r", "--name-only", target, "--", "tasks").stdout
            assert listed.count("/results/") == RESULTS, (what, target)
    assert repo.git("status", "--porcelain").stdout == "", what


def _trial(base: Path, tmp_path: Path, scene: str, trial: int) -> None:
    rng = random.Random(SEED * 100 + trial * 2 + (scene == "release"))
    repo = _copy(base, tmp_path / f"t{trial}")
    args = SCENES[scene](repo)
    refs, head = repo.git("for-each-ref").stdout, repo.git("symbolic-ref", "HEAD").stdout
    files, known = _files(repo), commits(repo)
    what = f"{scene} trial {trial} (DLGIT_CRASH_SEED={SEED}): " + _kill_at_random(repo, args, rng)
    verb = "continue" if trial % 2 == 0 else "abort"
    done = _recover(repo, verb, what)
    assert known <= commits(repo), f"{what}: commits lost"
    if verb == "continue" or ("no unfinished flow" in done.stderr and repo.git("for-each-ref").stdout != refs):
        if "no unfinished flow" in done.stderr and repo.git("for-each-ref").stdout == refs:  # killed before the flow began
            ok(repo.dlgit(*args))
        _finished(repo, scene, what)
        return
    assert repo.git("for-each-ref").stdout == refs, f"{what}: abort left refs moved"
    assert repo.git("symbolic-ref", "HEAD").stdout == head, what
    assert _files(repo) == files, f"{what}: the work tree differs after abort"
    assert repo.git("diff", "--cached", "--name-only").stdout == "", f"{what}: something is left staged"


@pytest.mark.parametrize("scene", list(SCENES))
@pytest.mark.parametrize("trial", range(TRIALS))
def test_a_kill_at_a_random_moment_then_continue_or_abort(base: Path, tmp_path: Path, scene: str, trial: int) -> None:
    _trial(base, tmp_path, scene, trial)


# --- each leftover on its own, deterministically ----------------------------------------------------


@pytest.fixture
def crashed_release(repo: Repo) -> Repo:
    """A release killed right after its first step (on main, about to squash dev)."""
    repo.git("switch", "-q", "dev")
    for i in range(5):
        repo.write(f"model/part{i}.py", f"PART = {i}\n" * 50)
    repo.commit("feat: five parts")
    assert repo.dlgit("release", env={"DLGIT_TEST_CRASH_AFTER_STEP": "1"}).returncode == -9
    return repo


def test_a_stale_lock_is_named_with_the_command_that_removes_it(crashed_release: Repo) -> None:
    repo = crashed_release
    lock = repo.path / ".git" / "index.lock"
    lock.write_bytes(b"")
    for verb in ("continue", "abort"):
        refused = repo.dlgit(verb)
        assert refused.returncode == 2 and "stale" in refused.stderr and "[1/" not in refused.stdout, refused.stderr
    command = re.search(r"^  (rm -f .+)$", refused.stderr, re.MULTILINE)
    assert command and "index.lock" in command.group(1)
    subprocess.run(["bash", "-c", command.group(1)], cwd=repo.path, check=True)
    ok(repo.dlgit("continue"))
    assert "VERSION: 0.2.0" in repo.git("show", "main:tasks/main/config.yaml").stdout


def test_a_git_still_at_work_is_waited_for(crashed_release: Repo) -> None:
    repo = crashed_release
    busy = subprocess.Popen(["git", "hash-object", "--stdin"], cwd=repo.path, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.2)
        refused = repo.dlgit("continue")
        assert refused.returncode == 2 and "still at work" in refused.stderr and f"pid {busy.pid}" in refused.stderr, refused.stderr
    finally:
        busy.communicate(b"x")
    ok(repo.dlgit("continue"))


@pytest.mark.parametrize("verb", ["continue", "abort"])
def test_a_half_written_work_tree_is_taken_back(crashed_release: Repo, verb: str) -> None:
    repo = crashed_release
    before = repo.git("status", "--porcelain", "--untracked-files=all").stdout
    for i in range(4):  # what a killed `git merge --squash dev` had written: whole files, and one cut short
        repo.write(f"model/part{i}.py", repo.git("show", f"dev:model/part{i}.py").stdout)
    repo.write("model/part4.py", repo.git("show", "dev:model/part4.py").stdout[:37])
    repo.write("notes/mine.txt", "the user's own file\n")
    out = ok(repo.dlgit(verb))
    assert "took back 5 file(s)" in out
    assert (repo.path / "notes/mine.txt").read_text() == "the user's own file\n"  # not git's: untouched
    if verb == "continue":
        assert "VERSION: 0.2.0" in repo.git("show", "main:tasks/main/config.yaml").stdout
    else:
        assert repo.git("status", "--porcelain", "--untracked-files=all").stdout == before + "?? notes/mine.txt\n"


@pytest.mark.parametrize("verb", ["continue", "abort"])
def test_files_in_the_way_that_match_no_commit_get_the_one_command_that_sets_them_aside(crashed_release: Repo, verb: str) -> None:
    repo = crashed_release
    repo.write("model/part0.py", "not what dev holds\n")  # git's half-merge, or the user's: dlgit cannot tell
    stopped = repo.dlgit(verb)
    assert stopped.returncode in (1, 2) and "Traceback" not in stopped.stderr
    said = stopped.stdout + stopped.stderr
    command = re.search(r"^  (git stash push --include-untracked .+)$", said, re.MULTILINE)
    assert command and "model/part0.py" in command.group(1), said
    subprocess.run(["bash", "-c", command.group(1)], cwd=repo.path, check=True)
    ok(repo.dlgit(verb))
    assert "not what dev holds" in repo.git("stash", "show", "-p", "--include-untracked").stdout
