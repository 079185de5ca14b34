"""One `pip freeze` per Python environment, kept in the repository's git dir and copied beside each run.

`pip freeze` takes from a few hundred milliseconds to seconds: a run that waited for it would cost
a short script several times its own time, and one that let it finish after dlgit exits would drop
a file into the task folder behind the user's back. So an environment is known by a key that is
cheap to compute — the interpreter, its prefix and version, and the names and times of the
packages' metadata (`*.dist-info`, `*.egg-info`, `*.egg-link`, `*.pth`) on its `sys.path` — and
its freeze is computed once per key, in the background, into `<git common dir>/dlgit/freeze/<key>.txt`
(written whole, then renamed; outside every work tree). A run copies it beside its record when it
is there; the run's record names the key, so that a freeze computed after the run is copied by the
next run in the folder or by finish-task. pip installing or removing anything changes the key.
(Known limit: an editable install's freeze line names its source; a new commit in that source
does not change the key.)

Any Python 3 runs this file on its own (it imports nothing of dlgit), for a task interpreter that
is not dlgit's: `python envfreeze.py CACHE_DIR` prints its version and its key, and starts the
freeze when the cache has none (`--key`: starts nothing); `python envfreeze.py --freeze FILE`
computes one.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import time

METADATA = (".dist-info", ".egg-info", ".egg-link", ".pth")  # what pip installing or removing a package changes
STALE = 600.0  # seconds after which a partial freeze is taken as abandoned (its process was killed)


def key(paths: list[str] | None = None) -> str:
    """The running interpreter's environment key: its executable, prefix and version, and the
    package metadata on its import path (the first entry, the script's own folder, left out)."""
    digest = hashlib.sha256("\0".join((sys.executable, sys.prefix, sys.version)).encode("utf-8", "surrogateescape"))
    for path in sys.path[1:] if paths is None else paths:
        try:
            with os.scandir(path or ".") as entries:
                found = sorted((entry.name, entry.stat(follow_symlinks=False).st_mtime_ns) for entry in entries
                               if entry.name.endswith(METADATA))
        except OSError:  # a zip, a folder that is gone: nothing pip installed there
            continue
        if found:  # a folder without packages (the current directory, say) leaves the key alone
            digest.update(f"\0{path}\0{found!r}".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:24]


def cached(cache_dir: str, environment: str) -> str:
    return os.path.join(cache_dir, f"{environment}.txt")


def partial(final: str) -> str:
    return f"{final}.partial"


def going(final: str) -> bool:
    """A freeze into `final` is being computed (its partial file is there, and fresh)."""
    try:
        return time.time() - os.stat(partial(final)).st_mtime < STALE
    except OSError:
        return False


def start(cache_dir: str, environment: str) -> None:
    """Compute the freeze of the running interpreter in the background when the cache has none
    (at the lowest priority, in a session of its own: Ctrl-C is for the script)."""
    final = cached(cache_dir, environment)
    if os.path.exists(final) or going(final):
        return
    devnull = os.open(os.devnull, os.O_RDWR)
    try:  # not a Popen: nothing waits for it, it outlives dlgit
        pid = os.posix_spawn(sys.executable, [sys.executable, os.path.abspath(__file__), "--freeze", final], os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)], setsid=True)
        os.setpriority(os.PRIO_PROCESS, pid, 19)
    except OSError:  # it could not start, or has ended already
        pass
    finally:
        os.close(devnull)


def freeze(final: str) -> int:
    """`pip freeze` into `final`, written whole or not at all; one writer at a time (exit 0 when
    another is at it)."""
    os.makedirs(os.path.dirname(final), exist_ok=True)
    hidden = partial(final)
    if os.path.exists(hidden) and not going(final):
        os.unlink(hidden)  # left by a killed freeze
    try:
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return 0
    with os.fdopen(fd, "wb") as out:
        code = subprocess.call([sys.executable, "-m", "pip", "freeze"], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL)
    if code == 0:
        os.replace(hidden, final)
    else:
        os.unlink(hidden)
    return code


def main(argv: list[str]) -> int:
    if argv[:1] == ["--freeze"] and len(argv) == 2:
        return freeze(argv[1])
    if len(argv) != 1:
        print("usage: envfreeze.py CACHE_DIR | --key | --freeze FILE", file=sys.stderr)
        return 2
    environment = key()
    print(platform.python_version())
    print(environment, flush=True)
    if argv[0] != "--key":
        start(argv[0], environment)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
