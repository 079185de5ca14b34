"""The click application: each command calls one function in its module and exits with its code.

Command modules are imported inside the commands so that a command pays only for what it runs.
`dlgit hook ...` usually never gets here: `dlgit.cli.main` dispatches it without importing click.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from dlgit import __version__
from dlgit.cli import run_action, run_hook


def _run(action: Callable[[], int]) -> None:
    """Run a command body; bad input ends in one paragraph on stderr and exit 2."""
    sys.exit(run_action(action))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dlgit")
def main() -> None:
    """Keep a deep-learning research repository honest: branch model, hooks and flows."""


@main.group()
def hook() -> None:
    """Entry points that git (or the pre-commit framework) calls."""


@hook.command("pre-commit")
def hook_pre_commit() -> None:
    """Judge the staged change (also a conflicted merge being concluded)."""
    sys.exit(run_hook("pre-commit"))


@hook.command("pre-merge-commit")
def hook_pre_merge_commit() -> None:
    """Judge a clean merge before git records it."""
    sys.exit(run_hook("pre-merge-commit"))


@hook.command("commit-msg")
@click.argument("message_file", required=False)
def hook_commit_msg(message_file: str | None) -> None:
    """Judge the commit message (default file: .git/COMMIT_EDITMSG)."""
    sys.exit(run_hook("commit-msg", [message_file]))


@hook.command("pre-push")
@click.argument("remote", required=False)
@click.argument("url", required=False)
def hook_pre_push(remote: str | None, url: str | None) -> None:
    """Check every pushed ref (ref lines on stdin) with the same rules as `dlgit check`."""
    sys.exit(run_hook("pre-push", [remote, url]))


@hook.command("pre-receive")
def hook_pre_receive() -> None:
    """Server side: check `<old> <new> <ref>` lines on stdin; refuse what breaks the policy."""
    sys.exit(run_hook("pre-receive"))


@main.command()
@click.argument("rule_id", required=False)
def explain(rule_id: str | None) -> None:
    """Explain a rule (or list them all; `config` shows the settings)."""
    from dlgit import explain as explain_module

    _run(lambda: explain_module.explain(rule_id))


@main.command()
def status() -> None:
    """Branch, kind, what is allowed here, and which hooks are installed."""
    from dlgit import install

    _run(install.status)


@main.command("install")
@click.option("--force", is_flag=True, help="Replace foreign hooks (a backup is kept).")
def install_cmd(force: bool) -> None:
    """Install dlgit's git hooks into the hooks folder git uses."""
    from dlgit import install

    _run(lambda: install.install(force))


@main.command()
def uninstall() -> None:
    """Remove the hooks dlgit installed (and nothing else)."""
    from dlgit import install

    _run(install.uninstall)


@main.command()
def demo() -> None:
    """Walk through the branch model in a throw-away repository."""
    from dlgit import demo as demo_module

    _run(demo_module.demo)


@main.command()
@click.argument("revision_range", required=False)
@click.option("--branch", help="The branch the commits are being put on (default: the current one).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check(revision_range: str | None, branch: str | None, output_format: str) -> None:
    """Re-verify commits in RANGE with the same rules as the hooks."""
    from dlgit import check as check_module

    _run(lambda: check_module.main(revision_range, branch, output_format))


@main.command()
@click.argument("provider", type=click.Choice(["github", "gitlab"]))
@click.option("--write", is_flag=True, help="Write the workflow file instead of printing it.")
def ci(provider: str, write: bool) -> None:
    """Print (or write) a CI workflow that runs `dlgit check` on every push."""
    from dlgit import ci as ci_module

    _run(lambda: ci_module.main(provider, write))


class _RunCommand(click.Command):
    """Everything after `--` goes to the script untouched (options included)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            split = args.index("--")
            args, ctx.meta["dlgit.script_args"] = args[:split], args[split + 1:]
        return super().parse_args(ctx, args)


@main.command(cls=_RunCommand)
@click.argument("script", required=False)
@click.option("--debug", is_flag=True, help="Run with DEBUG true (an effective config beside the record; config.yaml untouched).")
@click.option("--profile", is_flag=True, help="Run under cProfile; print the 20 most expensive functions.")
@click.option("--allow-dirty", is_flag=True, help="Run even with uncommitted changes outside the task folder.")
@click.pass_context
def run(ctx: click.Context, script: str | None, debug: bool, profile: bool, allow_dirty: bool) -> None:
    """Run the branch's task script (default: tasks.entry) from its folder; log and record the run.

    Arguments for the script follow `--`: dlgit run [SCRIPT] -- --lr 0.1
    """
    from dlgit.tasks import run as run_module

    args = ctx.meta.get("dlgit.script_args", [])
    _run(lambda: run_module.run(script, args, debug=debug, profile=profile, allow_dirty=allow_dirty))


@main.group(invoke_without_command=True)
@click.option("--format", "output_format", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_context
def tasks(ctx: click.Context, output_format: str) -> None:
    """Every task: state, last run, the parameters that differ from the template, metrics."""
    if ctx.invoked_subcommand is None:
        from dlgit.tasks import table

        _run(lambda: table.show(output_format))


@tasks.command("diff")
@click.argument("task_a")
@click.argument("task_b")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
def tasks_diff(task_a: str, task_b: str, output_format: str) -> None:
    """The config and metrics values that differ between two tasks (names or unique name ends)."""
    from dlgit.tasks import table

    _run(lambda: table.diff(task_a, task_b, output_format))
