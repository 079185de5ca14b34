"""Reading a judged span: the text a person reads and the stable JSON document (schema 1,
described in docs/check.md)."""

from __future__ import annotations

import json
import re
from typing import Any

from dlgit import report
from dlgit.history.judge import Finding, Result
from dlgit.model import Branch
from dlgit.policy import Violation
from dlgit.shell import printable

SCHEMA_VERSION = 1


def _placement(finding: Finding, target: Branch | None) -> str:
    judged, branch = finding.judged, finding.judged.change.branch
    if judged.via is None:
        where = f"'{printable(target.name)}'" if target else "HEAD"
        return f"on the first-parent chain of {where}: judged as a commit made there"
    source = f"'{printable(branch.name)}' ({branch.kind.value})" if branch else "a branch no ref here owns (judged by content only)"
    return f"brought in by merge {judged.via[:12]} from {source}: judged by that branch's rules"


def render_text(result: Result, color: bool, header: str | None = None) -> str:
    lines = [header or (f"dlgit check: {printable(result.label)} on {report.describe_branch(result.target)}: "
                        f"{result.checked} commit(s), judged by {printable(result.policy.source)}")]
    lines += [f"note: {printable(notice)}" for notice in result.notices]
    for finding in result.findings:
        judged = finding.judged
        title = report.paint(judged.commit.sha[:12], "yellow", color) + f" {printable(judged.subject)}"
        lines += ["", title, f"  {_placement(finding, result.target)}"]
        lines += [f"  {line}" for violation in finding.violations for line in report.format_violation(violation, color)]
    if result.ref_violations:
        lines += ["", report.paint(f"the ref itself ({printable(result.label)})", "bold", color)]
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


def dumps(result: Result) -> str:
    """The JSON document as text, valid UTF-8 whatever the paths hold: a byte of a non-UTF-8 name
    (decoded as a lone surrogate U+DC80..U+DCFF) is written as its JSON escape `\\udcXX`, which
    Python's json and `os.fsencode` turn back into that byte (lossless)."""
    text = json.dumps(to_json(result), indent=2, ensure_ascii=False)
    return re.sub("[\udc80-\udcff]", lambda match: f"\\u{ord(match.group()):04x}", text)


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
