"""`dlgit check [RANGE] [--branch NAME] [--format text|json]`: re-verify history after the fact.

Client hooks can be skipped (`--no-verify`, fast-forwards, rebases, cherry-picks, another
core.hooksPath), so this judges commits that already exist with the same rules as the hooks, from
their content: see dlgit.history for how the facts are gathered. The same `judge` backs the pre-push
and pre-receive hooks (dlgit.push). The settings come from main (`settings_policy`), never from the
branch being judged. The JSON output is documented in docs/check.md (schema 1).

Exit codes: 0 nothing violated, 1 violations, 2 bad input (bad range, not a repository, unborn
branch, a broken .dlgit.yaml on main, a shallow or grafted history).
"""

from __future__ import annotations

import re
import sys

from dlgit import config, report
from dlgit.errors import UsageError
from dlgit.evidence import RefView
from dlgit.git import Git, require_version
from dlgit.history.gather import existing_commits
from dlgit.history.judge import Policy, Span, judge, policy_at
from dlgit.history.render import dumps, render_text
from dlgit.model import short_branch

_NEW_REF_RANGE = re.compile(r"^(?:0{40}|0{64})\.\.(.+)$")


def main(revision_range: str | None, branch: str | None, output_format: str) -> int:
    require_version()
    repo = Git.open()
    hidden = repo.hidden_history()
    if hidden:
        raise UsageError(f"this repository's history is incomplete: {hidden}. A range judged here could look like the start "
                         "of a repository, so nothing was judged.")
    name = branch if branch is not None else repo.info.branch
    span = resolve_range(repo, revision_range, name)
    policy = settings_policy(repo, span)
    overrides = {name: span.tip} if name and span.tip else None
    result = judge(span, name, policy, RefView.load(repo, overrides=overrides, remote=_remote(repo, name)), tags=True)
    if output_format == "json":
        print(dumps(result))
    else:
        print(render_text(result, report.use_color(sys.stdout)))
    return 0 if result.ok else 1


def settings_policy(repo: Git, span: Span) -> Policy:
    """The settings that judge: the protected main's .dlgit.yaml, never the branch being judged: the
    remote's main (the upstream's remote first), or local main without a remote. When that main is
    itself among the judged commits (CI after a push to main), main as it was before them. Without
    any main, the work tree's. Main's name itself comes from the range's base when it has one (in CI
    the work tree is the judged tip, whose .dlgit.yaml could name any branch main)."""
    base = repo.rev(f"{span.bases[0]}^{{commit}}") if span.bases else None
    main = policy_at(repo, base, None).settings.main if base else config.load(repo.root).main
    tip, label = _remote_main(repo, main) or (repo.rev(f"refs/heads/{main}"), main)
    if tip is None:
        return policy_at(repo, None, None)
    if span.tip and span.bases and repo.is_ancestor(tip, span.tip):
        before = repo.first_parent_before(tip, span.bases)
        if before is None:
            return Policy(config.Settings(), f"the defaults ({label} has no commit before the judged ones)")
        if before != tip:
            return policy_at(repo, before, f"{label} before the judged commits")
    return policy_at(repo, tip, label)


def _remote_main(repo: Git, main: str) -> tuple[str | None, str] | None:
    """(tip, name) of a remote's main: the upstream's remote, then origin, then any."""
    upstream = repo.config_get(f"branch.{repo.info.branch}.remote") if repo.info.branch else None
    tips = {ref.removeprefix("refs/remotes/"): sha for ref, sha in repo.refs("refs/remotes/") if short_branch(ref) == main}
    for remote in dict.fromkeys([upstream, "origin", *(name.partition("/")[0] for name in sorted(tips))]):
        if remote and f"{remote}/{main}" in tips:
            return tips[f"{remote}/{main}"], f"{remote}/{main}"
    return None


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
    return Span(spec, tip, tuple(rev[1:] for rev in revs if rev.startswith("^")))


def _new_ref_span(repo: Git, spec: str, tip_name: str, branch: str | None) -> Span:
    """A branch that is not on the remote yet: the commits of `tip_name` that no remote-tracking
    branch (other than the branch's own) holds and, off main and dev, that local main and dev do
    not hold either (those were put on main/dev, not on this branch). Without remotes, a main or dev
    branch is judged whole."""
    tip = repo.rev(tip_name)
    if tip is None:
        raise UsageError(f"'{tip_name}' in '{spec}' is not a commit here.")
    local = config.load(repo.root)
    bases = existing_commits(repo, ("refs/remotes/",), branch)
    if branch not in (local.main, local.dev):
        bases += [sha for sha in (repo.rev(f"refs/heads/{name}") for name in (local.main, local.dev)) if sha]
    return Span(spec, tip, tuple(dict.fromkeys(bases)))
