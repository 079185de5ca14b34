"""`dlgit check [RANGE] [--branch NAME] [--format text|json]`: re-verify history after the fact.

Client hooks can be skipped (`--no-verify`, fast-forwards, rebases, cherry-picks, another
core.hooksPath), so this judges commits that already exist with the same rules as the hooks, from
their content: see dlgit.history for how the facts are gathered. The same `judge` backs the pre-push
and pre-receive hooks (dlgit.push). The JSON output is documented in docs/check.md (schema 1).

Exit codes: 0 nothing violated, 1 violations, 2 bad input (bad range, not a repository, unborn
branch, a broken .dlgit.yaml in the base).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlgit import config, git, history, model, report
from dlgit.errors import UsageError
from dlgit.model import Branch
from dlgit.policy import CONTENT_RULES, MESSAGE_RULES, Change, Violation, evaluate
from dlgit.policy.model import RefUpdate

# A commit is judged by every content and message rule; the branch's name and the ref update
# itself are judged once per range, not once per commit.
REF_RULES = ("branch-name", "history-rewrite", "release-tag")
COMMIT_RULES = tuple(rule for rule in dict.fromkeys((*CONTENT_RULES, *MESSAGE_RULES)) if rule not in REF_RULES)
SCHEMA_VERSION = 1
_NEW_REF_RANGE = re.compile(r"^(?:0{40}|0{64})\.\.(.+)$")


@dataclass(frozen=True)
class Policy:
    """The settings a range is judged by, and where they come from (never the judged commits)."""

    settings: config.Settings
    source: str  # for people: ".dlgit.yaml at origin/main (1a2b3c4d5e6f)", "the defaults", ...
    commit: str | None = None  # the base commit whose .dlgit.yaml was read


def policy_at(base: str | None, label: str | None, toplevel: Path | None) -> Policy:
    """Settings from the .dlgit.yaml in commit `base`; without a base (a whole history, a first push)
    from the work tree like the hooks (a bare repository: the defaults)."""
    if base is None:
        settings = config.load(toplevel)
        found = toplevel is not None and (toplevel / config.CONFIG_FILE).exists()
        return Policy(settings, f"the work tree's {config.CONFIG_FILE} (the range has no base)" if found else "the defaults")
    where = f"{label} ({base[:12]})" if label and label != base else base[:12]
    raw = git.show_file(base, config.CONFIG_FILE)
    source = f"{config.CONFIG_FILE} at {where}" if raw is not None else f"the defaults (no {config.CONFIG_FILE} at {where})"
    return Policy(config.from_bytes(raw, f"{config.CONFIG_FILE} at {where}"), source, base)


@dataclass(frozen=True)
class Finding:
    judged: history.Judged
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
    settings_base: str | None = None  # the commit whose .dlgit.yaml judges (None: no base)
    base_label: str | None = None  # how to name it


def judge(span: Span, target_name: str | None, policy: Policy, refs: history.RefView,
          ref_update: RefUpdate | None = None, tags: bool = False) -> Result:
    """Judge a span for the branch it is put on, and the ref update itself (if any); `tags`: also
    the release tags that point into the span."""
    settings = policy.settings
    target = model.parse_branch(target_name, settings) if target_name else None
    result = Result(span.label, target, policy)
    result.ref_violations += evaluate(Change(target, ref_update=ref_update), settings, REF_RULES)
    if span.tip is None:
        return result
    if target is None:
        result.notices.append("no branch given (detached HEAD): branch rules were skipped; pass --branch NAME to apply them")
    judged = history.gather(span.tip, span.bases, target, settings, refs, has_base=bool(span.bases))
    _judge_commits(result, judged)
    if tags:
        for update in history.release_tags((item.commit.sha for item in judged), refs, settings):
            result.ref_violations += evaluate(Change(None, ref_update=update), settings, REF_RULES)
    return result


def _judge_commits(result: Result, judged: list[history.Judged]) -> None:
    """Every commit by the rules of the branch it belongs to; note the ones that edit .dlgit.yaml."""
    result.checked = len(judged)
    for item in judged:
        violations = evaluate(item.change, result.policy.settings, COMMIT_RULES)
        if violations:
            result.findings.append(Finding(item, tuple(violations)))
        if history.touches_settings(item.commit):
            result.settings_changed_by.append(item.commit.sha)
    if result.settings_changed_by:
        shas = ", ".join(sha[:12] for sha in result.settings_changed_by)
        result.notices.append(f"{config.CONFIG_FILE} is changed by {shas}; the range was judged by {result.policy.source}, "
                              "the new settings apply only once that change has landed")


# --- the command ---------------------------------------------------------------------------------


def main(revision_range: str | None, branch: str | None, output_format: str) -> int:
    git.require_version()
    info = git.repo_info()
    name = branch if branch is not None else git.current_branch()
    span = resolve_range(revision_range, name, info.toplevel)
    policy = policy_at(span.settings_base, span.base_label, info.toplevel)
    overrides = {name: span.tip} if name and span.tip else None
    result = judge(span, name, policy, history.RefView.load(overrides=overrides), tags=True)
    if output_format == "json":
        print(json.dumps(to_json(result), indent=2, ensure_ascii=False))
    else:
        print(render_text(result, report.use_color(sys.stdout)))
    return 0 if result.ok else 1


def resolve_range(spec: str | None, branch: str | None, toplevel: Path | None) -> Span:
    """RANGE -> Span. Default: the branch's commits not on its upstream; without an upstream, the
    commits that are not pushed yet (see _new_ref_span). `<zeros>..TIP` (CI's "before" of a first
    push) is TIP's not-yet-pushed commits the same way."""
    if spec is None:
        if git.rev("HEAD") is None:
            raise UsageError(f"'{branch or 'HEAD'}' has no commits yet, so there is nothing to check; commit first or pass a RANGE.")
        if not (branch and git.rev("@{upstream}")):
            return _new_ref_span("HEAD (its commits on no remote branch)", "HEAD", branch, toplevel)
        spec = git.out("rev-parse", "--abbrev-ref", "@{upstream}") + "..HEAD"
    new_ref = _NEW_REF_RANGE.match(spec)
    if new_ref:
        return _new_ref_span(spec, new_ref.group(1), branch, toplevel)
    revs = git.rev_parse_range(spec)
    if revs is None:
        raise UsageError(f"'{spec}' is not a revision range git can read here; use A..B, a branch or a commit (see `git help revisions`).")
    tips = [rev for rev in revs if not rev.startswith("^")]
    if len(tips) != 1:
        raise UsageError(f"'{spec}' names {len(tips)} tips; dlgit check judges one tip at a time: use A..B or a single revision.")
    tip = git.rev(tips[0])
    if tip is None:
        raise UsageError(f"'{spec}' does not end at a commit.")
    bases = tuple(rev[1:] for rev in revs if rev.startswith("^"))
    base_label = spec.split("..", 1)[0] if ".." in spec else None
    return Span(spec, tip, bases, bases[0] if bases else None, base_label or None)


