"""`dlgit demo`: the branch model walked through in a throw-away repository.

Every step is a real git command with dlgit's hooks in force, printed as `$ git ...` with its
output. The demo checks that each step was allowed or blocked as the model says, so it doubles as
a smoke test: exit 0 when all went as expected, 1 (with the step and the output) when not.
The repository lives in a temporary folder, removed at the end unless DLGIT_DEMO_KEEP=1.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dlgit.git import Git
from dlgit.report import paint, use_color

HOOKS = ("pre-commit", "pre-merge-commit", "commit-msg")
KEEP_VARIABLE = "DLGIT_DEMO_KEEP"
VERSION = "0.1.0"
TEMPLATE_CONFIG = """\
# the template task: every task branch starts from a copy of this folder
VERSION: 0.1.0        # the core version (tags vX.Y.Z)
DEBUG: false
RESUME: null
TRAIN: true
TEST: false
MODEL_PATH: null
RANDOM_SEED: 42
lr: 0.1
"""
TRAIN_SCRIPT = "import yaml\n\nconfig = yaml.safe_load(open('config.yaml'))\nprint('training with', config)\n"
IDENTITY = {
    "GIT_AUTHOR_NAME": "dlgit demo",
    "GIT_AUTHOR_EMAIL": "demo@dlgit.invalid",
    "GIT_COMMITTER_NAME": "dlgit demo",
    "GIT_COMMITTER_EMAIL": "demo@dlgit.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,  # no user settings (hooksPath, signing, aliases) leak in
    "GIT_EDITOR": "true",
    "GIT_TERMINAL_PROMPT": "0",
}
# Variables that would point git at another repository or index.
FOREIGN = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_REFLOG_ACTION", "GIT_PREFIX")


class StepFailed(Exception):
    """A step was allowed where the model blocks it, or the other way round."""


@contextmanager
def isolated_environment() -> Iterator[None]:
    """A fixed identity and no user/system git config for this process and the hooks it starts."""
    saved = dict(os.environ)
    os.environ.update(IDENTITY)
    extra = _source_dir()
    if extra:
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (extra, saved.get("PYTHONPATH")) if p)
    for name in FOREIGN:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _source_dir() -> str | None:
    """The folder holding this dlgit package when it is not a site-packages folder (a source checkout
    or an editable install), so that the hooks' `python -m dlgit` finds the same code; never put
    site-packages itself on PYTHONPATH, where it would come before the standard library."""
    import site

    parent = os.path.realpath(Path(__file__).resolve().parent.parent)
    site_dirs = {os.path.realpath(p) for p in [*site.getsitepackages(), site.getusersitepackages()]}
    return None if parent in site_dirs else parent


def hook_script(name: str) -> str:
    """A hook that runs dlgit with this interpreter, so no `dlgit` on PATH is needed."""
    return f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m dlgit hook {name} "$@"\n'


@dataclass
class Demo:
    root: Path
    color: bool

    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def section(self, number: int, title: str) -> None:
        self.say()
        self.say(paint(f"{number}. {title}", "bold", self.color))

    def note(self, text: str) -> None:
        self.say(paint(f"# {text}", "dim", self.color))

    def write(self, relpath: str, content: str | bytes) -> None:
        target = self.root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        self.note(f"write {relpath}")

    def git(self, *args: str, blocked: str | None = None, quiet: bool = False) -> subprocess.CompletedProcess[bytes]:
        """Run and print one git command; `blocked` names the rule that must stop it."""
        self.say(paint("$ " + shlex.join(["git", *args]), "bold", self.color))
        proc = Git(self.root).run(*args, check=False)
        output = (proc.stdout + proc.stderr).decode("utf-8", "replace").rstrip()
        if output and not quiet:
            self.say("\n".join("    " + line for line in output.splitlines()))
        self._expect(args, proc.returncode, output, blocked)
        return proc

    def _expect(self, args: tuple[str, ...], code: int, output: str, blocked: str | None) -> None:
        command = shlex.join(["git", *args])
        if blocked is None and code != 0:
            raise StepFailed(f"`{command}` should have been allowed but exited {code}:\n{output}")
        if blocked is None:
            return
        if code == 0:
            raise StepFailed(f"`{command}` should have been blocked by {blocked} but was allowed")
        if f"✗ {blocked}" not in output:
            raise StepFailed(f"`{command}` failed ({code}) but not because of {blocked}:\n{output}")
        self.say(paint(f"    -> blocked by {blocked}, as the model says", "yellow", self.color))

    def allowed(self, *args: str) -> None:
        self.git(*args)
        self.say(paint("    -> allowed", "green", self.color))


def install_hooks(root: Path) -> list[Path]:
    hooks_dir = Git(root).git_path("hooks")
    hooks_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in HOOKS:
        script = hooks_dir / name
        script.write_text(hook_script(name))
        script.chmod(0o755)
        written.append(script)
    return written


def task_branch_name() -> str:
    from dlgit.config import Settings
    from dlgit.model import Kind, run_branch_name

    return run_branch_name(Kind.TASK, VERSION, "lr0.01", Settings())


def step_setup(d: Demo) -> None:
    d.section(1, "A new repository: core code, the template task, dlgit's hooks")
    d.git("init", "-q", "-b", "main")
    written = install_hooks(d.root)
    d.note(f"install hooks {', '.join(str(p.relative_to(d.root)) for p in written)}, each one line:")
    d.note(hook_script("<name>").splitlines()[1])
    d.write("model/net.py", "LAYERS = 2\n")
    d.write("tasks/main/config.yaml", TEMPLATE_CONFIG)
    d.write("tasks/main/train.py", TRAIN_SCRIPT)
    d.git("add", ".")
    d.note("the very first commit may go on main: a repository has to begin somewhere")
    d.allowed("commit", "-q", "-m", "chore: initial layout")


def step_dev(d: Demo) -> None:
    d.section(2, "Development happens on dev")
    d.git("switch", "-q", "-c", "dev")
    d.write("model/net.py", "LAYERS = 4\n")
    d.git("add", "model/net.py")
    d.allowed("commit", "-q", "-m", "feat: a deeper net")


def step_main_protected(d: Demo) -> None:
    d.section(3, "main is protected: a direct commit is blocked, with the reason and the fix")
    d.git("switch", "-q", "main")
    d.write("model/net.py", "LAYERS = 3\n")
    d.git("add", "model/net.py")
    d.git("commit", "-q", "-m", "fix: quick tweak on main", blocked="main-protected")
    d.note("throw the change away (in real life: commit it on dev, as the fix says)")
    d.git("reset", "-q", "--hard")


def step_message(d: Demo) -> None:
    d.section(4, "Commit messages follow <type>[(scope)][!]: <subject>")
    d.git("switch", "-q", "dev")
    d.write("model/README.md", "The net has LAYERS layers.\n")
    d.git("add", "model/README.md")
    d.git("commit", "-q", "-m", "added some docs", blocked="commit-message")
    d.allowed("commit", "-q", "-m", "docs: describe the net")


def step_task(d: Demo, branch: str) -> None:
    folder = f"tasks/{branch}"
    d.section(5, "A task branch runs one experiment and changes only its own folder")
    d.git("switch", "-q", "main")
    d.git("switch", "-q", "-c", branch)
    shutil.copytree(d.root / "tasks/main", d.root / folder)
    d.note(f"copy tasks/main/ to {folder}/ (every task starts as a copy of the template)")
    d.write(f"{folder}/config.yaml", TEMPLATE_CONFIG.replace("lr: 0.1", "lr: 0.01"))
    d.git("add", folder)
    d.allowed("commit", "-q", "-m", "task: lr0.01")
    d.note("editing core code on a task branch would make the result unreproducible")
    d.write("model/net.py", "LAYERS = 8\n")
    d.git("add", "model/net.py")
    d.git("commit", "-q", "-m", "task: more layers", blocked="task-scope")
    d.git("reset", "-q", "--hard")


def step_large_file(d: Demo, branch: str) -> None:
    d.section(6, "Checkpoints and data stay out of git (DVC keeps them)")
    d.write(f"tasks/{branch}/model.pt", b"\x80\x02fake checkpoint\n")
    d.write(f"tasks/{branch}/train.log", "epoch 1 loss 0.9\nepoch 2 loss 0.5\n")
    d.git("add", f"tasks/{branch}")
    d.git("commit", "-q", "-m", "task: results of lr0.01", blocked="large-file")
    d.git("rm", "-q", "--cached", f"tasks/{branch}/model.pt")
    d.allowed("commit", "-q", "-m", "task: results of lr0.01")
    (d.root / f"tasks/{branch}/model.pt").unlink()


def step_merge(d: Demo, branch: str) -> None:
    d.section(7, "The finished task is merged into main (allowed: it touches only its folder)")
    d.git("switch", "-q", "main")
    d.allowed("merge", "-q", "--no-ff", "-m", f"task: merge {branch}", branch)
    d.git("log", "--graph", "--all", "--format=%s%d")


def summary(d: Demo) -> None:
    d.say()
    d.say(paint("Every step behaved as the branch model says.", "green", d.color))
    d.say("In your own repository:")
    d.say("    dlgit install          # the hooks (or the pre-commit framework: see the README)")
    d.say("    dlgit status           # branch, kind, what is allowed here, which hooks are installed")
    d.say("    dlgit explain RULE     # e.g. dlgit explain task-scope; `dlgit explain` lists the rules")


def walk(d: Demo) -> None:
    branch = task_branch_name()
    step_setup(d)
    step_dev(d)
    step_main_protected(d)
    step_message(d)
    step_task(d, branch)
    step_large_file(d, branch)
    step_merge(d, branch)
    summary(d)


def demo() -> int:
    keep = os.environ.get(KEEP_VARIABLE) == "1"
    root = Path(tempfile.mkdtemp(prefix="dlgit-demo-")).resolve()
    color = use_color(sys.stdout)
    print(paint("dlgit demo", "bold", color) + f": a throw-away repository in {root}")
    failed = False
    try:
        with isolated_environment():
            walk(Demo(root, color))
    except StepFailed as exc:
        failed = True
        print(f"\ndlgit demo: FAILED: {exc}", file=sys.stderr)
    finally:
        if keep or failed:
            print(f"\nThe demo repository is kept in {root}", file=sys.stderr if failed else sys.stdout)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0
