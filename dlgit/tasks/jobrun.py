"""What runs inside a job that `dlgit submit` queued: `dlgit run` (or `dlgit run --only ID` for one
sub-task of an array) in the snapshot of the submitted commit — the same code, log, run record and
exit code as a run typed on the machine.

submitit pickles a `TaskJob` and calls it on the node. Before the run starts it checks that the
snapshot is complete (its marker) and that its HEAD is the submitted commit. The run record gains
the job's facts (DLGIT_JOB, read by `job_fields`). On the scheduler's warning signal (USR2, `--signal`
from submitit: never USR1, which NCCL takes) before a time limit or a preemption, `checkpoint` ends
the run (SIGTERM through dlgit, which records it), marks its record requeued and hands submitit the
job to requeue, at most `max_requeues` times; the requeued run gets DLGIT_RESUME, the newest file of
its checkpoints folder. The machine lock is not taken under Slurm: the scheduler shares the node out.
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
        return {**self.__dict__, "_proc": None}

    # --- the run ---------------------------------------------------------------------------------

    @property
    def command(self) -> list[str]:
        only = ["--only", self.subtask] if self.subtask is not None else []
        return [sys.executable, "-m", "dlgit", "run", *only]

    @property
    def element_dir(self) -> Path:
        base = Path(self.snapshot) / self.folder
        return base if self.subtask is None else base / "subtasks" / self.subtask

    def _outcome(self, **values: Any) -> None:
        path = Path(self.submission) / "state" / f"{self.index}.json"
        path.parent.mkdir(exist_ok=True)
        jobs.write_json(path, {"subtask": self.subtask, "requeues": self.requeues, "node": socket.gethostname(),
                               "time": datetime.now(timezone.utc).isoformat(timespec="seconds"), **values})

    def _job_id(self) -> str:
        if os.environ.get("SLURM_ARRAY_JOB_ID"):
            return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID')}"
        return os.environ.get("SLURM_JOB_ID") or str(os.getpid())

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
            mark_requeued(self.element_dir / "runs", {"job_id": job_id}, restarts)
        if self.requeues > self.max_requeues:
            self._outcome(state="failed", exit_code=None, reason=f"requeued {self.requeues} times (--max-requeues {self.max_requeues})")
            print(f"dlgit: job not run again: requeued {self.requeues} times, more than --max-requeues {self.max_requeues}.",
                  file=sys.stderr)
            raise SystemExit(1)
        env = {**os.environ, jobs.JOB_ENV: json.dumps({"executor": self.executor, "job_id": job_id, "commit": self.commit,
                                                  "array_index": self.index if self.subtask is not None else None,
                                                  "requeues": self.requeues, "dirty": self.dirty})}
        resume = newest_checkpoint(self.element_dir / "checkpoints") if self.requeues else None
        env.pop(jobs.RESUME_ENV, None)
        if resume:
            env[jobs.RESUME_ENV] = str(resume)
        self._outcome(state="running", job_id=job_id)
        # The scheduler's warning signal reaches every process of the job: dlgit run must outlive it
        # (it is ignored there, and so by default in the script, which may install its own handler).
        self._proc = subprocess.Popen(self.command, cwd=self.snapshot, env=env, stdin=subprocess.DEVNULL,
                                      preexec_fn=_ignore_warning_signal)
        code = self._proc.wait()
        self._proc = None
        copy_back(self.snapshot, self.folder, self.branch)
        if not self._requeue_asked:
            state = "done" if code == 0 else "cancelled" if code in (130, 143) else "failed"
            self._outcome(state=state, exit_code=code, job_id=job_id)
        if code != 0:
            raise SystemExit(code)  # the job fails as the run did
        return code

    # --- preemption and time limits --------------------------------------------------------------

    def checkpoint(self) -> submitit.helpers.DelayedSubmission | None:
        """Called by submitit on the warning signal: end the run, mark it requeued, requeue (or,
        past max_requeues, let the job end)."""
        self._requeue_asked = self.requeues < self.max_requeues
        proc = self._proc
        if proc is not None and proc.poll() is None:
            deadline = time.monotonic() + END_GRACE
            proc.send_signal(signal.SIGTERM)  # dlgit run forwards it to the script and records the run
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
        if proc is not None and self._requeue_asked:
            mark_requeued(self.element_dir / "runs", {"pid": proc.pid, "job_id": self._job_id()}, self.requeues + 1)
        copy_back(self.snapshot, self.folder, self.branch)
        if not self._requeue_asked:
            self._outcome(state="failed", exit_code=None, reason=f"preempted or timed out after {self.requeues} requeues "
                                                                  f"(--max-requeues {self.max_requeues})")
            return None
        self.requeues += 1
        self._outcome(state="requeued", job_id=self._job_id())
        return submitit.helpers.DelayedSubmission(self)


def _ignore_warning_signal() -> None:
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def newest_checkpoint(folder: Path) -> Path | None:
    """The most recently written file under `folder`, if any."""
    newest: tuple[float, Path] | None = None
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            try:
                moment = path.stat().st_mtime
            except OSError:
                continue
            if newest is None or moment > newest[0]:
                newest = (moment, path)
    return newest[1] if newest else None


def mark_requeued(runs: Path, match: dict[str, Any], requeue: int) -> None:
    """The newest run record whose values include `match` (the run this job ended): state requeued,
    `requeued: N` (its Nth requeue). A record that finished stays as it is."""
    import yaml

    for path in sorted(runs.glob("*.yaml"), reverse=True) if runs.is_dir() else ():
        try:
            record = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(record, dict) and all(record.get(key) == value for key, value in match.items()):
            if record.get("state") != "finished":
                record.update(state="requeued", requeued=requeue)
                _write_record(path, record)
            return


def copy_back(snapshot: str, folder: str, branch: str) -> None:
    """The job's outputs into the task folder of the work tree that has the branch checked out
    (if one does); else they wait in the snapshot for finish-task."""
    proc = subprocess.run(["git", "-C", snapshot, "worktree", "list", "--porcelain"], capture_output=True, text=True, check=False)
    path = None
    for line in proc.stdout.splitlines():
        if line.startswith("worktree "):
            path = line[len("worktree "):]
        elif line == f"branch refs/heads/{branch}" and path:
            jobs.copy_outputs(Path(snapshot), folder, Path(path) / folder)
            return
