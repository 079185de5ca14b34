"""The branch model's facts, in one place: what the policy reads is what the flows write.

Kinds and names of branches, which kind may be merged into which, the squash trailer, the
version-bump subject, VERSION in the template config (read and rewritten keeping the file's text),
release tags, task folders, commit-message types and how they bump a version, and ref names.
Plain functions over strings: no git, no I/O. Patterns compile on first use (the `re` cache), so
a hook pays only for those it needs.
"""

from __future__ import annotations

import fnmatch
import re
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

# The rules by their stable ids (dlgit.policy.rules registers one function for each).
RULE_IDS = ("branch-name", "main-protected", "merge-direction", "task-scope", "hotfix-size", "commit-message", "large-file",
            "task-config", "no-debug-on-main", "history-rewrite", "release-tag", "path-names", "settings-file")

# ASCII classes only: `\d` would accept other scripts' digits (`２０２６` is no UTC time).
DIGIT = "[0-9]"
SLUG = r"[A-Za-z0-9._]+(?:-[A-Za-z0-9._]+)*"
SEMVER = r"(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)"
TIME_FORMAT = "%Y%m%dT%H%M%S"
_SLUG_RE = rf"^{SLUG}$"
_RUN_RE = rf"^(?P<version>{SEMVER})-(?P<time>[0-9]{{8}}T[0-9]{{6}})-(?P<desc>{SLUG})$"


class Names(Protocol):
    """What the model reads of the settings: branch names, prefixes and the tasks folder
    (dlgit.config.Settings is one; the model depends on no other module of dlgit)."""

    @property
    def main(self) -> str: ...
    @property
    def dev(self) -> str: ...
    @property
    def feature_prefix(self) -> str: ...
    @property
    def hotfix_prefix(self) -> str: ...
    @property
    def task_prefix(self) -> str: ...
    @property
    def debug_prefix(self) -> str: ...
    @property
    def extra_allowed(self) -> tuple[str, ...]: ...
    @property
    def tasks_dir(self) -> str: ...


# --- branch kinds and names --------------------------------------------------------------------


class Kind(str, Enum):
    MAIN = "main"
    DEV = "dev"
    FEATURE = "feature"
    HOTFIX = "hotfix"
    TASK = "task"
    DEBUG = "debug"
    EXTRA = "extra"  # matches a configured extra pattern
    UNKNOWN = "unknown"


NAME_FORMATS = {
    Kind.FEATURE: "feature-<name>",
    Kind.HOTFIX: "hotfix-<name>",
    Kind.TASK: "task-<X.Y.Z>-<YYYYMMDDTHHMMSS>-<desc>",
    Kind.DEBUG: "debug-<X.Y.Z>-<YYYYMMDDTHHMMSS>-<desc>",
}


class Branch(NamedTuple):
    name: str
    kind: Kind
    version: str | None = None  # task and debug branches
    time: str | None = None
    desc: str | None = None
    problem: str | None = None  # why a name with a known prefix is malformed

    @property
    def valid(self) -> bool:
        return self.kind is not Kind.UNKNOWN


def prefixes(settings: Names) -> dict[Kind, str]:
    return {
        Kind.FEATURE: settings.feature_prefix,
        Kind.HOTFIX: settings.hotfix_prefix,
        Kind.TASK: settings.task_prefix,
        Kind.DEBUG: settings.debug_prefix,
    }


def parse_branch(name: str, settings: Names) -> Branch:
    """A branch name as a Branch of the model (kind UNKNOWN, with the problem, when it is none)."""
    if name == settings.main:
        return Branch(name, Kind.MAIN)
    if name == settings.dev:
        return Branch(name, Kind.DEV)
    for kind, prefix in prefixes(settings).items():
        if name.startswith(prefix):
            branch = _parse_prefixed(name, kind, name[len(prefix):])
            if branch.valid or not _extra(name, settings):
                return branch
    if _extra(name, settings):
        return Branch(name, Kind.EXTRA)
    return Branch(name, Kind.UNKNOWN, problem="matches no branch kind")


def _extra(name: str, settings: Names) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in settings.extra_allowed)


