"""dlgit as a hook repository of the real pre-commit framework.

`repo:` points at a git snapshot of this working tree (uncommitted changes included), so the
framework builds its virtualenv from exactly the code under test; that build (pip from PyPI) is
done once per session, in the PRE_COMMIT_HOME that conftest gives every test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TEMPLATE_CONFIG, Repo

HOOK_TYPES = ("pre-commit", "pre-merge-commit", "commit-msg")
PRE_COMMIT = [sys.executable, "-m", "pre_commit"]  # this interpreter's, whatever PATH says


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout.strip()


def _snapshot(target: Path) -> str:
    """Copy the package as it is on disk into a new git repository; return its HEAD sha."""
    shutil.copytree(ROOT / "dlgit", target / "dlgit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", ".pre-commit-hooks.yaml"):
        shutil.copy2(ROOT / name, target / name)
    readme = ROOT / "README.md"
    (target / "README.md").write_text(readme.read_text() if readme.exists() else "dlgit\n")
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    _run(["git", "init", "-q"], target)
    _run(["git", "add", "-A"], target)
    _run(["git", *identity, "commit", "-q", "--no-verify", "-m", "snapshot"], target)
    return _run(["git", "rev-parse", "HEAD"], target)


@pytest.fixture(scope="session")
def framework_config(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A .pre-commit-config.yaml using dlgit's three hooks, with their environment already built."""
    snapshot = tmp_path_factory.mktemp("dlgit-snapshot")
    sha = _snapshot(snapshot)
    text = f"repos:\n  - repo: {snapshot}\n    rev: {sha}\n    hooks:\n" + "".join(
        f"      - id: {hook_id}\n" for hook_id in ("dlgit-policy", "dlgit-commit-msg", "dlgit-pre-push"))
    warm = tmp_path_factory.mktemp("framework-warm-up")
    (warm / ".pre-commit-config.yaml").write_text(text)
    _run(["git", "init", "-q"], warm)
    # same store as conftest's per-test PRE_COMMIT_HOME; pip keeps the machine's own settings (real HOME)
    _run([*PRE_COMMIT, "install-hooks"], warm, {"PRE_COMMIT_HOME": str(tmp_path_factory.getbasetemp() / "pre-commit-cache")})
    return text


@pytest.fixture
def fw_repo(bare_repo: Repo, framework_config: str) -> Repo:
    """main (root commit with the config and template task) and dev; framework hooks installed."""
    repo = bare_repo
    repo.write(".pre-commit-config.yaml", framework_config)
    _run([*PRE_COMMIT, "install", *(arg for hook in HOOK_TYPES for arg in ("-t", hook))], repo.path)
    repo.write("tasks/main/config.yaml", TEMPLATE_CONFIG)
    repo.write("model/net.py", "NET = 1\n")
    repo.commit("chore: initial layout")
    repo.git("branch", "dev")
    return repo


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def test_framework_hooks_block_and_allow_commits(fw_repo: Repo) -> None:
    repo = fw_repo
    repo.write("model/net.py", "NET = 2\n")
    blocked = repo.commit("feat: tweak on main", check=False)
    assert blocked.returncode == 1 and "main-protected" in output(blocked) and "model/net.py" in output(blocked)
    repo.git("switch", "dev")
    bad_message = repo.commit("tweak", check=False)
    assert bad_message.returncode == 1 and "commit-message" in output(bad_message)
    repo.commit("feat: tweak")
    assert "dlgit-policy" in repo.dlgit("status").stdout


def test_framework_hooks_judge_merges(fw_repo: Repo) -> None:
    repo = fw_repo
    repo.git("switch", "-c", "feature-loader", "dev")
    repo.write("data/loader.py", "LOADER = 1\n")
    repo.commit("feat: loader")
    repo.git("switch", "dev")
    repo.git("merge", "--no-ff", "feature-loader")  # git's own message is fine off main
    repo.git("switch", "main")

    wrong_way = repo.git("merge", "--no-ff", "feature-loader", "-m", "feat: loader", check=False)
    assert wrong_way.returncode != 0 and "merge-direction" in output(wrong_way)  # pre-merge-commit
    repo.git("merge", "--abort")
    # commit-msg gets MERGE_MSG from the framework: git's own "Merge branch" is not enough on main
    plain = repo.git("merge", "--no-ff", "dev", check=False)
    assert plain.returncode != 0 and "commit-message" in output(plain)
    repo.git("merge", "--abort")
    repo.git("merge", "--no-ff", "dev", "-m", "feat: release the loader")


# --- `pre-commit run --all-files`: no commit is being made, so nothing to judge -----------------------


def test_run_all_files_with_nothing_staged_passes_but_commits_on_main_are_still_blocked(fw_repo: Repo) -> None:
    repo = fw_repo
    run_all = subprocess.run([*PRE_COMMIT, "run", "--all-files"], cwd=repo.path, capture_output=True, text=True, check=False)
    assert run_all.returncode == 0, output(run_all)  # the CI idiom, on main
    assert "dlgit policy" in output(run_all) and "Passed" in output(run_all)
    repo.git("switch", "-q", "-c", "renovate/deps")  # a branch name dlgit does not know: still no commit to judge
    assert subprocess.run([*PRE_COMMIT, "run", "--all-files"], cwd=repo.path, capture_output=True, check=False).returncode == 0
    repo.git("switch", "-q", "main")

    empty = repo.git("commit", "--allow-empty", "-m", "feat: nothing, on main", check=False)
    assert empty.returncode == 1 and "main-protected" in output(empty)  # git is committing: judged
    repo.write("model/net.py", "NET = 2\n")
    repo.git("add", "model/net.py")
    preview = subprocess.run([*PRE_COMMIT, "run"], cwd=repo.path, capture_output=True, text=True, check=False)
    assert preview.returncode == 1 and "main-protected" in output(preview)  # staged: `pre-commit run` previews the commit
    blocked = repo.git("commit", "-m", "feat: on main", check=False)
    assert blocked.returncode == 1 and "main-protected" in output(blocked)


def test_a_hook_run_by_hand_with_nothing_staged_has_nothing_to_judge(repo: Repo) -> None:
    idle = repo.dlgit("hook", "pre-commit")
    assert idle.returncode == 0 and "nothing to judge" in idle.stderr
    assert repo.git("commit", "--allow-empty", "-m", "feat: nothing, on main", check=False).returncode == 1  # the direct hooks
    repo.write("model/net.py", "NET = 2\n")
    repo.git("add", "model/net.py")
    staged = repo.dlgit("hook", "pre-commit")
    assert staged.returncode == 1 and "main-protected" in staged.stderr
