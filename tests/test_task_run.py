"""`dlgit run` through the installed command in real repositories: the log, the run record, the
machine-wide lock, signals, --debug, --profile and the refusals; then the pure parts in-process
(the progress-collapsing log, the DEBUG rewrite, the lock)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE_CONFIG, Repo, Work, make_repo

from dlgit.errors import UsageError
from dlgit.tasks import envfreeze, lock
from dlgit.tasks.run import ProgressLog, debug_config

TASK = "task-0.1.0-20260105T101010-lr0.02"
STARTED = "started"  # a file the waiting scripts write once they run

TQDM_SCRIPT = """\
import os, sys
from tqdm import tqdm
print("start", os.environ["DLGIT_TASK"])
for i in tqdm(range(300), mininterval=0, miniters=1, ascii=True):
    if i % 100 == 0:
        tqdm.write(f"line {i}")
print("done")
print("to stderr", file=sys.stderr)
"""
CRASH_SCRIPT = """\
import sys
print("about to fail")
if len(sys.argv) > 1:
    sys.exit(int(sys.argv[1]))
1 / 0
"""
WAIT_SCRIPT = """\
import os, pathlib, time
pathlib.Path(os.environ["DLGIT_TASK_DIR"], "started").write_text(str(os.getpid()))
print("waiting", flush=True)
time.sleep(30)
"""
CONFIG_SCRIPT = """\
import os, yaml
with open(os.environ["DLGIT_CONFIG"]) as f:
    config = yaml.safe_load(f)
print("DEBUG", config["DEBUG"], "lr", config["lr"], "env", os.environ.get("DLGIT_DEBUG"))
"""
PROFILE_SCRIPT = """\
def expensive_work():
    return sum(i * i for i in range(200000))

expensive_work()
"""


def task_branch(repo: Repo, script: str, name: str = TASK, config: str = TEMPLATE_CONFIG.replace("lr: 0.01", "lr: 0.02")) -> Path:
    """A task branch from main with its folder (config and train.py) committed; checked out."""
    repo.git("switch", "-q", "-c", name, "main")
    folder = f"tasks/{name}"
    repo.write(f"{folder}/config.yaml", config)
    repo.write(f"{folder}/train.py", script)
    repo.commit("task: start lr0.02", folder)
    return repo.path / folder


def record_of(folder: Path) -> dict:
    records = [path for path in (folder / "runs").glob("*.yaml") if not path.name.endswith(".config.yaml")]
    assert len(records) == 1, records
    return yaml.safe_load(records[0].read_text())


def log_of(folder: Path) -> str:
    logs = list((folder / "logs").glob("*.log"))
    assert len(logs) == 1, logs
    return logs[0].read_text()


def dlgit_command() -> list[str]:
    return [shutil.which("dlgit") or "dlgit"]


def wait_for(path: Path, pattern: str | None = None, seconds: float = 10.0) -> None:
    """Until `path` exists (with a file matching `pattern` in it, when given)."""
    deadline = time.monotonic() + seconds
    while not (path.exists() and (pattern is None or any(path.glob(pattern)))):
        assert time.monotonic() < deadline, f"{path}/{pattern or ''} never appeared"
        time.sleep(0.02)


def _default_signals() -> None:
    """A shell's job gets the default dispositions; a test worker may ignore SIGINT (dlgit, and the
    script after it, would then keep ignoring it, as under nohup)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


