"""Real git in temporary repositories: fixtures shared by every test module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["histories", "slurm"]  # shared history fixtures: server, work; a real Slurm cluster: slurm

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_CONFIG = (
    "# the template task\n"
    "VERSION: 0.1.0  # core version\n"
    "DEBUG: false\n"
    "RESUME: null\n"
    "TRAIN: true\n"
    "TEST: false\n"
    "MODEL_PATH: null\n"
    "RANDOM_SEED: 42\n"
    "lr: 0.01\n"
)
TASK = "task-0.1.0-20260101T000000-lr0.01"
HOOK_SCRIPT = '#!/bin/sh\n# dlgit-managed hook\nexec dlgit hook {name} "$@"\n'
DIRECT_HOOKS = ("pre-commit", "pre-merge-commit", "commit-msg")


@pytest.fixture(autouse=True)
def _isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user or system git config leaks in; commits have a fixed identity."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("PRE_COMMIT_HOME", str(tmp_path_factory.getbasetemp() / "pre-commit-cache"))
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_REFLOG_ACTION", "NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(key, raising=False)
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_EDITOR", "true")
    # Hooks `exec dlgit`: prefer this interpreter's own script to a version-manager shim.
    bindir = os.path.dirname(sys.executable)
    if os.path.exists(os.path.join(bindir, "dlgit")):
        monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))


class Repo:
    """A temporary repository driven through the real git command line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def git(
        self, *args: str, check: bool = True, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["git", *args], cwd=self.path, capture_output=True, text=True, input=input,
            env={**os.environ, **(env or {})}, check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        proc.repo_path = self.path  # type: ignore[attr-defined]  # for assert_blocked's replay of the fix
        return proc

    def dlgit(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [shutil.which("dlgit") or "dlgit", *args], cwd=self.path, capture_output=True, text=True,
            input=input, env={**os.environ, **(env or {})}, check=False,
        )

    def write(self, relpath: str, content: str | bytes = "x\n") -> Path:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        return target

    def commit(self, message: str, *paths: str, check: bool = True, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        """Stage the given paths (all changes when none) and commit with the hooks in force."""
        self.git("add", "--", *(paths or (".",)))
        return self.git("commit", "-m", message, *extra, check=check)

    def head(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", ref).stdout.strip()

    def branch(self) -> str:
        return self.git("symbolic-ref", "--short", "HEAD").stdout.strip()

    def install_direct_hooks(self) -> None:
        hooks = Path(self.git("rev-parse", "--git-path", "hooks").stdout.strip())
        hooks = hooks if hooks.is_absolute() else self.path / hooks
        hooks.mkdir(parents=True, exist_ok=True)
        for name in DIRECT_HOOKS:
            script = hooks / name
            script.write_text(HOOK_SCRIPT.format(name=name))
            script.chmod(0o755)


def make_repo(path: Path) -> Repo:
    path.mkdir(parents=True, exist_ok=True)
    repo = Repo(path)
    repo.git("init", "-q", "-b", "main")
    return repo


@pytest.fixture
def bare_repo(tmp_path: Path) -> Repo:
    """An empty repository (no commits, no hooks)."""
    return make_repo(tmp_path / "repo with space")


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    """main with the template task and a first commit, dev branched from it, hooks installed
    directly (`.git/hooks/*` exec `dlgit hook ...`). Checked out: main."""
    r = make_repo(tmp_path / "repo with space")
    r.write("tasks/main/config.yaml", TEMPLATE_CONFIG)
    r.write("tasks/main/train.py", "print('train')\n")
    r.write("model/net.py", "NET = 1\n")
    r.commit("chore: initial layout")
    r.git("branch", "dev")
    r.install_direct_hooks()
    yield r


# --- shared assertions and scenes ----------------------------------------------------------------


def assert_blocked(proc: subprocess.CompletedProcess[str], rule: str, *items: str, fix: str = "fix:", replay: str = "retry") -> None:
    """Exit 1 and stderr naming the rule, every offending item and a fix; the first fix is pasted
    into bash in a copy of the repository (tests/pastefix.py says what `replay` asks of it)."""
    assert proc.returncode == 1, proc.stderr
    assert f"✗ {rule}:" in proc.stderr, proc.stderr
    for item in items:
        assert item in proc.stderr, (item, proc.stderr)
    assert fix in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    if getattr(proc, "repo_path", None) is not None:
        from pastefix import replay as replay_fix

        replay_fix(proc, rule, proc.repo_path, replay)  # type: ignore[attr-defined]


def assert_allowed(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "blocked" not in proc.stderr, proc.stderr


def assert_usage_error(proc: subprocess.CompletedProcess[str], *texts: str) -> None:
    """Exit 2 and one paragraph starting `dlgit: error:`, no traceback."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("dlgit: error: ") and "\n\n" not in proc.stderr.strip(), proc.stderr
    for text in texts:
        assert text in proc.stderr, (text, proc.stderr)


def setup_commit(repo: Repo, message: str, *paths: str) -> None:
    """A commit that only prepares a scene (hooks skipped: faster, and not what is tested)."""
    repo.commit(message, *paths, extra=("--no-verify",))


def start_task(repo: Repo, name: str = TASK) -> str:
    """A task branch from main with its folder copied from the template, committed."""
    repo.git("switch", "-q", "-c", name, "main")
    repo.write(f"tasks/{name}/config.yaml", TEMPLATE_CONFIG)
    repo.write(f"tasks/{name}/train.py", "print('train')\n")
    setup_commit(repo, "task: start", f"tasks/{name}")
    return name


class Work:
    """The Python calls made inside the block, counted with sys.setprofile: a measure of work that
    no machine's load changes (the guide: targets live in bench/, not in timed unit tests)."""

    def __enter__(self) -> Work:
        self.calls = 0
        sys.setprofile(self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)

    def _count(self, frame: object, event: str, arg: object) -> None:
        if event in ("call", "c_call"):
            self.calls += 1
