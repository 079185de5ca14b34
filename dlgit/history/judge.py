"""Judging a span of history for the branch it is put on: the library behind `dlgit check`,
pre-push and pre-receive (and the flows, which check what they made).

A commit is judged by every rule that runs at "check" for the branch it belongs to (see
dlgit.history.gather); the rules marked `per_ref` (the branch's name, the ref update itself, the
release tags) once per span. The settings come from a base commit, never from the judged commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dlgit import config
from dlgit.evidence import RefView
from dlgit.git import Git
from dlgit.history import gather
from dlgit.model import Branch, parse_branch
from dlgit.policy import COMMIT_RULES, REF_RULES, Change, Violation, evaluate
from dlgit.policy.change import RefUpdate


@dataclass(frozen=True)
class Policy:
    """The settings a range is judged by, and where they come from (never the judged commits)."""

    settings: config.Settings
    source: str  # for people: ".dlgit.yaml at origin/main (1a2b3c4d5e6f)", "the defaults", ...
    commit: str | None = None  # the base commit whose .dlgit.yaml was read


def policy_at(repo: Git, base: str | None, label: str | None) -> Policy:
    """Settings from the .dlgit.yaml in commit `base` (main's, for `dlgit check`, pre-push and
    pre-receive); without one (no main anywhere yet) from the work tree (a bare repository: the defaults)."""
    if base is None:
        settings = config.load(repo.root)
        found = repo.root is not None and (repo.root / config.CONFIG_FILE).exists()
        return Policy(settings, f"the work tree's {config.CONFIG_FILE} (there is no main to read it from)" if found else "the defaults")
    where = f"{label} ({base[:12]})" if label and label != base else base[:12]
    raw = repo.show_file(base, config.CONFIG_FILE)
    source = f"{config.CONFIG_FILE} at {where}" if raw is not None else f"the defaults (no {config.CONFIG_FILE} at {where})"
    return Policy(config.from_bytes(raw, f"{config.CONFIG_FILE} at {where}"), source, base)


@dataclass(frozen=True)
class Finding:
    judged: gather.Judged
    violations: tuple[Violation, ...]


@dataclass
class Result:
    label: str  # the range or the pushed ref
    target: Branch | None
    policy: Policy
    checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    ref_violations: list[Violation] = field(default_factory=list)
    settings_changed_by: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return len(self.ref_violations) + sum(len(f.violations) for f in self.findings)

    @property
    def ok(self) -> bool:
        return self.violations == 0


@dataclass(frozen=True)
class Span:
    """What to judge: the commits reachable from `tip` and not from `bases`."""

    label: str
    tip: str | None  # None: no commits (a deletion, a tag)
    bases: tuple[str, ...] = ()


def judge(span: Span, target_name: str | None, policy: Policy, refs: RefView,
          ref_update: RefUpdate | None = None, tags: bool = False, rule_ids: tuple[str, ...] = COMMIT_RULES) -> Result:
    """Judge a span for the branch it is put on, and the ref update itself (if any); `tags`: also
    the release tags that point into the span; `rule_ids`: what judges each commit (OTHER_REF_RULES
    for the commits a tag, a note or another ref that is no branch brings)."""
    settings = policy.settings
    result = _judge_ref(span, target_name, policy, ref_update, rule_ids)
    if span.tip is None:
        return result
    judged = gather.gather(span.tip, span.bases, result.target, settings, refs, has_base=bool(span.bases))
    _judge_commits(result, judged, rule_ids)
    if tags:
        for update in gather.release_tags((item.commit.sha for item in judged), refs, settings):
            result.ref_violations += evaluate(Change(None, ref_update=update), settings, REF_RULES)
    return result


def _judge_ref(span: Span, target_name: str | None, policy: Policy, ref_update: RefUpdate | None, rule_ids: tuple[str, ...]) -> Result:
    """The result of a span before its commits are judged: the ref update's own violations, and notes."""
    target = parse_branch(target_name, policy.settings) if target_name else None
    result = Result(span.label, target, policy)
    result.ref_violations += evaluate(Change(target, ref_update=ref_update), policy.settings, REF_RULES)
    if span.tip is not None and rule_ids != COMMIT_RULES:
        result.notices.append(f"{span.label} is no branch: its new commits were judged by the content rules ({', '.join(rule_ids)})")
    elif span.tip is not None and target is None:
        result.notices.append("no branch given (detached HEAD): branch rules were skipped; pass --branch NAME to apply them")
    return result


@dataclass(frozen=True)
class Judging:
    """One of the spans `judge_many` judges together (their tips distinct, their bases shared)."""

    span: Span
    target_name: str | None
    ref_update: RefUpdate | None
    rule_ids: tuple[str, ...] = COMMIT_RULES


def judge_many(items: Sequence[Judging], bases: Sequence[str], policy: Policy, refs: RefView) -> tuple[list[Result], set[str]]:
    """`judge` for many spans over one read of their commits (a push of many refs): each commit is
    judged for the first span whose walk reaches it. Also the tips whose walk met an earlier span's
    commits (`judge` them alone when their rules differ)."""
    results = [_judge_ref(item.span, item.target_name, policy, item.ref_update, item.rule_ids) for item in items]
    heads = [(item.span.tip, result.target) for item, result in zip(items, results, strict=True) if item.span.tip]
    found, met = gather.gather_many(heads, bases, policy.settings, refs, has_base=bool(bases)) if heads else ({}, set())
    for item, result in zip(items, results, strict=True):
        if item.span.tip:
            _judge_commits(result, found[item.span.tip], item.rule_ids)
    return results, met


def _judge_commits(result: Result, judged: list[gather.Judged], rule_ids: tuple[str, ...]) -> None:
    """Every commit by the rules of the branch it belongs to; note the ones that edit .dlgit.yaml."""
    result.checked = len(judged)
    for item in judged:
        violations = evaluate(item.change, result.policy.settings, rule_ids)
        if violations:
            result.findings.append(Finding(item, tuple(violations)))
        if item.commit.parents and gather.touches_settings(item.commit):  # a root commit's settings are the first ones, no change
            result.settings_changed_by.append(item.commit.sha)
    if result.settings_changed_by:
        shas = ", ".join(sha[:12] for sha in result.settings_changed_by)
        result.notices.append(f"{config.CONFIG_FILE} is changed by {shas}; the range was judged by {result.policy.source}, "
                              "the new settings apply only once that change has landed")
