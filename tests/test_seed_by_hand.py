"""Issue 15: the seed's §4.1 and §5.1–5.5 typed by hand, verbatim, with dlgit's hooks in force
(installed directly, and through the pre-commit framework), then `dlgit check` from the root.

Every command is what the seed types (`git merge --squash dev` + `git commit -m`, `git merge
--no-ff dev`, a VERSION commit, `git tag -a`, `git checkout dev && git merge main`, a task by
`checkout -b` / `cp -r` / commit / `merge --no-ff`, debug via `git stash`); none skips a hook.
The table covers both release ways, with and without dev merged back, the back-merge a
fast-forward or a real merge, and a second release after the first, so that a verdict given by
the hooks is still the verdict of `dlgit check` over the whole history afterwards.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import TEMPLATE_CONFIG, Repo, make_repo
from test_precommit_framework import HOOK_TYPES, PRE_COMMIT, framework_config  # noqa: F401  (a fixture)

STAMP = "20260101T000000"


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"{proc.args} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout + proc.stderr


def git(repo: Repo, *args: str) -> str:
    """A git command typed by hand, hooks in force: it must pass."""
    return ok(repo.git(*args, check=False))


def version(repo: Repo) -> str:
    match = re.search(r"^VERSION: (\S+)", (repo.path / "tasks/main/config.yaml").read_text(), re.M)
    assert match
    return match.group(1)


class Seed:
    """The seed's development process, step by step, as a researcher types it."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.round = 0

    def feature(self, name: str, path: str, text: str) -> None:
        """§5.2: a feature branch from dev, merged back into dev with a plain `git merge`."""
        r = self.repo
        git(r, "checkout", "dev")
        git(r, "checkout", "-b", name)
        r.write(path, text)
        git(r, "add", path)
        git(r, "commit", "-m", f"feat: {name.removeprefix('feature-')}")
        git(r, "checkout", "dev")
        git(r, "merge", name)

    def debug(self, fix: str) -> None:
        """§5.3: a debug branch from dev with a copy of tasks/main, a fix found there carried back to
        dev with `git stash` (the logs stay on the debug branch)."""
        r = self.repo
        name = f"debug-{version(r)}-{STAMP}-probe{self.round}"
        git(r, "checkout", "dev")
        git(r, "checkout", "-b", name)
        shutil.copytree(r.path / "tasks/main", r.path / "tasks" / name)
        (r.path / "tasks" / name / "log.txt").write_text("loss nan\n")
        r.write("model/net.py", fix)
        git(r, "add", "model/net.py")
        git(r, "stash")
        git(r, "add", f"tasks/{name}")
        git(r, "commit", "-m", "chore: debug logs")
        git(r, "checkout", "dev")
        git(r, "stash", "pop")
        git(r, "commit", "-a", "-m", "fix: the net diverged")

    def release(self, how: str, new: str) -> None:
        """§5.4.1–4: main takes dev (squash or --no-ff), the VERSION commit, the tag."""
        r = self.repo
        git(r, "checkout", "main")
        if how == "squash":
            git(r, "merge", "--squash", "dev")
            git(r, "commit", "-m", f"feat: release {new}")
        else:
            git(r, "merge", "--no-ff", "dev", "-m", f"feat: release {new}")
        old = version(r)
        config = r.path / "tasks/main/config.yaml"
        config.write_text(config.read_text().replace(f"VERSION: {old}", f"VERSION: {new}"))
        git(r, "commit", "-a", "-m", f"bump: version {old} → {new}")
        git(r, "tag", "-a", f"v{new}", "-m", f"my version {new}")

    def back_merge(self) -> str:
        """§5.4.5: `git checkout dev && git merge main` -> what git did."""
        git(self.repo, "checkout", "dev")
        return git(self.repo, "merge", "main")

    def task(self, desc: str, dev: bool = True) -> None:
        """§5.5: a task branch from main, tasks/main copied, its config edited, its results committed,
        then merged into main (and dev)."""
        r = self.repo
        name = f"task-{version(r)}-{STAMP}-{desc}"
        git(r, "checkout", "main")
        git(r, "checkout", "-b", name)
        shutil.copytree(r.path / "tasks/main", r.path / "tasks" / name)
        config = r.path / "tasks" / name / "config.yaml"
        config.write_text(config.read_text().replace("lr: 0.01", "lr: 0.1"))
        git(r, "add", f"tasks/{name}")
        git(r, "commit", "-m", f"task: start {desc}")
        (r.path / "tasks" / name / "log.txt").write_text("loss 0.1\n")
        git(r, "add", f"tasks/{name}")
        git(r, "commit", "-m", f"task: results of {desc}")
        for target in ("main", *(["dev"] if dev else [])):
            git(r, "checkout", target)
            git(r, "merge", "--no-ff", name, "-m", f"task: merge {name}")

    def checks(self) -> None:
        """`dlgit check` from the root, of main and of dev."""
        for branch in ("main", "dev"):
            out = ok(self.repo.dlgit("check", "--branch", branch, branch))
            assert "no violations" in out, out


