"""Issue 15: dlgit's flows after hand-made steps the model allows, in any order; `dlgit check`
from the root passes over the result."""

from __future__ import annotations

from conftest import Repo
from flowkit import ok
from test_seed_by_hand import Seed, git


def checks(repo: Repo) -> None:
    for branch in ("main", "dev"):
        out = ok(repo.dlgit("check", "--branch", branch, branch))
        assert "no violations" in out, out


def test_finish_task_after_a_hand_release_not_merged_back(repo: Repo) -> None:
    """main released by `git merge --no-ff dev` and bumped, dev not merged back: finish-task merges
    main into dev before the task, and its verify step blames nothing."""
    seed = Seed(repo)
    seed.feature("feature-loader", "data/loader.py", "LOADER = 1\n")
    seed.release("no-ff", "0.2.0")
    released = repo.head("main")
    ok(repo.dlgit("start-task", "lr0.1"))
    (repo.path / "tasks" / repo.branch() / "log.txt").write_text("loss 0.1\n")
    ok(repo.dlgit("finish-task"))
    assert repo.git("merge-base", "--is-ancestor", released, "dev", check=False).returncode == 0
    checks(repo)


def test_release_merges_main_into_dev_first_so_a_conflict_is_resolved_on_dev(repo: Repo) -> None:
    """A hotfix merged into main by hand conflicts with dev's feature: `dlgit release` stops on dev,
    the conflict is resolved by combining both sides, `dlgit continue`, `dlgit release` again; main
    ships both the feature and the hotfix."""
    repo.write("model/net.py", "A = 1\nB = 1\n")
    git(repo, "commit", "-a", "--amend", "--no-verify", "-m", "chore: initial layout")  # the root, two values
    git(repo, "branch", "-f", "dev", "main")
    seed = Seed(repo)
    seed.feature("feature-a", "model/net.py", "A = 2\nB = 1\n")
    git(repo, "checkout", "main")
    git(repo, "checkout", "-b", "hotfix-b")
    repo.write("model/net.py", "A = 1\nB = 2\n")
    git(repo, "commit", "-a", "-m", "fix: b")
    git(repo, "checkout", "main")
    git(repo, "merge", "--no-ff", "hotfix-b", "-m", "fix: merge hotfix-b")
    git(repo, "checkout", "dev")
    stopped = repo.dlgit("release")
    assert stopped.returncode != 0 and "model/net.py" in stopped.stdout + stopped.stderr
    assert repo.branch() == "dev"
    repo.write("model/net.py", "A = 2\nB = 2\n")
    git(repo, "add", "model/net.py")
    ok(repo.dlgit("continue"))
    ok(repo.dlgit("release"))
    assert repo.git("show", "main:model/net.py").stdout == "A = 2\nB = 2\n"
    checks(repo)


def test_release_after_a_hand_task_merge_into_main_is_one_command(repo: Repo) -> None:
    seed = Seed(repo)
    seed.feature("feature-loader", "data/loader.py", "LOADER = 1\n")
    seed.task("lr0.1", dev=False)
    git(repo, "checkout", "dev")
    ok(repo.dlgit("release"))
    assert repo.git("merge-base", "--is-ancestor", "main", "dev", check=False).returncode == 0
    checks(repo)


def _hotfix(repo: Repo) -> None:
    """`dlgit hotfix start` from main, a small fix, `dlgit hotfix finish`: it lands on main and dev."""
    ok(repo.dlgit("hotfix", "start", "typo"))
    repo.write("model/net.py", repo.git("show", "main:model/net.py").stdout + "TYPO = 0\n")
    git(repo, "commit", "-a", "-m", "fix: typo")
    fixed = repo.head()
    ok(repo.dlgit("hotfix", "finish"))
    for branch in ("main", "dev"):
        assert repo.git("merge-base", "--is-ancestor", fixed, branch, check=False).returncode == 0, branch
    checks(repo)


def test_hotfix_finish_after_a_hand_release_not_merged_back(repo: Repo) -> None:
    seed = Seed(repo)
    seed.feature("feature-loader", "data/loader.py", "LOADER = 1\n")
    seed.release("no-ff", "0.2.0")
    _hotfix(repo)


def test_hotfix_finish_after_a_hand_task_merge_into_main_and_dev(repo: Repo) -> None:
    seed = Seed(repo)
    seed.feature("feature-loader", "data/loader.py", "LOADER = 1\n")
    seed.task("lr0.1")
    _hotfix(repo)


def test_hotfix_finish_after_a_hand_fast_forward_back_merge(repo: Repo) -> None:
    seed = Seed(repo)
    seed.feature("feature-loader", "data/loader.py", "LOADER = 1\n")
    seed.release("no-ff", "0.2.0")
    assert "Fast-forward" in seed.back_merge()
    _hotfix(repo)


def test_hotfix_finish_after_a_hand_squash_release_and_task(repo: Repo) -> None:
    seed = Seed(repo)
    seed.feature("feature-loader", "data/loader.py", "LOADER = 1\n")
    seed.release("squash", "0.2.0")
    seed.task("lr0.1", dev=False)
    _hotfix(repo)
