"""CLI conventions: every command's help (options, arguments, exit codes), one `dlgit: error:`
line after the usage for every bad command line, colour as NO_COLOR and FORCE_COLOR say, and the
YAML parser's reason in every YAML error."""

from __future__ import annotations

import gc
import io
import re
from collections.abc import Iterator

import click
import pytest
from conftest import TEMPLATE_CONFIG, Repo

from dlgit import cli, config, explain, report
from dlgit.commands import main as app
from dlgit.config import Settings
from dlgit.errors import UsageError
from dlgit.policy.rules import RULES, config_problems


@pytest.fixture(autouse=True)
def _collector_back_on() -> Iterator[None]:
    yield
    gc.enable()  # cli.main switches the collector off for its short life; this process lives on


# --- help -------------------------------------------------------------------------------------------


def commands(group: click.Group = app, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def help_text(path: tuple[str, ...], command: click.Command) -> str:
    with click.Context(command, info_name=" ".join(("dlgit", *path))) as ctx:
        return command.get_help(ctx)


ALL = list(commands())

# commands whose exit codes are not just 0 and 2, and the words their help gives the others
EXIT_CODES = {
    ("check",): "1 violations", ("status",): "1 one does not", ("demo",): "1 one did not",
    **{("hook", name): "1 blocked" for name in ("pre-commit", "pre-merge-commit", "commit-msg", "pre-push", "pre-receive")},
    **{flow: "3 stopped on a merge conflict" for flow in (("release",), ("feature", "start"), ("feature", "finish"), ("hotfix", "start"),
                                                           ("hotfix", "finish"), ("continue",))},
}


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(path) or "dlgit" for path, _ in ALL])
def test_every_command_documents_its_options_arguments_and_exit_codes(path: tuple[str, ...], command: click.Command) -> None:
    assert command.help, "no description"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{param.opts} has no help"
        elif not isinstance(param.type, click.Choice):  # a choice shows its values in the usage
            with click.Context(command) as ctx:
                shown = param.get_usage_pieces(ctx)[0].strip("[].")
            assert shown in command.help, f"the usage says {shown}, the text does not"
    text = help_text(path, command)
    if path in EXIT_CODES:
        assert "Exit codes: 0" in text and EXIT_CODES[path] in " ".join(text.split())
    assert "SPEC" not in text


