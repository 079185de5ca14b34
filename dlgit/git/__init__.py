"""The one place that runs git.

`Git` is one repository: silent queries, one git command each (`dlgit.git.repo`), and writes
through its `Runner` (`dlgit.git.runner`), which can echo and dry-run them. Pure parsers of git's
output live in `dlgit.git.parse`; the options of the git command running a hook in
`dlgit.git.ancestry`. Paths come back NUL-separated (`-z`) and are decoded with surrogateescape,
so spaces, newlines and non-UTF-8 bytes survive a round trip.
"""

from dlgit.git.parse import FileDiff, GitObject, LogCommit, MergeResult, RawEntry, Staged, TreeEntry
from dlgit.git.proc import MIN_GIT_VERSION, Background, GitError, ObjectSizes, require_version
from dlgit.git.repo import BranchHead, Fetched, Git, InProgress, MessageSettings, RepoInfo
from dlgit.git.runner import Runner, command_line

__all__ = ["MIN_GIT_VERSION", "Background", "BranchHead", "Fetched", "FileDiff", "Git", "GitError", "GitObject", "InProgress", "LogCommit",
           "MergeResult", "MessageSettings", "ObjectSizes", "RawEntry", "RepoInfo", "Runner", "Staged", "TreeEntry", "command_line",
           "require_version"]
