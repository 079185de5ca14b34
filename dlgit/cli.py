"""The `dlgit` entry point (console script and `python -m dlgit`).

A hook runs on every commit, so `dlgit hook NAME [ARGS]` is dispatched here without importing
click (≈20 ms); every other command line goes to the click application in `dlgit.commands`.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Sequence

from dlgit.errors import UsageError


def _pre_commit(args: Sequence[str | None]) -> int:
    from dlgit import hooks

    return hooks.pre_commit()


def _commit_msg(args: Sequence[str | None]) -> int:
    from dlgit import hooks

    return hooks.commit_msg(args[0] if args else None)


def _pre_push(args: Sequence[str | None]) -> int:
    from dlgit import push

    padded = [*args, None, None]
    return push.pre_push(padded[0], padded[1], sys.stdin)


def _pre_receive(args: Sequence[str | None]) -> int:
    from dlgit import push

    return push.pre_receive(sys.stdin)


# hook name -> (most positional arguments, body)
HOOKS: dict[str, tuple[int, Callable[[Sequence[str | None]], int]]] = {
    "pre-commit": (0, _pre_commit),
    "pre-merge-commit": (0, _pre_commit),
    "commit-msg": (1, _commit_msg),
    "pre-push": (2, _pre_push),
    "pre-receive": (0, _pre_receive),
}


def run_action(action: Callable[[], int]) -> int:
    """Run a command body; bad input ends in one paragraph on stderr and exit 2."""
    from dlgit.git import GitError

    try:
        return action()
    except UsageError as exc:
        print(f"dlgit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except GitError as exc:
        print(f"dlgit: error: {exc}", file=sys.stderr)
        return 2


def run_hook(name: str, args: Sequence[str | None] = ()) -> int:
    return run_action(lambda: HOOKS[name][1](args))


def fast_hook(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    """(name, args) when argv is a plain `hook NAME [ARGS]` call; None leaves it to click
    (options such as --help, unknown names, too many arguments)."""
    if len(argv) < 2 or argv[0] != "hook" or argv[1] not in HOOKS:
        return None
    args = list(argv[2:])
    if len(args) > HOOKS[argv[1]][0] or any(arg.startswith("-") for arg in args):
        return None
    return argv[1], args


def main(argv: Sequence[str] | None = None) -> None:
    """Run dlgit with argv (default: the command line) and exit with its code."""
    # dlgit runs briefly and makes an object per staged path or commit, none in cycles worth
    # collecting: reference counting frees them; the cyclic collector would only pause to scan.
    gc.disable()
    args = list(sys.argv[1:] if argv is None else argv)
    hook = fast_hook(args)
    if hook is not None:
        sys.exit(run_hook(*hook))
    from dlgit.commands import main as app

    app.main(args=args, prog_name="dlgit")


def run(argv: Sequence[str] | None = None) -> int:
    """Entry for tests: run the CLI in-process and return its exit code."""
    import click

    from dlgit.commands import main as app

    args = list(argv) if argv is not None else None
    hook = fast_hook(args) if args is not None else None
    if hook is not None:
        return run_hook(*hook)
    try:
        app.main(args=args, prog_name="dlgit", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.exceptions.UsageError as exc:
        exc.show()
        return 2
    return 0