def test_main_help_says_the_common_exit_codes_and_check_its_default_range(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    assert "Exit codes: 0 success, 2 bad usage" in " ".join(capsys.readouterr().out.split())
    assert cli.main(["check", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Usage: dlgit check [OPTIONS] [RANGE]" in out and "Default RANGE: the current branch's commits that its upstream lacks" in out
    assert "--format [text|json] text for people, json for scripts" in out


def test_no_user_facing_text_names_a_spec_section() -> None:
    assert "SPEC" not in explain.list_rules()
    assert not [rule_id for rule_id in RULES if "SPEC" in explain.describe_rule(rule_id)]


# --- bad command lines ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "usage", "message"), [
    ([], "dlgit [OPTIONS] COMMAND", "missing a command: one of abort, "),
    (["--bogus"], "dlgit [OPTIONS] COMMAND", "No such option"),
    (["bogus"], "dlgit [OPTIONS] COMMAND", "No such command 'bogus'"),
    (["check", "--bogus"], "dlgit check [OPTIONS] [RANGE]", "No such option"),
    (["check", "--format", "xml"], "dlgit check [OPTIONS] [RANGE]", "'xml' is not one of 'text', 'json'"),
    (["check", "a..b", "c"], "dlgit check [OPTIONS] [RANGE]", "unexpected extra argument (c)"),
    (["log", "--format"], "dlgit log [OPTIONS]", "'--format' requires an argument"),
    (["feature", "start"], "dlgit feature start [OPTIONS] NAME", "Missing argument 'NAME'"),
    (["feature"], "dlgit feature [OPTIONS] COMMAND", "missing a command: one of finish, start"),
    (["ci", "bitbucket"], "dlgit ci [OPTIONS] {github|gitlab}", "'bitbucket' is not one of 'github', 'gitlab'"),
    (["release", "--bump", "huge"], "dlgit release [OPTIONS]", "'huge' is not one of"),
    (["explain", "a", "b"], "dlgit explain [OPTIONS] [RULE]", "unexpected extra argument (b)"),
    (["hook"], "dlgit hook [OPTIONS] COMMAND", "missing a command: one of commit-msg, pre-commit,"),
    (["hook", "bogus"], "dlgit hook [OPTIONS] COMMAND", "No such command 'bogus'"),
    (["hook", "pre-commit", "extra"], "dlgit hook pre-commit [OPTIONS]", "unexpected extra argument (extra)"),
    (["hook", "commit-msg", "a", "b"], "dlgit hook commit-msg [OPTIONS] [MESSAGE_FILE]", "unexpected extra argument (b)"),
    (["hook", "pre-push", "--x"], "dlgit hook pre-push [OPTIONS] [REMOTE] [URL]", "No such option"),
])
def test_a_bad_command_line_prints_the_usage_and_one_error_line(argv: list[str], usage: str, message: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == "" and len(lines) == 3, captured.err
    assert lines[0].startswith(f"Usage: {usage}"), lines[0]
    assert re.fullmatch(r"Try 'dlgit[\w -]*--help' for help\.", lines[1]), lines[1]
    assert lines[2].startswith("dlgit: error: ") and message in lines[2], lines[2]


def test_the_real_command_line_agrees(repo: Repo) -> None:
    proc = repo.dlgit("hook", "bogus")
    assert proc.returncode == 2 and proc.stderr.splitlines()[-1] == "dlgit: error: No such command 'bogus'."
    assert not any(line.startswith("Error:") for line in proc.stderr.splitlines())


# --- colour -------------------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("env", "tty", "color"), [
    ({}, True, True), ({}, False, False),
    ({"NO_COLOR": "1"}, True, False), ({"NO_COLOR": ""}, True, True),  # only a non-empty NO_COLOR counts
    ({"FORCE_COLOR": "1"}, False, True), ({"FORCE_COLOR": ""}, False, False),
    ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, True, False),  # NO_COLOR wins, as in CPython
    ({"FORCE_COLOR": "1", "NO_COLOR": ""}, False, True),
    ({"TERM": "dumb"}, True, False), ({"TERM": "dumb", "FORCE_COLOR": "yes"}, False, True),
])
def test_colour_follows_no_color_and_force_color(env: dict[str, str], tty: bool, color: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TERM", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert report.use_color(Terminal() if tty else io.StringIO()) is color


def test_a_blocked_commit_in_a_ci_log_is_coloured_when_forced(repo: Repo) -> None:
    repo.write("model/net.py", "NET = 2\n")
    repo.git("add", "model/net.py")
    plain = repo.git("commit", "-m", "feat: x", check=False, env={"NO_COLOR": ""})
    forced = repo.git("commit", "-m", "feat: x", check=False, env={"FORCE_COLOR": "1", "NO_COLOR": ""})
    assert plain.returncode == forced.returncode == 1
    assert "\033[" not in plain.stderr and "\033[31m✗ main-protected\033[0m" in forced.stderr


# --- the YAML parser's reason --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "problem"), [
    (TEMPLATE_CONFIG + "lr: [0.1\n",
     "is not valid YAML at line 11: did not find expected ',' or ']' (while parsing a flow sequence that starts at line 10)"),
    ("VERSION: 0.1.0\n  bad: x\n", "is not valid YAML at line 2: mapping values are not allowed in this context"),
    ("VERSION: '0.1.0\n",
     "is not valid YAML at line 2: found unexpected end of stream (while scanning a quoted scalar that starts at line 1)"),
    ("VERSION: 0.1.0\n---\nlr: 1\n", "is not valid YAML at line 2: expected a single document in the stream, but found another document"),
    ("VERSION: 2020-13-45\n", "is not valid YAML at line 1: cannot read the value '2020-13-45' (month must be in 1..12)"),
    (b"VERSION: \xff\n", "is not UTF-8 text (byte 0xff at offset 9); save it as UTF-8"),
    ("a: &a [*a]\n", "is refused: YAML alias *a sits inside the value it names (an endless structure) at line 1"),
    ("x: " + "[" * 70 + "]" * 70 + "\n", "is refused: YAML document nests lists and maps deeper than 64 levels at line 1"),
    ("x: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(f"y{i}: &b{i} [{', '.join(['*a' if i == 0 else f'*b{i - 1}'] * 10)}]\n"
                                                          for i in range(5)),
     "is refused: YAML document holds more than 100,000 values once its aliases are expanded"),
])
def test_a_broken_task_config_says_why(text: str | bytes, problem: str) -> None:
    problems = config_problems(text if isinstance(text, bytes) else text.encode(), None, Settings())
    assert problems[0].startswith(problem), problems


def test_a_long_value_is_shown_cut() -> None:
    problems = config_problems(TEMPLATE_CONFIG.replace("RANDOM_SEED: 42", "RANDOM_SEED: " + "x" * 5000).encode(), None, Settings())
    assert problems == [f"RANDOM_SEED is '{'x' * 37}...{'x' * 38}', expected a whole number"]


@pytest.mark.parametrize(("text", "message"), [
    ("hotfix: {max_files: 5\n",
     ".dlgit.yaml:2: not valid YAML (did not find expected ',' or '}' (while parsing a flow mapping that starts at line 1))"),
    ("a: b: c\n", ".dlgit.yaml:1: not valid YAML (mapping values are not allowed in this context)"),
    ("a: &a [*a]\n", ".dlgit.yaml:1: is refused (YAML alias *a sits inside the value it names (an endless structure))"),
    ("branches: " + "[" * 70 + "]" * 70 + "\n", ".dlgit.yaml:1: is refused (YAML document nests lists and maps deeper than 64 levels)"),
])
def test_a_broken_dlgit_yaml_says_why_and_where(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        config.parse(text, ".dlgit.yaml")
    assert str(info.value).startswith(message), str(info.value)


def test_a_billion_laughs_dlgit_yaml_is_refused_by_the_hook(repo: Repo) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]"
                                                       for i in range(8)]
    repo.write(".dlgit.yaml", "\n".join(lines) + "\n")
    repo.commit("chore: settings", ".dlgit.yaml", extra=("--no-verify",))  # the hook judges by the committed settings
    proc = repo.dlgit("hook", "pre-commit")
    assert proc.returncode == 2 and "is refused (YAML document holds more than 100,000 values" in proc.stderr, proc.stderr
