"""What a merge's content may be, on every kind of branch (issue 15 item 5, issue 16 items 4 and 8).

A merge is recomputed from its parents; what it adds beyond git's merge is judged as a commit on its
branch: a conflict resolved by combining both sides is fine wherever such a commit is (dev, a
feature; a task inside its folder), never on main, where the printed fix carries the resolution to
dev and releases dev as it is. Recomputing is bounded by `limits.max_merge_paths`.
"""

from __future__ import annotations

import subprocess

from conftest import Repo, assert_allowed, assert_blocked, assert_usage_error, setup_commit, start_task
from flowkit import CONFLICT, flow, ok
from pastefix import first_fix

NET = "model/net.py"
COMBINED = "NET = max(10, 5)  # the hotfix's floor, the feature's size\n"  # a line found on neither side


def _hotfix_on_main_feature_on_dev(repo: Repo) -> None:
    """main gets a hotfix (NET = 10), dev a feature (NET = 5): releasing dev onto main conflicts."""
    repo.git("switch", "-q", "-c", "hotfix-net", "main")
    repo.write(NET, "NET = 10\n")
    setup_commit(repo, "fix: net floor")
    repo.git("switch", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "--no-verify", "-m", "fix: merge hotfix-net", "hotfix-net")
    repo.git("switch", "-q", "dev")
    repo.write(NET, "NET = 5\n")
    setup_commit(repo, "feat: smaller net")
    repo.git("switch", "-q", "main")


