"""The task flows: `dlgit start-task`, `dlgit finish-task`, `dlgit debug start|finish` (SPEC §5), as plans run by the one runner.

start-task makes a task branch from main (or a task), copies the template (or the source task's
folder, outputs left out) into tasks/<branch>/, applies the --set overrides keeping the file's
text, and commits `task: start <desc>`; with --worktree all of it happens in a work tree of its
own, so that a run of hours does not hold the researcher's checkout. finish-task commits the
task's results (big files through DVC), then merges the task into main and dev; a branch checked
out in another work tree is merged there. debug start/finish make a throw-away debug branch and
carry the code changes made on it (not its logs) to dev through the stash.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from dlgit import dvccache
from dlgit.config import Settings
from dlgit.errors import UsageError
from dlgit.flows import plans
from dlgit.flows.dev import Session
from dlgit.flows.runner import Flow
from dlgit.flows.steps import (
    AddWorktree,
    Commit,
    CopyFolder,
    CreateBranch,
    DeleteBranch,
    Detach,
    DropBranch,
    DvcAdd,
    Merge,
    MergeRef,
    MoveAside,
    RemoveWorktree,
    ShareDvcCache,
    Stash,
    StashPop,
    Step,
    Switch,
    Verify,
    dvc_command,
)
from dlgit.git import Git
from dlgit.model import Branch, Kind, parse_branch, read_version, rewrite_version, run_branch_name, slugify, task_folder
from dlgit.policy.rules import too_large
from dlgit.shell import escape, quote
from dlgit.tasks.sweep import SUBTASKS, has_sweep
from dlgit.tasks.sweep import declare as declare_sweep
from dlgit.tasks.sweep import running as running_subtasks
from dlgit.tasks.sweep import summary as sweep_summary

RESUME_KEY = "RESUME"
PACK_FROM = 100  # results from which their commit stages them into one pack file (one file per object costs ~0.5 ms each)


# --- start-task ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    branch: str  # main or a task branch: where the new task starts
    commit: str
    folder: str  # the folder copied: the template, or a task's folder
    resume: str | None = None  # --resume TASK[:CHECKPOINT], TASK's full name


def _core_version(text: str, template: str, origin: Source) -> str:
    """The copy's config text with VERSION set to the core it runs on (the template's at the start
    commit): a resumed task's folder carries its old core's VERSION, which is not this task's."""
    core = read_version(template)
    if core is None:
        raise UsageError(f"the template config at {origin.branch} holds no `VERSION: X.Y.Z` line; a task is named by its core version.")
    if read_version(text) == core:
        return text
    try:
        return rewrite_version(text, core)
    except ValueError as exc:
        raise UsageError(f"{origin.folder}/config.yaml at {origin.branch}: cannot set VERSION to the core's {core} ({exc}).") from None


