"""`dlgit hook pre-push` and `dlgit hook pre-receive`: judge every ref a push updates.

Each updated branch is judged like `dlgit check` (dlgit.history.judge) for the branch it lands on:
an update from OLD to NEW judges OLD..NEW; a new branch judges the commits no branch of the
receiving side holds yet; a deletion is skipped, except that main and dev are never deleted nor
force-pushed. Every other ref (a tag, a note, refs/stash, anything) has its new commits judged by
the content rules (large-file, task-config); a replace ref (refs/replace/) is refused; a release tag
vX.Y.Z must name a commit on main whose VERSION is X.Y.Z and never moves nor goes once pushed. The
settings come from the receiving side's main as it was before the push, never from the pushed
commits nor the branch being judged, so a push cannot relax its own policy by editing .dlgit.yaml.
History the repository cannot see (a shallow clone, grafts) is no history to judge: exit 2.

pre-push reads every `<local ref> <local sha> <remote ref> <remote sha>` line on stdin. Under the
pre-commit framework the hook gets no stdin, only PRE_COMMIT_* variables describing the *first*
pushed ref (pre-commit#1908): dlgit then checks that one ref and says so; `dlgit install` installs a
pre-push hook that checks them all. pre-receive reads `<old> <new> <ref>` lines in a server's
(bare) repository before git updates any ref; it never updates refs itself. A line of another
shape is an error (exit 2, which refuses the push).
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from dlgit import config, report
from dlgit.errors import UsageError
from dlgit.evidence import RefView
from dlgit.git import Git, require_version
from dlgit.history.gather import tag_updates
from dlgit.history.judge import Judging, Policy, Result, Span, judge, judge_many, policy_at
from dlgit.history.render import render_text
from dlgit.model import Kind, is_zero, parse_branch, short_branch, tag_version
from dlgit.policy import OTHER_REF_RULES, Change, Entry, evaluate
from dlgit.policy.change import RefUpdate
from dlgit.shell import escape, printable

FRAMEWORK_NOTICE = (
    "dlgit: the pre-commit framework hands its pre-push hooks only the first pushed ref (pre-commit#1908); "
    "only that ref was checked. `dlgit install` sets up a pre-push hook that checks every ref."
)
_ID = r"(?:[0-9a-f]{40}|[0-9a-f]{64})"
_REF = r"refs/[^\s\x00-\x1f\x7f]+"


@dataclass(frozen=True)
class Update:
    ref: str  # the ref on the receiving side: refs/heads/main, refs/tags/v1.0.0
    old: str  # all zeros: the ref is created
    new: str  # all zeros: the ref is deleted


@dataclass(frozen=True)
class Side:
    """The receiving side as the hook sees it."""

    branches: tuple[str, ...]  # its branches: what a new ref's range excludes, and where main is found
    owners: tuple[str, ...]  # where branch tips are looked up (merge sources, squash trailers, tags on main)
    repo: Git
    remote: str = "origin"  # the pushing side's name for the receiving side (fix lines)
    server: bool = False  # pre-receive: the settings are the server's pinned ones (dlgit.server)


def pre_push(remote: str | None, stdin: TextIO) -> int:
    repo = Git.open()
    updates = [_pre_push_line(number, line) for number, line in _lines(stdin)]
    framework = not updates
    if framework:
        remote = os.environ.get("PRE_COMMIT_REMOTE_NAME") or remote
        updates = _framework_updates(repo, remote)
    named = remote is not None and repo.config_get(f"remote.{remote}.url") is not None
    tracking = f"refs/remotes/{remote}/" if named else "refs/remotes/"
    code = judge_updates(updates, Side((tracking,), ("refs/heads/", tracking), repo, remote if named else "origin"))
    if framework and updates:
        report.emit(FRAMEWORK_NOTICE)
    return code


def pre_receive(stdin: TextIO) -> int:
    repo = Git.open()
    updates = [_pre_receive_line(number, line) for number, line in _lines(stdin)]
    code = judge_updates(updates, Side(("refs/heads/",), ("refs/heads/",), repo, server=True))
    if code == 0:  # accepted: the hook that guards release tags is in place while a push carries one, and only then
        from dlgit import install

        install.place_tag_guard(repo, any(tag_version(u.ref) and not is_zero(u.new) for u in updates))
    return code


def _lines(stdin: TextIO) -> list[tuple[int, str]]:
    if stdin is None or stdin.isatty():
        return []
    return [(number, line) for number, line in enumerate(stdin.read().split("\n"), 1) if line.strip()]


def _malformed(hook: str, number: int, line: str, form: str) -> UsageError:
    shown = escape(line[:120]) + ("…" if len(line) > 120 else "")
    return UsageError(f"{hook}: line {number} of stdin is not '{form}' (got '{shown}'); git writes these lines itself, "
                      "so nothing was judged and the push is refused.")


def _pre_receive_line(number: int, line: str) -> Update:
    match = re.fullmatch(rf"({_ID}) ({_ID}) ({_REF})", line.rstrip("\r"))
    if not match or len(match.group(1)) != len(match.group(2)):
        raise _malformed("pre-receive", number, line, "<old sha> <new sha> <ref>")
    return Update(match.group(3), match.group(1), match.group(2))


def _pre_push_line(number: int, line: str) -> Update:
    match = re.fullmatch(rf"(?:{_REF}|\(delete\)|[^\s\x00-\x1f\x7f]+) ({_ID}) ({_REF}) ({_ID})", line.rstrip("\r"))
    if not match or len(match.group(1)) != len(match.group(3)):
        raise _malformed("pre-push", number, line, "<local ref> <local sha> <remote ref> <remote sha>")
    return Update(match.group(2), match.group(3), match.group(1))


def _framework_updates(repo: Git, remote: str | None) -> list[Update]:
    """The one ref the pre-commit framework describes in PRE_COMMIT_* variables. FROM_REF is the
    remote's old tip only when it is the remote-tracking tip; otherwise the branch is new there
    (the framework then passes the parent of the first new commit)."""
    env = os.environ
    remote_ref = env.get("PRE_COMMIT_REMOTE_BRANCH")
    new = repo.rev(env.get("PRE_COMMIT_TO_REF") or env.get("PRE_COMMIT_LOCAL_BRANCH") or "") if remote_ref else None
    if not remote_ref or new is None:
        return []
    from_ref = repo.rev(env["PRE_COMMIT_FROM_REF"]) if env.get("PRE_COMMIT_FROM_REF") else None
    branch = short_branch(remote_ref)
    tracking = repo.rev(f"refs/remotes/{remote}/{branch}") if remote and branch else None
    old = from_ref if from_ref and from_ref == tracking else "0" * len(new)
    return [Update(remote_ref, old, new)]


def judge_updates(updates: Sequence[Update], side: Side) -> int:
    """Judge every update; print what blocks; 1 when anything does."""
    if not updates:
        return 0
    require_version()
    repo = side.repo
    hidden = repo.hidden_history()
    if hidden:
        raise UsageError(f"this repository's history is incomplete: {hidden}. dlgit judges a push by the history it "
                         "continues, and cannot here; nothing was judged.")
    overrides = {name: u.new for u in updates if u.ref.startswith("refs/heads/") and (name := short_branch(u.ref)) and not is_zero(u.new)}
    refs = RefView.load(repo, side.owners, overrides, side.remote)
    policy = _policy(repo, side)
    known = _Known.read(updates, side, refs, policy.settings)
    results = _judge_all(updates, side, refs, policy, known)
    blocked = [result for result in results if not result.ok]
    color = report.use_color(sys.stderr)
    if side.server:
        _settings_notes(updates, results, policy, repo)
    for result in blocked:
        header = (report.paint(f"dlgit: push to {printable(result.label)} blocked", "bold", color)
                  + f" ({result.checked} commit(s) checked, judged by {printable(result.policy.source)})")
        report.emit(render_text(result, color, header))
    return 1 if blocked else 0


def _settings_notes(updates: Sequence[Update], results: Sequence[Result], policy: Policy, repo: Git) -> None:
    """On a server, a push that changes .dlgit.yaml on main or dev changes content, never the policy:
    say so, with the admin's command that adopts it once it has landed."""
    from dlgit import server

    branches = (policy.settings.main, policy.settings.dev)
    for update, result in zip(updates, results, strict=True):
        if not result.settings_changed_by:
            continue
        result.notices[:] = [notice for notice in result.notices if not notice.startswith(f"{config.CONFIG_FILE} is changed by")]
        shas = ", ".join(sha[:12] for sha in result.settings_changed_by)
        if short_branch(update.ref) in branches and update.ref.startswith("refs/heads/") and result.ok:
            report.emit(f"dlgit: note: {config.CONFIG_FILE} is changed by {shas}: accepted as content; this server keeps "
                        f"enforcing {policy.source}. Only its admin changes them, once they have landed, with:\n"
                        f"  {server.adopt_command(repo, update.new)}")
        else:
            result.notices.append(f"{config.CONFIG_FILE} is changed by {shas}; the push was judged by {policy.source}, which "
                                  "no push changes")