def _parse_prefixed(name: str, kind: Kind, rest: str) -> Branch:
    expected = f"expected {NAME_FORMATS[kind]}"
    if kind in (Kind.FEATURE, Kind.HOTFIX):
        if re.match(_SLUG_RE, rest) and ".." not in rest and not rest.endswith((".", ".lock")):
            return Branch(name, kind, desc=rest)
        return Branch(name, Kind.UNKNOWN, problem=f"{expected} with <name> made of letters, digits, '.', '_' and '-'")
    match = re.match(_RUN_RE, rest)
    if not match:
        return Branch(name, Kind.UNKNOWN, problem=expected)
    from datetime import datetime  # only run branches need it

    try:
        stamp = match["time"]  # YYYYMMDDTHHMMSS; the constructor checks it without strptime's ~5 ms first-call import
        datetime(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]), int(stamp[9:11]), int(stamp[11:13]), int(stamp[13:15]))
    except ValueError:
        return Branch(name, Kind.UNKNOWN, problem=f"{expected}: '{match['time']}' is not a real UTC time")
    if ".." in match["desc"] or match["desc"].endswith((".", ".lock")):
        return Branch(name, Kind.UNKNOWN, problem=f"{expected}: <desc> may not contain '..' or end in '.'/'.lock'")
    return Branch(name, kind, version=match["version"], time=match["time"], desc=match["desc"])


def slugify(text: str) -> str:
    """Turn free text into a <desc> slug: other characters become '-', runs collapse."""
    words = re.split(r"[^A-Za-z0-9._]+", re.sub(r"\.{2,}", ".", text))
    return "-".join(word.strip(".") for word in words if word.strip("."))


def utc_stamp(when: datetime | None = None) -> str:
    from datetime import datetime, timezone

    return (when or datetime.now(timezone.utc)).strftime(TIME_FORMAT)


def run_branch_name(kind: Kind, version: str, desc: str, settings: Names, when: datetime | None = None) -> str:
    """The name of a new task or debug branch, e.g. task-0.1.0-20261128T062233-lr0.01."""
    return f"{prefixes(settings)[kind]}{version}-{utc_stamp(when)}-{desc}"


# --- which merges are allowed: target kind -> source kinds (the README's branch model) -------------

MERGE_SOURCES: dict[Kind, frozenset[Kind]] = {
    Kind.MAIN: frozenset({Kind.DEV, Kind.HOTFIX, Kind.TASK}),
    Kind.DEV: frozenset({Kind.MAIN, Kind.FEATURE, Kind.HOTFIX, Kind.TASK, Kind.EXTRA}),
    Kind.FEATURE: frozenset({Kind.DEV, Kind.FEATURE, Kind.EXTRA}),
    Kind.HOTFIX: frozenset({Kind.MAIN}),
    Kind.TASK: frozenset({Kind.MAIN, Kind.TASK}),
    Kind.DEBUG: frozenset({Kind.MAIN, Kind.DEV, Kind.FEATURE, Kind.HOTFIX}),
    Kind.EXTRA: frozenset({Kind.MAIN, Kind.DEV, Kind.FEATURE, Kind.HOTFIX, Kind.TASK, Kind.EXTRA}),
}
SQUASH_SOURCES_INTO_MAIN = frozenset({Kind.DEV, Kind.HOTFIX})  # the release and hotfix flows squash these


def merge_sources(target: Branch | None) -> frozenset[Kind]:
    return MERGE_SOURCES.get(target.kind, frozenset()) if target else frozenset()


# --- the squash trailer and the version bump ----------------------------------------------------

SQUASH_TRAILER = "Squashed-from"  # the trailer a squash onto main carries: <branch>@<full sha>
_TRAILER_LINE = rf"^{SQUASH_TRAILER}:[ \t]*(\S+)@([0-9a-f]{{40}}|[0-9a-f]{{64}})[ \t]*$"
BUMP_SUBJECT = r"bump: version (\S+) (?:→|->) (\S+)"  # commitizen's, as a prefix


def squash_trailer(branch: str, sha: str) -> str:
    return f"{SQUASH_TRAILER}: {branch}@{sha}"


