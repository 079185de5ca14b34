"""The one runner of every flow, after git-town's interpreter: a flow is a plan of steps; the
steps not yet run are its state. Before the first step the refs the flow may touch, HEAD and the
stash list are recorded; after each step the state is saved (atomically), so that after a
conflict, a refusal, a crash or Ctrl-C both `dlgit continue` and `dlgit abort` work. A finished
flow can be taken back by `dlgit undo` while nothing it touched has moved or been pushed.

Exit codes: 0 done, 1 a step was refused (a hook, or git), 2 bad input or an unmet precondition
(nothing changed), 3 stopped on a merge conflict.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from dlgit import config
from dlgit.errors import UsageError
from dlgit.flows import leftovers, state
from dlgit.flows.steps import Conflict, Context, Step, StepFailed
from dlgit.git import Git, GitError, InProgress, command_line
from dlgit.model import short_branch
from dlgit.shell import escape, quote

DONE, REFUSED, USAGE, CONFLICT = 0, 1, 2, 3
CRASH_VARIABLE = "DLGIT_TEST_CRASH_AFTER_STEP"  # tests: SIGKILL right after that step ran, before its state is saved


@dataclass
class Flow:
    """A plan: what `dlgit <name>` will do, as data."""

    name: str  # the command, e.g. "release"
    title: str  # one line for people: "release 0.2.0 from dev"
    steps: list[Step]
    touches: list[str]  # full ref names the flow may change (restored by abort and undo)
    keep_work: str | None = None  # a branch whose uncommitted work the flow commits: abort gives it back uncommitted
    summary: list[str] = field(default_factory=list)  # printed when the flow is done


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FlowRunner:
    def __init__(self, repo: Git, out: TextIO | None = None) -> None:
        self.repo = repo
        self.out = out or sys.stdout

    # --- starting -------------------------------------------------------------------------------

    def unfinished(self) -> dict[str, Any] | None:
        return state.unfinished(self.repo)

    def refuse_if_unfinished(self) -> None:
        """Also takes the repository's flow lock: from here to the end of the command no other
        flow starts (its checks would see a state this one is about to write)."""
        state.hold(self.repo)
        running = self.unfinished()
        if running is not None:
            step = running["next"] + 1
            raise UsageError(
                f"the {running['name']} flow ({running['title']}) is unfinished: it stopped at step {step} of "
                f"{len(running['steps'])} ({running.get('status')}). Go on with `dlgit continue`, or go back with `dlgit abort`.")

    def start(self, flow: Flow, dry_run: bool = False) -> int:
        self.refuse_if_unfinished()
        if dry_run:
            self._print_plan(flow)
            return DONE
        run = {"name": flow.name, "title": flow.title, "started": _now(), "status": "running", "next": 0,
               "worktree": str(self.repo.root),
               "steps": [step.to_json() for step in flow.steps], "vars": {}, "keep_work": flow.keep_work,
               "summary": flow.summary, "before": self._snapshot(flow.touches)}
        self._save(run)
        self._say(f"dlgit {flow.name}: {flow.title}")
        return self._run(run, resuming=False)

    def _print_plan(self, flow: Flow) -> None:
        self._say(f"dlgit {flow.name} --dry-run: {flow.title}; nothing will be changed. The plan:")
        for number, step in enumerate(flow.steps, 1):
            self._say(f"  {number}. {step.describe()}")
            for args in step.commands():
                self._say(f"       $ {command_line(args)}")

    def _snapshot(self, refs: list[str]) -> dict[str, Any]:
        return {"branch": self.repo.current_branch(), "head": self.repo.rev("HEAD"),
                "refs": {ref: self.repo.ref(ref) for ref in refs}, "stash": self.repo.stashes()}

    # --- running ---------------------------------------------------------------------------------

    def _context(self, run: dict[str, Any]) -> Context:
        return Context(self.repo, config.load(self.repo.root), run["vars"], self.out)

    def _run(self, run: dict[str, Any], resuming: bool) -> int:
        steps = [Step.from_json(data) for data in run["steps"]]
        ctx = self._context(run)
        while run["next"] < len(steps):
            index = run["next"]
            step = steps[index]
            self._say(f"[{index + 1}/{len(steps)}] {step.describe()}")
            if step.prepare(ctx):
                self._save(run)
            try:
                if resuming:
                    step.resume(ctx)
                elif step.done(ctx):
                    self._say("  already done")
                else:
                    step.run(ctx)
            except Conflict as conflict:
                return self._stop(run, "conflict", CONFLICT, self._conflict_text(conflict))
            except StepFailed as failure:
                return self._stop(run, "refused", REFUSED, str(failure) + leftovers.blocking_hint(str(failure)))
            except (GitError, OSError) as error:  # a write that failed (a full disk, a lock held): the state still holds
                return self._stop(run, "refused", REFUSED, f"dlgit: step {index + 1} failed: {error}" + leftovers.blocking_hint(str(error)))
            resuming = False
            _crash_point(index)
            self._leave_removed_worktree()
            run["next"], run["status"] = index + 1, "running"
            self._save(run)
        return self._finish(run)

    def _stop(self, run: dict[str, Any], status: str, code: int, text: str) -> int:
        run["status"] = status
        self._save(run)
        self._say(text)
        self._say("Then: `dlgit continue` to go on, or `dlgit abort` to go back to where the flow began "
                  f"({self._where(run['before'])}); nothing is lost either way.")
        return code

    def _conflict_text(self, conflict: Conflict) -> str:
        listed = "\n".join(f"  {quote(path)}" for path in conflict.paths)
        return (f"dlgit: stopped on a merge conflict in {len(conflict.paths)} file(s):\n{listed}\n"
                f"Resolve them (edit, then `git add -- {' '.join(quote(p) for p in conflict.paths[:5])}"
                f"{' ...' if len(conflict.paths) > 5 else ''}`).")

    def _where(self, snapshot: dict[str, Any]) -> str:
        return f"branch {snapshot['branch']}" if snapshot.get("branch") else "a detached HEAD"

    def _finish(self, run: dict[str, Any]) -> int:
        after = self._snapshot(list(run["before"]["refs"]))
        undoable = all(Step.from_json(data).undoable for data in run["steps"])
        finished = {**run, "status": "finished", "ended": _now(), "after": after, "undoable": undoable}
        state.write(state.state_path(self.repo, state.LAST), finished)
        self._log(finished)
        state.remove(state.state_path(self.repo, state.RUNNING))
        for line in run.get("summary") or []:
            self._say(line)
        self._say(f"dlgit {run['name']}: done." + (" `dlgit undo` takes it back while nothing it touched moves." if undoable else ""))
        return DONE

    def _log(self, run: dict[str, Any]) -> None:
        state.append_log(self.repo, {key: run.get(key) for key in ("name", "title", "status", "started", "ended", "before", "after")})

    def _save(self, run: dict[str, Any]) -> None:
        state.write(state.state_path(self.repo, state.RUNNING), run)

    def _say(self, text: str) -> None:
        print(escape_controls(text), file=self.out, flush=True)

    # --- continue, abort, undo ----------------------------------------------------------------------

    def _running(self, verb: str) -> dict[str, Any]:
        state.hold(self.repo)
        run = self.unfinished()
        if run is None:
            raise UsageError(f"there is no unfinished flow to {verb} (`dlgit log` lists the flows that ran).")
        self._go_to(run)
        leftovers.refuse_if_busy(self.repo)
        if run.get("status") == "running" and self.repo.in_progress() is None:  # killed, not stopped: git may have died mid-write
            self._clean_half_written(run)
        return run

    def _go_to(self, run: dict[str, Any]) -> None:
        """Continue, abort and undo work in the work tree the flow ran in, from whichever work tree
        they are typed (that one, when it is gone)."""
        where = run.get("worktree")
        if not where or self.repo.root is None or Path(where).resolve() == self.repo.root.resolve() or not Path(where).is_dir():
            return
        try:
            there = Git.open(where)
        except UsageError:
            return
        if there.common_dir.resolve() == self.repo.common_dir.resolve():  # not a copy of the repository elsewhere
            self.repo = there
            self._say(f"dlgit: the flow runs in the work tree {where}")

    def _leave_removed_worktree(self) -> None:
        """A step removed the work tree the flow ran in (finish-task's own tree): go on from the main one."""
        if self.repo.root is not None and not self.repo.root.is_dir():
            self.repo = Git.open(self.repo.common_dir.parent)

    def _clean_half_written(self, run: dict[str, Any]) -> None:
        steps = [Step.from_json(data) for data in run["steps"]]
        ctx = self._context(run)
        sources = [sha for sha in [run["before"].get("head"), *run["before"]["refs"].values(), *self._current_refs(run).values()] if sha]
        if run["next"] < len(steps):
            sources += steps[run["next"]].writes_from(ctx)
        assert self.repo.root is not None
        leftovers.clean_half_written(Git(self.repo.root), sources, self.out, user_changes=run.get("keep_work") is not None)

    def resume(self) -> int:
        run = self._running("continue")
        self._say(f"dlgit continue: {run['name']} ({run['title']}), from step {run['next'] + 1}")
        return self._run(run, resuming=True)

    def abort(self) -> int:
        run = self._running("abort")
        self._say(f"dlgit abort: {run['name']} ({run['title']}): back to where it began")
        self._conclude_operation()
        self._put_back(run, run["steps"][:run["next"] + 1])
        ctx = self._context(run)
        try:
            self._restore(run["before"], run.get("keep_work"), self._current_refs(run), run["vars"])
        except GitError as error:
            hint = leftovers.blocking_hint(error.stderr)
            if not hint:
                raise
            raise UsageError(f"{error}{hint}") from None
        for data in reversed(run["steps"][:run["next"] + 1]):
            Step.from_json(data).abort(ctx)
        run.update(status="aborted", ended=_now(), after=run["before"])
        self._log(run)
        state.remove(state.state_path(self.repo, state.RUNNING))
        self._say(f"dlgit abort: done; on {self._where(run['before'])}, every ref as it was.")
        return DONE

    def undo(self) -> int:
        self.refuse_if_unfinished()
        last = state.read(state.state_path(self.repo, state.LAST))
        if last is None:
            raise UsageError("there is no finished flow to undo here (`dlgit log` lists the flows that ran).")
        self._go_to(last)
        if not last.get("undoable"):
            raise UsageError(f"the {last['name']} flow ({last['title']}) pushed to a remote; a push cannot be undone locally.")
        self.require_clean("undo")
        current = self._current_refs(last)
        moved = [ref for ref, sha in last["after"]["refs"].items() if current[ref] != sha]
        if moved:
            raise UsageError(f"cannot undo the {last['name']} flow: {', '.join(moved)} moved since it ran; "
                             "undo only takes back a flow while nothing it touched has changed.")
        pushed = self._pushed(last)
        if pushed:
            raise UsageError(f"cannot undo the {last['name']} flow: {', '.join(pushed)} is on a remote already "
                             "(a pushed commit is never taken back; make a new commit instead).")
        self._say(f"dlgit undo: {last['name']} ({last['title']})")
        self._conclude_operation()
        if self._put_back(last, last["steps"]):
            current = self._current_refs(last)
        self._restore(last["before"], last.get("keep_work"), current, last["vars"])
        ctx = self._context(last)
        for data in reversed(last["steps"]):
            Step.from_json(data).abort(ctx)
        last.update(status="undone", ended=_now())
        self._log(last)
        state.remove(state.state_path(self.repo, state.LAST))
        self._say(f"dlgit undo: done; on {self._where(last['before'])}, every ref as before the flow.")
        return DONE

    def _put_back(self, run: dict[str, Any], ran: list[dict[str, Any]]) -> bool:
        """What the steps that ran removed and the rollback needs, back first (finish-task's work
        tree, where the rollback then goes on); whether anything was."""
        ctx = self._context(run)
        back = [where for data in reversed(ran) if (where := Step.from_json(data).put_back(ctx)) is not None]
        if back:
            self.repo = Git.open(back[-1])
        return bool(back)

    def _current_refs(self, run: dict[str, Any]) -> dict[str, str | None]:
        return {ref: self.repo.ref(ref) for ref in run["before"]["refs"]}

    def _pushed(self, last: dict[str, Any]) -> list[str]:
        """Touched branches whose new tip a remote-tracking branch holds."""
        remotes = [(short_branch(ref), sha) for ref, sha in self.repo.refs("refs/remotes/")]
        found = []
        for ref, sha in last["after"]["refs"].items():
            name = short_branch(ref) if ref.startswith("refs/heads/") else None
            if name and sha and sha != last["before"]["refs"].get(ref) and any(
                    branch == name and (tip == sha or self.repo.is_ancestor(sha, tip)) for branch, tip in remotes):
                found.append(name)
        return found

    def require_clean(self, verb: str) -> None:
        """No operation under way and no uncommitted change to a tracked file (untracked files are
        left alone: git refuses to overwrite them)."""
        doing = self.repo.in_progress()
        if doing is not None:
            raise UsageError(f"a {doing.value} is in progress; finish it (or `git {doing.value.split()[0]} --abort`) first.")
        changed = self.repo.changed_paths()
        if changed:
            listed = "\n".join(f"  {escape(path)}" for path in changed[:20])
            raise UsageError(f"the work tree has uncommitted changes, and a flow never mixes them into its commits:\n{listed}\n"
                             f"Commit them, or put them aside with `git stash`, then run `dlgit {verb}` again.")

    def _conclude_operation(self) -> None:
        """A merge or squash the flow began and did not conclude is taken back first."""
        doing = self.repo.in_progress()
        runner = Context(self.repo, config.Settings(), {}, self.out).git
        runner("update-index", "-q", "--refresh", check=False)  # stale stat data alone must not stop a reset
        if doing is InProgress.MERGE:
            runner("merge", "--abort")
        elif doing is InProgress.SQUASH:
            runner("reset", "--merge")
        elif doing is not None:
            raise UsageError(f"a {doing.value} is in progress that no flow began; finish or abort it first (git {doing.value} --abort).")

    def _restore(self, before: dict[str, Any], keep_work: str | None, current: dict[str, str | None], found: dict[str, str]) -> None:
        """Every touched ref back to its recorded value, and the recorded branch checked out. The
        branch checked out is moved with `reset --keep` (its files follow; uncommitted work the
        flow had committed comes back uncommitted: `reset --mixed`); a branch checked out in
        another work tree is moved there; the others by `update-ref`, each only from the value
        it has now."""
        git = Context(self.repo, config.Settings(), {}, self.out).git
        origin = before.get("branch")
        origin_ref = f"refs/heads/{origin}" if origin else None
        if origin_ref and before["refs"].get(origin_ref) and current.get(origin_ref) is None:
            # the flow deleted it: re-create it where it was then (with the work it holds), then move it back
            current[origin_ref] = found.get(f"tip:{origin}") or before["refs"][origin_ref]
            git("branch", origin, current[origin_ref])
        if origin and self.repo.current_branch() != origin and self.repo.ref(f"refs/heads/{origin}"):
            git("switch", origin)
        elif origin is None and before.get("head") and self.repo.rev("HEAD") != before["head"]:
            git("switch", "--detach", before["head"])
        elsewhere = self.repo.worktrees()
        here = self.repo.root.resolve() if self.repo.root else None
        for ref, old in before["refs"].items():
            now = current.get(ref)
            if now == old:
                continue
            branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
            if branch is not None and branch == self.repo.current_branch() and old is None:
                git("update-ref", "-d", ref, *([now] if now else []))  # back to an unborn branch: nothing staged either
                git("read-tree", "--empty")
            elif branch is not None and branch == self.repo.current_branch():
                git("reset", "--mixed" if branch == keep_work else "--keep", old)
            elif branch is not None and branch in elsewhere and elsewhere[branch].resolve() != here and old is not None:
                Context(Git(elsewhere[branch]), config.Settings(), {}, self.out).git("reset", "--keep", old)
            elif old is None:
                git("update-ref", "-d", ref, *([now] if now else []))
            else:
                git("update-ref", ref, old, *([now] if now else []))
        if keep_work and keep_work == self.repo.current_branch() and current.get(f"refs/heads/{keep_work}") == before["refs"].get(
                f"refs/heads/{keep_work}"):
            git("reset", "-q", "--mixed")  # killed between its `git add` and its commit: the work comes back unstaged, as it was


def escape_controls(text: str) -> str:
    """Control characters (an ESC in a branch name or path) never reach the terminal raw."""
    return "\n".join(escape(line) if any(ord(ch) < 32 and ch != "\t" for ch in line) else line for line in text.split("\n"))


def _crash_point(index: int) -> None:
    if os.environ.get(CRASH_VARIABLE) == str(index + 1):
        os.kill(os.getpid(), signal.SIGKILL)