def _paste(repo: Repo, line: str) -> None:
    proc = subprocess.run(["bash", "-c", line], cwd=repo.path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"$ {line}\n{proc.stdout}{proc.stderr}"


def _released_through_dev(repo: Repo) -> None:
    """Both sides kept: main holds the combined line, dev holds main (the hotfix), and check agrees."""
    assert repo.branch() == "main"
    assert (repo.path / NET).read_text() == COMBINED
    assert repo.git("show", f"dev:{NET}").stdout == COMBINED
    assert repo.git("merge-base", "--is-ancestor", "main~1", "dev", check=False).returncode == 0  # dev took main's hotfix
    assert repo.git("status", "--porcelain", "--untracked-files=no").stdout == ""
    for branch in ("main", "dev"):
        proc = repo.dlgit("check", "--branch", branch, branch)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_release_squash_resolved_with_both_sides_is_refused_and_its_fix_releases_through_dev(repo: Repo) -> None:
    _hotfix_on_main_feature_on_dev(repo)
    assert repo.git("merge", "--squash", "dev", check=False).returncode == 1  # conflict in model/net.py
    repo.write(NET, COMBINED)
    repo.git("add", NET)
    proc = repo.git("commit", "-m", "chore: release", "--trailer", f"Squashed-from: dev@{repo.head('dev')}", check=False)
    assert_blocked(proc, "main-protected", f"{NET} (holds lines found on neither side)")
    fix = first_fix(proc.stderr, "main-protected")
    assert fix is not None and "git switch dev" in fix
    _paste(repo, fix)
    _released_through_dev(repo)
    assert "Squashed-from: dev@" in repo.git("log", "-1", "--format=%B").stdout


def test_release_merge_resolved_with_both_sides_is_refused_and_its_fix_releases_through_dev(repo: Repo) -> None:
    _hotfix_on_main_feature_on_dev(repo)
    assert repo.git("merge", "--no-ff", "dev", check=False).returncode == 1
    repo.write(NET, COMBINED)
    repo.git("add", NET)
    proc = repo.git("commit", "-m", "chore: release dev", check=False)
    assert_blocked(proc, "main-protected", f"{NET} (holds lines found on neither side)")
    _paste(repo, first_fix(proc.stderr, "main-protected") or "false")
    _released_through_dev(repo)
    assert repo.git("rev-parse", "HEAD^2").stdout.strip() == repo.head("dev")


def test_release_squash_resolved_to_one_side_passes(repo: Repo) -> None:
    _hotfix_on_main_feature_on_dev(repo)
    assert repo.git("merge", "--squash", "dev", check=False).returncode == 1
    repo.git("checkout", "--theirs", "--", NET)
    repo.git("add", NET)
    assert_allowed(repo.git("commit", "-m", "chore: release", "--trailer", f"Squashed-from: dev@{repo.head('dev')}", check=False))


def test_dev_takes_a_conflict_resolved_with_both_sides(repo: Repo) -> None:
    """`git merge main` on dev (hotfix finish's back-merge, the release's first step) resolved as people do."""
    _hotfix_on_main_feature_on_dev(repo)
    repo.git("switch", "-q", "dev")
    assert repo.git("merge", "main", check=False).returncode == 1
    repo.write(NET, COMBINED)
    repo.git("add", NET)
    assert_allowed(repo.git("commit", "--no-edit", check=False))
    proc = repo.dlgit("check", "--branch", "dev", "dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dev_still_refuses_a_clean_path_changed_by_a_merge(repo: Repo) -> None:
    """An evil merge is not a conflict resolution: a path git merges cleanly must stay as git merged it."""
    _hotfix_on_main_feature_on_dev(repo)
    repo.git("switch", "-q", "dev")
    assert repo.git("merge", "main", check=False).returncode == 1
    repo.git("checkout", "--theirs", "--", NET)
    repo.write("tasks/main/train.py", "print('train'); import os\n")  # git merges it cleanly (unchanged on both sides)
    repo.git("add", "-A")
    assert_blocked(repo.git("commit", "--no-edit", check=False), "merge-direction", "tasks/main/train.py (changed although git merges",
                   replay="lossy")


# --- merges on task branches (issue 16 item 4) ----------------------------------------------------


def _main_moves_on(repo: Repo) -> None:
    """A hotfix lands on main after the task started, so merging main into the task brings something."""
    repo.git("switch", "-q", "-c", "hotfix-doc", "main")
    repo.write("model/doc.py", "DOC = 1\n")
    setup_commit(repo, "fix: doc")
    repo.git("switch", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "--no-verify", "-m", "fix: merge hotfix-doc", "hotfix-doc")


def test_merge_of_main_into_a_task_that_also_edits_core_is_refused(repo: Repo) -> None:
    task = start_task(repo)
    _main_moves_on(repo)
    repo.git("switch", "-q", task)
    repo.git("merge", "-q", "--no-ff", "--no-commit", "main")
    repo.write(NET, "NET = 'tuned for this run'\n")
    repo.git("add", NET)
    proc = repo.git("commit", "--no-edit", check=False)
    assert_blocked(proc, "task-scope", NET, "beyond git's merge of its parents")
    repo.git("merge", "--abort")
    # the same edit as a task commit was always refused
    repo.write(NET, "NET = 'tuned for this run'\n")
    assert_blocked(repo.commit("task: tune", check=False), "task-scope", NET)


def test_merge_of_main_into_a_task_passes(repo: Repo) -> None:
    task = start_task(repo)
    _main_moves_on(repo)
    repo.git("switch", "-q", task)
    assert_allowed(repo.git("merge", "--no-ff", "--no-edit", "main", check=False))
    repo.write(f"tasks/{task}/result.txt", "acc 0.9\n")
    assert_allowed(repo.commit("task: result"))
    proc = repo.dlgit("check", "--branch", task, f"main..{task}")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_merge_into_a_task_of_a_commit_no_branch_owns_is_refused_when_it_brings_core(repo: Repo) -> None:
    task = start_task(repo)
    repo.git("switch", "-q", "-c", "feature-gone", "main")
    repo.write(NET, "NET = 'unreleased'\n")
    setup_commit(repo, "feat: unreleased core")
    tip = repo.head()
    repo.git("switch", "-q", task)
    repo.git("branch", "-q", "-D", "feature-gone")
    proc = repo.git("merge", "--no-ff", "-m", "Merge branch 'main'", tip, check=False)
    assert_blocked(proc, "task-scope", NET, "which no branch here owns", replay="undo")


def test_check_refuses_a_task_merge_that_brings_nothing_but_core_edits(repo: Repo) -> None:
    """A merge whose second parent the task already holds merges nothing: all it changes is a task commit."""
    task = start_task(repo)
    repo.write(f"tasks/{task}/a.txt", "a\n")
    setup_commit(repo, "task: a")
    repo.write(NET, "NET = 'sneaked in'\n")
    repo.git("add", NET)
    tree = repo.git("write-tree").stdout.strip()
    fake = repo.git("commit-tree", tree, "-p", "HEAD", "-p", "main", "-m", "Merge branch 'main'").stdout.strip()
    repo.git("reset", "-q", "--hard", fake)
    proc = repo.dlgit("check", "--branch", task, f"main..{task}")
    assert proc.returncode == 1 and "✗ task-scope" in proc.stdout and NET in proc.stdout, proc.stdout + proc.stderr


# --- bounded work (issue 16 item 8) ---------------------------------------------------------------


def _conflicting_merges(repo: Repo, merges: int, files: int) -> None:
    """On feature-many: MERGES merges, each of a fresh side branch conflicting in FILES files, resolved to ours."""
    repo.git("switch", "-q", "-c", "feature-many", "dev")
    for i in range(files):
        repo.write(f"model/m{i}.py", "M = 0\n")
    setup_commit(repo, "feat: many modules")
    base = repo.head()
    for i in range(files):
        repo.write(f"model/m{i}.py", "M = 'ours'\n")
    setup_commit(repo, "feat: ours")
    side_tree = _tree_with(repo, base, {f"model/m{i}.py": "M = 'theirs'\n" for i in range(files)})
    for n in range(merges):
        side = repo.git("commit-tree", side_tree, "-p", base, "-m", f"feat: theirs {n}").stdout.strip()
        merge = repo.git("commit-tree", "HEAD^{tree}", "-p", "HEAD", "-p", side, "-m", f"Merge branch 'side-{n}'").stdout.strip()
        repo.git("reset", "-q", "--soft", merge)


def _tree_with(repo: Repo, base: str, files: dict[str, str]) -> str:
    index = repo.path / ".git" / "side-index"
    env = {"GIT_INDEX_FILE": str(index)}
    repo.git("read-tree", base, env=env)
    for path, text in files.items():
        blob = repo.git("hash-object", "-w", "--stdin", input=text).stdout.strip()
        repo.git("update-index", "--cacheinfo", f"100644,{blob},{path}", env=env)
    tree = repo.git("write-tree", env=env).stdout.strip()
    index.unlink()
    return tree


def _limit(repo: Repo, paths: int) -> None:
    """Settings on main (where check reads them): limits.max_merge_paths."""
    repo.git("switch", "-q", "main")
    repo.write(".dlgit.yaml", f"limits:\n  max_merge_paths: {paths}\n")
    setup_commit(repo, "chore: settings", ".dlgit.yaml")
    repo.git("switch", "-q", "dev")
    repo.git("merge", "-q", "--no-verify", "main")


def test_recomputing_more_merge_paths_than_the_limit_is_exit_2(repo: Repo) -> None:
    _limit(repo, 30)
    _conflicting_merges(repo, merges=2, files=20)
    proc = repo.dlgit("check", "--branch", "feature-many", "dev..feature-many")
    assert_usage_error(proc, "limits.max_merge_paths", "30")


def test_recomputing_merges_within_the_limit_is_judged(repo: Repo) -> None:
    _limit(repo, 30)
    _conflicting_merges(repo, merges=1, files=20)
    proc = repo.dlgit("check", "--branch", "feature-many", "dev..feature-many")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_limit_is_documented(repo: Repo) -> None:
    proc = repo.dlgit("explain", "config")
    assert "limits.max_merge_paths: 20000" in proc.stdout, proc.stdout


def test_hotfix_finish_back_merge_resolved_with_both_sides_continues(repo: Repo) -> None:
    """hotfix finish merges main into dev; a conflict there resolved by combining both sides is dev's to take."""
    repo.git("switch", "-q", "dev")
    repo.write(NET, "NET = 2\n")
    repo.commit("feat: a bigger net")
    ok(flow(repo, "hotfix", "start", "net"))
    repo.write(NET, "NET = 'hotfix'\n")
    repo.commit("fix: net")
    stopped = flow(repo, "hotfix", "finish")
    assert stopped.returncode == CONFLICT and NET in stopped.stdout, stopped.stdout + stopped.stderr
    repo.write(NET, "NET = 'hotfix' if 2 < 3 else 2\n")
    repo.git("add", NET)
    ok(flow(repo, "continue"))
    assert repo.git("show", f"dev:{NET}").stdout == "NET = 'hotfix' if 2 < 3 else 2\n"
    for branch in ("main", "dev"):
        proc = repo.dlgit("check", "--branch", branch, branch)
        assert proc.returncode == 0, proc.stdout + proc.stderr


# --- releases go forward (issue 16 item 7) --------------------------------------------------------


def _released_past_a_revert(repo: Repo) -> str:
    repo.git("switch", "-q", "dev")
    repo.write(NET, "NET = 3\n")
    setup_commit(repo, "feat: wider net")
    repo.write("model/telemetry.py", "SEND = True\n")
    setup_commit(repo, "feat: telemetry")
    left_behind = repo.head()
    repo.git("rm", "-q", "model/telemetry.py")
    setup_commit(repo, "revert: telemetry")
    repo.git("switch", "-q", "main")
    repo.git("merge", "-q", "--squash", "dev")
    setup_commit(repo, f"chore: release\n\nSquashed-from: dev@{repo.head('dev')}")
    return left_behind


def test_hook_refuses_a_release_of_a_commit_dev_left_behind(repo: Repo) -> None:
    left_behind = _released_past_a_revert(repo)
    proc = repo.git("merge", "--no-ff", "-m", "chore: release dev", left_behind, check=False)
    assert_blocked(proc, "merge-direction", "only forward", left_behind[:12], replay="undo")


def test_hook_takes_the_next_release_of_dev(repo: Repo) -> None:
    _released_past_a_revert(repo)
    repo.git("switch", "-q", "dev")
    repo.write("model/metrics.py", "M = 1\n")
    setup_commit(repo, "feat: metrics")
    repo.git("switch", "-q", "main")
    assert_allowed(repo.git("merge", "--no-ff", "-m", "chore: release dev", "dev", check=False))
    proc = repo.dlgit("check", "--branch", "main", "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
