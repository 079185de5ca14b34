"""A printed fix that sets changes aside in the stash pops only the entry it pushed: pasted with
someone's own stash entry present, on a clean tree (it pushes nothing) or a dirty one, that entry
stays where it is, unapplied (tests/pastefix.py replays each fix in a copy; here the stash is
checked too)."""

from __future__ import annotations

import subprocess

import pytest
from conftest import Repo, assert_blocked

FOREIGN = "someone's own work, stashed"


def _with_foreign_stash(repo: Repo) -> str:
    repo.write("notes/idea.txt", "an idea\n")
    repo.git("add", "notes/idea.txt")
    repo.git("stash", "push", "-q", "-m", FOREIGN)
    return repo.git("rev-parse", "refs/stash").stdout.strip()


def _paste(repo: Repo, proc: subprocess.CompletedProcess[str], rule: str) -> subprocess.CompletedProcess[str]:
    lines = proc.stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"✗ {rule}:"))
    fix = lines[next(i for i in range(start, len(lines)) if lines[i].strip() == "fix:") + 1].strip()
    assert "stash push" in fix, fix
    return subprocess.run(["bash", "-c", fix], cwd=repo.path, capture_output=True, text=True, check=False)


def _foreign_kept(repo: Repo, foreign: str) -> None:
    assert repo.git("rev-parse", "refs/stash").stdout.strip() == foreign
    assert FOREIGN in repo.git("stash", "list").stdout
    assert not (repo.path / "notes/idea.txt").exists()  # never applied


@pytest.mark.parametrize("dirty", [False, True])
def test_main_protected_fix_never_pops_a_foreign_stash(repo: Repo, dirty: bool) -> None:
    foreign = _with_foreign_stash(repo)
    if dirty:
        repo.write("model/net.py", "NET = 2\n")
        repo.git("add", "model/net.py")
    proc = repo.git("commit", "--allow-empty", "-m", "feat: tweak", check=False)
    assert_blocked(proc, "main-protected", "git stash push")
    pasted = _paste(repo, proc, "main-protected")
    assert pasted.returncode == 0, pasted.stderr
    assert repo.branch() == "dev"
    _foreign_kept(repo, foreign)
    assert (repo.path / "model/net.py").read_text() == ("NET = 2\n" if dirty else "NET = 1\n")


@pytest.mark.parametrize("dirty", [False, True])
def test_hotfix_size_fix_never_pops_a_foreign_stash(repo: Repo, dirty: bool) -> None:
    repo.git("switch", "-q", "-c", "hotfix-big", "main")
    for i in range(6):
        repo.write(f"model/fix{i}.py", f"F = {i}\n")
    repo.git("add", "model")
    repo.git("commit", "-q", "--no-verify", "-m", "fix: too big already")
    foreign = _with_foreign_stash(repo)
    if dirty:
        repo.write("model/net.py", "NET = 3\n")
        repo.git("add", "model/net.py")
    proc = repo.git("commit", "--allow-empty", "-m", "fix: one more", check=False)
    assert_blocked(proc, "hotfix-size", "git stash push")
    pasted = _paste(repo, proc, "hotfix-size")
    assert pasted.returncode == 0, pasted.stderr
    assert repo.branch() == "feature-big"
    _foreign_kept(repo, foreign)
    assert (repo.path / "model/net.py").read_text() == ("NET = 3\n" if dirty else "NET = 1\n")
