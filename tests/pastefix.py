"""A printed fix is a promise: every blocked commit or merge the tests make (`assert_blocked`) is
replayed in a copy of its repository, the first fix line dlgit printed for the rule is pasted into
bash there, and then the blocked git command is run again. The fix must run (exit 0), lose nothing
(every object and file content held before is still held: in a commit, the reflog, the stash, the
index or the work tree) and clear the rule: the command is no longer blocked by it, or the fix
itself ran that git command again (and succeeded). A fix line that is a `# comment` is an
instruction for a person and is not replayed.

`replay` says what the blocked action allows: "retry" (the above), "undo" (the action can never
be allowed, e.g. merging a debug branch: the fix must run and lose nothing), "lossy" (the fix
must run; it may drop what only the refused action held, e.g. a conflict resolution of a merge
that may not happen)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path


def first_fix(stderr: str, rule: str) -> str | None:
    """The first fix line printed under the violation of `rule`."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"✗ {rule}:")), None)
    if start is None:
        return None
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("✗ "):
            return None
        if lines[i].strip() == "fix:" and i + 1 < len(lines):
            return lines[i + 1].strip()
    return None


def _git(path: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, errors="surrogateescape", input=stdin,
                          check=False).stdout


def _blob_id(data: bytes, sha256: bool) -> str:
    header = b"blob %d\0" % len(data)
    return (hashlib.sha256 if sha256 else hashlib.sha1)(header + data).hexdigest()


def held(path: Path) -> set[str]:
    """Every object id the repository holds anywhere a user can get it back from."""
    objects = {line.split()[0] for line in _git(path, "rev-list", "--all", "--reflog", "--objects").splitlines() if line}
    objects |= {line.split()[1] for line in _git(path, "ls-files", "-s").splitlines() if line}
    files = [name for name in _git(path, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
             if name and (path / name).is_file() and not (path / name).is_symlink()]
    sha256 = _git(path, "rev-parse", "--show-object-format").strip() == "sha256"
    return objects | {_blob_id((path / name).read_bytes(), sha256) for name in files}


def replay(proc: subprocess.CompletedProcess[str], rule: str, repo_path: Path, mode: str = "retry") -> None:
    fix = first_fix(proc.stderr, rule)
    assert fix is not None, f"no fix printed for {rule}:\n{proc.stderr}"
    if fix.startswith("#") or _git(repo_path, "worktree", "list", "--porcelain").count("worktree ") > 1:
        return  # an instruction for a person; or work trees elsewhere, which a copy does not take along
    with tempfile.TemporaryDirectory(prefix="pastefix-") as tmp:
        twin = Path(tmp) / repo_path.name
        shutil.copytree(repo_path, twin, symlinks=True)
        _git(twin, "update-index", "-q", "--refresh")  # the copy's files have new stat data, not new content
        before = held(twin)
        pasted = subprocess.run(["bash", "-c", fix], cwd=twin, capture_output=True, text=True, errors="replace", env=os.environ,
                                check=False)
        assert pasted.returncode == 0, f"the printed fix fails when pasted:\n$ {fix}\n{pasted.stdout}{pasted.stderr}"
        lost = before - held(twin)
        assert mode == "lossy" or not lost, f"the printed fix loses {len(lost)} object(s):\n$ {fix}"
        if mode != "retry" or re.search(rf"(^|&& )git {re.escape(proc.args[1])}\b", fix):
            return  # the action is never allowed, or the fix did it again itself
        again = subprocess.run(proc.args, cwd=twin, capture_output=True, text=True, errors="replace", env=os.environ, check=False)
        assert f"✗ {rule}:" not in again.stderr, f"after the printed fix, {' '.join(proc.args)} is still blocked:\n$ {fix}\n{again.stderr}"
