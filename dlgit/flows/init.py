"""`dlgit init [--dvc] [--commitizen] [--dry-run]`: set a repository up for the branch model, in an
empty folder, an empty repository or one with history; run again, it adds only what is missing.

It writes the template task (tasks/main/config.yaml and train.py), a .dlgit.yaml with every
default commented out and a .gitignore; installs the hooks (or, where the pre-commit framework
is used, adds dlgit's entries to .pre-commit-config.yaml and prints the one `pre-commit install`
command); optionally runs `dvc init` and writes commitizen's configuration; and creates dev. In an
empty repository all of it is the root commit of main (a repository has to begin somewhere); in
one with history it is committed on dev, through the hooks, and reaches main with the next
release: init never commits on main otherwise.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dlgit import config, install
from dlgit.errors import UsageError
from dlgit.flows import plans
from dlgit.flows.runner import DONE, Flow, FlowRunner
from dlgit.flows.steps import AppendText, Commit, CommitizenConfig, CreateBranch, DvcInit, InstallHooks, Step, Switch, WriteFile
from dlgit.git import Git, require_version

TEMPLATE_CONFIG = """\
# The template task: `dlgit start-task` copies this folder into tasks/<task branch>/ for every run,
# and `dlgit start-task --set KEY=VALUE` changes values in the copy (comments and order are kept).
VERSION: 0.1.0      # the core version (model/, data/, ...): `dlgit release` bumps it and tags vX.Y.Z
DEBUG: false        # true: a small data set and quick settings, to check that the code runs (`dlgit run --debug`)
RESUME: null        # a checkpoint to resume training (or to fine-tune) from; null: start afresh
TRAIN: true         # run the training loop
TEST: false         # run the evaluation
MODEL_PATH: null    # the model file to load (a path relative to the task folder), or null
RANDOM_SEED: 42     # the seed of every random generator, so that a run can be repeated
"""

TEMPLATE_TRAIN = '''\
"""The template task's entry point. `dlgit run` runs it inside tasks/<branch>/, with DLGIT_CONFIG
naming the config to read (a DEBUG copy under `dlgit run --debug`) and its output tee'd into logs/."""

import os
import random

import yaml


def main() -> None:
    with open(os.environ.get("DLGIT_CONFIG", "config.yaml"), encoding="utf-8") as file:
        config = yaml.safe_load(file)
    random.seed(config["RANDOM_SEED"])
    print(f"core version {config['VERSION']}, debug {config['DEBUG']}, resume from {config['RESUME']}")
    if config["TRAIN"]:
        print("train: put the training loop here (checkpoints go into checkpoints/, results into outputs/)")
    if config["TEST"]:
        print("test: put the evaluation here")


if __name__ == "__main__":
    main()
