"""Sizes of staged files in a large commit come from the index's stat data (one `git ls-files
--debug` pass); whatever that cannot vouch for is measured exactly."""

from __future__ import annotations

import os

import pytest
from conftest import Repo, assert_allowed, assert_blocked, start_task

from dlgit.facts import BULK_PATHS
from dlgit.git import Git
from dlgit.git.parse import parse_index_sizes

BIG = 6 * 1024 * 1024  # over the default 5 MiB limit


def _listed(repo: Repo, min_bytes: int) -> dict[str, int]:
    return parse_index_sizes(Git(repo.path).start_index_listing().result(), min_bytes)


@pytest.mark.parametrize("odd", ["with space.dat", "new\nline.dat"])
def test_recorded_sizes_lists_large_and_unrecorded_entries(repo: Repo, odd: str) -> None:
    repo.write("small.txt", "tiny\n")
    repo.write(odd, b"\1" * 2_000_000)
    repo.write("big.dat", b"\1" * 1_500_000)
    blob = repo.git("hash-object", "-w", "--stdin", input="no stat data\n").stdout.strip()
    repo.git("add", "small.txt", odd, "big.dat")
    repo.git("update-index", "--add", "--cacheinfo", f"100644,{blob},cached only.txt")
    found = _listed(repo, 1_000_000)
    assert found == {odd: 2_000_000, "big.dat": 1_500_000, "cached only.txt": 0}  # 0: git recorded no size


def _many_task_files(repo: Repo) -> str:
    task = start_task(repo)
    for i in range(BULK_PATHS):
        repo.write(f"tasks/{task}/out/step{i:05d}.txt", f"{i}\n")
    return task


def test_large_commit_blocks_a_big_file(repo: Repo) -> None:
    task = _many_task_files(repo)
    repo.write(f"tasks/{task}/out/dump\nall.dat", b"\1" * BIG)
    proc = repo.commit("task: results", check=False)
    assert_blocked(proc, "large-file", "6.0 MiB", "dlgit finish-task")
    assert "step00001.txt" not in proc.stderr


def test_large_commit_measures_a_blob_staged_without_stat_data(repo: Repo) -> None:
    """`update-index --cacheinfo` (like `apply --cached`) records no size: git is asked."""
    task = _many_task_files(repo)
    repo.git("add", ".")
    blob = repo.git("hash-object", "-w", "--stdin", input="x" * BIG).stdout.strip()
    repo.git("update-index", "--add", "--cacheinfo", f"100644,{blob},tasks/{task}/out/ghost.dat")
    assert_blocked(repo.git("commit", "-m", "task: results", check=False), "large-file", f"tasks/{task}/out/ghost.dat (6.0 MiB)",
                   replay="lossy")  # a blob staged with no file behind it


def test_large_commit_judges_the_blob_not_the_work_tree_file(repo: Repo) -> None:
    """A clean filter (as git-lfs uses) stores a small blob for a big file: allowed."""
    task = _many_task_files(repo)
    repo.write(".gitattributes", "*.dat filter=pointer\n")
    repo.git("add", ".gitattributes")
    repo.git("commit", "-q", "--no-verify", "-m", "chore: attributes")  # outside the task folder
    repo.git("config", "filter.pointer.clean", "head -c 40")
    repo.write(f"tasks/{task}/out/weights.dat", b"\1" * BIG)
    assert os.path.getsize(repo.path / f"tasks/{task}/out/weights.dat") == BIG
    assert_allowed(repo.commit("task: results"))


def test_large_commit_judges_the_staged_size_not_a_later_edit(repo: Repo) -> None:
    task = _many_task_files(repo)
    repo.write(f"tasks/{task}/out/dump.dat", b"\1" * BIG)
    repo.git("add", ".")
    repo.write(f"tasks/{task}/out/dump.dat", b"shrunk after staging\n")  # the index still holds the big blob
    assert_blocked(repo.git("commit", "-m", "task: results", check=False), "large-file", f"tasks/{task}/out/dump.dat (6.0 MiB)",
                   replay="lossy")  # the big version exists only in the index


def test_small_commit_judges_the_staged_blob(repo: Repo) -> None:
    """An ordinary commit asks git for each blob's size: neither a later edit of the file nor a
    clean filter that enlarges it hides what is really committed."""
    repo.git("switch", "-q", "dev")
    repo.write("data/dump.dat", b"\1" * BIG)
    repo.git("add", ".")
    repo.write("data/dump.dat", b"shrunk after staging\n")
    assert_blocked(repo.git("commit", "-m", "feat: data", check=False), "large-file", "data/dump.dat (6.0 MiB)",
                   replay="lossy")  # the big version exists only in the index
    repo.git("rm", "-q", "-f", "--cached", "data/dump.dat")
    repo.write(".gitattributes", "*.grow filter=grow\n")
    repo.git("config", "filter.grow.clean", f"cat; head -c {BIG} /dev/zero")
    repo.write("data/seed.grow", "tiny\n")
    assert_blocked(repo.commit("feat: data", check=False), "large-file", "data/seed.grow (6.0 MiB)",
                   replay="lossy")  # the big version exists only in the index


def test_listing_without_memfd_uses_a_temporary_file(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(name: str) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "memfd_create", refused, raising=False)
    repo.write("big.dat", b"\1" * 2_000_000)
    repo.git("add", "big.dat")
    assert _listed(repo, 1_000_000) == {"big.dat": 2_000_000}
