"""The steps flows are made of, after git-town's opcodes: each is plain data (saved in the run
state as JSON), says what it does and which git commands it runs (for --dry-run), recognises by
content that it is done already (so a step re-run after a crash does nothing twice), and runs.
Ref changes are rolled back by the runner from its snapshot; a step only declares the other
things it leaves behind (`abort`).

A value written `@name` is a result of an earlier step (`Commit(save="bump")` makes `@bump`),
resolved when the step runs: a tag points at the commit a step made, never at "HEAD".
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TextIO

from dlgit.config import Settings
from dlgit.errors import UsageError
from dlgit.git import Git, GitError, InProgress, Runner
from dlgit.model import parse_squash_trailer, read_version, rewrite_version
from dlgit.shell import quote


class Conflict(Exception):
    """A merge stopped on conflicts: resolve them, then `dlgit continue` (or `dlgit abort`)."""

    def __init__(self, paths: Sequence[str]) -> None:
        super().__init__(", ".join(paths))
        self.paths = tuple(paths)


class StepFailed(Exception):
    """git or a hook refused a step; the message says what it printed."""


@dataclass
class Context:
    repo: Git
    settings: Settings
    vars: dict[str, str]
    out: TextIO = sys.stdout
    dry_run: bool = False

    @property
    def git(self) -> Runner:
        return Runner(self.repo, echo=self.out, dry_run=self.dry_run)

    def git_in(self, worktree: str | None) -> Runner:
        """Writes in another work tree (a branch checked out there is merged into there)."""
        return self.git if worktree is None else Runner(Git(worktree), echo=self.out, dry_run=self.dry_run)

    def repo_in(self, worktree: str | None) -> Git:
        return self.repo if worktree is None else Git(worktree)

    def value(self, text: str) -> str:
        """`@name` -> what an earlier step saved under that name."""
        if not text.startswith("@"):
            return text
        if text[1:] not in self.vars:
            raise StepFailed(f"no earlier step recorded {text} (the run state is incomplete)")
        return self.vars[text[1:]]


def shown(text: str) -> str:
    """How a `@name` value appears in a plan: <name>."""
    return f"<{text[1:]}>" if text.startswith("@") else text


def _failed(proc: subprocess.CompletedProcess[bytes], what: str) -> StepFailed:
    said = (proc.stdout + proc.stderr).decode("utf-8", "replace").strip()
    return StepFailed(f"{what} failed (git exit {proc.returncode})" + (f":\n{said}" if said else ""))


STEPS: dict[str, type[Step]] = {}


@dataclass
class Step:
    op: ClassVar[str]
    undoable: ClassVar[bool] = True  # `dlgit undo` can take it back (a push cannot be)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        STEPS[cls.op] = cls

    def describe(self) -> str:
        raise NotImplementedError

    def commands(self) -> list[list[str]]:
        """The git commands the step runs (what --dry-run prints)."""
        return []

    def done(self, ctx: Context) -> bool:
        """Is the step's work there already (recognised by content)?"""
        return False

    def prepare(self, ctx: Context) -> bool:
        """Record in ctx.vars what the step is about to lose, before it runs (the runner saves it
        first); True when something was recorded."""
        return False

    def run(self, ctx: Context) -> None:
        raise NotImplementedError

    def resume(self, ctx: Context) -> None:
        """`dlgit continue` at this step: after a conflict, a refusal or a crash in the middle of it."""
        if not self.done(ctx):
            self.run(ctx)

    def abort(self, ctx: Context) -> None:
        """Take back what the step left outside refs (refs are restored by the runner)."""

    def put_back(self, ctx: Context) -> Path | None:
        """Before abort or undo restore the refs: put back what the step removed that they need
        (a work tree); that work tree, when the rollback goes on in it."""
        return None

    def writes_from(self, ctx: Context) -> list[str]:
        """The commits or trees whose files the step's git writes into the work tree (a git killed
        while it wrote leaves some of them: dlgit.flows.leftovers takes those back)."""
        return []

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, **dataclasses.asdict(self)}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Step:
        fields = dict(data)
        kind = STEPS.get(fields.pop("op", None))
        if kind is None:
            raise UsageError(f"the flow state names a step this dlgit does not know ({data.get('op')!r}); "
                             "was it written by another version? Finish the flow with that version.")
        return kind(**fields)


