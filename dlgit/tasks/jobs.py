"""What `dlgit submit` left behind, and the state of its jobs: for `dlgit tasks`, `dlgit cancel`
and `finish-task`.

A submission lives in the repository's common git dir, so every work tree sees it:

    .git/dlgit/snapshots/<stamp>-<sha12>/        a detached work tree of the submitted commit
    .git/dlgit/snapshots/<stamp>-<sha12>.json    its marker (commit, branch): written last, after the rename
    .git/dlgit/jobs/<task>/<stamp>/              submitit's folder (sbatch script, pickles, job logs)
        submission.json                          what was submitted: commit, elements, job id, parameters
        state/<index>.json                       each element's outcome, written by the job (atomically)
        cancelled                                written by `dlgit cancel` before it calls scancel

A job's state is the scheduler's while it knows the job — one `squeue` for every job, never one
query per job — and its outcome file after (Slurm forgets a job MinJobAge seconds after it ends).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from dlgit.errors import UsageError
from dlgit.shell import quote

SNAPSHOTS = ("dlgit", "snapshots")
JOBS = ("dlgit", "jobs")
SUBMISSION = "submission.json"
CANCELLED = "cancelled"
ACTIVE = ("queued", "running", "requeued")
SQUEUE_FORMAT = "%i|%T"  # job id (<array job>_<index> with --array), state
SQUEUE_TIMEOUT = 10.0  # Slurm's own MessageTimeout default
# Slurm's job states (squeue %T) -> dlgit's
JOB_ENV = "DLGIT_JOB"  # set by the job for its `dlgit run`: what the run record adds
RESUME_ENV = "DLGIT_RESUME"  # a requeued run's newest checkpoint
SLURM_STATES = {
    "PENDING": "queued", "CONFIGURING": "queued", "SUSPENDED": "queued", "RESV_DEL_HOLD": "queued",
    "RUNNING": "running", "COMPLETING": "running", "SIGNALING": "running", "STAGE_OUT": "running", "RESIZING": "running",
    "REQUEUED": "requeued", "REQUEUE_FED": "requeued", "REQUEUE_HOLD": "requeued",
    "COMPLETED": "done", "CANCELLED": "cancelled",
    "FAILED": "failed", "TIMEOUT": "failed", "NODE_FAIL": "failed", "OUT_OF_MEMORY": "failed", "BOOT_FAIL": "failed",
    "DEADLINE": "failed", "PREEMPTED": "failed", "REVOKED": "failed", "SPECIAL_EXIT": "failed",
}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace the file whole: a reader never sees half of it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    os.replace(temporary, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --- inside a job ---


def job_fields() -> dict[str, Any]:
    """The run record's job facts inside a submitted job (nothing elsewhere)."""
    raw = os.environ.get(JOB_ENV)
    if not raw:
        return {}
    try:
        job = json.loads(raw)
    except ValueError:
        return {}
    gpus = os.environ.get("SLURM_JOB_GPUS") or os.environ.get("SLURM_STEP_GPUS") or os.environ.get("CUDA_VISIBLE_DEVICES")
    return {
        "executor": job.get("executor"),
        "job_id": job.get("job_id"),
        "array_index": job.get("array_index"),
        "node": os.environ.get("SLURMD_NODENAME") or socket.gethostname(),
        "partition": os.environ.get("SLURM_JOB_PARTITION"),
        "allocated_gpus": gpus.split(",") if gpus else [],
        "requeues": job.get("requeues", 0),
        "resumed_from": os.environ.get(RESUME_ENV),
        "submitted_commit": job.get("commit"),
        "submitted_dirty": job.get("dirty", False),
    }


def under_scheduler() -> bool:
    """Whether this process runs in a job dlgit submitted to Slurm (then the scheduler, not the
    machine lock, shares the node)."""
    raw = os.environ.get(JOB_ENV)
    if not raw or not os.environ.get("SLURM_JOB_ID"):
        return False
    try:
        return json.loads(raw).get("executor") == "slurm"
    except ValueError:
        return False