def start_task(desc: str | None, overrides: list[str], add: bool, source: str | None, resume: str | None,
               worktree: str | None, dry_run: bool, sweeps: list[str] | None = None, retype: bool = False) -> int:
    session = Session()
    s, repo = session.settings, session.repo
    session.require_clean("start-task")
    origin = _source(session, source, resume)
    resumed = _resumed_folder(origin.resume, origin)
    config_path = f"{resumed}/config.yaml"
    if resumed != origin.folder and repo.show_file(origin.commit, config_path) is None:
        raise UsageError(f"--resume {quote(resume or '')}: there is no sub-task folder {quote(resumed)}/ on {origin.branch} "
                         "(finish-task commits a task's sub-tasks; `dlgit tasks` lists them).")
    text = _core_version(_read_text(repo, origin.commit, config_path), _read_text(repo, origin.commit, s.template_config), origin)
    version = read_version(text)
    assert version is not None
    text = _apply(text, overrides, add, _checkpoint(repo, origin.resume, origin, resumed, s.tasks_dir) if origin.resume else None,
                  retype)
    if sweeps or has_sweep(text):
        text = declare_sweep(text, sweeps or [], add, s.max_subtasks)
    slug = slugify(desc) if desc else _slug([*overrides, *(sweeps or [])])
    branch = run_branch_name(Kind.TASK, version, slug or "run", s)
    parsed = parse_branch(branch, s)
    if parsed.kind is not Kind.TASK:
        raise UsageError(f"'{escape(branch)}' is no valid task branch name ({parsed.problem}); "
                         "give a DESC of letters, digits, '.' and '_'.")
    if repo.rev(f"refs/heads/{branch}") is not None:
        raise UsageError(f"a branch {branch} exists already (two starts in the same second?); try again.")
    _refuse_what_the_steps_would(branch, parsed, text, s)
    dest = task_folder(branch, s)
    path = _worktree_path(repo, branch, worktree) if worktree is not None else None
    where = str(path) if path else None
    steps: list[Step] = [AddWorktree(str(path), branch, origin.commit) if path else CreateBranch(branch, origin.commit)]
    if path and repo.show_file(origin.commit, ".dvc/config") is not None:
        steps.append(ShareDvcCache(str(path), str(dvccache.shared_cache(repo))))
    steps += [CopyFolder(origin.commit, origin.folder, dest, [*s.task_outputs, *s.task_metrics, SUBTASKS], {"config.yaml": text}, where),
              Commit(f"task: start {parsed.desc}", [dest], worktree=where)]
    hint = f"cd {quote(str(path))} && " if path else ""
    flow = Flow("start-task", f"{branch} from {origin.branch}", steps, plans.heads(branch),
                summary=[f"task {branch} is ready in {dest}/", f"run it: {hint}dlgit run", "when it is done: dlgit finish-task"])
    return session.runner.start(flow, dry_run)


MAX_NAME_BYTES = 255 - len(".lock")  # git keeps a branch as a file (and its lock beside it); the task folder is one too


