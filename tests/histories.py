"""Histories for the check / push / ci tests: a bare "server" with an honest history, built once per
module without hooks, then cloned per test (a local clone takes milliseconds)."""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import HOOK_SCRIPT, TEMPLATE_CONFIG, Repo, make_repo

from dlgit import cli

TASK = "task-0.1.0-20260101T000000-base"
NEW_TASK = "task-0.2.0-20260102T000000-lr0.1"
HOOK_NAMES = ("pre-commit", "pre-merge-commit", "commit-msg", "pre-push")
Check = Callable[..., tuple[int, str]]  # the `check` fixture: (repo, *args) -> (exit code, output)


@contextlib.contextmanager
def isolated_git(home: Path) -> Iterator[None]:
    """What conftest's autouse fixture does per test, for module-scoped builders."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.setenv("XDG_CONFIG_HOME", str(home / ".config"))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_REFLOG_ACTION"):
            mp.delenv(key, raising=False)
        for role in ("AUTHOR", "COMMITTER"):
            mp.setenv(f"GIT_{role}_NAME", "Test")
            mp.setenv(f"GIT_{role}_EMAIL", "test@example.com")
        yield


def commit(repo: Repo, message: str, files: dict[str, str] | None = None, *extra: str) -> str:
    """Write files, stage everything, commit without hooks (the content is legitimate) -> sha."""
    for path, content in (files or {}).items():
        repo.write(path, content)
    repo.git("add", "-A")
    repo.git("commit", "-q", "--no-verify", "-m", message, *extra)
    return repo.head()


def merge(repo: Repo, source: str, message: str) -> str:
    repo.git("merge", "-q", "--no-ff", "--no-verify", "-m", message, source)
    return repo.head()


def task_config(version: str, **extra: str) -> str:
    text = TEMPLATE_CONFIG.replace("VERSION: 0.1.0", f"VERSION: {version}")
    return text + "".join(f"{key}: {value}\n" for key, value in extra.items())


def version_of(repo: Repo) -> str:
    match = re.search(r"^VERSION: (\S+)", (repo.path / "tasks/main/config.yaml").read_text(), re.M)
    assert match
    return match.group(1)


def squash_release(repo: Repo, extra: dict[str, str] | None = None) -> str:
    """On main: `git merge --squash dev` + commit with the Squashed-from trailer (extra files added
    to the squash when given) -> sha."""
    repo.git("switch", "-q", "main")
    dev = repo.head("dev")
    repo.git("merge", "--squash", "-q", "dev")
    return commit(repo, f"chore: release\n\nSquashed-from: dev@{dev}", extra)


def bump(repo: Repo, new: str, also: tuple[str, str] | None = None) -> str:
    """The release's VERSION bump on main (`also`: one more line replaced, making it no bump)."""
    path = repo.path / "tasks/main/config.yaml"
    old = version_of(repo)
    text = path.read_text().replace(f"VERSION: {old}", f"VERSION: {new}")
    if also:
        text = text.replace(*also)
    path.write_text(text)
    return commit(repo, f"bump: version {old} → {new}")


def release(repo: Repo, new: str) -> None:
    """squash dev onto main, bump, tag vNEW, merge main back into dev."""
    squash_release(repo)
    bump(repo, new)
    repo.git("tag", "-a", "-m", f"release {new}", f"v{new}")
    repo.git("switch", "-q", "dev")
    merge(repo, "main", "Merge branch 'main' into dev")


def honest_history(path: Path) -> Repo:
    """main + dev with a feature merge, a task merged into main and dev, and release 0.2.0."""
    repo = make_repo(path)
    commit(repo, "chore: initial layout", {"tasks/main/config.yaml": TEMPLATE_CONFIG, "tasks/main/train.py": "print('train')\n",
                                            "model/net.py": "NET = 1\n"})
    repo.git("branch", "dev")
    repo.git("switch", "-q", "-c", "feature-better-net", "dev")
    commit(repo, "feat: a better net", {"model/net.py": "NET = 2\n"})
    repo.git("switch", "-q", "dev")
    merge(repo, "feature-better-net", "Merge branch 'feature-better-net' into dev")
    repo.git("switch", "-q", "-c", TASK, "main")
    commit(repo, "task: start base", {f"tasks/{TASK}/config.yaml": task_config("0.1.0")})
    commit(repo, "task: results of base", {f"tasks/{TASK}/log.txt": "loss 0.1\n"})
    for target in ("main", "dev"):
        repo.git("switch", "-q", target)
        merge(repo, TASK, f"task: merge {TASK}")
    release(repo, "0.2.0")
    return repo


def bare_copy(source: Path, path: Path, hook: bool = False) -> Repo:
    """A bare "server" repository holding every branch and tag of `source`; with `hook`, its
    hooks/pre-receive execs `dlgit hook pre-receive`."""
    Repo(path.parent).git("clone", "-q", "--bare", str(source), str(path))
    server = Repo(path)
    if hook:
        script = path / "hooks" / "pre-receive"
        script.write_text(HOOK_SCRIPT.format(name="pre-receive"))
        script.chmod(0o755)
    return server


def clone(server: Path, path: Path, hooks: bool = True) -> Repo:
    """A developer's clone of the server with dlgit's client hooks (pre-push included) installed."""
    Repo(path.parent).git("clone", "-q", str(server), str(path))
    repo = Repo(path)
    repo.git("switch", "-q", "dev")
    repo.git("switch", "-q", "main")
    if hooks:
        install_hooks(repo)
    return repo


def install_hooks(repo: Repo) -> None:
    hooks = repo.path / ".git" / "hooks"
    for name in HOOK_NAMES:
        (hooks / name).write_text(HOOK_SCRIPT.format(name=name))
        (hooks / name).chmod(0o755)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# Fixtures (conftest loads this module as a plugin): an honest history on a bare "server", and a
# fresh clone of it per test.
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("history")
    with isolated_git(base / "home"):
        work = honest_history(base / "work")
        bare_copy(work.path, base / "server.git")
    return base / "server.git"


@pytest.fixture
def work(server: Path, tmp_path: Path) -> Repo:
    return clone(server, tmp_path / "work")


@pytest.fixture
def check(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Check:
    """Run `dlgit check ARGS` in-process in a repository -> (exit code, stdout + stderr)."""

    def run(repo: Repo, *args: str) -> tuple[int, str]:
        monkeypatch.chdir(repo.path)
        code = cli.main(["check", *args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run
