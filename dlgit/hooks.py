"""Each git hook: gather facts, run the policy, print, return an exit code.

This module sits on every commit's path: it imports only the standard library and dlgit's own
light modules (no GitPython, no commitizen; PyYAML only when a YAML file is involved).
"""

from __future__ import annotations

import sys
from pathlib import Path

from dlgit import config, facts, git, report
from dlgit.model import Kind
from dlgit.policy import CONTENT_RULES, MESSAGE_RULES, evaluate
from dlgit.policy.model import Change

ALLOWED, BLOCKED = 0, 1
SCISSORS = " ------------------------ >8 ------------------------"


def _skip_notice(git_dir: Path) -> str | None:
    if facts.rebase_in_progress(git_dir):
        return "dlgit: rebase in progress; commit checks skipped (run `dlgit check` after the rebase)."
    return None


def _judge(what: str, change: Change, settings: config.Settings, rule_ids: tuple[str, ...]) -> int:
    violations = evaluate(change, settings, rule_ids)
    if not violations:
        return ALLOWED
    report.emit(report.format_blocked(what, change.branch, violations, report.use_color(sys.stderr)))
    return BLOCKED


def _repository() -> tuple[git.RepoInfo, config.Settings] | None:
    """The repository and its settings, or None (after saying why) when the hook stands aside."""
    info = git.repo_info()
    notice = _skip_notice(info.git_dir)
    if notice:
        report.emit(notice)
        return None
    return info, config.load(info.toplevel, config.settings_cache(info.git_dir))


def pre_commit() -> int:
    """pre-commit and pre-merge-commit: judge the staged result (and the merge being made)."""
    found = _repository()
    if found is None:
        return ALLOWED
    info, settings = found
    change = facts.gather(info, settings, facts.current_branch(info, settings))
    if change.branch is None:  # said once per commit, here rather than again at commit-msg
        report.emit("dlgit: detached HEAD; branch rules skipped, content and message rules applied.")
    what = "merge" if change.merge and not change.merge.squash else "commit"
    return _judge(what, change, settings, CONTENT_RULES)


def commit_msg(message_file: str | None) -> int:
    found = _repository()
    if found is None:
        return ALLOWED
    info, settings = found
    path = Path(message_file) if message_file else info.git_dir / "COMMIT_EDITMSG"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise config.UsageError(f"cannot read the commit message file {path}: {exc.strerror}.") from None
    message = stored_message(raw.decode("utf-8", "replace"))
    branch = facts.current_branch(info, settings)
    # The content matters to the message rules only on main (squash trailer) and for a bump.
    needs_content = (branch is not None and branch.kind is Kind.MAIN) or message.startswith("bump:")
    change = facts.gather(info, settings, branch, message) if needs_content else Change(branch, message=message)
    return _judge("commit message", change, settings, MESSAGE_RULES)


def stored_message(text: str) -> str:
    """The message as git will store it. Lines that may be comments exist only in an edited
    message; without them (`git commit -m "feat: x"`) there is nothing to ask git about."""
    if all(line[:1].isalnum() or not line.strip() for line in text.splitlines()):
        return text.strip()
    git_message = git.message_settings()
    if facts.message_keeps_comments(git_message.cleanup):
        return text.strip()
    return clean_message(text, git_message.comment)


AUTO_COMMENT_CHARS = "#;@!$%^&|:"  # git's candidates for core.commentChar=auto, in its order


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