def _run(runner: Runner, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    proc = runner(*args, check=False, env=env)
    if proc.returncode != 0:
        raise _failed(proc, f"git {args[0]}")
    return proc


@dataclass
class Switch(Step):
    op = "switch"
    branch: str

    def describe(self) -> str:
        return f"switch to {self.branch}"

    def commands(self) -> list[list[str]]:
        return [["switch", self.branch]]

    def done(self, ctx: Context) -> bool:
        return ctx.repo.current_branch() == self.branch

    def run(self, ctx: Context) -> None:
        _run(ctx.git, "switch", self.branch)

    def writes_from(self, ctx: Context) -> list[str]:
        return [self.branch]


@dataclass
class CreateBranch(Step):
    op = "create-branch"
    name: str
    start: str  # a commit (or @name)
    switch: bool = True

    def describe(self) -> str:
        return f"create {self.name} from {shown(self.start)[:12]}" + (" and switch to it" if self.switch else "")

    def commands(self) -> list[list[str]]:
        return [["switch", "-c", self.name, shown(self.start)] if self.switch else ["branch", self.name, shown(self.start)]]

    def done(self, ctx: Context) -> bool:
        exists = ctx.repo.ref(f"refs/heads/{self.name}") is not None
        return exists and (not self.switch or ctx.repo.current_branch() == self.name)

    def run(self, ctx: Context) -> None:
        if ctx.repo.ref(f"refs/heads/{self.name}") is not None:  # made before a crash: only the switch is left
            _run(ctx.git, "switch", self.name)
        elif self.switch:
            _run(ctx.git, "switch", "-c", self.name, ctx.value(self.start))
        else:
            _run(ctx.git, "branch", self.name, ctx.value(self.start))

    def writes_from(self, ctx: Context) -> list[str]:
        known = not self.start.startswith("@") or self.start[1:] in ctx.vars
        return [ctx.value(self.start)] if self.switch and known else []


def _merged_tree(repo: Git, ours: str, theirs: str) -> list[str]:
    """The tree git's merge of two commits records (when they merge cleanly), and `theirs` itself."""
    try:
        result = repo.merge_tree(ours, theirs)
    except GitError:
        return [theirs]
    return [theirs, result.tree]


def _conflicts(repo: Git) -> None:
    unmerged = repo.unmerged_paths()
    if unmerged:
        raise Conflict(unmerged)


@dataclass
class Merge(Step):
    """`git merge --no-ff -m MESSAGE SOURCE` into the branch checked out (in `worktree`, if given).
    `adopt_if`: when `into` is still at that commit, everything of it is in SOURCE already (a
    release squashed it there), so the merge records SOURCE's tree: conflicts resolved in the
    squash are not met again."""

    op = "merge"
    source: str
    into: str
    message: str
    worktree: str | None = None
    adopt_if: str | None = None

    def describe(self) -> str:
        return f"merge {self.source} into {self.into}" + (f" (in the work tree {self.worktree})" if self.worktree else "")

    def commands(self) -> list[list[str]]:
        if self.adopt_if:
            return [["merge", "--no-ff", "--no-commit", "-s", "ours", "-m", self.message, self.source],
                    ["read-tree", "-u", "--reset", self.source], ["commit", "--no-edit"]]
        return [["merge", "--no-ff", "-m", self.message, self.source]]


    def _adopting(self, repo: Git) -> bool:
        return self.adopt_if is not None and repo.rev(f"refs/heads/{self.into}") == self.adopt_if

    def done(self, ctx: Context) -> bool:
        repo = ctx.repo_in(self.worktree)
        source = repo.rev(self.source)
        return source is not None and repo.in_progress() is None and repo.is_ancestor(source, self.into)

    def run(self, ctx: Context) -> None:
        repo, git = ctx.repo_in(self.worktree), ctx.git_in(self.worktree)
        if repo.current_branch() != self.into:
            raise StepFailed(f"expected {self.into} to be checked out{' in ' + self.worktree if self.worktree else ''}")
        if self._adopting(repo):
            _run(git, "merge", "--no-ff", "--no-commit", "-s", "ours", "-m", self.message, self.source)
            self._conclude(repo, git)
            return
        proc = git("merge", "--no-ff", "-m", self.message, self.source, check=False)
        if proc.returncode != 0:
            _conflicts(repo)
            raise _failed(proc, f"merging {self.source} into {self.into}")

    def _conclude(self, repo: Git, git: Runner) -> None:
        if self._adopting(repo):
            _run(git, "read-tree", "-u", "--reset", self.source)
        _conflicts(repo)
        _run(git, "commit", "--no-edit")  # the message given to the merge, through the hooks

    def writes_from(self, ctx: Context) -> list[str]:
        return [] if self.worktree else _merged_tree(ctx.repo, self.into, self.source)

    def resume(self, ctx: Context) -> None:
        repo = ctx.repo_in(self.worktree)
        if repo.in_progress() is not InProgress.MERGE:
            super().resume(ctx)
        else:
            self._conclude(repo, ctx.git_in(self.worktree))


@dataclass
class MergeRef(Step):
    """A merge of SOURCE into a branch checked out nowhere, made without a work tree: the tree by
    `git merge-tree --write-tree`, the commit by `git commit-tree`, the branch moved by `update-ref`
    from the value it had (a branch that moved meanwhile is never overwritten). git runs no hook
    for these: the flow's Verify step judges the commit by dlgit's rules. A conflict needs a work
    tree: then the step merges the old way, here (`git switch` and `git merge`)."""

    op = "merge-ref"
    source: str
    into: str
    message: str

    def describe(self) -> str:
        return f"merge {self.source} into {self.into} (without checking it out)"

    def commands(self) -> list[list[str]]:
        return [["merge-tree", "--write-tree", self.into, self.source],
                ["commit-tree", "<tree>", "-p", self.into, "-p", self.source, "-m", self.message],
                ["update-ref", "-m", self.message, f"refs/heads/{self.into}", "<commit>", f"<{self.into}>"]]

    def done(self, ctx: Context) -> bool:
        return Merge(self.source, self.into, self.message).done(ctx)

    def run(self, ctx: Context) -> None:
        ours, theirs = ctx.repo.rev(f"refs/heads/{self.into}"), ctx.repo.rev(self.source)
        if ours is None or theirs is None:
            raise StepFailed(f"{self.into} or {self.source} is gone")
        result = ctx.repo.merge_tree(ours, theirs)
        if result.conflicted or self.into in ctx.repo.worktrees():  # a work tree is needed (or holds the branch): the old way
            Switch(self.into).run(ctx)
            Merge(self.source, self.into, self.message).run(ctx)
            return
        commit = _run(ctx.git, "commit-tree", result.tree, "-p", ours, "-p", theirs, "-m", self.message).stdout.decode().strip()
        _run(ctx.git, "update-ref", "-m", f"merge {self.source}: {self.message}", f"refs/heads/{self.into}", commit, ours)

    def resume(self, ctx: Context) -> None:
        if ctx.repo.current_branch() == self.into:  # it had gone the old way
            Merge(self.source, self.into, self.message).resume(ctx)
        else:
            super().resume(ctx)


@dataclass
class SquashMerge(Step):
    """`git merge --squash SOURCE`: stage what SOURCE (at `sha`) brings; a Commit step follows."""

    op = "squash-merge"
    source: str
    sha: str

    def describe(self) -> str:
        return f"stage a squash of {self.source} ({self.sha[:12]})"

    def commands(self) -> list[list[str]]:
        return [["merge", "--squash", "--ff", self.source]]  # --ff: a user's merge.ff=false would refuse --squash

    def _staged(self, ctx: Context) -> bool:
        return ctx.repo.in_progress() is InProgress.SQUASH and ctx.repo.squashed_commit() == self.sha

    def done(self, ctx: Context) -> bool:
        if self._staged(ctx):
            return not ctx.repo.unmerged_paths()
        head = ctx.repo.rev("HEAD")
        trailer = parse_squash_trailer(ctx.repo.parents_and_message(head)[1]) if head else None
        return trailer == (self.source, self.sha)  # committed already

    def run(self, ctx: Context) -> None:
        if ctx.repo.rev(self.source) != self.sha:
            raise StepFailed(f"{self.source} moved since the flow began (it was {self.sha[:12]}); `dlgit abort` and start again")
        proc = ctx.git("merge", "--squash", "--ff", self.source, check=False)
        if proc.returncode != 0:
            _conflicts(ctx.repo)
            raise _failed(proc, f"squashing {self.source}")

    def writes_from(self, ctx: Context) -> list[str]:
        return _merged_tree(ctx.repo, "HEAD", self.sha)

    def resume(self, ctx: Context) -> None:
        if self._staged(ctx):
            _conflicts(ctx.repo)
        else:
            super().resume(ctx)


PACKED = "core.bigFileThreshold=1"  # `git add` streams every new blob into one pack file (git's bulk check-in)
TOP_PAD = "glibc.malloc.top_pad=1048576"  # and glibc keeps what zlib frees after each object (below)
COMMIT_HOOKS = ("pre-commit", "commit-msg")
MESSAGE_FILE = "DLGIT_COMMIT_MSG"  # in the work tree's git dir: the message the hooks judge and git commits


@dataclass
class Commit(Step):
    """Commit what is staged (`paths`: stage those first), through the hooks; `save`: remember the
    commit; `worktree`: in that work tree; `pack`: thousands of new files (a task's results) are
    staged into one pack file, not one file per object (most of the time of such a commit)."""

    op = "commit"
    message: str
    paths: list[str] = dataclasses.field(default_factory=list)
    save: str | None = None
    worktree: str | None = None
    pack: bool = False

    def describe(self) -> str:
        return f"commit '{self.message.partition(chr(10))[0]}'"

    def _add(self, paths: list[str]) -> list[str]:
        return [*(["-c", PACKED] if self.pack else []), "add", "-A", "--", *paths]

    def commands(self) -> list[list[str]]:
        return [*([self._add(self.paths)] if self.paths else []), ["commit", "-m", self.message]]

    def _key(self) -> str:
        return "parent:" + hashlib.sha1(f"{self.worktree}\0{self.message}".encode()).hexdigest()[:12]

    def prepare(self, ctx: Context) -> bool:
        """Where HEAD is before the commit: the commit is recognised as this step's by being on top
        of it with this message, never by a subject another commit can share."""
        if self._key() in ctx.vars:
            return False
        ctx.vars[self._key()] = ctx.repo_in(self.worktree).rev("HEAD") or ""
        return True

    def done(self, ctx: Context) -> bool:
        repo = ctx.repo_in(self.worktree)
        head, parent = repo.rev("HEAD"), ctx.vars.get(self._key())
        if head is None or parent is None or head == parent:
            return False
        parents, message = repo.parents_and_message(head)
        if parents[:1] != ([parent] if parent else []) or message.strip() != self.message.strip():
            return False
        if self.save:
            ctx.vars[self.save] = head
        return True

    def run(self, ctx: Context) -> None:
        repo, git = ctx.repo_in(self.worktree), ctx.git_in(self.worktree)
        assert repo.root is not None
        present = [path for path in self.paths if (repo.root / path).exists() or repo.is_tracked(path)]
        if present:
            _run(git, *self._add(present), env=_packing_env() if self.pack else None)
        _commit(repo, git, self.message)
        if self.save:
            ctx.vars[self.save] = repo.rev("HEAD") or ""


def _packing_env() -> dict[str, str]:
    """git's environment for packing thousands of new files: zlib's buffers, allocated and freed for
    each object, are kept by glibc at the top of the heap instead of handed back to the system and
    faulted in again (90,000 page faults for 5,000 files: most of the time). The user's tunables win."""
    return {"GLIBC_TUNABLES": ":".join(filter(None, [TOP_PAD, os.environ.get("GLIBC_TUNABLES")]))}


def _commit(repo: Git, git: Runner, message: str) -> None:
    """`git commit -m MESSAGE` through the hooks. When the hooks git would run are this dlgit's own,
    the same functions judge the commit here, in this process (two Python starts saved), and git
    commits what they judged with --no-verify."""
    from dlgit import dispatch, install

    own = install.judged_here(repo, COMMIT_HOOKS)
    if not own:  # none, or not only dlgit's: git runs whatever is there
        _run(git, "commit", "-q", "-m", message)
        return
    assert repo.root is not None
    file = repo.git_dir / MESSAGE_FILE
    file.write_bytes(message.encode("utf-8", "surrogateescape"))
    try:
        args = ["commit", "-q", "-F", str(file)]  # the commit-msg hook may add to the file (a squash's trailer)
        refusal = dispatch.judge_here(repo.root, [(name, [str(file)] if name == "commit-msg" else []) for name in own], args)
        if refusal is not None:
            raise StepFailed(f"git commit refused by dlgit's {' and '.join(own)} hooks:\n{refusal.strip()}")
        if git.echo is not None:
            print(f"  (judged by dlgit's {' and '.join(own)} hooks, in this process)", file=git.echo, flush=True)
        _run(git, "commit", "--no-verify", *args[1:])
    finally:
        file.unlink(missing_ok=True)


@dataclass
class BumpVersion(Step):
    """Set VERSION in the template config (nothing else of the file changes) and commit it."""

    op = "bump-version"
    path: str
    old: str
    new: str
    message: str
    save: str | None = None

    def describe(self) -> str:
        return f"set VERSION {self.old} → {self.new} in {self.path} and commit it"

    def commands(self) -> list[list[str]]:
        return self._commit().commands()

    def _commit(self) -> Commit:
        return Commit(self.message, [self.path], self.save)

    def prepare(self, ctx: Context) -> bool:
        return self._commit().prepare(ctx)

    def done(self, ctx: Context) -> bool:
        head = ctx.repo.rev("HEAD")
        return head is not None and read_version(ctx.repo.show_file(head, self.path)) == self.new and self._commit().done(ctx)

    def run(self, ctx: Context) -> None:
        assert ctx.repo.root is not None
        file = ctx.repo.root / self.path
        try:
            file.write_bytes(rewrite_version(file.read_bytes().decode("utf-8"), self.new).encode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise StepFailed(f"cannot set VERSION in {self.path}: {exc}") from None
        self._commit().run(ctx)


@dataclass
class Tag(Step):
    """An annotated tag on an explicit commit (a result of an earlier step)."""

    op = "tag"
    name: str
    target: str
    message: str

    def describe(self) -> str:
        return f"tag {shown(self.target)} as {self.name}"

    def commands(self) -> list[list[str]]:
        return [["tag", "-a", self.name, "-m", self.message, shown(self.target)]]

    def done(self, ctx: Context) -> bool:
        found = ctx.repo.rev(f"refs/tags/{self.name}")
        if found is not None and found != ctx.value(self.target):
            raise StepFailed(f"tag {self.name} exists already and names {found[:12]}; release tags never move")
        return found is not None

    def run(self, ctx: Context) -> None:
        _run(ctx.git, "tag", "-a", self.name, "-m", self.message, ctx.value(self.target))


@dataclass
class DeleteBranch(Step):
    """`git branch -d`: git refuses when the branch holds commits not merged; the flow then stops."""

    op = "delete-branch"
    name: str

    def describe(self) -> str:
        return f"delete the branch {self.name}"

    def commands(self) -> list[list[str]]:
        return [["branch", "-d", self.name]]

    def done(self, ctx: Context) -> bool:
        return ctx.repo.ref(f"refs/heads/{self.name}") is None

    def prepare(self, ctx: Context) -> bool:
        return remember_tip(ctx, self.name)

    def run(self, ctx: Context) -> None:
        _run(ctx.git, "branch", "-d", self.name)


def remember_tip(ctx: Context, branch: str) -> bool:
    """A branch's tip, kept before the branch is deleted (abort and undo re-create it there)."""
    tip = ctx.repo.rev(f"refs/heads/{branch}")
    if tip is None or ctx.vars.get(f"tip:{branch}") == tip:
        return False
    ctx.vars[f"tip:{branch}"] = tip
    return True


@dataclass
class Push(Step):
    op = "push"
    undoable = False
    remote: str
    refs: list[str]

    def describe(self) -> str:
        return f"push {', '.join(self.refs)} to {self.remote} at once (--atomic)"

    def commands(self) -> list[list[str]]:
        return [["push", "--atomic", self.remote, *self.refs]]

    def run(self, ctx: Context) -> None:
        _run(ctx.git, "push", "--atomic", self.remote, *self.refs)


@dataclass
class WriteFile(Step):
    """Write a file that is not there yet (never overwrites one)."""

    op = "write-file"
    path: str
    content: str
    mode: int = 0o644

    def describe(self) -> str:
        return f"write {self.path}"

    def _file(self, ctx: Context) -> Path:
        assert ctx.repo.root is not None
        return ctx.repo.root / self.path

    def done(self, ctx: Context) -> bool:
        return self._file(ctx).exists()

    def run(self, ctx: Context) -> None:
        file = self._file(ctx)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            with open(file, "x", encoding="utf-8") as out:
                out.write(self.content)
            os.chmod(file, self.mode)
        except OSError as exc:
            raise StepFailed(f"cannot write {self.path}: {exc.strerror}") from None

    def abort(self, ctx: Context) -> None:
        """An untracked file the flow wrote goes, with the folders that held only it (a committed one
        went with the ref rollback)."""
        file = self._file(ctx)
        if file.exists() and file.read_text(encoding="utf-8", errors="replace") == self.content and not ctx.repo.is_tracked(self.path):
            file.unlink()
            assert ctx.repo.root is not None
            for folder in file.parents:
                if folder == ctx.repo.root or any(folder.iterdir()):
                    break
                folder.rmdir()


@dataclass
class AppendText(Step):
    """Lines added at the end of a file (made when missing); done when they are all there."""

    op = "append-text"
    path: str
    text: str

    def describe(self) -> str:
        return f"add to {self.path}"

    def _file(self, ctx: Context) -> Path:
        assert ctx.repo.root is not None
        return ctx.repo.root / self.path

    def done(self, ctx: Context) -> bool:
        file = self._file(ctx)
        return file.exists() and self.text in file.read_text(encoding="utf-8", errors="replace")

    def abort(self, ctx: Context) -> None:
        """Text the flow added to a file git does not track goes again."""
        file = self._file(ctx)
        if not file.exists() or ctx.repo.is_tracked(self.path):
            return
        content = file.read_text(encoding="utf-8", errors="replace")
        if content == self.text:
            file.unlink()
        elif content.endswith(self.text):
            file.write_text(content[:-len(self.text)], encoding="utf-8")

    def run(self, ctx: Context) -> None:
        file = self._file(ctx)
        try:
            before = file.read_text(encoding="utf-8") if file.exists() else ""
            file.write_text(before + ("" if not before or before.endswith("\n") else "\n") + self.text, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StepFailed(f"cannot add to {self.path}: {exc}") from None


@dataclass
class Verify(Step):
    """The last step of a flow that wrote to main or dev: the commits it made there are judged by
    the rules `dlgit check` uses, so a flow never leaves history that check refuses, with or
    without the hooks installed."""

    op = "verify"
    branches: list[list[str]]  # [branch, its tip before the flow] (JSON has no tuples)

    def describe(self) -> str:
        return f"check the new commits on {', '.join(name for name, _ in self.branches)} with dlgit's rules"

    def run(self, ctx: Context) -> None:
        from dlgit.evidence import RefView
        from dlgit.history.judge import Judging, Span, judge, judge_many, policy_at
        from dlgit.history.render import render_text

        refs = RefView.load(ctx.repo)
        # what the other branches held before the flow is theirs, not new here (main's release
        # merge reaches dev through a task started after a hand release without back-merge)
        befores = tuple(dict.fromkeys(before for _, before in self.branches))
        moved = [(name, before, tip) for name, before in self.branches if (tip := ctx.repo.rev(f"refs/heads/{name}")) not in (None, before)]
        spans = [(Span(f"{before[:12]}..{name}", tip, (before, *(other for other in befores if other != before))), name)
                 for name, before, tip in moved]
        policies = [policy_at(ctx.repo, before, name) for name, before, _ in moved]
        distinct = len({tip for _, _, tip in moved}) == len(moved)
        if policies and distinct and all(policy.settings == policies[0].settings for policy in policies):
            # one read of the commits the branches share (a task's, merged into main and dev): each judged once
            results, _ = judge_many([Judging(span, name, None) for span, name in spans], befores, policies[0], refs)
        else:
            results = [judge(span, name, policy, refs) for (span, name), policy in zip(spans, policies, strict=True)]
        for result in results:
            if not result.ok:
                raise StepFailed(render_text(result, color=False))


@dataclass
class InstallHooks(Step):
    """dlgit's own hook scripts, in the hooks folder git uses."""

    op = "install-hooks"

    def describe(self) -> str:
        return "install dlgit's hooks (pre-commit, pre-merge-commit, commit-msg, pre-push)"

    def done(self, ctx: Context) -> bool:
        from dlgit import install

        hooks = ctx.repo.git_path("hooks")
        return all(install.is_ours(hooks / name) for name in install.CLIENT_HOOKS)

    def run(self, ctx: Context) -> None:
        from dlgit import install

        try:
            install.write_hooks(install.inspect(), force=False, out=ctx.out)
        except UsageError as exc:
            raise StepFailed(str(exc)) from None


@dataclass
class CommitizenConfig(Step):
    """commitizen's settings for cz_dlgit and the dlgit version provider."""

    op = "commitizen-config"

    def describe(self) -> str:
        return "write commitizen's configuration (cz_dlgit, the dlgit version provider, tags vX.Y.Z)"

    def done(self, ctx: Context) -> bool:
        from dlgit import cz_setup

        assert ctx.repo.root is not None
        return cz_setup.commitizen_config(ctx.repo.root, write=False).action == "unchanged"

    def run(self, ctx: Context) -> None:
        from dlgit import cz_setup

        assert ctx.repo.root is not None
        try:
            cz_setup.commitizen_config(ctx.repo.root, write=True)
        except UsageError as exc:
            raise StepFailed(str(exc)) from None


@dataclass
class DvcInit(Step):
    """`dvc init`: DVC's own files (.dvc/, .dvcignore), committed with the rest."""

    op = "dvc-init"

    def describe(self) -> str:
        return "set up DVC (dvc init) for large files"

    def commands(self) -> list[list[str]]:
        return []

    def done(self, ctx: Context) -> bool:
        return ctx.repo.root is not None and (ctx.repo.root / ".dvc" / "config").is_file()

    def run(self, ctx: Context) -> None:
        proc = subprocess.run(dvc_command("init", "--quiet"), cwd=ctx.repo.root, capture_output=True, text=True, check=False,
                              env={**os.environ, "DVC_NO_ANALYTICS": "1"})
        if proc.returncode != 0:
            raise StepFailed(f"dvc init failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()}")


def dvc_command(*args: str) -> list[str]:
    """DVC from PATH, else the one installed beside dlgit."""
    found = shutil.which("dvc")
    return [found, *args] if found else [sys.executable, "-m", "dvc", *args]


# --- tasks: work trees, folders, DVC and the stash -------------------------------------------------


@dataclass
class AddWorktree(Step):
    """A new branch checked out in a work tree of its own."""

    op = "add-worktree"
    path: str
    branch: str
    start: str

    def describe(self) -> str:
        return f"create {self.branch} from {self.start[:12]} in its own work tree {self.path}"

    def commands(self) -> list[list[str]]:
        return [["worktree", "add", "-b", self.branch, self.path, self.start]]

    def done(self, ctx: Context) -> bool:
        found = ctx.repo.worktrees().get(self.branch)
        return found is not None and found.resolve() == Path(self.path).resolve()

    def run(self, ctx: Context) -> None:
        if ctx.repo.ref(f"refs/heads/{self.branch}") is not None:  # made before a crash
            _run(ctx.git, "worktree", "add", self.path, self.branch)
        else:
            _run(ctx.git, "worktree", "add", "-b", self.branch, self.path, self.start)

    def abort(self, ctx: Context) -> None:
        """The work tree goes when it holds nothing but what the flow wrote there (its task folder)."""
        if not Path(self.path).is_dir():
            ctx.git("worktree", "prune", check=False)
            return
        folder = f"{ctx.settings.tasks_dir}/{self.branch}/"
        changed = Git(self.path).changed_since(self.start) if (Path(self.path) / ".git").exists() else []
        force = ["--force"] if all(path.startswith(folder) for path in changed) else []
        if ctx.git("worktree", "remove", *force, self.path, check=False).returncode != 0:
            print(f"dlgit: left the work tree {self.path} in place: it holds changes of yours", file=ctx.out)


@dataclass
class RemoveWorktree(Step):
    """A work tree goes (from the main work tree), when it holds nothing git does not have; else
    it stays, and the step says so. The flow goes on from the main work tree."""

    op = "remove-worktree"
    path: str
    branch: str = ""  # the branch checked out there (undo checks it out there again)

    def describe(self) -> str:
        return f"remove the work tree {self.path}"

    def commands(self) -> list[list[str]]:
        return [["worktree", "remove", self.path]]

    def done(self, ctx: Context) -> bool:
        return not Path(self.path).is_dir()

    def run(self, ctx: Context) -> None:
        from dlgit import dvccache

        main_tree = ctx.repo.common_dir.parent
        tree = Git(self.path)
        if tree.changed_paths(untracked=True):
            print(f"dlgit: left the work tree {self.path} in place: it holds changes git does not have; go on in {main_tree}",
                  file=ctx.out, flush=True)
            return
        root = Path(self.path)  # checked, not assumed: DVC outputs in the shared cache, no ignored file that exists only here
        lost = dvccache.unsaved(root, dvccache.shared_cache(tree) if dvccache.uses_dvc(root) else None)
        if lost:
            print(f"dlgit: left the work tree {self.path} in place: these files exist only there (save or delete them, then "
                  f"`git worktree remove {quote(self.path)}`):\n{dvccache.listed(lost)}", file=ctx.out, flush=True)
            return
        _run(Runner(Git(main_tree), echo=ctx.out), "worktree", "remove", self.path)
        print(f"dlgit: removed the task's work tree {self.path}; go on in {main_tree}", file=ctx.out, flush=True)

    def put_back(self, ctx: Context) -> Path | None:
        """The work tree again, at the same path with the branch checked out (re-created where it
        was deleted), DVC pointed at the shared cache as start-task sets it, and DVC's outputs
        checked out of that cache (the tree was removed only once they were all there)."""
        from dlgit import dvccache

        path = Path(self.path)
        tip = ctx.repo.ref(f"refs/heads/{self.branch}") or ctx.vars.get(f"tip:{self.branch}")
        if path.exists() or not self.branch or tip is None:
            return None
        git = Runner(Git(ctx.repo.common_dir.parent), echo=ctx.out)
        git("worktree", "prune", check=False)
        if ctx.repo.ref(f"refs/heads/{self.branch}") is None:
            _run(git, "branch", self.branch, tip)
        _run(git, "worktree", "add", self.path, self.branch)
        if dvccache.uses_dvc(path):
            cache = dvccache.shared_cache(Git(path))
            print(f"$ dvc config --local cache.dir {quote(str(cache))} && dvc checkout", file=ctx.out, flush=True)
            if reason := dvccache.share(path, cache) or _dvc_failure(dvccache.dvc("checkout", cwd=path)):
                print(f"dlgit: {reason}", file=ctx.out, flush=True)
        print(f"dlgit: the task's work tree {self.path} is back, on {self.branch}", file=ctx.out, flush=True)
        return path


def _dvc_failure(proc: subprocess.CompletedProcess[str]) -> str | None:
    return None if proc.returncode == 0 else f"dvc {proc.args[1]} failed: {(proc.stderr or proc.stdout).strip()}"


@dataclass
class CopyFolder(Step):
    """A folder of a commit written into the work tree under another name, some of its top-level
    files and folders (a run's outputs) left out and some files given new content."""

    op = "copy-folder"
    commit: str
    source: str
    dest: str
    exclude: list[str]
    replace: dict[str, str]  # path inside the folder -> its new text
    worktree: str | None = None

    def describe(self) -> str:
        skipped = f" (without {', '.join(name if Path(name).suffix else f'{name}/' for name in self.exclude)})" if self.exclude else ""
        return f"copy {self.source}/ of {self.commit[:12]} to {self.dest}/{skipped}"

    def run(self, ctx: Context) -> None:
        repo = ctx.repo_in(self.worktree)
        assert repo.root is not None
        entries = [entry for entry in repo.ls_tree(self.commit, self.source) if not self._excluded(entry.path)]
        blobs = repo.read_blobs([entry.sha for entry in entries if entry.type == "blob"])
        try:
            for entry in entries:
                inside = entry.path.removeprefix(self.source + "/")
                target = repo.root / self.dest / inside
                target.parent.mkdir(parents=True, exist_ok=True)
                if entry.mode == "120000":
                    target.unlink(missing_ok=True)
                    target.symlink_to(blobs[entry.sha].decode("utf-8", "surrogateescape"))
                elif entry.type == "blob":
                    data = self.replace[inside].encode("utf-8") if inside in self.replace else blobs[entry.sha]
                    target.write_bytes(data)
                    target.chmod(0o755 if entry.mode == "100755" else 0o644)
        except OSError as exc:
            raise StepFailed(f"cannot write {self.dest}/: {exc.strerror}") from None

    def _excluded(self, path: str) -> bool:
        """Is the path one of the left-out top-level files or folders (or inside one)?"""
        return path.removeprefix(self.source + "/").partition("/")[0] in self.exclude

    def abort(self, ctx: Context) -> None:
        """The copy goes when no commit checked out holds it (it was never committed, at most
        staged: unstaged first, so that nothing of it stays in the index)."""
        repo = ctx.repo_in(self.worktree)
        head = repo.rev("HEAD")  # none: the task's own work tree, its branch deleted by the rollback already
        if repo.root is None or not (repo.root / self.dest).is_dir() or (head and repo.ls_tree(head, self.dest)):
            return
        if repo.is_tracked(self.dest):
            ctx.git_in(self.worktree)("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", self.dest)
        shutil.rmtree(repo.root / self.dest)


@dataclass
class Detach(Step):
    """Leave the branch (HEAD at its commit), so that the branch itself can be deleted."""

    op = "detach"

    def describe(self) -> str:
        return "detach HEAD from the branch"

    def commands(self) -> list[list[str]]:
        return [["switch", "--detach"]]

    def done(self, ctx: Context) -> bool:
        return ctx.repo.current_branch() is None

    def run(self, ctx: Context) -> None:
        _run(ctx.git, "switch", "--detach")


@dataclass
class DropBranch(Step):
    """Delete a branch that holds only dlgit's own commits (a debug branch), if it is still at `sha`."""

    op = "drop-branch"
    name: str
    sha: str

    def describe(self) -> str:
        return f"delete the debug branch {self.name} (only dlgit's commits)"

    def commands(self) -> list[list[str]]:
        return [["update-ref", "-d", f"refs/heads/{self.name}", self.sha]]

    def done(self, ctx: Context) -> bool:
        return ctx.repo.ref(f"refs/heads/{self.name}") is None

    def prepare(self, ctx: Context) -> bool:
        return remember_tip(ctx, self.name)

    def run(self, ctx: Context) -> None:
        _run(ctx.git, "update-ref", "-d", f"refs/heads/{self.name}", self.sha)


@dataclass
class DvcAdd(Step):
    """Big files into DVC: each gets a small `.dvc` pointer and a .gitignore entry beside it."""

    op = "dvc-add"
    paths: list[str]

    def describe(self) -> str:
        return f"put {len(self.paths)} big file(s) into DVC (dvc add)"

    def commands(self) -> list[list[str]]:
        return []

    def done(self, ctx: Context) -> bool:
        assert ctx.repo.root is not None
        return all((ctx.repo.root / f"{path}.dvc").is_file() for path in self.paths)

    def run(self, ctx: Context) -> None:
        self._dvc(ctx, "add", *self.paths)

    def abort(self, ctx: Context) -> None:
        """The pointers go again, the files stay (never `--outs`)."""
        assert ctx.repo.root is not None
        pointers = [pointer for pointer in (f"{path}.dvc" for path in self.paths)
                    if (ctx.repo.root / pointer).is_file() and not ctx.repo.is_tracked(pointer)]
        if pointers:
            self._dvc(ctx, "remove", *pointers)

    @staticmethod
    def _dvc(ctx: Context, *args: str) -> None:
        print(f"$ {' '.join(quote(arg) for arg in ['dvc', *args])}", file=ctx.out, flush=True)
        proc = subprocess.run(dvc_command(*args), cwd=ctx.repo.root, capture_output=True, text=True, check=False,
                              env={**os.environ, "DVC_NO_ANALYTICS": "1"})
        if proc.returncode != 0:
            raise StepFailed(f"dvc {args[0]} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()}")


@dataclass
class ShareDvcCache(Step):
    """A work tree's DVC pointed at the repository's one cache (`cache.dir` in its own
    .dvc/config.local): what `dvc add` stores there outlives the work tree."""

    op = "share-dvc-cache"
    worktree: str
    cache: str

    def describe(self) -> str:
        return f"let {self.worktree} keep DVC's files in the repository's cache {self.cache} (dvc config --local cache.dir)"

    def done(self, ctx: Context) -> bool:
        from dlgit import dvccache

        tree = Path(self.worktree)
        return not dvccache.uses_dvc(tree) or dvccache.shares(tree, Path(self.cache))

    def run(self, ctx: Context) -> None:
        from dlgit import dvccache

        print(f"$ dvc config --local cache.dir {quote(self.cache)}", file=ctx.out, flush=True)
        if reason := dvccache.share(Path(self.worktree), Path(self.cache)):
            raise StepFailed(f"dvc config --local cache.dir failed: {reason}")


@dataclass
class MoveAside(Step):
    """Files moved out of the work tree into a folder outside git (big files a stash would copy
    into git's objects); abort moves them back."""

    op = "move-aside"
    paths: list[str]  # from the top of the work tree
    dest: str  # an absolute folder; each file keeps its path below it

    def describe(self) -> str:
        return f"move {len(self.paths)} big file(s) out of git's way, to {self.dest}"

    def _pairs(self, ctx: Context) -> list[tuple[Path, Path]]:
        assert ctx.repo.root is not None
        return [(ctx.repo.root / path, Path(self.dest) / path) for path in self.paths]

    def done(self, ctx: Context) -> bool:
        return all(not source.exists() and target.exists() for source, target in self._pairs(ctx))

    def run(self, ctx: Context) -> None:
        for source, target in self._pairs(ctx):
            if source.exists() or not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                print(f"$ mv {quote(str(source))} {quote(str(target))}", file=ctx.out, flush=True)
                try:
                    shutil.move(source, target)
                except OSError as exc:
                    raise StepFailed(f"cannot move {source} to {target}: {exc.strerror}") from None

    def abort(self, ctx: Context) -> None:
        for source, target in self._pairs(ctx):
            if target.exists() and not source.exists():
                source.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(target, source)


def _stash_ref(repo: Git, sha: str) -> str | None:
    stashes = repo.stashes()
    return f"stash@{{{stashes.index(sha)}}}" if sha in stashes else None


@dataclass
class Stash(Step):
    """Uncommitted changes (untracked files included) under `pathspec` set aside in the stash."""

    op = "stash"
    message: str
    pathspec: list[str]
    save: str

    def describe(self) -> str:
        return f"set aside in the stash: {self.message}"

    def commands(self) -> list[list[str]]:
        return [["stash", "push", "--include-untracked", "-m", self.message, "--", *self.pathspec]]

    def prepare(self, ctx: Context) -> bool:
        """The stash entries there before: the one this step makes is none of them."""
        if f"stashes:{self.save}" in ctx.vars:
            return False
        ctx.vars[f"stashes:{self.save}"] = " ".join(ctx.repo.stashes())
        return True

    def _made(self, ctx: Context) -> str | None:
        """The stash entry this step made: recorded, or found by its message among the entries that
        are new since the step began (a crash came first)."""
        before = set(ctx.vars.get(f"stashes:{self.save}", "").split())
        found = ctx.vars.get(self.save) or next((sha for sha, said in ctx.repo.stash_messages()
                                                 if said.endswith(self.message) and sha not in before), None)
        if found and found in ctx.repo.stashes():
            ctx.vars[self.save] = found
            return found
        return None

    def done(self, ctx: Context) -> bool:
        return self._made(ctx) is not None

    def run(self, ctx: Context) -> None:
        before = ctx.repo.stashes()
        _run(ctx.git, "stash", "push", "--include-untracked", "-m", self.message, "--", *self.pathspec)
        made = [sha for sha in ctx.repo.stashes() if sha not in before]
        if len(made) != 1:
            raise StepFailed(f"git stash set nothing aside for: {self.message}")
        ctx.vars[self.save] = made[0]

    def abort(self, ctx: Context) -> None:
        """Put the changes back where they came from, if the stash still holds them."""
        made = self._made(ctx)
        ref = _stash_ref(ctx.repo, made) if made else None
        if ref and ctx.git("stash", "pop", ref, check=False).returncode != 0:
            print(f"dlgit: {self.message}: kept in the stash ({ref}); `git stash pop {ref}` it by hand", file=ctx.out)


@dataclass
class StashPop(Step):
    """Apply a stash entry the flow made, and drop it once it is applied (a conflict keeps it)."""

    op = "stash-pop"
    stash: str  # @name of the Stash step's result

    def describe(self) -> str:
        return "bring the stashed changes back here (git stash pop)"

    def commands(self) -> list[list[str]]:
        return [["stash", "pop", shown(self.stash)]]

    def done(self, ctx: Context) -> bool:
        return _stash_ref(ctx.repo, ctx.value(self.stash)) is None

    def run(self, ctx: Context) -> None:
        ref = _stash_ref(ctx.repo, ctx.value(self.stash))
        assert ref is not None
        proc = ctx.git("stash", "pop", ref, check=False)
        if proc.returncode != 0:
            _conflicts(ctx.repo)
            raise _failed(proc, "git stash pop")

    def resume(self, ctx: Context) -> None:
        ref = _stash_ref(ctx.repo, ctx.value(self.stash))
        if ref is None:
            return
        if ctx.repo.unmerged_paths() or not ctx.repo.changed_paths(untracked=True):  # still conflicted, or not applied yet
            _conflicts(ctx.repo)
            self.run(ctx)
            return
        _run(ctx.git, "reset", "-q")  # the resolution stays in the work tree, uncommitted and unstaged
        _run(ctx.git, "stash", "drop", ref)
