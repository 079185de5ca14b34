"""`dlgit run` on a task with sub-tasks: run every one not yet done, resumably, one task per machine.

The sweep holds the machine's one run lock (seed §7: one task per machine, several sub-tasks in
it) and runs each sub-task as a full `dlgit run` of its folder `tasks/<task>/subtasks/<id>/` —
log, run record, Ctrl-C, --debug, --profile — its config.yaml written first (the task's, its
values applied). One after another by default, in this process (the script's output on the
terminal); with `-j N`, N at once, each a child `python -m dlgit.tasks.sweeprun` pinned to its GPU
through CUDA_VISIBLE_DEVICES (`--gpus`), the scripts' output in their logs only.

What is done is read from the run records (see `dlgit.tasks.sweep`), so a kill at any moment loses
nothing: the next run skips every sub-task that finished, re-runs the one that was cut off (from
its newest checkpoint when the config has RESUME) and runs the rest. Failed sub-tasks are reported
the moment they fail and the sweep goes on (`--fail-fast` stops it); `--retry-failed` re-runs them.

`run_subtask(task_dir, id, take_lock=False)` runs one sub-task from Python: what a cluster job
calls on its node, where the scheduler, not dlgit's lock, shares the machine out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import IO, Any, NamedTuple

from dlgit import config
from dlgit.errors import UsageError
from dlgit.shell import escape, quote
from dlgit.tasks import run as runner
from dlgit.tasks import sweep as sw

RESUME_KEY = "RESUME"
TAIL_LINES = 10  # of a failed sub-task's log, printed when it fails
POLL = 0.05  # seconds between looks at the running children of `-j N`
ORPHAN_POLL = 0.2
FREEZE_TIMEOUT = 60.0  # seconds pip freeze may take, once per environment
CHECKPOINTS = "checkpoints"
INTERRUPTED = "the sweep was interrupted; `dlgit run` goes on where it stopped."


class SweepOptions(NamedTuple):
    only: tuple[str, ...] = ()
    retry_failed: bool = False
    jobs: int = 1
    gpus: tuple[str, ...] = ()
    fail_fast: bool = False


def _say(message: str) -> None:
    print(f"dlgit: {message}", file=sys.stderr, flush=True)


# --- one sub-task ----------------------------------------------------------------------------------


def run_subtask(task_dir: Path | str, subtask_id: str, *, take_lock: bool = True, script: str | None = None,
                args: Sequence[str] = (), debug: bool = False, profile: bool = False, allow_dirty: bool = False,
                gpu: str | None = None, freeze: Path | None = None) -> int:
    """Run the sub-task `subtask_id` of the task folder `task_dir` (of the checked-out branch) as
    `dlgit run --only ID` does; its exit code. `take_lock=False` for a cluster job or a child of
    `-j N` (the machine is shared out by someone else); `gpu` sets CUDA_VISIBLE_DEVICES; `freeze`,
    a pip freeze of the environment taken already, is copied beside the record (else pip is asked)."""
    plan = runner.prepare(script, args, debug, profile, allow_dirty, task_dir)._replace(freeze=freeze)
    if plan.task.path != Path(task_dir).resolve():
        raise UsageError(f"{quote(str(task_dir))} is not the folder of the checked-out task {plan.task.folder}/.")
    sweep = _load(plan)
    subtask = sw.find(sweep, subtask_id)
    held = runner.take_lock(plan.task, datetime.now(timezone.utc)) if take_lock else None
    try:
        code, _ = _run_one(plan, sweep, subtask, gpu)
    finally:
        if held:
            held.release()
    return code


def _load(plan: runner.Plan) -> sw.Sweep:
    sweep = sw.load(plan.task.path, config.load(plan.task.toplevel).max_subtasks)
    if sweep is None:
        raise UsageError(f"{plan.task.folder}/config.yaml declares no sub-tasks (no `sweep:` block); "
                         "--only, --retry-failed, -j and --gpus are for a task with sub-tasks (start-task --sweep KEY=V1,V2).")
    return sweep


def _run_one(plan: runner.Plan, sweep: sw.Sweep, subtask: sw.SubTask, gpu: str | None) -> tuple[int, sw.State]:
    """One sub-task's run, in this process: config.yaml written, run, index.csv updated."""
    task = plan.task
    sub_dir = sw.folder(task.path, subtask.id)
    sub_dir.mkdir(parents=True, exist_ok=True)
    before = sw.state(sub_dir)
    if before.status == sw.INTERRUPTED:
        _wait_for_orphans(sub_dir, subtask.id)
    text = (task.path / "config.yaml").read_text(encoding="utf-8")
    extra = _resume(text, sub_dir, subtask.id, before)
    effective = sw.effective_config(text, subtask, sweep.add, extra)
    _write_atomically(sub_dir / "config.yaml", effective)
    dirty, outside = runner.dirty_state(task)
    sub_task = task._replace(folder=f"{task.folder}/{sw.SUBTASKS}/{subtask.id}", path=sub_dir)
    sub_plan = plan._replace(task=sub_task, script=os.path.relpath(task.path / plan.script, sub_dir), dirty=dirty,
                             outside=outside, debug_config=runner.debug_config(effective) if plan.debug_config is not None else None)
    sw.write_index(task.path, sweep, {subtask.id: sw.State(sw.RUNNING, None, None, None, None)})
    record = {"subtask": subtask.id, "sweep_values": dict(subtask.overrides), "resumed_from": extra.get(RESUME_KEY)
              if before.status == sw.INTERRUPTED else None}
    try:
        with _environment(subtask.id, gpu):
            code, files = runner.run_plan(sub_plan, datetime.now(timezone.utc), record)
    finally:
        after = sw.state(sub_dir)
        sw.write_index(task.path, sweep, {subtask.id: after})
    if plan.profile:
        runner._print_profile(plan.python, files.profile)
    return code, after


