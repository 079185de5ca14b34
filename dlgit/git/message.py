"""A commit message as git will store it: comment lines and everything below the scissors line
removed, as `commit.cleanup`, `core.commentChar` / `core.commentString` and the options of the
running `git commit` decide."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlgit.git.ancestry import message_keeps_comments

if TYPE_CHECKING:
    from dlgit.git.repo import Git

SCISSORS = " ------------------------ >8 ------------------------"
AUTO_COMMENT_CHARS = "#;@!$%^&|:"  # git's candidates for core.commentChar=auto, in its order


def stored_message(text: str, repo: Git) -> str:
    """The message as git will store it. Lines that may be comments exist only in an edited
    message; without them (`git commit -m "feat: x"`) there is nothing to ask git about."""
    if all(line[:1].isalnum() or not line.strip() for line in text.splitlines()):
        return text.strip()
    settings = repo.message_settings()
    if message_keeps_comments(settings.cleanup):
        return text.strip()
    return clean_message(text, settings.comment)


def clean_message(text: str, comment_char: str = "#") -> str:
    """The message as git will store it: comments and everything below the scissors line gone."""
    lines = text.splitlines()
    if comment_char == "auto":
        comment_char = _auto_comment_char(lines)
    kept = []
    for line in lines:
        if line == comment_char + SCISSORS:
            break
        if not line.startswith(comment_char):
            kept.append(line.rstrip())
    return "\n".join(kept).strip()


def _auto_comment_char(lines: list[str]) -> str:
    """The character git picked for core.commentChar=auto: the one of its scissors line, else the
    one starting the last line (git's status template ends the file), else '#'."""
    for line in lines:
        if line[:1] in AUTO_COMMENT_CHARS and line[1:] == SCISSORS:
            return line[0]
    last = next((line for line in reversed(lines) if line.strip()), "")
    return last[0] if last[:1] in AUTO_COMMENT_CHARS and last[1:2] in ("", " ", "\t") else "#"
