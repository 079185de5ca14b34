"""The click application: each command calls one function in its module and exits with its code.

Command modules are imported inside the commands so that a command pays only for what it runs.
`dlgit hook ...` usually never gets here: `dlgit.cli.main` dispatches it without importing click.
Every command returns its exit code (`dlgit.cli.main` runs the application with standalone_mode off).
"""

from __future__ import annotations

import click

from dlgit import __version__
from dlgit.dispatch import run_action, run_hook

HOOK_CODES = "Exit codes: 0 allowed, 1 blocked (the reasons and fixes are printed), 2 bad input or configuration."
FLOW_CODES = ("Exit codes: 0 done, 1 a step was refused (a hook, or git), 2 bad input or an unmet precondition "
              "(nothing changed), 3 stopped on a merge conflict (resolve it, then `dlgit continue`).")


class _Parsed:
    """Errors of click's option parser carry no context; give them the command's, so that
    `dlgit.cli.main` prints the command's usage above the one `dlgit: error:` line."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc, no-any-return]
        except click.UsageError as exc:
            exc.ctx = exc.ctx or ctx
            raise


class Command(_Parsed, click.Command):
    pass


class Group(_Parsed, click.Group):
    """A group without a command is a usage error naming the commands, in every click version
    (8.1 printed the help and exited 0, 8.2 puts the whole help in the error)."""

    command_class = Command
    group_class = type  # subgroups are Groups too

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and not ctx.resilient_parsing and not self.invoke_without_command:
            raise click.UsageError(f"missing a command: one of {', '.join(self.list_commands(ctx))}.", ctx)
        return super().parse_args(ctx, args)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dlgit")
def main() -> None:
    """Keep a deep-learning research repository honest: branch model, hooks and flows.

    Exit codes: 0 success, 2 bad usage, input or configuration (one `dlgit: error:` line says why);
    the commands that judge or run flows say theirs in their help.
    """


@main.group()
def hook() -> None:
    """Entry points that git (or the pre-commit framework) calls."""


@hook.command("pre-commit", epilog=HOOK_CODES)
def hook_pre_commit() -> int:
    """Judge the staged change (also a conflicted merge being concluded). With no commit or merge
    being made and nothing staged (`pre-commit run --all-files`), there is nothing to judge."""
    return run_hook("pre-commit")


@hook.command("pre-merge-commit", epilog=HOOK_CODES)
def hook_pre_merge_commit() -> int:
    """Judge a clean merge before git records it."""
    return run_hook("pre-merge-commit")


@hook.command("commit-msg", epilog=HOOK_CODES)
@click.argument("message_file", required=False)
def hook_commit_msg(message_file: str | None) -> int:
    """Judge the commit message in MESSAGE_FILE (default: .git/COMMIT_EDITMSG)."""
    return run_hook("commit-msg", [message_file])


@hook.command("pre-push", epilog=HOOK_CODES)
@click.argument("remote", required=False)
@click.argument("url", required=False)
def hook_pre_push(remote: str | None, url: str | None) -> int:
    """Check every pushed ref (ref lines on stdin) with the same rules as `dlgit check`; git passes
    the REMOTE's name and URL."""
    return run_hook("pre-push", [remote, url])


@hook.command("pre-receive", epilog=HOOK_CODES)
def hook_pre_receive() -> int:
    """Server side: check `<old> <new> <ref>` lines on stdin; refuse what breaks the policy."""
    return run_hook("pre-receive")


@main.command()
@click.argument("rule_id", metavar="[RULE]", required=False)
def explain(rule_id: str | None) -> int:
    """Explain RULE: why it exists, where it is checked, its settings. Without RULE, list every
    rule; `dlgit explain config` lists the .dlgit.yaml settings and their defaults."""
    from dlgit import explain as explain_module

    return run_action(lambda: explain_module.explain(rule_id))


@main.command()
def status() -> int:
    """Branch, kind, what is allowed here, and which hooks are installed.

    Exit codes: 0 every client hook dlgit needs runs it, 1 one does not (the fix is printed),
    2 not a repository or a broken .dlgit.yaml.
    """
    from dlgit import install

    return run_action(install.status)


@main.command("install")
@click.option("--force", is_flag=True, help="Replace foreign hooks (a backup is kept).")
@click.option("--server", is_flag=True, help="Set up the server repository pushes go to (the default in a bare repository): "
              "pre-receive, post-receive, the reference-transaction hook (in place while a push carries a release tag), "
              "receive.fsckObjects, and the settings it enforces, pinned.")
