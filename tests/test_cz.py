"""commitizen with cz_dlgit and the dlgit version provider: the real `cz` in temporary repositories.

`cz check` agrees with dlgit's commit-msg hook on the shared table (tests/messages.py); `cz bump`
and dlgit.model.release_version compute the same next version; `cz bump` writes VERSION through the
provider and its commit and tag pass dlgit's hooks and `dlgit check`; `cz changelog` has a Task
section; under the pre-commit framework commitizen's hook finds the plugin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE_CONFIG, Repo, make_repo
from histories import install_hooks, isolated_git
from messages import CASES, Case

from dlgit import cz_setup, origin
from dlgit.config import Settings
from dlgit.errors import UsageError
from dlgit.model import release_version

CZ = shutil.which("cz", path=os.path.dirname(sys.executable)) or shutil.which("cz") or "cz"
CZ_CHECK = ("check", "--allow-abort", "--commit-msg-file")  # as commitizen's own pre-commit hook runs it


def cz(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CZ, *args], cwd=repo.path, capture_output=True, text=True, check=False)


def cz_repo(path: Path, branch: str = "dev", dlgit_yaml: str | None = None) -> Repo:
    """The template task, commitizen configured by dlgit (.cz.toml), a root commit tagged v0.1.0."""
    repo = make_repo(path)
    repo.write("tasks/main/config.yaml", TEMPLATE_CONFIG)
    repo.write("model/net.py", "NET = 1\n")
    if dlgit_yaml:
        repo.write(".dlgit.yaml", dlgit_yaml)
    cz_setup.commitizen_config(repo.path)
    repo.commit("chore: initial layout", extra=("--no-verify",))
    repo.git("tag", "-a", "-m", "v0.1.0", "v0.1.0")
    repo.git("branch", "dev")
    if branch != "main":
        repo.git("switch", "-q", branch)
    return repo


# --- cz check: the shared table ------------------------------------------------------------------

# `cz` itself, once per message file, in one interpreter: the table has ~90 rows and each `cz` process
# spends ~0.5 s importing; test_cz_executable_matches_the_table runs the executable on a sample.
DRIVER = f"""
import json, sys
from commitizen import cli
from commitizen.exceptions import CommitizenException
codes = []
for path in sys.argv[1:]:
    sys.argv = ["cz", *{CZ_CHECK!r}, path]
    try:
        cli.main()
        codes.append(0)
    except CommitizenException as exc:
        codes.append(int(exc.exit_code))
print(json.dumps(codes))
"""


@pytest.fixture(scope="module")
def table_repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    base = tmp_path_factory.mktemp("cz-table")
    with isolated_git(base / "home"):
        repo = cz_repo(base / "repo")
    for index, case in enumerate(CASES):
        (repo.path / ".git" / f"MSG-{index}").write_bytes(case.message.encode())
    return repo


def test_cz_check_gives_the_table_verdicts(table_repo: Repo) -> None:
    files = [str(table_repo.path / ".git" / f"MSG-{index}") for index in range(len(CASES))]
    proc = subprocess.run([sys.executable, "-c", DRIVER, *files], cwd=table_repo.path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    codes = json.loads(proc.stdout.strip().splitlines()[-1])
    wrong = [(case.message, code) for case, code in zip(CASES, codes, strict=True) if (code == 0) is not case.cz_verdict]
    assert not wrong, wrong
    assert set(codes) <= {0, 14}  # 14: InvalidCommitMessageError; nothing else went wrong


SAMPLE = [case for case in CASES if case.message in (
    "task: run lr0.01\n\nloss 0.12 after 10 epochs\n", "wip: stuff", "Merge ../other repo into dev", "", "bump: version 0.1.0 → 0.2.0")]


@pytest.mark.parametrize("case", SAMPLE, ids=lambda case: case.id)
def test_cz_executable_matches_the_table(table_repo: Repo, case: Case) -> None:
    proc = cz(table_repo, *CZ_CHECK, str(table_repo.path / ".git" / f"MSG-{CASES.index(case)}"))
    assert (proc.returncode == 0) is case.cz_verdict, proc.stdout + proc.stderr
    assert case.cz_verdict or "commit validation: failed!" in proc.stdout + proc.stderr


def test_cz_refuses_an_empty_message_without_allow_abort(table_repo: Repo) -> None:
    """commitizen's own difference: its hook passes --allow-abort (its `allow_abort` setting is
    overridden by the command line's default); dlgit refuses an empty message too (SPEC §3)."""
    (table_repo.path / ".git" / "EMPTY").write_text("")
    proc = cz(table_repo, "check", "--commit-msg-file", str(table_repo.path / ".git" / "EMPTY"))
    assert proc.returncode == 14 and "commit message is empty" in proc.stdout + proc.stderr


