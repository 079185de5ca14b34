"""Running a command body and the hooks git calls: bad input ends in one paragraph on stderr and
exit 2. `dlgit hook NAME [ARGS]` runs on every commit, so it is dispatched without click (≈20 ms)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from dlgit.errors import UsageError


def _pre_commit(args: Sequence[str | None]) -> int:
    from dlgit import hooks

    return hooks.pre_commit()


def _commit_msg(args: Sequence[str | None]) -> int:
    from dlgit import hooks

    return hooks.commit_msg(args[0] if args else None)


def _pre_push(args: Sequence[str | None]) -> int:
    from dlgit import push

    return push.pre_push(args[0] if args else None, sys.stdin)


def _pre_receive(args: Sequence[str | None]) -> int:
    from dlgit import push

    return push.pre_receive(sys.stdin)


def _reference_transaction(args: Sequence[str | None]) -> int:
    from dlgit import transaction

    return transaction.reference_transaction(args[0] if args else None, sys.stdin)


def _post_receive(args: Sequence[str | None]) -> int:
    from dlgit import record

    return record.post_receive(sys.stdin)


# hook name -> (most positional arguments, body)
HOOKS: dict[str, tuple[int, Callable[[Sequence[str | None]], int]]] = {
    "pre-commit": (0, _pre_commit),
    "pre-merge-commit": (0, _pre_commit),
    "commit-msg": (1, _commit_msg),
    "pre-push": (2, _pre_push),  # remote name and URL
    "pre-receive": (0, _pre_receive),
    "reference-transaction": (1, _reference_transaction),  # the state: prepared, committed, aborted
    "post-receive": (0, _post_receive),
}


def run_action(action: Callable[[], int]) -> int:
    """Run a command body; bad input ends in one paragraph on stderr and exit 2: also what the
    system refuses (a file that cannot be read or written) and input too deep or odd to read."""
    from dlgit.git import GitError

    try:
        return action()
    except UsageError as exc:
        error(str(exc))
        return exc.exit_code
    except GitError as exc:
        error(str(exc))
        return 2
    except BrokenPipeError:  # the reader went away (`dlgit log | head`): quietly, as git does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush must not fail again
        return 128 + 13  # as when killed by SIGPIPE
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        error(f"{where}{exc.strerror or exc}; nothing more was done.")
        return 2
    except RecursionError:
        error("the input nests too deeply to be read; nothing was judged.")
        return 2
    except ValueError as exc:
        error(f"cannot read the input ({exc}); nothing was judged.")
        return 2


def error(message: str) -> None:
    from dlgit.shell import printable

    print("dlgit: error: " + "\n".join(printable(line) for line in message.split("\n")), file=sys.stderr)


def run_hook(name: str, args: Sequence[str | None] = ()) -> int:
    return run_action(lambda: HOOKS[name][1](args))


def judge_here(root: Path, hooks: Sequence[tuple[str, list[str]]], args: Sequence[str]) -> str | None:
    """The hooks (name, arguments) run in this process, one after the other as git would run them for
    the `git ARGS` the caller runs next with --no-verify (a flow's own commit, when the hooks are
    this very dlgit's: one process instead of two, the same functions judging): in the work tree's
    top folder, reading ARGS as git's options. What they printed when one refused, else None."""
    from dlgit.git.ancestry import judging

    said = io.StringIO()
    here = os.getcwd()
    os.chdir(root)
    try:
        with judging(args), contextlib.redirect_stderr(said):
            refused = any(run_hook(name, hook_args) != 0 for name, hook_args in hooks)
    finally:
        os.chdir(here)
    return said.getvalue() if refused else None


def fast_hook(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    """(name, args) when argv is a plain `hook NAME [ARGS]` call; None leaves it to click
    (options such as --help, unknown names, too many arguments)."""
    if len(argv) < 2 or argv[0] != "hook" or argv[1] not in HOOKS:
        return None
    args = list(argv[2:])
    if len(args) > HOOKS[argv[1]][0] or any(arg.startswith("-") for arg in args):
        return None
    return argv[1], args
