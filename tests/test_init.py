"""`dlgit init` through real git: an empty folder, an empty repository, one with history, the
pre-commit framework, --dvc and --commitizen; idempotent; undo, dry run, and a crash after every step."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Repo, make_repo
from flowkit import commits, flow, killed, ok, picture, steps_of

SET_UP = ("tasks/main/config.yaml", "tasks/main/train.py", ".dlgit.yaml", ".gitignore")


def tree(repo: Repo, rev: str) -> set[str]:
    return set(repo.git("ls-tree", "-r", "--name-only", rev).stdout.split())


def test_an_empty_folder_becomes_a_repository_with_the_root_commit(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "fresh")
    repo.path.mkdir()
    out = ok(flow(repo, "init"))
    assert "the root commit of main" in out and repo.git("rev-list", "--count", "main").stdout.strip() == "1"
    assert tree(repo, "main") == set(SET_UP) and repo.head("dev") == repo.head("main")
    assert ok(repo.dlgit("status")).count("dlgit") and "missing" not in repo.dlgit("status").stdout
    assert "nothing to do" in ok(flow(repo, "init"))
    ok(repo.dlgit("check", "--branch", "main", "main"))
    config = (repo.path / "tasks/main/config.yaml").read_text()
    assert "VERSION: 0.1.0" in config and "RANDOM_SEED: 42" in config and config.count("#") >= 8
    ran = subprocess.run([sys.executable, "train.py"], cwd=repo.path / "tasks/main", capture_output=True, text=True, check=True)
    assert "core version 0.1.0" in ran.stdout


def test_a_repository_with_history_gets_the_setup_on_dev_only(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "old")
    repo.write("model/net.py", "NET = 1\n")
    repo.write(".gitignore", "*.log\n")
    repo.commit("feat: the model")
    main = repo.head("main")
    repo.write("scratch.txt", "an untracked file of the user's\n")
    ok(flow(repo, "init"))
    assert repo.head("main") == main and repo.branch() == "main"  # never a commit on main
    assert tree(repo, "dev") == tree(repo, "main") | set(SET_UP)
    assert repo.git("show", "dev:.gitignore").stdout.startswith("*.log\n") and "/checkpoints/" in repo.git("show", "dev:.gitignore").stdout
    assert "scratch.txt" not in tree(repo, "dev") and (repo.path / "scratch.txt").exists()
    assert "nothing to do" in ok(flow(repo, "init"))
    ok(flow(repo, "release"))  # the setup reaches main with the first release
    assert set(SET_UP) <= tree(repo, "main")


def test_the_framework_gets_dlgit_entries_and_the_install_command(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "fw")
    repo.write(".pre-commit-config.yaml", "repos:\n  - repo: local\n    hooks:\n      - id: mine\n        name: mine\n"
               "        entry: 'true'\n        language: system\n")
    repo.commit("chore: framework")
    out = ok(flow(repo, "init"))
    assert "pre-commit install -t pre-commit -t pre-merge-commit -t commit-msg -t pre-push" in out
    config = repo.git("show", "dev:.pre-commit-config.yaml").stdout
    assert "id: mine" in config and "id: dlgit-policy" in config and "id: dlgit-commit-msg" in config
    assert not (repo.path / ".git/hooks/pre-commit").exists()


def test_a_framework_config_dlgit_cannot_extend_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "fw")
    repo.write(".pre-commit-config.yaml", "repos: []\n")
    repo.commit("chore: framework")
    before = picture(repo)
    proc = flow(repo, "init")
    assert proc.returncode == 2 and "id: dlgit-policy" in proc.stderr and picture(repo) == before


def test_dvc_and_commitizen(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "both")
    repo.write("model/net.py", "NET = 1\n")
    repo.commit("feat: the model")
    ok(flow(repo, "init", "--dvc", "--commitizen"))
    files = tree(repo, "dev")
    assert {".dvc/config", ".dvcignore", ".cz.toml"} <= files
    assert 'name = "cz_dlgit"' in repo.git("show", "dev:.cz.toml").stdout
    assert "nothing to do" in ok(flow(repo, "init", "--dvc", "--commitizen"))


def test_dry_run_and_undo(tmp_path: Path) -> None:
    for empty in (True, False):
        repo = make_repo(tmp_path / f"repo-{empty}")
        if not empty:
            repo.write("model/net.py", "NET = 1\n")
            repo.commit("feat: the model")
        before = picture(repo)
        assert "$ git" in ok(flow(repo, "init", "--dry-run")) and picture(repo) == before
        ok(flow(repo, "init"))
        ok(flow(repo, "undo"))
        after = picture(repo)
        assert (after.refs, after.head, after.status, after.files) == (before.refs, before.head, before.status, before.files)


INIT_STEPS = 9  # dev, hooks, switch, three files, .gitignore, commit, switch back


@pytest.mark.parametrize("step", range(1, INIT_STEPS + 1))
def test_crash_after_a_step_then_continue_or_abort(tmp_path: Path, step: int) -> None:
    repo = make_repo(tmp_path / "old")
    repo.write("model/net.py", "NET = 1\n")
    repo.commit("feat: the model")
    assert steps_of(repo, "init") == INIT_STEPS
    before, known = picture(repo), commits(repo)
    assert killed(flow(repo, "init", crash=step))
    twin = Repo(tmp_path / "twin")
    shutil.copytree(repo.path, twin.path, symlinks=True)
    ok(flow(repo, "continue"))
    assert set(SET_UP) <= tree(repo, "dev") and "nothing to do" in ok(flow(repo, "init"))
    ok(flow(twin, "abort"))
    after = picture(twin)
    assert (after.refs, after.head, after.status, after.files) == (before.refs, before.head, before.status, before.files)
    assert known <= commits(twin)


def test_commitizen_for_framework_users_gets_its_hook_with_dlgit_inside(tmp_path: Path) -> None:
    import yaml

    repo = make_repo(tmp_path / "fw")
    repo.write(".pre-commit-config.yaml", "repos:\n  - repo: local\n    hooks:\n      - id: mine\n        name: mine\n"
               "        entry: 'true'\n        language: system\n")
    repo.commit("chore: framework")
    ok(flow(repo, "init", "--commitizen"))
    config = yaml.safe_load(repo.git("show", "dev:.pre-commit-config.yaml").stdout)
    [cz] = [entry for entry in config["repos"] if entry["repo"].endswith("commitizen")]
    assert cz["hooks"][0]["id"] == "commitizen" and cz["hooks"][0]["additional_dependencies"][0].startswith("dlgit")
    assert "nothing to do" in ok(flow(repo, "init", "--commitizen"))
