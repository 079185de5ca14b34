"""What runs inside a job that `dlgit submit` queued: `dlgit run` (or `dlgit run --only ID` for one
sub-task of an array) in the snapshot of the submitted commit — the same code, log, run record and
exit code as a run typed on the machine.

submitit pickles a `TaskJob` and calls it on the node. Before the run starts it checks that the
snapshot is complete (its marker) and that its HEAD is the submitted commit. The run record gains
the job's facts (DLGIT_JOB, read by `job_fields`). On the scheduler's warning signal (USR2, `--signal`
from submitit: never USR1, which NCCL takes) before a time limit or a preemption, `checkpoint` ends
the run (SIGTERM through dlgit, which records it), marks its record requeued and hands submitit the
job to requeue, at most `max_requeues` times; the requeued run gets DLGIT_RESUME, the newest file of
its checkpoints folder. The same holds under submitit's local executor, whose controller sends the
signal `signal_delay` seconds before `--time` and starts the job again. The machine lock is not
taken under Slurm: the scheduler shares the node out. When a job ends (not when it is requeued),
its outputs are moved into the task folder of the work tree that has the branch checked out
(`jobs.move_outputs`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import submitit

from dlgit.tasks import jobs
from dlgit.tasks.run import _write_record  # the record is replaced whole, as dlgit run writes it

END_GRACE = 20.0  # seconds the run has to end (and be recorded) after the warning signal


class TaskJob(submitit.helpers.Checkpointable):
    """One job: the task's run, or one sub-task's (`subtask`), in `snapshot` at `commit`."""

    def __init__(self, submission: str, snapshot: str, folder: str, branch: str, commit: str, subtask: str | None,
                 index: int, executor: str, max_requeues: int, dirty: bool) -> None:
        self.submission = submission
        self.snapshot = snapshot
        self.folder = folder  # tasks/<branch>
        self.branch = branch
        self.commit = commit
        self.subtask = subtask
        self.index = index
        self.executor = executor
        self.max_requeues = max_requeues
        self.dirty = dirty
        self.requeues = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._requeue_asked = False

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_proc": None, "_requeue_asked": False}  # the requeued job's run starts afresh

    # --- the run ---------------------------------------------------------------------------------

    @property
    def command(self) -> list[str]:
        only = ["--only", self.subtask] if self.subtask is not None else []
        return [sys.executable, "-m", "dlgit", "run", *only]

    @property
    def element_dir(self) -> Path:
        return self._element(Path(self.snapshot))

    def _element(self, root: Path) -> Path:
        base = root / self.folder
        return base if self.subtask is None else base / "subtasks" / self.subtask

    def runs_dirs(self, element_dirs: list[Path]) -> list[Path]:
        """The run-record folders of the element: a sub-task's; a whole task's with its sub-tasks'
        (the local executor runs a sweep as one job: the sub-task it cut off is the one requeued)."""
        return [path for folder in element_dirs
                for path in (folder / "runs", *(sorted(folder.glob("subtasks/*/runs")) if self.subtask is None else ()))]

    def element_dirs(self) -> list[Path]:
        """Where this element's files are: its folder in the snapshot, and in the task folder the
        outputs of its ended runs were moved to (`move_back`)."""
        destination = destination_root(self.snapshot, self.branch)
        return [self.element_dir, *([self._element(destination)] if destination else [])]

    def _outcome(self, **values: Any) -> None:
        path = Path(self.submission) / "state" / f"{self.index}.json"
        path.parent.mkdir(exist_ok=True)
        jobs.write_json(path, {"subtask": self.subtask, "requeues": self.requeues, "node": socket.gethostname(),
                               "time": datetime.now(timezone.utc).isoformat(timespec="seconds"), **values})

    def _job_id(self) -> str:
        """The scheduler's id of this job (the local executor's: its controller's pid, the same
        after a requeue), as `dlgit tasks` shows it."""
        if os.environ.get("SLURM_ARRAY_JOB_ID"):
            return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID')}"
        return os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID") or str(os.getpid())

    def check_snapshot(self) -> str | None:
        """Why the snapshot must not run (None: it is complete and at the submitted commit)."""
        marker = jobs.read_json(jobs.snapshot_marker(Path(self.snapshot)))
        if marker is None or marker.get("commit") != self.commit:
            return f"the snapshot {self.snapshot} is incomplete (no marker for {self.commit})"
        head = subprocess.run(["git", "-C", self.snapshot, "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
        if head.stdout.strip() != self.commit:
            return f"the snapshot's HEAD is {head.stdout.strip() or 'unreadable'}, not the submitted commit {self.commit}"
        return None

    def __call__(self) -> int:
        refused = self.check_snapshot()
        if refused:
            self._outcome(state="failed", exit_code=None, reason=refused)
            print(f"dlgit: job refused: {refused}; nothing ran.", file=sys.stderr)
            raise SystemExit(2)
        job_id = self._job_id()
        restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
        if restarts > self.requeues:  # Slurm requeued the job itself (preemption with PreemptMode=REQUEUE, scontrol requeue)
            self.requeues = restarts
            mark_requeued(self.runs_dirs(self.element_dirs()), {"job_id": job_id}, restarts)
        if self.requeues > self.max_requeues:
            self._outcome(state="failed", exit_code=None, reason=f"requeued {self.requeues} times (--max-requeues {self.max_requeues})")
            print(f"dlgit: job not run again: requeued {self.requeues} times, more than --max-requeues {self.max_requeues}.",
                  file=sys.stderr)
            raise SystemExit(1)
        resume = newest_checkpoint(self.element_dirs()) if self.requeues else None
        env = {**os.environ, jobs.JOB_ENV: json.dumps({"executor": self.executor, "job_id": job_id, "commit": self.commit,
                                                  "array_index": self.index if self.subtask is not None else None,
                                                  "requeues": self.requeues, "dirty": self.dirty,
                                                  "resumed_from": resume[1] if resume else None})}
        env.pop(jobs.RESUME_ENV, None)
        if resume:
            env[jobs.RESUME_ENV] = str(resume[0])
        self._outcome(state="running", job_id=job_id)
        # The scheduler's warning signal reaches every process of the job: dlgit run must outlive it
        # (it is ignored there, and so by default in the script, which may install its own handler).
        self._proc = subprocess.Popen(self.command, cwd=self.snapshot, env=env, stdin=subprocess.DEVNULL,
                                      preexec_fn=_ignore_warning_signal)
        try:
            code = self._proc.wait()
        except KeyboardInterrupt:  # the local executor's cancel (SIGINT, then SIGKILL to this process only)
            self._proc.send_signal(signal.SIGTERM)  # the run ends through dlgit run, recorded, as under scancel
            raise
        self._proc = None
        move_back(self.snapshot, self.folder, self.branch, self.subtask)
        if not self._requeue_asked:
            state = "done" if code == 0 else "cancelled" if code in (130, 143) else "failed"
            self._outcome(state=state, exit_code=code, job_id=job_id)
        if code != 0:
            raise SystemExit(code)  # the job fails as the run did
        return code

    # --- preemption and time limits --------------------------------------------------------------

    def checkpoint(self) -> submitit.helpers.DelayedSubmission | None:
        """Called by submitit on the warning signal: end the run, mark it requeued, requeue (or,
        past max_requeues, let the job end: then its outputs go to the task folder; a requeued job
        keeps them in the snapshot, where its next run resumes)."""
        self._requeue_asked = self.requeues < self.max_requeues
        proc = self._proc
        if proc is not None and proc.poll() is None:
            deadline = time.monotonic() + END_GRACE
            proc.send_signal(signal.SIGTERM)  # dlgit run forwards it to the script and records the run
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
        if proc is not None and self._requeue_asked:
            mark_requeued(self.runs_dirs([self.element_dir]), {"pid": proc.pid, "job_id": self._job_id()}, self.requeues + 1)
        if not self._requeue_asked:
            move_back(self.snapshot, self.folder, self.branch, self.subtask)
            self._outcome(state="failed", exit_code=None, reason=f"preempted or timed out after {self.requeues} requeues "
                                                                  f"(--max-requeues {self.max_requeues})")
            return None
        self.requeues += 1
        self._outcome(state="requeued", job_id=self._job_id())
        return submitit.helpers.DelayedSubmission(self)


def _ignore_warning_signal() -> None:
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def newest_checkpoint(element_dirs: list[Path]) -> tuple[Path, str] | None:
    """The newest checkpoint of the element (as a sweep's run finds it: `sweeprun`), wherever its
    files are: the file, and its path from the element's folder (what the record says, as for a
    local run)."""
    from dlgit.tasks import sweeprun

    found = [(folder / relative, relative) for folder in element_dirs if (relative := sweeprun.newest_checkpoint(folder))]
    return max(found, key=lambda item: (item[0].stat().st_mtime_ns, item[1])) if found else None


def mark_requeued(runs: list[Path], match: dict[str, Any], requeue: int) -> None:
    """The newest run record in these folders whose values include `match` (the run this job
    ended): state requeued, `requeued: N` (its Nth requeue). A record that finished stays as it is."""
    import yaml

    records = [path for folder in runs if folder.is_dir() for path in folder.glob("*.yaml")]
    for path in sorted(records, key=lambda path: path.name, reverse=True):
        try:
            record = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(record, dict) and all(record.get(key) == value for key, value in match.items()):
            if record.get("state") != "finished":
                record.update(state="requeued", requeued=requeue)
                _write_record(path, record)
            return


def destination_root(snapshot: str, branch: str) -> Path | None:
    """The work tree that has the task's branch checked out (None: none has)."""
    proc = subprocess.run(["git", "-C", snapshot, "worktree", "list", "--porcelain"], capture_output=True, text=True, check=False)
    path = None
    for line in proc.stdout.splitlines():
        if line.startswith("worktree "):
            path = line[len("worktree "):]
        elif line == f"branch refs/heads/{branch}" and path:
            return Path(path)
    return None


def move_back(snapshot: str, folder: str, branch: str, subtask: str | None) -> None:
    """The job's outputs (a sub-task's own, and the sweep's index) moved into the task folder of the
    work tree that has the branch checked out (`jobs.move_outputs`); with none, they wait in the
    snapshot for finish-task."""
    destination = destination_root(snapshot, branch)
    if destination is not None:
        within = ("",) if subtask is None else (f"subtasks/{subtask}", *jobs.SHARED_OUTPUTS)
        kept = jobs.move_outputs(Path(snapshot), folder, destination / folder, within).kept
        if kept:
            print(f"dlgit: {destination / folder} holds newer files than the job's, kept there (the job's stay in "
                  f"{snapshot}): {', '.join(kept[:20])}", file=sys.stderr)