def parse_squash_trailer(message: str) -> tuple[str, str] | None:
    """(branch, sha) from a `Squashed-from: <branch>@<sha>` trailer in the last paragraph."""
    last = message.strip().split("\n\n")[-1]
    for line in last.splitlines():
        match = re.match(_TRAILER_LINE, line)
        if match:
            return match.group(1), match.group(2)
    return None


def bump_subject(old: str, new: str) -> str:
    """commitizen's subject for a version bump, which dlgit's release writes too."""
    return f"bump: version {old} → {new}"


def parse_bump_subject(subject: str) -> tuple[str, str] | None:
    match = re.match(BUMP_SUBJECT, subject)
    return (match.group(1), match.group(2)) if match else None


# --- VERSION in the template config ------------------------------------------------------------

# A top-level `VERSION: X.Y.Z` line (quoted or not, a comment allowed): the one form dlgit reads
# and rewrites, so that a bump changes that value and nothing else of the file's text.
_VERSION_LINE = rf"""^VERSION:[ \t]*(['"]?)({SEMVER})\1[ \t]*(?:#[^\r\n]*)?\r?$"""


def read_version(text: str | bytes | None) -> str | None:
    """VERSION of a template config's text (the last top-level line, as YAML reads duplicates);
    None when the file is absent or holds no such line."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    found = re.findall(_VERSION_LINE, text, re.M)
    return found[-1][1] if found else None


def rewrite_version(text: str, new: str) -> str:
    """The config's text with VERSION's value replaced by `new`: quotes, comment, line ending and
    every other byte kept. ValueError when there is not exactly one VERSION line."""
    if not re.fullmatch(SEMVER, new):
        raise ValueError(f"'{new}' is not a version X.Y.Z")
    matches = list(re.finditer(_VERSION_LINE, text, re.M))
    if len(matches) != 1:
        raise ValueError(f"expected one top-level 'VERSION: X.Y.Z' line, found {len(matches)}")
    start, end = matches[0].span(2)
    return text[:start] + new + text[end:]


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def version_line_of(line: str) -> str | None:
    """The version a single line sets (`VERSION: 0.2.0  # core`), or None."""
    match = re.match(_VERSION_LINE, line)
    return match.group(2) if match else None


# --- release tags --------------------------------------------------------------------------------

TAG_PREFIX = "v"
_RELEASE_TAG_REF = rf"^refs/tags/{TAG_PREFIX}({SEMVER})$"


def release_tag(version: str) -> str:
    return f"{TAG_PREFIX}{version}"


def tag_version(ref: str) -> str | None:
    """X.Y.Z of a release tag ref (refs/tags/vX.Y.Z), else None."""
    match = re.match(_RELEASE_TAG_REF, ref)
    return match.group(1) if match else None


# --- the tips main and dev have had, as a server records them (dlgit.record) ---------------------

OWN_REFS = "refs/dlgit/"  # dlgit's own refs: the server writes its record here, and no push writes any of them
SERVER_RECORD = "refs/dlgit/server/tips"  # on a server: a commit whose tree holds RECORD_FILE
RECORD_FILE = "tips"  # one `<sha> refs/heads/<branch>` line per tip main or dev has had
FETCHED_RECORDS = "refs/dlgit/remotes/"  # in a clone: where each remote's record is fetched to


def record_refspec(remote: str) -> str:
    """The fetch refspec that brings a server's record into a clone (`dlgit install` adds it)."""
    return f"+refs/dlgit/server/*:{FETCHED_RECORDS}{remote}/*"


# --- commit messages: types, and how they bump the version -----------------------------------------

