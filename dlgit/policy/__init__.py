"""The policy engine: pure rules over facts. Every hook and `dlgit check` calls `evaluate`.

Each rule carries where it runs (`Rule.stages`); the lists below are derived from that.
"""

from __future__ import annotations

from collections.abc import Iterable

from dlgit.config import Settings
from dlgit.policy.change import Change, Entry, Merge, Rule, Violation
from dlgit.policy.rules import OTHER_REFS, RULES, STAGES, version_bump


def rules_at(stage: str) -> tuple[str, ...]:
    """The ids of the rules checked at a hook (or "check")."""
    return tuple(rule.id for rule in RULES.values() if stage in rule.stages)


CONTENT_RULES = rules_at("pre-commit")  # what a commit or merge being made changes
MESSAGE_RULES = rules_at("commit-msg")
REF_RULES = tuple(rule.id for rule in RULES.values() if rule.per_ref)  # once per branch or ref update
COMMIT_RULES = tuple(rule for rule in rules_at("check") if rule not in REF_RULES)  # each commit of a range
OTHER_REF_RULES = rules_at(OTHER_REFS)  # each commit a push brings through a tag, a note or any ref that is no branch


def evaluate(change: Change, settings: Settings, rule_ids: Iterable[str] = RULES) -> list[Violation]:
    """Every violation of the given rules (all by default), minus those disabled in settings."""
    violations: list[Violation] = []
    for rule_id in rule_ids:
        if rule_id not in settings.disabled_rules:
            violations.extend(RULES[rule_id].check(change, settings))
    return violations


__all__ = ["COMMIT_RULES", "CONTENT_RULES", "MESSAGE_RULES", "OTHER_REF_RULES", "REF_RULES", "RULES", "STAGES", "Change", "Entry", "Merge",
           "Rule", "Violation", "evaluate", "rules_at", "version_bump"]