@click.option("--adopt", metavar="REF",
              help="With --server: enforce the .dlgit.yaml of REF (a commit the server has, or a file) from now on.")
def install_cmd(force: bool, server: bool, adopt: str | None) -> int:
    """Install dlgit's git hooks into the hooks folder git uses."""
    from dlgit import install

    return run_action(lambda: install.install(force, server, adopt))


@main.command()
def uninstall() -> int:
    """Remove the hooks dlgit installed (and nothing else)."""
    from dlgit import install

    return run_action(install.uninstall)


@main.command()
def demo() -> int:
    """Walk through the branch model in a throw-away repository (DLGIT_DEMO_KEEP=1 keeps it).

    Exit codes: 0 every step behaved as the model says, 1 one did not.
    """
    from dlgit import demo as demo_module

    return run_action(demo_module.demo)


@main.command()
@click.argument("revision_range", metavar="[RANGE]", required=False)
@click.option("--branch", metavar="NAME", help="The branch the commits are put on, whose rules judge them (default: the current one).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for scripts (schema: docs/check.md).")
def check(revision_range: str | None, branch: str | None, output_format: str) -> int:
    """Re-verify the commits in RANGE (A..B, a branch or a commit) with the same rules as the hooks.

    Default RANGE: the current branch's commits that its upstream lacks (@{upstream}..HEAD); without
    an upstream, its commits that no remote branch holds. `0000000000000000000000000000000000000000..TIP`
    (a CI's first push) judges TIP's commits that no remote branch holds.

    Exit codes: 0 nothing violated, 1 violations (each with its fix), 2 bad input (a range git cannot
    read, not a repository, an unborn branch, a broken .dlgit.yaml).
    """
    from dlgit import check as check_module

    return run_action(lambda: check_module.main(revision_range, branch, output_format))


@main.command()
@click.argument("provider", type=click.Choice(["github", "gitlab"]))
@click.option("--write", is_flag=True, help="Write the workflow file (.github/workflows/dlgit.yml, .gitlab-ci.yml) instead of printing it.")
def ci(provider: str, write: bool) -> int:
    """Print (or write) a CI workflow that runs `dlgit check` on every push and merge request."""
    from dlgit import ci as ci_module

    return run_action(lambda: ci_module.main(provider, write))


# --- flows ---------------------------------------------------------------------------------------

DRY_RUN = click.option("--dry-run", is_flag=True, help="Print the plan (each step and its git commands); change nothing.")


@main.command(epilog=FLOW_CODES)
@click.option("--dvc", is_flag=True, help="Also set up DVC (dvc init) for large files.")
@click.option("--commitizen", is_flag=True, help="Also write commitizen's configuration (cz_dlgit, the dlgit version provider).")
@click.option("--report", is_flag=True,
              help="Also write the report's starters (reports/report.typ, a figure script, report_data.py in the template).")
@DRY_RUN
def init(dvc: bool, commitizen: bool, report: bool, dry_run: bool) -> int:
    """Set the repository up: template task, .dlgit.yaml, .gitignore, hooks, dev. Adds only what is missing."""
    from dlgit.flows import init as init_flow

    return run_action(lambda: init_flow.init(dvc, commitizen, dry_run, report=report))


@main.command(epilog=FLOW_CODES)
@click.option("--bump", type=click.Choice(["auto", "major", "minor", "patch"]), default="auto", show_default=True,
              help="auto: from the commit types since the last release (feat minor, fix patch, ! major).")
@click.option("--no-squash", is_flag=True, help="Merge dev with --no-ff instead of squashing it.")
@click.option("--push", is_flag=True, help="Push main, dev and the tag atomically at the end (undo then refuses).")
@DRY_RUN
def release(bump: str, no_squash: bool, push: bool, dry_run: bool) -> int:
    """Release dev: squash it onto main, bump VERSION, tag vX.Y.Z, merge main back into dev."""
    from dlgit.flows import dev

    return run_action(lambda: dev.release(bump, not no_squash, push, dry_run))


@main.group()
def feature() -> None:
    """feature-<name> branches: start from dev, finish by merging into dev."""


@feature.command("start", epilog=FLOW_CODES)
@click.argument("name")
@DRY_RUN
def feature_start(name: str, dry_run: bool) -> int:
    """Create feature-NAME from dev and switch to it."""
    from dlgit.flows import dev
    from dlgit.model import Kind

    return run_action(lambda: dev.start(Kind.FEATURE, name, dry_run))


