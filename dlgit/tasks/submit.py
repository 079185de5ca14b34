"""`dlgit submit`: the checked-out task as a Slurm job, or its sub-tasks as one job array, through
submitit — each job in a snapshot of the submitted commit.

The commit is fixed when the command is typed: a detached work tree of it is made under the common
git dir (`git worktree add` into a temporary name, then `git worktree move` to its own, then a
marker: a half-made snapshot has no marker and is never run), so that what the user edits or
commits afterwards changes nothing a queued job runs. Each job runs `dlgit run` there (one sub-task:
`dlgit run --only ID`), the same code as a run on the machine (`dlgit.tasks.jobrun`). Defaults come
from the `cluster:` block of .dlgit.yaml, the options override them. The local executor runs one job
for the task (its sub-tasks one after another under the machine's lock: submitit's LocalExecutor
would start every array element at once), detached from the terminal and its streams, requeued at
its time limit as under Slurm.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from dlgit.config import Settings
from dlgit.errors import UsageError
from dlgit.model import Kind, parse_branch, utc_stamp
from dlgit.shell import escape, quote
from dlgit.tasks import jobs
from dlgit.tasks.run import Task, locate

INSTALL = "pip install 'dlgit[cluster]'"
SHOWN_PATHS = 20
SUBTASKS = "subtasks"
OUTPUT_FILES = ("index.csv",)  # written by runs inside the task folder, beside the output folders


class Options(NamedTuple):
    executor: str | None = None
    partition: str | None = None
    time: int | None = None  # minutes
    gpus: int | None = None
    cpus: int | None = None
    mem: str | None = None
    array_parallelism: int | None = None
    sbatch: tuple[str, ...] = ()  # KEY=VALUE
    max_requeues: int | None = None
    allow_dirty: bool = False
    dry_run: bool = False


class Resolved(NamedTuple):
    """The options with .dlgit.yaml's defaults filled in."""

    executor: str
    partition: str | None
    time: int
    gpus: int
    cpus: int
    mem: str | None
    array_parallelism: int
    sbatch: dict[str, str]
    max_requeues: int
    signal_delay: int


def resolve(options: Options, settings: Settings) -> Resolved:
    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    extra = {}
    for item in (*settings.cluster_sbatch, *options.sbatch):
        key, sep, value = item.partition("=")
        key = key.strip().removeprefix("--")
        if not sep or not key:
            raise UsageError(f"--sbatch {quote(item)}: an sbatch option is KEY=VALUE (e.g. --sbatch account=lab --sbatch qos=high).")
        extra[key] = value
    resolved = Resolved(pick(options.executor, settings.cluster_executor), pick(options.partition, settings.cluster_partition),
                        pick(options.time, settings.cluster_time), pick(options.gpus, settings.cluster_gpus),
                        pick(options.cpus, settings.cluster_cpus), pick(options.mem, settings.cluster_mem),
                        pick(options.array_parallelism, settings.cluster_array_parallelism), extra,
                        pick(options.max_requeues, settings.cluster_max_requeues), settings.cluster_signal_delay)
    for option, value in (("--partition", resolved.partition), ("--mem", resolved.mem),
                          *(("--sbatch", f"{key}={value}") for key, value in extra.items())):
        if value is not None and (not value.isprintable() or not value.strip()):
            raise UsageError(f"{option} {quote(str(value))}: a value of one printable line is expected (it becomes an #SBATCH line).")
    bad_keys = [key for key in extra if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key)]
    if bad_keys:
        raise UsageError(f"--sbatch {quote(bad_keys[0])}=...: an sbatch option's name is letters, digits, '-' and '_' (account, qos).")
    if resolved.cpus < 1:
        raise UsageError(f"--cpus (cluster.cpus) must be at least 1, not {resolved.cpus}.")
    if resolved.time < 1:
        raise UsageError(f"--time must be at least 1 minute, not {resolved.time}.")
    if resolved.array_parallelism < 1:
        raise UsageError(f"--array-parallelism must be at least 1, not {resolved.array_parallelism}.")
    if resolved.signal_delay >= resolved.time * 60:  # Slurm would warn the job as it starts, submitit's local executor never
        raise UsageError(f"--time {resolved.time} (minutes) leaves no room for the warning that comes cluster.signal_delay "
                         f"({resolved.signal_delay} s) before the limit, to checkpoint and requeue: give a longer --time, or a "
                         "shorter cluster.signal_delay in .dlgit.yaml.")
    return resolved


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise UsageError(f"dlgit submit needs submitit, which is not installed: {INSTALL}") from None
    signal_name = submitit.JobEnvironment.USR_SIG
    if signal_name == "USR1":
        raise UsageError("SUBMITIT_PREEMPT_SIGNAL is USR1, which NCCL takes for itself: unset it (dlgit uses USR2).")
    return submitit


# --- what is submitted ---------------------------------------------------------------------------