def _policy(repo: Git, side: Side) -> Policy:
    """On a server, its pinned settings; in pre-push, the settings of the receiving side's main as it
    is before the push (the defaults when it has none yet)."""
    if side.server:
        from dlgit import server

        return server.policy(repo)
    main = config.load(repo.root).main
    tip = next((sha for ref, sha in repo.refs(*side.branches) if short_branch(ref) == main), None)
    if tip is None:
        return Policy(config.Settings(), f"the defaults (the receiving side has no '{main}' yet)")
    return policy_at(repo, tip, f"the receiving side's {main}")


@dataclass
class _Known:
    """What a push's refs share, read once, so that its cost grows with what it brings, not with
    refs × refs: the receiving side's branch tips, what every other ref names, which pushed tips
    bring commits no branch holds, and the release tags' facts."""

    tips: tuple[tuple[str, str], ...]  # (ref, sha) of the receiving side's branches
    peeled: dict[str, tuple[str, str]]  # a pushed ref's new id -> (type, id) once tags are peeled
    bringing: set[str]  # the pushed branch tips that bring commits no branch of the receiving side holds
    bringing_other: set[str]  # the commits other pushed refs name that bring commits no branch, pushed or not, holds
    tags: dict[str, RefUpdate]  # release tag ref -> its facts
    tag_bytes: dict[str, int]  # a pushed annotated tag's id -> the size of its tag object (its message, mostly)

    @functools.cached_property
    def names(self) -> frozenset[str]:
        """The receiving side's branch names."""
        return frozenset(name for ref, _ in self.tips if (name := short_branch(ref)))

    @classmethod
    def read(cls, updates: Sequence[Update], side: Side, refs: RefView, settings: config.Settings) -> _Known:
        repo = side.repo
        tips = tuple(repo.refs(*side.branches))
        existing = [sha for _, sha in tips]
        pushed = [u for u in updates if not is_zero(u.new)]
        branches = [u.new for u in pushed if u.ref.startswith("refs/heads/")]
        peeled = repo.peeled_all(u.new for u in pushed if not u.ref.startswith("refs/heads/"))
        others = [found[1] for u in pushed if not u.ref.startswith("refs/heads/") and (found := peeled.get(u.new)) and found[0] == "commit"]
        bringing, bringing_other = repo.unreached(branches, existing), repo.unreached(others, [*existing, *branches])
        released = [(u.ref, found[1]) for u in pushed if tag_version(u.ref) and (found := peeled.get(u.new)) and found[0] == "commit"]
        tags = {update.ref: update for update in tag_updates(released, refs, settings)} if released else {}
        annotated = repo.object_sizes(u.new for u in pushed if (found := peeled.get(u.new)) and found[1] != u.new)
        return cls(tips, peeled, bringing, bringing_other, tags, annotated)

    def ref_update(self, update: Update) -> RefUpdate:
        """The facts about a pushed ref that is no branch: a release tag's, moved or not, and a tag object's size."""
        tag = self.tags.get(update.ref)
        moved = not is_zero(update.old)
        ref_update = tag._replace(moved=moved) if tag else RefUpdate(update.ref, moved=moved)
        return ref_update._replace(tag_bytes=self.tag_bytes.get(update.new))