@feature.command("finish", epilog=FLOW_CODES)
@click.argument("name", required=False)
@click.option("-m", "--message", metavar="MESSAGE", help="The merge commit's message (default: chore: merge <branch> into dev).")
@DRY_RUN
def feature_finish(name: str | None, message: str | None, dry_run: bool) -> int:
    """Merge feature branch NAME (default: the current one) into dev with --no-ff, then delete it."""
    from dlgit.flows import dev

    return run_action(lambda: dev.feature_finish(name, message, dry_run))


@main.group()
def hotfix() -> None:
    """hotfix-<name> branches: start from main, finish into main and dev."""


@hotfix.command("start", epilog=FLOW_CODES)
@click.argument("name")
@DRY_RUN
def hotfix_start(name: str, dry_run: bool) -> int:
    """Create hotfix-NAME from main and switch to it."""
    from dlgit.flows import dev
    from dlgit.model import Kind

    return run_action(lambda: dev.start(Kind.HOTFIX, name, dry_run))


@hotfix.command("finish", epilog=FLOW_CODES)
@click.argument("name", required=False)
@click.option("--no-bump", is_flag=True, help="Leave VERSION and tags alone (default: bump the patch version and tag it).")
@DRY_RUN
def hotfix_finish(name: str | None, no_bump: bool, dry_run: bool) -> int:
    """Check hotfix NAME's size (default: the current branch), merge it into main (bump and tag the patch version),
    then into dev; delete it."""
    from dlgit.flows import dev

    return run_action(lambda: dev.hotfix_finish(name, not no_bump, dry_run))


@main.command("continue", epilog=FLOW_CODES)
def continue_() -> int:
    """Go on with the unfinished flow (after resolving a conflict, or after a crash)."""
    from dlgit.flows import control

    return run_action(control.resume)


@main.command()
def abort() -> int:
    """Take the unfinished flow back: every ref, and the branch, as they were when it began."""
    from dlgit.flows import control

    return run_action(control.abort)


@main.command()
def undo() -> int:
    """Take back the last finished flow, while nothing it touched has moved or been pushed."""
    from dlgit.flows import control

    return run_action(control.undo)


@main.command("log")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json (one object per line) for scripts.")
def log_cmd(output_format: str) -> int:
    """The flows that ran here, with the refs before and after each."""
    from dlgit.flows import control

    return run_action(lambda: control.log(output_format))


# --- tasks ---------------------------------------------------------------------------------------


@main.command("start-task", epilog=FLOW_CODES)
@click.argument("desc", required=False)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Set a config.yaml value in the copy (typed as YAML; dotted keys reach nested maps). Repeatable.")
@click.option("--add", is_flag=True, help="Let --set (and --sweep) add keys the config does not have.")
@click.option("--sweep", "sweeps", multiple=True, metavar="KEY=V1,V2,...",
              help="Sub-tasks: one per combination of these values (repeatable; the grid is the product).")
@click.option("--retype", is_flag=True, help="Let --set change a value's type (an int to a string...).")
@click.option("--from", "source", metavar="BRANCH", help="Start from this branch (main or a task) instead of the current one.")
@click.option("--resume", metavar="TASK[/ID][:CHECKPOINT]",
              help="Start from a finished task's folder (or its sub-task ID's config) and resume from its checkpoint.")
@click.option("--worktree", is_flag=True, help="Create the task in a work tree of its own, <repo>.tasks/<branch> (or --worktree-path).")
@click.option("--worktree-path", metavar="PATH", help="Create the task in a work tree of its own at PATH (a new folder).")
@DRY_RUN
def start_task(desc: str | None, overrides: tuple[str, ...], add: bool, retype: bool, source: str | None, resume: str | None,
               worktree: bool, worktree_path: str | None, dry_run: bool, sweeps: tuple[str, ...]) -> int:
    """Create a task branch task-<VERSION>-<UTC time>-<DESC> with a copy of the template task, and commit it.

    DESC is a few words (slugged); without it the --set overrides name the task (lr0.01-bs64).
    """
    from dlgit.tasks import flows as task_flows

    where = worktree_path if worktree_path is not None else ("" if worktree else None)
    return run_action(lambda: task_flows.start_task(desc, list(overrides), add, source, resume, where, dry_run, list(sweeps),
                                                    retype=retype))


