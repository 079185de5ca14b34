"""Merges of branches nobody can see any more, judged through real git against a bare server running
pre-receive and by `dlgit check`: a source no branch owns is allowed into dev; into main only when
its content proves the name it gives (a task changing only its folder, a hotfix within its limits).
Also merges recomputed on dev, refs that are no branch, and history a clone cannot see."""

# ruff: noqa: F811 (test_attacks' fixtures are imported by name and taken as parameters)
from __future__ import annotations

from pathlib import Path

from conftest import Repo
from histories import NEW_TASK, Check, clone, commit, merge, task_config
from test_attacks import Guards, accepted, history, push, ref_on, server, sparse, work  # noqa: F401

MIB = 1 << 20


def _gone(work: Repo, name: str, base: str, files: dict[str, str]) -> None:
    """A branch NAME from BASE with one commit of FILES, never pushed, merged into main by the
    flows' message, then deleted (as `dlgit hotfix finish` and `dlgit finish-task` do)."""
    work.git("switch", "-q", "-c", name, base)
    commit(work, "fix: the fix" if name.startswith("hotfix-") else "task: results", files)
    work.git("switch", "-q", "main")
    merge(work, name, f"{'fix' if name.startswith('hotfix-') else 'task'}: merge {name}")
    work.git("branch", "-q", "-D", name)


def test_merge_of_a_deleted_small_hotfix_passes(server: Repo, work: Repo, check: Check) -> None:
    _gone(work, "hotfix-gone", "main", {"model/net.py": "NET = 2  # fixed\n"})
    assert check(work)[0] == 0
    accepted(push(work, "main"))


def test_merge_of_a_deleted_hotfix_bringing_too_much_is_refused(server: Repo, work: Repo, check: Check) -> None:
    before = server.head("main")
    _gone(work, "hotfix-gone", "main", {f"model/f{i}.py": "X = 1\n" for i in range(6)})
    guards = Guards()
    guards.push(push(work, "main"), "hotfix-size", "brings 6 file(s)")
    guards.unchanged(server, "refs/heads/main", before)
    guards.check(check(work), "hotfix-size", "brings 6 file(s)")
    guards.verify()


def test_merge_of_a_deleted_task_changing_only_its_folder_passes(server: Repo, work: Repo, check: Check) -> None:
    _gone(work, NEW_TASK, "main", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    assert check(work)[0] == 0
    accepted(push(work, "main"))


def test_merge_of_a_deleted_task_changing_core_code_is_refused(server: Repo, work: Repo, check: Check) -> None:
    before = server.head("main")
    _gone(work, NEW_TASK, "main", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0"), "model/net.py": "NET = 9\n"})
    guards = Guards()
    guards.push(push(work, "main"), "task-scope", "model/net.py")
    guards.unchanged(server, "refs/heads/main", before)
    guards.check(check(work), "task-scope", "model/net.py")
    guards.verify()


def _pull_request(work: Repo, target: str) -> None:
    work.git("switch", "-q", "-c", "topic", target)
    commit(work, "feat: topic work", {"model/topic.py": "T = 1\n"})
    work.git("switch", "-q", target)
    merge(work, "topic", "Merge pull request #7 from someone/topic")
    work.git("branch", "-q", "-D", "topic")


def test_pull_request_of_a_deleted_branch_passes_into_dev(server: Repo, work: Repo, check: Check) -> None:
    _pull_request(work, "dev")
    assert check(work)[0] == 0
    accepted(push(work, "dev"))


def test_pull_request_of_a_deleted_branch_into_main_is_refused(server: Repo, work: Repo, check: Check) -> None:
    before = server.head("main")
    _pull_request(work, "main")
    guards = Guards()
    guards.push(push(work, "main"), "merge-direction", "dlgit hotfix finish")
    guards.unchanged(server, "refs/heads/main", before)
    guards.check(check(work), "merge-direction", "dlgit release")
    guards.verify()


def test_evil_merge_into_dev_is_refused(server: Repo, work: Repo, check: Check) -> None:
    before = server.head("dev")
    work.git("switch", "-q", "-c", "feature-e", "dev")
    commit(work, "feat: e", {"model/e.py": "E = 1\n"})
    work.git("switch", "-q", "dev")
    work.git("merge", "-q", "--no-ff", "--no-commit", "feature-e")
    work.write("model/extra.py", "EXTRA = 1\n")
    work.git("add", "-A")
    work.git("commit", "-q", "--no-verify", "-m", "Merge branch 'feature-e' into dev")
    guards = Guards()
    guards.push(push(work, "dev", "feature-e"), "merge-direction", "model/extra.py")
    guards.unchanged(server, "refs/heads/dev", before)
    guards.check(check(work), "merge-direction", "model/extra.py")
    guards.verify()


def test_merge_into_dev_of_a_commit_dev_already_holds_is_refused(server: Repo, work: Repo, check: Check) -> None:
    before = server.head("dev")
    work.git("switch", "-q", "dev")
    tree = work.git("rev-parse", "dev^{tree}").stdout.strip()
    fake = work.git("commit-tree", tree, "-p", "dev", "-p", "dev~1", "-m", "Merge branch 'dev'").stdout.strip()
    work.git("update-ref", "refs/heads/dev", fake)
    guards = Guards()
    guards.push(push(work, "dev"), "merge-direction", "brings nothing")
    guards.unchanged(server, "refs/heads/dev", before)
    guards.check(check(work), "merge-direction", "brings nothing")
    guards.verify()


def test_note_of_a_small_text_passes(server: Repo, work: Repo) -> None:
    work.git("notes", "add", "-m", "reviewed", "main")
    accepted(push(work, "refs/notes/commits"))


def test_tag_of_a_big_blob_is_refused(server: Repo, work: Repo) -> None:
    sparse(work, "big.bin", 20 * MIB)
    blob = work.git("hash-object", "-w", "big.bin").stdout.strip()
    work.git("tag", "blob-tag", blob)
    guards = Guards()
    guards.push(push(work, "refs/tags/blob-tag"), "large-file", "20.0 MiB")
    guards.unchanged(server, "refs/tags/blob-tag", None)
    guards.verify()


def test_push_from_a_shallow_clone_is_exit_2(server: Repo, tmp_path: Path) -> None:
    shallow = Repo(tmp_path / "shallow")
    Repo(tmp_path).git("clone", "-q", "--depth", "1", f"file://{server.path}", str(shallow.path))
    line = f"refs/heads/main {shallow.head()} refs/heads/main {shallow.head()}\n"
    proc = shallow.dlgit("hook", "pre-push", "origin", str(server.path), input=line)
    assert proc.returncode == 2 and "shallow clone" in proc.stderr and "Traceback" not in proc.stderr


def test_hooks_and_check_agree_on_a_deleted_source(server: Repo, work: Repo, check: Check) -> None:
    """The client hook names the source as `dlgit check` will: by ownership, not by the message."""
    clone_with_hooks = clone(server.path, work.path.parent / "hooked")
    clone_with_hooks.git("switch", "-q", "-c", "topic", "main")
    commit(clone_with_hooks, "feat: topic", {"model/topic.py": "T = 1\n"})
    clone_with_hooks.git("switch", "-q", "main")
    proc = clone_with_hooks.git("merge", "--no-ff", "-m", "fix: merge hotfix-ghost", "topic", check=False)
    assert proc.returncode == 1 and "merge-direction" in proc.stderr and "'topic'" in proc.stderr
