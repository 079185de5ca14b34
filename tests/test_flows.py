"""The flows of issue 9 through real git with dlgit's hooks in force: release, hotfix and feature
end to end; conflict → continue and conflict → abort; a crash (SIGKILL) after every step →
continue and abort; undo; --dry-run; preconditions."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Repo, setup_commit
from flowkit import CONFLICT, commits, flow, killed, ok, picture, steps_of

NET = "model/net.py"


def message(repo: Repo, rev: str) -> str:
    return repo.git("log", "-1", "--format=%B", rev).stdout.strip()


def parents(repo: Repo, rev: str) -> list[str]:
    return repo.git("rev-list", "--parents", "-n1", rev).stdout.split()[1:]


def version(repo: Repo, rev: str) -> str:
    text = repo.git("show", f"{rev}:tasks/main/config.yaml").stdout
    return next(line.split()[1] for line in text.splitlines() if line.startswith("VERSION:"))


def checked(repo: Repo, *branches: str) -> None:
    for branch in branches:
        proc = repo.dlgit("check", "--branch", branch, branch)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def dev_work(repo: Repo) -> Repo:
    """dev with a feature and a fix on it, an untracked file in the work tree; dev checked out."""
    repo.git("switch", "-q", "dev")
    repo.write(NET, "NET = 2\n")
    repo.commit("feat: a bigger net")
    repo.write("model/loss.py", "LOSS = 1\n")
    repo.commit("fix: the loss")
    repo.write("notes.txt", "untracked, and kept by every flow\n")
    return repo


# --- end to end ----------------------------------------------------------------------------------


def test_release_squashes_bumps_tags_and_merges_back(dev_work: Repo) -> None:
    repo = dev_work
    main_before, dev_before = repo.head("main"), repo.head("dev")
    config_before = repo.git("show", "main:tasks/main/config.yaml").stdout
    ok(flow(repo, "release"))
    bump, squash = repo.head("main"), repo.head("main^")
    assert message(repo, bump) == "bump: version 0.1.0 → 0.2.0" and parents(repo, bump) == [squash]
    assert parents(repo, squash) == [main_before]
    assert message(repo, squash).splitlines()[0] == "chore(release): 0.2.0 from dev"
    assert "feat: a bigger net\nfix: the loss" in message(repo, squash)
    assert message(repo, squash).endswith(f"Squashed-from: dev@{dev_before}")
    assert repo.git("cat-file", "-t", "v0.2.0").stdout.strip() == "tag" and repo.head("v0.2.0^{commit}") == bump
    assert repo.git("show", "main:tasks/main/config.yaml").stdout == config_before.replace("VERSION: 0.1.0", "VERSION: 0.2.0")
    assert parents(repo, "dev") == [dev_before, bump] and repo.branch() == "dev"
    assert (repo.path / "notes.txt").exists()
    checked(repo, "main", "dev")


def test_two_releases_in_a_row_and_one_after_a_hotfix(dev_work: Repo) -> None:
    repo = dev_work
    ok(flow(repo, "release"))
    repo.write("model/more.py", "MORE = 1\n")
    repo.commit("feat: more")
    ok(flow(repo, "release"))  # the back-merge makes the second squash clean
    assert version(repo, "main") == "0.3.0" and message(repo, "main^").count("\n") == 4  # only the new commit is listed
    ok(flow(repo, "hotfix", "start", "typo"))
    repo.write(NET, "NET = 3\n")
    repo.commit("fix: typo")
    ok(flow(repo, "hotfix", "finish"))
    assert version(repo, "main") == "0.3.1" and repo.head("v0.3.1^{commit}") == repo.head("main")
    assert repo.git("branch", "--list", "hotfix-typo").stdout == "" and repo.branch() == "dev"
    repo.write("model/even_more.py", "X = 1\n")
    repo.commit("fix: even more")
    ok(flow(repo, "release"))
    assert version(repo, "main") == "0.3.2"
    checked(repo, "main", "dev")


def test_release_bump_follows_the_commit_types(dev_work: Repo) -> None:
    repo = dev_work
    repo.write("model/api.py", "API = 2\n")
    repo.commit("refactor(model)!: a new API")
    assert "0.1.0 → 0.2.0" in ok(flow(repo, "release", "--dry-run"))  # below 1.0 a breaking change bumps the minor
    assert "0.1.0 → 1.0.0" in ok(flow(repo, "release", "--bump", "major", "--dry-run"))
    assert "0.1.0 → 0.1.1" in ok(flow(repo, "release", "--bump", "patch", "--dry-run"))


def test_release_without_squash_merges_dev(dev_work: Repo) -> None:
    repo = dev_work
    dev_before = repo.head("dev")
    ok(flow(repo, "release", "--no-squash"))
    assert parents(repo, "main^")[1] == dev_before and message(repo, "main") == "bump: version 0.1.0 → 0.2.0"
    checked(repo, "main", "dev")


def test_nothing_to_release(repo: Repo) -> None:
    before = picture(repo)
    assert "nothing to release" in ok(flow(repo, "release"))
    assert picture(repo) == before


def test_feature_start_and_finish(repo: Repo) -> None:
    ok(flow(repo, "feature", "start", "loader"))
    assert repo.branch() == "feature-loader" and repo.head() == repo.head("dev")
    repo.write("data/loader.py", "L = 1\n")
    repo.commit("feat: loader")
    tip = repo.head()
    out = ok(flow(repo, "feature", "finish"))
    assert parents(repo, "dev")[1] == tip and message(repo, "dev") == "chore: merge feature-loader into dev"
    assert repo.git("branch", "--list", "feature-loader").stdout == "" and "deleted" in out
    checked(repo, "dev")


def test_hotfix_too_big_is_refused_before_anything_moves(repo: Repo) -> None:
    ok(flow(repo, "hotfix", "start", "big"))
    for i in range(6):
        repo.write(f"model/f{i}.py", "x\n")
    setup_commit(repo, "fix: too much")
    before = picture(repo)
    proc = flow(repo, "hotfix", "finish")
    assert proc.returncode == 1 and "✗ hotfix-size" in proc.stderr and picture(repo) == before


# --- conflicts -----------------------------------------------------------------------------------


def conflicting_release(repo: Repo) -> None:
    """main gets a hotfix dev lacks, and dev changes the same line."""
    repo.git("switch", "-q", "-c", "hotfix-net", "main")
    repo.write(NET, "NET = 'hotfix'\n")
    repo.commit("fix: net")
    repo.git("switch", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "fix: merge hotfix-net", "hotfix-net")
    repo.git("switch", "-q", "dev")


def conflicting_hotfix(repo: Repo) -> None:
    """A hotfix whose line dev changed meanwhile: the merge of main into dev conflicts."""
    ok(flow(repo, "hotfix", "start", "net"))
    repo.write(NET, "NET = 'hotfix'\n")
    repo.commit("fix: net")


def conflicting_feature(repo: Repo) -> None:
    repo.git("switch", "-q", "-c", "feature-net", "dev~2")
    repo.write(NET, "NET = 'feature'\n")
    repo.commit("feat: net")


SCENES: dict[str, tuple[Callable[[Repo], None], tuple[str, ...]]] = {
    "release": (conflicting_release, ("release",)),
    "hotfix": (conflicting_hotfix, ("hotfix", "finish")),
    "feature": (conflicting_feature, ("feature", "finish", "net")),
}


@pytest.mark.parametrize("scene", SCENES)
def test_conflict_then_continue(dev_work: Repo, scene: str) -> None:
    repo = dev_work
    prepare, args = SCENES[scene]
    prepare(repo)
    stopped = flow(repo, *args)
    assert stopped.returncode == CONFLICT and NET in stopped.stdout and "dlgit continue" in stopped.stdout
    assert repo.dlgit("status").stdout.count("unfinished") == 1  # exit 1: the fixture installs no pre-push hook
    refused = flow(repo, "feature", "start", "other")
    assert refused.returncode == 2 and "unfinished" in refused.stderr and "dlgit continue" in refused.stderr
    repo.git("checkout", "--theirs", "--", NET)  # resolved to one side: a line of neither side is an evil merge (issue 8)
    resolved = (repo.path / NET).read_text()
    repo.git("add", NET)
    ok(flow(repo, "continue"))
    assert repo.git("show", f"dev:{NET}").stdout == resolved
    checked(repo, "main", "dev")


@pytest.mark.parametrize("scene", SCENES)
def test_conflict_then_abort_restores_everything(dev_work: Repo, scene: str) -> None:
    repo = dev_work
    prepare, args = SCENES[scene]
    prepare(repo)
    before, known = picture(repo), commits(repo)
    assert flow(repo, *args).returncode == CONFLICT
    ok(flow(repo, "abort"))
    assert picture(repo) == before and known <= commits(repo)
    assert flow(repo, "abort").returncode == 2  # nothing left to abort


# --- a crash after every step ----------------------------------------------------------------------

CRASHING: dict[str, tuple[Callable[[Repo], None] | None, tuple[str, ...]]] = {
    "release": (None, ("release",)),
    "release --no-squash": (None, ("release", "--no-squash")),
    "hotfix finish": (lambda repo: (ok(flow(repo, "hotfix", "start", "x")), repo.write("model/x.py", "X\n"), repo.commit("fix: x")),
                      ("hotfix", "finish")),
    "feature finish": (lambda repo: (ok(flow(repo, "feature", "start", "x")), repo.write("model/x.py", "X\n"), repo.commit("feat: x")),
                       ("feature", "finish")),
    "feature start": (None, ("feature", "start", "x")),
}
CRASH_CASES = [(name, step) for name, (prepare, args) in CRASHING.items() for step in range(1, {
    "release": 8, "release --no-squash": 7, "hotfix finish": 8, "feature finish": 3, "feature start": 1}[name] + 1)]


@pytest.mark.parametrize(("name", "step"), CRASH_CASES, ids=[f"{n}-after-step-{s}" for n, s in CRASH_CASES])
def test_crash_after_a_step_then_continue_or_abort(dev_work: Repo, name: str, step: int) -> None:
    repo = dev_work
    prepare, args = CRASHING[name]
    if prepare:
        prepare(repo)
    assert steps_of(repo, *args) >= step
    before, known = picture(repo), commits(repo)
    assert killed(flow(repo, *args, crash=step))
    twin = Repo(repo.path.with_name("twin"))
    shutil.copytree(repo.path, twin.path, symlinks=True)  # the same crashed state, to abort
    ok(flow(repo, "continue"))
    assert known <= commits(repo) and (repo.path / "notes.txt").exists()
    if name.startswith("release"):
        assert version(repo, "main") == "0.2.0" and repo.head("v0.2.0^{commit}") == repo.head("main")
    ok(flow(twin, "abort"))
    assert picture(twin) == before and known <= commits(twin)


# --- undo, dry run, preconditions ---------------------------------------------------------------------


@pytest.mark.parametrize("args", [("release",), ("feature", "start", "x"), ("hotfix", "start", "x")])
def test_undo_restores_the_start_and_dry_run_changes_nothing(dev_work: Repo, args: tuple[str, ...]) -> None:
    repo = dev_work
    before = picture(repo)
    assert "$ git" in ok(flow(repo, *args, "--dry-run")) and picture(repo) == before
    ok(flow(repo, *args))
    ok(flow(repo, "undo"))
    assert picture(repo) == before
    assert flow(repo, "undo").returncode == 2  # nothing left to undo


def test_undo_refused_once_a_touched_branch_moved(dev_work: Repo) -> None:
    repo = dev_work
    ok(flow(repo, "release"))
    repo.write("model/later.py", "L = 1\n")
    repo.commit("feat: later")
    proc = flow(repo, "undo")
    assert proc.returncode == 2 and "refs/heads/dev moved" in proc.stderr


def add_origin(repo: Repo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    remote = tmp_path_factory.mktemp("remote") / "origin.git"
    repo.git("init", "-q", "--bare", str(remote))
    repo.git("remote", "add", "origin", str(remote))
    return remote


def test_undo_refused_after_push(dev_work: Repo, tmp_path_factory: pytest.TempPathFactory) -> None:
    repo = dev_work
    remote = add_origin(repo, tmp_path_factory)
    repo.git("push", "-q", "--no-verify", "origin", "main", "dev")
    ok(flow(repo, "release", "--push"))
    assert Repo(remote).head("main") == repo.head("main") and Repo(remote).git("tag").stdout.strip() == "v0.2.0"
    proc = flow(repo, "undo")
    assert proc.returncode == 2 and "push" in proc.stderr


def test_undo_refused_when_the_result_is_on_a_remote(dev_work: Repo, tmp_path_factory: pytest.TempPathFactory) -> None:
    repo = dev_work
    add_origin(repo, tmp_path_factory)
    ok(flow(repo, "release"))
    repo.git("push", "-q", "--no-verify", "origin", "main")
    proc = flow(repo, "undo")
    assert proc.returncode == 2 and "main is on a remote" in proc.stderr


def test_preconditions_refuse_with_nothing_changed(dev_work: Repo) -> None:
    repo = dev_work
    repo.write("model/loss.py", "LOSS = 'dirty'\n")
    before = picture(repo)
    dirty = flow(repo, "release")
    assert dirty.returncode == 2 and "model/loss.py" in dirty.stderr and picture(repo) == before
    repo.git("checkout", "--", "model/loss.py")
    wrong = flow(repo, "feature", "finish")
    assert wrong.returncode == 2 and "name the feature branch" in wrong.stderr
    repo.git("tag", "-a", "-m", "taken", "v0.2.0", "main")
    tagged = flow(repo, "release")
    assert tagged.returncode == 2 and "v0.2.0 exists" in tagged.stderr
    repo.git("switch", "-q", "main")
    repo.git("branch", "-D", "dev")
    before = picture(repo)
    missing = flow(repo, "release")
    assert missing.returncode == 2 and "no branch 'dev'" in missing.stderr and picture(repo) == before
