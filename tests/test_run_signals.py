"""Interrupts reach the script once, however they are sent: Ctrl-C in a real terminal (to the
whole foreground group: not passed on again), SIGINT to dlgit's pid alone (passed on); the record
tells what happened."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import termios
import time
from pathlib import Path

import yaml
from conftest import TEMPLATE_CONFIG, Repo

TASK = "task-0.1.0-20260105T101010-sig"
COUNTING = """\
import os, pathlib, signal, sys, time
count = 0
def interrupted(signum, frame):
    global count
    count += 1
signal.signal(signal.SIGINT, interrupted)
pathlib.Path(os.environ["DLGIT_TASK_DIR"], "started").write_text("")
print("waiting", flush=True)
deadline = time.monotonic() + 20
while not count and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(1)  # a second SIGINT would come now
print("interrupts", count, flush=True)
sys.exit(10 + count)
"""


HALF_A_BAR = """\
import os, pathlib, sys, time
sys.stderr.write("\\r 40%|####      | 4/10")
sys.stderr.flush()
pathlib.Path(os.environ["DLGIT_TASK_DIR"], "started").write_text("")
time.sleep(20)
"""


def task(repo: Repo, script: str = COUNTING) -> Path:
    repo.git("switch", "-q", "-c", TASK, "main")
    folder = f"tasks/{TASK}"
    repo.write(f"{folder}/config.yaml", TEMPLATE_CONFIG)
    repo.write(f"{folder}/train.py", script)
    repo.commit("task: start sig", folder)
    return repo.path / folder


def started(folder: Path) -> None:
    deadline = time.monotonic() + 20
    while not (folder / "started").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def record(folder: Path) -> dict:
    (path,) = [path for path in (folder / "runs").glob("*.yaml") if not path.name.endswith(".config.yaml")]
    return yaml.safe_load(path.read_text())


def _terminal_session() -> None:
    """The child leads a new session whose controlling terminal is its stdin (as a login shell's job)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def test_ctrl_c_in_a_terminal_reaches_the_script_once(repo: Repo) -> None:
    folder = task(repo)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(["dlgit", "run"], cwd=repo.path, stdin=follower, stdout=follower, stderr=follower,
                            preexec_fn=_terminal_session)
    os.close(follower)
    started(folder)
    os.write(leader, b"\x03")  # Ctrl-C: the terminal sends SIGINT to the foreground group
    screen = b""
    while select.select([leader], [], [], 30)[0]:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        screen += data
    os.close(leader)
    assert proc.wait(timeout=30) == 130, screen
    assert b"interrupts 1" in screen
    found = record(folder)
    assert found["interrupted"] is True and found["exit_code"] == 11 and found["signals_received"] == ["SIGINT"]


def test_sigint_to_dlgit_alone_is_passed_on(repo: Repo) -> None:
    folder = task(repo)
    proc = subprocess.Popen(["dlgit", "run"], cwd=repo.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    started(folder)
    os.kill(proc.pid, signal.SIGINT)  # to dlgit's pid alone: the script would not get it otherwise
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupts 1" in out
    found = record(folder)
    assert found["interrupted"] is True and found["exit_code"] == 11 and found["state"] == "interrupted"


def test_sigterm_during_a_half_drawn_bar_puts_dlgits_message_on_a_line_of_its_own(repo: Repo) -> None:
    folder = task(repo, HALF_A_BAR)
    proc = subprocess.Popen(["dlgit", "run"], cwd=repo.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    started(folder)
    os.kill(proc.pid, signal.SIGTERM)  # to dlgit alone: passed on to the script
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "4/10\ndlgit: run was interrupted (SIGTERM)" in err, err
    assert record(folder)["signal"] == "SIGTERM"
