"""The run's log is what the screen showed at the end: real tqdm nested bars (an epoch bar with a
leave=False batch bar), rich's progress, Keras-style `\\b`/`\\r` bars and coloured lines, through
`dlgit run` in a pty, and in-process over the output of the real libraries; bounded lines."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import TEMPLATE_CONFIG, Repo

from dlgit.tasks.runlog import MAX_LINE, ProgressLog

TASK = "task-0.1.0-20260105T101010-bars"
NESTED = """\
import sys
import threading
import time
from tqdm import tqdm
for epoch in tqdm(range(3), desc="epoch", mininterval=0):
    for batch in tqdm(range(40), desc="batch", leave=False, mininterval=0):
        pass
    tqdm.write(f"epoch {epoch} loss {1 / (epoch + 1):.3f}", file=sys.stderr)
print("\\x1b[32mtraining done\\x1b[0m", file=sys.stderr)
"""
PRINTS_BETWEEN = """\
import sys
import threading
import time
from tqdm import tqdm
for epoch in tqdm(range(2), desc="epoch", mininterval=0):
    for batch in tqdm(range(20), desc="batch", leave=False, mininterval=0):
        pass
    print(f"epoch {epoch} done", flush=True)
print("the end", flush=True)
"""
RICH = """\
import sys
import threading
import time
from rich.console import Console
from rich.progress import Progress
console = Console(file=sys.stderr, force_terminal=True, width=100)
with Progress(console=console, refresh_per_second=1000) as progress:
    train = progress.add_task("train", total=50)
    valid = progress.add_task("valid", total=20)
    for step in range(50):
        progress.advance(train)
        if step % 10 == 0:
            progress.console.print(f"[bold]step {step}[/bold]")
        if step < 20:
            progress.advance(valid)
console.print("[red]all done[/red]")
"""
KERAS = """\
import sys
import threading
import time
shown = 0
for step in range(1, 31):
    line = f"{step}/30 [" + "=" * step + ">" + "." * (30 - step) + f"] - loss: {1 / step:.4f}"
    sys.stdout.write("\\b" * shown + "\\r" + line)
    sys.stdout.flush()
    shown = len(line)
sys.stdout.write("\\n")
print("Epoch 2/2")
"""


def output_of(script: str, tmp_path: Path) -> list[tuple[int, bytes]]:
    """What the real library writes (into pipes, as under `dlgit run`), stderr's then stdout's."""
    path = tmp_path / "script.py"
    path.write_text(script)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, check=True, env={**os.environ, "COLUMNS": "100"})
    return [(2, proc.stderr), (1, proc.stdout)]


def logged(tmp_path: Path, chunks: list[tuple[int, bytes]], size: int = 4096) -> str:
    path = tmp_path / "log"
    log = ProgressLog(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
    for stream, data in chunks:
        for start in range(0, len(data), size):  # as the pipe delivers it: in pieces, sequences split
            log.feed(stream, data[start:start + size])
    log.close()
    return path.read_text()


@pytest.mark.parametrize("size", [7, 4096])
def test_nested_tqdm_bars_leave_the_final_screen(tmp_path: Path, size: int) -> None:
    log = logged(tmp_path, output_of(NESTED, tmp_path), size)
    lines = log.splitlines()
    assert [line for line in lines if line.startswith("epoch ")] == ["epoch 0 loss 1.000", "epoch 1 loss 0.500", "epoch 2 loss 0.333"]
    assert [line for line in lines if line.startswith("epoch:")] == [lines[-2]] and "3/3" in lines[-2]
    assert lines[-1] == "training done"
    assert "batch" not in log and "\x1b" not in log and "\r" not in log


def test_rich_progress_leaves_its_final_state(tmp_path: Path) -> None:
    pytest.importorskip("rich")
    log = logged(tmp_path, output_of(RICH, tmp_path))
    lines = log.splitlines()
    assert [line.split()[:2] for line in lines if line.startswith("step")] == [["step", "0"], ["step", "10"], ["step", "20"],
                                                                              ["step", "30"], ["step", "40"]]
    train = [line for line in lines if line.startswith("train")]
    valid = [line for line in lines if line.startswith("valid")]
    assert len(train) == len(valid) == 1 and "100%" in train[0] and "100%" in valid[0]
    assert lines[-1] == "all done" and "\x1b" not in log


def test_keras_style_bars_leave_one_line(tmp_path: Path) -> None:
    log = logged(tmp_path, output_of(KERAS, tmp_path))
    assert log == "30/30 [" + "=" * 30 + ">] - loss: 0.0333\nEpoch 2/2\n"


@pytest.mark.parametrize(("chunks", "expected"), [
    ([b"\x1b[1;31merror\x1b[0m: bad\n", b"plain\n"], "error: bad\nplain\n"),  # colours go, text stays
    ([b"a\n\x1b[2K\rb\n", b"c\n"], "a\nb\nc\n"),
    ([b"row1\nrow2\n\x1b[2A\x1b[2Kfixed\n"], "fixed\nrow2\n"),  # cursor up and erase: the last state of the rows
    ([b"\x1b[", b"1A\x1b[2K", b"\rdone\n", b"after\n"], "done\nafter\n"),  # a sequence split across reads
])
def test_cursor_sequences(tmp_path: Path, chunks: list[bytes], expected: str) -> None:
    assert logged(tmp_path, [(1, chunk) for chunk in chunks]) == expected


def test_a_long_run_of_rows_scrolls_out_in_order(tmp_path: Path) -> None:
    rows = b"".join(b"\x1b[33mline %d\x1b[0m\n" % i for i in range(5000))
    assert logged(tmp_path, [(1, b"\x1b[?25l" + rows + b"\r 50%\x1b[K")]) == "".join(f"line {i}\n" for i in range(5000)) + " 50%\n"


def test_a_huge_line_is_written_in_pieces(tmp_path: Path) -> None:
    chunk = b"x" * 65536
    path = tmp_path / "log"
    log = ProgressLog(os.open(path, os.O_WRONLY | os.O_CREAT))
    for _ in range(64):
        log.feed(1, chunk)
        assert sum(len(state.line.segment) for state in log.streams.values()) <= MAX_LINE + len(chunk)
    log.feed(1, b"\n")
    log.close()
    assert path.stat().st_size == 64 * len(chunk) + 1


def task_branch(repo: Repo, script: str) -> Path:
    repo.git("switch", "-q", "-c", TASK, "main")
    folder = f"tasks/{TASK}"
    repo.write(f"{folder}/config.yaml", TEMPLATE_CONFIG)
    repo.write(f"{folder}/train.py", script)
    repo.commit("task: start bars", folder)
    return repo.path / folder


def run_in_pty(repo: Repo, *args: str) -> tuple[int, bytes]:
    """`dlgit run` with a terminal as its stdout and stderr, as a researcher starts it."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(["dlgit", "run", *args], cwd=repo.path, stdin=follower, stdout=follower, stderr=follower,
                            env={**os.environ, "COLUMNS": "100"})
    os.close(follower)
    screen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        assert ready, "dlgit run hung"
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the other end is closed
            break
        if not data:
            break
        screen += data
    os.close(leader)
    return proc.wait(timeout=30), screen


