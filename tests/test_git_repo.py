"""The Git object in real repositories: what it reads of the work tree's state, and its Runner
(echo, dry run, hooks in force)."""

from __future__ import annotations

import io
import re

import pytest
from conftest import ROOT, Repo

from dlgit.explain import checked_at
from dlgit.git import Git, GitError, InProgress, Runner, command_line
from dlgit.policy import RULES


def test_in_progress_names_what_git_has_begun(repo: Repo) -> None:
    git = Git(repo.path)
    assert git.in_progress() is None
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 'dev'\n")
    repo.commit("feat: dev", extra=("--no-verify",))
    repo.git("switch", "-q", "main")
    repo.write("model/net.py", "NET = 'main'\n")
    repo.commit("fix: main", extra=("--no-verify",))
    repo.git("merge", "--no-verify", "dev", check=False)
    assert git.in_progress() is InProgress.MERGE and git.merge_heads() == [repo.head("dev")]
    repo.git("merge", "--abort")
    repo.git("merge", "--squash", "dev", check=False)
    assert git.in_progress() is InProgress.SQUASH and git.squashed_commit() == repo.head("dev")
    repo.git("reset", "-q", "--merge")
    repo.git("cherry-pick", "dev", check=False)
    assert git.in_progress() is InProgress.CHERRY_PICK
    repo.git("cherry-pick", "--abort")
    repo.git("rebase", "dev", check=False)
    assert git.in_progress() is InProgress.REBASE
    repo.git("rebase", "--abort")
    assert git.in_progress() is None


def test_runner_echoes_runs_and_reports_failures(repo: Repo) -> None:
    shown = io.StringIO()
    run = Runner(Git(repo.path), echo=shown)
    run("branch", "feature-a b", check=False)  # not a valid name: git refuses
    run("branch", "feature-ok")
    assert repo.head("feature-ok") == repo.head("main")
    assert shown.getvalue().splitlines() == ["$ git branch 'feature-a b'", "$ git branch feature-ok"]
    with pytest.raises(GitError, match="not a valid branch name"):
        run("branch", "feature-a b")


def test_dry_run_prints_and_changes_nothing(repo: Repo) -> None:
    shown = io.StringIO()
    before = repo.git("for-each-ref").stdout
    Runner(Git(repo.path), echo=shown, dry_run=True)("branch", "-D", "dev")
    assert repo.git("for-each-ref").stdout == before and shown.getvalue() == "$ git branch -D dev\n"


def test_runner_writes_go_through_the_hooks(repo: Repo) -> None:
    repo.write("model/net.py", "NET = 2\n")
    repo.git("add", ".")
    with pytest.raises(GitError, match="main-protected"):
        Runner(Git(repo.path))("commit", "-m", "feat: direct")


@pytest.mark.parametrize("args", [["commit", "-m", "feat: it's $HOME"], ["tag", "v1", "a\nb"], ["log", "--", "é x"]])
def test_command_line_is_what_bash_runs(args: list[str]) -> None:
    import subprocess

    echoed = subprocess.run(["bash", "-c", f'printf "%s\\0" {command_line(args).removeprefix("git ")}'], capture_output=True, check=True)
    assert echoed.stdout.decode().split("\0")[:-1] == args


def test_readme_rule_table_says_what_the_rules_say() -> None:
    """The README's rule table is derived from the rules: id, statement's place and stages."""
    rows = re.findall(r"^\| `([a-z-]+)` \| .* \| ([^|]+) \|$", (ROOT / "README.md").read_text(), re.M)
    assert {rule_id for rule_id, _ in rows} == set(RULES)
    for rule_id, stages in rows:
        assert stages.strip() == checked_at(rule_id), rule_id