@contextlib.contextmanager
def _environment(subtask_id: str, gpu: str | None) -> Iterator[None]:
    """DLGIT_SUBTASK (and CUDA_VISIBLE_DEVICES) in the environment the run hands its script."""
    saved = {key: os.environ.get(key) for key in ("DLGIT_SUBTASK", "CUDA_VISIBLE_DEVICES")}
    os.environ["DLGIT_SUBTASK"] = subtask_id
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _write_atomically(path: Path, text: str) -> None:
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a run killed while writing (one run per sub-task)
        stale.unlink(missing_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _resume(text: str, sub_dir: Path, subtask_id: str, before: sw.State) -> dict[str, Any]:
    """RESUME for this run: the newest checkpoint of a sub-task that was cut off, when the config
    has RESUME (said either way); a task-level RESUME path made relative to the sub-task folder."""
    base = sw._config(sw.base_text(text))
    if RESUME_KEY not in base:
        if before.status == sw.INTERRUPTED:
            _say(f"sub-task {quote(subtask_id)} was cut off (run {before.last_run}); re-running it from the start "
                 "(config.yaml has no RESUME key).")
        return {}
    if before.status == sw.INTERRUPTED:
        checkpoint = newest_checkpoint(sub_dir)
        if checkpoint:
            _say(f"sub-task {quote(subtask_id)} was cut off (run {before.last_run}); resuming it from {quote(checkpoint)}.")
            return {RESUME_KEY: checkpoint}
        _say(f"sub-task {quote(subtask_id)} was cut off (run {before.last_run}) before its first checkpoint; "
             "re-running it from the start.")
    value = base[RESUME_KEY]
    if isinstance(value, str) and value and not os.path.isabs(value):
        return {RESUME_KEY: f"../../{value}"}  # the task's RESUME names a path from the task folder, two levels up
    return {}


def newest_checkpoint(sub_dir: Path) -> str | None:
    """The newest file under the folder's checkpoints/ (its path from the folder), if any: what a cut-off run resumes from."""
    folder = sub_dir / CHECKPOINTS
    if not folder.is_dir():
        return None
    files = [path for path in folder.rglob("*") if path.is_file() and not path.name.startswith(".")]
    if not files:
        return None
    newest = max(files, key=lambda path: (path.stat().st_mtime_ns, path.name))
    return newest.relative_to(sub_dir).as_posix()


def _orphans(sub_dir: Path) -> list[int]:
    """Processes still running a script of this sub-task (left by a `dlgit run` that was killed)."""
    needle = b"\0DLGIT_TASK_DIR=" + str(sub_dir).encode() + b"\0"
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError), open(f"/proc/{entry.name}/environ", "rb") as f:
                if needle in b"\0" + f.read():
                    found.append(int(entry.name))
    return found


