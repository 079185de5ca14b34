"""Plans: pure functions from the facts a flow found to the steps it will run. What a plan writes
(messages, the squash trailer, the bump subject, tag names) comes from dlgit.model, the module
the policy reads."""

from __future__ import annotations

from dataclasses import dataclass

from dlgit.config import Settings
from dlgit.flows.runner import Flow
from dlgit.flows.steps import BumpVersion, Commit, CreateBranch, DeleteBranch, Merge, Push, SquashMerge, Step, Switch, Tag, Verify
from dlgit.model import bump_subject, release_tag, squash_trailer
from dlgit.shell import quote


def heads(*names: str) -> list[str]:
    return [f"refs/heads/{name}" for name in names]


def back_merge_message(settings: Settings) -> str:
    return f"Merge branch '{settings.main}' into {settings.dev}"


@dataclass(frozen=True)
class Release:
    settings: Settings
    origin: str | None  # the branch checked out when the flow began
    main: str  # main's tip before the release
    dev: str  # dev's tip: what is released
    old: str  # VERSION after the squash, before the bump
    new: str
    listed: tuple[str, ...]  # dev's commits since the last release, oldest first: subjects and the lines that bump
    squash: bool = True
    remote: str | None = None  # --push: where
    upstream: str | None = None  # the remote a push would go to (None: the repository has none)


def release_message(facts: Release) -> str:
    """The squash commit: a conventional subject, the squashed subjects one per line with their
    lines that bump (so that commitizen, reading every line of the message on main, bumps as dlgit
    does), and the trailer `dlgit check` verifies."""
    body = "\n".join(facts.listed) or "(no commits of their own: merges only)"
    trailer = squash_trailer(facts.settings.dev, facts.dev)
    return "\n\n".join([f"chore(release): {facts.new} from {facts.settings.dev}", body, trailer])


def release(facts: Release) -> Flow:
    s, tag = facts.settings, release_tag(facts.new)
    steps: list[Step] = [Switch(s.main)]
    if facts.squash:
        steps += [SquashMerge(s.dev, facts.dev), Commit(release_message(facts), save="release")]
    else:
        steps.append(Merge(s.dev, s.main, f"chore(release): merge {s.dev} for {facts.new}"))
    steps += [
        BumpVersion(s.template_config, facts.old, facts.new, bump_subject(facts.old, facts.new), save="bump"),
        Tag(tag, "@bump", f"release {facts.new}"),
        Switch(s.dev),
        Merge(s.main, s.dev, back_merge_message(s), adopt_if=facts.dev if facts.squash else None),
        *_return_to(facts.origin, s.dev),
        Verify([[s.main, facts.main], [s.dev, facts.dev]]),
    ]
    if facts.remote:
        steps.append(Push(facts.remote, [s.main, s.dev, tag]))
    how = "squash" if facts.squash else "merge --no-ff"
    return Flow("release", f"release {facts.new} ({facts.old} → {facts.new}) from {s.dev} by {how}", steps,
                [*heads(s.main, s.dev), f"refs/tags/{tag}"],
                summary=[f"released {tag}: {s.main} holds {s.dev} as of {facts.dev[:12]}, VERSION {facts.new}, merged back into {s.dev}"
                         + _pushed(facts, tag)])


def _pushed(facts: Release, tag: str) -> str:
    """How the release reaches a remote: pushed, the command that pushes it, or nothing without one."""
    s = facts.settings
    if facts.remote:
        return "; pushed"
    return f"; push with: git push --atomic {quote(facts.upstream)} {quote(s.main)} {quote(s.dev)} {tag}" if facts.upstream else ""


def merge_main_into_dev(settings: Settings, origin: str | None) -> Flow:
    """Before a release, when main holds commits dev lacks (a hotfix, a task, a release made by hand
    and not merged back): main into dev first, so that a conflict is resolved on dev, where any
    resolution may be committed, and the release then brings main nothing it had not seen."""
    s = settings
    return Flow("release", f"merge {s.main} into {s.dev} before the release", [Switch(s.dev), Merge(s.main, s.dev, back_merge_message(s)),
                                                                            *_return_to(origin, s.dev)],
                heads(s.dev), summary=[f"{s.dev} holds {s.main}; the release follows (after a conflict: `dlgit continue`, "
                                       "then `dlgit release` again)"])


def _return_to(origin: str | None, where: str) -> list[Step]:
    return [Switch(origin)] if origin and origin != where else []


@dataclass(frozen=True)
class Start:
    """feature start / hotfix start: a new branch from dev or main."""

    name: str
    base: str  # dev or main
    base_sha: str
    flow: str  # "feature" or "hotfix"


def start(facts: Start) -> Flow:
    return Flow(f"{facts.flow} start", f"{facts.name} from {facts.base}", [CreateBranch(facts.name, facts.base_sha)],
                heads(facts.name), summary=[f"on {facts.name}; when it is done: dlgit {facts.flow} finish"])


@dataclass(frozen=True)
class FeatureFinish:
    settings: Settings
    name: str
    origin: str | None
    message: str


def feature_finish(facts: FeatureFinish) -> Flow:
    s = facts.settings
    steps: list[Step] = [Switch(s.dev), Merge(facts.name, s.dev, facts.message), DeleteBranch(facts.name),
                         *([Switch(facts.origin)] if facts.origin not in (None, facts.name, s.dev) else [])]
    return Flow("feature finish", f"merge {facts.name} into {s.dev}", steps, heads(s.dev, facts.name),
                summary=[f"{facts.name} is merged into {s.dev} and deleted; it reaches {s.main} with the next `dlgit release`"])


@dataclass(frozen=True)
class HotfixFinish:
    settings: Settings
    name: str
    origin: str | None
    main: str  # main's tip before
    dev: str
    old: str | None  # VERSION on main; None: no bump
    new: str | None


def hotfix_finish(facts: HotfixFinish) -> Flow:
    s = facts.settings
    steps: list[Step] = [Switch(s.main), Merge(facts.name, s.main, f"fix: merge {facts.name}")]
    touches = heads(s.main, s.dev, facts.name)
    if facts.old and facts.new:
        tag = release_tag(facts.new)
        steps += [BumpVersion(s.template_config, facts.old, facts.new, bump_subject(facts.old, facts.new), save="bump"),
                  Tag(tag, "@bump", f"hotfix {facts.new}: {facts.name}")]
        touches.append(f"refs/tags/{tag}")
    steps += [Switch(s.dev), Merge(s.main, s.dev, back_merge_message(s)), DeleteBranch(facts.name),
              *([Switch(facts.origin)] if facts.origin not in (None, facts.name, s.dev) else []),
              Verify([[s.main, facts.main], [s.dev, facts.dev]])]
    version = f", VERSION {facts.new} tagged" if facts.new else ""
    return Flow("hotfix finish", f"merge {facts.name} into {s.main} and {s.dev}", steps, touches,
                summary=[f"{facts.name} is on {s.main} and {s.dev}{version}, and deleted"])