'''

GITIGNORE = """\
# written by dlgit init: what never belongs in git
__pycache__/
*.py[cod]
.ipynb_checkpoints/
# runs started outside a task folder (a task keeps its results in tasks/<branch>/, big files through DVC)
/checkpoints/
/outputs/
/wandb/
/lightning_logs/
"""


def dvc_available() -> bool:
    if shutil.which("dvc"):
        return True
    import importlib.util

    return importlib.util.find_spec("dvc") is not None


@dataclass(frozen=True)
class Missing:
    files: dict[str, str]  # path -> content, for those that are not there
    gitignore: str | None  # the .gitignore lines to add (the whole file when there is none)
    hooks: bool  # dlgit's hooks need installing
    framework: Path | None  # .pre-commit-config.yaml, when the repository uses the framework
    framework_entries: str | None  # the text to add to it
    dvc: bool
    commitizen: bool
    dev: bool  # dev is to be created


def init(dvc: bool, commitizen: bool, dry_run: bool, report: bool = False) -> int:
    require_version()
    repo = _repository(dry_run)
    if repo is None:
        return DONE
    settings = config.load(repo.root)
    runner = FlowRunner(repo)
    runner.refuse_if_unfinished()
    runner.require_clean("init")
    if dvc and not dvc_available():
        raise UsageError("--dvc needs DVC: pip install dvc (or pip install 'dlgit[dvc]'), then run dlgit init --dvc again.")
    missing = _missing(repo, settings, dvc, commitizen, report)
    flow = _plan(repo, settings, missing)
    if flow is None:
        print("dlgit init: nothing to do: the template task, settings, hooks and dev are all here.")
        return DONE
    code = runner.start(flow, dry_run)
    if code == DONE and not dry_run and missing.framework is not None:
        print(f"dlgit init: now install the framework's hook types: {install.framework_install_command()}")
    return code


def _repository(dry_run: bool) -> Git | None:
    """The repository here; in a folder that is none yet, `git init` makes one (--dry-run: says so)."""
    try:
        return Git.open()
    except UsageError:
        if not Path.cwd().is_dir() or (Path.cwd() / ".git").exists():
            raise
    main = config.load(Path.cwd()).main
    print(f"$ git init -b {main}")
    if dry_run:
        print("dlgit init --dry-run: this folder is no git repository yet; the plan then is that of an empty repository.")
        return None
    proc = subprocess.run(["git", "init", "-q", "-b", main], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise UsageError(f"git init failed: {proc.stderr.strip()}")
    return Git.open()


class Landing:
    """What the setup is judged against: the tree it will be committed onto (dev's, or HEAD's when
    dev is to be made from it), or the work tree of a repository without commits."""

    def __init__(self, repo: Git, settings: config.Settings) -> None:
        self.repo = repo
        self.commit = repo.rev(f"refs/heads/{settings.dev}") or repo.rev("HEAD")

    def text(self, path: str) -> str | None:
        if self.commit is not None:
            raw = self.repo.show_file(self.commit, path)
        else:
            assert self.repo.root is not None
            file = self.repo.root / path
            raw = file.read_bytes() if file.is_file() else None
        return None if raw is None else raw.decode("utf-8", "replace")


def _missing(repo: Git, settings: config.Settings, dvc: bool, commitizen: bool, report: bool = False) -> Missing:
    from dlgit import cz_setup

    landing = Landing(repo, settings)
    wanted = {settings.template_config: TEMPLATE_CONFIG, f"{settings.template_dir}/{settings.task_entry}": TEMPLATE_TRAIN,
              config.CONFIG_FILE: config.commented_defaults()}
    if report:
        from dlgit.tasks.report_files import starter_files

        wanted.update(starter_files(settings.template_dir))
    # Without commits, files already at these paths are the user's template: committed as they are (never overwritten).
    files = {path: text for path, text in wanted.items() if landing.commit is None or landing.text(path) is None}
    present = landing.text(".gitignore")
    lines = [line for line in GITIGNORE.splitlines() if line.startswith("#") or line not in (present or "").splitlines()]
    gitignore = GITIGNORE if present is None else ("\n".join(lines) + "\n" if any(not line.startswith("#") for line in lines) else None)
    setup = install.inspect()
    framework = setup.framework_config if setup.uses_framework else None
    framework_text = landing.text(install.FRAMEWORK_CONFIG) if framework else None
    entries = install.missing_framework_entries(framework_text, install.FRAMEWORK_CONFIG) if framework_text is not None else None
    if commitizen and framework_text is not None and not re.search(r"\bid:\s*['\"]?commitizen\b", framework_text):
        entries = (entries or "") + _commitizen_entry()  # its isolated environment needs dlgit to find cz_dlgit
    hooks = framework is None and not all(install.is_ours(setup.hooks_dir / name) for name in install.CLIENT_HOOKS)
    if hooks:
        install.refuse_foreign(setup)
    cz = commitizen and not any("cz_dlgit" in (landing.text(name) or "") for name in cz_setup.CONFIG_FILES)
    return Missing(files, gitignore, hooks, framework, entries, dvc and landing.text(".dvc/config") is None, cz,
                   repo.rev(f"refs/heads/{settings.dev}") is None)


def _commitizen_entry() -> str:
    """commitizen's own commit-msg hook, as `repos:` list text, with dlgit in its environment."""
    import yaml

    from dlgit import cz_setup

    text = yaml.safe_dump([cz_setup.precommit_hook()], sort_keys=False, default_flow_style=False)
    return "".join(f"  {line}\n" for line in text.splitlines())


def _plan(repo: Git, settings: config.Settings, missing: Missing) -> Flow | None:
    """The steps: dev (from HEAD), the hooks, then the files and one commit of exactly those paths."""
    steps: list[Step] = []
    head, branch = repo.rev("HEAD"), repo.current_branch()
    if head is not None and missing.dev:
        steps.append(CreateBranch(settings.dev, head, switch=False))
    if missing.hooks:
        steps.append(InstallHooks())
    changes, paths = _changes(repo, missing)
    if not steps and not changes:
        return None
    if changes:
        on_dev = head is not None and branch != settings.dev
        steps += [*([Switch(settings.dev)] if on_dev else []), *changes,
                  Commit("chore: set up dlgit (template task, settings, hooks)", paths, save="setup"),
                  *([Switch(branch)] if on_dev and branch else [])]
    if head is None:
        steps.append(CreateBranch(settings.dev, "@setup", switch=False))
    where = "the root commit of main" if head is None else f"a commit on {settings.dev}"
    summary = [f"dlgit is set up: {where}" + (f"; it reaches {settings.main} with the next `dlgit release`" if head else "")]
    return Flow("init", "set up dlgit here", steps, plans.heads(settings.main, settings.dev), summary=summary)


def _changes(repo: Git, missing: Missing) -> tuple[list[Step], list[str]]:
    """The steps that write files, and the paths they write (the commit takes those and no other)."""
    changes: list[Step] = [WriteFile(path, text) for path, text in missing.files.items()]
    paths = list(missing.files)
    for path, text in ((".gitignore", missing.gitignore), (missing.framework.name if missing.framework else "", missing.framework_entries)):
        if path and text:
            changes.append(AppendText(path, text))
            paths.append(path)
    if missing.commitizen:
        from dlgit import cz_setup

        assert repo.root is not None
        changes.append(CommitizenConfig())
        paths.append(cz_setup.commitizen_config(repo.root, write=False).path.name)
    if missing.dvc:
        changes.append(DvcInit())
        paths += [".dvc", ".dvcignore"]
    return changes, paths