def the_log(folder: Path) -> str:
    logs = list((folder / "logs").glob("*.log"))
    assert len(logs) == 1
    return logs[0].read_text()


def test_a_real_run_in_a_pty_logs_what_the_screen_shows(repo: Repo) -> None:
    folder = task_branch(repo, NESTED)
    code, screen = run_in_pty(repo)
    assert code == 0 and b"\x1b[A" in screen  # the terminal got the bars as they were drawn
    log = the_log(folder)
    lines = log.splitlines()
    assert [line for line in lines if line.startswith("epoch ")] == ["epoch 0 loss 1.000", "epoch 1 loss 0.500", "epoch 2 loss 0.333"]
    assert sum("3/3" in line for line in lines) == 1 and lines[-1] == "training done"
    assert "batch" not in log and "\x1b" not in log and "\r" not in log


def test_prints_between_bars_are_all_in_the_log_in_order(repo: Repo) -> None:
    folder = task_branch(repo, PRINTS_BETWEEN)
    code, _ = run_in_pty(repo)
    assert code == 0
    log = the_log(folder)
    assert log.index("epoch 0 done") < log.index("epoch 1 done") < log.index("the end")
    assert "\x1b" not in log and "batch" not in log


def test_one_huge_output_line_takes_bounded_memory(repo: Repo) -> None:
    """256 MiB in one line (written in 1 MiB blocks: the script stays small): dlgit's peak memory is
    a fraction of it, and the log holds the whole line. (By hand, a 1 GiB line: 27 MB peak.)"""
    folder = task_branch(repo, "import sys\nblock = b'x' * (1 << 20)\nfor _ in range(256):\n    sys.stdout.buffer.write(block)\n"
                                "sys.stdout.buffer.write(b'\\n')\n")
    proc = subprocess.Popen(["dlgit", "run"], cwd=repo.path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    peaks = []  # dlgit's own VmHWM (its memory since its exec, not the forking test worker's), polled while it runs

    def poll() -> None:
        while proc.poll() is None:
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                return
            peaks.extend(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
            time.sleep(0.02)

    watcher = threading.Thread(target=poll)
    watcher.start()
    said = proc.stderr.read()
    proc.wait()
    watcher.join()
    assert proc.returncode == 0, said
    assert next((folder / "logs").iterdir()).stat().st_size == 256 * (1 << 20) + 1
    assert peaks and max(peaks) < 64 * 1024, f"{max(peaks, default=0)} KiB for a 256 MiB line"


@pytest.mark.parametrize("at", [0, 1, 5, 20])
def test_lines_on_stdout_survive_bars_on_stderr_in_any_interleaving(tmp_path: Path, at: int) -> None:
    (stderr, bars), (stdout, prints) = output_of(PRINTS_BETWEEN, tmp_path)
    pieces = [(stderr, bars[start:start + 97]) for start in range(0, len(bars), 97)]
    log = logged(tmp_path, [*pieces[:at], (stdout, prints), *pieces[at:]])  # two pipes ready at once: any order
    assert all(line in log for line in ("epoch 0 done", "epoch 1 done", "the end")), log
    assert "batch" not in log and sum("2/2" in line for line in log.splitlines()) == 1