def test_custom_types_from_dlgit_yaml_reach_cz(tmp_path: Path) -> None:
    repo = cz_repo(tmp_path / "repo", dlgit_yaml="commit:\n  types: [feat, fix, task, wip]\n")
    for message, accepted in (("wip: half done", True), ("task: run", True), ("docs: readme", False)):
        msg = repo.write(".git/MSG", message)
        assert (cz(repo, *CZ_CHECK, str(msg)).returncode == 0) is accepted, message
        assert (repo.dlgit("hook", "commit-msg", str(msg)).returncode == 0) is accepted, message
    repo.write(".dlgit.yaml", "commit:\n  types: [feat, 'not a type']\n")
    broken = cz(repo, *CZ_CHECK, str(msg))
    assert broken.returncode != 0 and ".dlgit.yaml" in broken.stdout + broken.stderr and "Traceback" not in broken.stderr


def test_plugin_module_imports_before_commitizen(tmp_path: Path) -> None:
    """Importing dlgit.cz first runs commitizen's plugin discovery from inside it: the entry point
    must already be there (an import-everything check, a script)."""
    code = ("import dlgit.cz\n"
            "from commitizen.config.base_config import BaseConfig\n"
            "from commitizen.cz import registry\n"
            "print(type(registry['cz_dlgit'](BaseConfig())).__name__)")
    cz_repo(tmp_path / "repo")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "repo", capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "DlgitCz", proc.stderr


def test_questions_offer_dlgit_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from commitizen.config.base_config import BaseConfig

    from dlgit.cz import DlgitCz

    cz_repo(tmp_path / "repo")
    monkeypatch.chdir(tmp_path / "repo")
    choices = DlgitCz(BaseConfig()).questions()[0]["choices"]  # type: ignore[typeddict-item]
    assert [choice["value"] for choice in choices] == list(Settings().commit_types)
    task = next(choice for choice in choices if choice["value"] == "task")
    assert "bumps no version" in task["name"]


# --- cz bump: the same next version as dlgit's model ------------------------------------------

BREAKING_TASK = "task: run\n\nBREAKING CHANGE: a footer counts wherever it is (commitizen reads every line)"
HISTORIES = [  # (start, messages on main since the tag, expected next version or None)
    ("0.1.0", ["fix: nan loss"], "0.1.1"),
    ("0.1.0", ["feat: loader", "fix: nan loss"], "0.2.0"),
    ("0.1.0", ["task: run lr0.01", "task: merge task-0.1.0-20260101T000000-lr0.01"], None),
    ("0.1.0", ["feat!: new config format"], "0.2.0"),
    ("0.1.0", ["fix: x\n\nBREAKING CHANGE: the loader takes a path"], "0.2.0"),
    ("1.2.3", ["fix: nan loss"], "1.2.4"),
    ("1.2.3", ["docs: readme", "chore: tidy"], "1.2.4"),
    ("1.2.3", ["feat: loader", "task: run"], "1.3.0"),
    ("1.2.3", ["refactor(model)!: new forward"], "2.0.0"),
    ("1.2.3", ["fix: x\n\nBREAKING-CHANGE: y"], "2.0.0"),
    ("1.2.3", ["task!: a task never bumps", "Merge branch 'feature-x' into dev", "bump: version 1.2.3 → 1.2.4"], None),
    ("1.2.3", [BREAKING_TASK], "2.0.0"),
    ("1.2.3", ["fix: a\nfeat: b (git's subject is the first paragraph on one line)"], "1.2.4"),
    ("1.2.3", ["docs: x\n\nfeat: a body line of subject form counts"], "1.3.0"),
    ("1.2.3", ["wip: not a type", "Feat: not a type either"], None),
]


