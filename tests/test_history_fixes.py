"""Fixes for violations found in history (`dlgit check`, pre-push): they repair the commit that
exists, by its sha (rebase, reset, amend, revert), never the index of a commit being made; and the
repairs they print, run as printed, make the history pass."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest
from conftest import Repo
from histories import NEW_TASK, bump, commit, merge, task_config

from dlgit import config
from dlgit.model import parse_branch as parse
from dlgit.policy import Change, Entry, Merge, evaluate
from dlgit.policy.change import Committed, SquashEvidence

HOOK_ONLY = ("git merge --abort", "git reset --merge", "git restore --staged --", "COMMIT_EDITMSG", "git stash", "then commit again")


def check(repo: Repo, *args: str) -> tuple[int, dict[str, Any]]:
    proc = repo.dlgit("check", "--format", "json", *args)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def fixes(report: dict[str, Any], sha: str, rule: str) -> list[str]:
    [finding] = [c for c in report["commits"] if c["sha"] == sha]
    [violation] = [v for v in finding["violations"] if v["rule"] == rule]
    return violation["fix"]


def line(fix: list[str], start: str) -> str:
    """The fix line that starts with `start`."""
    [found] = [f for f in fix if f.startswith(start)]
    return found


def run(repo: Repo, fix_line: str, **env: str) -> None:
    """Run a printed fix line (its command, without the comment) in a shell."""
    command = fix_line.split("   # ")[0]
    proc = subprocess.run(["sh", "-c", command], cwd=repo.path, capture_output=True, text=True, env={**os.environ, **env}, check=False)
    assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"


def todo_editor(script: str) -> dict[str, str]:
    """GIT_SEQUENCE_EDITOR that edits `git rebase -i`'s todo list with a sed script."""
    return {"GIT_SEQUENCE_EDITOR": f"sed -i -e '{script}'"}


# --- main-protected: a --no-verify commit on main ----------------------------------------------------


def test_direct_commit_on_main_is_repaired_by_its_sha(work: Repo) -> None:
    first = commit(work, "feat: sneak past the hooks", {"model/net.py": "NET = 3\n"})
    second = commit(work, "feat: and again", {"model/net.py": "NET = 4\n"})
    code, report = check(work)
    assert code == 1
    older, tip = fixes(report, first, "main-protected"), fixes(report, second, "main-protected")
    for fix in (older, tip):
        assert not [f for f in fix if any(hook in f for hook in HOOK_ONLY)], fix
    assert line(older, "git rebase -i").startswith(f"git rebase -i {first}^   # not pushed yet: mark {first[:12]} 'drop'")
    assert line(tip, "git reset").startswith(f"git reset --keep {second}^   # not pushed yet and {second[:12]} is the tip")
    # once pushed, main is never rewritten: revert it through a hotfix branch
    hotfix = f"hotfix-repair-{first[:12]}"
    merge = f"git merge --no-ff -m 'fix: merge {hotfix}' {hotfix}"
    revert = f"git switch -c {hotfix} main && git revert {first} && git switch main && {merge} && git switch dev && {merge}"
    assert line(older, "git switch -c").startswith(revert)
    assert f"git switch dev && git cherry-pick {first}" in line(older, "git switch dev")

    # the printed repairs, run as printed: carry both to dev, drop them from main
    for fix in (older, tip):
        run(work, line(fix, "git switch dev"))
        work.git("switch", "-q", "main")
    run(work, line(tip, "git reset"))
    run(work, line(older, "git rebase -i"), **todo_editor(f"s/^pick {first[:7]}/drop {first[:7]}/"))
    assert work.head() == work.head("origin/main")
    assert work.git("show", "dev:model/net.py").stdout == "NET = 4\n"
    assert check(work)[0] == 0


def test_pre_push_prints_the_same_history_fix(work: Repo) -> None:
    sha = commit(work, "feat: sneak past the hooks", {"model/net.py": "NET = 3\n"})
    pushed = work.git("push", "origin", "main", check=False)
    assert pushed.returncode != 0
    assert f"git reset --keep {sha}^" in pushed.stderr and f"git revert {sha}" in pushed.stderr
    assert "git stash" not in pushed.stderr


