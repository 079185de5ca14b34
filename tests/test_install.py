"""`dlgit install|uninstall|status` through real git: hooks written where git looks, then real
commits and merges blocked and allowed by them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, TEMPLATE_CONFIG, Repo

from dlgit.install import HOOKS, MARKER, Interpreter, recorded_interpreter, script

FRAMEWORK_FIX = "pre-commit install -t pre-merge-commit -t commit-msg -t pre-push"


def layout(repo: Repo) -> None:
    """The template task and some core code, committed on main as the root commit."""
    repo.write("tasks/main/config.yaml", TEMPLATE_CONFIG)
    repo.write("model/net.py", "NET = 1\n")
    repo.commit("chore: initial layout")


def hooks_dir(repo: Repo) -> Path:
    return repo.path / ".git" / "hooks"


def installed(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".sample")) if folder.exists() else []


def test_installed_hooks_block_and_allow_real_commits_and_merges(bare_repo: Repo) -> None:
    repo = bare_repo
    result = repo.dlgit("install")
    assert result.returncode == 0, result.stderr
    assert installed(hooks_dir(repo)) == sorted(HOOKS)
    layout(repo)  # the root commit is allowed on main
    repo.git("branch", "dev")

    repo.write("model/net.py", "NET = 2\n")
    blocked = repo.commit("feat: tweak on main", check=False)
    assert blocked.returncode == 1 and "main-protected" in blocked.stderr and "model/net.py" in blocked.stderr
    repo.git("switch", "dev")  # carries the staged change along
    assert repo.commit("wip", check=False).returncode == 1  # commit-msg hook
    repo.commit("feat: tweak")

    repo.git("switch", "-c", "feature-loader")
    repo.write("data/loader.py", "LOADER = 1\n")
    repo.commit("feat: loader")
    repo.git("switch", "main")
    merge = repo.git("merge", "--no-ff", "feature-loader", "-m", "feat: loader", check=False)
    assert merge.returncode != 0 and "merge-direction" in merge.stderr and "git merge --abort" in merge.stderr
    repo.git("merge", "--abort")
    repo.git("merge", "--no-ff", "dev", "-m", "feat: release the tweak")  # dev into main is allowed

    status = repo.dlgit("status")
    assert status.returncode == 0 and "missing" not in status.stdout
    python = recorded_interpreter(hooks_dir(repo) / "pre-commit")[0]  # type: ignore[index]
    assert all(f"{name:<17} dlgit — runs {python}\n" in status.stdout for name in HOOKS[:4])


def test_install_honours_core_hooks_path(bare_repo: Repo) -> None:
    repo = bare_repo
    repo.git("config", "core.hooksPath", "shared hooks")
    assert repo.dlgit("install").returncode == 0
    assert installed(repo.path / "shared hooks") == sorted(HOOKS)
    assert installed(hooks_dir(repo)) == []
    layout(repo)
    repo.write("model/net.py", "NET = 3\n")
    assert "main-protected" in repo.commit("feat: direct", "model/net.py", check=False).stderr


def test_install_from_a_worktree_serves_every_worktree(bare_repo: Repo, tmp_path: Path) -> None:
    repo = bare_repo
    layout(repo)  # before the hooks exist
    other = Repo(tmp_path / "dev worktree")
    repo.git("worktree", "add", "-b", "dev", str(other.path))
    assert other.dlgit("install").returncode == 0
    assert installed(hooks_dir(repo)) == sorted(HOOKS)  # the common hooks folder, not the worktree's
    other.write("model/net.py", "NET = 4\n")
    other.commit("feat: on dev")
    repo.write("model/net.py", "NET = 5\n")
    assert repo.commit("feat: on main", check=False).returncode == 1


def test_foreign_hook_is_refused_then_replaced_with_a_backup_and_restored(bare_repo: Repo) -> None:
    repo = bare_repo
    foreign = hooks_dir(repo) / "pre-commit"
    foreign.write_text("#!/bin/sh\necho foreign\n")
    foreign.chmod(0o755)

    refused = repo.dlgit("install")
    assert refused.returncode == 2
    assert str(foreign) in refused.stderr and "--force" in refused.stderr
    assert installed(hooks_dir(repo)) == ["pre-commit"]  # nothing written

    assert repo.dlgit("install", "--force").returncode == 0
    backup = hooks_dir(repo) / "pre-commit.dlgit-backup"
    assert backup.read_text() == "#!/bin/sh\necho foreign\n" and MARKER in foreign.read_text()
    again = repo.dlgit("install")
    assert again.returncode == 0 and again.stdout.count("already installed") == len(HOOKS)

    assert repo.dlgit("uninstall").returncode == 0
    assert installed(hooks_dir(repo)) == ["pre-commit"] and foreign.read_text() == "#!/bin/sh\necho foreign\n"


def test_install_with_a_pre_commit_config_prints_the_framework_instructions(bare_repo: Repo) -> None:
    repo = bare_repo
    repo.write(".pre-commit-config.yaml", "repos: []\n")
    result = repo.dlgit("install")
    assert result.returncode == 0, result.stderr
    assert installed(hooks_dir(repo)) == []
    for line in ("  - repo: ", "    rev: ", "      - id: dlgit-policy", "      - id: dlgit-commit-msg", "      - id: dlgit-pre-push",
                 "pre-commit install -t pre-commit -t pre-merge-commit -t commit-msg -t pre-push", "#1908"):
        assert line in result.stdout


def test_shipped_hook_scripts_are_what_install_writes_and_explain_a_missing_dlgit(bare_repo: Repo) -> None:
    for name in HOOKS:
        path = ROOT / "hooks" / name
        assert path.read_text() == script(name) and os.access(path, os.X_OK)
    proc = subprocess.run([str(ROOT / "hooks" / "pre-commit")], cwd=bare_repo.path, capture_output=True, text=True,
                          env={**os.environ, "PATH": NO_DLGIT_PATH}, check=False)
    assert proc.returncode == 1 and "dlgit is not on PATH" in proc.stderr and "--no-verify" in proc.stderr
    assert "pip install dlgit" not in proc.stderr and "pip install 'git+<URL of the dlgit repository>'" in proc.stderr


def test_status_without_hooks_says_what_is_allowed_and_how_to_install(bare_repo: Repo) -> None:
    repo = bare_repo
    layout(repo)
    repo.git("switch", "-c", "task-0.1.0-20261128T062233-lr0.01")
    result = repo.dlgit("status")
    assert result.returncode == 1, result.stderr  # a hook dlgit needs is missing
    assert "(kind: task)" in result.stdout and "only tasks/task-0.1.0-20261128T062233-lr0.01/" in result.stdout
    assert result.stdout.count("missing") == 5 and "  dlgit install" in result.stdout  # the 4 client hooks and reference-transaction
    assert repo.dlgit("install").returncode == 0
    assert repo.dlgit("status").returncode == 0


def test_status_spots_the_plain_pre_commit_install_pitfall(bare_repo: Repo) -> None:
    repo = bare_repo
    repo.write(".pre-commit-config.yaml", "repos:\n  - repo: x\n    rev: v1\n    hooks:\n      - id: dlgit-policy\n"
               "      - id: dlgit-commit-msg\n      - id: dlgit-pre-push\n")
    subprocess.run([sys.executable, "-m", "pre_commit", "install"], cwd=repo.path, check=True, capture_output=True)
    result = repo.dlgit("status")
    assert result.returncode == 1, result.stderr  # framework hook types missing count as missing hooks too
    assert "pre-commit        pre-commit framework" in result.stdout and "plain `pre-commit install`" in result.stdout
    assert f"  {FRAMEWORK_FIX}\n" in result.stdout
    subprocess.run([sys.executable, "-m", "pre_commit", *FRAMEWORK_FIX.split()[1:]], cwd=repo.path, check=True, capture_output=True)
    covered = repo.dlgit("status")
    assert covered.returncode == 0 and "fix:" not in covered.stdout, covered.stdout


def test_status_says_when_the_reference_transaction_hook_guards_old_branch_names(bare_repo: Repo) -> None:
    """The hook bakes main's and dev's names when it is written: after a .dlgit.yaml renames main, status
    says it is stale and prints the one command that rewrites it."""
    repo = bare_repo
    layout(repo)
    assert repo.dlgit("install").returncode == 0
    fresh = repo.dlgit("status")
    assert fresh.returncode == 0 and "reference-transaction dlgit — up to date: guards fast-forwards of main and dev" in fresh.stdout
    repo.write(".dlgit.yaml", "branches:\n  main: trunk\n")
    stale = repo.dlgit("status")
    assert stale.returncode == 1 and "stale: written for other branch names than trunk and dev" in stale.stdout, stale.stdout
    fix = next(line.split("#")[0].strip() for line in stale.stdout.splitlines() if line.strip().startswith("dlgit install"))
    assert repo.dlgit(*fix.split()[1:]).returncode == 0
    assert "refs/heads/trunk" in (hooks_dir(repo) / "reference-transaction").read_text()
    again = repo.dlgit("status")
    assert again.returncode == 0 and "guards fast-forwards of trunk and dev" in again.stdout, again.stdout


def test_status_of_a_server_shows_its_hooks_and_the_tag_guard(tmp_path: Path) -> None:
    server = Repo(tmp_path / "server.git")
    Repo(tmp_path).git("init", "-q", "--bare", str(server.path))
    bare = server.dlgit("status")
    assert bare.returncode == 1 and "pre-receive            missing" in bare.stdout and "dlgit install --server" in bare.stdout
    assert server.dlgit("install", "--server").returncode == 0
    ready = server.dlgit("status")
    assert ready.returncode == 0 and "post-receive           dlgit" in ready.stdout, ready.stdout
    assert "reference-transaction  up to date" in ready.stdout and "(not in place now)" in ready.stdout


def test_status_outside_a_repository_is_a_usage_error(tmp_path: Path) -> None:
    result = Repo(tmp_path).dlgit("status")
    assert result.returncode == 2 and "not inside a git repository" in result.stderr


def test_status_on_a_detached_head(bare_repo: Repo) -> None:
    layout(bare_repo)
    bare_repo.git("switch", "--detach")
    assert "HEAD is detached" in bare_repo.dlgit("status").stdout



# --- hooks remember the Python that ran `dlgit install` ----------------------------------------------

NO_DLGIT_PATH = "/usr/bin:/bin"  # git, sh; no dlgit (an activated environment without it)


def _hook(repo: Repo, name: str = "pre-commit") -> Path:
    return hooks_dir(repo) / name


def _on_main_with_a_change(repo: Repo) -> None:
    layout(repo)
    repo.git("branch", "dev")
    repo.write("model/net.py", "NET = 2\n")
    repo.git("add", "model/net.py")


def _commit(repo: Repo, path: str = os.environ.get("PATH", "")) -> subprocess.CompletedProcess[str]:
    return repo.git("commit", "-m", "feat: on main", check=False, env={"PATH": path})


def test_installed_hooks_run_their_python_whatever_is_on_path(bare_repo: Repo) -> None:
    import shutil

    assert shutil.which("dlgit", path=NO_DLGIT_PATH) is None and shutil.which("git", path=NO_DLGIT_PATH)
    repo = bare_repo
    assert repo.dlgit("install").returncode == 0
    assert _hook(repo).read_text().startswith("#!/bin/sh\n" + MARKER)
    python, package = recorded_interpreter(_hook(repo)) or ("", "")
    # the Python of the dlgit that ran, and the package that Python imports (an editable checkout, or site-packages)
    imported = subprocess.run([sys.executable, "-c", "import dlgit, os; print(os.path.dirname(dlgit.__file__))"], cwd=repo.path,
                              capture_output=True, text=True, check=True).stdout.strip()
    assert os.path.samefile(python, sys.executable) and os.path.samefile(package, imported)
    _on_main_with_a_change(repo)
    # the repository's own modules named like the standard library's do not shadow them
    for module in ("signal", "typing", "subprocess", "dlgit"):
        repo.write(f"{module}.py", f"raise SystemExit('imported the repository\\'s {module}.py')\n")
    blocked = _commit(repo, NO_DLGIT_PATH)
    assert blocked.returncode == 1 and "main-protected" in blocked.stderr, blocked.stderr


def test_a_hook_whose_python_lost_dlgit_falls_back_to_path_then_names_both(bare_repo: Repo) -> None:
    repo = bare_repo
    _on_main_with_a_change(repo)
    gone = Interpreter("/gone/env/bin/python", "/gone/env/lib/dlgit", "dlgit @ git+https://git.example.com/dlgit@1a2b")
    _hook(repo).write_text(script("pre-commit", gone))
    _hook(repo).chmod(0o755)
    fallback = _commit(repo)
    assert fallback.returncode == 1 and "main-protected" in fallback.stderr  # dlgit from PATH judged it
    neither = _commit(repo, NO_DLGIT_PATH)
    assert neither.returncode == 1 and "main-protected" not in neither.stderr
    assert "/gone/env/bin/python (which ran `dlgit install`) no longer has it and dlgit is not on PATH" in neither.stderr
    assert "pip install 'dlgit @ git+https://git.example.com/dlgit@1a2b'" in neither.stderr and "git commit --no-verify" in neither.stderr
    status = repo.dlgit("status")
    assert "pre-commit        dlgit — /gone/env/bin/python no longer has dlgit, so it runs dlgit from PATH" in status.stdout


def test_old_style_hooks_still_count_as_dlgits_and_install_rewrites_them(bare_repo: Repo) -> None:
    repo = bare_repo
    layout(repo)
    hooks_dir(repo).mkdir(exist_ok=True)
    for name in HOOKS:  # what an older dlgit install wrote (and hooks/ still holds): dlgit from PATH
        _hook(repo, name).write_text(script(name))
        _hook(repo, name).chmod(0o755)
    status = repo.dlgit("status")
    assert status.returncode == 0, status.stdout
    assert status.stdout.count("dlgit — runs dlgit from PATH (`dlgit install` rewrites it to remember this Python)") == 4
    upgrade = repo.dlgit("install")
    assert upgrade.returncode == 0 and upgrade.stdout.count("updated") == len(HOOKS)
    assert all(recorded_interpreter(_hook(repo, name)) is not None for name in HOOKS)
    assert repo.dlgit("uninstall").returncode == 0 and installed(hooks_dir(repo)) == []


def test_install_server_sets_up_the_server_repository(tmp_path: Path) -> None:
    """pre-receive and reference-transaction (the server's), receive.fsckObjects, reflogs for every
    ref, and the settings pinned; a `..` tree entry (git mktree) is then refused at receive."""
    server = Repo(tmp_path / "server.git")
    Repo(tmp_path).git("init", "-q", "--bare", str(server.path))
    result = server.dlgit("install", "--server")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(server.path / "hooks") == ["post-receive", "pre-receive"]  # reference-transaction: only while a tag is pushed
    assert (server.path / "dlgit" / "reference-transaction").is_file()
    assert server.git("config", "receive.fsckObjects").stdout.strip() == "true"
    assert server.git("config", "core.logAllRefUpdates").stdout.strip() == "always"
    assert server.git("config", "gc.reflogExpire").stdout.strip() == "never"
    assert server.git("config", "gc.reflogExpireUnreachable").stdout.strip() == "never"
    pinned = server.path / "dlgit" / "server-settings.yaml"
    assert "the defaults (no refs/heads/main yet)" in pinned.read_text()
    again = server.dlgit("install")  # in a bare repository: the server's set-up, the pin kept
    assert again.returncode == 0 and "kept" in again.stdout and again.stdout.count("already installed") == 3
    work = Repo(tmp_path / "work")
    Repo(tmp_path).git("clone", "-q", str(server.path), str(work.path))
    work.git("switch", "-q", "-c", "main")
    blob = work.git("hash-object", "-w", "--stdin", input="NET = 666\n").stdout.strip()
    model = work.git("mktree", input=f"100644 blob {blob}\tnet.py\n").stdout.strip()
    escape = work.git("mktree", input=f"040000 tree {model}\t..\n").stdout.strip()
    hostile = work.git("commit-tree", escape, "-m", "chore: initial layout").stdout.strip()
    pushed = work.git("push", "--no-verify", "origin", f"{hostile}:refs/heads/main", check=False)
    assert pushed.returncode != 0 and server.git("rev-parse", "-q", "--verify", "refs/heads/main", check=False).returncode != 0
