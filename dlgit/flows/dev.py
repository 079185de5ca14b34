"""`dlgit release`, `dlgit hotfix start|finish`, `dlgit feature start|finish`: each checks every
precondition before touching anything, gathers its facts, builds its plan and hands it to the
runner. A precondition that fails is one paragraph and exit 2, with nothing changed."""

from __future__ import annotations

import sys

from dlgit import config, report
from dlgit.config import Settings
from dlgit.errors import UsageError
from dlgit.evidence import hotfix_diff
from dlgit.flows import plans
from dlgit.flows.runner import DONE, REFUSED, FlowRunner
from dlgit.git import Git, require_version
from dlgit.model import (
    Bump,
    Kind,
    next_version,
    parse_branch,
    parse_squash_trailer,
    read_version,
    release_bump,
    release_tag,
    squash_lines,
)
from dlgit.policy import Change, evaluate
from dlgit.shell import escape

BUMPS = {"major": Bump.MAJOR, "minor": Bump.MINOR, "patch": Bump.PATCH}


class Session:
    """The repository, its settings and the runner, with the preconditions every flow shares."""

    def __init__(self) -> None:
        require_version()
        self.repo = Git.open()
        if self.repo.root is None:
            raise UsageError("this is a bare repository; flows need a work tree.")
        self.settings = config.load(self.repo.root)
        self.runner = FlowRunner(self.repo)
        self.runner.refuse_if_unfinished()

    def require_clean(self, verb: str) -> None:
        self.runner.require_clean(verb)

    def tip(self, branch: str, purpose: str) -> str:
        sha = self.repo.rev(f"refs/heads/{branch}")
        if sha is None:
            hint = " (`dlgit init` creates it)" if branch == self.settings.dev else ""
            raise UsageError(f"there is no branch '{branch}' here, which {purpose}{hint}.")
        return sha

    def new_branch(self, name: str, kind: Kind) -> str:
        prefix = self.settings.hotfix_prefix if kind is Kind.HOTFIX else self.settings.feature_prefix
        full = name if name.startswith(prefix) else prefix + name
        branch = parse_branch(full, self.settings)
        if branch.kind is not kind:
            raise UsageError(f"'{escape(full)}' is no {kind.value} branch name: {branch.problem}.")
        if self.repo.rev(f"refs/heads/{full}") is not None:
            raise UsageError(f"a branch '{full}' exists already; finish it (`dlgit {kind.value} finish {full}`) or pick another name.")
        return full

    def existing_branch(self, name: str | None, kind: Kind) -> str:
        prefix = self.settings.hotfix_prefix if kind is Kind.HOTFIX else self.settings.feature_prefix
        current = self.repo.current_branch()
        if name is None:
            if current is None or parse_branch(current, self.settings).kind is not kind:
                raise UsageError(f"name the {kind.value} branch to finish, or run this on it (you are on {current or 'a detached HEAD'}).")
            return current
        full = name if name.startswith(prefix) else prefix + name
        if parse_branch(full, self.settings).kind is not kind or self.repo.rev(f"refs/heads/{full}") is None:
            raise UsageError(f"there is no {kind.value} branch '{escape(full)}' here.")
        return full

    def free_tag(self, version: str) -> str:
        tag = release_tag(version)
        if self.repo.ref(f"refs/tags/{tag}") is not None:
            raise UsageError(f"the tag {tag} exists already and release tags never move; bump to another version "
                             "(--bump major|minor|patch), or delete the tag if it was never pushed.")
        return tag

    def version_at(self, treeish: str, where: str) -> str:
        version = read_version(self.repo.show_file(treeish, self.settings.template_config))
        if version is None:
            raise UsageError(f"{self.settings.template_config} on {where} holds no `VERSION: X.Y.Z` line; "
                             "`dlgit init` writes the template task.")
        return version


# --- release ---------------------------------------------------------------------------------------