def test_release_version_in_process() -> None:
    """The pure function `dlgit release --bump auto` calls, over the same histories (messages as git stores them)."""
    for start, messages, expected in HISTORIES:
        assert release_version(start, messages, Settings().commit_types) == expected, messages
    assert release_version("0.1.0", [], Settings().commit_types) is None


def test_bump_rules_read_as_commitizen_reads_them() -> None:
    """In process, over every message of the tables: commitizen's own increment finder, given the
    plugin's bump_pattern and bump maps, and dlgit.model.message_bump (with below_one) agree."""
    from commitizen.git import GitCommit
    from commitizen.version_increment import VersionIncrement

    from dlgit.cz import _bump_map
    from dlgit.model import below_one, bump_pattern, message_bump

    types = Settings().commit_types
    messages = [case.message for case in CASES] + [message for _, history, _ in HISTORIES for message in history]
    for message in messages:
        subject, _, body = message.strip().partition("\n\n")
        commit = GitCommit("0" * 40, " ".join(line.strip() for line in subject.split("\n")), body)  # as `git log %s %b` gives it
        for zero in (False, True):
            theirs = VersionIncrement.from_message(commit.message, bump_pattern(types), _bump_map(below_one=zero))
            ours = below_one(message_bump(message, types)) if zero else message_bump(message, types)
            assert int(theirs) == int(ours), (message, zero)


def _history(path: Path, start: str, messages: list[str], side_branch: bool = False) -> Repo:
    repo = make_repo(path)
    repo.write("tasks/main/config.yaml", TEMPLATE_CONFIG.replace("VERSION: 0.1.0", f"VERSION: {start}"))
    cz_setup.commitizen_config(repo.path)
    repo.commit("chore: initial layout", extra=("--no-verify",))
    repo.git("tag", f"v{start}")
    if side_branch:  # the first message on a merged branch: cz and `git log` read every parent's side
        repo.git("switch", "-q", "-c", "feature-x")
    for index, message in enumerate(messages):
        repo.git("commit", "-q", "--allow-empty", "--no-verify", "-m", message)
        if side_branch and index == 0:
            repo.git("switch", "-q", "main")
            repo.git("merge", "-q", "--no-ff", "--no-verify", "-m", "Merge branch 'feature-x'", "feature-x")
    return repo


def _cz_next(repo: Repo) -> str | None:
    proc = cz(repo, "bump", "--dry-run", "--yes")
    if proc.returncode == 21:  # NoneIncrementExit: "not eligible to be bumped"
        return None
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.split("→", 1)[1].split()[0]


@pytest.mark.parametrize(("start", "messages", "expected"), HISTORIES)
def test_cz_bump_and_the_model_agree(tmp_path: Path, start: str, messages: list[str], expected: str | None) -> None:
    repo = _history(tmp_path / "repo", start, messages)
    logged = repo.git("log", "-z", "--format=%B", f"v{start}..HEAD").stdout.split("\0")
    assert release_version(start, [message for message in logged if message], Settings().commit_types) == expected
    assert _cz_next(repo) == expected


def test_cz_bump_and_the_model_read_merged_branches(tmp_path: Path) -> None:
    repo = _history(tmp_path / "repo", "1.2.3", ["feat: on a feature branch", "fix: on main"], side_branch=True)
    logged = [message for message in repo.git("log", "-z", "--format=%B", "v1.2.3..HEAD").stdout.split("\0") if message]
    assert len(logged) == 3 and release_version("1.2.3", logged, Settings().commit_types) == "1.3.0"
    assert _cz_next(repo) == "1.3.0"


RELEASED = [(start, messages, expected) for start, messages, expected in HISTORIES if expected]


@pytest.mark.parametrize(("start", "messages", "expected"), RELEASED)
def test_dlgit_release_and_cz_bump_agree(tmp_path: Path, start: str, messages: list[str], expected: str) -> None:
    """The same history on dev: `dlgit release --bump auto` plans the version, and on main, after
    its squash, `cz bump --dry-run` computes the same one from the squash's lines."""
    repo = _history(tmp_path / "repo", start, [])
    repo.git("switch", "-q", "-c", "dev")
    for index, message in enumerate(messages):
        repo.write(f"model/change{index}.py", f"X = {index}\n")
        repo.git("add", "-A")
        repo.git("commit", "-q", "--no-verify", "-m", message)
    planned = repo.dlgit("release", "--dry-run")
    assert f"({start} → {expected})" in planned.stdout, planned.stdout + planned.stderr
    assert repo.dlgit("release", env={"DLGIT_TEST_CRASH_AFTER_STEP": "3"}).returncode == -9  # the squash is committed
    assert _cz_next(repo) == expected
    assert repo.dlgit("continue").returncode == 0 and repo.git("describe", "--tags", "main").stdout.strip() == f"v{expected}"