# The patterns below read one line and stop at its end without `$` (which, inside a whole message,
# would mean the message's end), so that commitizen's schema_pattern is built from the same pieces
# (message_pattern, used by dlgit.cz) as the rule's own checks.
_END_OF_LINE = r"[^\S\n]*(?![^\n])"  # trailing blanks, then the end of the line
GIT_OWN_MESSAGE = (  # the subjects git (and the forges) write themselves, as prefixes
    r"Merge (?:branch|branches|remote-tracking branch|remote-tracking branches|tag|tags|commit|commits|pull request) "
    rf"|Merge \S+(?: into \S+)?{_END_OF_LINE}"
    r"|Merge (?:\.\.?/|/|~|[A-Za-z][A-Za-z0-9+.-]*://|[\w.-]+@[\w.-]+:)"  # `git pull <url>`: "Merge ../other repo into dev"
    r'|Revert "|Reapply "|(?:fixup|squash|amend)! '
)
_SUBJECT_FORM = r"(?P<type>{type})(?:\((?P<scope>[^()\s]+)\))?(?P<bang>!)?: (?P<description>\S[^\n]*)"
_ANY_TYPE = r"[^\s():!]+"  # configured types are narrower (config: letters, digits, '_', '-')


class Subject(NamedTuple):
    type: str
    scope: str | None
    breaking: bool
    description: str


def subject_line(message: str) -> str:
    """The first line of a message: what the commit-message rule judges. A line ends at LF, CRLF
    or a lone CR (as Python's text mode, and so commitizen, reads a message file)."""
    return re.split(r"\r\n?|\n", message.strip(), maxsplit=1)[0]


def parse_subject(subject: str, types: tuple[str, ...]) -> Subject | None:
    """`<type>[(scope)][!]: <subject>` with a known type, else None."""
    match = re.match(_SUBJECT_FORM.format(type=_ANY_TYPE), subject)
    if not match or match["type"] not in types:
        return None
    return Subject(match["type"], match["scope"], bool(match["bang"]), match["description"])


def is_git_own_message(subject: str) -> bool:
    """The messages git writes itself (merges, pulls, reverts, fixup!): allowed off main."""
    return re.match(GIT_OWN_MESSAGE, subject) is not None


def _alternatives(words: tuple[str, ...]) -> str:
    return "|".join(re.escape(word) for word in words)


def message_pattern(types: tuple[str, ...]) -> str:
    """A regex that a whole message (stripped, comment lines gone) matches exactly when the
    commit-message rule accepts it off main, given that a `bump:` subject comes with a real bump:
    its first line a conventional subject, one of git's own or a bump subject, anything below.
    commitizen's schema_pattern (dlgit.cz); an empty message matches too."""
    subject = _SUBJECT_FORM.format(type=_alternatives(types))
    return rf"(?s)(?:(?:{subject}|(?:{GIT_OWN_MESSAGE}|{BUMP_SUBJECT})[^\n]*)(?:\n.*)?)?\Z"


class Bump(int, Enum):
    NONE = 0
    PATCH = 1
    MINOR = 2
    MAJOR = 3


NO_BUMP_TYPES = ("task",)  # task runs and their merges change no core code


def bump_pattern(types: tuple[str, ...]) -> str:
    """commitizen's bump_pattern, searched in every line: a conventional subject of a known type or
    a BREAKING CHANGE footer; group 1 (`feat(data)!`, `BREAKING CHANGE`) is what BUMP_RULES read."""
    return rf"^(BREAKING[ -]CHANGE(?=:)|(?:{_alternatives(types)})(?:\([^()\s]+\))?!?(?=: \S))"


# commitizen's bump_map: the first rule whose regex matches group 1 of bump_pattern decides.
BUMP_RULES: tuple[tuple[str, Bump], ...] = (
    *((rf"^{re.escape(kind)}(?![\w-])", Bump.NONE) for kind in NO_BUMP_TYPES),  # before `!`: a task never bumps
    (r"^BREAKING[ -]CHANGE", Bump.MAJOR),
    (r"^.*!$", Bump.MAJOR),
    (r"^feat(?![\w-])", Bump.MINOR),
    (r"^", Bump.PATCH),  # every other known type
)


def below_one(bump: Bump) -> Bump:
    """Below 1.0 a breaking change bumps the minor version (semver's 0.y.z)."""
    return Bump.MINOR if bump is Bump.MAJOR else bump


def _log_lines(message: str) -> list[str]:
    """The lines commitizen's bump reads of a commit: git's subject (`%s`: the first paragraph on
    one line) and the body (`%b`), each stripped as commitizen strips them."""
    lines = message.strip().split("\n")
    end = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
    title = " ".join(line.rstrip() for line in lines[:end]).strip()
    body = "\n".join(lines[end:]).strip()
    return f"{title}\n\n{body}".strip().split("\n")