# --- snapshots -----------------------------------------------------------------------------------


def snapshots_dir(common_dir: Path) -> Path:
    return common_dir.joinpath(*SNAPSHOTS)


def snapshot_marker(snapshot: Path) -> Path:
    return snapshot.with_name(snapshot.name + ".json")


def snapshot_branch(toplevel: Path | None, head: str | None) -> str | None:
    """The task branch a snapshot work tree was made for (its HEAD is detached at the submitted
    commit), or None when `toplevel` is no snapshot. UsageError when its HEAD moved: a job runs
    exactly the commit it was submitted with."""
    if toplevel is None or toplevel.parent.parts[-2:] != SNAPSHOTS:
        return None
    marker = read_json(snapshot_marker(toplevel))
    if marker is None:
        return None  # half made (no marker yet): not a snapshot to run in
    if marker.get("commit") != head:
        raise UsageError(f"this snapshot of {marker.get('branch')} was made for commit {marker.get('commit')}, but its HEAD is "
                         f"{head}: a job runs exactly the commit it was submitted with. Submit again (`dlgit submit`).")
    return str(marker["branch"])


# --- submissions ---------------------------------------------------------------------------------


class Element(NamedTuple):
    """One job of a submission: the task's (subtask None) or one sub-task's (an array element)."""

    task: str
    subtask: str | None
    index: int | None  # array index (None: a single job)
    job_id: str | None  # <job> or <array job>_<index>
    state: str  # queued, running, requeued, done, failed, cancelled
    requeues: int
    submission: Path
    executor: str

    def as_json(self) -> dict[str, Any]:
        return {"subtask": self.subtask, "job_id": self.job_id, "array_index": self.index, "state": self.state,
                "requeues": self.requeues, "executor": self.executor}

    @property
    def name(self) -> str:
        return self.task if self.subtask is None else f"{self.task}/{self.subtask}"


def jobs_dir(common_dir: Path) -> Path:
    return common_dir.joinpath(*JOBS)