def _layout(repo: Repo) -> None:
    repo.write("tasks/main/config.yaml", TEMPLATE_CONFIG)
    repo.write("tasks/main/train.py", "print('train')\n")
    repo.write("model/net.py", "NET = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-m", "chore: initial layout")
    git(repo, "checkout", "-b", "dev")  # §5.1


@pytest.fixture
def direct(tmp_path: Path) -> Repo:
    repo = make_repo(tmp_path / "seed")
    ok(repo.dlgit("install"))
    _layout(repo)
    return repo


@pytest.fixture
def framework(tmp_path: Path, framework_config: str) -> Repo:  # noqa: F811
    repo = make_repo(tmp_path / "seed")
    repo.write(".pre-commit-config.yaml", framework_config)
    subprocess.run([*PRE_COMMIT, "install", *(arg for hook in HOOK_TYPES for arg in ("-t", hook))], cwd=repo.path, check=True,
                   capture_output=True)
    _layout(repo)
    return repo


# (release way, back-merge): "none" (dev not merged back), "now" (right after the release: a
# fast-forward after --no-ff, a merge after a squash), "later" (dev moved on first: a real merge)
CASES = [(how, back) for how in ("squash", "no-ff") for back in ("none", "now", "later")]


def replay(seed: Seed, how: str, back: str) -> None:
    seed.feature("feature-loader", "data/loader.py", "LOADER = 1\n")
    seed.debug("NET = 2  # fixed\n")
    seed.release(how, "0.2.0")
    if back == "now":
        said = seed.back_merge()
        assert ("Fast-forward" in said) == (how == "no-ff"), said
    elif back == "later":
        seed.feature("feature-loss", "model/loss.py", "LOSS = 1\n")
        assert "Fast-forward" not in seed.back_merge()
    seed.task("lr0.1", dev=back != "none")  # into dev too once dev holds main (test below: the gap)
    seed.checks()
    # a second round on top: the first release's verdict must not have turned
    seed.round += 1
    seed.feature("feature-aug", "data/aug.py", "AUG = 1\n")
    seed.release(how, "0.3.0")
    seed.back_merge()
    seed.task("lr0.2")
    seed.checks()


def test_task_merged_by_hand_into_dev_not_merged_back(direct: Repo) -> None:
    """main released by hand, dev not merged back: a task from main merged by hand into main and
    dev brings main's release into dev too, which is what a back-merge brings: allowed."""
    seed = Seed(direct)
    seed.release("no-ff", "0.2.0")
    seed.task("lr0.1")
    seed.checks()


def _task_from(repo: Repo, start: str, desc: str, core: bool = False) -> str:
    """A task branch from `start` by hand, its folder committed; with `core`, a commit that also
    edits model/net.py (its commit hook skipped, as a user may)."""
    name = f"task-{version(repo)}-{STAMP}-{desc}"
    git(repo, "checkout", "-b", name, start)
    shutil.copytree(repo.path / "tasks/main", repo.path / "tasks" / name)
    git(repo, "add", f"tasks/{name}")
    git(repo, "commit", "-m", f"task: start {desc}")
    if core:
        repo.write("model/net.py", "NET = 'smuggled'\n")
        git(repo, "commit", "--no-verify", "-a", "-m", f"task: tune {desc}")
    return name


