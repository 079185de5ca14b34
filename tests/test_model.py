"""Branch kinds: parse and format (in-process, no git)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dlgit import config, model
from dlgit.config import Settings
from dlgit.model import Kind

S = Settings()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("main", Kind.MAIN),
        ("dev", Kind.DEV),
        ("feature-data-loader", Kind.FEATURE),
        ("feature-v2.1_fix", Kind.FEATURE),
        ("hotfix-nan-loss", Kind.HOTFIX),
        ("task-0.1.0-20261128T062233-lr0.01", Kind.TASK),
        ("task-10.20.30-20261128T062233-lr0.01-bs64", Kind.TASK),
        ("debug-0.1.0-20261128T062233-tiny", Kind.DEBUG),
    ],
)
def test_known_kinds(name: str, kind: Kind) -> None:
    branch = model.parse_branch(name, S)
    assert branch.kind is kind and branch.valid and branch.problem is None


def test_task_fields() -> None:
    branch = model.parse_branch("task-0.1.0-20261128T062233-lr0.01-bs64", S)
    assert (branch.version, branch.time, branch.desc) == ("0.1.0", "20261128T062233", "lr0.01-bs64")
    assert model.parse_branch("feature-x", S).desc == "x"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("master", "matches no branch kind"),
        ("develop", "matches no branch kind"),
        ("Main", "matches no branch kind"),
        ("feature-", "expected feature-<name>"),
        ("feature-a/b", "expected feature-<name>"),
        ("feature-a..b", "expected feature-<name>"),
        ("feature-x.lock", "expected feature-<name>"),
        ("feature-$(touch x)", "expected feature-<name>"),
        ("hotfix--x", "expected hotfix-<name>"),
        ("task-0.1-20261128T062233-x", "expected task-<X.Y.Z>-<YYYYMMDDTHHMMSS>-<desc>"),
        ("task-01.1.0-20261128T062233-x", "expected task-"),
        ("task-0.1.0-20261128-x", "expected task-"),
        ("task-0.1.0-20261128T062233", "expected task-"),
        ("task-0.1.0-20261128T062233-", "expected task-"),
        ("task-0.1.0-20261340T000000-x", "is not a real UTC time"),
        ("task-0.1.0-20261128T246000-x", "is not a real UTC time"),
        ("debug-0.1.0-20261128T062233-a..b", "may not contain '..'"),
        ("debug-0.1.0-20261128T062233-x.", "may not contain '..' or end in '.'"),
    ],
)
def test_malformed_names(name: str, problem: str) -> None:
    branch = model.parse_branch(name, S)
    assert branch.kind is Kind.UNKNOWN and not branch.valid
    assert problem in (branch.problem or "")


def test_extra_allowed_patterns() -> None:
    settings = config.parse('branches:\n  extra_allowed: ["release/*", "feature-*"]\n')
    assert model.parse_branch("release/1.0", settings).kind is Kind.EXTRA
    assert model.parse_branch("release", settings).kind is Kind.UNKNOWN
    assert model.parse_branch("feature-ok", settings).kind is Kind.FEATURE  # a well-formed name keeps its kind
    assert model.parse_branch("feature-a/b", settings).kind is Kind.EXTRA  # malformed, but explicitly allowed
    assert model.parse_branch("release/1.0", S).kind is Kind.UNKNOWN


def test_custom_names_and_prefixes() -> None:
    settings = config.parse("branches:\n  main: master\n  dev: develop\n  prefixes: {feature: feat/, task: exp-}\n")
    assert model.parse_branch("master", settings).kind is Kind.MAIN
    assert model.parse_branch("develop", settings).kind is Kind.DEV
    assert model.parse_branch("main", settings).kind is Kind.UNKNOWN
    assert model.parse_branch("feat/loader", settings).kind is Kind.FEATURE
    assert model.parse_branch("exp-0.1.0-20261128T062233-lr", settings).kind is Kind.TASK
    assert model.parse_branch("task-0.1.0-20261128T062233-lr", settings).kind is Kind.UNKNOWN


def test_run_branch_name_round_trip() -> None:
    when = datetime(2026, 11, 28, 6, 22, 33, tzinfo=timezone.utc)
    name = model.run_branch_name(Kind.TASK, "0.1.0", "lr0.01", S, when)
    assert name == "task-0.1.0-20261128T062233-lr0.01"
    parsed = model.parse_branch(name, S)
    assert (parsed.kind, parsed.version, parsed.time, parsed.desc) == (Kind.TASK, "0.1.0", "20261128T062233", "lr0.01")
    debug = model.run_branch_name(Kind.DEBUG, "1.2.3", model.slugify("tiny set"), S, when)
    assert debug == "debug-1.2.3-20261128T062233-tiny-set" and model.parse_branch(debug, S).kind is Kind.DEBUG
    now = model.run_branch_name(Kind.TASK, "0.1.0", "x", S)
    assert model.parse_branch(now, S).kind is Kind.TASK


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("lr 0.01, bs 64", "lr-0.01-bs-64"),
        ("  --lr=0.01  ", "lr-0.01"),
        ("über net", "ber-net"),
        ("..hidden..", "hidden"),
        ("$(touch x)", "touch-x"),
        ("", ""),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert model.slugify(text) == slug
    if slug:
        assert model.parse_branch(f"task-0.1.0-20261128T062233-{slug}", S).kind is Kind.TASK