def _wait_for_orphans(sub_dir: Path, subtask_id: str) -> None:
    """Two runs of one sub-task never write its folder at once: wait for a script left running."""
    said = False
    while pids := _orphans(sub_dir):
        if not said:
            _say(f"sub-task {quote(subtask_id)}: its script from a killed run is still running (pid "
                 f"{', '.join(map(str, pids))}); waiting for it to end before running it again.")
            said = True
        time.sleep(ORPHAN_POLL)


# --- the sweep -------------------------------------------------------------------------------------


def run(script: str | None, args: Sequence[str], debug: bool, profile: bool, allow_dirty: bool,
        options: SweepOptions | None) -> int:
    """`dlgit run`: a plain run, or the sweep when the task has sub-tasks (or sweep options are given)."""
    plan = runner.prepare(script, args, debug, profile, allow_dirty)
    if options is None and not sw.has_sweep(_config_bytes(plan.task.path)):
        return runner.run_prepared(plan)
    return run_sweep(plan, options or SweepOptions())


def _config_bytes(folder: Path) -> bytes | None:
    try:
        return (folder / "config.yaml").read_bytes()
    except OSError:
        return None


def run_sweep(plan: runner.Plan, options: SweepOptions) -> int:
    """`dlgit run` on a task with sub-tasks: exit 0 when every one is done, 130 when interrupted,
    1 when any failed; with `--only ID` alone, that sub-task's exit code."""
    sweep = _load(plan)
    if options.jobs < 1:
        raise UsageError("-j needs a whole number of sub-tasks at once, 1 or more.")
    task = plan.task
    found = sw.states(task.path, sweep)
    todo = _select(sweep, found, options)
    if not todo:
        _say(f"all {len(found)} sub-tasks are done or running ({_tally(found)}); `dlgit run --only ID` re-runs one.")
        return _final_code(found)
    started = datetime.now(timezone.utc)
    held = runner.take_lock(task, started)
    try:
        plan = plan._replace(freeze=runner.environment_freeze(plan.python, runner.freeze_cache(task.repository), FREEZE_TIMEOUT)[1])
        sw.write_index(task.path, sweep, found)
        _say(f"{len(todo)} of {len(found)} sub-tasks to run ({_tally(found)})" +
             (f", {options.jobs} at once" if options.jobs > 1 else ""))
        run_all = _run_parallel if options.jobs > 1 else _run_sequential
        codes, interrupted = run_all(plan, sweep, todo, options)
    finally:
        held.release()
    found = sw.states(task.path, sweep)
    sw.write_index(task.path, sweep, found)
    _print_summary(task.path, sweep, found)
    if len(options.only) == 1 and options.only[0] in codes:
        return codes[options.only[0]]
    if interrupted:
        return 130
    return _final_code(found)


def _final_code(found: dict[str, sw.State]) -> int:
    return 0 if all(st.status == sw.DONE for st in found.values()) else 1


def _tally(found: dict[str, sw.State]) -> str:
    return ", ".join(f"{count} {status}" for status, count in sorted(sw.counts(found).items()))


def _select(sweep: sw.Sweep, found: dict[str, sw.State], options: SweepOptions) -> list[sw.SubTask]:
    if options.only:
        chosen = [sw.find(sweep, wanted) for wanted in dict.fromkeys(options.only)]
        for subtask in chosen:
            if found[subtask.id].status == sw.RUNNING:
                record = found[subtask.id].record or {}
                raise UsageError(f"sub-task {quote(subtask.id)} is running (pid {record.get('pid')} on {record.get('host')}); "
                                 "let it end, then run it again.")
        return chosen
    wanted = {sw.PENDING, sw.INTERRUPTED} | ({sw.FAILED} if options.retry_failed else set())
    failed = [sid for sid, st in found.items() if st.status == sw.FAILED]
    if failed and not options.retry_failed:
        _say(f"{len(failed)} failed sub-task(s) are not re-run ({', '.join(map(quote, failed[:5]))}"
             f"{' …' if len(failed) > 5 else ''}); --retry-failed re-runs them.")
    return [subtask for subtask in sweep.subtasks if found[subtask.id].status in wanted]