def dirty_paths(task: Task, settings: Settings) -> list[str]:
    """Changes the snapshot would not hold: anything uncommitted but the task's outputs (its
    output folders, metrics, sub-task outputs — what runs write)."""
    from dlgit.git import Git

    outputs = set(settings.task_outputs) | set(settings.task_metrics) | set(OUTPUT_FILES)
    prefix = task.folder + "/"
    untracked = set(Git(task.toplevel).changed_paths(untracked=True)) - set(Git(task.toplevel).changed_paths())

    def output(path: str) -> bool:
        if path not in untracked or not path.startswith(prefix):
            return False
        parts = path[len(prefix):].split("/")
        if parts[0] == SUBTASKS and len(parts) > 2:
            parts = parts[2:]
        return parts[0] in outputs or "/".join(parts) in outputs

    return [path for path in Git(task.toplevel).changed_paths(untracked=True) if not output(path)]


def subtask_ids(task_dir: Path) -> list[str]:
    """The sub-tasks of a task folder (the sweep's contract: `dlgit.tasks.sweep.subtask_ids`; else its
    layout, one folder with a config.yaml each under subtasks/)."""
    try:
        from dlgit.tasks.sweep import subtask_ids as from_sweep
    except ImportError:
        folder = task_dir / SUBTASKS
        return sorted(path.name for path in folder.iterdir() if (path / "config.yaml").is_file()) if folder.is_dir() else []
    return list(from_sweep(task_dir))


