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

from dlgit import config, report
from dlgit.errors import UsageError
from dlgit.evidence import RefView
from dlgit.git import Git, require_version
from dlgit.history.gather import existing_commits
from dlgit.history.judge import Span, judge, policy_at
from dlgit.history.render import render_text, to_json

_NEW_REF_RANGE = re.compile(r"^(?:0{40}|0{64})\.\.(.+)$")


def main(revision_range: str | None, branch: str | None, output_format: str) -> int:
    require_version()
    repo = Git.open()
    name = branch if branch is not None else repo.info.branch
    span = resolve_range(repo, revision_range, name)
    policy = policy_at(repo, span.settings_base, span.base_label)
    overrides = {name: span.tip} if name and span.tip else None
    result = judge(span, name, policy, RefView.load(repo, overrides=overrides, remote=_remote(repo, name)), tags=True)
    if output_format == "json":
        print(json.dumps(to_json(result), indent=2, ensure_ascii=False))
    else:
        print(render_text(result, report.use_color(sys.stdout)))
    return 0 if result.ok else 1


def _remote(repo: Git, branch: str | None) -> str:
    """The remote the branch goes to: its upstream's, else the first one (fix lines name it)."""
    configured = repo.config_get(f"branch.{branch}.remote") if branch else None
    return configured or next(iter(repo.out("remote").split()), "origin")


def resolve_range(repo: Git, spec: str | None, branch: str | None) -> Span:
    """RANGE -> Span. Default: the branch's commits not on its upstream; without an upstream, the
    commits that are not pushed yet (see _new_ref_span). `<zeros>..TIP` (CI's "before" of a first
    push) is TIP's not-yet-pushed commits the same way."""
    if spec is None:
        if repo.rev("HEAD") is None:
            raise UsageError(f"'{branch or 'HEAD'}' has no commits yet, so there is nothing to check; commit first or pass a RANGE.")
        if not (branch and repo.rev("@{upstream}")):
            return _new_ref_span(repo, "HEAD (its commits on no remote branch)", "HEAD", branch)
        spec = repo.out("rev-parse", "--abbrev-ref", "@{upstream}") + "..HEAD"
    new_ref = _NEW_REF_RANGE.match(spec)
    if new_ref:
        return _new_ref_span(repo, spec, new_ref.group(1), branch)
    revs = repo.rev_parse_range(spec)
    if revs is None:
        raise UsageError(f"'{spec}' is not a revision range git can read here; use A..B, a branch or a commit (see `git help revisions`).")
    tips = [rev for rev in revs if not rev.startswith("^")]
    if len(tips) != 1:
        raise UsageError(f"'{spec}' names {len(tips)} tips; dlgit check judges one tip at a time: use A..B or a single revision.")
    tip = repo.rev(tips[0])
    if tip is None:
        raise UsageError(f"'{spec}' does not end at a commit.")
    bases = tuple(rev[1:] for rev in revs if rev.startswith("^"))
    base_label = spec.split("..", 1)[0] if ".." in spec else None
    return Span(spec, tip, bases, bases[0] if bases else None, base_label or None)


def _new_ref_span(repo: Git, spec: str, tip_name: str, branch: str | None) -> Span:
    """A branch that is not on the remote yet: the commits of `tip_name` that no remote-tracking
    branch (other than the branch's own) holds and, off main and dev, that local main and dev do
    not hold either (those were put on main/dev, not on this branch). Without remotes, a main or dev
    branch is judged whole. The settings come from the remote's main."""
    tip = repo.rev(tip_name)
    if tip is None:
        raise UsageError(f"'{tip_name}' in '{spec}' is not a commit here.")
    local = config.load(repo.root)
    bases = existing_commits(repo, ("refs/remotes/",), branch)
    if branch not in (local.main, local.dev):
        bases += [sha for sha in (repo.rev(f"refs/heads/{name}") for name in (local.main, local.dev)) if sha]
    base = RefView.load(repo, ("refs/remotes/",)).tip(local.main) if branch != local.main else None
    return Span(spec, tip, tuple(dict.fromkeys(bases)), base, f"the remote's {local.main}")