def test_reverting_a_pushed_commit_through_the_printed_hotfix_branch_passes(work: Repo) -> None:
    sha = commit(work, "feat: sneak past the hooks", {"model/net.py": "NET = 3\n"})
    _, report = check(work)
    switch_and_revert = line(fixes(report, sha, "main-protected"), "git switch -c").split(" && git switch main")[0]
    run(work, switch_and_revert)
    hotfix = f"hotfix-repair-{sha[:12]}"
    assert work.branch() == hotfix and work.git("show", "HEAD:model/net.py").stdout == "NET = 2\n"
    assert check(work, "--branch", hotfix, f"{sha}..{hotfix}")[0] == 0  # the revert itself breaks no rule


# --- merge-direction: a feature merged into main ---------------------------------------------------


def _feature_into_main(repo: Repo) -> str:
    repo.git("switch", "-q", "-c", "feature-q", "dev")
    commit(repo, "feat: q", {"model/q.py": "Q = 1\n"})
    repo.git("switch", "-q", "main")
    return merge(repo, "feature-q", "chore: merge feature-q")


def test_feature_merged_into_main_is_reverted_with_m_1(work: Repo) -> None:
    sha = _feature_into_main(work)
    code, report = check(work)
    assert code == 1
    fix = fixes(report, sha, "merge-direction")
    assert not [f for f in fix if any(hook in f for hook in HOOK_ONLY)], fix
    assert f"git revert -m 1 {sha}" in line(fix, "git switch -c")
    assert line(fix, "git reset").startswith(f"git reset --keep {sha}^")
    assert "git switch dev && git merge feature-q" in line(fix, "git switch dev")
    run(work, line(fix, "git reset"))
    assert check(work)[0] == 0


def test_feature_merge_below_the_tip_is_dropped_with_rebase_merges(work: Repo) -> None:
    sha = _feature_into_main(work)
    bump(work, "0.3.0")
    code, report = check(work)
    assert code == 1
    fix = fixes(report, sha, "merge-direction")
    rebase = line(fix, "git rebase -i")
    assert rebase.startswith(f"git rebase -i --rebase-merges {sha}^   # not pushed yet: delete the line 'merge -C {sha[:12]}")
    run(work, rebase, **todo_editor(f"/^merge -C {sha[:7]}/d"))
    assert work.git("log", "--format=%s", "origin/main..main").stdout.splitlines() == ["bump: version 0.2.0 → 0.3.0"]
    assert check(work)[0] == 0


# --- commit-message: reword, never `git commit -m` again -------------------------------------------


def test_bad_message_in_history_is_reworded(work: Repo) -> None:
    work.git("switch", "-q", "-c", "feature-w", "dev")
    wip = commit(work, "wip stuff", {"model/w.py": "W = 1\n"})
    tip = commit(work, "more wip", {"model/w.py": "W = 2\n"})
    code, report = check(work, "--branch", "feature-w", "dev..feature-w")
    assert code == 1
    older, newest = fixes(report, wip, "commit-message"), fixes(report, tip, "commit-message")
    assert not [f for f in older + newest if any(hook in f for hook in HOOK_ONLY)]
    assert line(older, "git rebase -i").startswith(f"git rebase -i {wip}^   # not pushed yet: mark {wip[:12]} 'reword'")
    assert line(newest, "git commit --amend").startswith(f"git commit --amend   # not pushed yet and {tip[:12]} is the tip: reword it")
    assert line(older, "git push --force-with-lease").startswith("git push --force-with-lease origin feature-w")  # the remote by name

    run(work, line(newest, "git commit --amend"), GIT_EDITOR="sed -i -e '1s/.*/feat: more w/'")
    run(work, line(older, "git rebase -i"), **todo_editor(f"s/^pick {wip[:7]}/reword {wip[:7]}/"),
        GIT_EDITOR="sed -i -e '1s/.*/feat: w/'")
    assert check(work, "--branch", "feature-w", "dev..feature-w")[0] == 0


def test_bad_message_on_pushed_main_says_it_stays(work: Repo) -> None:
    sha = merge(work, "dev", "Merge branch 'dev'")  # git's own message is not enough on main
    _, report = check(work)
    fix = fixes(report, sha, "commit-message")
    assert line(fix, "git commit --amend").startswith("git commit --amend   # not pushed yet")
    assert f"already pushed: the message of {sha[:12]} stays" in fix[1]


