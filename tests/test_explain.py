"""`dlgit explain`: every rule listed, one rule in full, the settings, and bad input."""

from __future__ import annotations

import pytest

from dlgit import config
from dlgit.cli import main as run
from dlgit.policy.rules import RULES


def test_without_argument_lists_every_rule_with_its_statement(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["explain"]) == 0
    out = capsys.readouterr().out
    assert all(rule.id in out and rule.statement in out for rule in RULES.values())


def test_one_rule_gives_statement_why_where_checked_and_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["explain", "hotfix-size"]) == 0
    out = capsys.readouterr().out
    rule = RULES["hotfix-size"]
    assert out.startswith(f"hotfix-size: {rule.statement}")
    assert " ".join(rule.why.split()) in " ".join(out.replace("why:", "").split())
    assert "checked at: pre-commit, pre-merge-commit, pre-push, pre-receive, dlgit check" in out
    assert "hotfix.max_files" in out and "rules: {disable: [hotfix-size]}" in out


def test_config_lists_the_settings_with_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["explain", "config"]) == 0
    assert "hotfix.max_lines: 50" in capsys.readouterr().out


def test_unknown_rule_is_a_usage_error_naming_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["explain", "no-such-rule"]) == 2
    err = capsys.readouterr().err
    assert "no-such-rule" in err and all(rule_id in err for rule_id in RULES)


def test_every_rule_has_a_checkpoint_and_real_setting_keys() -> None:
    known = config.describe_defaults()
    assert all(rule.stages for rule in RULES.values())
    assert all(f"  {key}: " in known for rule in RULES.values() for key in rule.settings)
