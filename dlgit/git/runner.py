"""`Runner`: the one way dlgit writes to a repository (switch, branch, merge, commit, tag, stash,
reset --keep, push). Each command can be echoed as `$ git ...` before it runs and, in a dry run,
only echoed. git's hooks run as usual: dlgit passes --no-verify only to a flow's commit that the
hooks git would run, dlgit's own, have just judged in dlgit's process (dlgit.flows.steps)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from dlgit.git.parse import fsdecode
from dlgit.git.proc import GitError, run
from dlgit.shell import quote

if TYPE_CHECKING:
    from dlgit.git.repo import Git


def command_line(args: Sequence[str]) -> str:
    """`git ARGS` as a line that bash runs as is."""
    return " ".join(["git", *(quote(arg) for arg in args)])


class Runner:
    def __init__(self, repo: Git, echo: TextIO | None = None, dry_run: bool = False) -> None:
        self.repo = repo
        self.echo = echo if echo is not None or not dry_run else sys.stdout
        self.dry_run = dry_run

    def __call__(self, *args: str, check: bool = True, stdin: bytes | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run `git ARGS` (its output captured); GitError when it fails and `check` is set."""
        if self.echo is not None:
            print(f"$ {command_line(args)}", file=self.echo, flush=True)
        if self.dry_run:
            return subprocess.CompletedProcess(["git", *args], 0, b"", b"")
        proc = run(args, self.repo.cwd, stdin=stdin, check=False, env=env)
        if check and proc.returncode != 0:
            raise GitError(args, proc.returncode, fsdecode(proc.stderr + proc.stdout))
        return proc
