"""`dlgit explain [RULE]`: the rules of SPEC §4, why they exist, where they are checked, and the
settings that shape them; `dlgit explain config` lists every .dlgit.yaml key with its default."""

from __future__ import annotations

import textwrap

from dlgit import config
from dlgit.errors import UsageError
from dlgit.policy.rules import RULES

CONFIG_TOPIC = "config"

# SPEC §4, "checked at" column
CHECKED_AT: dict[str, str] = {
    "branch-name": "pre-commit, pre-push, dlgit check",
    "main-protected": "pre-commit, pre-merge-commit, dlgit check",
    "merge-direction": "pre-merge-commit, pre-commit (a conflicted merge or a squash being committed), dlgit check",
    "task-scope": "pre-commit, dlgit check",
    "hotfix-size": "pre-commit, dlgit check",
    "commit-message": "commit-msg, dlgit check",
    "large-file": "pre-commit, dlgit check",
    "task-config": "pre-commit, dlgit check",
    "no-debug-on-main": "pre-commit, dlgit check",
    # beyond the SPEC table: properties of a push, not of a commit
    "history-rewrite": "pre-push, pre-receive (a ref update: force push or deletion)",
    "release-tag": "pre-push, pre-receive (a pushed tag)",
}

_BRANCH_NAMES = ("branches.main", "branches.dev")
_PREFIXES = ("branches.prefixes.feature", "branches.prefixes.hotfix", "branches.prefixes.task", "branches.prefixes.debug")

# .dlgit.yaml keys that change what a rule accepts (every rule can also be listed in rules.disable)
RULE_SETTINGS: dict[str, tuple[str, ...]] = {
    "branch-name": (*_BRANCH_NAMES, *_PREFIXES, "branches.extra_allowed"),
    "main-protected": ("branches.main", "tasks.dir", "tasks.template"),
    "merge-direction": (*_BRANCH_NAMES, *_PREFIXES, "branches.extra_allowed"),
    "task-scope": ("branches.prefixes.task", "branches.main", "branches.dev", "tasks.dir"),
    "hotfix-size": ("hotfix.max_files", "hotfix.max_lines", "branches.prefixes.hotfix", "branches.main"),
    "commit-message": ("commit.types", "branches.main"),
    "large-file": ("large_files.max_bytes", "large_files.patterns"),
    "task-config": ("tasks.dir", "tasks.required_keys", "branches.prefixes.task", "branches.prefixes.debug"),
    "no-debug-on-main": ("branches.main", "branches.dev", "branches.prefixes.debug", "tasks.dir"),
    "history-rewrite": ("branches.main", "branches.dev"),
    "release-tag": ("branches.main", "tasks.dir", "tasks.template"),
}


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
    settings = ", ".join(RULE_SETTINGS.get(rule_id, ()))
    return "\n".join([
        f"{rule.id}: {rule.statement}",
        "",
        textwrap.fill(f"why: {rule.why}", width=100, subsequent_indent="     "),
        f"checked at: {CHECKED_AT.get(rule_id, 'dlgit check')}",
        f"settings (.dlgit.yaml): {settings or 'none'}; switch it off with `rules: {{disable: [{rule.id}]}}`",
        "Defaults of every setting: dlgit explain config",
    ])


def describe_config() -> str:
    return "\n".join([
        f"{config.CONFIG_FILE} at the repository root (optional; every key has the default shown):",
        config.describe_defaults(),
    ])
