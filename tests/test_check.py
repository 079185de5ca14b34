"""`dlgit check`: each hook bypass made for real is caught by `dlgit check` and by the installed
pre-push hook; releases, squashes, bumps, merges and tags are judged from content."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Repo
from histories import NEW_TASK, TASK, Check, bump, commit, merge, squash_release, task_config

Bypass = Callable[[Repo], tuple[list[str], str]]


def test_honest_history_passes(work: Repo, check: Check) -> None:
    for branch in ("main", "dev"):
        code, out = check(work, "--branch", branch, branch)
        assert code == 0, out
        assert "no violations" in out


# --- each bypass, made for real, caught by check and by the pre-push hook ---------------------


def _no_verify(repo: Repo) -> tuple[list[str], str]:
    repo.write("model/net.py", "NET = 3\n")
    repo.git("commit", "-q", "-a", "--no-verify", "-m", "feat: sneak past the hooks")
    return [], "main"


def _hooks_path(repo: Repo) -> tuple[list[str], str]:
    repo.write("model/net.py", "NET = 3\n")
    repo.git("-c", "core.hooksPath=/dev/null", "commit", "-q", "-a", "-m", "feat: sneak past the hooks")
    return [], "main"


def _fast_forward(repo: Repo) -> tuple[list[str], str]:
    repo.git("switch", "-q", "dev")
    commit(repo, "feat: sneak past the hooks", {"model/net.py": "NET = 3\n"})
    repo.git("switch", "-q", "main")
    repo.git("merge", "-q", "--ff-only", "dev")
    return [], "main"


def _rebase(repo: Repo) -> tuple[list[str], str]:
    repo.git("switch", "-q", "-c", "feature-y", "dev")
    commit(repo, "feat: sneak past the hooks", {"model/net.py": "NET = 3\n"})
    repo.git("rebase", "-q", "--onto", "main", "dev", "feature-y")
    return ["--branch", "main", "origin/main..feature-y"], "feature-y:main"


def _cherry_pick(repo: Repo) -> tuple[list[str], str]:
    repo.git("switch", "-q", "dev")
    core = commit(repo, "feat: sneak past the hooks", {"model/net.py": "NET = 3\n"})
    repo.git("switch", "-q", "-c", NEW_TASK, "main")
    commit(repo, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    repo.git("cherry-pick", core)
    return [], NEW_TASK


@pytest.mark.parametrize(
    ("bypass", "rule"),
    [(_no_verify, "main-protected"), (_hooks_path, "main-protected"), (_fast_forward, "main-protected"),
     (_rebase, "main-protected"), (_cherry_pick, "task-scope")],
    ids=["no-verify", "hooksPath", "fast-forward", "rebase", "cherry-pick"],
)
def test_bypass_is_caught_by_check_and_pre_push(work: Repo, check: Check, bypass: Bypass, rule: str) -> None:
    args, refspec = bypass(work)
    code, out = check(work, *args)
    assert code == 1, out
    assert f"✗ {rule}" in out and "feat: sneak past the hooks" in out
    pushed = work.git("push", "origin", refspec, check=False)
    assert pushed.returncode != 0
    assert rule in pushed.stderr and "dlgit: push to refs/heads/" in pushed.stderr


# --- squashes, bumps and tags, from content ----------------------------------------------------


def _to_dev(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    commit(repo, "feat: next thing", {"model/loss.py": "LOSS = 1\n"})


def test_honest_release_squash_bump_and_tag_pass(work: Repo, check: Check) -> None:
    _to_dev(work)
    squash_release(work)
    bump(work, "0.3.0")
    work.git("tag", "v0.3.0")
    code, out = check(work)
    assert code == 0, out
    assert "2 commit(s)" in out


def _conflicting_squash(work: Repo) -> None:
    """main gets a hotfix (NET = 10), dev a feature (NET = 5): squashing dev onto main conflicts."""
    work.git("switch", "-q", "-c", "hotfix-net", "main")
    commit(work, "fix: net overflow", {"model/net.py": "NET = 10\n"})
    work.git("switch", "-q", "main")
    merge(work, "hotfix-net", "fix: merge hotfix-net")
    work.git("switch", "-q", "dev")
    commit(work, "feat: bigger net", {"model/net.py": "NET = 5\n"})
    work.git("switch", "-q", "main")
    assert work.git("merge", "--squash", "dev", check=False).returncode != 0  # conflict in model/net.py


@pytest.mark.parametrize("side", ["--ours", "--theirs"])
def test_squash_resolving_a_conflict_to_either_side_passes(work: Repo, check: Check, side: str) -> None:
    _conflicting_squash(work)
    work.git("checkout", side, "--", "model/net.py")
    commit(work, f"chore: release\n\nSquashed-from: dev@{work.head('dev')}", None, "--allow-empty")
    code, out = check(work)
    assert code == 0, out


def test_squash_resolving_a_conflict_with_a_line_of_neither_side_fails(work: Repo, check: Check) -> None:
    """Issue 8 item 3: conflicted paths are recomputed too; `NET = 15` is on neither side."""
    _conflicting_squash(work)
    commit(work, f"chore: release\n\nSquashed-from: dev@{work.head('dev')}", {"model/net.py": "NET = 15\n"})
    code, out = check(work)
    assert code == 1 and "main-protected" in out and "model/net.py (holds lines found on neither side)" in out


def test_squash_with_an_extra_file_fails(work: Repo, check: Check) -> None:
    _to_dev(work)
    squash_release(work, extra={"model/backdoor.py": "X = 1\n"})
    code, out = check(work)
    assert code == 1
    assert "main-protected" in out and "model/backdoor.py" in out and "differs from merging" in out


def test_forged_trailer_naming_a_missing_commit_fails(work: Repo, check: Check) -> None:
    commit(work, f"chore: release\n\nSquashed-from: dev@{'ab' * 20}", {"model/net.py": "NET = 9\n"})
    code, out = check(work, "--format", "json")
    assert code == 1
    [finding] = json.loads(out)["commits"]
    assert [v["rule"] for v in finding["violations"]] == ["main-protected"]
    assert "names no commit" in finding["violations"][0]["detail"]


def test_squash_of_a_commit_not_on_the_named_branch_fails(work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", "feature-z", "dev")
    side = commit(work, "feat: unreleased", {"model/z.py": "Z = 1\n"})
    work.git("switch", "-q", "main")
    work.git("merge", "--squash", "-q", "feature-z")
    commit(work, f"chore: release\n\nSquashed-from: dev@{side}")
    code, out = check(work)
    assert code == 1 and "not on branch 'dev'" in out


def test_bump_that_edits_another_line_fails(work: Repo, check: Check) -> None:
    bump(work, "0.3.0", also=("lr: 0.01", "lr: 0.02"))
    code, out = check(work)
    assert code == 1
    assert "main-protected" in out and "commit-message" in out


def test_release_tag_must_name_main_commit_with_that_version(work: Repo, check: Check) -> None:
    work.git("tag", "v0.9.0")
    work.git("switch", "-q", "dev")
    commit(work, "feat: on dev", {"model/x.py": "X = 1\n"})
    work.git("tag", "v0.2.1")
    code, out = check(work, "--branch", "dev", "main~1..dev")
    assert code == 1
    assert "tag v0.9.0" in out and "VERSION 0.2.0" in out
    assert "tag v0.2.1" in out and "not on 'main'" in out
    pushed = work.git("push", "origin", "v0.9.0", check=False)
    assert pushed.returncode != 0 and "release-tag" in pushed.stderr


# --- merges: judged by their source branch, recomputed from content ------------------------------


def test_task_merge_touching_core_fails_even_with_an_honest_message(work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    commit(work, "task: tweak the net", {"model/net.py": "NET = 7\n"})
    work.git("switch", "-q", "main")
    merge(work, NEW_TASK, f"task: merge {NEW_TASK}")
    code, out = check(work, "--format", "json")
    assert code == 1
    report = json.loads(out)
    by_subject = {c["subject"]: c for c in report["commits"]}
    assert set(by_subject) == {"task: tweak the net", f"task: merge {NEW_TASK}"}
    tweak = by_subject["task: tweak the net"]
    assert tweak["judged_as"] == {"name": NEW_TASK, "kind": "task"} and tweak["merged_by"] == work.head()
    assert {v["rule"] for c in report["commits"] for v in c["violations"]} == {"task-scope"}


def test_clean_task_merge_passes(work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    work.git("switch", "-q", "main")
    merge(work, NEW_TASK, f"task: merge {NEW_TASK}")
    code, out = check(work)
    assert code == 0, out


def test_feature_merged_into_main_and_debug_merged_into_dev_fail(work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", "feature-q", "dev")
    commit(work, "feat: q", {"model/q.py": "Q = 1\n"})
    work.git("switch", "-q", "main")
    merge(work, "feature-q", "chore: merge feature-q")
    code, out = check(work)
    assert code == 1 and "merge-direction" in out and "feature branch 'feature-q'" in out
    debug = "debug-0.2.0-20260103T000000-probe"
    work.git("switch", "-q", "-c", debug, "dev")
    commit(work, "chore: probe", {f"tasks/{debug}/config.yaml": task_config("0.2.0", DEBUG_NOTE="x")})
    work.git("switch", "-q", "dev")
    merge(work, debug, f"Merge branch '{debug}' into dev")
    code, out = check(work)
    assert code == 1
    assert "merge-direction" in out and "no-debug-on-main" in out


def test_octopus_merge_fails(work: Repo, check: Check) -> None:
    for name in ("feature-o1", "feature-o2"):
        work.git("switch", "-q", "-c", name, "dev")
        commit(work, f"feat: {name}", {f"model/{name}.py": "O = 1\n"})
    work.git("switch", "-q", "dev")
    work.git("merge", "-q", "--no-verify", "--no-ff", "-m", "feat: both at once", "feature-o1", "feature-o2")
    code, out = check(work, "--branch", "dev", "dev")
    assert code == 1 and "merge-direction" in out and "several branches" in out


def test_merged_hotfix_is_judged_by_its_size_from_the_fork_point(work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", "hotfix-wide", "main")
    commit(work, "fix: touch a lot", {f"model/f{i}.py": "X = 1\n" for i in range(6)})
    work.git("switch", "-q", "main")
    merge(work, "hotfix-wide", "fix: merge hotfix-wide")
    code, out = check(work, "--format", "json")
    assert code == 1
    found = {c["judged_as"]["kind"]: c for c in json.loads(out)["commits"]}  # (same second: the order may vary)
    tip, merged = found["hotfix"], found["main"]  # the hotfix from its fork point, and what its merge brings onto main
    assert tip["judged_as"]["kind"] == "hotfix" and [v["rule"] for v in tip["violations"]] == ["hotfix-size"]
    assert merged["judged_as"]["kind"] == "main" and [v["rule"] for v in merged["violations"]] == ["hotfix-size"]
    assert "brings 6 file(s)" in merged["violations"][0]["detail"]


def test_settings_come_from_the_base_and_a_change_is_reported(work: Repo, check: Check) -> None:
    sha = commit(work, "chore: relax", {".dlgit.yaml": "rules:\n  disable: [main-protected]\n", "model/net.py": "NET = 4\n"})
    code, out = check(work, "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert report["settings"]["changed_by"] == [sha]
    assert report["settings"]["commit"] == work.head("origin/main")
    assert any(".dlgit.yaml is changed by" in notice for notice in report["notices"])
    assert [v["rule"] for v in report["commits"][0]["violations"]] == ["main-protected"]


# --- ranges and bad input -------------------------------------------------------------------------


def test_ranges_empty_root_and_unrelated(work: Repo, check: Check) -> None:
    code, out = check(work, "main..main")
    assert code == 0 and "0 commit(s)" in out
    root = work.git("rev-list", "--max-parents=0", "main").stdout.strip()
    code, out = check(work, root)
    assert code == 0 and "1 commit(s)" in out, out
    work.git("switch", "-q", "--orphan", "feature-other")
    commit(work, "feat: unrelated start", {"other.txt": "x\n"})
    commit(work, "feat: unrelated more", {"other.txt": "y\n"})
    code, out = check(work, "main..feature-other")
    assert code == 0 and "2 commit(s)" in out, out
    code, out = check(work, "--branch", "main", "main..feature-other")
    assert code == 1 and out.count("main-protected: ") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [(["nope..main"], "not a revision range"), (["main...dev"], "names 2 tips"), (["--branch", "main", "HEAD~99"], "not a revision range")],
)
def test_bad_range_exits_2(work: Repo, check: Check, args: list[str], message: str) -> None:
    code, out = check(work, *args)
    assert code == 2 and message in out and "Traceback" not in out


def test_not_a_repository_and_unborn_branch_exit_2(tmp_path: Path, bare_repo: Repo, check: Check) -> None:
    code, out = check(Repo(tmp_path), "HEAD")
    assert code == 2 and "not inside a git repository" in out
    code, out = check(bare_repo)
    assert code == 2 and "no commits yet" in out


def test_text_output_groups_violations_per_commit(work: Repo) -> None:
    """Through the real console script: exit code, stdout and the short sha + subject heading."""
    sha = commit(work, "feat: direct one", {"model/a.py": "A = 1\n"})
    commit(work, "wip", {"model/b.py": "B = 1\n"})
    proc = work.dlgit("check")
    assert proc.returncode == 1
    assert f"{sha[:12]} feat: direct one" in proc.stdout
    assert proc.stdout.count("✗ main-protected") == 2 and "✗ commit-message" in proc.stdout
    assert "2 commit(s)" in proc.stdout and "3 violation(s) in 2 commit(s)" in proc.stdout
    assert TASK not in proc.stdout
