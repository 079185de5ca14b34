"""The `dlgit` entry point (console script and `python -m dlgit`): argv in, exit code out.

A hook runs on every commit, so `dlgit hook NAME [ARGS]` is dispatched without importing click;
every other command line goes to the click application in `dlgit.commands`.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

from dlgit.dispatch import error, fast_hook, run_hook


def main(argv: Sequence[str] | None = None) -> int:
    """Run dlgit with argv (default: the command line) and return its exit code."""
    # dlgit runs briefly and makes an object per staged path or commit, none in cycles worth
    # collecting: reference counting frees them; the cyclic collector would only pause to scan.
    gc.disable()
    args = list(sys.argv[1:] if argv is None else argv)
    hook = fast_hook(args)
    if hook is not None:
        return run_hook(*hook)
    import click

    from dlgit.commands import main as app

    try:
        code = app.main(args=args, prog_name="dlgit", standalone_mode=False)
    except click.exceptions.UsageError as exc:  # bad arguments: usage, then one line, exit 2
        if exc.ctx is not None:
            print(f"{exc.ctx.get_usage()}\nTry '{exc.ctx.command_path} --help' for help.", file=sys.stderr)
        error(" ".join(exc.format_message().splitlines()))
        return 2
    except click.exceptions.Abort:
        error("aborted.")
        return 130
    except click.ClickException as exc:
        error(exc.format_message())
        return exc.exit_code
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
