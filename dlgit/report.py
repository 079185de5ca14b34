"""Turn violations into the text a person reads when a commit is blocked. Every value that comes
from the judged content (subjects, paths, branch names) passes through `printable` first: nothing
that reaches a terminal (pre-receive relays it to the pusher) can carry an escape sequence."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

from dlgit.model import Branch
from dlgit.policy import Violation
from dlgit.shell import escape, is_plain, printable

_CODES = {"red": "31", "yellow": "33", "bold": "1", "dim": "2", "green": "32"}


def use_color(stream: TextIO) -> bool:
    """As CPython decides (_colorize.can_colorize): a non-empty NO_COLOR turns colour off
    (no-color.org), then a non-empty FORCE_COLOR turns it on even without a terminal (CI logs),
    then TERM=dumb turns it off; else colour on a terminal only."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return os.environ.get("TERM") != "dumb" and stream.isatty()


def paint(text: str, style: str, color: bool) -> str:
    return f"\033[{_CODES[style]}m{text}\033[0m" if color else text


def describe_branch(branch: Branch | None) -> str:
    return "a detached HEAD (no branch)" if branch is None else f"branch '{printable(branch.name)}' (kind: {branch.kind.value})"


def format_violation(violation: Violation, color: bool) -> list[str]:
    lines = [
        paint(f"✗ {violation.rule}", "red", color) + f": {violation.statement}",
        f"    {printable(violation.detail)}",
    ]
    lines += [f"      - {item}" if is_plain(item) else f"      - '{escape(item)}'" for item in violation.items]
    lines.append(paint("    why: ", "bold", color) + printable(violation.why))
    if violation.fix:
        lines.append(paint("    fix:", "bold", color))
        lines += [f"      {printable(command)}" for command in violation.fix]  # a newline in a value must not start a command
    return lines


def format_blocked(what: str, branch: Branch | None, violations: Sequence[Violation], color: bool) -> str:
    header = paint(f"dlgit: {what} blocked", "bold", color) + f" on {describe_branch(branch)}"
    body = [line for violation in violations for line in ["", *format_violation(violation, color)]]
    ids = sorted({v.rule for v in violations})
    footer = [
        "",
        f"{len(violations)} violation(s). More about a rule: dlgit explain {ids[0]}",
        "Skipping the hook (git commit --no-verify) does not help: `dlgit check` and the pre-push hook verify history too.",
    ]
    return "\n".join([header, *body, *footer])


def emit(text: str, stream: TextIO | None = None) -> None:
    print(text, file=stream or sys.stderr)
