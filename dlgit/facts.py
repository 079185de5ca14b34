"""Gather the facts about the commit being made (index, HEAD, merge/squash state) from git.

Only git plumbing, each a single process; the policy never sees git.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dlgit import branches, git
from dlgit.branches import Branch, Kind
from dlgit.config import Settings
from dlgit.policy import Change, Entry, Merge
from dlgit.policy.rules import MERGE_SOURCES, SQUASH_SOURCES_INTO_MAIN

_TASK_CONFIG = re.compile(r"^[^/]+/[^/]+/config\.yaml$")


def rebase_in_progress(git_dir: Path) -> bool:
    return (git_dir / "rebase-merge").exists() or (git_dir / "rebase-apply").exists()


def amending() -> bool:
    """Is an ancestor process `git commit --amend`? (git tells hooks no other way; Linux only.)"""
    pid = os.getppid()
    for _ in range(6):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            status = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        if os.path.basename(argv[0]) in (b"git", b"git.exe") and b"commit" in argv:
            return b"--amend" in argv
        pid = int(status.rsplit(")", 1)[1].split()[1])
        if pid <= 1:
            return False
    return False


def resolve_source(name: str, settings: Settings, cwd: Path | None = None) -> Branch:
    """A branch named in a merge (local, `origin/x`, `refs/heads/x`) as a Branch of the model."""
    for prefix in ("refs/heads/", "refs/remotes/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            if prefix == "refs/remotes/":
                name = name.split("/", 1)[-1]
            return branches.parse(name, settings)
    if "/" in name and git.rev(f"refs/remotes/{name}", cwd) and not git.rev(f"refs/heads/{name}", cwd):
        name = name.split("/", 1)[1]
    return branches.parse(name, settings)


def _source_for_sha(sha: str, preferred: frozenset[Kind], settings: Settings, cwd: Path | None) -> Branch | None:
    """The branch that holds `sha`: one pointing at it, else one containing it; preferring kinds
    that may be merged here so that a tip shared by two branches is read generously."""
    for candidates in (git.branches_at(sha, cwd), git.branches_containing(sha, cwd)):
        found = [resolve_source(name, settings, cwd) for name in candidates]
        found = [b for b in found if b.kind is not Kind.MAIN or b.name != settings.main] or found
        if found:
            return next((b for b in found if b.kind in preferred), found[0])
    return None


_QUOTED = re.compile(r"'([^']+)'")


def _merge_in_progress(git_dir: Path, target: Branch | None, settings: Settings, cwd: Path | None) -> Merge | None:
    """MERGE_HEAD (a conflicted merge being concluded), a clean merge at pre-merge-commit
    (GIT_REFLOG_ACTION), or SQUASH_MSG (merge --squash)."""
    preferred = MERGE_SOURCES.get(target.kind, frozenset()) if target else frozenset()
    merge_head = git_dir / "MERGE_HEAD"
    if merge_head.exists():
        sha = merge_head.read_text().split()[0]
        names = _QUOTED.findall(_first_line(git_dir / "MERGE_MSG"))
        return Merge(_pick(names, sha, preferred, settings, cwd), sha)
    action = os.environ.get("GIT_REFLOG_ACTION", "")
    words = action.split()
    if words and words[0] == "merge":
        names = [w for w in words[1:] if not w.startswith("-")]
        sha = git.rev(names[-1], cwd) if names else None
        return Merge(_pick(names[-1:], sha, preferred, settings, cwd), sha) if sha else None
    squash_msg = git_dir / "SQUASH_MSG"
    if squash_msg.exists():
        match = re.search(r"^commit ([0-9a-f]{40,64})$", squash_msg.read_text(errors="replace"), re.M)
        if match:
            into_main = target is not None and target.kind is Kind.MAIN
            source = _source_for_sha(match.group(1), SQUASH_SOURCES_INTO_MAIN if into_main else preferred, settings, cwd)
            return Merge(source, match.group(1), squash=True)
    return None


def _pick(names: list[str], sha: str | None, preferred: frozenset[Kind], settings: Settings, cwd: Path | None) -> Branch | None:
    """The source branch: the name git recorded when it is one, else whoever holds the sha."""
    for name in names:
        if git.rev(name, cwd) == sha or git.rev(f"refs/remotes/{name}", cwd) == sha:
            return resolve_source(name, settings, cwd)
    return _source_for_sha(sha, preferred, settings, cwd) if sha else None


def _first_line(path: Path) -> str:
    try:
        return path.read_text(errors="replace").partition("\n")[0]
    except OSError:
        return ""


def gather(git_dir: Path, settings: Settings, message: str | None = None, cwd: Path | None = None) -> Change:
    """Facts about the commit `git commit` (or `git merge`) is about to make."""
    name = git.current_branch(cwd)
    branch = branches.parse(name, settings) if name else None
    head = git.rev("HEAD", cwd)
    base = head
    if head and amending():
        base = git.rev("HEAD^1", cwd)  # the amended commit replaces HEAD
    raw = git.staged_entries(base, cwd)
    sizes = git.object_sizes((e.new_blob for e in raw if e.new_blob), cwd)
    entries = tuple(Entry(e.status, e.path, e.old_path, sizes.get(e.new_blob) if e.new_blob else None) for e in raw)
    config_blobs = {e.path: e.new_blob for e in raw if e.new_blob and _TASK_CONFIG.match(e.path) and e.path.startswith(settings.tasks_dir + "/")}
    contents = git.read_blobs(list(config_blobs.values()), cwd)
    before = git.show_file(base, settings.template_config, cwd) if base and settings.template_config in config_blobs else None
    return Change(
        branch=branch,
        entries=entries,
        merge=_merge_in_progress(git_dir, branch, settings, cwd),
        is_root=base is None,
        message=message,
        configs=tuple((path, contents.get(blob, b"")) for path, blob in config_blobs.items()),
        template_config_before=before,
        hotfix_diff=_hotfix_diff(branch, settings, cwd),
    )


def _hotfix_diff(branch: Branch | None, settings: Settings, cwd: Path | None) -> tuple[tuple[str, int], ...] | None:
    if branch is None or branch.kind is not Kind.HOTFIX or not git.rev("HEAD", cwd):
        return None
    fork = git.merge_base(settings.main, "HEAD", cwd)
    if fork is None:
        return None
    return tuple((path, added + deleted) for path, (added, deleted) in git.numstat(fork, cwd=cwd).items())