def _judge_all(updates: Sequence[Update], side: Side, refs: RefView, policy: Policy, known: _Known) -> list[Result]:
    """Every update's result. New branches and other refs that bring commits are judged together, over
    one read of what they bring (branches first: a tag's commits on a pushed branch are judged there);
    a branch whose commits another pushed branch brings too is judged again alone, by its own rules."""
    together: dict[int, Judging] = {}
    tips: set[str | None] = set()
    for index, update in enumerate(updates):
        item = _batched(update, policy.settings, known, refs.remote)
        if item is not None and item.span.tip not in tips:
            together[index] = item
            tips.add(item.span.tip)
    ordered = sorted(together.items(), key=lambda pair: pair[1].target_name is None)  # branches first
    batch, met = judge_many([item for _, item in ordered], sorted({sha for _, sha in known.tips}), policy, refs) if ordered else ([], set())
    done = {index: result for (index, item), result in zip(ordered, batch, strict=True)
            if item.target_name is None or item.span.tip not in met}
    return [done[index] if index in done else _judge(update, side, refs, policy, known) for index, update in enumerate(updates)]


def _batched(update: Update, settings: config.Settings, known: _Known, remote: str) -> Judging | None:
    """How `judge_many` judges `update` with the others (None: alone): a new branch judged against
    every branch (no task or hotfix), or a ref that is no branch naming a commit, when it brings commits."""
    if is_zero(update.new):
        return None
    if not update.ref.startswith("refs/heads/"):
        found = known.peeled.get(update.new)
        if found is None or found[0] != "commit" or found[1] not in known.bringing_other:
            return None
        return Judging(Span(update.ref, found[1]), None, known.ref_update(update), OTHER_REF_RULES)
    branch = update.ref[len("refs/heads/"):]
    if not is_zero(update.old) or update.new not in known.bringing or branch in known.names \
            or parse_branch(branch, settings).kind in (Kind.TASK, Kind.HOTFIX):
        return None
    return Judging(Span(update.ref, update.new), branch, RefUpdate(update.ref, remote=remote))


