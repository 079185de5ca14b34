"""Sub-tasks, the pure parts in-process: grid expansion and ids as a table, ids kept when values are
added, hostile values, the effective config, index.csv; then `start-task --sweep` through real git
(what it writes, what it refuses before anything moves)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE_CONFIG, Repo

from dlgit.tasks import sweep as sw

BASE = TEMPLATE_CONFIG + "seed: 0\noptimizer:\n  name: sgd  # the optimizer\n  momentum: 0.9\n"


def block(body: str) -> str:
    return BASE + "sweep:\n" + body


@pytest.mark.parametrize(("sweep_block", "ids"), [
    ("  grid:\n    lr: [0.01, 0.1]\n    seed: [1, 2]\n",
     ["lr=0.01,seed=1", "lr=0.01,seed=2", "lr=0.1,seed=1", "lr=0.1,seed=2"]),
    ("  grid:\n    seed: [1]\n    lr: [0.1]\n", ["lr=0.1,seed=1"]),  # keys sorted in the id
    ("  grid:\n    optimizer:\n      name: [adam, sgd]\n", ["optimizer.name=adam", "optimizer.name=sgd"]),  # nested = dotted
    ("  grid:\n    optimizer.momentum: [0.5]\n", ["optimizer.momentum=0.5"]),
    ("  list:\n    - {lr: 0.3, seed: 7}\n    - {optimizer: {name: adam}}\n", ["lr=0.3,seed=7", "optimizer.name=adam"]),
    ("  grid:\n    lr: [0.1]\n  list:\n    - {lr: 0.5}\n", ["lr=0.1", "lr=0.5"]),  # grid then list
    ("  grid:\n    TRAIN: [true, false, null]\n", ["TRAIN=true", "TRAIN=false", "TRAIN=null"]),
    ("  grid:\n    lr: [1.0e-05, 0.001]\n", ["lr=1.0e-05", "lr=0.001"]),
    ("  grid:\n    seed: [1, '1']\n", ["seed=1", "seed='1'"]),  # a string that reads as a number is quoted: two ids
    ("  grid:\n    shape: [[1, 2], {a: 1}]\n", ["shape=[1%2C%202]", "shape={a%3A%201}"]),
    ("  grid:\n    name: ['x/../y', '..', 'a b', 'é', '%2F', 'C:\\\\x']\n",
     ["name=x%2F..%2Fy", "name=..", "name=a%20b", "name=é", "name='%252F'", "name='C%3A%5C%5Cx'"]),
    ("  grid:\n    name: [Adam, adam]\n", ["name=Adam", "name=adam~" + sw.hashed_id((("name", "adam"),)).split("~")[1]]),
])
def test_grid_expansion_and_ids(sweep_block: str, ids: list[str]) -> None:
    found = sw.read(block(sweep_block))
    assert found is not None
    assert [subtask.id for subtask in found.subtasks] == ids
    assert sw.ids_from_config(block(sweep_block)) == ids


def test_ids_depend_on_their_own_values_only() -> None:
    assert sw.plain_id([("seed", 1), ("lr", 0.1)]) == sw.plain_id([("lr", 0.1), ("seed", 1)]) == "lr=0.1,seed=1"
    assert sw.plain_id([]) == "base"


def test_a_long_value_gets_a_short_stable_hashed_id() -> None:
    value = "v" * 300
    found = sw.read(block(f"  grid:\n    name: [{value}, {value}w]\n"))
    assert found is not None
    first, second = (subtask.id for subtask in found.subtasks)
    assert first != second
    for sid in (first, second):
        assert len(sid.encode()) <= sw.MAX_ID_BYTES and sid.startswith("name=vvv") and "~" in sid
    assert first == sw.hashed_id([("name", value)])  # the same every time


def test_a_long_unicode_value_is_cut_on_a_character_and_never_inside_an_escape() -> None:
    for value in ("é" * 200, "a/" * 100):
        sid = sw.hashed_id([("name", value)])
        assert len(sid.encode()) <= sw.MAX_ID_BYTES
        head = sid.rsplit("~", 1)[0]
        assert "%" not in head[-2:]
        head.encode().decode()


def test_adding_values_keeps_every_id(tmp_path: Path) -> None:
    task_dir = tmp_path / "task"
    task_dir.mkdir()
    first = block("  grid:\n    lr: [0.1, 0.01]\n    name: [adam]\n")
    (task_dir / "config.yaml").write_text(first)
    before = sw.subtask_ids(task_dir)
    sweep = sw.load(task_dir)
    assert sweep is not None
    sw.write_index(task_dir, sweep, {})
    # values added (one that collides with an existing id in another letter case), keys reordered
    (task_dir / "config.yaml").write_text(block("  grid:\n    name: [adam, Adam]\n    lr: [0.001, 0.1, 0.01]\n"))
    after = sw.subtask_ids(task_dir)
    assert set(before) <= set(after) and len(after) == 6
    assert "name=adam,lr=0.1" not in after and "lr=0.1,name=adam" in after
    assert [sid for sid in after if sid.casefold().startswith("lr=0.1,name=adam")] == ["lr=0.1,name=adam",
                                                                                     sw.hashed_id([("lr", 0.1), ("name", "Adam")])]


def test_hostile_ids_stay_inside_the_task_folder(tmp_path: Path) -> None:
    task_dir = tmp_path / "tasks" / "t"
    values = ["../../../etc", "/abs", "..", ".", "a\\b", "x\ny", "\x00", "é/ü", "v" * 300, "-rf", "~", "$(id)", "`id`"]
    text = block("  grid:\n    name: [" + ", ".join(yaml.safe_dump(v, default_style='"').strip() for v in values) + "]\n")
    found = sw.read(text)
    assert found is not None and len(found.subtasks) == len(values)
    ids = [subtask.id for subtask in found.subtasks]
    assert len(set(ids)) == len(ids)
    for sid in ids:
        path = sw.folder(task_dir, sid)
        assert path.parent == task_dir / sw.SUBTASKS and path.name == sid
        assert "/" not in sid and "\\" not in sid and "\n" not in sid and "\x00" not in sid and sid not in (".", "..")
        assert len(sid.encode()) <= sw.MAX_ID_BYTES
    with pytest.raises(sw.SweepError):
        sw.folder(task_dir, "../x")


@pytest.mark.parametrize(("sweep_block", "message"), [
    ("  grid: {}\n", "no sub-task"),
    ("  grid:\n    lr: []\n", "non-empty list"),
    ("  grid:\n    lr: 0.1\n", "non-empty list"),
    ("  grid:\n    lr: [0.1, 0.1]\n", "twice"),
    ("  grid:\n    VERSION: [1.0.0]\n", "VERSION"),
    ("  list:\n    - {VERSION: 1.0.0}\n", "VERSION"),
    ("  grid:\n    lr: [0.1]\n  seeds: [1]\n", "must be a map"),
    ("  - lr\n", "must be a map"),
    ("  list: {lr: 1}\n", "list of maps"),
])
def test_malformed_sweeps_are_refused(sweep_block: str, message: str) -> None:
    with pytest.raises(sw.SweepError, match=message):
        sw.read(block(sweep_block))


def test_more_than_the_limit_is_refused_without_expanding() -> None:
    text = block("  grid:\n" + "".join(f"    k{i}: [{', '.join(map(str, range(10)))}]\n" for i in range(9)))
    with pytest.raises(sw.SweepError, match=r"1000000000 sub-tasks, more than tasks\.max_subtasks"):
        sw.read(text, limit=1000)


def test_the_effective_config_keeps_the_text_and_drops_the_block() -> None:
    text = block("  grid:\n    lr: [0.5]\n    optimizer.name: [adam]\n") + "after: 1  # kept\n"
    found = sw.read(text)
    assert found is not None
    effective = sw.effective_config(text, found.subtasks[0], add=False)
    assert "sweep" not in effective and "after: 1  # kept" in effective
    assert "  name: adam  # the optimizer\n" in effective and "lr: 0.5\n" in effective
    assert yaml.safe_load(effective)["optimizer"] == {"name": "adam", "momentum": 0.9}
    assert sw.base_text(BASE) == BASE


def test_unknown_keys_need_add() -> None:
    text = sw.write_grid(BASE, ["lrr=0.1,0.2"], add=False)
    with pytest.raises(sw.SweepError, match=r"unknown key 'lrr'.*--add"):
        sw.declare(text, [], add=False, limit=1000)
    added = sw.declare(BASE, ["lrr=0.1,0.2"], add=True, limit=1000)
    found = sw.read(added)
    assert found is not None and found.add
    assert "lrr: 0.1" in sw.effective_config(added, found.subtasks[0], found.add)


@pytest.mark.parametrize(("option", "values"), [
    ("lr=0.01,0.1", [0.01, 0.1]),
    ("lr=1e-3,1e-4", [0.001, 0.0001]),
    ("shape=[1, 2],[3, 4]", [[1, 2], [3, 4]]),
    ("name='a,b',c", ["a,b", "c"]),
    ("flag=true,no,null", [True, False, None]),
    ("opt={a: 1, b: 2},x", [{"a": 1, "b": 2}, "x"]),
])
def test_sweep_options_are_typed_as_yaml(option: str, values: list[object]) -> None:
    assert sw.parse_option(option)[1] == values


@pytest.mark.parametrize("option", ["lr", "lr=", "=1,2", "lr=a: b"])
def test_bad_sweep_options(option: str) -> None:
    with pytest.raises(sw.SweepError):
        sw.parse_option(option)


def test_index_csv_lists_every_subtask(tmp_path: Path) -> None:
    task_dir = tmp_path / "task"
    task_dir.mkdir()
    (task_dir / "config.yaml").write_text(block("  grid:\n    lr: [0.1, 0.01]\n    seed: [1]\n"))
    found = sw.load(task_dir)
    assert found is not None
    sw.write_index(task_dir, found, {"lr=0.1,seed=1": sw.State(sw.DONE, 0, "20260101T000000", 1.5, None)})
    rows = sw.read_index(task_dir)
    assert [(r["id"], r["lr"], r["seed"], r["status"], r["exit_code"], r["duration_s"]) for r in rows] == [
        ("lr=0.1,seed=1", "0.1", "1", "done", "0", "1.5"), ("lr=0.01,seed=1", "0.01", "1", "pending", "", "")]
    assert not list((task_dir / sw.SUBTASKS).glob(".*"))  # no temp or lock file left to commit


# --- start-task --sweep, real git ------------------------------------------------------------------


def test_start_task_sweep_writes_the_block_and_commits(repo: Repo) -> None:
    proc = repo.dlgit("start-task", "--sweep", "lr=0.01,0.1", "--sweep", "RANDOM_SEED=1,2,3")
    assert proc.returncode == 0, proc.stderr
    branch = repo.branch()
    assert "lr0.01-0.1-RANDOM_SEED1-2-3" in branch
    text = (repo.path / f"tasks/{branch}/config.yaml").read_text()
    assert text.startswith(TEMPLATE_CONFIG)
    assert yaml.safe_load(text)["sweep"] == {"grid": {"lr": [0.01, 0.1], "RANDOM_SEED": [1, 2, 3]}}
    assert sw.subtask_ids(repo.path / f"tasks/{branch}")[0] == "RANDOM_SEED=1,lr=0.01"
    assert repo.git("status", "--porcelain").stdout == ""


@pytest.mark.parametrize(("args", "message"), [
    (["--sweep", "nope=1,2"], "unknown key 'nope'"),
    (["--sweep", "VERSION=1.0.0,2.0.0"], "VERSION is the task's own"),
    (["--sweep", "lr="], "no values"),
    (["--sweep", "lr=1,1"], "twice"),
    (["--sweep", "lr=" + ",".join(map(str, range(40))), "--sweep", "RANDOM_SEED=" + ",".join(map(str, range(30)))],
     "1200 sub-tasks, more than tasks.max_subtasks (1000)"),
])
def test_start_task_sweep_refusals_change_nothing(repo: Repo, args: list[str], message: str) -> None:
    before = repo.git("for-each-ref").stdout, repo.git("status", "--porcelain").stdout
    proc = repo.dlgit("start-task", *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert (repo.git("for-each-ref").stdout, repo.git("status", "--porcelain").stdout) == before


def test_start_task_sweep_with_add_and_the_limit_setting(repo: Repo) -> None:
    repo.write(".dlgit.yaml", "tasks:\n  max_subtasks: 2\n")
    repo.commit("chore: a small sweep limit", ".dlgit.yaml", extra=("--no-verify",))
    proc = repo.dlgit("start-task", "--sweep", "lr=1,2,3")
    assert proc.returncode == 2 and "more than tasks.max_subtasks (2)" in proc.stderr
    proc = repo.dlgit("start-task", "wd", "--add", "--sweep", "wd=0,0.1")
    assert proc.returncode == 0, proc.stderr
    assert sw.subtask_ids(repo.path / f"tasks/{repo.branch()}") == ["wd=0", "wd=0.1"]


def test_a_running_record_whose_pid_is_gone_or_reused_was_cut_off(tmp_path: Path) -> None:
    import os
    import socket
    from datetime import datetime, timedelta, timezone

    runs = tmp_path / "runs"
    runs.mkdir()
    now = datetime.now(timezone.utc)
    for start, status in ((now, sw.RUNNING), (now - timedelta(days=400), sw.INTERRUPTED)):  # the pid is ours, reused: a reboot
        (runs / "20260101T000000.yaml").write_text(yaml.safe_dump({"state": "running", "pid": os.getpid(),
                                                                    "host": socket.gethostname(), "start": start.isoformat()}))
        assert sw.state(tmp_path).status == status
    (runs / "20260101T000000.yaml").write_text(yaml.safe_dump({"state": "running", "pid": 2 ** 22 + 7,
                                                                "host": socket.gethostname(), "start": now.isoformat()}))
    assert sw.state(tmp_path).status == sw.INTERRUPTED
    (runs / "20260101T000000-1.yaml").write_text(yaml.safe_dump({"state": "running", "pid": 1, "host": "a-cluster-node"}))
    assert sw.state(tmp_path).status == sw.RUNNING  # another host's: assumed alive
    assert sw.state(tmp_path).last_run == "20260101T000000-1"