def _run_sequential(plan: runner.Plan, sweep: sw.Sweep, todo: list[sw.SubTask], options: SweepOptions) -> tuple[dict[str, int], bool]:
    codes: dict[str, int] = {}
    gpu = options.gpus[0] if options.gpus else None
    try:
        for n, subtask in enumerate(todo, 1):
            _say(f"sub-task {quote(subtask.id)} ({n}/{len(todo)})")
            try:
                code, after = _run_one(plan, sweep, subtask, gpu)
            except UsageError as exc:  # this sub-task cannot start (its config, its script): the others can
                _say(f"✗ sub-task {quote(subtask.id)} did not run: {exc}")
                codes[subtask.id] = exc.exit_code
                if options.fail_fast:
                    break
                continue
            codes[subtask.id] = code
            if after.record and after.record.get("interrupted"):
                _say(INTERRUPTED)
                return codes, True
            if after.status != sw.DONE:
                _report_failure(plan.task.path, subtask.id, after)
                if options.fail_fast:
                    _say("--fail-fast: the sweep stops at its first failure.")
                    break
    except KeyboardInterrupt:
        _say(INTERRUPTED)
        return codes, True
    return codes, False


def _report_failure(task_dir: Path, subtask_id: str, after: sw.State) -> None:
    record = after.record or {}
    how = f"was killed by {record['signal']}" if record.get("signal") else f"exited {after.exit_code}"
    took = f" after {after.duration_s:.1f} s" if isinstance(after.duration_s, (int, float)) else ""
    sub_dir = sw.folder(task_dir, subtask_id)
    log = sub_dir / str(record.get("log") or "")
    lines = _tail(log) if record.get("log") else []
    where = f"; the end of its log {quote(os.path.relpath(log))}:" if lines else ""
    _say(f"✗ sub-task {quote(subtask_id)} {how}{took}{where}")
    for line in lines:
        print(f"    {escape(line)}", file=sys.stderr)
    sys.stderr.flush()


def _tail(path: Path) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            data = f.read()
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-TAIL_LINES:]


class _Child(NamedTuple):
    proc: subprocess.Popen[bytes]
    subtask: sw.SubTask
    errors: IO[bytes]  # dlgit's own messages (the script's output is in its log only)
    last_run: str | None  # the sub-task's newest run before this one


class _Stop:
    """While children run: SIGINT (which the terminal sends them too) stops new starts; SIGTERM
    and SIGHUP are passed on to them."""

    def __init__(self, children: dict[int, _Child]) -> None:
        self.children = children
        self.stopping = False
        self.interrupted = False  # by a signal, or a child's run was
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) is not signal.SIG_IGN:
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = self.interrupted = True
        if signum != signal.SIGINT:
            for child in self.children.values():
                if child.proc.poll() is None:
                    child.proc.send_signal(signum)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _child_command(plan: runner.Plan, subtask_id: str) -> list[str]:
    task = plan.task
    flags = [*(["--debug"] if plan.debug_config is not None else []), *(["--profile"] if plan.profile else []),
             *([f"--freeze={plan.freeze}"] if plan.freeze else [])]
    return [sys.executable, "-m", "dlgit.tasks.sweeprun", str(task.path), subtask_id, plan.script, *flags, "--", *plan.args]


