"""A step recognises its own work by content (the commit on top of where the step began, with its
message; the stash entry that is new), never by a subject another commit can share: `dlgit init
--dvc` after `dlgit init` commits DVC's files although the root commit has the same subject."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Repo
from flowkit import commits, flow, killed, ok

SETUP_SUBJECT = "chore: set up dlgit (template task, settings, hooks)"


def _initialised(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "repo")
    repo.path.mkdir()
    ok(flow(repo, "init"))
    return repo


def test_dvc_added_later_is_committed_although_the_root_commit_has_the_same_subject(tmp_path: Path) -> None:
    repo = _initialised(tmp_path)
    out = ok(flow(repo, "init", "--dvc"))
    assert "already done" not in out
    assert repo.git("status", "--porcelain", "--untracked-files=no").stdout == ""  # nothing left staged (.dvc/tmp is DVC's own)
    files = set(repo.git("ls-tree", "-r", "--name-only", "dev").stdout.split())
    assert {".dvc/config", ".dvcignore"} <= files
    assert repo.git("log", "-1", "--format=%s", "dev").stdout.strip() == SETUP_SUBJECT
    assert repo.head("dev^") == repo.head("main")  # one new commit on dev, main untouched
    assert "nothing to do" in ok(flow(repo, "init", "--dvc"))


@pytest.mark.parametrize("step", [2, 3])
def test_a_crash_right_after_the_commit_is_recognised_and_not_committed_twice(tmp_path: Path, step: int) -> None:
    repo = _initialised(tmp_path)
    plan = ok(flow(repo, "init", "--dvc", "--dry-run"))
    assert "  3. commit" in plan, plan
    assert killed(flow(repo, "init", "--dvc", crash=step))
    known = commits(repo)
    ok(flow(repo, "continue"))
    assert known <= commits(repo) and repo.git("status", "--porcelain", "--untracked-files=no").stdout == ""
    assert repo.git("rev-list", "--count", "main..dev").stdout.strip() == "1"