@main.command("finish-task", epilog=FLOW_CODES)
@click.option("-m", "--message", help="The results commit's message (default: task: results of <desc>, with a run summary).")
@click.option("--no-dev", is_flag=True, help="Merge into main only.")
@click.option("--keep-branch", is_flag=True, help="Keep the task branch after the merges.")
@click.option("--keep-worktree", is_flag=True, help="Keep the task's own work tree after the merges.")
@click.option("--accept-debug", is_flag=True, help="Finish even when the last run was a --debug or a dirty run (the commit says so).")
@DRY_RUN
def finish_task(message: str | None, no_dev: bool, keep_branch: bool, keep_worktree: bool, accept_debug: bool, dry_run: bool) -> int:
    """Commit the task's results (big files through DVC), merge it into main and dev."""
    from dlgit.tasks import flows as task_flows

    return run_action(lambda: task_flows.finish_task(message, not no_dev, keep_branch, keep_worktree, dry_run,
                                                     accept_debug=accept_debug))


@main.group()
def debug() -> None:
    """Throw-away debug branches: a DEBUG copy of the template, code fixes carried to dev."""


@debug.command("start", epilog=FLOW_CODES)
@click.argument("desc", required=False)
@click.option("--from", "source", default="dev", show_default=True, metavar="BRANCH", help="dev or main.")
@DRY_RUN
def debug_start(desc: str | None, source: str, dry_run: bool) -> int:
    """Create debug-<VERSION>-<UTC time>-<DESC> with a copy of the template whose config has DEBUG: true."""
    from dlgit.tasks import flows as task_flows

    return run_action(lambda: task_flows.debug_start(desc, source, dry_run))


@debug.command("finish", epilog=FLOW_CODES)
@click.option("--to", "target", metavar="BRANCH", help="Where the code changes go (default: dev).")
@click.option("--keep-logs", is_flag=True, help="Commit the debug folder's logs on the debug branch and keep it.")
@DRY_RUN
def debug_finish(target: str | None, keep_logs: bool, dry_run: bool) -> int:
    """Carry the code changes made outside the debug folder to dev (uncommitted), through the stash."""
    from dlgit.tasks import flows as task_flows

    return run_action(lambda: task_flows.debug_finish(target, keep_logs, dry_run))


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
@click.option("--only", multiple=True, metavar="ID", help="Sub-tasks: run only this one (repeatable), done or not.")
@click.option("--retry-failed", is_flag=True, help="Sub-tasks: run the failed ones again too.")
@click.option("-j", "--jobs", type=int, default=None, metavar="N",
              help="Sub-tasks: run N at once (default: 1, or one per --gpus); their output goes to their logs.")
@click.option("--gpus", metavar="0,1,...", help="Sub-tasks: pin each to one of these GPUs (CUDA_VISIBLE_DEVICES).")
@click.option("--fail-fast", is_flag=True, help="Sub-tasks: start no more once one fails.")
@click.pass_context
def run(ctx: click.Context, script: str | None, debug: bool, profile: bool, allow_dirty: bool, only: tuple[str, ...],
        retry_failed: bool, jobs: int | None, gpus: str | None, fail_fast: bool) -> int:
    """Run the branch's task script (default: tasks.entry) from its folder; log and record the run.

    A task with sub-tasks (start-task --sweep) runs each one not yet done, in its own folder
    subtasks/<ID>/, resuming after any kill. Arguments for the script follow `--`: dlgit run [SCRIPT] -- --lr 0.1
    """
    from dlgit.tasks import sweeprun

    args = ctx.meta.get("dlgit.script_args", [])
    sweep = None
    if only or retry_failed or jobs is not None or gpus or fail_fast:
        devices = tuple(gpu.strip() for gpu in gpus.split(",") if gpu.strip()) if gpus else ()
        sweep = sweeprun.SweepOptions(tuple(only), retry_failed, jobs if jobs is not None else max(1, len(devices)), devices, fail_fast)
    return run_action(lambda: sweeprun.run(script, args, debug, profile, allow_dirty, sweep))


@main.group(invoke_without_command=True)
@click.option("--format", "output_format", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="table for people; json or csv for scripts and spreadsheets.")
@click.pass_context
def tasks(ctx: click.Context, output_format: str) -> int:
    """Every task: state, last run, the parameters that differ from the template, metrics."""
    if ctx.invoked_subcommand is not None:
        return 0
    from dlgit.tasks import table

    return run_action(lambda: table.show(output_format))


