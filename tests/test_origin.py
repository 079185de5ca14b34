"""Advice names only sources that exist: where dlgit was installed from (PEP 610 direct_url.json,
faked here with a dist-info folder ahead of the real one on sys.path), the dlgit entry of the
repository's .pre-commit-config.yaml, and what `dlgit ci` and `dlgit install` make of them."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, Repo

from dlgit import ci, origin
from dlgit.origin import Origin

SHA = "1a2b" * 10
VCS = {"url": "https://git.example.com/lab/dlgit.git", "vcs_info": {"vcs": "git", "commit_id": SHA}}
AT_SHA = f"fakedlgit @ git+https://git.example.com/lab/dlgit.git@{SHA}"
FRAMEWORK_ENTRY = "repos:\n  - repo: https://github.com/lab/dlgit\n    rev: 3c4d\n    hooks:\n      - id: dlgit-policy\n"


def fake_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: dict[str, Any] | None, name: str = "dlgit") -> None:
    """A distribution `name` 9.9 as pip records it, found before any other of that name."""
    info = tmp_path / "site" / f"{name}-9.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 9.9\n")
    (info / "INSTALLER").write_text("pip\n")
    if record is not None:
        (info / "direct_url.json").write_text(json.dumps(record))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


@pytest.mark.parametrize(("record", "requirement", "local"), [
    (VCS, AT_SHA, False),
    ({**VCS, "subdirectory": "tools/dlgit"}, f"{AT_SHA}#subdirectory=tools/dlgit", False),
    ({**VCS, "subdirectory": "a b;rm"}, AT_SHA, False),  # not a plain path: left out
    ({"url": "https://example.com/dlgit-9.9.tar.gz", "archive_info": {}}, "fakedlgit @ https://example.com/dlgit-9.9.tar.gz", False),
    ({"url": "file:///home/me/dlgit", "dir_info": {"editable": True}}, "fakedlgit @ file:///home/me/dlgit", True),
    ({"url": "file:///home/me/dlgit.git", "vcs_info": {"vcs": "git", "commit_id": SHA}},
     f"fakedlgit @ git+file:///home/me/dlgit.git@{SHA}", True),
    (None, "fakedlgit==9.9", False),  # from a package index
    ({"no": "url"}, "fakedlgit==9.9", False),
])
def test_the_recorded_origin_as_a_pip_requirement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: dict[str, Any] | None,
                                                  requirement: str, local: bool) -> None:
    fake_install(tmp_path, monkeypatch, record, "fakedlgit")
    found = origin.installed("fakedlgit")
    assert (found.requirement, found.local) == (requirement, local)
    assert origin.install_source("fakedlgit") == requirement


def test_this_environment_names_its_work_tree() -> None:
    """The suite's environment installs dlgit from the work tree (pip install -e): a file URL of it."""
    found = origin.installed()
    assert found.local and found.folder is not None and found.folder.resolve() == ROOT
    assert origin.hook_repo() == (str(ROOT), subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                                            text=True, check=True).stdout.strip())


def test_not_installed_is_a_usage_error() -> None:
    from dlgit.errors import UsageError

    with pytest.raises(UsageError, match="not installed here"):
        origin.installed("surely-not-installed-dlgit")


@pytest.mark.parametrize(("text", "entry"), [
    (FRAMEWORK_ENTRY, ("https://github.com/lab/dlgit", "3c4d")),
    ("repos:\n  - repo: local\n    hooks: [{id: mine}]\n  - {repo: 'git@host:lab/dlgit', rev: 12, hooks: [{id: dlgit-pre-push}]}\n",
     ("git@host:lab/dlgit", "12")),
    ("repos:\n  - repo: https://github.com/psf/black\n    rev: 24.1.0\n    hooks: [{id: black}]\n", None),
    ("repos: [\n", None),  # broken: other advice says so
    ("a: &a [*a, *a]\n", None),  # refused by the bounded loader
    ("- just a list\n", None),
])
def test_the_dlgit_entry_of_a_framework_config(text: str, entry: tuple[str, str] | None) -> None:
    assert origin.framework_entry(text, ("dlgit-policy", "dlgit-commit-msg", "dlgit-pre-push")) == entry


@pytest.mark.parametrize(("repo", "url"), [
    ("https://github.com/lab/dlgit", "git+https://github.com/lab/dlgit"),
    ("ssh://git@host/lab/dlgit.git", "git+ssh://git@host/lab/dlgit.git"),
    ("git@github.com:lab/dlgit.git", "git+ssh://git@github.com/lab/dlgit.git"),
    ("/home/me/dlgit", None), ("../dlgit", None), ("file:///home/me/dlgit", None), ("local", None), ("C:/dlgit", None),
])
def test_which_hook_repos_another_machine_can_install(repo: str, url: str | None) -> None:
    assert origin.pip_url(repo) == url


# --- dlgit ci: the install step -------------------------------------------------------------------