def _bumping(message: str, types: tuple[str, ...]) -> list[tuple[str, str]]:
    """(line, what bump_pattern found in it) for each line of a message that commitizen's bump
    reads as a type or a BREAKING CHANGE footer."""
    pattern = bump_pattern(types)
    return [(line, match.group(1)) for line in _log_lines(message) if (match := re.search(pattern, line))]


def squash_lines(message: str, types: tuple[str, ...]) -> list[str]:
    """What a release squash lists of a squashed commit: its subject, then its other lines that bump
    (so that the squash bumps, line by line, as the commits it holds)."""
    subject = _log_lines(message)[0]
    return [subject, *(line for line, _ in _bumping(message, types) if line != subject)]


def message_bump(message: str, types: tuple[str, ...]) -> Bump:
    """How one commit message bumps the core version: its strongest line, where a line is a
    conventional subject of a known type (`!` → major, feat → minor, task → none, every other type →
    patch) or a BREAKING CHANGE footer (major); other lines (git's merges, bumps) → none. Line by
    line, as commitizen reads bump_pattern and BUMP_RULES, so `cz bump` agrees."""
    return max((next(bump for regex, bump in BUMP_RULES if re.match(regex, token)) for _, token in _bumping(message, types)),
               default=Bump.NONE)


def release_bump(messages: Iterable[str], types: tuple[str, ...]) -> Bump:
    """The bump of a release: the strongest of its commits' messages (those since the last release
    tag, every parent's side, as `git log vX.Y.Z..HEAD` lists them and `cz bump` reads them)."""
    return max((message_bump(message, types) for message in messages), default=Bump.NONE)


def release_version(current: str, messages: Iterable[str], types: tuple[str, ...]) -> str | None:
    """The next version after `current` for the messages since the last release; None when none of
    them bumps (as `cz bump` refuses: "not eligible to be bumped")."""
    bump = release_bump(messages, types)
    return None if bump is Bump.NONE else next_version(current, bump)


def next_version(current: str, bump: Bump, major_zero: bool = True) -> str:
    """The version after `bump`; with `major_zero`, below 1.0 a breaking change bumps the minor
    (semver's 0.y.z; commitizen's major_version_zero)."""
    major, minor, patch = version_key(current)
    if major == 0 and major_zero:
        bump = below_one(bump)
    if bump is Bump.MAJOR:
        return f"{major + 1}.0.0"
    if bump is Bump.MINOR:
        return f"{major}.{minor + 1}.0"
    if bump is Bump.PATCH:
        return f"{major}.{minor}.{patch + 1}"
    return current


# --- task folders, refs and object ids -----------------------------------------------------------


def task_folder(branch: str, settings: Names) -> str:
    """tasks/<branch>: the folder a task or debug branch owns."""
    return f"{settings.tasks_dir}/{branch}"


def is_task_config(path: str, settings: Names) -> bool:
    """tasks/<folder>/config.yaml (any task folder, the template included)."""
    folder, _, rest = path.partition("/")
    return folder == settings.tasks_dir and rest.count("/") == 1 and rest.endswith("/config.yaml")


ZERO_IDS = frozenset({"0" * 40, "0" * 64})  # the id git gives a ref that does not exist


def is_zero(sha: str) -> bool:
    return sha in ZERO_IDS


def short_branch(ref: str) -> str | None:
    """refs/heads/x and refs/remotes/<remote>/x -> x; None for other refs."""
    if ref.startswith("refs/heads/"):
        return ref[len("refs/heads/"):]
    if ref.startswith("refs/remotes/"):
        return ref[len("refs/remotes/"):].partition("/")[2] or None
    return None


def short_ref(ref: str) -> str:
    """refs/heads/x -> x, refs/remotes/origin/x -> origin/x; other refs unchanged."""
    for prefix in ("refs/heads/", "refs/remotes/"):
        if ref.startswith(prefix):
            return ref[len(prefix):]
    return ref
