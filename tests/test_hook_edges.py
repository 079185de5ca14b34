"""Hook edge cases of issue 2 item 5 and bad input, through real git with the hooks firing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    TASK,
    TEMPLATE_CONFIG,
    Repo,
    assert_allowed,
    assert_blocked,
    assert_usage_error,
    make_repo,
    setup_commit,
    start_task,
)

# --- unborn branch -----------------------------------------------------------------------------


@pytest.mark.parametrize("object_format", ["sha1", "sha256"])
def test_first_commit_on_unborn_main(tmp_path: Path, object_format: str) -> None:
    repo = Repo(tmp_path / "fresh")
    repo.path.mkdir()
    repo.git("init", "-q", "-b", "main", f"--object-format={object_format}")
    repo.install_direct_hooks()
    repo.write("tasks/main/config.yaml", TEMPLATE_CONFIG)
    repo.write("ckpt/model.pt", b"\0")
    proc = repo.commit("chore: initial layout", check=False)
    assert_blocked(proc, "large-file", "ckpt/model.pt")
    assert "main-protected" not in proc.stderr  # the root commit may land on main
    repo.git("rm", "-q", "--cached", "ckpt/model.pt")
    assert_allowed(repo.git("commit", "-m", "chore: initial layout", check=False))


def test_first_commit_on_unborn_badly_named_branch(bare_repo: Repo) -> None:
    bare_repo.git("symbolic-ref", "HEAD", "refs/heads/scratch")
    bare_repo.install_direct_hooks()
    bare_repo.write("a.txt")
    assert_blocked(bare_repo.commit("chore: a", check=False), "branch-name", "scratch")


# --- detached HEAD, rebase ---------------------------------------------------------------------


def test_detached_head_skips_branch_rules_but_not_content_rules(repo: Repo) -> None:
    repo.git("switch", "-q", "--detach", "main")
    repo.write("model/net.py", "NET = 2\n")
    proc = repo.commit("feat: detached", check=False)
    assert_allowed(proc)
    assert "detached HEAD" in proc.stderr and proc.stderr.count("skipped") == 1  # not again at commit-msg
    repo.write("out/best.pt", b"\0")
    proc = repo.commit("feat: weights", check=False)
    assert_blocked(proc, "large-file", "out/best.pt")
    assert "a detached HEAD" in proc.stderr


def test_rebase_in_progress_is_not_blocked(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 'dev'\n")
    setup_commit(repo, "feat: dev net")
    repo.git("switch", "-q", "main")
    repo.write("model/net.py", "NET = 'main'\n")
    setup_commit(repo, "fix: main net")
    assert repo.git("rebase", "dev", check=False).returncode != 0  # conflict: the rebase stops
    repo.write("model/net.py", "NET = 'both'\n")
    repo.git("add", "model/net.py")
    proc = repo.git("commit", "-m", "whatever, on main", check=False)  # would break three rules otherwise
    assert_allowed(proc)
    assert "rebase in progress" in proc.stderr and "skipped" in proc.stderr and "dlgit check" in proc.stderr


# --- amend -------------------------------------------------------------------------------------


def test_amend_that_adds_an_outside_file_is_blocked(repo: Repo) -> None:
    start_task(repo)
    repo.write(f"tasks/{TASK}/notes.md")
    setup_commit(repo, "task: notes")
    repo.write("model/net.py", "NET = 'task'\n")
    repo.git("add", "model/net.py")
    proc = repo.git("commit", "--amend", "--no-edit", check=False)
    assert_blocked(proc, "task-scope", "model/net.py")
    # the amend of a commit that is fine stays fine
    repo.git("restore", "--staged", "model/net.py")
    assert_allowed(repo.git("commit", "--amend", "-m", "task: notes, reworded", check=False))


@pytest.mark.parametrize("option", ["--amend", "--amen"])  # git accepts an abbreviated option
def test_message_only_amend_is_judged_on_the_whole_amended_commit(repo: Repo, option: str) -> None:
    start_task(repo)
    repo.write("model/net.py", "NET = 'task'\n")
    setup_commit(repo, "task: core")
    assert_blocked(repo.git("commit", option, "-m", "task: reworded", check=False), "task-scope", "model/net.py")


def test_repository_path_holding_a_newline(tmp_path: Path) -> None:
    """git names the repository line by line; such a path is asked for one question at a time."""
    from dlgit.git import Git

    repo = make_repo(tmp_path / "two\nlines")
    repo.write("tasks/main/config.yaml", TEMPLATE_CONFIG)
    repo.commit("chore: initial layout")
    info = Git.open(repo.path).info
    assert (info.git_dir, info.toplevel, info.branch) == (repo.path / ".git", repo.path, "main")
    repo.install_direct_hooks()
    repo.git("switch", "-q", "-c", "feature-x")
    repo.write("model/x.py")
    repo.commit("feat: x")
    repo.git("switch", "-q", "main")
    assert_blocked(repo.git("merge", "--no-ff", "--no-edit", "feature-x", check=False), "merge-direction", "feature-x")
    assert_blocked(repo.git("commit", "--no-edit", check=False), "merge-direction", "feature-x")  # MERGE_HEAD found


@pytest.mark.skipif(shutil.which("ps") is None, reason="no ps on this machine")
def test_git_options_found_without_proc_too(repo: Repo) -> None:
    """Off Linux the git command's options come from one `ps` listing: the same options, as long
    as no argument holds a space (ps joins them with spaces)."""
    probe = repo.write(".git/probe.py", (
        "import os\n"
        "from dlgit.git import ancestry as facts\n"
        "for ancestry in (facts._proc_ancestry, facts._ps_ancestry):\n"
        "    git = next(argv for argv in ancestry(os.getppid()) if os.path.basename(argv[0]) == b'git')\n"
        "    print(b' '.join(git[-4:]).decode())\n"
    ))
    proc = repo.git("-c", f"alias.probe=!'{sys.executable}' '{probe}'", "probe", "--amend", "-m", "x")
    assert proc.stdout.splitlines() == ["probe --amend -m x"] * 2


@pytest.mark.skipif(shutil.which("ps") is None, reason="no ps on this machine")
def test_ps_never_reads_a_message_as_options(repo: Repo) -> None:
    hook = repo.path / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\nexec '{sys.executable}' -c 'import os; from dlgit.git import ancestry as facts; "
                    "print(next(a for a in facts._ps_ancestry(os.getppid()) if a[0].endswith(b\"git\")))' >&2\n")
    repo.git("switch", "-q", "dev")
    repo.write("model/x.py")
    repo.git("add", ".")
    said = repo.git("commit", "-m", "fix: not an --amend", "--cleanup=verbatim").stderr
    assert "b'commit', b'-m']" in said and "--amend" not in said
    said = repo.git("commit", "--amend", "-m", "fix: x").stderr
    assert "b'commit', b'--amend', b'-m']" in said


def test_message_only_amend_of_an_allowed_merge_on_main(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 2\n")
    setup_commit(repo, "feat: net 2")
    repo.git("switch", "-q", "main")
    repo.git("merge", "-q", "--no-verify", "--no-ff", "-m", "feat: release", "dev")
    proc = repo.git("commit", "--amend", "-m", "feat: release net 2", check=False)
    assert_allowed(proc)
    assert repo.git("log", "-1", "--format=%s").stdout.strip() == "feat: release net 2"
    assert repo.git("rev-parse", "HEAD^2").stdout.strip() == repo.head("dev")
    # amending it to smuggle in a direct change is still a direct change... of a merge: blocked by its source rules
    proc = repo.git("commit", "--amend", "-m", "Merge branch 'dev'", check=False)
    assert_blocked(proc, "commit-message", "Merge branch 'dev'")


def test_message_only_amend_of_a_squash_on_main(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 2\n")
    setup_commit(repo, "feat: net 2")
    repo.git("switch", "-q", "main")
    repo.git("merge", "--squash", "dev")
    trailer = f"Squashed-from: dev@{repo.head('dev')}"
    repo.git("commit", "-q", "--no-verify", "-m", "feat: release", "--trailer", trailer)
    assert_allowed(repo.git("commit", "--amend", "-m", "feat: release 0.2.0", "--trailer", trailer, check=False))
    proc = repo.git("commit", "--amend", "-m", "feat: release 0.2.0", check=False)
    assert_blocked(proc, "main-protected", trailer)


# --- worktrees ---------------------------------------------------------------------------------


def test_worktree_commit_and_merges(repo: Repo, tmp_path: Path) -> None:
    repo.git("branch", "feature-x", "dev")
    repo.git("branch", "debug-0.1.0-20260101T000000-d", "dev")
    wt = Repo(tmp_path / "work tree")
    repo.git("worktree", "add", "-q", str(wt.path), "feature-x")
    wt.write("model/x.py")
    assert_allowed(wt.commit("feat: x"))
    wt.git("switch", "-q", "dev")
    assert_allowed(wt.git("merge", "--no-ff", "--no-edit", "feature-x", check=False))
    # a conflicted merge concluded inside the worktree: MERGE_HEAD lives in the worktree's git dir
    wt.git("switch", "-q", "debug-0.1.0-20260101T000000-d")
    wt.write("model/x.py", "debug\n")
    setup_commit(wt, "fix: debug x")
    wt.git("switch", "-q", "dev")
    assert wt.git("merge", "debug-0.1.0-20260101T000000-d", check=False).returncode == 1
    wt.write("model/x.py", "both\n")
    wt.git("add", "model/x.py")
    assert_blocked(wt.git("commit", "--no-edit", check=False), "merge-direction", "debug-0.1.0-20260101T000000-d", replay="lossy")
    # the main worktree is not affected by the worktree's merge state
    repo.write("model/net.py", "NET = 2\n")
    assert_blocked(repo.commit("feat: direct", check=False), "main-protected")


# --- custom GIT_INDEX_FILE (git commit <path>) -------------------------------------------------


def test_commit_with_paths_is_judged_on_what_it_commits(repo: Repo) -> None:
    start_task(repo)
    repo.write(f"tasks/{TASK}/config.yaml", TEMPLATE_CONFIG.replace("lr: 0.01", "lr: 0.02"))
    repo.write("model/net.py", "NET = 'core'\n")
    repo.git("add", "model/net.py")  # staged but not part of the next commit
    assert_allowed(repo.git("commit", "-m", "task: lr", "--", f"tasks/{TASK}/config.yaml", check=False))
    assert repo.git("diff", "--cached", "--name-only").stdout.strip() == "model/net.py"
    proc = repo.git("commit", "-m", "task: core", "--", "model/net.py", check=False)
    assert_blocked(proc, "task-scope", "model/net.py", replay="undo")  # a commit of exactly that path is never allowed here


def test_commit_include_is_judged_with_the_staged_changes(repo: Repo) -> None:
    start_task(repo)
    repo.write("model/net.py", "NET = 'core'\n")
    repo.git("add", "model/net.py")
    repo.write(f"tasks/{TASK}/config.yaml", TEMPLATE_CONFIG.replace("lr: 0.01", "lr: 0.02"))
    proc = repo.git("commit", "-m", "task: lr", "-i", "--", f"tasks/{TASK}/config.yaml", check=False)
    assert_blocked(proc, "task-scope", "model/net.py")


# --- odd paths ---------------------------------------------------------------------------------


def test_paths_with_spaces_newlines_and_non_utf8_bytes(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("ckpt/my best.pt", b"\0")
    repo.write("ckpt/a\nb.pt", b"\0")
    (repo.path / os.fsdecode(b"ckpt/caf\xe9.pt")).write_bytes(b"\0")
    repo.write("ok file.py")
    proc = repo.commit("feat: weights", check=False)
    assert_blocked(proc, "large-file", "ckpt/my best.pt (matches *.pt)", "'ckpt/a\\nb.pt (matches *.pt)'", "caf\\xe9.pt")
    dvc_add = next(line for line in proc.stderr.splitlines() if "restore --staged" in line or "rm --cached" in line)
    # fix commands a shell can run: one line, ANSI-C quoting for the odd names
    assert "'ckpt/my best.pt'" in dvc_add and "$'ckpt/a\\nb.pt'" in dvc_add and "$'ckpt/caf\\xe9.pt'" in dvc_add
    subprocess.run(["bash", "-c", dvc_add.strip()], cwd=repo.path, check=True, capture_output=True)  # the printed fix works
    assert_allowed(repo.git("commit", "-m", "feat: ok file", check=False))
    assert "ckpt" not in repo.git("ls-files", "-z").stdout


def test_task_scope_with_a_newline_path_outside(repo: Repo) -> None:
    start_task(repo)
    repo.write("model/odd\nname.py")
    repo.write(f"tasks/{TASK}/with space.txt")
    proc = repo.commit("task: odd", check=False)
    assert_blocked(proc, "task-scope", "'model/odd\\nname.py'")
    assert "with space" not in proc.stderr.split("why:")[0]


# --- shell metacharacters in branch names ------------------------------------------------------


@pytest.mark.parametrize("name", ["feature-$(touch${IFS}x)", "feature-`touch${IFS}x`", "feature-a;touch${IFS}x", "x|touch${IFS}x"])
def test_branch_with_shell_metacharacters_runs_nothing(repo: Repo, name: str) -> None:
    repo.git("switch", "-q", "-c", name, "dev")
    repo.write("model/net.py", "NET = 2\n")
    proc = repo.commit("feat: tweak", "model/net.py", check=False)
    assert_blocked(proc, "branch-name", name)
    assert f"git branch -m '{name}' " in proc.stderr
    assert not (repo.path / "x").exists() and not (repo.path / ".git" / "x").exists()
    assert not (repo.path / ".git" / "hooks" / "x").exists()


# --- settings and bad input --------------------------------------------------------------------


def test_corrupt_dlgit_yaml(repo: Repo) -> None:
    repo.write(".dlgit.yaml", "hotfix:\n  max_files: 5\n  max_lines: [50\n")
    setup_commit(repo, "chore: settings", ".dlgit.yaml")  # the hooks judge by the committed settings
    proc = repo.dlgit("hook", "pre-commit")
    assert_usage_error(proc, ".dlgit.yaml:", "not valid YAML")
    repo.write("model/net.py", "NET = 2\n")
    proc = repo.commit("feat: x", "model/net.py", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and ".dlgit.yaml:" in proc.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hotfix:\n  max_file: 5\n", [".dlgit.yaml:2:", "unknown key 'hotfix.max_file'", "hotfix.max_files"]),
        ("hotfix:\n  max_files: five\n", [".dlgit.yaml:2:", "'hotfix.max_files' must be a whole number"]),
        ("branches:\n  extra_allowed: release/*\n", [".dlgit.yaml:2:", "'branches.extra_allowed' must be a list"]),
        ("colour: red\n", [".dlgit.yaml:1:", "unknown key 'colour'"]),
    ],
)
def test_bad_dlgit_yaml_exits_2(repo: Repo, text: str, expected: list[str]) -> None:
    repo.write(".dlgit.yaml", text)
    setup_commit(repo, "chore: settings", ".dlgit.yaml")
    assert_usage_error(repo.dlgit("hook", "pre-commit"), *expected)
    msg = repo.write(".git/MSG", "feat: x\n")
    assert_usage_error(repo.dlgit("hook", "commit-msg", str(msg)), *expected)


def test_not_a_git_repository(tmp_path: Path) -> None:
    outside = tmp_path / "plain dir"
    outside.mkdir()
    for hook in (["pre-commit"], ["commit-msg", "MSG"], ["pre-merge-commit"]):
        proc = subprocess.run(
            ["dlgit", "hook", *hook],
            cwd=outside,
            capture_output=True,
            text=True,
            env={**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path)},
            check=False,
        )
        assert_usage_error(proc, "not inside a git repository")


def test_extra_allowed_branch_pattern(repo: Repo) -> None:
    repo.git("switch", "-q", "-c", "release/1.0", "dev")
    repo.write("model/net.py", "NET = 2\n")
    assert_blocked(repo.commit("fix: release tweak", "model/net.py", check=False), "branch-name", "release/1.0")
    repo.write(".dlgit.yaml", 'branches:\n  extra_allowed: ["release/*"]\n')
    repo.git("add", ".dlgit.yaml")  # a staged .dlgit.yaml counts once committed (alone here; net.py stays staged)
    repo.git("commit", "-q", "--no-verify", "-m", "chore: allow release branches", "--", ".dlgit.yaml")
    assert_allowed(repo.git("commit", "-m", "fix: release tweak", check=False))


# --- commit-msg: comment char, scissors, COMMIT_EDITMSG ----------------------------------------

EDITOR = """\
import os, sys
path = sys.argv[1]
lines = open(path, encoding="utf-8").read().splitlines(keepends=True)
cc = os.environ["CC"]
first = next(i for i, line in enumerate(lines) if line.startswith(cc))
open(path, "w", encoding="utf-8").write(os.environ["NEW_MSG"] + "".join(lines[first:]))
"""


def test_commit_verbose_with_custom_comment_char_and_scissors(repo: Repo, tmp_path: Path) -> None:
    """`git commit -v`: the diff below the scissors line and `;` comments are not the message."""
    editor = tmp_path / "editor.py"
    editor.write_text(EDITOR)
    repo.git("config", "core.commentChar", ";")
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 2\n")
    setup_commit(repo, "feat: net 2")
    repo.git("switch", "-q", "main")
    repo.git("merge", "--squash", "dev")
    new_msg = f"; a comment above the subject\nfeat: release\n\nSquashed-from: dev@{repo.head('dev')}\n\n"
    env = {"GIT_EDITOR": f"{sys.executable} '{editor}'", "CC": ";", "NEW_MSG": new_msg}
    proc = repo.git("commit", "-v", env=env, check=False)
    assert_allowed(proc)
    assert repo.git("log", "-1", "--format=%B").stdout.strip() == f"feat: release\n\nSquashed-from: dev@{repo.head('dev')}"
    # the same file with `#` as the comment char would start with a comment line as its subject
    repo.git("config", "core.commentChar", "#")
    msg = repo.write(".git/MSG", new_msg)
    assert_blocked(repo.dlgit("hook", "commit-msg", str(msg)), "commit-message", "; a comment above the subject")


def test_comment_char_auto(repo: Repo, tmp_path: Path) -> None:
    """core.commentChar=auto: a message with `#` lines makes git comment with `;`, so `#1` is the subject."""
    editor = tmp_path / "editor.py"
    editor.write_text(EDITOR)
    repo.git("config", "core.commentChar", "auto")
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 2\n")
    repo.git("add", "model/net.py")
    env = {"GIT_EDITOR": f"{sys.executable} '{editor}'", "CC": ";", "NEW_MSG": "#1 the issue\nfeat: x\n\n"}
    assert_blocked(repo.git("commit", "-v", "-e", "-m", "#placeholder", env=env, check=False), "commit-message", "#1 the issue")
    env["NEW_MSG"] = "feat: x\n#1 the issue\n\n"
    assert_allowed(repo.git("commit", "-v", "-e", "-m", "#placeholder", env=env, check=False))
    assert repo.git("log", "-1", "--format=%B").stdout.strip() == "feat: x\n#1 the issue"


@pytest.mark.parametrize(
    ("text", "char", "expected"),
    [
        ("feat: x\n# comment\n", "#", "feat: x"),
        ("# c\nfeat: x\n\nbody  \n", "#", "feat: x\n\nbody"),
        ("feat: x\n# ------------------------ >8 ------------------------\ndiff --git a b\n", "#", "feat: x"),
        ("feat: x\n; ------------------------ >8 ------------------------\n+wip\n", ";", "feat: x"),
        ("#1 x\n; c\n", ";", "#1 x"),
        ("// c\nfeat: x\n", "//", "feat: x"),  # git 2.45+ core.commentString
        ("#1 x\n; c\n; ------------------------ >8 ------------------------\n@@ -1 +1 @@\n", "auto", "#1 x"),
        ("#1 x\nfeat: y\n\n; Please enter the commit message\n;\n", "auto", "#1 x\nfeat: y"),
        ("# c\nfeat: y\n", "auto", "feat: y"),
    ],
)
def test_clean_message(text: str, char: str, expected: str) -> None:
    from dlgit.git.message import clean_message

    assert clean_message(text, char) == expected


def test_commit_msg_without_file_reads_commit_editmsg(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    (repo.path / ".git" / "COMMIT_EDITMSG").write_text("wip things\n# comment\n")
    assert_blocked(repo.dlgit("hook", "commit-msg"), "commit-message", "wip things")
    (repo.path / ".git" / "COMMIT_EDITMSG").write_text("# comment first\nfeat: things\n")
    assert_allowed(repo.dlgit("hook", "commit-msg"))


def test_commit_msg_missing_file_is_a_usage_error(repo: Repo) -> None:
    assert_usage_error(repo.dlgit("hook", "commit-msg", "no-such-file"), "no-such-file")


def test_empty_message_is_refused_with_allow_empty_message(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 2\n")
    repo.git("add", "model/net.py")
    proc = repo.git("commit", "--allow-empty-messag", "-m", "", check=False)  # git takes unique abbreviations
    assert proc.returncode == 1 and "the message is empty" in proc.stderr, proc.stderr


def test_comment_lines_given_with_dash_m_are_the_message(repo: Repo) -> None:
    """`git commit -m '# wip'` stores '# wip' (no editor: git keeps '#' lines), so that is judged."""
    repo.git("switch", "-q", "dev")
    repo.write("model/a.py")
    repo.git("add", "model/a.py")
    proc = repo.git("commit", "-m", "# wip", check=False)
    assert proc.returncode == 1 and "commit-message" in proc.stderr and "# wip" in proc.stderr
    assert repo.git("commit", "-qm", "feat: a", "-m", "# a body line, kept by git", check=False).returncode == 0
    assert "# a body line" in repo.git("log", "-1", "--format=%B").stdout
    # with the editor (GIT_EDITOR=true here) git strips them, and so does the hook
    repo.write("model/b.py")
    repo.git("add", "model/b.py")
    assert repo.git("commit", "-q", "-e", "-m", "feat: b", "-m", "# dropped", check=False).returncode == 0


def _fake_git(tmp_path: Path, script: str | None) -> dict[str, str]:
    """PATH with only the interpreter's bin folder and, if given, a fake `git` script."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    if script is not None:
        (bindir / "git").write_text(f"#!/bin/sh\n{script}\n")
        (bindir / "git").chmod(0o755)
    return {"PATH": f"{bindir}{os.pathsep}{os.path.dirname(sys.executable)}"}


@pytest.mark.parametrize(
    ("script", "expected"),
    [(None, "git is not installed or not on PATH"), ('echo "git version 2.20.1"', "git 2.20 is too old; dlgit needs git 2.38")],
)
def test_git_missing_or_too_old_is_a_usage_error(repo: Repo, tmp_path: Path, script: str | None, expected: str) -> None:
    proc = repo.dlgit("check", env=_fake_git(tmp_path, script))
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr
