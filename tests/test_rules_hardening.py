"""Issues 15-17, the rules' part, through real git and the hooks (the in-process cases are in
tests/test_policy_table.py; the attacks against a server in tests/test_attacks.py)."""

from __future__ import annotations

import os

import pytest
from conftest import TEMPLATE_CONFIG, Repo, assert_allowed, assert_blocked

BUMPED = TEMPLATE_CONFIG.replace("VERSION: 0.1.0", "VERSION: 0.2.0")
TEMPLATE = "tasks/main/config.yaml"


# --- a VERSION bump is that value and nothing else ------------------------------------------------


def test_bump_that_flips_the_exec_bit_is_no_bump(repo: Repo) -> None:
    repo.write(TEMPLATE, BUMPED)
    os.chmod(repo.path / TEMPLATE, 0o755)
    assert_blocked(repo.commit("bump: version 0.1.0 → 0.2.0", check=False), "main-protected", TEMPLATE)
    os.chmod(repo.path / TEMPLATE, 0o644)
    assert_allowed(repo.commit("bump: version 0.1.0 → 0.2.0"))


def test_bump_that_swaps_a_line_break_for_u2028_is_no_bump(repo: Repo) -> None:
    text = BUMPED.replace("\nDEBUG", "\u2028DEBUG", 1)
    assert "\u2028" in text
    repo.write(TEMPLATE, text)
    assert_blocked(repo.commit("bump: version 0.1.0 → 0.2.0", check=False), "main-protected", TEMPLATE)


@pytest.mark.parametrize("version", ["99999999999999999999.0.0", "0.3.0", "0.1.2"])
def test_bump_past_the_next_version_is_no_bump(repo: Repo, version: str) -> None:
    repo.write(TEMPLATE, TEMPLATE_CONFIG.replace("VERSION: 0.1.0", f"VERSION: {version}"))
    assert_blocked(repo.commit(f"bump: version 0.1.0 → {version}", check=False), "main-protected", TEMPLATE)


@pytest.mark.parametrize("version", ["1.0.0", "0.2.0", "0.1.1"])
def test_bump_to_the_next_major_minor_or_patch_passes(repo: Repo, version: str) -> None:
    repo.write(TEMPLATE, TEMPLATE_CONFIG.replace("VERSION: 0.1.0", f"VERSION: {version}"))
    assert_allowed(repo.commit(f"bump: version 0.1.0 → {version}"))


# --- model files by their names ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.safetensors", "llama.gguf", "net.onnx", "data.tar"])
def test_model_and_archive_files_are_large_files_by_name(repo: Repo, name: str) -> None:
    repo.git("switch", "-q", "dev")
    repo.write(f"weights/{name}", "tiny\n")
    assert_blocked(repo.commit("feat: weights", check=False), "large-file", f"weights/{name}")


def test_ordinary_files_with_similar_names_pass(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write("tools/binarize.py", "X = 1\n")
    repo.write("docs/tarball.md", "x\n")
    assert_allowed(repo.commit("feat: tools"))


# --- messages: never empty, never megabytes ------------------------------------------------------------


def test_huge_commit_message_is_refused_by_hook_and_check(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    story = repo.path.parent / "story.txt"
    story.write_text("feat: a long story\n\n" + ("word " * 15 + "\n") * (300 * 1024 // 76))
    repo.write("model/story.py", "STORY = 1\n")
    repo.git("add", "model/story.py")
    proc = repo.git("commit", "-F", str(story), check=False)
    assert_blocked(proc, "commit-message", "at most 262,144")
    story.write_text("feat: a long story\n\n" + ("word " * 15 + "\n") * (20 * 2**20 // 76))  # 20 MB
    repo.git("commit", "-q", "--no-verify", "--allow-empty", "-F", str(story))
    checked = repo.dlgit("check", "main..dev")
    assert checked.returncode == 1 and "at most 262,144" in checked.stdout, checked.stdout[-2000:]


def test_long_but_ordinary_commit_message_passes(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    story = repo.path.parent / "story.txt"
    story.write_text("feat: a long story\n\n" + ("word " * 15 + "\n") * 1000)  # 76 kB
    assert_allowed(repo.git("commit", "-q", "--allow-empty", "-F", str(story), check=False))
    assert repo.dlgit("check", "main..dev").returncode == 0


# --- .dlgit.yaml: a broken one is refused when staged, and never blocks its own repair -----------------


BROKEN = "hotfix:\n  max_files: 5\n  max_lines: [50\n"


def test_staged_broken_settings_are_refused_with_the_parsers_reason(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write(".dlgit.yaml", BROKEN)
    proc = repo.commit("chore: settings", ".dlgit.yaml", check=False)
    assert_blocked(proc, "settings-file", "not valid YAML", "line 3" if "line 3" in proc.stderr else ".dlgit.yaml")
    repo.write(".dlgit.yaml", "hotfix:\n  max_file: 5\n")
    assert_blocked(repo.commit("chore: settings", ".dlgit.yaml", check=False), "settings-file", "unknown key 'hotfix.max_file'")
    repo.write(".dlgit.yaml", "hotfix:\n  max_files: 5\n")
    assert_allowed(repo.commit("chore: settings", ".dlgit.yaml"))


def test_committed_broken_settings_are_found_by_check(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write(".dlgit.yaml", BROKEN)
    repo.git("add", ".dlgit.yaml")
    repo.git("commit", "-q", "--no-verify", "-m", "chore: settings")
    repo.git("switch", "-q", "main")  # judged by main's settings (the work tree's file is another question)
    proc = repo.dlgit("check", "main..dev")
    assert proc.returncode == 1 and "✗ settings-file:" in proc.stdout and "not valid YAML" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("repair", ["mend", "delete"])
def test_committed_broken_settings_never_block_their_repair(repo: Repo, repair: str) -> None:
    repo.git("switch", "-q", "dev")
    repo.write(".dlgit.yaml", BROKEN)
    repo.git("add", ".dlgit.yaml")
    repo.git("commit", "-q", "--no-verify", "-m", "chore: settings")
    repo.write("model/net.py", "NET = 2\n")
    other = repo.commit("feat: x", "model/net.py", check=False)  # anything else: refused, saying how to mend it
    assert other.returncode == 1 and "not valid YAML" in other.stderr and "judged by the default settings" in other.stderr, other.stderr
    repo.git("restore", "--staged", "model/net.py")
    if repair == "mend":
        repo.write(".dlgit.yaml", "hotfix:\n  max_files: 5\n  max_lines: 50\n")
        repo.git("add", ".dlgit.yaml")
    else:
        repo.git("rm", "-q", ".dlgit.yaml")
    proc = repo.git("commit", "-m", "fix: mend the settings", check=False)
    assert proc.returncode == 0 and "judged by the default settings" in proc.stderr, proc.stderr
    assert_allowed(repo.commit("feat: x", "model/net.py"))


def test_repair_commit_is_still_judged_by_the_default_rules(repo: Repo) -> None:
    """A broken file gives no licence: its repair is judged by the defaults (main stays protected)."""
    repo.write(".dlgit.yaml", BROKEN)
    repo.git("add", ".dlgit.yaml")
    repo.git("commit", "-q", "--no-verify", "-m", "chore: settings")
    repo.git("rm", "-q", ".dlgit.yaml")
    assert_blocked(repo.git("commit", "-m", "fix: mend", check=False), "main-protected", ".dlgit.yaml", replay="none")


# --- a task's VERSION is the core it runs on ------------------------------------------------------------


def _task_on(repo: Repo, core: str, named: str) -> str:
    """main's template at `core`; a task branch named for `named` whose config says `named` (a --resume of an older task)."""
    if core != "0.1.0":
        repo.write(TEMPLATE, TEMPLATE_CONFIG.replace("VERSION: 0.1.0", f"VERSION: {core}"))
        assert_allowed(repo.commit(f"bump: version 0.1.0 → {core}"))
    name = f"task-{named}-20260101T000000-resumed"
    repo.git("switch", "-q", "-c", name, "main")
    repo.write(f"tasks/{name}/config.yaml", TEMPLATE_CONFIG.replace("VERSION: 0.1.0", f"VERSION: {named}"))
    return name


def test_task_config_naming_an_older_core_than_it_runs_on_is_refused(repo: Repo) -> None:
    name = _task_on(repo, "0.2.0", "0.1.0")
    proc = repo.commit("task: start resumed", f"tasks/{name}", check=False)
    assert_blocked(proc, "task-config", "says VERSION 0.1.0", "is 0.2.0", replay="none")
    repo.git("commit", "-q", "--no-verify", "-m", "task: start resumed")
    repo.git("switch", "-q", "main")
    checked = repo.dlgit("check", "--branch", name, f"main..{name}")
    assert checked.returncode == 1 and "the core this commit runs it on" in checked.stdout, checked.stdout + checked.stderr


def test_task_config_naming_the_core_it_runs_on_passes(repo: Repo) -> None:
    name = _task_on(repo, "0.2.0", "0.2.0")
    assert_allowed(repo.commit("task: start resumed", f"tasks/{name}"))
    repo.git("switch", "-q", "main")
    assert repo.dlgit("check", "--branch", name, f"main..{name}").returncode == 0


# --- paths as git's fsck judges them --------------------------------------------------------------------


def test_path_that_macos_reads_as_dot_git_is_refused_at_commit(repo: Repo) -> None:
    """git on Linux stages `.g\\u200cit/hooks/post-checkout` (core.protectHFS is off there); a Mac checks it out as .git/."""
    repo.git("switch", "-q", "dev")
    repo.write(".g\u200cit/hooks/post-checkout", "#!/bin/sh\necho owned\n")
    staged = repo.git("add", "-A", check=False)
    if staged.returncode != 0:
        pytest.skip(f"this git refuses the path itself: {staged.stderr.strip()}")
    assert_blocked(repo.git("commit", "-m", "feat: hooks", check=False), "path-names", "HFS+")


def test_dotted_names_git_accepts_pass_at_commit(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write(".github/workflows/ci.yml", "on: push\n")
    repo.write("model/.gitkeep", "")
    repo.write("notes/..draft.md", "x\n")
    assert_allowed(repo.commit("ci: a workflow"))


def test_merging_a_new_core_into_a_task_is_refused(repo: Repo) -> None:
    """The "no DVC" plan merged main into the task branch: the task's VERSION then names a core it no longer runs on."""
    name = _task_on(repo, "0.1.0", "0.1.0")
    assert_allowed(repo.commit("task: start", f"tasks/{name}"))
    repo.git("switch", "-q", "main")
    repo.write(TEMPLATE, BUMPED)
    assert_allowed(repo.commit("bump: version 0.1.0 → 0.2.0"))
    repo.git("switch", "-q", name)
    proc = repo.git("merge", "--no-ff", "-m", "Merge branch 'main' into task", "main", check=False)
    assert proc.returncode != 0 and "✗ task-config:" in proc.stderr and "is 0.2.0" in proc.stderr, proc.stderr
    repo.git("merge", "--abort", check=False)
    repo.git("merge", "-q", "--no-ff", "--no-verify", "-m", "Merge branch 'main' into task", "main")
    repo.git("switch", "-q", "main")
    checked = repo.dlgit("check", "--branch", name, f"main~1..{name}")
    assert checked.returncode == 1 and "the core this commit runs it on" in checked.stdout, checked.stdout + checked.stderr