def submissions(common_dir: Path, task: str | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, submission.json) of every submission (of `task`), oldest first."""
    root = jobs_dir(common_dir)
    tasks = [root / task] if task else (sorted(path for path in root.iterdir() if path.is_dir()) if root.is_dir() else [])
    found = []
    for folder in tasks:
        for sub in sorted(folder.iterdir()) if folder.is_dir() else ():
            data = read_json(sub / SUBMISSION)
            if data is not None:
                found.append((sub, data))
    return found


def element_job_id(submission: dict[str, Any], index: int) -> str | None:
    job = submission.get("job_id")
    if job is None or not submission.get("array"):
        return job
    return f"{job}_{index}"


def scheduler_states(job_ids: Iterable[str]) -> dict[str, str]:
    """Slurm's state of each job it still knows (one squeue for all of this user's jobs)."""
    wanted = {job_id.split("_")[0] for job_id in job_ids}
    if not wanted or shutil.which("squeue") is None:
        return {}
    try:
        proc = subprocess.run(["squeue", "--noheader", "--array", f"--format={SQUEUE_FORMAT}", "--states=all",
                               f"--jobs={','.join(sorted(wanted))}"],
                              capture_output=True, text=True, timeout=SQUEUE_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    states = {}
    for line in proc.stdout.splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id and state:
            states[job_id] = state.split()[0].rstrip("+")
    return states


def _outcome_state(outcome: dict[str, Any] | None, cancelled: bool, live: str | None) -> str:
    if live is not None:
        state = SLURM_STATES.get(live, "running")
        if state == "queued" and outcome and outcome.get("requeues"):
            return "requeued"
        if state in ACTIVE or outcome is None or outcome.get("state") in ACTIVE:
            return state
    if outcome is None:
        return "cancelled" if cancelled else "failed"  # ended without a word (refused before its run, killed)
    state = str(outcome.get("state"))
    if state in ACTIVE:  # the job said so, the scheduler no longer has it
        return "cancelled" if cancelled else "failed"
    if cancelled and state != "done":
        return "cancelled"
    return state


def elements(common_dir: Path, task: str | None = None, live: dict[str, str] | None = None) -> list[Element]:
    """Every submitted job (of `task`) with its state; the newest submission of an element wins."""
    found = submissions(common_dir, task)
    ids = [element_job_id(data, index) for _, data in found if data.get("executor") == "slurm"
           for index in range(len(data.get("elements", [])))]
    if live is None:
        live = scheduler_states(job_id for job_id in ids if job_id)
    latest: dict[tuple[str, str | None], Element] = {}
    for folder, data in found:
        cancelled = (folder / CANCELLED).exists()
        try:
            written = set(os.listdir(folder / "state"))  # one listing, not a failed open per job that has not begun
        except OSError:
            written = set()
        for index, subtask in enumerate(data.get("elements", [])):
            job_id = element_job_id(data, index)
            outcome = read_json(folder / "state" / f"{index}.json") if f"{index}.json" in written else None
            state = _outcome_state(outcome, cancelled, live.get(job_id) if job_id else None)
            if data.get("executor") == "local" and outcome is None and not cancelled and _local_alive(data):
                state = "queued"
            latest[(data["task"], subtask)] = Element(data["task"], subtask, index if data.get("array") else None, job_id, state,
                                                      int((outcome or {}).get("requeues", 0)), folder, str(data.get("executor")))
    return list(latest.values())


def _local_alive(data: dict[str, Any]) -> bool:
    """A local job (its controller's pid is its job id) that has not yet said anything."""
    try:
        os.kill(int(data["job_id"]), 0)
    except (KeyError, TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def by_task(common_dir: Path) -> dict[str, list[Element]]:
    """Row name -> its jobs: a task's row has every job of the task, a sub-task's row (`<task>/<id>`) its own."""
    grouped: dict[str, list[Element]] = {}
    for element in elements(common_dir):
        grouped.setdefault(element.task, []).append(element)
        if element.subtask is not None:
            grouped.setdefault(element.name, []).append(element)
    return grouped


def summary(found: list[Element]) -> str:
    """The STATE cell of a submitted task: `running 2, queued 2 (job 17)`."""
    counts: dict[str, int] = {}
    for element in found:
        counts[element.state] = counts.get(element.state, 0) + 1
    job_ids = sorted({(element.job_id or "?").split("_")[0] for element in found})
    states = ", ".join(f"{state} {count}" if len(found) > 1 else state for state, count in counts.items())
    return f"{states} (job {', '.join(job_ids)})"


def active(common_dir: Path, task: str) -> list[Element]:
    return [element for element in elements(common_dir, task) if element.state in ACTIVE]


def refuse_active(common_dir: Path, task: str) -> None:
    """finish-task's precondition: no job of the task is queued or running."""
    busy = active(common_dir, task)
    if busy:
        listed = "\n".join(f"  {element.name}: {element.state} (job {element.job_id})" for element in busy[:20])
        raise UsageError(f"jobs of {task} are still queued or running:\n{listed}\nLet them end (`dlgit tasks` shows them), "
                         f"or cancel them (`dlgit cancel {quote(task)}`), then finish.")


# --- results back into the task's folder ---------------------------------------------------------


def collect(common_dir: Path, task: str, folder: str, destination: Path) -> list[str]:
    """Copy what the task's jobs wrote in their snapshots (files git does not track: logs, runs,
    checkpoints, metrics, sub-task outputs) into `destination` (the task folder of the work tree
    the results are committed from); a file already there with the same size and time is skipped.
    Returns the paths copied (relative to the task folder)."""
    copied = []
    for _, data in submissions(common_dir, task):
        snapshot = Path(data["snapshot"])
        if snapshot.is_dir():
            copied += copy_outputs(snapshot, folder, destination)
    return copied


def copy_outputs(snapshot: Path, folder: str, destination: Path) -> list[str]:
    """The untracked files under `folder` in the snapshot, copied into `destination`."""
    proc = subprocess.run(["git", "-C", str(snapshot), "ls-files", "--others", "-z", "--", folder], capture_output=True,
                          check=False, stdin=subprocess.DEVNULL)
    copied = []
    source_root = snapshot / folder
    for raw in proc.stdout.split(b"\0"):
        if not raw:
            continue
        source = snapshot / os.fsdecode(raw)
        relative = source.relative_to(source_root)
        target = destination / relative
        try:
            stat = source.lstat()
            if target.exists() and target.stat().st_size == stat.st_size and int(target.stat().st_mtime) == int(stat.st_mtime):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
        except OSError:
            continue
        copied.append(relative.as_posix())
    return copied


def remove_snapshots(common_dir: Path, task: str) -> None:
    """After finish-task: the task's snapshots and job folders (their results are committed)."""
    for folder, data in submissions(common_dir, task):
        snapshot = Path(data["snapshot"])
        if snapshot.is_dir():
            subprocess.run(["git", "-C", str(common_dir), "worktree", "remove", "--force", str(snapshot)], capture_output=True,
                           check=False, stdin=subprocess.DEVNULL)
        snapshot_marker(snapshot).unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)


# --- cancel --------------------------------------------------------------------------------------


def cancel(target: str | None, cwd: Path | str | None = None) -> int:
    """`dlgit cancel [TASK[/ID]]`: cancel the task's (or one sub-task's) queued and running jobs."""
    from dlgit import config
    from dlgit.git import Git
    from dlgit.model import Kind, parse_branch

    repo = Git.open(cwd)
    info = repo.info
    settings = config.load(info.toplevel)
    task, _, subtask = (target or "").partition("/")
    if not task:
        if info.branch is None or parse_branch(info.branch, settings).kind is not Kind.TASK:
            raise UsageError("dlgit cancel without TASK cancels the jobs of the checked-out task branch; you are on "
                             f"{info.branch or 'a detached HEAD'}. Name the task: dlgit cancel TASK[/SUBTASK].")
        task = info.branch
    known = {element.task for element in elements(info.common_dir)}
    matches = [name for name in known if name == task] or [name for name in known if name.endswith(task)]
    if len(matches) != 1:
        raise UsageError(f"no submitted task is named or ends in {quote(task)} (submitted: {', '.join(sorted(known)) or 'none'})."
                         if not matches else f"{quote(task)} is the end of several tasks' names ({', '.join(sorted(matches))}).")
    task = matches[0]
    busy = [element for element in active(info.common_dir, task) if not subtask or element.subtask == subtask]
    if not busy:
        print(f"no job of {task}{'/' + subtask if subtask else ''} is queued or running; nothing to cancel.")
        return 0
    for folder in {element.submission for element in busy}:
        if not subtask:
            (folder / CANCELLED).touch()
    local = [element for element in busy if element.executor == "local"]
    slurm = [element.job_id for element in busy if element.executor != "local" and element.job_id]
    for element in local:
        if subtask:
            (element.submission / CANCELLED).touch()
        _signal_local(element)
    if slurm:
        proc = subprocess.run(["scancel", *slurm], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise UsageError(f"scancel {' '.join(slurm)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        if subtask:
            for element in busy:
                write_json(element.submission / "state" / f"{element.index}.json",
                           {**(read_json(element.submission / "state" / f"{element.index}.json") or {}), "state": "cancelled"})
    for element in busy:
        print(f"cancelled {element.name} (job {element.job_id}, was {element.state})")
    return 0


def _signal_local(element: Element) -> None:
    import contextlib
    import signal

    with contextlib.suppress(ValueError, OSError):
        os.kill(int(element.job_id or 0), signal.SIGINT)  # submitit's local controller stops its tasks on SIGINT
