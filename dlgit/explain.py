"""`dlgit explain [RULE]`: the rules, why they exist, where they are checked and the settings that
shape them (all from the rules themselves); `dlgit explain config` lists every .dlgit.yaml key
with its default."""

from __future__ import annotations

import textwrap

from dlgit import config
from dlgit.errors import UsageError
from dlgit.policy.rules import RULES

CONFIG_TOPIC = "config"
_STAGE_NAMES = {"check": "dlgit check", "other-refs": "pushed tags and other refs"}


def checked_at(rule_id: str) -> str:
    """Where a rule is checked, from the rule itself."""
    return ", ".join(_STAGE_NAMES.get(stage, stage) for stage in RULES[rule_id].stages)


def explain(rule_id: str | None) -> int:
    if rule_id is None:
        print(list_rules())
    elif rule_id == CONFIG_TOPIC:
        print(describe_config())
    elif rule_id in RULES:
        print(describe_rule(rule_id))
    else:
        raise UsageError(f"unknown rule '{rule_id}'. Known rules: {', '.join(RULES)} (or `{CONFIG_TOPIC}` for the settings).")
    return 0


def list_rules() -> str:
    width = max(len(rule_id) for rule_id in RULES)
    lines = [f"  {rule.id:<{width}}  {rule.statement}" for rule in RULES.values()]
    return "\n".join([
        "dlgit rules:", *lines, "",
        "More about one: dlgit explain RULE. The settings and their defaults: dlgit explain config.",
    ])


def describe_rule(rule_id: str) -> str:
    rule = RULES[rule_id]
    settings = ", ".join(rule.settings)
    return "\n".join([
        f"{rule.id}: {rule.statement}",
        "",
        textwrap.fill(f"why: {rule.why}", width=100, subsequent_indent="     "),
        f"checked at: {checked_at(rule_id)}",
        f"settings (.dlgit.yaml): {settings or 'none'}; switch it off with `rules: {{disable: [{rule.id}]}}`",
        "Defaults of every setting: dlgit explain config",
    ])


def describe_config() -> str:
    return "\n".join([
        f"{config.CONFIG_FILE} at the repository root (optional; every key has the default shown):",
        config.describe_defaults(),
    ])
