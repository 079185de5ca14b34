"""Helpers for the flow tests: run a flow, crash it, and compare everything a flow may change."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from conftest import Repo
from histories import isolated_git

CRASH = "DLGIT_TEST_CRASH_AFTER_STEP"
CONFLICT = 3


@dataclass(frozen=True)
class Picture:
    """Everything a flow may change: refs, HEAD, the index and work tree, the stash, the config."""

    refs: str
    head: str
    status: str
    stash: str
    config: str
    files: str


def picture(repo: Repo) -> Picture:
    return Picture(
        refs=repo.git("for-each-ref", "--format=%(refname) %(objectname)").stdout,
        head=repo.git("symbolic-ref", "-q", "HEAD", check=False).stdout or repo.head(),
        status=repo.git("status", "--porcelain=v1", "--untracked-files=all", "--ignored").stdout,
        stash=repo.git("stash", "list", "--format=%H").stdout,
        config=(repo.path / ".git" / "config").read_text(),
        files=repo.git("ls-files", "-s").stdout,
    )


def flow(repo: Repo, *args: str, crash: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {CRASH: str(crash)} if crash is not None else None
    return repo.dlgit(*args, env=env)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def steps_of(repo: Repo, *args: str) -> int:
    """How many steps the flow's plan has (from --dry-run)."""
    out = ok(repo.dlgit(*args, "--dry-run"))
    return sum(1 for line in out.splitlines() if line[:2] == "  " and line.strip()[:1].isdigit() and ". " in line)


def killed(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode == -9


def commits(repo: Repo) -> set[str]:
    """Every commit reachable from a ref or named in the reflogs (a commit is lost when it is in neither)."""
    reachable = repo.git("rev-list", "--all", "--reflog").stdout.split()
    return set(reachable)


def released_dvc_repo(path: Path, trainer: str, config_extra: str = "") -> Repo:
    """`dlgit init --dvc` in a new folder, `trainer` as the template's train.py (`config_extra`
    appended to its config.yaml), released once so that main and dev hold it; main checked out."""
    with isolated_git(path.parent / f"{path.name}-home"):
        repo = Repo(path)
        repo.path.mkdir()
        ok(repo.dlgit("init", "--dvc"))
        repo.git("switch", "-q", "dev")
        repo.write("tasks/main/train.py", trainer)
        config = repo.path / "tasks/main/config.yaml"
        config.write_text(config.read_text() + config_extra)
        repo.write("model/net.py", "NET = 1\n")
        repo.commit("feat: a trainer")
        ok(repo.dlgit("release"))
        repo.git("switch", "-q", "main")
    return repo