def _new_ref_span(spec: str, tip_name: str, branch: str | None, toplevel: Path | None) -> Span:
    """A branch that is not on the remote yet: the commits of `tip_name` that no remote-tracking
    branch (other than the branch's own) holds and, off main and dev, that local main and dev do
    not hold either (those were put on main/dev, not on this branch). Without remotes, a main or dev
    branch is judged whole. The settings come from the remote's main."""
    tip = git.rev(tip_name)
    if tip is None:
        raise UsageError(f"'{tip_name}' in '{spec}' is not a commit here.")
    local = config.load(toplevel)
    bases = history.existing_commits(("refs/remotes/",), branch)
    if branch not in (local.main, local.dev):
        bases += [sha for sha in (git.rev(f"refs/heads/{name}") for name in (local.main, local.dev)) if sha]
    base = history.RefView.load(("refs/remotes/",)).tip(local.main) if branch != local.main else None
    return Span(spec, tip, tuple(dict.fromkeys(bases)), base, f"the remote's {local.main}")


# --- output --------------------------------------------------------------------------------------


def _placement(finding: Finding, target: Branch | None) -> str:
    judged, branch = finding.judged, finding.judged.change.branch
    if judged.via is None:
        where = f"'{target.name}'" if target else "HEAD"
        return f"on the first-parent chain of {where}: judged as a commit made there"
    source = f"'{branch.name}' ({branch.kind.value})" if branch else "a branch dlgit cannot name"
    return f"brought in by merge {judged.via[:12]} from {source}: judged by that branch's rules"


def render_text(result: Result, color: bool, header: str | None = None) -> str:
    lines = [header or (f"dlgit check: {result.label} on {report.describe_branch(result.target)}: "
                        f"{result.checked} commit(s), judged by {result.policy.source}")]
    lines += [f"note: {notice}" for notice in result.notices]
    for finding in result.findings:
        judged = finding.judged
        title = report.paint(judged.commit.sha[:12], "yellow", color) + f" {judged.subject}"
        lines += ["", title, f"  {_placement(finding, result.target)}"]
        lines += [f"  {line}" for violation in finding.violations for line in report.format_violation(violation, color)]
    if result.ref_violations:
        lines += ["", report.paint(f"the ref itself ({result.label})", "bold", color)]
        lines += [f"  {line}" for violation in result.ref_violations for line in report.format_violation(violation, color)]
    lines += ["", _summary(result)]
    return "\n".join(lines)


def _summary(result: Result) -> str:
    if result.ok:
        return f"no violations in {result.checked} commit(s)."
    rules = sorted({v.rule for f in result.findings for v in f.violations} | {v.rule for v in result.ref_violations})
    return (f"{result.violations} violation(s) in {len(result.findings)} commit(s)"
            + (" and the ref" if result.ref_violations else "") + f". More about a rule: dlgit explain {rules[0]}")


def _violation_json(violation: Violation) -> dict[str, Any]:
    return {"rule": violation.rule, "statement": violation.statement, "detail": violation.detail,
            "items": list(violation.items), "why": violation.why, "fix": list(violation.fix)}


def _branch_json(branch: Branch | None) -> dict[str, str] | None:
    return None if branch is None else {"name": branch.name, "kind": branch.kind.value}


def to_json(result: Result) -> dict[str, Any]:
    """The stable JSON document (schema 1, described in docs/check.md)."""
    return {
        "schema": SCHEMA_VERSION,
        "ok": result.ok,
        "range": result.label,
        "branch": _branch_json(result.target),
        "settings": {"source": result.policy.source, "commit": result.policy.commit, "changed_by": result.settings_changed_by},
        "commits_checked": result.checked,
        "violation_count": result.violations,
        "commits": [
            {
                "sha": f.judged.commit.sha,
                "subject": f.judged.subject,
                "judged_as": _branch_json(f.judged.change.branch),
                "merged_by": f.judged.via,
                "violations": [_violation_json(v) for v in f.violations],
            }
            for f in result.findings
        ],
        "ref_violations": [_violation_json(v) for v in result.ref_violations],
        "notices": result.notices,
    }