def release(bump: str, squash: bool, push: bool, dry_run: bool) -> int:
    session = Session()
    s, repo = session.settings, session.repo
    session.require_clean("release")
    main = session.tip(s.main, "a release goes to")
    dev = session.tip(s.dev, "a release takes its changes from")
    merged = repo.merge_tree(main, dev)
    if merged.tree == repo.out("rev-parse", f"{main}^{{tree}}"):
        print(f"dlgit release: nothing to release: {s.dev} brings nothing that {s.main} lacks.")
        return DONE
    if not repo.is_ancestor(main, dev):  # main holds commits dev lacks: into dev first
        code = session.runner.start(plans.merge_main_into_dev(s, repo.current_branch()), dry_run)
        if code != DONE or dry_run:
            return code
        dev = session.tip(s.dev, "a release takes its changes from")
        merged = repo.merge_tree(main, dev)
    old = session.version_at(merged.tree, f"{s.main} after the merge of {s.dev}")
    messages = _messages_since_release(repo, s, main, dev)
    level = BUMPS.get(bump) or release_bump(messages, s.commit_types)
    new = next_version(old, level if level is not Bump.NONE else Bump.PATCH,  # dev differs in content: at least a patch
                       major_zero=bump == "auto")  # an explicit --bump major means 1.0.0
    session.free_tag(new)
    listed = tuple(line for message in reversed(messages) for line in squash_lines(message, s.commit_types))
    facts = plans.Release(s, repo.current_branch(), main, dev, old, new, listed, squash=squash,
                          remote=_push_remote(repo, s) if push else None, upstream=_upstream(repo, s))
    return session.runner.start(plans.release(facts), dry_run)


def _messages_since_release(repo: Git, settings: Settings, main: str, dev: str) -> list[str]:
    """Messages of dev's own commits (no merges) since the last release, newest first: those main
    holds (a --no-squash release) and those before the dev commit the last squash names."""
    squashed = next((trailer[1] for _, message in repo.log_messages([main], first_parent=True)
                     if (trailer := parse_squash_trailer(message)) and trailer[0] == settings.dev), None)
    revs = [dev, f"^{main}", *([f"^{squashed}"] if squashed and repo.rev(squashed) else [])]
    return [message for _, message in repo.log_messages(revs, merges=False)]


def _upstream(repo: Git, settings: Settings) -> str | None:
    """The remote main is pushed to: its upstream's, else origin; None without either."""
    return repo.config_get(f"branch.{settings.main}.remote") or ("origin" if repo.config_get("remote.origin.url") else None)


def _push_remote(repo: Git, settings: Settings) -> str:
    remote = _upstream(repo, settings)
    if remote is None:
        raise UsageError(f"--push needs a remote: {settings.main} has no upstream and there is no 'origin'.")
    return remote


# --- feature and hotfix ------------------------------------------------------------------------------


def start(kind: Kind, name: str, dry_run: bool) -> int:
    session = Session()
    session.require_clean(f"{kind.value} start")
    base = session.settings.dev if kind is Kind.FEATURE else session.settings.main
    sha = session.tip(base, f"a {kind.value} branch starts from")
    full = session.new_branch(name, kind)
    return session.runner.start(plans.start(plans.Start(full, base, sha, kind.value)), dry_run)


def feature_finish(name: str | None, message: str | None, dry_run: bool) -> int:
    session = Session()
    s = session.settings
    session.require_clean("feature finish")
    session.tip(s.dev, "a feature is merged into")
    branch = session.existing_branch(name, Kind.FEATURE)
    facts = plans.FeatureFinish(s, branch, session.repo.current_branch(), message or f"chore: merge {branch} into {s.dev}")
    return session.runner.start(plans.feature_finish(facts), dry_run)


def hotfix_finish(name: str | None, bump: bool, dry_run: bool) -> int:
    session = Session()
    s, repo = session.settings, session.repo
    session.require_clean("hotfix finish")
    main = session.tip(s.main, "a hotfix is merged into")
    dev = session.tip(s.dev, "a hotfix is merged into too")
    branch = session.existing_branch(name, Kind.HOTFIX)
    tip = session.tip(branch, "is to be finished")
    size = Change(parse_branch(branch, s), hotfix_diff=hotfix_diff(repo, main, tip, s.hotfix_max_bytes))
    violations = evaluate(size, s, ["hotfix-size"])  # the hook's own rule, before anything moves
    if violations:
        report.emit(report.format_blocked("hotfix finish", size.branch, violations, report.use_color(sys.stderr)))
        return REFUSED
    old = session.version_at(main, s.main) if bump else None
    new = next_version(old, Bump.PATCH) if old else None
    if new:
        session.free_tag(new)
    facts = plans.HotfixFinish(s, branch, repo.current_branch(), main, dev, old, new)
    return session.runner.start(plans.hotfix_finish(facts), dry_run)