# --- cz bump for real, on main ------------------------------------------------------------------


@pytest.fixture
def released(tmp_path: Path) -> Repo:
    """main with a feature released from dev (a --no-ff merge), dlgit's hooks installed."""
    repo = cz_repo(tmp_path / "repo")
    install_hooks(repo)
    repo.write("model/net.py", "NET = 2\n")
    assert repo.commit("feat: a bigger net").returncode == 0
    repo.git("switch", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "feat: release dev", "dev")
    return repo


def test_cz_bump_writes_version_and_passes_dlgit(released: Repo) -> None:
    repo = released
    before = (repo.path / "tasks/main/config.yaml").read_text()
    proc = cz(repo, "bump", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "blocked" not in proc.stdout + proc.stderr
    after = (repo.path / "tasks/main/config.yaml").read_text()
    assert after == before.replace("VERSION: 0.1.0  # core version", "VERSION: 0.2.0  # core version")
    assert repo.git("log", "-1", "--format=%s").stdout.strip() == "bump: version 0.1.0 → 0.2.0"
    assert repo.git("diff", "--name-only", "HEAD^", "HEAD").stdout.split() == ["tasks/main/config.yaml"]
    assert repo.git("cat-file", "-t", "v0.2.0").stdout.strip() == "tag"  # annotated, as dlgit's release tags
    assert repo.git("rev-parse", "v0.2.0^{commit}").stdout == repo.git("rev-parse", "HEAD").stdout
    checked = repo.dlgit("check", "v0.1.0..main")
    assert checked.returncode == 0 and "no violations" in checked.stdout, checked.stdout


def test_cz_bump_with_other_changes_is_blocked_by_dlgit(released: Repo) -> None:
    """`cz bump` commits with -a: another tracked change makes it no version bump, and main refuses it."""
    repo = released
    repo.write("model/net.py", "NET = 3\n")
    proc = cz(repo, "bump", "--yes")
    assert proc.returncode != 0
    assert "main-protected" in proc.stdout + proc.stderr
    assert repo.git("tag", "--list", "v0.2.0").stdout == ""


def test_provider_needs_a_version_line(tmp_path: Path) -> None:
    repo = cz_repo(tmp_path / "repo")
    assert cz(repo, "version", "--project").stdout.strip() == "0.1.0"
    repo.write("tasks/main/config.yaml", "DEBUG: false\n")
    proc = cz(repo, "bump", "--dry-run", "--yes")
    assert proc.returncode != 0 and "no top-level 'VERSION: X.Y.Z' line" in proc.stdout + proc.stderr


# --- cz changelog --------------------------------------------------------------------------------


def test_cz_changelog_has_a_task_section(tmp_path: Path) -> None:
    repo = _history(tmp_path / "repo", "0.1.0", ["feat: a loader", "task: run lr0.01", "docs: readme", "fix: nan loss"])
    proc = cz(repo, "changelog", "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sections = {block.split("\n", 1)[0]: block for block in proc.stdout.split("### ")[1:]}
    assert set(sections) == {"Feat", "Fix", "Task"}, proc.stdout
    assert "run lr0.01" in sections["Task"] and "a loader" in sections["Feat"] and "readme" not in proc.stdout


# --- the pre-commit framework -----------------------------------------------------------------------


@pytest.mark.slow
def test_framework_commitizen_hook_finds_cz_dlgit(repo: Repo) -> None:
    """SLOW (the framework builds an environment with commitizen and dlgit, ~30 s on first run).
    commitizen's hook (`cz check --allow-abort --commit-msg-file`, as its .pre-commit-hooks.yaml
    declares it) with dlgit in `additional_dependencies` from origin.install_source(). This
    machine reaches PyPI but not GitHub, so the hook is declared `repo: local` with commitizen
    itself as a dependency, instead of `repo: https://github.com/commitizen-tools/commitizen`."""
    from importlib import metadata

    hook = cz_setup.precommit_hook()["hooks"][0]
    config = {"repos": [{"repo": "local", "hooks": [{
        "id": hook["id"], "name": "commitizen check", "entry": "cz check", "args": ["--allow-abort", "--commit-msg-file"],
        "language": "python", "stages": hook["stages"],
        "additional_dependencies": [f"commitizen=={metadata.version('commitizen')}", *hook["additional_dependencies"]],
    }]}]}
    repo.write(".pre-commit-config.yaml", json.dumps(config))  # JSON is YAML
    cz_setup.commitizen_config(repo.path)
    for name in ("pre-commit", "pre-merge-commit", "commit-msg"):
        (repo.path / ".git/hooks" / name).unlink()
    installed = subprocess.run(["pre-commit", "install", "-t", "commit-msg"], cwd=repo.path, capture_output=True, text=True, check=False)
    assert installed.returncode == 0, installed.stderr
    repo.git("switch", "-q", "dev")
    repo.write("tasks/main/train.py", "print('train 2')\n")
    repo.git("add", "-A")
    accepted = repo.git("commit", "-m", "task: run lr0.01", check=False)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "commitizen check" in accepted.stdout + accepted.stderr
    refused = repo.git("commit", "--allow-empty", "-m", "wip: x", check=False)
    assert refused.returncode != 0 and "commit validation: failed" in refused.stdout + refused.stderr


# --- dlgit's hooks stay light -------------------------------------------------------------------


def test_commit_msg_hook_imports_neither_commitizen_nor_yaml_with_a_warm_cache(tmp_path: Path) -> None:
    repo = cz_repo(tmp_path / "repo", dlgit_yaml="commit:\n  types: [feat, fix, task]\n")
    msg = repo.write(".git/MSG", "task: run lr0.01\n")
    command = [sys.executable, "-X", "importtime", "-m", "dlgit", "hook", "commit-msg", str(msg)]
    runs = [subprocess.run(command, cwd=repo.path, capture_output=True, text=True, check=False) for _ in range(2)]
    imported = [{line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")} for run in runs]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr
    assert not any(name.startswith("commitizen") for names in imported for name in names)
    assert "yaml" in imported[0] and "yaml" not in imported[1]  # the second run reads the parsed settings from the cache


# --- cz_setup: what `dlgit init --commitizen` writes ------------------------------------------------


def test_config_is_created_then_left_alone(tmp_path: Path) -> None:
    import tomllib

    plan = cz_setup.commitizen_config(tmp_path)
    assert plan.action == "create" and plan.path == tmp_path / ".cz.toml"
    section = tomllib.loads(plan.path.read_text())["tool"]["commitizen"]
    assert section == cz_setup.settings() and section["update_changelog_on_bump"] is False
    assert cz_setup.commitizen_config(tmp_path).action == "unchanged"
    assert plan.path.read_text() == plan.text


def test_config_goes_into_an_existing_pyproject(tmp_path: Path) -> None:
    import tomllib

    original = '[project]\nname = "research"  # keep me\n'
    (tmp_path / "pyproject.toml").write_text(original)
    plan = cz_setup.commitizen_config(tmp_path, changelog=True, write=False)
    assert plan.action == "append" and (tmp_path / "pyproject.toml").read_text() == original  # planned only
    cz_setup.commitizen_config(tmp_path, changelog=True)
    text = (tmp_path / "pyproject.toml").read_text()
    assert text.startswith(original) and tomllib.loads(text)["tool"]["commitizen"]["update_changelog_on_bump"] is True
    assert not (tmp_path / ".cz.toml").exists()


def test_config_that_disagrees_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".cz.json").write_text(json.dumps({"commitizen": {"name": "cz_conventional_commits", "tag_format": "v$version"}}))
    with pytest.raises(UsageError, match=r'\.cz\.json .* set "name": "cz_dlgit", "version_provider": "dlgit" in'):
        cz_setup.commitizen_config(tmp_path)


def test_precommit_hook_gets_dlgit_from_where_it_was_installed() -> None:
    assert cz_setup.precommit_hook("v4.1.0") == {
        "repo": "https://github.com/commitizen-tools/commitizen", "rev": "v4.1.0",
        "hooks": [{"id": "commitizen", "stages": ["commit-msg"], "additional_dependencies": [origin.install_source()]}]}