@contextlib.contextmanager
def background_run(repo: Repo, *args: str) -> Iterator[subprocess.Popen[str]]:
    """`dlgit run` in its own session (as a shell's job), killed if the test leaves it running."""
    proc = subprocess.Popen([*dlgit_command(), "run", *args], cwd=repo.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=_default_signals)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):  # the script too, even when dlgit is gone
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def test_log_keeps_lines_once_and_the_bar_in_its_final_state(repo: Repo) -> None:
    folder = task_branch(repo, TQDM_SCRIPT)
    result = subprocess.run([*dlgit_command(), "run"], cwd=repo.path, capture_output=True, check=False)  # bytes: "\r" kept
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"start {TASK}\nline 0\nline 100\nline 200\ndone\n".encode()  # the terminal gets the output unchanged
    assert result.stderr.count(b"\r") > 300  # ... every update of the bar included
    log = log_of(folder)
    lines = log.splitlines()
    # each stream's lines in order (two pipes ready at once cannot tell which line came first)
    stdout_lines = [line for line in lines if "|" not in line and line != "to stderr"]
    assert stdout_lines == [f"start {TASK}", "line 0", "line 100", "line 200", "done"]
    assert lines.count("to stderr") == 1
    bars = [line for line in lines if "|" in line]
    assert len(bars) == 1 and "300/300" in bars[0] and bars[0].startswith("100%")
    assert "\r" not in log
    assert b"exited 0" in result.stderr and b"logs/" in result.stderr and b"runs/" in result.stderr


def test_record_is_complete(repo: Repo) -> None:
    folder = task_branch(repo, "print('hi')\n")
    assert repo.dlgit("run", "--", "--lr", "0.5").returncode == 0
    record = record_of(folder)
    stem = record["log"].removeprefix("logs/").removesuffix(".log")
    assert record["state"] == "finished" and record["exit_code"] == 0 and record["signal"] is None and not record["interrupted"]
    assert record["branch"] == TASK and record["task_dir"] == f"tasks/{TASK}" and record["script"] == "train.py"
    assert record["args"] == ["--lr", "0.5"] and record["command"][-3:] == ["train.py", "--lr", "0.5"]
    assert record["commit"] == repo.head() and record["dirty"] is False and record["dirty_outside_task"] == []
    assert record["start"] < record["end"] and 0 < record["duration_s"] < 30
    assert record["host"] == socket.gethostname() and record["user"] and record["pid"] > 0
    assert record["python_version"] == sys.version.split()[0] and record["platform"].startswith(os.uname().sysname)
    assert record["gpus"] is None  # no nvidia-smi here
    assert record["config"] == "config.yaml" and record["debug"] is False and record["profile"] is None
    assert record["pip_freeze"] == f"runs/{stem}.pip-freeze.txt" and len(record["pip_freeze_key"]) == 24


def cached_freeze(repo: Repo, key: str, seconds: float = 60.0) -> str:
    """The environment's pip freeze in the repository's cache, once the background freeze wrote it."""
    final = repo.path / ".git" / "dlgit" / "freeze" / f"{key}.txt"
    deadline = time.monotonic() + seconds
    while not final.exists():
        assert time.monotonic() < deadline, "pip freeze never wrote the environment"
        time.sleep(0.05)
    return final.read_text()


def test_pip_freeze_is_computed_once_per_environment_and_never_lands_after_the_run(repo: Repo) -> None:
    folder = task_branch(repo, "print('hi')\n")
    assert repo.dlgit("run").returncode == 0
    first = record_of(folder)
    listed = sorted(path.name for path in (folder / "runs").iterdir())
    freeze = cached_freeze(repo, first["pip_freeze_key"])
    assert "tqdm==" in freeze and "PyYAML==" in freeze  # the packages that ran
    assert sorted(path.name for path in (folder / "runs").iterdir()) == listed  # nothing was added after dlgit exited
    (folder / "runs" / f"{first['log'][5:-4]}.yaml").rename(folder / "runs" / "first.yaml")  # a run whose freeze came later
    (folder / "runs" / f"{first['log'][5:-4]}.pip-freeze.txt").unlink(missing_ok=True)
    assert repo.dlgit("run").returncode == 0
    second = yaml.safe_load(next(path for path in (folder / "runs").glob("2*.yaml")).read_text())
    assert second["pip_freeze_key"] == first["pip_freeze_key"]
    assert (folder / second["pip_freeze"]).read_text() == freeze  # copied from the cache before dlgit exited
    assert (folder / "runs" / "first.pip-freeze.txt").read_text() == freeze  # the earlier run's, filled in by this one
    assert not any(name.endswith(".partial") for name in os.listdir(folder / "runs"))


