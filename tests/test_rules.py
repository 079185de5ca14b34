"""Every rule of SPEC §4, blocked and allowed, through real `git commit` / `git merge` with the hooks firing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import TASK, TEMPLATE_CONFIG, Repo, assert_allowed, assert_blocked, setup_commit, start_task

DEBUG = "debug-0.1.0-20260101T000000-tiny"


def on_branch(repo: Repo, name: str, start: str = "dev") -> None:
    repo.git("switch", "-q", "-c", name, start)


# --- branch-name -------------------------------------------------------------------------------


def test_branch_name_unknown_kind_blocked(repo: Repo) -> None:
    on_branch(repo, "wip")
    repo.write("model/net.py", "NET = 2\n")
    proc = repo.commit("feat: tweak", check=False)
    assert_blocked(proc, "branch-name", "'wip'", "git branch -m wip feature-wip")
    assert "branch 'wip' (kind: unknown)" in proc.stderr


@pytest.mark.parametrize("name", ["task-0.1-20260101T000000-x", "task-0.1.0-20261340T000000-x", "feature-"])
def test_branch_name_malformed_known_prefix_blocked(repo: Repo, name: str) -> None:
    on_branch(repo, name)
    repo.write("tasks/notes.txt")
    assert_blocked(repo.commit("chore: notes", check=False), "branch-name", name, "git branch -m")


def test_branch_name_feature_allowed(repo: Repo) -> None:
    on_branch(repo, "feature-data.loader_v2")
    repo.write("data/loader.py")
    assert_allowed(repo.commit("feat: loader"))


# --- main-protected ----------------------------------------------------------------------------


def test_main_protected_direct_commit_blocked(repo: Repo) -> None:
    repo.write("model/net.py", "NET = 2\n")
    proc = repo.commit("feat: tweak", check=False)
    assert_blocked(proc, "main-protected", "model/net.py", "git stash push -q && git switch dev && if")
    assert "branch 'main' (kind: main)" in proc.stderr


def test_main_protected_root_commit_allowed(bare_repo: Repo) -> None:
    bare_repo.install_direct_hooks()
    bare_repo.write("tasks/main/config.yaml", TEMPLATE_CONFIG)
    assert_allowed(bare_repo.commit("chore: initial layout"))
    bare_repo.write("model/net.py")
    assert_blocked(bare_repo.commit("feat: second", check=False), "main-protected", "model/net.py")


def test_main_protected_no_ff_merge_of_dev_allowed(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 2\n")
    setup_commit(repo, "feat: better net")
    repo.git("switch", "-q", "main")
    assert_allowed(repo.git("merge", "--no-ff", "-m", "feat: release better net", "dev", check=False))
    assert repo.git("rev-list", "--count", "--merges", "main").stdout.strip() == "1"


def _squash_dev(repo: Repo) -> str:
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 2\n")
    setup_commit(repo, "feat: better net")
    repo.write("model/head.py")
    setup_commit(repo, "feat: a head")
    repo.git("switch", "-q", "main")
    repo.git("merge", "--squash", "dev")
    return repo.head("dev")


def test_main_protected_squash_with_trailer_allowed(repo: Repo) -> None:
    tip = _squash_dev(repo)
    proc = repo.git("commit", "-m", "feat: release 0.2.0", "--trailer", f"Squashed-from: dev@{tip}", check=False)
    assert_allowed(proc)
    assert f"Squashed-from: dev@{tip}" in repo.git("log", "-1", "--format=%B").stdout


def test_main_protected_squash_with_a_wrong_trailer_blocked_at_commit_msg(repo: Repo) -> None:
    tip = _squash_dev(repo)
    # a trailer naming another commit is refused, not replaced
    proc = repo.git("commit", "-m", "feat: release", "--trailer", f"Squashed-from: dev@{repo.head('main')}", check=False)
    assert_blocked(proc, "main-protected", f"Squashed-from: dev@{tip}", fix="--trailer")
    assert "commit message blocked" in proc.stderr
    # an abbreviated sha is not enough: `dlgit check` needs the full one
    proc = repo.git("commit", "-m", "feat: release", "--trailer", f"Squashed-from: dev@{tip[:12]}", check=False)
    assert_blocked(proc, "main-protected", f"Squashed-from: dev@{tip}", fix="--trailer")


def test_squash_without_trailer_gets_it_from_gits_squash_state(repo: Repo) -> None:
    """The seed's `git merge --squash dev` + `git commit -m 'feat: ...'`: the commit-msg hook adds
    the trailer only dlgit knows, from SQUASH_MSG, and the commit passes."""
    tip = _squash_dev(repo)
    assert_allowed(repo.git("commit", "-m", "feat: release 0.2.0", check=False))
    message = repo.git("log", "-1", "--format=%B").stdout.strip()
    assert message == f"feat: release 0.2.0\n\nSquashed-from: dev@{tip}", message


BUMPED = TEMPLATE_CONFIG.replace("VERSION: 0.1.0", "VERSION: 0.2.0")


@pytest.mark.parametrize("message", ["bump: version 0.1.0 → 0.2.0", "chore: bump version to 0.2.0"])
def test_main_protected_version_bump_allowed(repo: Repo, message: str) -> None:
    repo.write("tasks/main/config.yaml", BUMPED)
    assert_allowed(repo.commit(message))


def test_main_protected_version_bump_with_another_edit_blocked(repo: Repo) -> None:
    repo.write("tasks/main/config.yaml", BUMPED.replace("lr: 0.01", "lr: 0.02"))
    proc = repo.commit("bump: version 0.1.0 → 0.2.0", check=False)
    assert_blocked(proc, "main-protected", "tasks/main/config.yaml")


def test_main_protected_version_bump_plus_other_file_or_downgrade_blocked(repo: Repo) -> None:
    repo.write("tasks/main/config.yaml", BUMPED)
    repo.write("model/net.py", "NET = 2\n")
    assert_blocked(repo.commit("chore: bump", check=False), "main-protected", "model/net.py")
    repo.git("restore", "--staged", "model/net.py")
    repo.git("checkout", "--", "model/net.py")
    repo.write("tasks/main/config.yaml", TEMPLATE_CONFIG.replace("VERSION: 0.1.0", "VERSION: 0.0.9"))
    assert_blocked(repo.commit("chore: downgrade", check=False), "main-protected", "tasks/main/config.yaml")


def test_bump_message_requires_a_real_bump(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 2\n")
    proc = repo.commit("bump: version 0.1.0 → 0.2.0", check=False)
    assert_blocked(proc, "commit-message", "bump: version 0.1.0 → 0.2.0")
    repo.git("switch", "-q", "-f", "main")
    repo.write("tasks/main/config.yaml", BUMPED)
    proc = repo.commit("bump: version 0.1.0 → 0.3.0", check=False)  # a bump, but not the one it claims
    assert_blocked(proc, "commit-message", "bump: version 0.1.0 → 0.3.0")


# --- merge-direction ---------------------------------------------------------------------------


def _feature(repo: Repo, name: str = "feature-x", path: str = "model/x.py", content: str = "x\n") -> None:
    on_branch(repo, name)
    repo.write(path, content)
    setup_commit(repo, f"feat: {name}")


def test_merge_direction_feature_into_main_blocked_and_commit_of_that_merge_blocked(repo: Repo) -> None:
    _feature(repo)
    repo.git("switch", "-q", "main")
    proc = repo.git("merge", "--no-ff", "-m", "feat: sneak", "feature-x", check=False)
    assert_blocked(proc, "merge-direction", "feature-x", "git merge --abort")
    assert "merge blocked" in proc.stderr
    # git leaves the merge in progress; concluding it by hand is blocked by pre-commit (MERGE_HEAD)
    assert (repo.path / ".git" / "MERGE_HEAD").exists()
    proc = repo.git("commit", "--no-edit", check=False)
    assert_blocked(proc, "merge-direction", "feature-x", "git merge --abort")
    repo.git("merge", "--abort")
    assert repo.head("main") == repo.head("dev")


def test_merge_direction_feature_into_dev_allowed(repo: Repo) -> None:
    _feature(repo)
    repo.git("switch", "-q", "dev")
    assert_allowed(repo.git("merge", "--no-ff", "--no-edit", "feature-x", check=False))


def test_merge_direction_octopus_blocked_one_at_a_time_allowed(repo: Repo) -> None:
    _feature(repo, "feature-a", "model/a.py")
    _feature(repo, "feature-b", "model/b.py")
    repo.git("switch", "-q", "dev")
    proc = repo.git("merge", "--no-ff", "-m", "feat: a and b", "feature-a", "feature-b", check=False)
    assert_blocked(proc, "merge-direction", "several branches", "one branch per merge", "git merge --abort", replay="undo")
    repo.git("merge", "--abort")
    for name in ("feature-a", "feature-b"):
        assert_allowed(repo.git("merge", "--no-ff", "--no-edit", name, check=False))


def test_merge_direction_custom_message_does_not_decide_the_source(repo: Repo) -> None:
    _feature(repo)
    repo.git("switch", "-q", "main")
    proc = repo.git("merge", "--no-ff", "-m", "feat: merge branch 'dev'", "feature-x", check=False)
    assert_blocked(proc, "merge-direction", "feature-x")
    repo.git("merge", "--abort")
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 3\n")
    setup_commit(repo, "feat: net 3")
    repo.git("switch", "-q", "main")
    assert_allowed(repo.git("merge", "--no-ff", "-m", "feat: custom 'feature-x'", "dev", check=False))


def test_merge_direction_source_by_commit_when_not_named_by_a_branch(repo: Repo) -> None:
    """`git merge <sha>` or `git merge dev~1`: the source is the branch that holds the commit."""
    repo.git("switch", "-q", "dev")
    for name in ("a", "b"):
        repo.write(f"model/{name}.py")
        setup_commit(repo, f"feat: {name}")
    repo.git("switch", "-q", "main")
    assert_allowed(repo.git("merge", "--no-ff", "-m", "feat: release", "dev~1", check=False))
    repo.git("reset", "-q", "--hard", "HEAD^")
    _feature(repo, "feature-y", "model/y.py")
    repo.git("switch", "-q", "main")
    assert_blocked(repo.git("merge", "--no-ff", "-m", "feat: y", repo.head("feature-y"), check=False), "merge-direction", "feature-y")


def test_merge_direction_remote_tracking_source(repo: Repo) -> None:
    _feature(repo)
    repo.git("switch", "-q", "dev")
    repo.write("model/d.py")
    setup_commit(repo, "feat: d")
    repo.git("update-ref", "refs/remotes/origin/feature-x", "feature-x")
    repo.git("switch", "-q", "main")
    repo.git("branch", "-D", "feature-x")
    proc = repo.git("merge", "--no-ff", "-m", "feat: x", "origin/feature-x", check=False)
    assert_blocked(proc, "merge-direction", "feature branch 'feature-x'")
    repo.git("merge", "--abort")
    repo.git("update-ref", "refs/remotes/origin/dev", "dev")
    repo.git("branch", "-D", "dev")
    assert_allowed(repo.git("merge", "--no-ff", "-m", "feat: release", "origin/dev", check=False))
    assert repo.git("rev-parse", "HEAD^2").stdout.strip() == repo.head("origin/dev")


def test_merge_direction_git_pull_source_from_fetch_head(repo: Repo) -> None:
    _feature(repo)
    repo.git("switch", "-q", "main")
    proc = repo.git("pull", "-q", "--no-rebase", "--no-ff", ".", "feature-x", check=False)
    assert_blocked(proc, "merge-direction", "feature-x", "git merge --abort")
    assert "main-protected" not in proc.stderr
    repo.git("merge", "--abort")
    repo.git("switch", "-q", "dev")
    assert_allowed(repo.git("pull", "-q", "--no-rebase", "--no-ff", "--no-edit", ".", "feature-x", check=False))


def test_merge_direction_debug_branch_never_merged(repo: Repo) -> None:
    repo.git("switch", "-q", "-c", DEBUG, "dev")
    repo.write("model/net.py", "NET = 'debug'\n")
    assert_allowed(repo.commit("fix: try"))
    for target in ("dev", "feature-y"):
        if target != "dev":
            on_branch(repo, target)
        else:
            repo.git("switch", "-q", target)
        proc = repo.git("merge", "--no-ff", "--no-edit", DEBUG, check=False)
        assert_blocked(proc, "merge-direction", DEBUG, "dlgit debug finish", replay="undo")
        repo.git("merge", "--abort")


def test_merge_direction_conflicted_merge_concluded_by_commit(repo: Repo) -> None:
    """The source comes from MERGE_MSG: `feature-same` and dev point at the same commit."""
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 'dev'\n")
    setup_commit(repo, "feat: dev net")
    repo.git("branch", "feature-same", "dev")
    repo.git("switch", "-q", "main")
    repo.write("model/net.py", "NET = 'main'\n")
    repo.commit("fix: main net", extra=("--no-verify",))
    assert repo.git("merge", "feature-same", check=False).returncode == 1  # conflict
    repo.write("model/net.py", "NET = 'both'\n")
    repo.git("add", "model/net.py")
    proc = repo.git("commit", "-m", "feat: resolve", check=False)
    assert_blocked(proc, "merge-direction", "feature-same", "git merge --abort", replay="lossy")  # the resolution was for this merge only
    repo.git("merge", "--abort")
    # the same conflict from dev itself is a release merge: allowed, resolved to one side
    assert repo.git("merge", "dev", check=False).returncode == 1
    repo.write("model/net.py", "NET = 'both'\n")  # a line of neither side: an evil merge (issue 8 item 3)
    repo.git("add", "model/net.py")
    assert_blocked(repo.git("commit", "-m", "feat: release dev", check=False), "main-protected",
                   "model/net.py (holds lines found on neither side)", replay="lossy")  # git's merge replaces the made-up line
    repo.write("model/net.py", "NET = 'dev'\n")  # dev's side
    repo.git("add", "model/net.py")
    assert_allowed(repo.git("commit", "-m", "feat: release dev", check=False))
    assert repo.git("rev-parse", "HEAD^2").stdout.strip() == repo.head("dev")


def test_merge_direction_task_into_main_only_its_folder_allowed(repo: Repo) -> None:
    task = start_task(repo)
    repo.write(f"tasks/{task}/result.txt", "acc 0.9\n")
    setup_commit(repo, "task: result")
    repo.git("switch", "-q", "main")
    assert_allowed(repo.git("merge", "--no-ff", "-m", f"task: merge {task}", task, check=False))
    repo.git("switch", "-q", "dev")
    assert_allowed(repo.git("merge", "--no-ff", "-m", f"task: merge {task}", task, check=False))


def test_task_started_from_another_task_is_merged_after_it(repo: Repo) -> None:
    first = start_task(repo)
    second = "task-0.1.0-20260102T000000-lr0.02"
    repo.git("switch", "-q", "-c", second, first)
    repo.write(f"tasks/{second}/config.yaml", TEMPLATE_CONFIG)
    setup_commit(repo, "task: start", f"tasks/{second}")
    repo.git("switch", "-q", "main")
    proc = repo.git("merge", "--no-ff", "-m", f"task: merge {second}", second, check=False)
    assert_blocked(proc, "task-scope", f"tasks/{first}/config.yaml", fix=f"git merge --no-ff -m 'task: merge {first}' {first}")
    repo.git("merge", "--abort")
    assert_allowed(repo.git("merge", "--no-ff", "-m", f"task: merge {first}", first, check=False))
    assert_allowed(repo.git("merge", "--no-ff", "-m", f"task: merge {second}", second, check=False))


def test_merge_of_task_that_touched_core_blocked_by_task_scope(repo: Repo) -> None:
    task = start_task(repo)
    repo.write("model/net.py", "NET = 'task'\n")
    repo.commit("task: hack core", extra=("--no-verify",))
    repo.git("switch", "-q", "main")
    proc = repo.git("merge", "--no-ff", "-m", f"task: merge {task}", task, check=False)
    assert_blocked(proc, "task-scope", "model/net.py", "git merge --abort", replay="undo")
    repo.git("merge", "--abort")
    repo.git("switch", "-q", "dev")
    proc = repo.git("merge", "--no-ff", "-m", f"task: merge {task}", task, check=False)
    assert_blocked(proc, "task-scope", "model/net.py")


def test_merge_direction_hotfix_squashed_into_main_and_merged_into_dev(repo: Repo) -> None:
    on_branch(repo, "hotfix-nan", "main")
    repo.write("model/net.py", "NET = 'fixed'\n")
    setup_commit(repo, "fix: nan")
    repo.git("branch", "feature-same", "hotfix-nan")  # a tip shared with a branch that may not go to main
    repo.git("switch", "-q", "main")
    repo.git("merge", "--squash", "hotfix-nan")
    trailer = f"Squashed-from: hotfix-nan@{repo.head('hotfix-nan')}"
    assert_allowed(repo.git("commit", "-m", "fix: nan loss", "--trailer", trailer, check=False))
    repo.git("switch", "-q", "dev")
    assert_allowed(repo.git("merge", "--no-ff", "--no-edit", "hotfix-nan", check=False))


def test_merge_direction_squash_of_feature_into_main_blocked(repo: Repo) -> None:
    _feature(repo)
    repo.git("switch", "-q", "main")
    repo.git("merge", "--squash", "feature-x")
    proc = repo.git("commit", "-m", "feat: x", "--trailer", f"Squashed-from: feature-x@{repo.head('feature-x')}", check=False)
    assert_blocked(proc, "merge-direction", "feature-x", "git reset --merge")


# --- task-scope --------------------------------------------------------------------------------


def test_task_scope_inside_allowed_outside_blocked(repo: Repo) -> None:
    task = start_task(repo)
    repo.write(f"tasks/{task}/notes.md")
    assert_allowed(repo.commit("task: notes"))
    repo.write("model/net.py", "NET = 'task'\n")
    proc = repo.commit("task: tweak core", check=False)
    assert_blocked(proc, "task-scope", "model/net.py", "git restore --staged -- model/net.py")
    assert f"outside tasks/{task}/" in proc.stderr


def test_task_scope_rename_out_of_the_folder_blocked(repo: Repo) -> None:
    task = start_task(repo)
    repo.git("mv", f"tasks/{task}/train.py", "model/train.py")
    proc = repo.git("commit", "-m", "task: move", check=False)
    assert_blocked(proc, "task-scope", "model/train.py")
    assert f"tasks/{task}/train.py" not in proc.stderr.split("✗ task-scope")[1].split("why:")[0]
    repo.git("reset", "-q", "--hard")
    # a rename from core into the folder takes a file away from core: blocked too (old side)
    repo.git("mv", "model/net.py", f"tasks/{task}/net.py")
    proc = repo.git("commit", "-m", "task: take net", check=False)
    assert_blocked(proc, "task-scope", "model/net.py")


def test_task_scope_deletion_outside_blocked(repo: Repo) -> None:
    start_task(repo)
    repo.git("rm", "-q", "model/net.py")
    assert_blocked(repo.git("commit", "-m", "task: drop net", check=False), "task-scope", "model/net.py")


def test_task_scope_other_task_folder_blocked(repo: Repo) -> None:
    start_task(repo)
    repo.write("tasks/task-0.1.0-20250101T000000-old/config.yaml", TEMPLATE_CONFIG)
    proc = repo.commit("task: copy", check=False)
    assert_blocked(proc, "task-scope", "tasks/task-0.1.0-20250101T000000-old/config.yaml")


def test_task_scope_squash_into_a_task_branch_is_an_ordinary_commit(repo: Repo) -> None:
    task = start_task(repo)
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 'dev'\n")
    setup_commit(repo, "feat: dev net")
    repo.git("switch", "-q", task)
    repo.git("merge", "--squash", "dev")
    proc = repo.git("commit", "-m", "task: take dev", check=False)
    assert_blocked(proc, "task-scope", "model/net.py", "git restore --staged -- model/net.py")


# --- hotfix-size -------------------------------------------------------------------------------


def test_hotfix_size_cumulative_files(repo: Repo) -> None:
    on_branch(repo, "hotfix-nan", "main")
    for i in range(3):
        repo.write(f"model/fix{i}.py")
    setup_commit(repo, "fix: part one")
    for i in range(3, 6):
        repo.write(f"model/fix{i}.py")
    proc = repo.commit("fix: part two", check=False)
    assert_blocked(
        proc, "hotfix-size", "changes 6 file(s)", "model/fix0.py (1 lines,", "limits: 5 files, 50 lines", "git restore --staged --"
    )
    repo.git("rm", "-q", "--cached", "model/fix5.py")
    assert_allowed(repo.git("commit", "-m", "fix: part two", check=False))


def test_hotfix_size_measured_from_the_remote_main_when_there_is_no_local_one(repo: Repo, tmp_path: Path) -> None:
    clone = Repo(tmp_path / "clone")
    repo.git("clone", "-q", str(repo.path), str(clone.path))
    clone.install_direct_hooks()
    clone.git("switch", "-q", "-c", "hotfix-nan", "origin/main")
    clone.git("branch", "-q", "-D", "main")
    for i in range(6):
        clone.write(f"model/fix{i}.py")
    assert_blocked(clone.commit("fix: nan", check=False), "hotfix-size", "changes 6 file(s)")


def test_hotfix_size_cumulative_lines(repo: Repo) -> None:
    on_branch(repo, "hotfix-lines", "main")
    repo.write("model/net.py", "".join(f"x{i} = {i}\n" for i in range(30)))
    assert_allowed(repo.commit("fix: 31 lines"))  # 30 added + 1 deleted
    repo.write("model/net2.py", "".join(f"y{i} = {i}\n" for i in range(20)))
    proc = repo.commit("fix: 20 more", check=False)
    assert_blocked(proc, "hotfix-size", "51 line(s)", "model/net.py (31 lines,")


def test_hotfix_size_custom_limit(repo: Repo) -> None:
    on_branch(repo, "hotfix-small", "main")
    repo.write(".dlgit.yaml", "hotfix:\n  max_files: 1\n  max_lines: 1000\n")
    setup_commit(repo, "chore: one-file hotfixes", ".dlgit.yaml")  # the hooks judge by the committed settings
    repo.git("update-ref", "refs/heads/main", "HEAD")  # ... and the fork point is main: the settings commit is main's
    repo.write("model/a.py")
    assert_allowed(repo.commit("fix: a", "model/a.py"))
    repo.write("model/b.py")
    assert_blocked(repo.commit("fix: b", "model/b.py", check=False), "hotfix-size", "limits: 1 files, 1000 lines", "model/a.py")


# --- commit-message ----------------------------------------------------------------------------


@pytest.mark.parametrize("message", ["feat: a loader", "fix(model)!: nan loss", "task: run lr0.01\n\nbody"])
def test_commit_message_conventional_allowed(repo: Repo, message: str) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 2\n")
    assert_allowed(repo.commit(message))


@pytest.mark.parametrize(("message", "diagnosis", "fix"), [
    ("wip: stuff", "has the unknown type 'wip' (known: feat, fix,", "git commit -m 'feat: stuff'   # or fix:"),
    ("Added the data loader", "does not start with a type", "git commit -m 'feat: added the data loader'   # or fix:"),
    ("Feat: capital", "has an upper-case type: write 'feat: capital'", "git commit -m 'feat: capital'"),
    ("feat:no space", "has no space after the colon", "git commit -m 'feat: no space'"),
    ("fix tests", "has no colon after the type", "git commit -m 'fix: tests'"),
    ("feat(data loader): x\n\nbody", "has a space in the scope", "git commit -m 'feat(data-loader): x' -m body"),
])
def test_commit_message_bad_subject_blocked_with_its_diagnosis(repo: Repo, message: str, diagnosis: str, fix: str) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 2\n")
    proc = repo.commit(message, check=False)
    assert_blocked(proc, "commit-message", message.partition("\n")[0], diagnosis, fix)
    assert "commit message blocked" in proc.stderr and "does not start with one of" not in proc.stderr
    pasted = subprocess.run(["bash", "-c", fix], cwd=repo.path, capture_output=True, text=True, check=False)  # the printed fix works
    assert_allowed(pasted)


@pytest.mark.parametrize("message", ["Merge branch 'feature-x' into dev", 'Revert "feat: a loader"', "fixup! feat: a loader", "squash! x"])
def test_commit_message_gits_own_allowed_off_main(repo: Repo, message: str) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 2\n")
    assert_allowed(repo.commit(message))


def test_commit_message_gits_own_merge_message_blocked_on_main(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 2\n")
    setup_commit(repo, "feat: net 2")
    repo.git("switch", "-q", "main")
    proc = repo.git("merge", "--no-ff", "--no-edit", "dev", check=False)
    assert_blocked(proc, "commit-message", "Merge branch 'dev'", "enough off main only", "git commit -m 'chore: release dev'")
    # git keeps the merge in progress: concluding it with a conventional message is allowed
    assert_allowed(repo.git("commit", "-m", "feat: release net 2", check=False))
    assert repo.git("rev-parse", "HEAD^2").stdout.strip() == repo.head("dev")


def test_commit_message_fixup_blocked_on_main_hook(repo: Repo) -> None:
    msg = repo.write(".git/MSG", "fixup! chore: initial layout\n")
    assert_blocked(repo.dlgit("hook", "commit-msg", str(msg)), "commit-message", "fixup! chore: initial layout")
    msg.write_text('Revert "chore: initial layout"\n')
    assert_blocked(repo.dlgit("hook", "commit-msg", str(msg)), "commit-message", "Revert")


# --- large-file --------------------------------------------------------------------------------


def test_large_file_model_pattern_blocked(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("weights/best.pt", b"\0" * 10)
    proc = repo.commit("feat: weights", check=False)
    assert_blocked(proc, "large-file", "weights/best.pt (matches *.pt)", "git restore --staged -- weights/best.pt", "dlgit init --dvc")


def test_large_file_patterns_ignore_case(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("weights/best.PT", b"\0" * 10)
    assert_blocked(repo.commit("feat: weights", check=False), "large-file", "weights/best.PT (matches *.pt)")


def test_large_file_over_default_size_blocked_small_allowed(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("data/big.dat", b"\1" * (5 * 1024 * 1024 + 1))
    assert_blocked(repo.commit("feat: data", check=False), "large-file", "data/big.dat (5.0 MiB)", "git restore --staged -- data/big.dat")
    repo.git("rm", "-q", "--cached", "data/big.dat")
    repo.write("data/big.dat", b"\1" * 1024)
    assert_allowed(repo.commit("feat: data"))


def test_large_file_custom_limit(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write(".dlgit.yaml", "large_files:\n  max_bytes: 100\n  patterns: ['*.bin']\n")
    setup_commit(repo, "chore: smaller files", ".dlgit.yaml")  # the hooks judge by the committed settings
    repo.write("data/small.bin", b"1")
    assert_blocked(repo.commit("feat: bin", "data", check=False), "large-file", "data/small.bin (matches *.bin)")
    repo.git("rm", "-q", "--cached", "data/small.bin")
    repo.write("model/weights.pt", b"1")  # *.pt no longer in the list
    repo.write("model/big.py", "#" * 200)
    proc = repo.commit("feat: pt", "model", check=False)
    assert_blocked(proc, "large-file", "model/big.py")
    assert "weights.pt" not in proc.stderr


def test_large_file_deletion_allowed(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("old.pkl", b"x")
    repo.commit("chore: add", extra=("--no-verify",))
    repo.git("rm", "-q", "old.pkl")
    assert_allowed(repo.git("commit", "-m", "chore: drop the pickle", check=False))


# --- task-config -------------------------------------------------------------------------------


def test_task_config_missing_key_and_wrong_type_blocked(repo: Repo) -> None:
    task = start_task(repo)
    repo.write(f"tasks/{task}/config.yaml", TEMPLATE_CONFIG.replace("RANDOM_SEED: 42\n", "").replace("DEBUG: false", "DEBUG: maybe"))
    proc = repo.commit("task: edit", check=False)
    assert_blocked(proc, "task-config", f"tasks/{task}/config.yaml", "lacks RANDOM_SEED", "DEBUG is 'maybe'", "git add --")


def test_task_config_version_must_match_branch(repo: Repo) -> None:
    task = start_task(repo)
    repo.write(f"tasks/{task}/config.yaml", TEMPLATE_CONFIG.replace("VERSION: 0.1.0", "VERSION: 0.2.0"))
    assert_blocked(repo.commit("task: edit", check=False), "task-config", "VERSION is 0.2.0 but the branch name says 0.1.0")
    repo.write(f"tasks/{task}/config.yaml", TEMPLATE_CONFIG.replace("lr: 0.01", "lr: 0.02"))
    assert_allowed(repo.commit("task: lr 0.02"))


def test_task_config_invalid_yaml_on_dev_blocked(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("tasks/main/config.yaml", TEMPLATE_CONFIG + "lr: [0.1\n")
    proc = repo.commit("chore: template", check=False)
    assert_blocked(proc, "task-config", "tasks/main/config.yaml",
                   "is not valid YAML at line 11: did not find expected ',' or ']' (while parsing a flow sequence that starts at line 10)")
    repo.write("tasks/main/config.yaml", TEMPLATE_CONFIG + "bs: 64\n")
    assert_allowed(repo.commit("chore: template"))


# --- no-debug-on-main --------------------------------------------------------------------------


def test_no_debug_folder_on_dev_blocked_allowed_on_debug_branch(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write(f"tasks/{DEBUG}/log.txt", "loss 1.0\n")
    proc = repo.commit("chore: log", check=False)
    assert_blocked(proc, "no-debug-on-main", f"tasks/{DEBUG}/log.txt", f"git rm -r -q --cached -- tasks/{DEBUG}")
    repo.git("switch", "-q", "-c", DEBUG)
    assert_allowed(repo.git("commit", "-m", "chore: debug log", check=False))


def test_no_debug_folder_reaches_main_through_a_dev_merge(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write(f"tasks/{DEBUG}/log.txt", "loss 1.0\n")
    repo.commit("chore: sneak", extra=("--no-verify",))
    repo.git("switch", "-q", "main")
    proc = repo.git("merge", "--no-ff", "-m", "feat: release", "dev", check=False)
    assert_blocked(proc, "no-debug-on-main", f"tasks/{DEBUG}/log.txt", "git merge --abort")


def test_main_protected_squash_is_recomputed_at_commit_time(repo: Repo) -> None:
    tip = _squash_dev(repo)
    repo.write("model/extra.py", "SNEAKED = 1\n")  # a change that was never on dev
    repo.git("add", "model/extra.py")
    proc = repo.git("commit", "-m", "feat: release", "--trailer", f"Squashed-from: dev@{tip}", check=False)
    assert_blocked(proc, "main-protected", "model/extra.py", fix="git restore --staged -- model/extra.py")
    repo.git("rm", "-q", "--cached", "model/extra.py")
    assert_allowed(repo.git("commit", "-m", "feat: release", "--trailer", f"Squashed-from: dev@{tip}", check=False))


def test_stale_squash_msg_does_not_let_a_direct_commit_pass(repo: Repo) -> None:
    tip = _squash_dev(repo)
    repo.git("restore", "--staged", "--worktree", "--", ".")  # undo the squash by hand: SQUASH_MSG stays behind
    repo.write("model/net.py", "NET = 99\n")
    repo.git("add", "model/net.py")
    proc = repo.git("commit", "-m", "fix: direct", "--trailer", f"Squashed-from: dev@{tip}", check=False)
    assert_blocked(proc, "main-protected", "model/head.py", replay="undo")  # the stale squash can never be committed as such


def test_task_branch_started_from_dev_is_noticed_at_its_first_commit(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 'dev'\n")
    setup_commit(repo, "feat: on dev")
    repo.git("switch", "-q", "-c", TASK, "dev")  # the mistake: a task from dev
    repo.write(f"tasks/{TASK}/config.yaml", TEMPLATE_CONFIG)
    proc = repo.commit("task: start", f"tasks/{TASK}", check=False)
    assert_blocked(proc, "task-scope", "model/net.py", "started from dev", "rebase -q --onto main dev")
    repo.git("-c", "rebase.autoStash=true", "rebase", "-q", "--onto", "main", "dev", TASK)
    assert_allowed(repo.commit("task: start", f"tasks/{TASK}", check=False))
