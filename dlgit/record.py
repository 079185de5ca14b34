"""The tips main and dev have had, as the server records them, so that every clone can prove what
the server's reflogs prove (docs/check.md, "The proof kept from when a merge was judged").

A branch owns the commits of the first-parent chains of every tip it has had (dlgit.evidence).
After a fast-forward back-merge only a reflog still says that the released commit was dev's tip,
and a clone's reflogs hold only what it fetched. The server's reflogs (which `dlgit install
--server` keeps forever) hold every tip its pre-receive accepted, so the server publishes them under
SERVER_RECORD: a commit whose tree holds one file, RECORD_FILE, one `<sha> refs/heads/<branch>` line
per tip, sorted. The record is derived whole from the reflogs each time main or dev moves (the
server's post-receive), so a writer that crashed or never ran loses
nothing: the next one writes every tip. No push writes under refs/dlgit/ (`history-rewrite`).

Clients fetch it with the refspec `dlgit install` adds to each remote (model.record_refspec), to
refs/dlgit/remotes/<remote>/tips, and add its tips to the branches' past tips: a clone trusts the
record it fetched as far as it trusts that server.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from typing import TextIO

from dlgit.git import Git, Runner
from dlgit.model import FETCHED_RECORDS, RECORD_FILE, SERVER_RECORD, record_refspec

MAX_RECORD = 64 << 20  # bytes of a fetched record read at most (about 700,000 tips); a larger one is ignored
_IDENTITY = {"GIT_AUTHOR_NAME": "dlgit", "GIT_AUTHOR_EMAIL": "dlgit@server", "GIT_AUTHOR_DATE": "@0 +0000",
             "GIT_COMMITTER_NAME": "dlgit", "GIT_COMMITTER_EMAIL": "dlgit@server", "GIT_COMMITTER_DATE": "@0 +0000"}
_MESSAGE = b"dlgit: the tips main and dev have had, from this server's reflogs\n"
_TRIES = 3  # a concurrent writer moved the record: derive it again


def tips_text(tips: Sequence[tuple[str, str]]) -> bytes:
    """The record's file: one sorted `<sha> <ref>` line per (ref, sha)."""
    return "".join(f"{sha} {ref}\n" for ref, sha in sorted(set(tips))).encode()


def parse(data: bytes) -> list[tuple[str, str]]:
    """(ref, sha) of each well-formed line of a record's file (branch refs only)."""
    found = []
    for line in data.decode("utf-8", "replace").splitlines():
        sha, _, ref = line.partition(" ")
        if len(sha) in (40, 64) and all(ch in "0123456789abcdef" for ch in sha) and ref.startswith("refs/heads/") and " " not in ref:
            found.append((ref, sha))
    return found


def _blob_id(data: bytes, like: str) -> str:
    """The id git gives a blob of `data`, in the object format of the id `like`."""
    digest = hashlib.sha256 if len(like) == 64 else hashlib.sha1
    return digest(b"blob %d\0" % len(data) + data).hexdigest()


def publish(repo: Git, branches: Sequence[str]) -> bool:
    """Write SERVER_RECORD from the reflogs of `branches` (and their tips now), unless it says that
    already; True when it was written. One reflog walk and one `cat-file` when nothing changed."""
    refs = [f"refs/heads/{name}" for name in branches]
    listing = f"{SERVER_RECORD}:{RECORD_FILE}"
    for _ in range(_TRIES):
        now = repo.object_ids([*refs, SERVER_RECORD, listing])
        text = tips_text([*repo.reflog_values(refs), *((ref, now[ref]) for ref in refs if ref in now)])
        old = now.get(SERVER_RECORD)
        if old is not None and now.get(listing) == _blob_id(text, old):
            return False
        git = Runner(repo)
        blob = _written(git("hash-object", "-w", "--stdin", stdin=text))
        tree = _written(git("mktree", stdin=f"100644 blob {blob}\t{RECORD_FILE}\n".encode()))
        commit = _written(git("commit-tree", tree, stdin=_MESSAGE, env=_IDENTITY))
        if git("update-ref", "-m", "dlgit: the tips main and dev have had", SERVER_RECORD, commit, old or "0" * len(commit),
               check=False).returncode == 0:
            return True
    return False


def post_receive(stdin: TextIO) -> int:
    """The server's post-receive, once a push moved main or dev: publish the tips of the branches its
    script names (main and dev). git ignores what a post-receive returns."""
    repo = Git.open()
    branches = [line[len("refs/heads/"):] for line in stdin.read().splitlines() if line.startswith("refs/heads/")]
    if repo.root is None and branches:
        publish(repo, branches)
    return 0


def _written(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stdout.decode().strip()


def fetched(repo: Git, remotes: Sequence[str] | None) -> tuple[list[tuple[str, str]], set[str]]:
    """The (ref, sha) tips the fetched records of `remotes` list (None: every remote's), and the
    remotes whose record is here. A record larger than MAX_RECORD is left out."""
    prefixes = [f"{FETCHED_RECORDS}{remote}/" for remote in remotes] if remotes is not None else [FETCHED_RECORDS]
    records = {ref: f"{ref}:{RECORD_FILE}" for ref, _ in repo.refs(*prefixes) if ref.endswith(f"/{RECORD_FILE}")}
    if not records:
        return [], set()
    blobs = repo.object_ids(records.values())
    sizes = repo.object_sizes(blobs.values())
    small = [blob for blob in blobs.values() if sizes.get(blob, MAX_RECORD + 1) <= MAX_RECORD]
    contents = repo.read_blobs(small) if small else {}
    tips = [tip for blob in small for tip in parse(contents.get(blob, b""))]
    here = {ref.removeprefix(FETCHED_RECORDS).rpartition("/")[0] for ref in records}
    return tips, here


def add_refspecs(repo: Git) -> list[str]:
    """Add the record's fetch refspec to every remote that lacks it; the remotes it was added to."""
    added = []
    for remote in repo.out("remote").splitlines():
        spec = record_refspec(remote)
        have = repo.run("config", "--get-all", f"remote.{remote}.fetch", check=False).stdout.decode("utf-8", "replace").splitlines()
        if spec not in have:
            Runner(repo)("config", "--add", f"remote.{remote}.fetch", spec)
            added.append(remote)
    return added


def remove_refspecs(repo: Git) -> list[str]:
    """Remove the refspec `add_refspecs` added (nothing else); the remotes it was removed from."""
    removed = []
    for remote in repo.out("remote").splitlines():
        unset = Runner(repo)("config", "--unset-all", "--fixed-value", f"remote.{remote}.fetch", record_refspec(remote), check=False)
        if unset.returncode == 0:
            removed.append(remote)
    return removed
