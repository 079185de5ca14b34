"""Everything start-task can refuse is refused before step 1 (exit 2, nothing changed, no flow left
unfinished); and when a step does fail, abort leaves nothing of the copy staged."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import Repo
from flowkit import flow, ok, picture
from test_task_flows import base  # noqa: F401  (a fixture: a repository with DVC, a trainer and a release)


@pytest.fixture
def repo(base: Path, tmp_path: Path) -> Repo:  # noqa: F811  (the task repository, not conftest's)
    copy = tmp_path / "repo"
    shutil.copytree(base, copy, symlinks=True)
    return Repo(copy)


@pytest.mark.parametrize(("args", "said"), [
    (("--set", "VERSION=9.9.9", "x"), "VERSION is 9.9.9 but the branch name says 0.2.0"),
    (("--set", 'DEBUG="yes"', "--retype", "x"), "DEBUG is 'yes', expected true or false"),
    (("--set", "RANDOM_SEED=1.5", "x"), "RANDOM_SEED is"),
    (("a" * 300,), "give a shorter DESC"),
    (("--worktree", "a" * 300), "give a shorter DESC"),
])
def test_what_a_step_would_refuse_is_refused_before_step_1(repo: Repo, args: tuple[str, ...], said: str) -> None:
    before = picture(repo)
    refused = flow(repo, "start-task", *args)
    assert refused.returncode == 2 and said in refused.stderr, refused.stdout + refused.stderr
    assert "[1/" not in refused.stdout and "Traceback" not in refused.stderr
    assert picture(repo) == before and not (repo.path / ".git/dlgit/flow.json").exists()


def test_abort_after_a_refused_commit_leaves_nothing_staged(repo: Repo, tmp_path: Path) -> None:
    hooks = tmp_path / "refusing-hooks"
    hooks.mkdir()
    (hooks / "pre-commit").write_text("#!/bin/sh\necho 'refused by a hook of the lab' >&2\nexit 1\n")
    os.chmod(hooks / "pre-commit", 0o755)
    before = picture(repo)
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": str(hooks)}
    stopped = repo.dlgit("start-task", "x", env=env)
    assert stopped.returncode == 1 and "refused by a hook of the lab" in stopped.stdout
    ok(flow(repo, "abort"))
    after = picture(repo)
    assert after == before, after.status
    assert repo.git("diff", "--cached", "--name-only").stdout == ""