def _install_command(provider: str, toplevel: Path | None) -> tuple[str, str]:
    """(the install step's shell text, its comment) as the job file holds them, parsed back."""
    text = ci.render(provider, ci.install_step(provider, toplevel))
    data = yaml.safe_load(text)
    command = data["jobs"]["dlgit-check"]["steps"][2]["run"] if provider == "github" else data["dlgit-check"]["script"][0]
    comment = "\n".join(line for line in text.splitlines() if line.strip().startswith("# ") and "dlgit-managed" not in line)
    return command, comment


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_ci_installs_the_recorded_vcs_commit(provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_install(tmp_path, monkeypatch, VCS)
    command, comment = _install_command(provider, None)
    assert command == f"python -m pip install 'dlgit @ git+https://git.example.com/lab/dlgit.git@{SHA}'\n"
    assert "where the dlgit that wrote this job was installed from" in comment and "0.1.0" not in command


def test_ci_from_an_index_names_the_version_and_the_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_install(tmp_path, monkeypatch, None)
    command, comment = _install_command("github", None)
    assert command == "python -m pip install dlgit==9.9\n" and "pip --index-url" in comment


def test_ci_prefers_the_framework_configs_dlgit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_install(tmp_path, monkeypatch, VCS)
    (tmp_path / ".pre-commit-config.yaml").write_text(FRAMEWORK_ENTRY)
    command, comment = _install_command("gitlab", tmp_path)
    assert command == "python -m pip install 'dlgit @ git+https://github.com/lab/dlgit@3c4d'\n"
    assert "the dlgit of .pre-commit-config.yaml" in comment
    (tmp_path / ".pre-commit-config.yaml").write_text(FRAMEWORK_ENTRY.replace("https://github.com/lab/dlgit", "/home/me/dlgit"))
    assert SHA in _install_command("gitlab", tmp_path)[0]  # a local path: a runner cannot clone it


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_ci_from_a_local_folder_fails_and_says_what_to_put_there(provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = Repo(tmp_path / "dlgit checkout")
    checkout.path.mkdir()
    checkout.git("init", "-q")
    checkout.git("commit", "-q", "--allow-empty", "-m", "chore: start")
    checkout.git("remote", "add", "origin", "git@github.com:lab/dlgit.git")
    fake_install(tmp_path, monkeypatch, {"url": checkout.path.as_uri(), "dir_info": {"editable": True}})
    command, comment = _install_command(provider, None)
    assert "pip install" not in command  # nothing that would install some other dlgit
    assert f"{checkout.path.as_uri()}, which is on this machine only" in comment
    assert f"'dlgit @ git+ssh://git@github.com/lab/dlgit.git@{checkout.head()}'" in comment  # the checkout's remote, as a hint
    assert f"dlgit ci {provider} --write" in comment
    proc = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "does not know where to install dlgit from" in proc.stderr


def test_ci_in_this_environment_fails_with_placeholders(repo: Repo) -> None:
    """Through the command line: the work tree dlgit was installed from has no remote."""
    proc = repo.dlgit("ci", "github")
    assert proc.returncode == 0, proc.stderr
    assert "dlgit==" not in proc.stdout and "<git server>/<owner>/dlgit@<commit>" in proc.stdout
    assert "exit 1" in yaml.safe_load(proc.stdout)["jobs"]["dlgit-check"]["steps"][2]["run"]


# --- dlgit install in a framework repository: the snippet's repo and rev ------------------------------


def _snippet(stdout: str) -> tuple[str, str]:
    found = re.search(r"^  - repo: (.*?)(?:  #.*)?\n    rev: (.*)$", stdout, re.M)
    assert found, stdout
    return found.group(1), found.group(2)


def test_install_copies_the_repo_and_rev_of_the_configs_dlgit_entry(bare_repo: Repo) -> None:
    bare_repo.write(".pre-commit-config.yaml", FRAMEWORK_ENTRY)
    proc = bare_repo.dlgit("install")
    assert proc.returncode == 0, proc.stderr
    assert _snippet(proc.stdout) == ("https://github.com/lab/dlgit", "3c4d")


def test_install_names_the_checkout_dlgit_came_from_never_a_tag(bare_repo: Repo) -> None:
    bare_repo.write(".pre-commit-config.yaml", "repos: []\n")
    proc = bare_repo.dlgit("install")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert _snippet(proc.stdout) == (str(ROOT), head) and "v0.1.0" not in proc.stdout
    assert "a folder on this machine: whoever clones this repository needs a URL" in proc.stdout


def test_origin_of_a_vcs_install_is_the_hook_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_install(tmp_path, monkeypatch, VCS)
    assert origin.hook_repo() == ("https://git.example.com/lab/dlgit.git", SHA)
    assert Origin("dlgit", "1", None).folder is None


def test_hook_repo_placeholders_when_nothing_is_known(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_install(tmp_path, monkeypatch, {"url": "https://example.com/dlgit-9.9.tar.gz", "archive_info": {}})
    monkeypatch.setattr(origin, "__file__", os.fspath(tmp_path / "site" / "dlgit" / "origin.py"))
    assert origin.hook_repo() == (origin.PLACEHOLDER_REPO, origin.PLACEHOLDER_REV)