@tasks.command("diff")
@click.argument("task_a")
@click.argument("task_b")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people, json for scripts.")
def tasks_diff(task_a: str, task_b: str, output_format: str) -> int:
    """The config and metrics values that differ between TASK_A and TASK_B (names or unique name ends)."""
    from dlgit.tasks import table

    return run_action(lambda: table.diff(task_a, task_b, output_format))


@main.command(epilog="Exit codes: 0 done, 1 a figure script or the document failed (the rest is made), 2 bad input or, "
                     "with --require-pdf, no PDF could be made.")
@click.option("--collect-only", is_flag=True, help="Write reports/summary/ (tasks.csv, tasks.json, figure data) and stop.")
@click.option("--no-pdf", is_flag=True, help="Collect and draw the figures, but do not compile reports/report.typ.")
@click.option("--require-pdf", is_flag=True, help="Fail (exit 2) when the PDF cannot be made (the report extra missing): for CI.")
@click.option("--branches", is_flag=True, help="Also read the task branches not merged into this branch.")
@click.option("--commit", is_flag=True, help="Commit reports/ on dev as `docs: task report at <commit>`.")
def report(collect_only: bool, no_pdf: bool, require_pdf: bool, branches: bool, commit: bool) -> int:
    """Collect every task's results into reports/summary/, draw the summary figures, compile reports/report.pdf.

    Reads the task folders of the current branch (merged tasks) from git, never by checking out.
    Figures (reports/figures/*.py) and the PDF need: pip install 'dlgit[report]'.
    """
    from dlgit.tasks import report as report_module

    return run_action(lambda: report_module.report(collect_only, no_pdf, require_pdf, branches, commit))


# --- the cluster ---------------------------------------------------------------------------------


@main.command(epilog="Exit codes: 0 submitted (or, with --dry-run, planned), 2 refused (nothing submitted).")
@click.option("--executor", type=click.Choice(["slurm", "local"]), help="Where the jobs run (default: cluster.executor, slurm).")
@click.option("--partition", metavar="P", help="The Slurm partition (default: cluster.partition, or the cluster's default).")
@click.option("--time", "time_min", type=click.IntRange(min=1), metavar="MIN", help="Job time limit, minutes (default: cluster.time).")
@click.option("--gpus", type=click.IntRange(min=0), metavar="N", help="GPUs per job (default: cluster.gpus).")
@click.option("--cpus", type=click.IntRange(min=1), metavar="N", help="CPUs per job (default: cluster.cpus).")
@click.option("--mem", metavar="M", help="Memory per job, as Slurm reads it: 16G (default: cluster.mem).")
@click.option("--array-parallelism", type=click.IntRange(min=1), metavar="P", help="Array elements running at once.")
@click.option("--sbatch", "sbatch", multiple=True, metavar="KEY=VALUE", help="Another #SBATCH option (account=lab). Repeatable.")
@click.option("--max-requeues", type=click.IntRange(min=0), metavar="N",
              help="Requeues after preemption or time limit, each resuming from the newest checkpoint (default: 3).")
@click.option("--allow-dirty", is_flag=True, help="Submit with uncommitted changes (the job still runs the commit; recorded).")
@DRY_RUN
def submit(executor: str | None, partition: str | None, time_min: int | None, gpus: int | None, cpus: int | None, mem: str | None,
           array_parallelism: int | None, sbatch: tuple[str, ...], max_requeues: int | None, allow_dirty: bool, dry_run: bool) -> int:
    """Run the task as a Slurm job (its sub-tasks as one job array) through submitit, in a snapshot of HEAD.

    Each job runs `dlgit run` (one sub-task: `dlgit run --only ID`) in a detached work tree of the
    commit checked out now: later edits and commits change nothing a queued job runs.
    """
    from dlgit.tasks import submit as submit_module

    options = submit_module.Options(executor, partition, time_min, gpus, cpus, mem, array_parallelism, sbatch, max_requeues,
                                    allow_dirty, dry_run)
    return run_action(lambda: submit_module.submit(options))


@main.command()
@click.argument("target", metavar="[TASK[/SUBTASK]]", required=False)
def cancel(target: str | None) -> int:
    """Cancel through the scheduler the queued and running jobs of TASK[/SUBTASK] (default: the checked-out
    task; with /SUBTASK, that sub-task's array element only)."""
    from dlgit.tasks import jobs

    return run_action(lambda: jobs.cancel(target))
