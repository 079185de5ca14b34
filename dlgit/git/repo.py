"""`Git`: one repository, asked things by small queries (one git command each) and written to
through its `Runner` (dlgit.git.runner). Queries are silent and never change the repository."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import NamedTuple

from dlgit.config import CONFIG_FILE
from dlgit.errors import UsageError
from dlgit.git import parse
from dlgit.git.parse import FileDiff, GitObject, LogCommit, MergeResult, Staged, fsdecode, split_z
from dlgit.git.proc import CHUNK, NO_ATTRIBUTES, NO_ATTRIBUTES_ENV, Background, BoundedOutput, GitError, ObjectSizes, finish, popen, run


class RepoInfo(NamedTuple):
    git_dir: Path  # this worktree's git dir (MERGE_HEAD, SQUASH_MSG, rebase state live here)
    common_dir: Path  # shared by all worktrees (refs, config)
    toplevel: Path | None  # None in a bare repository
    head: str | None  # the commit HEAD names; None on an unborn branch
    branch: str | None  # the checked-out branch (also when unborn); None on a detached HEAD
    settings_blob: str | None = None  # the blob of .dlgit.yaml committed in HEAD; None: none there


class InProgress(str, Enum):
    """An operation git has started in the work tree and not finished."""

    MERGE = "merge"
    SQUASH = "merge --squash"
    REBASE = "rebase"
    CHERRY_PICK = "cherry-pick"
    REVERT = "revert"
    BISECT = "bisect"


_STATE_FILES = (("rebase-merge", InProgress.REBASE), ("rebase-apply", InProgress.REBASE), ("MERGE_HEAD", InProgress.MERGE),
                ("CHERRY_PICK_HEAD", InProgress.CHERRY_PICK), ("REVERT_HEAD", InProgress.REVERT),
                ("SQUASH_MSG", InProgress.SQUASH), ("BISECT_LOG", InProgress.BISECT))


def _is_id(text: str) -> bool:
    return len(text) in (40, 64) and all(ch in "0123456789abcdef" for ch in text)


def _reflog_values(data: bytes) -> list[tuple[str, str]]:
    """(refname, commit) of `git log --walk-reflogs --format=%H%x00%gD` lines."""
    found = []
    for line in fsdecode(data).splitlines():
        sha, _, selector = line.partition("\0")
        ref = selector.rpartition("@{")[0]
        if sha and ref:
            found.append((ref, sha))
    return found


def _short_head(ref: str) -> str | None:
    return ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None


# Patches read by dlgit (parse.parse_patches) look the same whatever the user's config says.
PINNED_PATCH_CONFIG = ("-c", "merge.conflictStyle=merge", "-c", "merge.renames=true", "-c", "merge.directoryRenames=conflict",
                       "-c", "diff.noprefix=false", "-c", "diff.mnemonicPrefix=false", "-c", "diff.relative=false",
                       "-c", "diff.suppressBlankEmpty=false", "-c", "core.quotePath=false")
PINNED_PATCH_OPTIONS = ("--full-index", "--no-renames", "--diff-algorithm=myers", "--no-color", "--no-ext-diff", "--no-textconv")


class MessageSettings(NamedTuple):
    comment: str  # what starts a comment line: '#' by default, several characters (git 2.45+) or 'auto'
    cleanup: str | None  # commit.cleanup, when set


class BranchHead(NamedTuple):
    name: str  # short name (refs/heads/ removed)
    sha: str
    subject: str  # the tip commit's subject


class TreeItem(NamedTuple):
    mode: str
    type: str  # blob, commit (a submodule)
    sha: str
    path: str


class Fetched(NamedTuple):
    """A FETCH_HEAD line that `git pull` merges."""

    sha: str
    branch: str | None  # the remote branch's name, when git recorded one


class Git:
    """One repository, found from `cwd` (default: the process's working directory)."""

    def __init__(self, cwd: Path | str | None = None, info: RepoInfo | None = None) -> None:
        self.cwd = cwd
        self._info = info

    @classmethod
    def open(cls, cwd: Path | str | None = None) -> Git:
        """The repository at `cwd`, its layout read at once (UsageError when there is none)."""
        repo = cls(cwd)
        repo._info = repo._repo_info()
        return repo

    # --- layout ---------------------------------------------------------------------------------

    @property
    def info(self) -> RepoInfo:
        if self._info is None:
            self._info = self._repo_info()
        return self._info

    @property
    def git_dir(self) -> Path:
        return self.info.git_dir

    @property
    def common_dir(self) -> Path:
        return self.info.common_dir

    @property
    def root(self) -> Path | None:
        """The work tree's top folder; None in a bare repository."""
        return self.info.toplevel

    def refresh(self) -> RepoInfo:
        """Read HEAD and the branch again (after a write moved them)."""
        self._info = self._repo_info()
        return self._info

    # --- running ----------------------------------------------------------------------------------

    def run(self, *args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return run(args, self.cwd, stdin=stdin, check=check)

    def _no_attributes(self, args: Sequence[str]) -> tuple[tuple[str, ...], Path]:
        """`args` and the folder to run them in so that git reads no attributes (dlgit.git.proc.NO_ATTRIBUTES):
        every diff and merge of judged content goes through here."""
        return (f"--git-dir={self.git_dir}", *NO_ATTRIBUTES, *args), self.git_dir

    def run_judged(self, *args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """`run` without attributes: for the diffs and merges of judged content."""
        full, cwd = self._no_attributes(args)
        return run(full, cwd, stdin=stdin, check=check, env=NO_ATTRIBUTES_ENV)

    def popen_judged(self, args: Sequence[str], stdin: bool = False, env: dict[str, str | None] | None = None) -> subprocess.Popen[bytes]:
        """`popen` without attributes (see run_judged)."""
        full, cwd = self._no_attributes(args)
        return popen(full, cwd, stdin=stdin, env={**NO_ATTRIBUTES_ENV, **(env or {})})

    def out(self, *args: str) -> str:
        """Stdout of a git command that must succeed, decoded and stripped of the final newline."""
        return fsdecode(self.run(*args).stdout).rstrip("\n")

    def _answer(self, *args: str) -> str | None:
        """Stripped stdout of a command that may fail (None then, or when it printed nothing)."""
        proc = self.run(*args, check=False)
        return fsdecode(proc.stdout).strip() or None if proc.returncode == 0 else None

    def _repo_info(self) -> RepoInfo:
        """Where the repository is, HEAD as a commit and as a branch, and the blob of the .dlgit.yaml
        HEAD holds: one process in the usual case (a work tree with commits), since the hooks ask on
        every commit."""
        settings = f"HEAD:{CONFIG_FILE}"
        proc = self.run("rev-parse", "--absolute-git-dir", "--git-common-dir", "--is-bare-repository", "--show-toplevel",
                        "HEAD", settings, "--symbolic-full-name", "HEAD", check=False)
        lines = fsdecode(proc.stdout).splitlines()
        if proc.returncode == 0 and len(lines) == 7:
            git_dir, common, _, toplevel, head, blob, ref = lines
            return self._layout(git_dir, common, toplevel, head, _short_head(ref), blob)
        if len(lines) == 6 and lines[5] == settings and _is_id(lines[4]):  # HEAD holds no .dlgit.yaml: git stopped there
            git_dir, common, _, toplevel, head, _ = lines
            return self._layout(git_dir, common, toplevel, head, self._head_branch(Path(git_dir)), None)
        # One question at a time: a bare repository or the inside of .git (no work tree), an unborn
        # branch (no HEAD commit), a path holding a newline.
        where = os.path.abspath(self.cwd or os.getcwd())
        git_dir = self._rev_parse("--absolute-git-dir")
        if git_dir is None:
            raise UsageError(f"{where} is not inside a git repository; run dlgit from a repository's work tree.")
        bare = self._rev_parse("--is-bare-repository") == "true"
        toplevel = None if bare else self._rev_parse("--show-toplevel")
        if not bare and toplevel is None:
            raise UsageError(f"{where} is inside the .git folder; run dlgit from the repository's work tree.")
        head = self.rev("HEAD")
        blob = self._answer("rev-parse", "-q", "--verify", "--end-of-options", settings) if head else None
        return self._layout(git_dir, self._rev_parse("--git-common-dir") or git_dir, toplevel, head, self.current_branch(), blob)

    def _head_branch(self, git_dir: Path) -> str | None:
        """The checked-out branch as the HEAD file names it (git's own answer when the file says
        nothing plain: a reftable repository, a symlink)."""
        try:
            text = (git_dir / "HEAD").read_text(errors="surrogateescape").strip()
        except OSError:
            text = ""
        if _is_id(text):
            return None
        ref = text.removeprefix("ref: ")
        if ref != text and ref.startswith("refs/heads/") and ref != "refs/heads/.invalid":
            return ref[len("refs/heads/"):]
        return self.current_branch()

    def _rev_parse(self, option: str) -> str | None:
        """One answer of `git rev-parse OPTION`, whole (a path may end in any character but its newline)."""
        proc = self.run("rev-parse", option, check=False)
        return fsdecode(proc.stdout).removesuffix("\n") if proc.returncode == 0 else None

    def _layout(self, git_dir: str, common: str, toplevel: str | None, head: str | None, branch: str | None,
                settings_blob: str | None) -> RepoInfo:
        common_dir = Path(common) if os.path.isabs(common) else Path(self.cwd or os.getcwd()) / common
        return RepoInfo(Path(git_dir), common_dir.resolve(), Path(toplevel) if toplevel is not None else None, head, branch,
                        settings_blob)

    # --- refs and commits -------------------------------------------------------------------------

    def current_branch(self) -> str | None:
        """Short name of the checked-out branch (also when unborn); None on a detached HEAD."""
        return self._answer("symbolic-ref", "-q", "--short", "HEAD")

    def rev(self, spec: str) -> str | None:
        """Full sha of a commit-ish, or None when it does not exist (unborn HEAD, bad name)."""
        return self._answer("rev-parse", "-q", "--verify", "--end-of-options", f"{spec}^{{commit}}")

    def merge_base(self, a: str, b: str) -> str | None:
        return self._answer("merge-base", a, b)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        proc = self.run("merge-base", "--is-ancestor", ancestor, descendant, check=False)
        if proc.returncode > 1:
            raise GitError(("merge-base", "--is-ancestor", ancestor, descendant), proc.returncode, fsdecode(proc.stderr))
        return proc.returncode == 0

    def remote_tracking(self, branch: str) -> list[str]:
        """Remote-tracking refs of that branch name on any remote (refs/remotes/*/<branch>)."""
        return fsdecode(self.run("for-each-ref", "--format=%(refname)", f"refs/remotes/*/{branch}").stdout).splitlines()

    def refs(self, *patterns: str) -> list[tuple[str, str]]:
        """(refname, commit sha) for the refs under `patterns`; tags are peeled to their commit."""
        data = self.run("for-each-ref", "--format=%(refname)%00%(objectname)%00%(*objectname)", *patterns).stdout
        found = []
        for line in fsdecode(data).splitlines():
            name, sha, peeled = line.split("\0")
            found.append((name, peeled or sha))
        return found

    def tags(self) -> list[tuple[str, str, int | None]]:
        """(refname, commit sha, the size of its tag object: None for a lightweight tag) of every tag, peeled
        like `refs` (one `for-each-ref`)."""
        data = self.run("for-each-ref", "--format=%(refname)%00%(objectname)%00%(*objectname)%00%(objectsize)", "refs/tags/").stdout
        found = []
        for line in fsdecode(data).splitlines():
            name, sha, peeled, size = line.split("\0")
            found.append((name, peeled or sha, int(size) if peeled and size.isdigit() else None))
        return found

    def rev_parse_range(self, spec: str) -> list[str] | None:
        """The revisions a range names (tips as shas, exclusions as ^sha); None when git cannot read it."""
        proc = self.run("rev-parse", "--end-of-options", spec, "--", check=False)
        if proc.returncode != 0:
            return None
        return [line for line in proc.stdout.decode().splitlines() if line and line not in ("--", "--end-of-options")]

    def resolve_commits(self, names: Iterable[str]) -> dict[str, str]:
        """name -> full commit sha for each name that names a commit (one `cat-file --batch-check`)."""
        wanted = [name for name in dict.fromkeys(names) if name and "\n" not in name]
        if not wanted:
            return {}
        data = self.run("cat-file", "--batch-check=%(objectname) %(objecttype)", stdin="\n".join(wanted).encode() + b"\n").stdout
        found = {}
        for name, line in zip(wanted, data.decode().splitlines(), strict=True):
            sha, _, kind = line.partition(" ")
            if kind == "commit":
                found[name] = sha
        return found

    def parents_and_message(self, commit: str) -> tuple[list[str], str]:
        """The parent shas and the raw message of a commit (one `git cat-file commit`)."""
        data = fsdecode(self.run("cat-file", "commit", commit).stdout)
        header, _, message = data.partition("\n\n")
        parents = [line.split(" ", 1)[1] for line in header.splitlines() if line.startswith("parent ")]
        return parents, message

    def config_get(self, key: str) -> str | None:
        return self._answer("config", "--get", key)

    def git_path(self, name: str) -> Path:
        """`git rev-parse --git-path NAME`, absolute (honours core.hooksPath and worktrees)."""
        path = Path(self.out("rev-parse", "--git-path", name))
        return path if path.is_absolute() else (Path(self.cwd or os.getcwd()) / path).resolve()

    def message_settings(self) -> MessageSettings:
        """core.commentString or core.commentChar (whichever is set last) and commit.cleanup, in one call."""
        proc = self.run("config", "--get-regexp", r"^(core\.comment(char|string)|commit\.cleanup)$", check=False)
        comment, cleanup = "#", None
        for line in fsdecode(proc.stdout).splitlines():
            key, _, value = line.partition(" ")
            if key == "commit.cleanup":
                cleanup = value or None
            elif value:
                comment = value
        return MessageSettings(comment, cleanup)

    # --- trees, blobs and diffs ---------------------------------------------------------------------

    def staged(self, base: str | None) -> Staged:
        """What the index changes relative to `base` (a commit; None = nothing, for a first commit)."""
        args = ["diff", "--cached", "--raw", "--no-abbrev", "-z", "-M", "--no-ext-diff", "--no-textconv", "--ignore-submodules=none"]
        if base is not None:
            args.append(base)
        return parse.parse_raw(self.run_judged(*args).stdout)

    def diff_sizes(self, old: str, new: str | None, limit: int) -> tuple[parse.Sized, ...]:
        """(path, lines, bytes) changed from commit `old` to commit `new` (None: the index), as git's
        text diff counts them without reading attributes or filters: every file as text (`-a`:
        a binary counts its bytes; `*.py -diff` changes nothing), renames as a deletion plus an
        addition unless identical. Reading stops once the bytes pass `limit` (bounded work)."""
        args = (*PINNED_PATCH_CONFIG, "diff", "-p", "-U0", "-a", "-M100%", "--full-index", "--diff-algorithm=myers", "--no-color",
                "--no-ext-diff", "--no-textconv", "--ignore-submodules=none", *(("--cached", old) if new is None else (old, new)))
        counter = parse.PatchSizes(limit)
        proc = self.popen_judged(args)
        assert proc.stdout
        try:
            while not counter.over and (chunk := os.read(proc.stdout.fileno(), CHUNK)):
                counter.feed(chunk)
            if not counter.over:
                counter.feed(b"", final=True)
                finish(proc, args)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
            if proc.stderr:
                proc.stderr.close()
        return counter.result()

    def index_changes(self, commit: str, path: str) -> bool:
        """Does the index hold another `path` than `commit` (edited, added or deleted)?"""
        return self.run("diff", "--cached", "--quiet", "--no-ext-diff", commit, "--", path, check=False).returncode == 1

    def mode_changed(self, base: str, path: str) -> bool:
        """Does the index change `path`'s mode (its exec bit, say) from commit `base`?"""
        data = self.run("diff", "--cached", "--raw", "-z", "--no-abbrev", base, "--", path).stdout
        return parse.mode_changes(data) == {""}

    def mode_changes(self, commits: Sequence[str], path: str) -> set[str]:
        """The commits among `commits` that change `path`'s mode against their first parent (one `diff-tree --stdin`)."""
        if not commits:
            return set()
        data = self.run("diff-tree", "--stdin", "-r", "--raw", "-z", "--no-abbrev", "--", path,
                        stdin="\n".join(commits).encode() + b"\n").stdout
        return parse.mode_changes(data)

    def object_sizes(self, shas: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(shas))
        if not wanted:
            return {}
        data = self.run("cat-file", "--batch-check=%(objectname) %(objectsize)", stdin="\n".join(wanted).encode() + b"\n").stdout
        sizes: dict[str, int] = {}
        for line in data.decode().splitlines():
            sha, _, size = line.partition(" ")
            if size.isdigit():
                sizes[sha] = int(size)
        return sizes

    def index_bytes(self) -> int:
        """Size of the index file git uses here (GIT_INDEX_FILE during `git commit <path>`)."""
        try:
            return os.stat(os.environ.get("GIT_INDEX_FILE") or os.path.join(self.git_dir, "index")).st_size
        except OSError:
            return 0

    def start_index_listing(self) -> Background:
        """`git ls-files --debug -z` (every index entry with its stat data), for `parse_index_sizes`."""
        return Background(("ls-files", "--debug", "-z"), self.cwd)

    def read_blobs(self, shas: Sequence[str]) -> dict[str, bytes]:
        """Contents of several blobs in one `cat-file --batch` process."""
        return self.read_objects(sorted(set(shas)))

    def read_objects(self, names: Sequence[str]) -> dict[str, bytes]:
        """name -> content for object names (`<sha>`, `<commit>:<path>`) in one `cat-file --batch`;
        names that name nothing are left out."""
        return {name: obj.data for name, obj in self.objects(names).items()}

    def objects(self, names: Sequence[str]) -> dict[str, GitObject]:
        """name -> the object (id, type, raw content) for each object name, in one `cat-file --batch`."""
        wanted = list(dict.fromkeys(name for name in names if "\n" not in name))
        if not wanted:
            return {}
        return parse.parse_objects(wanted, self.run("cat-file", "--batch", stdin="\n".join(wanted).encode() + b"\n").stdout)

    def read_blob(self, sha: str) -> bytes | None:
        """One blob's content, or None when there is no such blob."""
        proc = self.run("cat-file", "blob", sha, check=False)
        return proc.stdout if proc.returncode == 0 else None

    def show_file(self, commit: str, path: str) -> bytes | None:
        """A file's content at a commit, or None when it is not there."""
        proc = self.run("cat-file", "blob", f"{commit}:{path}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def merge_tree(self, ours: str, theirs: str) -> MergeResult:
        """`git merge-tree --write-tree`: the tree a merge of two commits would record. On git 2.39 a
        bad revision also exits 1 (like a conflict): callers pass commits they have verified."""
        args = ("merge-tree", "--write-tree", "-z", "--name-only", "--no-messages", ours, theirs)
        proc = self.run_judged(*args, check=False)
        result = parse.parse_merge_tree(proc.stdout)
        if proc.returncode > 1 or result is None:
            raise GitError(args, proc.returncode, fsdecode(proc.stderr))
        return result

    def write_tree(self) -> str:
        """The tree of the index (what the commit being made will record)."""
        return self.out("write-tree")

    # --- history: `dlgit check`, pre-push and pre-receive ----------------------------------------------

    def iter_log(self, revs: Sequence[str]) -> Iterator[LogCommit]:
        """Every commit that `revs` (tips and ^exclusions) name, each with its raw diff against its first
        parent, streamed as git produces it from two `git log` passes running side by side: ordinary
        commits, and merges (whose first-parent diffs are the costly part). Order: as they come. The
        revisions go through stdin so that any number of exclusions fit."""
        if all(rev.startswith("^") for rev in revs):
            return  # no tip: `git log` would fall back to HEAD
        args = ("log", "--stdin", f"--format={parse.LOG_FORMAT}", "-z", "--raw", "--no-abbrev", "-M", "--root",
                "--reverse", "--no-show-signature", "--no-color")  # oldest first: a root commit's many files come early
        passes = [(*args, "--no-merges"), (*args, "--merges", "--diff-merges=first-parent")]
        procs = [self.popen_judged(pass_args, stdin=True, env={"GIT_FLUSH": "0"}) for pass_args in passes]  # big writes
        selector = selectors.DefaultSelector()
        for proc in procs:
            assert proc.stdin and proc.stdout
            proc.stdin.write("\n".join(revs).encode() + b"\n")
            proc.stdin.close()
            selector.register(proc.stdout, selectors.EVENT_READ, parse.LogParser())
        while selector.get_map():
            for key, _ in selector.select():
                chunk = os.read(key.fd, CHUNK)
                if not chunk:
                    selector.unregister(key.fileobj)
                yield from key.data.feed(chunk, final=not chunk)
        for proc, pass_args in zip(procs, passes, strict=True):
            finish(proc, pass_args)

    def sizes_alongside(self) -> ObjectSizes:
        """A `cat-file --batch-check` to ask object sizes of while the caller works."""
        return ObjectSizes(self.cwd)

    # --- what the flows ask before and while they write --------------------------------------------

    def ref(self, ref: str) -> str | None:
        """The object a full ref name points at (a tag object for an annotated tag), or None."""
        return self._answer("rev-parse", "-q", "--verify", "--end-of-options", ref)

    def changed_paths(self, untracked: bool = False) -> list[str]:
        """Paths with staged or unstaged changes (both sides of a rename), and with `untracked` the
        untracked ones too. Optional locks off: a run must not contend with the user's git commands."""
        data = self.run("--no-optional-locks", "status", "--porcelain=v1", "-z", f"--untracked-files={'all' if untracked else 'no'}",
                        "--ignore-submodules=none").stdout
        fields, paths = data.split(b"\0"), []
        i = 0
        while i < len(fields):
            field = fields[i]
            i += 1
            if len(field) < 4:
                continue
            paths.append(fsdecode(field[3:]))
            if field[:1] in (b"R", b"C") or field[1:2] in (b"R", b"C"):  # a rename or copy: its source path follows
                paths.append(fsdecode(fields[i]))
                i += 1
        return paths

    def changed_on(self, base: str, tip: str, outside: str) -> list[str]:
        """Paths outside the folder `outside` that `tip` changed since it left `base` (`base...tip`)."""
        return split_z(self.run("diff", "--name-only", "-z", "--no-renames", f"{base}...{tip}", "--", ".",
                                f":(exclude){outside}").stdout)

    def changed_between(self, old: str, new: str) -> list[str]:
        """Paths `new` changes against `old` (both sides of a rename)."""
        return split_z(self.run("diff", "--name-only", "-z", "--no-renames", old, new, "--").stdout)

    def changed_since(self, commit: str) -> list[str]:
        """Paths where the work tree differs from `commit` (staged or not), and untracked paths."""
        tracked = split_z(self.run("diff", "--name-only", "-z", "--no-renames", commit).stdout)
        return tracked + split_z(self.run("ls-files", "-z", "--others", "--exclude-standard").stdout)

    def branch_heads(self) -> list[BranchHead]:
        """Every local branch with its tip and the tip's subject (one `for-each-ref`)."""
        data = self.run("for-each-ref", "--format=%(refname)%00%(objectname)%00%(contents:subject)", "refs/heads").stdout
        heads = []
        for line in fsdecode(data).splitlines():
            name, sha, subject = line.split("\0", 2)
            heads.append(BranchHead(name.removeprefix("refs/heads/"), sha, subject))
        return heads

    def merged_branches(self, target: str) -> set[str]:
        """Local branches whose tip is reachable from `target` (empty when `target` does not exist)."""
        proc = self.run("for-each-ref", "--format=%(refname)", f"--merged={target}", "refs/heads", check=False)
        return {ref.removeprefix("refs/heads/") for ref in fsdecode(proc.stdout).splitlines()} if proc.returncode == 0 else set()

    def is_tracked(self, path: str) -> bool:
        return bool(self.run("ls-files", "-z", "--", f":(literal){path}").stdout)

    def unmerged_paths(self) -> list[str]:
        return sorted(set(split_z(self.run("diff", "--name-only", "-z", "--diff-filter=U").stdout)))

    def stashes(self) -> list[str]:
        """The stash entries' commits, newest first."""
        return fsdecode(self.run("stash", "list", "--format=%H").stdout).split()

    def stash_messages(self) -> list[tuple[str, str]]:
        """(commit, message) of each stash entry, newest first."""
        lines = fsdecode(self.run("stash", "list", "--format=%H%x00%s").stdout).splitlines()
        return [(sha, message) for sha, _, message in (line.partition("\0") for line in lines)]

    def ls_tree(self, commit: str, folder: str) -> list[TreeItem]:
        """Every file (and symlink, submodule) under `folder` at `commit`, recursively."""
        data = self.run("ls-tree", "-r", "-z", "--full-tree", commit, "--", f"{folder}/").stdout
        items = []
        for record in data.split(b"\0"):
            if record:
                meta, _, path = record.partition(b"\t")
                mode, kind, sha = meta.decode().split()
                items.append(TreeItem(mode, kind, sha, fsdecode(path)))
        return items

    def log_messages(self, revs: Sequence[str], first_parent: bool = False, merges: bool | None = None) -> list[tuple[str, str]]:
        """(sha, message) of the commits `revs` name, newest first."""
        args = ["log", "--format=%H%x00%B%x00", "--stdin", "--no-color"]
        if first_parent:
            args.append("--first-parent")
        if merges is not None:
            args.append("--merges" if merges else "--no-merges")
        data = self.run(*args, stdin="\n".join(revs).encode() + b"\n").stdout.decode("utf-8", "replace").split("\0")
        return [(data[i].strip(), data[i + 1].strip()) for i in range(0, len(data) - 1, 2)]

    def worktrees(self) -> dict[str, Path]:
        """branch -> the work tree it is checked out in (every worktree of the repository)."""
        found: dict[str, Path] = {}
        path: Path | None = None
        for line in fsdecode(self.run("worktree", "list", "--porcelain", "-z").stdout).split("\0"):
            if line.startswith("worktree "):
                path = Path(line[len("worktree "):])
            elif line.startswith("branch refs/heads/") and path is not None:
                found[line[len("branch refs/heads/"):]] = path
        return found

    # --- the state of the work tree -------------------------------------------------------------------

    def in_progress(self) -> InProgress | None:
        """The operation git has begun here and not concluded (a merge, a squash, a rebase ...)."""
        return next((state for name, state in _STATE_FILES if (self.git_dir / name).exists()), None)

    def merge_heads(self) -> list[str]:
        """MERGE_HEAD's commits: what a conflicted `git merge` being concluded brings in."""
        return self._state_text("MERGE_HEAD").split()

    def merge_msg_subject(self) -> str:
        return self._state_text("MERGE_MSG").partition("\n")[0]

    def squashed_commit(self) -> str | None:
        """The first commit SQUASH_MSG lists (`git merge --squash` writes one `commit <sha>` each)."""
        match = re.search(r"^commit ([0-9a-f]{40,64})$", self._state_text("SQUASH_MSG"), re.M)
        return match.group(1) if match else None

    def fetched_for_merge(self) -> list[Fetched]:
        """The FETCH_HEAD lines that `git pull` merges (several: an octopus)."""
        found = []
        for line in self._state_text("FETCH_HEAD").splitlines():
            sha, _, rest = line.partition("\t")
            flag, _, description = rest.partition("\t")
            if sha and not flag:
                match = re.match(r"^branch '([^']+)' of ", description)
                found.append(Fetched(sha, match.group(1) if match else None))
        return found

    def _state_text(self, name: str) -> str:
        try:
            return (self.git_dir / name).read_text(errors="replace")
        except OSError:
            return ""

    # --- issue 8: branch ownership, merges recomputed, history that hides commits --------------------

    def past_tips(self, prefixes: Sequence[str]) -> list[tuple[str, str]]:
        """(refname, commit) for every value the refs under `prefixes` had, as their reflogs recorded
        it (one `git log --walk-reflogs --all`; HEAD's and the stash's are left out). Empty where
        git keeps no reflog (a bare repository without core.logAllRefUpdates=always)."""
        proc = self.run("log", "--walk-reflogs", "--all", "--format=%H%x00%gD", check=False)
        return [(ref, sha) for ref, sha in _reflog_values(proc.stdout if proc.returncode == 0 else b"") if ref.startswith(tuple(prefixes))]

    def reflog_values(self, refs: Sequence[str]) -> list[tuple[str, str]]:
        """(refname, commit) for every value the reflogs of `refs` recorded, newest first (one `git log
        --walk-reflogs`; a ref without a reflog gives nothing). GitError when git cannot walk them."""
        return _reflog_values(self.run("log", "--walk-reflogs", "--ignore-missing", "--format=%H%x00%gD", *refs, "--").stdout)

    def first_parents(self, tips: Iterable[str]) -> list[tuple[str, str | None]]:
        """(commit, its first parent) over the union of the first-parent chains of `tips`, children
        before parents (one `rev-list --first-parent --topo-order`)."""
        wanted = sorted(set(tips))
        if not wanted:
            return []
        listing = self.run("rev-list", "--first-parent", "--parents", "--topo-order", "--ignore-missing", "--stdin",
                           stdin="\n".join(wanted).encode() + b"\n")
        data = listing.stdout
        return parse.parse_first_parents(data)

    def first_parent_before(self, tip: str, bases: Sequence[str]) -> str | None:
        """The newest commit of `tip`'s first-parent chain that `bases` already reach (`tip` itself
        when they reach it; None when they reach none of the chain): one `rev-list --first-parent`."""
        wanted = "\n".join([tip, *(f"^{base}" for base in bases)]).encode() + b"\n"
        listed = parse.parse_first_parents(self.run("rev-list", "--first-parent", "--parents", "--stdin", stdin=wanted).stdout)
        return listed[-1][1] if listed else tip

    def first_parent_trailers(self, start: str, key: str, limit: int) -> list[tuple[str, tuple[str, ...], str]]:
        """(commit, its parents, the values of its `key` trailers) along `start`'s first-parent chain,
        newest first, at most `limit` commits (messages are not read whole)."""
        fields = self.run("log", "--first-parent", f"-n{limit}", "--no-show-signature", "--no-color",
                          f"--format=%H%x00%P%x00%(trailers:key={key},valueonly,separator=%x20)%x00", start, "--").stdout
        parts = fields.decode("utf-8", "replace").split("\0")
        return [(parts[i].strip(), tuple(parts[i + 1].split()), parts[i + 2].strip()) for i in range(0, len(parts) - 2, 3)]

    def start_remerge(self, revs: Sequence[str], max_paths: int) -> BoundedOutput:
        """Every merge that `revs` (tips and ^exclusions) name recomputed by git (ort, conflict markers
        included) and diffed against its recorded tree, in one `git log --merges --remerge-diff` running
        alongside the caller; its output is for `parse.parse_patches`. A merge that equals git's merge
        of its parents prints nothing; git is stopped once the patches pass `max_paths` paths
        (TooMuchWork). (A walk, not `--no-walk --stdin` with chosen merges: git 2.39 then computes
        wrong merge bases when the list runs oldest first.)"""
        args = (*PINNED_PATCH_CONFIG, "log", "--merges", "--stdin", "--remerge-diff", f"--format={parse.REMERGE_MARK}%H",
                "--no-show-signature", *PINNED_PATCH_OPTIONS)
        full, cwd = self._no_attributes(args)
        return BoundedOutput(full, cwd, "\n".join(revs).encode() + b"\n", b"diff --git ", max_paths, env=NO_ATTRIBUTES_ENV)

    def recompute(self, ours: str, theirs: str, tree: str) -> list[FileDiff]:
        """`tree` (a merge or squash being made or recorded) against `merge-tree <ours> <theirs>`: the
        FileDiff of each path where they differ (empty: it is git's merge)."""
        result = self.merge_tree(ours, theirs)
        if result.tree == tree:
            return []
        patch = self.run_judged(*PINNED_PATCH_CONFIG, "diff-tree", "-r", "-p", *PINNED_PATCH_OPTIONS, result.tree, tree).stdout
        return parse.parse_patches(patch, frozenset(result.conflicted)).get("", [])

    def object_ids(self, names: Iterable[str]) -> dict[str, str]:
        """name -> object id for each object name (`<commit>:<path>`) that names one (one `cat-file --batch-check`)."""
        wanted = [name for name in dict.fromkeys(names) if name and "\n" not in name]
        if not wanted:
            return {}
        data = self.run("cat-file", "--batch-check=%(objectname) %(objecttype)", stdin="\n".join(wanted).encode() + b"\n").stdout
        found = {}
        for name, line in zip(wanted, fsdecode(data).split("\n"), strict=False):
            sha, _, kind = line.partition(" ")
            if kind and kind != "missing" and _is_id(sha):
                found[name] = sha
        return found

    def hidden_history(self) -> str | None:
        """What makes this repository's history incomplete (a shallow clone, grafts), or None."""
        if self._rev_parse("--is-shallow-repository") == "true":
            return "it is a shallow clone: commits before its boundary are missing (git fetch --unshallow fetches them)"
        if (self.common_dir / "info" / "grafts").exists():
            return "it has grafts (.git/info/grafts), which replace commits' parents (git replace --convert-graft-file converts them)"
        return None

    def peeled_all(self, names: Iterable[str]) -> dict[str, tuple[str, str]]:
        """name -> (type, id) of what it finally names once tags are peeled, for many names in one `cat-file`."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        asked = "".join(f"{name}^{{}}\n" for name in wanted).encode()
        data = self.run("cat-file", "--batch-check=%(objecttype) %(objectname)", stdin=asked).stdout
        found = {}
        for name, line in zip(wanted, fsdecode(data).splitlines(), strict=True):
            kind, _, sha = line.strip().partition(" ")
            if kind in ("commit", "tree", "blob"):
                found[name] = (kind, sha)
        return found

    def unreached(self, tips: Iterable[str], bases: Iterable[str]) -> set[str]:
        """The commits of `tips` that no commit of `bases` reaches (one `rev-list`: linear in what they bring)."""
        wanted = sorted(set(tips))
        if not wanted:
            return set()
        listed = self.run("rev-list", "--stdin", stdin="\n".join([*wanted, *(f"^{b}" for b in sorted(set(bases)))]).encode() + b"\n").stdout
        return set(wanted) & set(fsdecode(listed).split())

    def peeled(self, name: str) -> tuple[str, str] | None:
        """(type, id) of what `name` finally names once tags are peeled (commit, tree or blob); None when nothing."""
        data = self.run("cat-file", "--batch-check=%(objecttype) %(objectname)", stdin=f"{name}^{{}}\n".encode()).stdout
        kind, _, sha = fsdecode(data).strip().partition(" ")
        return (kind, sha) if kind in ("commit", "tree", "blob") else None

    def tree_sizes(self, tree: str) -> list[tuple[str, int]]:
        """(path, size) of every blob under a tree (one `ls-tree -r -l -z`)."""
        found = []
        for record in split_z(self.run("ls-tree", "-r", "-l", "-z", "--end-of-options", tree).stdout):
            meta, _, path = record.partition("\t")
            size = meta.split()[-1]
            if size.isdigit():
                found.append((path, int(size)))
        return found

    def ls_tree_sized(self, commit: str, folders: Sequence[str]) -> list[tuple[str, str, int, str]]:
        """(mode, id, size, path) of every file, symlink and submodule under `folders` at `commit`
        (one `ls-tree -r -l -z`; size 0 for a submodule)."""
        if not folders:
            return []
        found = []
        data = self.run("ls-tree", "-r", "-l", "-z", "--full-tree", "--end-of-options", commit, "--",
                        *(f"{folder}/" for folder in folders)).stdout
        for record in split_z(data):
            meta, _, path = record.partition("\t")
            mode, _, sha, size = meta.split()
            found.append((mode, sha, int(size) if size.isdigit() else 0, path))
        return found
