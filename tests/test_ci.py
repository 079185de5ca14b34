"""`dlgit ci github|gitlab`: the generated YAML parses, and the script inside it, run as the CI would
run it in a fresh clone, passes an honest push and fails a bad one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Repo
from histories import NEW_TASK, bare_copy, commit, honest_history, isolated_git, task_config

from dlgit import cli

ZERO = "0" * 40


def _generated(provider: str, capsys: pytest.CaptureFixture[str]) -> Any:
    assert cli.main(["ci", provider]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def _scripts(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    github = _generated("github", capsys)
    gitlab = _generated("gitlab", capsys)
    return {"github": github["jobs"]["dlgit-check"]["steps"][-1]["run"], "gitlab": gitlab["dlgit-check"]["script"][-1]}


def test_templates_parse_install_dlgit_and_run_check(capsys: pytest.CaptureFixture[str]) -> None:
    """This environment installs dlgit from its work tree: the install step fails, saying so
    (test_origin covers the other origins)."""
    github = _generated("github", capsys)
    steps = github["jobs"]["dlgit-check"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0 and "edit its install step" in steps[2]["run"]
    assert set(steps[-1]["env"]) >= {"DLGIT_BEFORE", "DLGIT_AFTER", "DLGIT_BRANCH", "DLGIT_MR_TARGET"}
    assert set(github[True]) == {"push", "pull_request"}  # YAML 1.1 reads the key `on` as True
    gitlab = _generated("gitlab", capsys)["dlgit-check"]
    assert gitlab["variables"]["GIT_DEPTH"] == "0" and "edit its install step" in gitlab["script"][0]
    scripts = _scripts(capsys)
    assert scripts["github"] == scripts["gitlab"] and "dlgit check" in scripts["github"]


def test_write_creates_the_file_and_never_clobbers_a_foreign_one(repo: Repo, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(repo.path)
    assert cli.main(["ci", "github", "--write"]) == 0
    workflow = repo.path / ".github/workflows/dlgit.yml"
    assert yaml.safe_load(workflow.read_text())["name"] == "dlgit check"
    assert cli.main(["ci", "github", "--write"]) == 0  # ours: regenerated
    workflow.write_text("name: mine\n")
    assert cli.main(["ci", "github", "--write"]) == 2 and workflow.read_text() == "name: mine\n"
    (repo.path / ".gitlab-ci.yml").write_text("test:\n  script: [true]\n")
    assert cli.main(["ci", "gitlab", "--write"]) == 0
    assert "local: .gitlab/dlgit.gitlab-ci.yml" in capsys.readouterr().out
    assert "dlgit-check" in yaml.safe_load((repo.path / ".gitlab/dlgit.gitlab-ci.yml").read_text())


# --- the script, run on a real repository as CI runs it --------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("ci-history")
    with isolated_git(base / "home"):
        work = honest_history(base / "work")
        work.git("switch", "-q", "-c", "feature-bad", "dev")
        commit(work, "feat: not for main", {"model/bad.py": "BAD = 1\n"})
        work.git("switch", "-q", "-c", NEW_TASK, "main")
        commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
        work.git("switch", "-q", "-c", "main-bypassed", "main")
        commit(work, "feat: straight onto main", {"model/net.py": "NET = 3\n"})
        bare_copy(work.path, base / "server.git")
    return base / "server.git"


@pytest.fixture(scope="module")
def script() -> str:
    from dlgit import ci

    return str(yaml.safe_load(ci.render("github", ci.Install([], ["true"])))["jobs"]["dlgit-check"]["steps"][-1]["run"])


@pytest.fixture
def ci_clone(server: Path, tmp_path: Path) -> Repo:
    """What actions/checkout with fetch-depth 0 leaves: every branch as origin/*, HEAD detached."""
    Repo(tmp_path).git("clone", "-q", "--no-checkout", str(server), str(tmp_path / "ci"))
    repo = Repo(tmp_path / "ci")
    repo.git("checkout", "-q", "--detach", "origin/main")
    return repo


def _run(repo: Repo, script: str, **env: str) -> subprocess.CompletedProcess[str]:
    variables = {key: "" for key in ("DLGIT_BEFORE", "DLGIT_AFTER", "DLGIT_BRANCH", "DLGIT_MR_TARGET", "DLGIT_MR_SOURCE",
                                     "DLGIT_MR_BASE", "DLGIT_MR_HEAD")}
    return subprocess.run(["sh", "-c", script], cwd=repo.path, env={**os.environ, **variables, **env},
                          capture_output=True, text=True, check=False)


def test_first_push_with_an_all_zero_before_passes(server: Path, tmp_path: Path, script: str) -> None:
    """The repository's first push: main, and dev as it was when it was released. main's own commits
    are judged, its release squash verified against dev (a clone without dev could not tell where
    that squash came from: it would be refused)."""
    Repo(tmp_path).git("clone", "-q", "--single-branch", "--branch", "main", str(server), str(tmp_path / "first"))
    first = Repo(tmp_path / "first")
    first.git("fetch", "-q", "origin", "+refs/heads/dev:refs/remotes/origin/dev")
    first.git("update-ref", "refs/remotes/origin/dev", "origin/dev^1")  # before dev merged main back
    proc = _run(first, script, DLGIT_BEFORE=ZERO, DLGIT_AFTER=first.head("origin/main"), DLGIT_BRANCH="main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no violations in 3 commit(s)" in proc.stdout  # the task merge, the release squash, the bump


def test_a_push_that_bypassed_the_hooks_fails(ci_clone: Repo, script: str) -> None:
    proc = _run(ci_clone, script, DLGIT_BEFORE=ci_clone.head("origin/main"), DLGIT_AFTER=ci_clone.head("origin/main-bypassed"),
                DLGIT_BRANCH="main")
    assert proc.returncode == 1
    assert "main-protected" in proc.stdout and "feat: straight onto main" in proc.stdout


@pytest.mark.parametrize(("source", "code", "rule"), [(NEW_TASK, 0, None), ("feature-bad", 1, "merge-direction")])
def test_merge_request_judges_the_merge_it_would_make(ci_clone: Repo, script: str, source: str, code: int, rule: str | None) -> None:
    proc = _run(ci_clone, script, DLGIT_MR_TARGET="main", DLGIT_MR_SOURCE=source, DLGIT_MR_BASE="origin/main",
                DLGIT_MR_HEAD=ci_clone.head(f"origin/{source}"))
    assert proc.returncode == code, proc.stdout + proc.stderr
    if rule:
        assert rule in proc.stdout and f"'{source}'" in proc.stdout
