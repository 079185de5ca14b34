"""Branch kinds of the model: parse a name into a Branch, format the names dlgit creates."""

from __future__ import annotations

import fnmatch
import re
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

from dlgit.config import Settings

if TYPE_CHECKING:
    from datetime import datetime

SLUG = r"[A-Za-z0-9._]+(?:-[A-Za-z0-9._]+)*"
SEMVER = r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"
TIME_FORMAT = "%Y%m%dT%H%M%S"
_SLUG_RE = rf"^{SLUG}$"  # compiled on first use: a hook pays only for the patterns it needs
_RUN_RE = rf"^(?P<version>{SEMVER})-(?P<time>\d{{8}}T\d{{6}})-(?P<desc>{SLUG})$"


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


def _prefixes(settings: Settings) -> dict[Kind, str]:
    return {
        Kind.FEATURE: settings.feature_prefix,
        Kind.HOTFIX: settings.hotfix_prefix,
        Kind.TASK: settings.task_prefix,
        Kind.DEBUG: settings.debug_prefix,
    }


def parse(name: str, settings: Settings) -> Branch:
    if name == settings.main:
        return Branch(name, Kind.MAIN)
    if name == settings.dev:
        return Branch(name, Kind.DEV)
    for kind, prefix in _prefixes(settings).items():
        if name.startswith(prefix):
            branch = _parse_prefixed(name, kind, name[len(prefix):])
            if branch.valid or not _extra(name, settings):
                return branch
    if _extra(name, settings):
        return Branch(name, Kind.EXTRA)
    return Branch(name, Kind.UNKNOWN, problem="matches no branch kind")


def _extra(name: str, settings: Settings) -> bool:
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
    words = re.split(r"[^A-Za-z0-9._]+", text)
    return "-".join(word.strip(".") for word in words if word.strip("."))


def run_branch_name(kind: Kind, version: str, desc: str, settings: Settings, when: datetime | None = None) -> str:
    """The name of a new task or debug branch, e.g. task-0.1.0-20261128T062233-lr0.01."""
    from datetime import datetime, timezone

    stamp = (when or datetime.now(timezone.utc)).strftime(TIME_FORMAT)
    return f"{_prefixes(settings)[kind]}{version}-{stamp}-{desc}"
