"""pre-push and pre-receive: every pushed ref is judged for the branch it lands on, with the settings
of the receiving side as they were before the push; main and dev are never rewritten or deleted."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import Repo, make_repo
from histories import NEW_TASK, bare_copy, clone, commit, honest_history, isolated_git, merge, task_config

from dlgit import push

ZERO = "0" * 40


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("push-history")
    with isolated_git(base / "home"):
        return honest_history(base / "work").path


@pytest.fixture
def server(history: Path, tmp_path: Path) -> Repo:
    """A bare server copy of the honest history whose hooks/pre-receive execs `dlgit hook pre-receive`."""
    return bare_copy(history, tmp_path / "server.git", hook=True)


@pytest.fixture
def work(server: Repo, tmp_path: Path) -> Repo:
    """A clone without client hooks: only the server's pre-receive guards it."""
    return clone(server.path, tmp_path / "work", hooks=False)


def test_pre_receive_rejects_a_bad_push_and_accepts_a_good_one(server: Repo, work: Repo) -> None:
    before = server.head("main")
    commit(work, "feat: straight onto main", {"model/net.py": "NET = 3\n"})
    rejected = work.git("push", "origin", "main", check=False)
    assert rejected.returncode == 1
    assert "remote: dlgit: push to refs/heads/main blocked" in rejected.stderr and "main-protected" in rejected.stderr
    assert server.head("main") == before
    work.git("reset", "-q", "--hard", "origin/main")
    work.git("switch", "-q", "-c", NEW_TASK)
    commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    work.git("switch", "-q", "main")
    merge(work, NEW_TASK, f"task: merge {NEW_TASK}")
    accepted = work.git("push", "origin", "main", NEW_TASK, check=False)
    assert accepted.returncode == 0, accepted.stderr
    assert server.head("main") == work.head("main")


def test_force_push_to_main_is_refused_by_pre_push_and_pre_receive(server: Repo, work: Repo) -> None:
    before = server.head("main")
    work.git("reset", "-q", "--hard", "main~1")
    clone_hooks = work.path / ".git" / "hooks" / "pre-push"
    clone_hooks.write_text('#!/bin/sh\nexec dlgit hook pre-push "$@"\n')
    clone_hooks.chmod(0o755)
    by_client = work.git("push", "--force", "origin", "main", check=False)
    assert by_client.returncode == 1 and "history-rewrite" in by_client.stderr and "remote:" not in by_client.stderr
    by_server = work.git("push", "--force", "--no-verify", "origin", "main", check=False)
    assert by_server.returncode == 1 and "remote:" in by_server.stderr and "history-rewrite" in by_server.stderr
    assert server.head("main") == before


def test_deleting_dev_is_refused_and_a_feature_branch_may_go(server: Repo, work: Repo) -> None:
    refused = work.git("push", "origin", ":dev", check=False)
    assert refused.returncode == 1 and "deletes 'dev'" in refused.stderr
    assert work.git("push", "origin", ":feature-better-net", check=False).returncode == 0
    assert server.git("rev-parse", "-q", "--verify", "refs/heads/feature-better-net", check=False).returncode != 0


def test_a_push_that_relaxes_dlgit_yaml_is_judged_by_the_old_settings(server: Repo, work: Repo) -> None:
    commit(work, "chore: relax the policy", {".dlgit.yaml": "rules:\n  disable: [main-protected]\n", "model/net.py": "NET = 4\n"})
    rejected = work.git("push", "origin", "main", check=False)
    assert rejected.returncode == 1
    assert "main-protected" in rejected.stderr and ".dlgit.yaml is changed by" in rejected.stderr


def test_first_push_to_an_empty_server_allows_the_root_commit(tmp_path: Path) -> None:
    server = Repo(tmp_path / "empty.git")
    Repo(tmp_path).git("init", "-q", "--bare", str(server.path))
    hook = server.path / "hooks" / "pre-receive"
    hook.write_text('#!/bin/sh\nexec dlgit hook pre-receive "$@"\n')
    hook.chmod(0o755)
    work = make_repo(tmp_path / "new")
    commit(work, "chore: initial layout", {"model/net.py": "NET = 1\n"})
    pushed = work.git("push", str(server.path), "main", check=False)
    assert pushed.returncode == 0, pushed.stderr


# --- pre-push in-process: every stdin line, new branches, the pre-commit framework ----------------


def _lines(*updates: tuple[str, str, str]) -> io.StringIO:
    """(local sha, remote ref, remote sha) -> pre-push stdin."""
    return io.StringIO("".join(f"refs/heads/x {new} {ref} {old}\n" for new, ref, old in updates))


def test_pre_push_reads_every_ref_line(work: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(work.path)
    work.git("switch", "-q", "-c", "feature-ok", "dev")
    good = commit(work, "feat: fine", {"model/ok.py": "OK = 1\n"})
    work.git("switch", "-q", "main")
    bad = commit(work, "feat: straight onto main", {"model/net.py": "NET = 3\n"})
    old_main = work.head("origin/main")
    assert push.pre_push("origin", _lines((good, "refs/heads/feature-ok", ZERO))) == 0
    assert push.pre_push("origin", _lines((good, "refs/heads/feature-ok", ZERO), (bad, "refs/heads/main", old_main))) == 1
    err = capsys.readouterr().err
    assert "push to refs/heads/main blocked" in err and "feature-ok" not in err


def test_new_branch_judges_only_commits_no_remote_ref_holds(work: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task branch started from main: main's own commits (judged when main was pushed) are not
    judged again as task commits."""
    monkeypatch.chdir(work.path)
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    tip = commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    assert push.pre_push("origin", _lines((tip, f"refs/heads/{NEW_TASK}", ZERO))) == 0
    outside = commit(work, "task: and the net", {"model/net.py": "NET = 8\n"})
    assert push.pre_push("origin", _lines((outside, f"refs/heads/{NEW_TASK}", ZERO))) == 1


def test_pre_commit_framework_variables_describe_the_first_ref(work: Repo, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(work.path)
    bad = commit(work, "feat: straight onto main", {"model/net.py": "NET = 3\n"})
    monkeypatch.setenv("PRE_COMMIT_FROM_REF", work.head("origin/main"))
    monkeypatch.setenv("PRE_COMMIT_TO_REF", bad)
    monkeypatch.setenv("PRE_COMMIT_LOCAL_BRANCH", "refs/heads/main")
    monkeypatch.setenv("PRE_COMMIT_REMOTE_BRANCH", "refs/heads/main")
    monkeypatch.setenv("PRE_COMMIT_REMOTE_NAME", "origin")
    assert push.pre_push(None, io.StringIO("")) == 1
    err = capsys.readouterr().err
    assert "main-protected" in err and "pre-commit#1908" in err and "dlgit install" in err
    # real stdin lines win over the variables
    assert push.pre_push("origin", _lines((work.head("origin/dev"), "refs/heads/dev", work.head("origin/dev")))) == 0