# --- task-scope: edit the commit at a rebase stop ------------------------------------------------


def test_task_commit_outside_its_folder_is_edited_at_a_rebase_stop(work: Repo) -> None:
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    start = commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0"), "model/net.py": "NET = 7\n"})
    commit(work, "task: results", {f"tasks/{NEW_TASK}/log.txt": "loss 0.2\n"})
    code, report = check(work)
    assert code == 1
    fix = fixes(report, start, "task-scope")
    assert not [f for f in fix if any(hook in f for hook in HOOK_ONLY)], fix
    assert fix[0].startswith(f"git rebase -i {start}^   # not pushed yet: mark {start[:12]} 'edit'")
    assert fix[1].startswith(f"git restore --source={start}^ --staged --worktree -- model/net.py")
    assert fix[2] == "git commit --amend --no-edit && git rebase --continue"
    run(work, fix[0], **todo_editor(f"s/^pick {start[:7]}/edit {start[:7]}/"))
    run(work, fix[1])
    run(work, fix[2])
    changed = work.git("diff", "--name-only", "main", NEW_TASK).stdout.split()
    assert changed == [f"tasks/{NEW_TASK}/config.yaml", f"tasks/{NEW_TASK}/log.txt"]
    assert check(work)[0] == 0


# --- the rules alone: hooks keep their fixes, history never gets them ------------------------------


def _changes() -> list[Change]:
    settings = config.parse("")
    task, debug, sha = "task-0.1.0-20260101T000000-base", "debug-0.1.0-20260101T000000-x", "a" * 40

    def on(name: str, *entries: Entry, merge: Merge | None = None, **facts: Any) -> Change:
        return Change(parse(name, settings), entries, merge, message=facts.pop("message", "feat: x"), **facts)

    return [
        on("main", Entry("M", "model/net.py")),
        on("main", merge=Merge(parse("dev", settings), sha, squash=True)),
        on("main", merge=Merge(parse("dev", settings), sha, squash=True), message=f"feat: x\n\nSquashed-from: dev@{sha}",
           squash_evidence=SquashEvidence(True, True, (("p", "new-content"),))),
        on("main", Entry("A", "model/x.py"), merge=Merge(parse("feature-x", settings), sha)),
        on("main", merge=Merge(parse("feature-x", settings), sha, squash=True)),
        on("dev", merge=Merge(parse(debug, settings), sha)),
        on("main", Entry("A", "model/x.py"), merge=Merge(parse(task, settings), sha)),
        on(task, Entry("A", "model/x.py")),
        on("hotfix-x", hotfix_diff=tuple((f"f{i}", 20, 200) for i in range(7))),
        on("dev", message="wip"),
        on("dev", Entry("A", "w.pt", size=3)),
        on("dev", Entry("A", f"tasks/{task}/config.yaml"), configs=((f"tasks/{task}/config.yaml", b"VERSION: 1\n"),)),
        on("dev", Entry("A", f"tasks/{debug}/x"), merge=Merge(parse("main", settings), sha)),
    ]


@pytest.mark.parametrize("committed", [Committed("b" * 40, tip=True), Committed("b" * 40), Committed("b" * 40, merged_by="c" * 40)],
                         ids=["tip", "older", "merged"])
def test_every_rule_fixes_history_by_sha_and_hooks_keep_their_fixes(committed: Committed) -> None:
    settings = config.parse("")
    rules = set()
    for change in _changes():
        for hook, history in zip(evaluate(change, settings), evaluate(change._replace(commit=committed), settings), strict=True):
            assert (hook.rule, hook.statement, hook.detail, hook.why) == (history.rule, history.statement, history.detail, history.why)
            assert hook.fix != history.fix
            assert not [f for f in history.fix if any(hook_only in f for hook_only in HOOK_ONLY)], history.fix
            assert any(committed.sha[:12] in f for f in history.fix), history.fix
            rules.add(hook.rule)
    assert rules == {"main-protected", "merge-direction", "task-scope", "hotfix-size", "commit-message", "large-file", "task-config",
                     "no-debug-on-main"}