def test_the_environment_key_follows_what_pip_installs(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    (site / "foo-1.0.dist-info").mkdir(parents=True)
    before = envfreeze.key([str(site)])
    (site / "notes.txt").write_text("not a package")
    assert envfreeze.key([str(site), str(tmp_path / "gone")]) == before  # other files, missing folders: the same environment
    (site / "foo-1.0.dist-info").rename(site / "foo-1.1.dist-info")
    upgraded = envfreeze.key([str(site)])
    assert upgraded != before
    (site / "bar.pth").write_text(str(tmp_path))
    assert envfreeze.key([str(site)]) not in (before, upgraded)


def test_an_abandoned_partial_freeze_is_redone_and_a_fresh_one_is_left_to_its_writer(tmp_path: Path) -> None:
    final = str(tmp_path / "freeze" / "k.txt")
    os.makedirs(os.path.dirname(final))
    Path(envfreeze.partial(final)).write_text("half")
    assert envfreeze.going(final) and envfreeze.freeze(final) == 0 and not os.path.exists(final)  # another writer is at it
    old = time.time() - envfreeze.STALE - 1
    os.utime(envfreeze.partial(final), (old, old))  # its writer was killed long ago
    assert not envfreeze.going(final) and envfreeze.freeze(final) == 0
    assert "PyYAML==" in Path(final).read_text() and not os.path.exists(envfreeze.partial(final))


def test_crashing_script_is_recorded_with_its_exit_code(repo: Repo) -> None:
    folder = task_branch(repo, CRASH_SCRIPT)
    crashed = repo.dlgit("run")
    assert crashed.returncode == 1
    record = record_of(folder)
    assert (record["state"], record["exit_code"], record["interrupted"]) == ("failed", 1, False)
    log = log_of(folder)
    assert "about to fail" in log and "ZeroDivisionError" in log  # the traceback is kept
    shutil.rmtree(folder / "runs")
    assert repo.dlgit("run", "--", "3").returncode == 3
    assert record_of(folder)["exit_code"] == 3


def test_second_run_refused_naming_the_holder_in_any_repository(repo: Repo, tmp_path: Path) -> None:
    folder = task_branch(repo, WAIT_SCRIPT)
    other = make_repo(tmp_path / "other")
    other.write("tasks/main/config.yaml", TEMPLATE_CONFIG)
    other.write("tasks/main/train.py", "print('other')\n")
    other.commit("chore: layout")
    with background_run(repo) as first:
        wait_for(folder / STARTED)
        refused = other.dlgit("run")
        assert refused.returncode == 2
        assert f"pid {first.pid}" in refused.stderr and TASK in refused.stderr and "another task is running" in refused.stderr
        assert lock.run_active(TASK, repo.path / ".git") is not None
        assert lock.run_active("main", other.path / ".git") is None
        os.kill(first.pid, signal.SIGTERM)  # to dlgit alone: passed on to the script
        _, err = first.communicate(timeout=20)
    assert first.returncode == 128 + signal.SIGTERM, err
    record = record_of(folder)
    assert record["interrupted"] is True and record["signal"] == "SIGTERM" and record["state"] == "interrupted"
    assert lock.active() is None
    assert other.dlgit("run").returncode == 0  # the lock is free again


def test_a_killed_dlgit_leaves_its_record_and_frees_the_lock(repo: Repo) -> None:
    folder = task_branch(repo, WAIT_SCRIPT)
    with background_run(repo) as proc:
        wait_for(folder / STARTED)
        wait_for(folder / "runs", "*.yaml")  # the record is written as the script starts up
        assert lock.active() is not None
        os.kill(proc.pid, signal.SIGKILL)  # dlgit alone: its script goes on until the group is killed
        proc.wait(timeout=10)
        record = record_of(folder)
        assert record["state"] == "running" and record["commit"] == repo.head() and record["end"] is None
        assert lock.active() is None  # the kernel dropped the lock with its holder


def test_stale_lock_is_taken_over_with_a_warning(repo: Repo) -> None:
    folder = task_branch(repo, "print('hi')\n")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = lock.Holder(gone.pid, socket.gethostname(), "task-0.1.0-20250101T000000-old", "/elsewhere/.git", "/elsewhere", "2025-01-01")
    lock.lock_path().parent.mkdir(parents=True)
    lock.lock_path().write_text(json.dumps(stale._asdict()))
    result = repo.dlgit("run")
    assert result.returncode == 0, result.stderr
    assert "stale run lock" in result.stderr and f"pid {gone.pid}" in result.stderr and "old" in result.stderr
    assert record_of(folder)["exit_code"] == 0
    assert lock.lock_path().read_text() == ""  # released: nothing left to take over


def test_ctrl_c_reaches_the_script_and_the_run_is_recorded_as_interrupted(repo: Repo) -> None:
    folder = task_branch(repo, WAIT_SCRIPT)
    with background_run(repo) as proc:
        wait_for(folder / STARTED)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the whole foreground group
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "waiting" in out and "KeyboardInterrupt" in err and "interrupted (SIGINT)" in err
    record = record_of(folder)
    assert record["interrupted"] is True and record["signal"] == "SIGINT" and record["exit_code"] == 130
    assert "KeyboardInterrupt" in log_of(folder)
    assert lock.active() is None


def test_debug_runs_with_debug_true_and_leaves_config_untouched(repo: Repo) -> None:
    config = "VERSION: 0.1.0\nDEBUG: false  # small data set\nRESUME: null\nTRAIN: true\nTEST: false\nMODEL_PATH: null\n" \
             "RANDOM_SEED: 42\nlr: 0.02   # tuned\n"
    folder = task_branch(repo, CONFIG_SCRIPT, config=config)
    result = repo.dlgit("run", "--debug")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "DEBUG True lr 0.02 env 1\n"
    assert (folder / "config.yaml").read_text() == config
    record = record_of(folder)
    assert record["debug"] is True and record["config"].endswith(".config.yaml")
    assert (folder / record["config"]).read_text() == config.replace("DEBUG: false", "DEBUG: true")
    assert repo.git("status", "--porcelain", "--", f"tasks/{TASK}/config.yaml").stdout == ""
    shutil.rmtree(folder / "runs")
    assert repo.dlgit("run").stdout == "DEBUG False lr 0.02 env None\n"


def test_profile_writes_the_profile_and_prints_the_costliest_functions(repo: Repo) -> None:
    folder = task_branch(repo, PROFILE_SCRIPT)
    result = repo.dlgit("run", "--profile")
    assert result.returncode == 0, result.stderr
    record = record_of(folder)
    assert record["profile"].endswith(".prof") and (folder / record["profile"]).stat().st_size > 0
    assert "cumulative" in result.stdout and "expensive_work" in result.stdout
    assert "Ordered by: cumulative time" in result.stdout


def test_changes_outside_the_task_folder_refused_unless_allowed(repo: Repo) -> None:
    folder = task_branch(repo, "print('hi')\n")
    repo.write("model/net.py", "NET = 2\n")
    repo.write("notes/new file.txt", "untracked\n")
    refused = repo.dlgit("run")
    assert refused.returncode == 2
    assert "model/net.py" in refused.stderr and "notes/new file.txt" in refused.stderr and "--allow-dirty" in refused.stderr
    assert not (folder / "runs").exists()
    allowed = repo.dlgit("run", "--allow-dirty")
    assert allowed.returncode == 0, allowed.stderr
    record = record_of(folder)
    assert record["dirty"] is True and record["dirty_outside_task"] == ["model/net.py", "notes/new file.txt"]


def test_a_rename_out_of_the_core_into_the_task_folder_is_a_change_outside(repo: Repo) -> None:
    task_branch(repo, "print('hi')\n")
    repo.git("mv", "model/net.py", f"tasks/{TASK}/net.py")
    refused = repo.dlgit("run")
    assert refused.returncode == 2 and "  - model/net.py\n" in refused.stderr and f"  - tasks/{TASK}" not in refused.stderr


def test_changes_inside_the_task_folder_are_fine(repo: Repo) -> None:
    folder = task_branch(repo, "print('hi')\n")
    repo.write(f"tasks/{TASK}/config.yaml", TEMPLATE_CONFIG.replace("lr: 0.01", "lr: 0.03"))
    result = repo.dlgit("run")
    assert result.returncode == 0, result.stderr
    assert record_of(folder)["dirty"] is True


def test_run_on_main_uses_the_template_folder(repo: Repo) -> None:
    result = repo.dlgit("run")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "train\n"
    assert record_of(repo.path / "tasks/main")["branch"] == "main"


def test_no_task_folder_detached_head_and_bad_scripts_refused(repo: Repo, tmp_path: Path) -> None:
    repo.git("switch", "-q", "dev")
    no_folder = repo.dlgit("run")
    assert no_folder.returncode == 2 and "tasks/dev/" in no_folder.stderr and "dlgit start-task" in no_folder.stderr
    assert "Traceback" not in no_folder.stderr
    repo.git("switch", "-q", "--detach", "main")
    detached = repo.dlgit("run")
    assert detached.returncode == 2 and "detached" in detached.stderr
    repo.git("switch", "-q", "main")
    for script in ("missing.py", "../../model/net.py"):
        bad = repo.dlgit("run", script)
        assert bad.returncode == 2 and "inside its task folder" in bad.stderr, bad.stderr
    outside = subprocess.run([*dlgit_command(), "run"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert outside.returncode == 2 and "not inside a git repository" in outside.stderr
    assert not (repo.path / "tasks/main/runs").exists()


def test_unborn_branch_refused(bare_repo: Repo) -> None:
    bare_repo.write("tasks/main/train.py", "print('train')\n")
    refused = bare_repo.dlgit("run")
    assert refused.returncode == 2 and "no commit yet" in refused.stderr


def test_configured_interpreter_runs_the_script_and_is_recorded(repo: Repo) -> None:
    folder = task_branch(repo, "import sys; print(sys.flags.utf8_mode)\n")
    repo.write(".dlgit.yaml", f"tasks:\n  python: {sys.executable} -X utf8\n")
    result = repo.dlgit("run", "--allow-dirty")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1\n"
    record = record_of(folder)
    assert record["command"][:3] == [sys.executable, "-X", "utf8"]
    assert record["python_version"] == sys.version.split()[0]  # asked of that interpreter beside the run
    assert record["pip_freeze_key"] and "PyYAML==" in cached_freeze(repo, record["pip_freeze_key"])  # its environment's freeze
    repo.write(".dlgit.yaml", "tasks:\n  python: no-such-python3\n")
    missing = repo.dlgit("run", "--allow-dirty")
    assert missing.returncode == 2 and "no-such-python3" in missing.stderr and "tasks.python" in missing.stderr


def test_script_from_the_folder_or_the_current_directory(repo: Repo) -> None:
    repo.write("tasks/main/eval.py", "import sys; print('eval', *sys.argv[1:])\n")
    repo.commit("chore: eval script", "tasks/main/eval.py", extra=("--no-verify",))
    assert repo.dlgit("run", "eval.py", "--", "--split", "test").stdout == "eval --split test\n"
    assert repo.dlgit("run", "--allow-dirty", "tasks/main/eval.py").stdout == "eval\n"


# --- in-process: the log ------------------------------------------------------------------------


def collapsed(tmp_path: Path, *chunks: tuple[int, bytes]) -> bytes:
    path = tmp_path / "log"
    log = ProgressLog(os.open(path, os.O_WRONLY | os.O_CREAT))
    for stream, chunk in chunks:
        log.feed(stream, chunk)
    log.close()
    return path.read_bytes()


@pytest.mark.parametrize(("chunks", "expected"), [
    ([b"a\nb\n"], b"a\nb\n"),
    ([b"par", b"tial\n"], b"partial\n"),
    ([b"\r 10%", b"\r 50%", b"\r100%\n"], b"100%\n"),
    ([b" 10%\r 50%\r", b"100%\r\n"], b"100%\n"),  # trailing carriage returns, a CRLF split across chunks
    ([b"line\r", b"\n"], b"line\n"),
    ([b"\r 10%\r    \rmessage\n\r 20%"], b"message\n 20%\n"),  # tqdm.write clears the bar; an unfinished bar is kept at the end
    ([b"\r 10%\r    \r"], b""),  # a bar cleared at the end (leave=False) leaves nothing
    ([b"abc\rxy\n"], b"xy\n"),
    ([b"no newline at the end"], b"no newline at the end\n"),
    ([b"\xff\xfe bytes\n"], b"\xff\xfe bytes\n"),
])
def test_progress_log_keeps_final_states(tmp_path: Path, chunks: list[bytes], expected: bytes) -> None:
    assert collapsed(tmp_path, *((1, chunk) for chunk in chunks)) == expected


def test_progress_log_keeps_each_streams_lines_whole(tmp_path: Path) -> None:
    assert collapsed(tmp_path, (2, b"\r 10%"), (1, b"epoch 1"), (2, b"\r 20%"), (1, b" done\n"), (2, b"\r100%\n")) == \
        b"epoch 1 done\n100%\n"


def test_progress_log_is_linear(tmp_path: Path) -> None:
    """Ten times the updates cost ten times the work (Python calls counted), not a hundred."""
    calls = []
    for count in (2_000, 20_000):
        updates = [b"\r%d/%d [%s]" % (i, count, b"#" * (20 * i // count)) for i in range(count)]
        (tmp_path / str(count)).mkdir()
        with Work() as work:
            log = collapsed(tmp_path / str(count), *((2, update) for update in updates), (2, b"\n"))
        assert log == b"%d/%d [%s]\n" % (count - 1, count, b"#" * 19)
        calls.append(work.calls)
    assert calls[1] < 12 * calls[0], calls


# --- in-process: DEBUG and the lock ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("VERSION: 0.1.0\nDEBUG: false\n", "VERSION: 0.1.0\nDEBUG: true\n"),
    ("DEBUG: no   # tiny data\r\nlr: 0.1\r\n", "DEBUG: true   # tiny data\r\nlr: 0.1\r\n"),
    ("DEBUG:\nlr: 0.1\n", "DEBUG: true\nlr: 0.1\n"),
    ("lr: 0.1", "lr: 0.1\nDEBUG: true\n"),
    ("model:\n  DEBUG: false\nDEBUG: true\n", "model:\n  DEBUG: false\nDEBUG: true\n"),
    ("DEBUG: 'false # x'\n", "DEBUG: true\n"),  # a quoted value is replaced whole
])
def test_debug_config_changes_only_debug(text: str, expected: str) -> None:
    assert debug_config(text) == expected


@pytest.mark.parametrize("text", ["DEBUG: [1,\n  2]\n", "- a list\n", "DEBUG: &off false\nTEST: *off\n"])
def test_debug_config_refuses_what_it_cannot_rewrite_safely(text: str) -> None:
    with pytest.raises(UsageError):
        debug_config(text)


def test_lock_is_exclusive_and_answers_who_holds_it() -> None:
    holder = lock.Holder(os.getpid(), socket.gethostname(), TASK, "/repo/.git", "/repo", "2026-01-01T00:00:00")
    held, stale = lock.acquire(holder)
    try:
        assert stale is None
        assert lock.active() == holder
        assert lock.run_active(TASK, "/repo/.git") == holder and lock.run_active("main", "/repo/.git") is None
        with pytest.raises(UsageError, match=f"pid {os.getpid()}"):
            lock.acquire(holder._replace(branch="main"))
    finally:
        held.release()
    assert lock.active() is None
    again, stale = lock.acquire(holder)
    again.release()
    assert stale is None  # a released lock leaves no name behind
