"""One DVC cache for every work tree of a repository, and what removing a work tree would lose.

DVC keeps a work tree's cache in that tree's own `.dvc/cache` unless `cache.dir` says otherwise:
a task's work tree would put its checkpoints into a folder that goes with the tree. dlgit sets
`cache.dir` (in the tree's `.dvc/config.local`, which DVC keeps out of git) to the main work
tree's cache wherever it makes a work tree, checks it again before finish-task's `dvc add`, and
removes a work tree only when `unsaved` finds nothing in it that exists nowhere else: every DVC
output's content in the shared cache, no other ignored or untracked file.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from dlgit.git import Git

REGENERATED = ("__pycache__/", ".dvc/tmp/", ".dvc/config.local", ".dvc/cache/")  # nothing of the user's is lost with these
SHOWN = 10  # files named in a message before "... and N more"


def dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A dvc command in `cwd` (DVC from PATH, else the one installed beside dlgit), output captured."""
    import shutil

    found = shutil.which("dvc")
    command = [found, *args] if found else [sys.executable, "-m", "dvc", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"})


def uses_dvc(tree: Path) -> bool:
    return (tree / ".dvc" / "config").is_file()


def main_tree(repo: Git) -> Path | None:
    """The repository's main work tree (the one its common git dir belongs to); None when bare."""
    common = repo.common_dir
    return common.parent if common.name == ".git" else None


def cache_dir(tree: Path) -> Path | None:
    """The DVC cache a work tree uses (`dvc cache dir`), None when DVC cannot say."""
    proc = dvc("cache", "dir", cwd=tree)
    return Path(proc.stdout.strip()).resolve() if proc.returncode == 0 and proc.stdout.strip() else None


def shared_cache(repo: Git) -> Path:
    """The cache every work tree of the repository shares: the main work tree's."""
    tree = main_tree(repo)
    found = cache_dir(tree) if tree is not None and uses_dvc(tree) else None
    return found or repo.common_dir.resolve() / "dvc-cache"


def share(tree: Path, cache: Path) -> str | None:
    """Point the work tree's DVC at `cache`; the reason when DVC refused."""
    proc = dvc("config", "--local", "cache.dir", str(cache), cwd=tree)
    return None if proc.returncode == 0 else (proc.stderr or proc.stdout).strip()


def has_remote(tree: Path) -> bool:
    """Whether DVC has a remote to push to (a `remote` section in its config files)."""
    for name in ("config", "config.local"):
        try:
            with open(tree / ".dvc" / name, encoding="utf-8", errors="replace") as file:
                if "remote" in file.read(65536):
                    return True
        except OSError:
            continue
    return False


def shares(tree: Path, cache: Path) -> bool:
    found = cache_dir(tree)
    return found is not None and found == cache.resolve()


# --- what removing a work tree would lose ----------------------------------------------------------


def _cached(cache: Path, md5: str) -> Path | None:
    """The cache file of an object (DVC 3's files/md5/ layout, or DVC 2's), when it is there."""
    for candidate in (cache / "files" / "md5" / md5[:2] / md5[2:], cache / md5[:2] / md5[2:]):
        if candidate.is_file():
            return candidate
    return None


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _outputs(tree: Path, pointer: str) -> list[tuple[str, str]]:
    """(output path from the tree's top, md5) of each output a `.dvc` file names."""
    import yaml

    from dlgit import safeyaml

    try:
        data = safeyaml.load(safeyaml.read_file(tree / pointer))
    except (OSError, ValueError, yaml.YAMLError):  # a broken pointer: its output is checked as an ignored file
        return []
    base = Path(pointer).parent
    outs = data.get("outs") if isinstance(data, dict) else None
    return [(os.path.normpath(base / out["path"]), str(out["md5"])) for out in outs or []
            if isinstance(out, dict) and isinstance(out.get("path"), str) and out.get("md5")
            and not os.path.normpath(base / out["path"]).startswith((os.sep, ".."))]


def _output_lost(tree: Path, path: str, md5: str, cache: Path) -> list[str]:
    """The files of one DVC output that the shared cache does not hold as they are in the tree."""
    import json

    if not md5.endswith(".dir"):
        file = tree / path
        if _cached(cache, md5) is None or (file.is_file() and _md5(file) != md5):
            return [path]
        return []
    manifest = _cached(cache, md5)
    if manifest is None:
        return [path + "/"]
    try:
        entries = {entry["relpath"]: entry["md5"] for entry in json.loads(manifest.read_text())}
    except (OSError, ValueError, KeyError, TypeError):
        return [path + "/"]
    lost = []
    folder = tree / path
    for file in sorted(folder.rglob("*")) if folder.is_dir() else []:
        relpath = file.relative_to(folder).as_posix()
        if file.is_file() and (relpath not in entries or _cached(cache, entries[relpath]) is None or _md5(file) != entries[relpath]):
            lost.append(f"{path}/{relpath}")
    return lost


def _own_cache_lost(tree: Path, cache: Path | None) -> list[str]:
    """Objects in the tree's own `.dvc/cache` (made before it shared one) missing from the shared cache."""
    own = tree / ".dvc" / "cache"
    if not own.is_dir() or (cache is not None and own.resolve() == cache.resolve()):
        return []
    return [file.relative_to(tree).as_posix() for file in sorted(own.rglob("*"))
            if file.is_file() and (cache is None or not (cache / file.relative_to(own)).is_file())]


def unsaved(tree: Path, cache: Path | None) -> list[str]:
    """The files (from the tree's top) that exist only in this work tree: DVC outputs whose content
    is not in the shared cache (`cache`: None without DVC), objects of its own cache, other ignored
    or untracked files."""
    repo = Git(tree)
    listing = repo.run("ls-files", "-z", "--", "*.dvc").stdout.decode("utf-8", "surrogateescape") if cache is not None else ""
    pointers = [path for path in listing.split("\0") if path]
    lost: list[str] = []
    outputs: set[str] = set()
    for pointer in pointers:
        for path, md5 in _outputs(tree, pointer):
            outputs.add(path)
            lost += _output_lost(tree, path, md5, cache)
    lost += _own_cache_lost(tree, cache)
    others = repo.run("ls-files", "-z", "--others", "--exclude-standard").stdout
    ignored = repo.run("ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory").stdout
    for raw in (others + ignored).split(b"\0"):
        path = raw.decode("utf-8", "surrogateescape")
        if not path or any(part in f"/{path}" for part in (f"/{name}" for name in REGENERATED)) or path.endswith(".pyc"):
            continue
        if path.rstrip("/") in outputs or any(path.startswith(output + "/") for output in outputs):
            continue
        lost.append(path)
    return list(dict.fromkeys(lost))


def listed(paths: list[str]) -> str:
    shown = [f"  {path}" for path in paths[:SHOWN]]
    if len(paths) > SHOWN:
        shown.append(f"  ... and {len(paths) - SHOWN} more")
    return "\n".join(shown)