def _judge(update: Update, side: Side, refs: RefView, policy: Policy, known: _Known) -> Result:
    branch = update.ref[len("refs/heads/"):] if update.ref.startswith("refs/heads/") else None
    if is_zero(update.new):
        return judge(Span(update.ref, None), branch, policy, refs, RefUpdate(update.ref, deleted=True, remote=refs.remote))
    if branch is None:
        return _judge_other(update, side, refs, policy, known)
    old_known = not is_zero(update.old) and side.repo.rev(update.old) is not None
    if old_known:
        bases, forced = [update.old], not side.repo.is_ancestor(update.old, update.new)
    else:  # a new branch; or the receiving side has commits this repository lacks, which NEW cannot contain
        bases, forced = _new_branch_bases(branch, policy.settings, known), not is_zero(update.old)
    brings = old_known or update.new in known.bringing or parse_branch(branch, policy.settings).kind in (Kind.TASK, Kind.HOTFIX) \
        or branch in known.names
    span = Span(update.ref, update.new if brings else None, tuple(bases))
    return judge(span, branch, policy, refs, RefUpdate(update.ref, forced=forced, remote=refs.remote))


def _new_branch_bases(branch: str, settings: config.Settings, known: _Known) -> list[str]:
    """What a new branch's range excludes: the commits no branch of the receiving side holds; for a
    task or hotfix branch, only what main (and, for a task, another task branch) holds: a task
    forked from dev, or created at dev's tip with no commit of its own, brings dev's unreleased core."""
    kind = parse_branch(branch, settings).kind

    def excluded(name: str | None) -> bool:
        if kind not in (Kind.TASK, Kind.HOTFIX):
            return name != branch
        return name == settings.main or (kind is Kind.TASK and name != branch and (name or "").startswith(settings.task_prefix))

    return sorted({sha for ref, sha in known.tips if excluded(short_branch(ref))})


def _judge_other(update: Update, side: Side, refs: RefView, policy: Policy, known: _Known) -> Result:
    """A ref that is no branch: the ref itself (replace refs, release tags), then what it brings, by
    the content rules: the commits no branch holds yet, or the blob or tree it names."""
    repo, settings = side.repo, policy.settings
    found = known.peeled.get(update.new)
    ref_update = known.ref_update(update)
    if found is None or found[0] != "commit":
        result = judge(Span(update.ref, None), None, policy, refs, ref_update)
        entries = tuple(Entry("A", path, size=size) for path, size in _object_sizes(repo, found))
        result.ref_violations += evaluate(Change(None, entries), settings, OTHER_REF_RULES) if entries else []
        return result
    if found[1] not in known.bringing_other:  # every commit it names is on a branch, judged there
        return judge(Span(update.ref, None), None, policy, refs, ref_update)
    bases = tuple(sorted({sha for _, sha in known.tips}))
    return judge(Span(update.ref, found[1], bases), None, policy, refs, ref_update, rule_ids=OTHER_REF_RULES)


def _object_sizes(repo: Git, found: tuple[str, str] | None) -> list[tuple[str, int]]:
    """(path, size) of what a ref names when it is no commit: a tree's blobs, or the blob itself."""
    if found is None:
        return []
    kind, sha = found
    if kind == "tree":
        return repo.tree_sizes(sha)
    return [(f"(the blob {sha[:12]})", size) for size in repo.object_sizes([sha]).values()]
