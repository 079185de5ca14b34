"""Each git hook: gather facts, run the policy, print, return an exit code.

This module sits on every commit's path: it imports only the standard library and dlgit's own
light modules (no GitPython, no commitizen; PyYAML only when a YAML file is involved).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dlgit import config, facts, report
from dlgit.errors import UsageError
from dlgit.git import Git, InProgress
from dlgit.git.message import stored_message
from dlgit.model import SQUASH_SOURCES_INTO_MAIN, SQUASH_TRAILER, Kind, squash_trailer
from dlgit.policy import CONTENT_RULES, MESSAGE_RULES, RULES, evaluate
from dlgit.policy.change import Change

ALLOWED, BLOCKED = 0, 1


def _judge(what: str, change: Change, settings: config.Settings, rule_ids: tuple[str, ...]) -> int:
    violations = evaluate(change, settings, rule_ids)
    if not violations:
        return ALLOWED
    report.emit(report.format_blocked(what, change.branch, violations, report.use_color(sys.stderr)))
    return BLOCKED


def _repository() -> tuple[Git, config.Settings] | None:
    """The repository and the settings committed in HEAD (never a .dlgit.yaml staged with the commit
    being judged), or None (after saying why) when the hook stands aside."""
    repo = Git.open()
    if repo.in_progress() is InProgress.REBASE:
        report.emit("dlgit: rebase in progress; commit checks skipped (run `dlgit check` after the rebase).")
        return None
    try:
        settings = config.load_committed(repo.info.settings_blob, repo.read_blob, config.settings_cache(repo.git_dir))
    except UsageError as exc:
        if repo.info.head is None or not repo.index_changes(repo.info.head, config.CONFIG_FILE):
            raise UsageError(f"{exc}\nThen commit the mended file (or `git rm {config.CONFIG_FILE}`): that commit is judged by "
                             "the default settings.") from None
        report.emit(f"dlgit: {config.CONFIG_FILE} in HEAD is broken and this commit changes it: judged by the default settings.")
        settings = config.Settings()
    return repo, settings


def pre_commit() -> int:
    """pre-commit and pre-merge-commit: judge the staged result (and the merge being made). With no
    commit or merge being made and nothing staged (`pre-commit run --all-files` in CI), nothing."""
    found = _repository()
    if found is None:
        return ALLOWED
    repo, settings = found
    change = facts.gather(repo, settings, facts.current_branch(repo, settings))
    if not change.entries and change.merge is None and not _committing():
        report.emit("dlgit: no commit or merge is being made and nothing is staged (`pre-commit run`, or a hook run by hand): "
                    "nothing to judge.")
        return ALLOWED
    if change.branch is None:  # said once per commit, here rather than again at commit-msg
        report.emit("dlgit: detached HEAD; branch rules skipped, content and message rules applied.")
    what = "merge" if change.merge and not change.merge.squash else "commit"
    return _judge(what, change, settings, CONTENT_RULES)


def _committing() -> bool:
    """Is git making a commit or merge? git exports GIT_INDEX_FILE to the hooks of every commit and
    merge, and runs them; `pre-commit run --all-files` in a shell or CI does neither."""
    from dlgit.git import ancestry

    return "GIT_INDEX_FILE" in os.environ or ancestry.under_git()


def _git_refuses_empty() -> bool:
    from dlgit.git import ancestry

    return ancestry.git_options() is not None and not ancestry.allows_empty_message()


def commit_msg(message_file: str | None) -> int:
    found = _repository()
    if found is None:
        return ALLOWED
    repo, settings = found
    path = Path(message_file) if message_file else repo.git_dir / "COMMIT_EDITMSG"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the commit message file {path}: {exc.strerror}.") from None
    message = stored_message(raw.decode("utf-8", "replace"), repo)
    if not message and _git_refuses_empty():
        return ALLOWED  # git aborts the commit itself ("Aborting commit due to empty commit message")
    branch = facts.current_branch(repo, settings)
    needs_content = any(RULES[rule_id].wants_content(branch, message) for rule_id in MESSAGE_RULES)
    change = facts.gather(repo, settings, branch, message) if needs_content else Change(branch, message=message)
    if _add_squash_trailer(repo, path, change):
        message = stored_message(path.read_bytes().decode("utf-8", "replace"), repo)
        change = change._replace(message=message)
    return _judge("commit message", change, settings, MESSAGE_RULES)


def _add_squash_trailer(repo: Git, path: Path, change: Change) -> bool:
    """The seed's `git merge --squash dev` + `git commit -m 'feat: ...'` on main: add the
    `Squashed-from: <branch>@<sha>` trailer that only dlgit knows to the message file, from git's own
    squash state (SQUASH_MSG lists the squashed commits; the source is the branch that owns the
    first). Only to a message without one: a trailer the user wrote is judged as written."""
    merge, message = change.merge, change.message or ""
    if (change.branch is None or change.branch.kind is not Kind.MAIN or merge is None or not merge.squash or change.amending
            or repo.in_progress() is not InProgress.SQUASH or merge.source is None or not merge.sha
            or merge.source.kind not in SQUASH_SOURCES_INTO_MAIN or f"{SQUASH_TRAILER}:" in message or not message.strip()):
        return False
    trailer = squash_trailer(merge.source.name, merge.sha)
    proc = repo.run("interpret-trailers", "--in-place", "--trailer", trailer, str(path), check=False)
    if proc.returncode != 0:
        return False
    report.emit(f"dlgit: added the trailer '{trailer}' to the squash's message (from git's squash state).")
    return True