def _refused_into_dev(repo: Repo, name: str) -> None:
    """`git merge --no-ff` of the task into dev: refused by the hooks (task-scope); made anyway, by
    `dlgit check` of dev."""
    git(repo, "checkout", "dev")
    proc = repo.git("merge", "--no-ff", name, "-m", f"task: merge {name}", check=False)
    assert proc.returncode != 0 and "task-scope" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    repo.git("merge", "--abort", check=False)
    git(repo, "merge", "--no-ff", "--no-verify", name, "-m", f"task: merge {name}")
    proc = repo.dlgit("check", "--branch", "dev", "dev")
    assert proc.returncode == 1 and "task-scope" in proc.stdout and "model/net.py" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("hooks", ["direct", "framework"])
def test_task_touching_the_core_is_refused_in_its_merge_into_dev(hooks: str, request: pytest.FixtureRequest) -> None:
    """The same hand release, dev not merged back: a task commit that edits model/ is still refused
    when the task is merged into dev (main's commits are excused, the task's own are not)."""
    repo = request.getfixturevalue(hooks)
    Seed(repo).release("no-ff", "0.2.0")
    _refused_into_dev(repo, _task_from(repo, "main", "smuggle", core=True))


@pytest.mark.parametrize("hooks", ["direct", "framework"])
def test_a_fake_main_commit_is_not_excused(hooks: str, request: pytest.FixtureRequest) -> None:
    """A task started from a commit that looks like main's release but is not on main's chain: what
    that commit changes is the task's own, refused in its merge into dev."""
    repo = request.getfixturevalue(hooks)
    Seed(repo).release("no-ff", "0.2.0")
    git(repo, "checkout", "--detach", "main")
    repo.write("model/net.py", "NET = 'fake release'\n")
    git(repo, "commit", "--no-verify", "-a", "-m", "feat: release 0.2.0")
    fake = repo.head()
    _refused_into_dev(repo, _task_from(repo, fake, "fake"))


@pytest.mark.parametrize(("how", "back"), CASES, ids=[f"{how}-back-{back}" for how, back in CASES])
def test_seed_by_hand_with_direct_hooks(direct: Repo, how: str, back: str) -> None:
    replay(Seed(direct), how, back)


@pytest.mark.parametrize(("how", "back"), [("squash", "now"), ("no-ff", "now"), ("no-ff", "none")])
def test_seed_by_hand_with_the_framework(framework: Repo, how: str, back: str) -> None:
    replay(Seed(framework), how, back)


def test_git_pull_on_main_after_a_teammates_release_fast_forwards(direct: Repo, tmp_path: Path) -> None:
    """`dlgit install` changes no git command: a pull of main behind its remote fast-forwards
    (no `Merge branch 'main' of …` commit), `git merge --squash` is not refused by a config."""
    server = tmp_path / "server.git"
    git(direct, "clone", "-q", "--bare", str(direct.path), str(server))
    git(direct, "remote", "add", "origin", str(server))
    git(direct, "fetch", "-q", "origin")
    git(direct, "branch", "-u", "origin/main", "main")
    teammate = Repo(tmp_path)
    git(teammate, "clone", "-q", str(server), "mate")
    mate = Repo(tmp_path / "mate")
    ok(mate.dlgit("install"))
    git(mate, "checkout", "-q", "dev")
    assert mate.git("config", "--get", "branch.main.mergeOptions", check=False).stdout == ""
    Seed(mate).feature("feature-loader", "data/loader.py", "LOADER = 1\n")
    Seed(mate).release("squash", "0.2.0")
    git(mate, "push", "-q", "origin", "main", "v0.2.0")
    git(direct, "checkout", "main")
    said = git(direct, "pull")
    assert "Fast-forward" in said, said
    assert direct.head("main") == mate.head("main")
