"""The click application: each command calls one function in its module and exits with its code.

Command modules are imported inside the commands so that a command pays only for what it runs.
`dlgit hook ...` usually never gets here: `dlgit.cli.main` dispatches it without importing click.
Every command returns its exit code (`dlgit.cli.main` runs the application with standalone_mode off).
"""

from __future__ import annotations

import click

from dlgit import __version__
from dlgit.dispatch import run_action, run_hook


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dlgit")
def main() -> None:
    """Keep a deep-learning research repository honest: branch model, hooks and flows."""


@main.group()
def hook() -> None:
    """Entry points that git (or the pre-commit framework) calls."""


@hook.command("pre-commit")
def hook_pre_commit() -> int:
    """Judge the staged change (also a conflicted merge being concluded)."""
    return run_hook("pre-commit")


@hook.command("pre-merge-commit")
def hook_pre_merge_commit() -> int:
    """Judge a clean merge before git records it."""
    return run_hook("pre-merge-commit")


@hook.command("commit-msg")
@click.argument("message_file", required=False)
def hook_commit_msg(message_file: str | None) -> int:
    """Judge the commit message (default file: .git/COMMIT_EDITMSG)."""
    return run_hook("commit-msg", [message_file])


@hook.command("pre-push")
@click.argument("remote", required=False)
@click.argument("url", required=False)
def hook_pre_push(remote: str | None, url: str | None) -> int:
    """Check every pushed ref (ref lines on stdin) with the same rules as `dlgit check`."""
    return run_hook("pre-push", [remote, url])


@hook.command("pre-receive")
def hook_pre_receive() -> int:
    """Server side: check `<old> <new> <ref>` lines on stdin; refuse what breaks the policy."""
    return run_hook("pre-receive")


@main.command()
@click.argument("rule_id", required=False)
def explain(rule_id: str | None) -> int:
    """Explain a rule (or list them all; `config` shows the settings)."""
    from dlgit import explain as explain_module

    return run_action(lambda: explain_module.explain(rule_id))


@main.command()
def status() -> int:
    """Branch, kind, what is allowed here, and which hooks are installed."""
    from dlgit import install

    return run_action(install.status)


@main.command("install")
@click.option("--force", is_flag=True, help="Replace foreign hooks (a backup is kept).")
def install_cmd(force: bool) -> int:
    """Install dlgit's git hooks into the hooks folder git uses."""
    from dlgit import install

    return run_action(lambda: install.install(force))


@main.command()
def uninstall() -> int:
    """Remove the hooks dlgit installed (and nothing else)."""
    from dlgit import install

    return run_action(install.uninstall)


@main.command()
def demo() -> int:
    """Walk through the branch model in a throw-away repository."""
    from dlgit import demo as demo_module

    return run_action(demo_module.demo)


@main.command()
@click.argument("revision_range", required=False)
@click.option("--branch", help="The branch the commits are being put on (default: the current one).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check(revision_range: str | None, branch: str | None, output_format: str) -> int:
    """Re-verify commits in RANGE with the same rules as the hooks."""
    from dlgit import check as check_module

    return run_action(lambda: check_module.main(revision_range, branch, output_format))


@main.command()
@click.argument("provider", type=click.Choice(["github", "gitlab"]))
@click.option("--write", is_flag=True, help="Write the workflow file instead of printing it.")
def ci(provider: str, write: bool) -> int:
    """Print (or write) a CI workflow that runs `dlgit check` on every push."""
    from dlgit import ci as ci_module

    return run_action(lambda: ci_module.main(provider, write))
