"""What a git killed in the middle of a write leaves behind, found before `dlgit continue` and
`dlgit abort` move anything: a git still at work in the work tree (wait for it), the lock files of
a dead git (the one command that removes them), and a half-written work tree (files git wrote from
a commit before it died: taken away again, since that commit holds every one of them).

A file counts as git's leftover only when its content is, byte for byte, what one of the flow's
own commits or merge results holds at that path; anything else in the work tree is the user's and
stays untouched."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from dlgit.errors import UsageError
from dlgit.git import Git
from dlgit.git.parse import fsdecode
from dlgit.shell import quote


def running_git(root: Path) -> list[tuple[int, str]]:
    """git processes working in `root` now (git moves to the top of its work tree as it starts);
    Linux's /proc; elsewhere none are found."""
    found = []
    proc = Path("/proc")
    root = root.resolve()
    for entry in proc.glob("[0-9]*") if proc.is_dir() else []:
        try:
            if (entry / "comm").read_text().strip() != "git" or Path(os.readlink(entry / "cwd")).resolve() != root:
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue  # it ended meanwhile, or is not ours to read
        found.append((int(entry.name), command))
    return found


def lock_files(repo: Git) -> list[Path]:
    """Lock files git takes while it writes: the index, HEAD, refs, packed-refs, the config."""
    places = {repo.git_dir, repo.common_dir}
    found = [place / name for place in places for name in ("index.lock", "HEAD.lock", "packed-refs.lock", "config.lock")]
    found = [path for path in found if path.exists()]
    refs = repo.common_dir / "refs"
    found += sorted(refs.rglob("*.lock")) if refs.is_dir() else []
    return found


def refuse_if_busy(repo: Git) -> None:
    """A git still working here: wait; a dead git's locks: the command that removes them."""
    assert repo.root is not None
    busy = running_git(repo.root)
    if busy:
        pid, command = busy[0]
        raise UsageError(f"a git process is still at work in {repo.root} (pid {pid}: {command[:120]}); "
                         "wait for it to end, then run this again.")
    locks = lock_files(repo)
    if locks:
        raise UsageError("a git process was stopped in the middle of a write and left its lock file(s); no git is running "
                         "here now, so they are stale. Remove them, then run this again:\n"
                         f"  rm -f {' '.join(quote(str(path)) for path in locks)}")


def clean_half_written(repo: Git, sources: Iterable[str], out: TextIO, user_changes: bool = False) -> int:
    """Take back what a killed `git switch`/`merge` wrote into the work tree: untracked files and
    changes of tracked files whose content one of `sources` (commits or trees) holds at that path
    go, and so do files git was still writing (their content the start of such a blob: untracked
    ones only when the flow kept `user_changes` of its own); a deleted tracked file comes back from
    the index. Returns how many paths were cleaned."""
    status = _status(repo)
    if not status:
        return 0
    assert repo.root is not None
    deleted = [path for path, code in status if code == "D"]
    candidates = [path for path, code in status if code in ("M", "?") and (repo.root / path).is_file()
                  and not (repo.root / path).is_symlink()]
    known = _blobs(repo, sources)
    hashes = _hashes(repo, candidates)
    leftover = [path for path in candidates if hashes.get(path) in known.get(path, ())]
    untracked = {path for path, code in status if code == "?"}
    leftover += _cut_short(repo, [path for path in candidates if path not in leftover and path in known
                                  and (path in untracked or not user_changes)], known)
    for path in leftover:
        if path in untracked:
            (repo.root / path).unlink()
    restore = deleted + [path for path in leftover if path not in untracked]
    if restore:
        repo.run("checkout", "--pathspec-from-file=-", "--pathspec-file-nul", "--", stdin=b"\0".join(p.encode() for p in restore))
    cleaned = len(leftover) + len(deleted)
    if cleaned:
        print(f"dlgit: took back {cleaned} file(s) a git stopped mid-write had left in the work tree "
              "(each is in one of the flow's commits)", file=out, flush=True)
    return cleaned


MAX_CUT_SHORT = 64  # files git was writing when it died (parallel checkout writes a few at once)


def _cut_short(repo: Git, paths: list[str], known: dict[str, set[str]]) -> list[str]:
    """Files git was writing when it was killed: their content is the beginning of a blob the
    sources hold at that path (empty included)."""
    assert repo.root is not None
    if not paths or len(paths) > MAX_CUT_SHORT:
        return []
    blobs = repo.read_blobs(sorted({sha for path in paths for sha in known[path]}))
    found = []
    for path in paths:
        data = (repo.root / path).read_bytes()
        if any(blobs.get(sha, b"").startswith(data) for sha in known[path]):
            found.append(path)
    return found


def _status(repo: Git) -> list[tuple[str, str]]:
    """(path, M|D|?) of the work tree against the index (unstaged changes and untracked files)."""
    data = repo.run("status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames").stdout
    found = []
    for field in data.split(b"\0"):
        if len(field) < 4:
            continue
        work = "?" if field[:2] == b"??" else chr(field[1])
        if work in ("M", "D", "?"):
            found.append((fsdecode(field[3:]), work))
    return found


def _blobs(repo: Git, sources: Iterable[str]) -> dict[str, set[str]]:
    """path -> the blob ids the sources hold there."""
    found: dict[str, set[str]] = {}
    for source in dict.fromkeys(sources):
        proc = repo.run("ls-tree", "-r", "-z", "--full-tree", source, check=False)
        for line in proc.stdout.split(b"\0") if proc.returncode == 0 else []:
            if b"\t" in line:
                meta, path = line.split(b"\t", 1)
                found.setdefault(fsdecode(path), set()).add(meta.split()[2].decode())
    return found


def _hashes(repo: Git, paths: list[str]) -> dict[str, str]:
    if not paths:
        return {}
    proc = repo.run("hash-object", "--stdin-paths", stdin="".join(f"{path}\n" for path in paths).encode(), check=False)
    ids = proc.stdout.decode().split() if proc.returncode == 0 else []
    return dict(zip(paths, ids, strict=True)) if len(ids) == len(paths) else {}


def blocking_hint(said: str) -> str:
    """When git refused because files in the work tree would be overwritten (files dlgit could not
    tell from the user's own, e.g. a killed git's), the one command that sets them aside, losing
    nothing; else ""."""
    if "would be overwritten by" not in said:
        return ""
    paths = [line.strip() for line in said.splitlines() if line.startswith(("\t", "        ")) and line.strip()]
    if not paths:
        return ""
    return ("\nThese files are in the way and are no copy of a commit of the flow; set them aside in the stash (nothing is lost; "
            "`git stash show -p` shows them), then run this again:\n"
            f"  git stash push --include-untracked -m {quote('dlgit: files in the way of a flow')} -- "
            + " ".join(quote(path) for path in paths))
