"""Issue 15: two clones and a bare server with dlgit's pre-receive, the unit of a team. alice
releases by hand and pushes; bob pulls main and dev, starts and finishes a task with dlgit's
flows, and pushes; every push passes pre-receive and `dlgit check` from the root passes in both
clones afterwards: bob's too, which never saw dev at the released commit, through the tips the
server records for main and dev (dlgit.record), and a fresh clone's."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from conftest import Repo
from histories import bare_copy, clone, honest_history
from test_seed_by_hand import Seed, git, ok

from dlgit.model import SERVER_RECORD, record_refspec


def push(repo: Repo, *refs: str) -> None:
    proc = repo.git("push", "origin", *refs, check=False)
    assert proc.returncode == 0, proc.stderr


def checks(repo: Repo) -> None:
    git(repo, "fetch", "-q", "origin")
    for branch in ("main", "dev"):
        out = ok(repo.dlgit("check", "--branch", branch, f"origin/{branch}"))
        assert "no violations" in out, out


def dlgit_server(tmp_path: Path) -> Repo:
    """A bare server set up the way its admin does: `dlgit install --server` in it."""
    server = bare_copy(honest_history(tmp_path / "history").path, tmp_path / "server.git")
    ok(server.dlgit("install", "--server"))
    return server


def user_clone(server: Repo, path: Path) -> Repo:
    """A clone made the way a user does: `git clone`, then `dlgit install`."""
    repo = clone(server.path, path, hooks=False)
    ok(repo.dlgit("install"))
    return repo


def recorded(server: Repo) -> list[str]:
    """The server's record: its `<sha> <ref>` lines."""
    return server.git("show", f"{SERVER_RECORD}:tips").stdout.splitlines()


def reflog_tips(server: Repo) -> set[str]:
    """What the server's reflogs of main and dev hold (and their tips now), as record lines."""
    lines = server.git("log", "-g", "--format=%H %gD", "refs/heads/main", "refs/heads/dev", "--").stdout.splitlines()
    found = {f"{sha} {selector.rpartition('@{')[0]}" for sha, _, selector in (line.partition(" ") for line in lines)}
    return found | {f"{server.head(ref)} {ref}" for ref in ("refs/heads/main", "refs/heads/dev")}


