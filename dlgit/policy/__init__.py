"""The policy engine: pure rules over facts. Every hook and `dlgit check` calls `evaluate`."""

from __future__ import annotations

from collections.abc import Iterable

from dlgit.config import Settings
from dlgit.policy.model import Change, Entry, Merge, Rule, Violation
from dlgit.policy.rules import RULES, version_bump

# Which rules judge a commit's content, and which judge its message.
CONTENT_RULES = ("branch-name", "main-protected", "merge-direction", "task-scope", "hotfix-size",
                 "large-file", "task-config", "no-debug-on-main")
MESSAGE_RULES = ("commit-message", "main-protected")


def evaluate(change: Change, settings: Settings, rule_ids: Iterable[str] = RULES) -> list[Violation]:
    """Every violation of the given rules (all by default), minus those disabled in settings."""
    violations: list[Violation] = []
    for rule_id in rule_ids:
        if rule_id not in settings.disabled_rules:
            violations.extend(RULES[rule_id].check(change, settings))
    return violations


__all__ = ["CONTENT_RULES", "MESSAGE_RULES", "RULES", "Change", "Entry", "Merge", "Rule", "Violation",
           "evaluate", "version_bump"]