def make_snapshot(task: Task) -> Path:
    """A detached work tree of the task's commit, complete before its marker exists (reused when one
    for the same commit is there)."""
    root = jobs.snapshots_dir(task.repository)
    final = root / task.commit[:16]
    if jobs.read_json(jobs.snapshot_marker(final)) is not None and final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    temporary = root / f".{final.name}.{os.getpid()}.tmp"

    def git(*args: str) -> None:
        proc = subprocess.run(["git", "-C", str(task.toplevel), *args], capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise UsageError(f"cannot make the job's snapshot (git {' '.join(args)}): {proc.stderr.strip()}")

    if final.exists():  # left half made by a crash: git knows it as a work tree, or not at all
        git("worktree", "remove", "--force", str(final))
    git("worktree", "add", "--detach", "--quiet", str(temporary), task.commit)
    git("worktree", "move", str(temporary), str(final))
    jobs.write_json(jobs.snapshot_marker(final), {"commit": task.commit, "branch": task.branch,
                                                  "made": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return final


# --- executors -----------------------------------------------------------------------------------


def slurm_parameters(resolved: Resolved, name: str) -> dict[str, Any]:
    """submitit's SlurmExecutor parameters for the resolved options."""
    parameters: dict[str, Any] = {"job_name": name, "time": resolved.time, "cpus_per_task": resolved.cpus,
                                  "array_parallelism": resolved.array_parallelism, "signal_delay_s": resolved.signal_delay,
                                  "additional_parameters": resolved.sbatch}
    if resolved.partition:
        parameters["partition"] = resolved.partition
    if resolved.gpus:
        parameters["gpus_per_node"] = resolved.gpus
    if resolved.mem:
        parameters["mem"] = resolved.mem
    return parameters


def executor_for(resolved: Resolved, folder: Path, name: str) -> Any:
    submitit = _submitit()
    if resolved.executor == "local":
        executor = submitit.LocalExecutor(folder=str(folder), max_num_timeout=resolved.max_requeues)
        executor.update_parameters(timeout_min=resolved.time, signal_delay_s=resolved.signal_delay)
        return executor
    try:
        executor = submitit.SlurmExecutor(folder=str(folder), max_num_timeout=resolved.max_requeues)
    except RuntimeError:
        raise UsageError("no Slurm here (`srun` is not on PATH): submit from a machine of the cluster (`--dry-run` shows the "
                         "job anywhere), or use --executor local.") from None
    try:
        executor.update_parameters(**slurm_parameters(resolved, name))
    except ValueError as exc:
        raise UsageError(f"submitit refused the job's parameters: {exc}") from None
    return executor


def sbatch_lines(resolved: Resolved, folder: Path, name: str, count: int | None) -> list[str]:
    """The #SBATCH lines submitit will write (an array of `count` elements); no Slurm needed."""
    _submitit()
    from submitit.slurm.slurm import _make_sbatch_string

    text = _make_sbatch_string(command="", folder=folder, **({"map_count": count} if count else {}),
                               **slurm_parameters(resolved, name))
    return [line for line in text.splitlines() if line.startswith("#SBATCH")]


# --- the command ---------------------------------------------------------------------------------


def submit(options: Options, cwd: Path | str | None = None) -> int:
    task, settings = locate(cwd)
    if parse_branch(task.branch, settings).kind is not Kind.TASK:
        raise UsageError(f"dlgit submit submits a task branch's run; you are on {task.branch}. "
                         "Switch to a task branch (`git switch task-...`) or start one (`dlgit start-task DESC`).")
    resolved = resolve(options, settings)
    dirty = dirty_paths(task, settings)
    if dirty and not options.allow_dirty:
        shown = [f"  - {escape(path)}" for path in dirty[:SHOWN_PATHS]]
        if len(dirty) > SHOWN_PATHS:
            shown.append(f"  ... and {len(dirty) - SHOWN_PATHS} more")
        raise UsageError("uncommitted changes: a job runs the committed task, and these would not be in it:\n" + "\n".join(shown)
                         + f"\nCommit them (`git add -A {quote(task.folder)} && git commit -m ...`), or submit with --allow-dirty "
                         f"(the job still runs commit {task.commit[:12]}; the record says submitted_dirty: true).")
    ids = subtask_ids(task.path) if resolved.executor == "slurm" else []
    elements: list[str | None] = list(ids) if ids else [None]
    stamp = utc_stamp(datetime.now(timezone.utc))
    folder = jobs.jobs_dir(task.repository) / task.branch / stamp
    name = parse_branch(task.branch, settings).desc or task.branch
    if options.dry_run:
        return _print_plan(task, resolved, name, elements, folder)
    folder = claim_folder(folder)
    return _submit(task, resolved, executor_for(resolved, folder, name), elements, folder, dirty)


def claim_folder(folder: Path) -> Path:
    """`folder` made new, or, when a submission in the same second has it, `<folder>-01`… (which sort after it)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(100):
        claimed = folder if attempt == 0 else folder.with_name(f"{folder.name}-{attempt:02d}")
        try:
            claimed.mkdir()
        except FileExistsError:
            continue
        return claimed
    raise UsageError(f"{folder} and 99 more submission folders of this second exist already; submit again in a second.")


def _commands(elements: Sequence[str | None]) -> list[str]:
    return [shlex.join(["dlgit", "run", *(["--only", element] if element is not None else [])]) for element in elements]


def _print_plan(task: Task, resolved: Resolved, name: str, elements: list[str | None], folder: Path) -> int:
    array = elements != [None]
    snapshot = jobs.snapshots_dir(task.repository) / task.commit[:16]
    print(f"would submit {task.branch} at {task.commit[:12]} to {resolved.executor}: "
          + (f"an array of {len(elements)} sub-tasks" if array else "one job"))
    print(f"snapshot: {snapshot} (detached at {task.commit})")
    print(f"job folder: {folder}")
    if resolved.executor == "slurm":
        print("\n".join(sbatch_lines(resolved, folder, name, len(elements) if array else None)))
    else:
        print(f"local: timeout {resolved.time} min; the sub-tasks run one after another under the machine's lock")
    for index, (element, command) in enumerate(zip(elements, _commands(elements), strict=True)):
        label = f"[{index}] {escape(element or '')}: " if array else ""
        print(f"{label}cd {quote(str(snapshot))} && {command}")
    return 0


@contextlib.contextmanager
def _detached(log: Path) -> Iterator[None]:
    """While submitit's local controller starts: it outlives the terminal it was typed in, as under
    nohup (SIGHUP ignored, which dlgit run keeps), and holds none of its streams (its output goes
    to `log`), so that `dlgit submit` piped or captured ends when it has submitted, not when the job does."""
    hangup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    try:
        with open(os.devnull, "rb") as nothing, open(log, "ab") as out:
            os.dup2(nothing.fileno(), 0)
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            yield
    finally:
        for fd, copy in enumerate(saved):
            os.dup2(copy, fd)
            os.close(copy)
        signal.signal(signal.SIGHUP, hangup)


def _submit(task: Task, resolved: Resolved, executor: Any, elements: list[str | None], folder: Path, dirty: list[str]) -> int:
    from dlgit.tasks.jobrun import TaskJob

    snapshot = make_snapshot(task)
    (folder / "state").mkdir(parents=True)
    array = elements != [None]
    work = [TaskJob(str(folder), str(snapshot), task.folder, task.branch, task.commit, element, index, resolved.executor,
                    resolved.max_requeues, bool(dirty)) for index, element in enumerate(elements)]
    try:
        with _detached(folder / "controller.log") if resolved.executor == "local" else contextlib.nullcontext():
            if array:
                with executor.batch():
                    submitted = [executor.submit(job) for job in work]
            else:
                submitted = [executor.submit(work[0])]
    except Exception as exc:  # sbatch refused (a partition that does not exist, a limit): say what it said
        raise UsageError(f"the scheduler refused the job: {' '.join(str(exc).split())}") from None
    job_id = submitted[0].job_id.split("_")[0]
    jobs.write_json(folder / jobs.SUBMISSION, {
        "task": task.branch, "commit": task.commit, "snapshot": str(snapshot), "folder": task.folder,
        "executor": resolved.executor, "job_id": job_id, "array": array, "elements": elements,
        "parameters": resolved._asdict(), "dirty": dirty, "submitted": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    what = f"an array of {len(elements)} sub-tasks as job {job_id}" if array else f"job {job_id}"
    print(f"submitted {task.branch} at {task.commit[:12]} to {resolved.executor}: {what}")
    print(f"  it runs in {quote(str(snapshot))}; follow it with `dlgit tasks`, stop it with `dlgit cancel {quote(task.branch)}`")
    sys.stdout.flush()
    return 0
