"""Small things a user noticed, each as the user met it: a closed pipe, plans naming a file as a
folder, a push hint without a remote, a framework repository told to add what it has, a fresh
repository's check noting its own root commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import Repo
from flowkit import ok


def fresh(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "fresh")
    repo.path.mkdir()
    ok(repo.dlgit("init"))
    return repo


def test_a_closed_pipe_ends_dlgit_quietly(tmp_path: Path) -> None:
    repo = fresh(tmp_path)
    proc = subprocess.Popen(["dlgit", "log", "--format", "json"], cwd=repo.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head` that has read enough
    err = proc.stderr.read()
    assert proc.wait() == 141 and err == b""


def test_plans_name_files_as_files(tmp_path: Path) -> None:
    out = ok(fresh(tmp_path).dlgit("start-task", "x", "--dry-run"))
    assert "metrics.json," in out or "metrics.json)" in out
    assert "metrics.json/" not in out and "logs/" in out


def test_no_push_hint_without_a_remote(tmp_path: Path) -> None:
    repo = fresh(tmp_path)
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 1\n")
    repo.commit("feat: a net")
    assert "git push" not in ok(repo.dlgit("release"))
    remote = tmp_path / "server.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    repo.git("remote", "add", "origin", str(remote))
    repo.write("model/net.py", "NET = 2\n")
    repo.commit("fix: a better net")
    assert "push with: git push --atomic origin main dev v0.2.1" in ok(repo.dlgit("release"))


def test_a_fresh_repository_check_has_no_note_about_its_root_commit(tmp_path: Path) -> None:
    proc = fresh(tmp_path).dlgit("check")
    assert proc.returncode == 0 and "is changed by" not in proc.stdout + proc.stderr


def test_a_framework_repository_that_lists_dlgit_is_not_told_to_add_it(tmp_path: Path) -> None:
    from dlgit.install import FRAMEWORK_IDS

    repo = Repo(tmp_path / "framework")
    repo.path.mkdir()
    repo.git("init", "-q", "-b", "main")
    hooks = "".join(f"      - id: {hook_id}\n" for hook_id in FRAMEWORK_IDS)
    repo.write(".pre-commit-config.yaml", f"repos:\n  - repo: https://example.invalid/dlgit\n    rev: v1\n    hooks:\n{hooks}")
    out = repo.dlgit("install")
    said = out.stdout + out.stderr
    assert "already" in said and "Add dlgit to the `repos:` list" not in said, said
