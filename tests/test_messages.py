"""The shared message table (tests/messages.py) through dlgit's judges: the commit-msg hook on a
message file in a real repository (on dev, and on main), `dlgit check` on real commits, and in
process the rule itself and the regex commitizen is given (dlgit.model.message_pattern)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import TEMPLATE_CONFIG, Repo, assert_allowed, make_repo
from histories import isolated_git
from messages import CASES, Case

from dlgit.config import Settings
from dlgit.git.message import clean_message
from dlgit.model import message_pattern, parse_branch
from dlgit.policy import Change, evaluate

SETTINGS = Settings()


def build(path: Path, branch: str) -> Repo:
    repo = make_repo(path)
    repo.write("tasks/main/config.yaml", TEMPLATE_CONFIG)
    repo.commit("chore: initial layout", extra=("--no-verify",))
    if branch != "main":
        repo.git("switch", "-q", "-c", branch)
    return repo


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Repo]:
    """One repository per branch, shared by the module: each test only writes its own message file."""
    base = tmp_path_factory.mktemp("messages")
    with isolated_git(base / "home"):
        return {branch: build(base / branch, branch) for branch in ("dev", "main")}


def hook(repo: Repo, case: Case, name: str) -> subprocess.CompletedProcess[str]:
    message = repo.path / ".git" / f"MSG-{name}"
    message.write_bytes(case.message.encode())
    return repo.dlgit("hook", "commit-msg", str(message))


def commit_message_refused(proc: subprocess.CompletedProcess[str]) -> bool:
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    return "✗ commit-message:" in proc.stderr


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_commit_msg_hook_on_dev(repos: dict[str, Repo], case: Case) -> None:
    proc = hook(repos["dev"], case, str(CASES.index(case)))
    assert proc.returncode == (0 if case.dlgit else 1), proc.stderr
    assert commit_message_refused(proc) is not case.dlgit
    if not case.dlgit:
        assert "does not start with one of" not in proc.stderr  # one diagnosis per failure


@pytest.mark.parametrize("case", [case for case in CASES if case.main is not None], ids=lambda case: case.id)
def test_commit_msg_hook_on_main(repos: dict[str, Repo], case: Case) -> None:
    """git's own messages are refused on main (main-protected fires too: only commit-message is looked at)."""
    assert commit_message_refused(hook(repos["main"], case, f"main-{CASES.index(case)}")) is not case.main_verdict


def _rule_accepts(case: Case, branch: str) -> bool:
    change = Change(parse_branch(branch, SETTINGS), message=clean_message(case.message))
    return not evaluate(change, SETTINGS, ("commit-message",))


def test_table_in_process_rule_and_commitizen_pattern() -> None:
    """The rule (as the hook cleans a message) and commitizen's schema_pattern (as `cz check` cleans
    it: '#' lines and the scissors gone, universal newlines, stripped) give the table's verdicts."""
    pattern = re.compile(message_pattern(SETTINGS.commit_types))
    for case in CASES:
        assert _rule_accepts(case, "dev") is case.dlgit, case
        assert _rule_accepts(case, "main") is case.main_verdict, case
        text = case.message.replace("\r\n", "\n").replace("\r", "\n").split("# ------------------------ >8 ------------------------")[0]
        cz_input = "\n".join(line for line in text.split("\n") if not line.startswith("#")).strip()
        assert bool(pattern.match(cz_input)) is case.cz_verdict, case


def test_every_difference_is_explained() -> None:
    for case in CASES:
        differs = case.cz_verdict is not case.dlgit or case.main_verdict is not case.dlgit
        assert bool(case.differs) is differs, case


def test_check_judges_committed_messages_like_the_hook(repo: Repo) -> None:
    """`dlgit check` on commits made with `--no-verify` (git stores them cleaned): the refused
    ones are reported, the empty message too; git's own are not."""
    repo.git("switch", "-q", "dev")
    for message in ("", "Reapply \"feat: x\"", "Merge ../other repo into dev", "Merge tags 'v1' and 'v2'", "wip: x", "feat:no space"):
        repo.git("commit", "-q", "--allow-empty", "--allow-empty-message", "--no-verify", "-m", message)
    proc = repo.dlgit("check", "main..dev")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.count("✗ commit-message:") == 3, proc.stdout
    assert "'wip' (known:" in proc.stdout and "no space after the colon: write 'feat: no space'" in proc.stdout


def test_empty_message_commit_is_refused_by_hook_and_check(repo: Repo) -> None:
    """SPEC §3: an empty message never is allowed; the hook sees `--allow-empty-message` in git's options."""
    repo.git("switch", "-q", "dev")
    repo.write("model/net.py", "NET = 2\n")
    repo.git("add", "model/net.py")
    proc = repo.git("commit", "--allow-empty-message", "-m", "", check=False)
    assert proc.returncode == 1 and "✗ commit-message:" in proc.stderr and "empty" in proc.stderr, proc.stderr
    plain = repo.git("commit", "-m", "", check=False)  # without the option git refuses on its own, dlgit stays quiet
    assert plain.returncode == 1 and "commit-message" not in plain.stderr, plain.stderr
    repo.git("commit", "-q", "--no-verify", "--allow-empty-message", "-m", "")
    checked = repo.dlgit("check", "main..dev")
    assert checked.returncode == 1 and "the message is empty" in checked.stdout, checked.stdout
    assert_allowed(repo.git("commit", "-q", "--allow-empty", "-m", "fix: say what it does", check=False))


