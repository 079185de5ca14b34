"""The hooks' cache of the parsed .dlgit.yaml (config.load with a cache file in the git dir)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Repo, setup_commit

from dlgit import config
from dlgit.errors import UsageError


def test_cache_is_used_for_the_same_content_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / ".git" / "dlgit" / "settings-cache"
    (tmp_path / ".git").mkdir()
    (tmp_path / ".dlgit.yaml").write_text("commit:\n  types: [feat, wip]\n")
    assert config.load(tmp_path, cache).commit_types == ("feat", "wip")
    assert cache.is_file()

    def no_parsing(*_: object) -> None:
        raise AssertionError("parsed again")

    with monkeypatch.context() as patched:
        patched.setattr(config, "parse", no_parsing)
        assert config.load(tmp_path, cache).commit_types == ("feat", "wip")  # from the cache
    (tmp_path / ".dlgit.yaml").write_text("commit:\n  types: [feat, fix]\n")  # same length, other content
    assert config.load(tmp_path, cache).commit_types == ("feat", "fix")
    assert config.load(tmp_path).commit_types == ("feat", "fix")  # without a cache: parsed, as before


@pytest.mark.parametrize("garbage", [b"", b"\x00\x01not marshal", b"\xe9" * 64])
def test_a_corrupt_cache_is_ignored_and_replaced(tmp_path: Path, garbage: bytes) -> None:
    cache = tmp_path / "cache"
    cache.write_bytes(garbage)
    (tmp_path / ".dlgit.yaml").write_text("hotfix:\n  max_files: 3\n")
    assert config.load(tmp_path, cache).hotfix_max_files == 3
    assert cache.read_bytes() != garbage
    assert config.load(tmp_path, cache).hotfix_max_files == 3


def test_a_broken_file_is_never_cached(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (tmp_path / ".dlgit.yaml").write_text("hotfix: [\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        config.load(tmp_path, cache)
    assert not cache.exists()


def test_an_unwritable_cache_only_costs_the_parse(tmp_path: Path) -> None:
    (tmp_path / ".dlgit.yaml").write_text("hotfix:\n  max_files: 3\n")
    (tmp_path / "file").write_text("")
    assert config.load(tmp_path, tmp_path / "file" / "cache").hotfix_max_files == 3  # its folder cannot be made


def test_hook_keeps_its_cache_in_the_git_dir(repo: Repo) -> None:
    repo.git("switch", "-q", "dev")
    repo.write(".dlgit.yaml", "commit:\n  types: [feat, wip]\n")
    setup_commit(repo, "chore: a wip type", ".dlgit.yaml")  # the hooks judge by the committed .dlgit.yaml
    repo.write("model/net.py", "NET = 2\n")
    assert repo.commit("wip: cached next time").returncode == 0
    assert (repo.path / ".git" / "dlgit" / "settings-cache").is_file()
    repo.write(".dlgit.yaml", "commit:\n  types: [feat]\n")  # edited: the cache must not answer
    setup_commit(repo, "feat: no wip type", ".dlgit.yaml")
    repo.write("model/net.py", "NET = 3\n")
    refused = repo.commit("wip: no longer a type", check=False)
    assert refused.returncode == 1 and "'wip'" in refused.stderr
