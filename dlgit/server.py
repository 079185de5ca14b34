"""The server's own settings: on a server, the policy is the admin's, never a pusher's.

`dlgit install --server` (or, failing that, the pre-receive hook's first run) pins the settings in
the server repository: a copy of a `.dlgit.yaml` in `<git dir>/dlgit/server-settings.yaml`, a file
beside the hooks that no push can write. pre-receive and the server's reference-transaction hook
judge by it, branch names included; a push that changes `.dlgit.yaml` on main or dev lands as
content only, with the command that adopts it (`dlgit install --server --adopt REF`, run there by
the admin).
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from dlgit import config
from dlgit.errors import UsageError
from dlgit.git import Git
from dlgit.history.judge import Policy, policy_at
from dlgit.shell import quote

PINNED_FILE = "server-settings.yaml"
_HEADER = "# dlgit: the settings this server enforces, pinned "
# what `dlgit install --server` sets in the server repository's git config, and why
SERVER_CONFIG = {
    "receive.fsckObjects": ("true", "every pushed object is checked as git fsck would ('..', '.git' paths, broken trees)"),
    "core.logAllRefUpdates": ("always", "every ref update is in a reflog: the proof of what was accepted, and when"),
    "gc.reflogExpire": ("never", "that proof is kept: the tips main and dev had decide which branch owns a commit"),
    "gc.reflogExpireUnreachable": ("never", "and kept for tips no branch reaches any more"),
}


def pinned_path(repo: Git) -> Path:
    return repo.common_dir / "dlgit" / PINNED_FILE


def adopt_command(repo: Git, ref: str) -> str:
    """What the server's admin runs to make the settings of `ref` (a commit the server has) the enforced ones."""
    return f"cd {quote(str(repo.common_dir))} && dlgit install --server --adopt {quote(ref)}"


def policy(repo: Git) -> Policy:
    """The pinned settings; on the first run (nothing pinned yet) pins main's as it is now, before
    any pushed commit lands (the defaults on a server without main)."""
    path = pinned_path(repo)
    raw = _read(path)
    if raw is None:
        try:
            pin(repo, None)
        except UsageError as exc:  # a repository the pusher may not write to: main's settings, unpinned
            found = policy_at(repo, repo.rev("refs/heads/main^{commit}"), "refs/heads/main")
            return Policy(found.settings, f"{found.source}, not pinned ({exc}; its admin runs `dlgit install --server`)", found.commit)
        raw = _read(path) or b""
    first = raw.split(b"\n", 1)[0].decode("utf-8", "replace")
    where = first.removeprefix(_HEADER).strip() if first.startswith(_HEADER) else "by hand"
    source = f"the server's pinned settings ({path}, {where})"
    return Policy(config.from_bytes(raw, str(path)), source)


def pin(repo: Git, ref: str | None) -> str:
    """Pin the .dlgit.yaml of `ref` (a commit, or a file; None: refs/heads/main, or the defaults when
    there is none) as the server's settings, after validating it; returns where they came from."""
    if ref is not None and repo.rev(f"{ref}^{{commit}}") is None and Path(ref).is_file():  # a file: an empty server's first settings
        raw: bytes | None = Path(ref).read_bytes()
        settings_source = f"the file {Path(ref).resolve()}"
    else:
        commit, what = (repo.rev("refs/heads/main^{commit}"), "refs/heads/main") if ref is None else (repo.rev(f"{ref}^{{commit}}"), ref)
        if ref is not None and commit is None:
            raise UsageError(f"'{ref}' is neither a commit in {repo.common_dir} nor a file; nothing was pinned "
                             "(the server's settings are unchanged).")
        raw = repo.show_file(commit, config.CONFIG_FILE) if commit else None
        settings_source = f"{config.CONFIG_FILE} at {what} ({commit[:12]})" if raw is not None and commit else \
            f"the defaults (no {config.CONFIG_FILE} at {what})" if commit else f"the defaults (no {what} yet)"
    config.from_bytes(raw, settings_source)  # a broken file is refused here, never pinned
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = f"{_HEADER}from {settings_source} on {when}; change them only with `dlgit install --server --adopt REF`\n"
    _write(pinned_path(repo), header.encode() + (raw or b""))
    return settings_source


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"{path}: the server's pinned settings cannot be read ({exc.strerror}); nothing was judged.") from None


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(exist_ok=True)
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"cannot write the server's pinned settings {path} ({exc.strerror}); nothing was judged.") from None