def team(tmp_path: Path) -> tuple[Repo, Repo, Repo]:
    server = dlgit_server(tmp_path)
    alice, bob = user_clone(server, tmp_path / "alice"), user_clone(server, tmp_path / "bob")
    seed = Seed(alice)
    seed.feature("feature-loader", "data/loader.py", "LOADER = 1\n")
    push(alice, "dev")
    seed.release("no-ff", "0.3.0")
    push(alice, "main", "v0.3.0")
    seed.back_merge()  # a fast-forward of dev onto main
    push(alice, "dev")

    for branch in ("main", "dev"):
        git(bob, "checkout", branch)
        assert "Fast-forward" in git(bob, "pull")
    git(bob, "checkout", "main")
    ok(bob.dlgit("start-task", "lr0.1"))
    task = bob.branch()
    (bob.path / "tasks" / task / "log.txt").write_text("loss 0.1\n")
    ok(bob.dlgit("finish-task"))
    proc = subprocess.run(["git", "push", "origin", "main", "dev"], cwd=bob.path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr  # pre-receive accepted every push
    git(alice, "checkout", "main")
    git(alice, "pull")
    return server, alice, bob


def test_alice_releases_by_hand_bob_pulls_and_finishes_a_task(tmp_path: Path) -> None:
    _, alice, _ = team(tmp_path)
    checks(alice)  # her reflogs saw dev at the released commit


def test_bobs_check_of_the_whole_history_after_a_fast_forward_back_merge(tmp_path: Path) -> None:
    """bob never fetched dev at the released commit: the server's record of dev's tips proves it."""
    server, _, bob = team(tmp_path)
    checks(bob)
    assert set(recorded(server)) == reflog_tips(server)


def test_a_fresh_clone_after_releases_and_back_merges_checks_clean(tmp_path: Path) -> None:
    """Several hand releases, back-merged by a fast-forward and by a real merge, and a squash
    release: `git clone`, `dlgit install`, `git fetch`, and the whole history checks clean."""
    server = dlgit_server(tmp_path)
    alice = user_clone(server, tmp_path / "alice")
    seed = Seed(alice)
    rounds = [("no-ff", "ff", "0.3.0"), ("no-ff", "later", "0.4.0"), ("no-ff", "ff", "0.5.0"), ("squash", "ff", "0.6.0")]
    for number, (how, back, new) in enumerate(rounds):
        seed.feature(f"feature-f{number}", f"data/f{number}.py", f"F = {number}\n")
        push(alice, "dev")
        seed.release(how, new)
        push(alice, "main", f"v{new}")
        if back == "later":
            seed.feature(f"feature-g{number}", f"data/g{number}.py", "G = 1\n")
        said = seed.back_merge()
        assert ("Fast-forward" in said) == (how == "no-ff" and back == "ff"), said
        push(alice, "dev")
    carol = tmp_path / "carol"
    Repo(tmp_path).git("clone", "-q", str(server.path), str(carol))
    carol_repo = Repo(carol)
    ok(carol_repo.dlgit("install"))
    checks(carol_repo)  # its `git fetch` brings the record
    assert carol_repo.git("rev-parse", "refs/dlgit/remotes/origin/tips").stdout.strip() == server.head(SERVER_RECORD)


def test_a_clone_without_the_record_is_told_the_one_fetch(tmp_path: Path) -> None:
    """A clone whose user never ran `dlgit install` (no refspec): the refused release's first fix is
    the fetch of the server's record, and pasting it makes the check pass."""
    server, _, _ = team(tmp_path)
    dave = clone(server.path, tmp_path / "dave", hooks=False)
    proc = dave.dlgit("check", "--branch", "main", "origin/main")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    fetch = f"git fetch origin {shlex.quote(record_refspec('origin'))}"
    assert fetch in proc.stdout, proc.stdout
    subprocess.run(shlex.split(fetch), cwd=dave.path, check=True, capture_output=True)
    checks(dave)


def test_a_record_pushed_by_a_client_is_refused(tmp_path: Path) -> None:
    """Only the server writes refs/dlgit/: a forged record (dev owning a commit it never had) is
    refused by pre-receive (the client's pre-push skipped), and by pre-push; so is deleting it."""
    server = dlgit_server(tmp_path)
    mallory = user_clone(server, tmp_path / "mallory")
    git(mallory, "checkout", "-b", "feature-evil", "dev")
    mallory.write("model/net.py", "EVIL = 1\n")
    git(mallory, "commit", "-a", "-m", "feat: evil")
    evil = mallory.head()
    blob = mallory.git("hash-object", "-w", "--stdin", input=f"{evil} refs/heads/dev\n").stdout.strip()
    tree = mallory.git("mktree", input=f"100644 blob {blob}\ttips\n").stdout.strip()
    forged = mallory.git("commit-tree", tree, "-m", "dlgit: the tips main and dev have had").stdout.strip()
    before = server.head(SERVER_RECORD)
    for extra in (("--no-verify",), ()):
        proc = mallory.git("push", *extra, "origin", f"+{forged}:{SERVER_RECORD}", check=False)
        assert proc.returncode != 0, proc.stderr
        assert "history-rewrite" in proc.stderr and SERVER_RECORD in proc.stderr, proc.stderr
    proc = mallory.git("push", "--no-verify", "origin", f":{SERVER_RECORD}", check=False)
    assert proc.returncode != 0 and "history-rewrite" in proc.stderr, proc.stderr
    assert server.head(SERVER_RECORD) == before


def test_the_server_writes_what_its_reflogs_hold_and_a_lost_write_comes_back(tmp_path: Path) -> None:
    """The record is derived whole from the server's reflogs: a tip put in it by other means (here
    the admin's `git update-ref`) is gone after the next push to dev, and a write that never
    happened (a crash after the ref update; here the record deleted) is made whole by the next."""
    server = dlgit_server(tmp_path)
    alice = user_clone(server, tmp_path / "alice")
    seed = Seed(alice)
    seed.feature("feature-a", "data/a.py", "A = 1\n")
    push(alice, "dev")
    assert set(recorded(server)) == reflog_tips(server)
    first_dev = server.head("refs/heads/dev")

    foreign = server.head("refs/heads/feature-better-net")  # dev merged it; it was never dev's tip
    blob = server.git("hash-object", "-w", "--stdin", input="\n".join([*recorded(server), f"{foreign} refs/heads/dev", ""])).stdout.strip()
    tree = server.git("mktree", input=f"100644 blob {blob}\ttips\n").stdout.strip()
    server.git("update-ref", SERVER_RECORD, server.git("commit-tree", tree, "-m", "forged").stdout.strip())
    seed.feature("feature-b", "data/b.py", "B = 1\n")
    push(alice, "dev")
    lines = set(recorded(server))
    assert lines == reflog_tips(server)
    assert f"{first_dev} refs/heads/dev" in lines
    assert f"{foreign} refs/heads/dev" not in lines

    server.git("update-ref", "-d", SERVER_RECORD)  # as if the writer had crashed after the ref updates
    second_dev = server.head("refs/heads/dev")
    seed.feature("feature-c", "data/c.py", "C = 1\n")
    push(alice, "dev")
    lines = set(recorded(server))
    assert {f"{first_dev} refs/heads/dev", f"{second_dev} refs/heads/dev"} <= lines
    assert lines == reflog_tips(server)
    written = server.head(SERVER_RECORD)
    names = "refs/heads/main\nrefs/heads/dev\n"  # what the post-receive script hands it
    ok(server.dlgit("hook", "post-receive", input=names))  # nothing moved since: nothing is written
    assert server.head(SERVER_RECORD) == written
    server.git("update-ref", "-d", SERVER_RECORD)
    ok(server.dlgit("hook", "post-receive", input=names))  # the writer alone derives the same record again
    assert server.head(SERVER_RECORD) == written


def test_pull_on_main_after_a_teammates_task_merge_passes_the_hooks(tmp_path: Path) -> None:
    """alice and bob each merge a task into main; bob's `git pull` makes git's own merge
    ("Merge branch 'main' of <url>"), which the hooks, pre-receive and check accept on main."""
    server = dlgit_server(tmp_path)
    alice, bob = user_clone(server, tmp_path / "alice"), user_clone(server, tmp_path / "bob")
    Seed(alice).task("alice", dev=False)
    push(alice, "main")
    Seed(bob).task("bob", dev=False)
    said = git(bob, "pull", "--no-rebase", "--no-edit")
    assert "Merge made" in said, said
    assert bob.git("log", "-1", "--format=%s").stdout.startswith("Merge branch 'main' of ")
    push(bob, "main")
    out = ok(bob.dlgit("check", "--branch", "main", "main"))
    assert "no violations" in out, out
