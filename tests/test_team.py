"""Issue 15: two clones and a bare server with dlgit's pre-receive, the unit of a team. alice
releases by hand and pushes; bob pulls main and dev, starts and finishes a task with dlgit's
flows, and pushes; every push passes pre-receive and `dlgit check` from the root passes in both
clones afterwards (bob's: not yet, see the xfail)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import Repo
from histories import bare_copy, clone, honest_history
from test_seed_by_hand import Seed, git, ok


def push(repo: Repo, *refs: str) -> None:
    proc = repo.git("push", "origin", *refs, check=False)
    assert proc.returncode == 0, proc.stderr


def checks(repo: Repo) -> None:
    git(repo, "fetch", "-q", "origin")
    for branch in ("main", "dev"):
        out = ok(repo.dlgit("check", "--branch", branch, f"origin/{branch}"))
        assert "no violations" in out, out


def team(tmp_path: Path) -> tuple[Repo, Repo]:
    server = bare_copy(honest_history(tmp_path / "history").path, tmp_path / "server.git", hook=True)
    alice, bob = clone(server.path, tmp_path / "alice"), clone(server.path, tmp_path / "bob")
    seed = Seed(alice)
    seed.feature("feature-loader", "data/loader.py", "LOADER = 1\n")
    push(alice, "dev")
    seed.release("no-ff", "0.3.0")
    push(alice, "main", "v0.3.0")
    seed.back_merge()  # a fast-forward of dev onto main
    push(alice, "dev")

    for branch in ("main", "dev"):
        git(bob, "checkout", branch)
        assert "Fast-forward" in git(bob, "pull")
    git(bob, "checkout", "main")
    ok(bob.dlgit("start-task", "lr0.1"))
    task = bob.branch()
    (bob.path / "tasks" / task / "log.txt").write_text("loss 0.1\n")
    ok(bob.dlgit("finish-task"))
    proc = subprocess.run(["git", "push", "origin", "main", "dev"], cwd=bob.path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr  # pre-receive accepted every push
    git(alice, "checkout", "main")
    git(alice, "pull")
    return alice, bob


def test_alice_releases_by_hand_bob_pulls_and_finishes_a_task(tmp_path: Path) -> None:
    alice, _ = team(tmp_path)
    checks(alice)  # her reflogs saw dev at the released commit


@pytest.mark.xfail(strict=True, reason="issue 15, not done: bob never fetched dev at the released commit, and the server's "
                   "reflog is not fetched; needs a verdict record the server publishes (docs/check.md)")
def test_bobs_check_of_the_whole_history_after_a_fast_forward_back_merge(tmp_path: Path) -> None:
    _, bob = team(tmp_path)
    checks(bob)


def test_pull_on_main_after_a_teammates_task_merge_passes_the_hooks(tmp_path: Path) -> None:
    """alice and bob each merge a task into main; bob's `git pull` makes git's own merge
    ("Merge branch 'main' of <url>"), which the hooks, pre-receive and check accept on main."""
    server = bare_copy(honest_history(tmp_path / "history").path, tmp_path / "server.git", hook=True)
    alice, bob = clone(server.path, tmp_path / "alice"), clone(server.path, tmp_path / "bob")
    Seed(alice).task("alice", dev=False)
    push(alice, "main")
    Seed(bob).task("bob", dev=False)
    said = git(bob, "pull", "--no-rebase", "--no-edit")
    assert "Merge made" in said, said
    assert bob.git("log", "-1", "--format=%s").stdout.startswith("Merge branch 'main' of ")
    push(bob, "main")
    out = ok(bob.dlgit("check", "--branch", "main", "main"))
    assert "no violations" in out, out