def _run_parallel(plan: runner.Plan, sweep: sw.Sweep, todo: list[sw.SubTask], options: SweepOptions) -> tuple[dict[str, int], bool]:
    """N sub-tasks at once, slot i pinned to GPU gpus[i % len(gpus)]."""
    queue = deque(todo)
    free = list(range(options.jobs))
    children: dict[int, _Child] = {}
    codes: dict[str, int] = {}
    with _Stop(children) as stop:
        while (queue and not stop.stopping) or children:
            while queue and free and not stop.stopping:
                slot, subtask = free.pop(0), queue.popleft()
                env = {**os.environ}
                if options.gpus:
                    env["CUDA_VISIBLE_DEVICES"] = options.gpus[slot % len(options.gpus)]
                gpu = f" on GPU {env['CUDA_VISIBLE_DEVICES']}" if options.gpus else ""
                _say(f"sub-task {quote(subtask.id)} started{gpu} ({len(todo) - len(queue)}/{len(todo)})")
                errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed when the child has ended)
                last_run = sw.state(sw.folder(plan.task.path, subtask.id)).last_run
                proc = subprocess.Popen(_child_command(plan, subtask.id), cwd=plan.task.path, env=env,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors)
                children[slot] = _Child(proc, subtask, errors, last_run)
            time.sleep(POLL)
            for slot, child in list(children.items()):
                if child.proc.poll() is None:
                    continue
                del children[slot]
                free.append(slot)
                codes[child.subtask.id] = child.proc.returncode
                _ended(plan.task.path, child, options, stop)
    if stop.interrupted:
        _say(INTERRUPTED)
    return codes, stop.interrupted


def _ended(task_dir: Path, child: _Child, options: SweepOptions, stop: _Stop) -> None:
    after = sw.state(sw.folder(task_dir, child.subtask.id))
    if after.last_run == child.last_run:  # no new run: it could not start
        child.errors.seek(0)
        said = child.errors.read().decode("utf-8", "replace").strip()[-2000:]  # dlgit's own words, printable already
        _say(f"✗ sub-task {quote(child.subtask.id)} did not run (exit {child.proc.returncode}): {said.removeprefix('dlgit: error: ')}")
    elif after.status == sw.DONE:
        took = f" in {after.duration_s:.1f} s" if isinstance(after.duration_s, (int, float)) else ""
        _say(f"✓ sub-task {quote(child.subtask.id)} done{took}")
    elif after.record and after.record.get("interrupted"):
        _say(f"sub-task {quote(child.subtask.id)} was interrupted")
        stop.stopping = stop.interrupted = True
    else:
        _report_failure(task_dir, child.subtask.id, after)
    if after.status != sw.DONE and options.fail_fast and not stop.interrupted:
        _say("--fail-fast: no further sub-task starts; the running ones finish.")
        stop.stopping = True
    child.errors.close()


def _print_summary(task_dir: Path, sweep: sw.Sweep, found: dict[str, sw.State]) -> None:
    from dlgit.tasks.table import _duration, render

    rows = [(subtask.id, found[subtask.id].status, "" if found[subtask.id].exit_code is None else str(found[subtask.id].exit_code),
             _duration(found[subtask.id].duration_s), found[subtask.id].last_run or "") for subtask in sweep.subtasks]
    print(render(("SUB-TASK", "STATUS", "EXIT", "TOOK", "LAST RUN"), rows, flexible=(0,)), file=sys.stderr)
    print(f"dlgit: sweep: {_tally(found)}; index {quote(os.path.relpath(task_dir / sw.SUBTASKS / sw.INDEX))}",
          file=sys.stderr, flush=True)


# --- a child of -j N -------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    """`python -m dlgit.tasks.sweeprun TASK_DIR ID SCRIPT [--debug] [--profile] [--freeze=FILE] -- ARGS`:
    one sub-task, without the lock (its parent holds it); CUDA_VISIBLE_DEVICES is inherited."""
    from dlgit.dispatch import run_action

    _quiet_script_output()
    argv = list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    head, args = argv[:split], argv[split + 1:]
    task_dir, subtask_id, script, *flags = head
    freeze = next((Path(flag.partition("=")[2]) for flag in flags if flag.startswith("--freeze=")), None)
    return run_action(lambda: run_subtask(task_dir, subtask_id, take_lock=False, script=script, args=args, debug="--debug" in flags,
                                          profile="--profile" in flags, allow_dirty=True, freeze=freeze))


def _quiet_script_output() -> None:
    """The run tees the script's output to file descriptors 1 and 2: here they go nowhere (the log
    keeps it all), while dlgit's own messages (sys.stderr) still reach the parent."""
    messages = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    sys.stderr = os.fdopen(messages, "w", buffering=1)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