def _refuse_what_the_steps_would(branch: str, parsed: Branch, config_text: str, settings: Settings) -> None:
    """What git or the hooks would refuse at the branch or commit step, refused before step 1:
    a name too long for a file, a config.yaml the task-config rule refuses."""
    from dlgit.policy.rules import config_problems

    size = len(branch.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise UsageError(f"the task branch name would be {size} bytes long, and git keeps a branch as a file of at most "
                         f"{MAX_NAME_BYTES} bytes: give a shorter DESC (at most {MAX_NAME_BYTES - size + len(parsed.desc or '')} "
                         "characters).")
    problems = config_problems(config_text.encode("utf-8"), parsed, settings)
    if problems:
        raise UsageError("the task's config.yaml would be refused at its commit (task-config): " + "; ".join(problems)
                         + ". Fix the --set values (VERSION is always the core's; a debug run is `dlgit run --debug`).")


def _source(session: Session, source: str | None, resume: str | None) -> Source:
    s, repo = session.settings, session.repo
    name = source or repo.current_branch()
    if name is None:
        raise UsageError(f"HEAD is detached; start a task from {s.main} or a task branch (--from BRANCH).")
    branch = parse_branch(name, s)
    if branch.kind not in (Kind.MAIN, Kind.TASK):
        raise UsageError(f"a task starts from {s.main} or another task branch, not from {branch.kind.value} branch '{escape(name)}': "
                         f"its result must belong to a released core version. `git switch {s.main}` (or pass --from {s.main}), "
                         "then dlgit start-task again.")
    commit = session.tip(name, "a task starts from")
    folder = s.template_dir if branch.kind is Kind.MAIN else task_folder(name, s)
    if not resume:
        return Source(name, commit, folder)
    given, colon, checkpoint = resume.partition(":")
    given, slash, subtask = given.partition("/")
    task = _resume_task(repo, commit, given, name, s)
    return Source(name, commit, _resume_folder(repo, commit, task, name, s), f"{task}{slash}{subtask}{colon}{checkpoint}")


def _resume_task(repo: Git, commit: str, given: str, where: str, settings: Settings) -> str:
    """--resume's TASK: a task's full name, or a unique end of one (its desc, as `tasks diff` takes)."""
    if parse_branch(given, settings).kind is Kind.TASK:
        return given
    listing = repo.objects([f"{commit}:{settings.tasks_dir}"]).get(f"{commit}:{settings.tasks_dir}")
    names = [entry.name for entry in (listing.entries() if listing else []) if entry.is_tree
             and parse_branch(entry.name, settings).kind is Kind.TASK and entry.name.endswith(f"-{given}")]
    if len(names) == 1:
        return names[0]
    if names:
        raise UsageError(f"--resume {quote(given)} is the end of several tasks' names on {where} ({', '.join(sorted(names))}); "
                         "give more of the name.")
    raise UsageError(f"--resume names '{escape(given)}', which is no task on {where} (give a finished task's name or its desc; "
                     "`dlgit tasks` lists them).")


def _resume_folder(repo: Git, commit: str, task: str, where: str, settings: Settings) -> str:
    folder = task_folder(task, settings)
    if repo.show_file(commit, f"{folder}/config.yaml") is None:
        raise UsageError(f"{folder}/ is not on {where}: a task resumes from a finished task, merged into {where} "
                         f"(`dlgit finish-task` on {task} first).")
    return folder


def _read_text(repo: Git, commit: str, path: str) -> str:
    raw = repo.show_file(commit, path)
    if raw is None:
        raise UsageError(f"there is no {path} at that commit; `dlgit init` writes the template task.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text.") from None


def _apply(text: str, overrides: list[str], add: bool, resume: str | None, retype: bool = False) -> str:
    """The copy's config.yaml: the overrides, and RESUME when resuming; checked before anything moves."""
    from dlgit.tasks.yamledit import EditError, UnknownKey, apply_overrides, retyped, set_key

    try:
        changes = [] if retype else retyped(text, overrides)
        if changes:
            raise UsageError("--set would change the type of a value (a script reading it would break, or read it wrong):\n"
                             + "\n".join(f"  {change}" for change in changes)
                             + "\nQuote a string on purpose, fix the value, or pass --retype to change the type.")
        text = apply_overrides(text, overrides, add=add)
        if resume:
            text = set_key(text, RESUME_KEY, resume)
    except UnknownKey as exc:
        raise UsageError(f"config.yaml: {exc}; pass --add to add it.") from None
    except EditError as exc:
        raise UsageError(f"config.yaml: {exc}.") from None
    return text


def _resumed_folder(resume: str | None, origin: Source) -> str:
    """The folder whose config and checkpoint a task starts from: --resume TASK/ID names a sub-task's."""
    subtask = resume.partition(":")[0].partition("/")[2] if resume else ""
    return f"{origin.folder}/{SUBTASKS}/{subtask}" if subtask else origin.folder


def _checkpoint(repo: Git, resume: str, origin: Source, folder: str, tasks_dir: str) -> str:
    """RESUME for --resume TASK[/ID][:CHECKPOINT]: the checkpoint as a path from the new task's folder
    (beside it under tasks/); without CHECKPOINT the last one (by name) in the checkpoints/ of TASK
    (or of its sub-task ID), a DVC pointer standing for its file."""
    task, _, checkpoint = resume.partition(":")
    beside = f"../{folder.removeprefix(tasks_dir + '/')}"
    if checkpoint:
        return f"{beside}/{checkpoint.removeprefix(folder + '/')}"
    listing = repo.objects([f"{origin.commit}:{folder}/checkpoints"]).get(f"{origin.commit}:{folder}/checkpoints")
    names = sorted(entry.name.removesuffix(".dvc") for entry in (listing.entries() if listing else []) if not entry.is_tree)
    names = [name for name in names if name != ".gitignore"]
    if not names:
        raise UsageError(f"{folder}/checkpoints/ holds no checkpoint; name one: --resume {task}:checkpoints/FILE")
    return f"{beside}/checkpoints/{names[-1]}"


def _slug(overrides: list[str]) -> str:
    from dlgit.tasks.yamledit import desc_slug

    return desc_slug(overrides) if overrides else ""


def _worktree_path(repo: Git, branch: str, given: str) -> Path:
    """--worktree [PATH]: PATH, or a sibling folder <repo>.tasks/<branch>; it must not exist yet."""
    assert repo.root is not None
    path = Path(given).resolve() if given else repo.root.parent / f"{repo.root.name}.tasks" / branch
    if path.exists():
        raise UsageError(f"{path} exists already; a task's work tree needs a new folder (--worktree PATH).")
    return path


# --- finish-task -----------------------------------------------------------------------------------


def finish_task(message: str | None, dev: bool, keep_branch: bool, keep_worktree: bool, dry_run: bool,
                accept_debug: bool = False) -> int:
    from dlgit.tasks import jobs
    from dlgit.tasks.lock import run_active
    from dlgit.tasks.run import restore_debug_config

    session = Session()
    s, repo = session.settings, session.repo
    assert repo.root is not None
    name = repo.current_branch()
    branch = parse_branch(name, s) if name else None
    if branch is None or branch.kind is not Kind.TASK:
        raise UsageError(f"finish-task runs on a task branch (you are on {name or 'a detached HEAD'}); "
                         "`git switch task-...` first, or `dlgit tasks` to list them.")
    folder = task_folder(branch.name, s)
    holder = run_active(branch.name, repo.common_dir)
    if holder:
        raise UsageError(f"a run of {branch.name} is active (pid {holder.pid} on {holder.host}, since {holder.started}); "
                         "let it end (or stop it), then finish.")
    if busy := running_subtasks(repo.root / folder):
        sid, record = busy[0]
        raise UsageError(f"sub-task {quote(sid)} of {branch.name} is running (pid {record.get('pid')} on {record.get('host')}, "
                         f"since {record.get('start')}){f' and {len(busy) - 1} more' if len(busy) > 1 else ''}; let them end, then finish.")
    jobs.refuse_active(repo.common_dir, branch.name)
    if not dry_run:
        jobs.collect(repo.common_dir, branch.name, folder, repo.root / folder)  # what submitted jobs left in their snapshots
    if not dry_run:
        _fill_freezes(repo, folder, s)
    if not dry_run and (restored := restore_debug_config(repo.root / folder)):  # after a crash of a --debug run
        print(f"dlgit finish-task: {restored}")
    last = _last_run(repo.root, folder)
    unfit = last.unfit() if last else []
    if unfit and not accept_debug:
        raise UsageError(f"the last run of {branch.name} ({folder}/runs/{last.stem}.yaml) was {' and '.join(unfit)}: its "
                         "results are not the task's. Run it again (`dlgit run`), then finish; or finish with these results: "
                         "dlgit finish-task --accept-debug (the results commit says so).")
    outside = [path for path in repo.changed_paths() if not path.startswith(folder + "/")]
    if outside:
        listed = "\n".join(f"  {escape(path)}" for path in outside[:20])
        raise UsageError(f"uncommitted changes outside {folder}/ (a task's results live in its folder only):\n{listed}\n"
                         "Commit them where they belong, or `git stash` them, then finish again.")
    results = [path for path in repo.changed_paths(untracked=True) if path.startswith(folder + "/")]
    big = _big_files(repo.root, results, s)
    if big and not (repo.root / ".dvc" / "config").is_file():
        raise UsageError(_no_dvc(big, branch, _rerun(repo.root, folder, branch, s), s))
    accepted = "\n".join(f"Accepted: {why} (--accept-debug)" for why in unfit)
    summary = sweep_summary(Path(repo.root, folder)) or _run_summary(last)
    commit_message = "\n\n".join(part for part in (message or f"task: results of {branch.desc}",
                                                      "" if message else summary, accepted) if part)
    leaving = repo.git_dir != repo.common_dir and not keep_worktree  # the task's own work tree: it goes once the results are merged
    steps = _finish_steps(session, branch, folder, results, big, commit_message, dev, keep_branch, leaving)
    if leaving:
        steps.append(RemoveWorktree(str(repo.root), branch.name))
    flow = Flow("finish-task", f"results of {branch.name} into {s.main}" + (f" and {s.dev}" if dev else ""), steps,
                plans.heads(branch.name, s.main, *([s.dev] if dev else [])), keep_work=branch.name,
                summary=[f"{branch.name}: results on {s.main}" + (f" and {s.dev}" if dev else "")]
                + ([_shared_how(repo.root)] if big else []))
    code = session.runner.start(flow, dry_run)
    if code == 0 and not dry_run:
        jobs.remove_snapshots(repo.common_dir, branch.name)
    return code


def _fill_freezes(repo: Git, folder: str, settings: Settings) -> None:
    """Each run's pip freeze beside its record, from the repository's cache (computed now when a
    short run ended before it); a run whose environment is gone is named."""
    from dlgit.tasks import run

    assert repo.root is not None
    try:
        python = run.interpreter(settings)
    except UsageError:  # tasks.python is gone: the freezes the cache holds are copied all the same
        python = None
    if lost := run.fill_freezes(repo.root / folder / "runs", run.freeze_cache(repo.common_dir), python):
        print(f"dlgit finish-task: no pip freeze for {', '.join(lost)} (its environment changed before it was computed); "
              "the run records name what ran, without the package list.")


def _finish_steps(session: Session, branch: Branch, folder: str, results: list[str], big: list[str], message: str,
                  dev: bool, keep_branch: bool, leaving: bool) -> list[Step]:
    """`leaving`: the work tree is removed after the merges (it need not check out anything)."""
    s, repo = session.settings, session.repo
    steps: list[Step] = []
    if big and repo.git_dir != repo.common_dir:  # a work tree of its own: DVC's files go to the cache all work trees share
        steps.append(ShareDvcCache(str(repo.root), str(dvccache.shared_cache(repo))))
    steps += [DvcAdd(big)] if big else []
    if results:
        steps.append(Commit(message, [folder], pack=len(results) >= PACK_FROM))
    checked_out = {name: str(path) for name, path in repo.worktrees().items()}
    here = str(repo.root)
    befores = []
    for target in (s.main, *([s.dev] if dev else [])):
        befores.append([target, session.tip(target, "the task is merged into")])
        elsewhere = checked_out.get(target)
        if elsewhere and Path(elsewhere) != Path(here):
            if Git(elsewhere).changed_paths():
                raise UsageError(f"{target} is checked out in {elsewhere}, which has uncommitted changes; the merge happens there "
                                 "when it is clean: commit or stash them there first.")
            steps += [*_back_merge(repo, s, befores, elsewhere),
                      Merge(branch.name, target, f"task: merge {branch.name}", worktree=elsewhere)]
        else:  # checked out nowhere: merged without a checkout (two full checkouts were most of finish-task's time)
            steps += [*_back_merge(repo, s, befores, by_ref=True), MergeRef(branch.name, target, f"task: merge {branch.name}")]
    if not keep_branch:
        # off the task branch, to main: its merged tree is the task's plus what main gained, so the switch writes little
        free = s.main not in checked_out and not leaving
        steps += [Switch(s.main) if free else Detach(), DeleteBranch(branch.name)]
    steps.append(Verify(befores))
    return steps


def _back_merge(repo: Git, s: Settings, befores: list[list[str]], worktree: str | None = None, by_ref: bool = False) -> list[Step]:
    """Before the task goes into dev: main as it was before the task (a release made by hand and not
    merged back yet), so that the task's merge brings dev only the task. `by_ref`: dev is checked
    out nowhere, so it is merged without a checkout."""
    tips = dict(befores)
    main, dev = tips.get(s.main), tips.get(s.dev)
    if main is None or dev is None or repo.is_ancestor(main, dev):
        return []
    if by_ref:
        return [MergeRef(main, s.dev, plans.back_merge_message(s))]
    return [Merge(main, s.dev, plans.back_merge_message(s), worktree=worktree)]


def _shared_how(root: Path) -> str:
    """Where the big files are, and how to share them: `dvc push` once a remote is configured."""
    if dvccache.has_remote(root):
        return f"big files are in DVC's cache; share them with: {' '.join(dvc_command('push'))}"
    return "big files are in the repository's DVC cache (on this machine only); to share them, add a remote: dvc remote add -d NAME URL"


def _big_files(root: Path, paths: list[str], settings: Settings) -> list[str]:
    """The results git may not take (large-file's own test): they go through DVC."""
    found = []
    for path in paths:  # thousands of results: one stat each, no Path objects
        if path.endswith(".dvc"):
            continue
        try:
            info = os.stat(os.path.join(root, path))
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and too_large(path, info.st_size, settings):
            found.append(path)
    return found


def _rerun(root: Path, folder: str, branch: Branch, settings: Settings) -> str:
    """The start-task command that runs the task again on today's core: its desc, and --set for
    each config value that differs from the template's."""
    import json

    import yaml

    from dlgit import safeyaml
    from dlgit.tasks.table import flatten

    def config(path: Path) -> dict[str, object]:
        try:
            return flatten(safeyaml.load(safeyaml.read_file(path)))
        except (OSError, ValueError, yaml.YAMLError):
            return {}

    task, template = config(root / folder / "config.yaml"), config(root / settings.template_config)
    sets = [f"--set {quote(f'{key}={value if isinstance(value, str) else json.dumps(value)}')}" for key, value in task.items()
            if key not in ("VERSION", "RESUME") and template.get(key, object()) != value]
    return " ".join([f"git switch {quote(settings.main)} && dlgit start-task", quote(branch.desc or "run"), *sets])


def _no_dvc(big: list[str], branch: Branch, rerun: str, settings: Settings) -> str:
    listed = "\n".join(f"  {escape(path)}" for path in big[:20])
    return (f"these results are too big for git, and this repository does not use DVC yet:\n{listed}\n"
            "Nothing was committed. A task's results belong to the core it ran on, and that core has no DVC: set DVC up on "
            "dev and release it, then run the task again on the new core (same --set values):\n"
            f"  git switch {settings.dev} && dlgit init --dvc\n"
            "  dlgit release\n"
            f"  {rerun}\n"
            f"Or finish {quote(branch.name)} without them: move them out of its folder (they stay on this machine only), "
            "then dlgit finish-task.")


class LastRun(NamedTuple):
    stem: str
    record: dict[str, Any] | None  # None: unreadable
    count: int  # runs recorded in all

    def unfit(self) -> list[str]:
        """Why this run's results are not the task's: a --debug run, a dirty one."""
        record = self.record or {}
        return [why for why, flag in (("a --debug run (DEBUG: true)", record.get("debug")),
                                      ("a dirty run (uncommitted changes outside the task folder)", record.get("dirty_outside_task")))
                if flag]


def _last_run(root: Path, folder: str) -> LastRun | None:
    """The task's last run record (runs/*.yaml, read bounded)."""
    import yaml

    from dlgit import safeyaml
    from dlgit.tasks.table import RECORD_SUFFIX, _is_record, _run_order

    runs = root / folder / "runs"
    stems = sorted((path.name[:-len(RECORD_SUFFIX)] for path in runs.iterdir() if _is_record(path.name)) if runs.is_dir() else [],
                   key=_run_order)
    if not stems:
        return None
    try:
        record = safeyaml.load(safeyaml.read_file(runs / f"{stems[-1]}{RECORD_SUFFIX}"))
    except (OSError, ValueError, yaml.YAMLError):
        record = None
    return LastRun(stems[-1], record if isinstance(record, dict) else None, len(stems))


def _run_summary(last: LastRun | None) -> str:
    """About the task's last run, for the results commit's body."""
    if last is None:
        return "no run recorded"
    if last.record is None:
        return f"last run: {last.stem} (unreadable)"
    record = last.record
    return (f"last run: {last.stem}, exit {record.get('exit_code')}, {record.get('duration_s')} s, "
            f"on {record.get('host')} at {str(record.get('commit', ''))[:12]}, {last.count} run(s) in all")


# --- debug start / finish --------------------------------------------------------------------------


def debug_start(desc: str | None, source: str, dry_run: bool) -> int:
    from dlgit.tasks.yamledit import EditError, set_key

    session = Session()
    s, repo = session.settings, session.repo
    session.require_clean("debug start")
    if source not in (s.dev, s.main):
        raise UsageError(f"a debug branch starts from {s.dev} or {s.main}, not from '{escape(source)}'.")
    commit = session.tip(source, "a debug branch starts from")
    text = _read_text(repo, commit, s.template_config)
    version = session.version_at(commit, source)
    try:
        text = set_key(text, "DEBUG", True)
    except EditError as exc:
        raise UsageError(f"{s.template_config}: {exc}.") from None
    branch = run_branch_name(Kind.DEBUG, version, slugify(desc or "") or "debug", s)
    parsed = parse_branch(branch, s)
    if parsed.kind is not Kind.DEBUG:
        raise UsageError(f"'{escape(branch)}' is no valid debug branch name ({parsed.problem}).")
    dest = task_folder(branch, s)
    steps: list[Step] = [CreateBranch(branch, commit),
                         CopyFolder(commit, s.template_dir, dest, list(s.task_outputs), {"config.yaml": text}),
                         Commit(f"chore: debug {parsed.desc}", [dest])]
    flow = Flow("debug start", f"{branch} from {source}", steps, plans.heads(branch),
                summary=[f"debug in {dest}/ (DEBUG: true): dlgit run; fix the code anywhere; then: dlgit debug finish"])
    return session.runner.start(flow, dry_run)


def debug_finish(target: str | None, keep_logs: bool, dry_run: bool) -> int:
    session = Session()
    s, repo = session.settings, session.repo
    name = repo.current_branch()
    branch = parse_branch(name, s) if name else None
    if branch is None or branch.kind is not Kind.DEBUG:
        raise UsageError(f"debug finish runs on a debug branch (you are on {name or 'a detached HEAD'}).")
    into = target or s.dev
    session.tip(into, "the debug branch's code changes go to")
    if repo.in_progress() is not None:
        raise UsageError(f"a {repo.in_progress().value} is in progress; finish it first.")  # type: ignore[union-attr]
    folder = task_folder(branch.name, s)
    changed = repo.changed_paths(untracked=True)
    logs = [path for path in changed if path.startswith(folder + "/")]
    code = [path for path in changed if not path.startswith(folder + "/")]
    tip = session.tip(branch.name, "is to be finished")
    own = _only_dlgit_commits(repo, branch.name, tip, s)
    steps: list[Step] = []
    big = _big_files(repo.root, logs, s) if repo.root is not None and not keep_logs else []
    aside = repo.common_dir.resolve() / "dlgit" / "set-aside" / branch.name
    if big:  # a stash would copy them into git's objects
        steps.append(MoveAside(big, str(aside)))
    if logs and keep_logs:
        steps.append(Commit(f"chore: debug logs of {branch.desc}", [folder]))
    elif set(logs) - set(big):
        steps.append(Stash(f"dlgit: the logs of {branch.name}", [folder], save="logs"))
    if code:
        steps.append(Stash(f"dlgit: code changes made on {branch.name}", [".", f":(exclude){folder}"], save="code"))
    steps.append(Switch(into))
    if not keep_logs and own:
        steps.append(DropBranch(branch.name, tip))
    if code:
        steps.append(StashPop("@code"))
    kept = "" if not keep_logs and own else f"; {branch.name} is kept (" + ("its logs are committed there)" if keep_logs else
                                                                              "it holds commits of yours)")
    summary = [f"on {into}: the code changes made while debugging, uncommitted{kept}"]
    if set(logs) - set(big) and not keep_logs:
        summary.append("the debug folder's logs are set aside in the stash (`git stash list`), not on any branch")
    if big:
        summary.append(f"its big files ({len(big)}) are set aside outside git, in {aside}")
    flow = Flow("debug finish", f"carry the code changes of {branch.name} to {into}", steps, plans.heads(branch.name, into),
                summary=summary)
    return session.runner.start(flow, dry_run)


def _only_dlgit_commits(repo: Git, branch: str, tip: str, settings: Settings) -> bool:
    """Does the debug branch hold nothing but dlgit's own commits (its start and logs)?"""
    own = re.compile(r"^chore: debug ")
    messages = repo.log_messages([tip, f"^{settings.dev}", f"^{settings.main}"])
    return all(own.match(message) for _, message in messages)

