"""Config edits of `start-task --set` (in-process, whole file texts compared), plus a task branch
started through real git whose edited config the hooks judge."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timezone

import pytest
import yaml
from conftest import TEMPLATE_CONFIG, Repo

from dlgit import model
from dlgit.config import Settings
from dlgit.policy.rules import config_problems
from dlgit.tasks import yamledit
from dlgit.tasks.yamledit import EditError, UnknownKey, apply_overrides, desc_slug, set_key

CONFIG = """\
# the template task: every task branch starts from a copy of this folder
# (comments, order and layout must survive an edit)

VERSION: 0.1.0        # the core version
DEBUG: false
RESUME: ~
TRAIN: yes
name: 'resnet'
lr:        0.1   # aligned
momentum:  0.9
empty:
optimizer:
    kind: "sgd"   # quoted
    nesterov: true

# data
data: {path: data/train, workers: 4}
"""


def edited(text: str, old: str, new: str, count: int = 1) -> str:
    """`text` with `old` replaced by `new` exactly `count` times: the expected whole file."""
    assert text.count(old) == count, old
    return text.replace(old, new)


# --- values set in place -------------------------------------------------------------------------


@pytest.mark.parametrize("override, line, value", [
    ("lr=0.01", "lr:        0.01   # aligned", 0.01),
    ("lr=1e-3", "lr:        0.001   # aligned", 0.001),  # PyYAML would read 1e-3 as a string
    ("lr=5E+2", "lr:        500.0   # aligned", 500.0),
    ("lr=true", "lr:        true   # aligned", True),
    ("lr=no", "lr:        false   # aligned", False),
    ("lr=null", "lr:        null   # aligned", None),
    ("lr=~", "lr:        null   # aligned", None),
    ("lr=[1, 2]", "lr:        [1, 2]   # aligned", [1, 2]),
    ("lr={a: 1, b: [x]}", "lr:        {a: 1, b: [x]}   # aligned", {"a": 1, "b": ["x"]}),
    ("lr='0.1'", "lr:        '0.1'   # aligned", "0.1"),
    ('lr="1e-3"', "lr:        '1e-3'   # aligned", "1e-3"),  # quoted: YAML 1.2 readers would see a float
    ("lr='a: b'", "lr:        'a: b'   # aligned", "a: b"),
    ("lr=a,b", "lr:        'a,b'   # aligned", "a,b"),  # quoted as a flow map or list needs it
    ("lr=x=y", "lr:        x=y   # aligned", "x=y"),
    ("lr=  spaced  ", "lr:        spaced   # aligned", "spaced"),
    ('lr="two\\nlines"', 'lr:        "two\\nlines"   # aligned', "two\nlines"),
    ("lr=学习率", "lr:        学习率   # aligned", "学习率"),
    ("lr=0x10", "lr:        16   # aligned", 16),
    ("lr=2026-01-02", "lr:        2026-01-02   # aligned", datetime(2026, 1, 2).date()),
])
def test_a_value_is_typed_as_yaml_and_only_its_text_changes(override: str, line: str, value: object) -> None:
    result = apply_overrides(CONFIG, [override])
    assert result == edited(CONFIG, "lr:        0.1   # aligned", line)
    assert yaml.safe_load(result)["lr"] == value


def test_several_overrides_nested_keys_and_the_last_one_wins() -> None:
    result = apply_overrides(CONFIG, ["optimizer.kind=adam", "data.workers=8", "name=vit", "DEBUG=true", "data.workers=16"])
    expected = edited(CONFIG, 'kind: "sgd"   # quoted', "kind: adam   # quoted")
    expected = edited(expected, "workers: 4}", "workers: 16}")
    expected = edited(expected, "name: 'resnet'", "name: vit")
    assert result == edited(expected, "DEBUG: false", "DEBUG: true")


def test_an_empty_value_and_a_tilde_are_replaced_in_place() -> None:
    assert apply_overrides(CONFIG, ["empty=3"]) == edited(CONFIG, "empty:\n", "empty: 3\n")
    assert apply_overrides("a:   # none yet\nb: 1\n", ["a=2"]) == "a: 2   # none yet\nb: 1\n"
    assert set_key(CONFIG, "RESUME", "tasks/task-0.1.0-20260101T000000-a/checkpoints/last.pt") == edited(
        CONFIG, "RESUME: ~", "RESUME: tasks/task-0.1.0-20260101T000000-a/checkpoints/last.pt")


def test_flow_style_maps() -> None:
    text = "optimizer: {lr: 0.1, momentum: 0.9}  # sgd\nempty: {}\nspaced: { a: 1 }\n"
    assert apply_overrides(text, ["optimizer.momentum=0.5"]) == "optimizer: {lr: 0.1, momentum: 0.5}  # sgd\nempty: {}\nspaced: { a: 1 }\n"
    assert apply_overrides(text, ["optimizer.wd=1e-4", "empty.x=[1]", "spaced.b=2", "optimizer.sched.kind=cos"], add=True) == (
        "optimizer: {lr: 0.1, momentum: 0.9, wd: 0.0001, sched: {kind: cos}}  # sgd\nempty: {x: [1]}\nspaced: { a: 1, b: 2 }\n")
    assert apply_overrides("{a: 1}\n", ["b=x, y"], add=True) == "{a: 1, b: 'x, y'}\n"  # quoted inside a flow map


def test_a_block_value_is_replaced_whole_on_its_key_line() -> None:
    text = "gpus:   # which\n  - 0\n  - 1  # one\nnotes: |\n  line 1\n  line 2\n\nnext: 1\n"
    assert apply_overrides(text, ["gpus=[0, 1, 2]"]) == "gpus: [0, 1, 2]   # which\nnotes: |\n  line 1\n  line 2\n\nnext: 1\n"
    assert apply_overrides(text, ["notes=short"]) == "gpus:   # which\n  - 0\n  - 1  # one\nnotes: short\n\nnext: 1\n"
    assert apply_overrides(CONFIG, ["optimizer=adam"]) == edited(CONFIG, 'optimizer:\n    kind: "sgd"   # quoted\n    nesterov: true\n',
                                                                 "optimizer: adam\n")


def test_crlf_files_keep_their_line_endings() -> None:
    text = CONFIG.replace("\n", "\r\n")
    result = apply_overrides(text, ["lr=0.5", "optimizer.wd=0.01", "new.deep=1"], add=True)
    expected = edited(text, "lr:        0.1", "lr:        0.5")
    expected = edited(expected, "    nesterov: true\r\n", "    nesterov: true\r\n    wd: 0.01\r\n")
    assert result == expected + "new:\r\n    deep: 1\r\n"
    assert "\n" not in result.replace("\r\n", "")
    assert set_key("a: 1\r\nb: 2", "c", True) == "a: 1\r\nb: 2\r\nc: true\r\n"


def test_a_leading_comment_block_and_a_document_start_stay() -> None:
    text = "%YAML 1.1\n---\n# about\n# this file\n\nlr: 0.1 # x\n"
    assert apply_overrides(text, ["lr=0.2"]) == "%YAML 1.1\n---\n# about\n# this file\n\nlr: 0.2 # x\n"
    assert apply_overrides("# only a comment\n", ["lr=0.2"], add=True) == "# only a comment\nlr: 0.2\n"
    assert apply_overrides("", ["a.b=1"], add=True) == "a:\n  b: 1\n"
    assert apply_overrides("# empty\n---\n", ["a=1"], add=True) == "# empty\n---\na: 1\n"
    assert apply_overrides("# no newline", ["a=1"], add=True) == "# no newline\na: 1\n"


def test_unicode_keys_and_values() -> None:
    text = "学习率: 0.1  # 注释\n模型:\n  名字: 'résumé'\n"
    assert apply_overrides(text, ["学习率=0.2", "模型.名字=ünïcode ✓"]) == "学习率: 0.2  # 注释\n模型:\n  名字: ünïcode ✓\n"
    assert apply_overrides(text, ["模型.层=12"], add=True) == text + "  层: 12\n"


# --- anchors and aliases -------------------------------------------------------------------------

ANCHORED = """\
base: &base
  lr: 0.1   # shared
  momentum: 0.9
sgd: *base
derived:
  <<: *base
  momentum: 0.5
seed: &seed 42
"""


def test_keys_inside_an_anchored_map_can_be_set_and_aliases_follow() -> None:
    result = apply_overrides(ANCHORED, ["base.lr=0.01"])
    assert result == edited(ANCHORED, "lr: 0.1   # shared", "lr: 0.01   # shared")
    data = yaml.safe_load(result)
    assert data["sgd"]["lr"] == data["derived"]["lr"] == 0.01 and data["derived"]["momentum"] == 0.5


def test_a_merged_key_is_overridden_by_adding_it() -> None:
    with pytest.raises(UnknownKey) as info:
        apply_overrides(ANCHORED, ["derived.lr=0.5"])
    assert info.value.key == "derived.lr" and info.value.known == ("<<", "momentum")
    assert "the keys of 'derived' are: momentum (and those its '<<' merge brings)" in str(info.value)
    result = apply_overrides(ANCHORED, ["derived.lr=0.5"], add=True)
    assert result == edited(ANCHORED, "  momentum: 0.5\n", "  momentum: 0.5\n  lr: 0.5\n")
    assert yaml.safe_load(result)["derived"] == {"lr": 0.5, "momentum": 0.5} and yaml.safe_load(result)["base"]["lr"] == 0.1


@pytest.mark.parametrize("override, message", [
    ("seed=1", "the value of 'seed' carries the anchor &seed"),
    ("base=1", "the value of 'base' carries the anchor &base"),
    ("sgd.lr=1", "'sgd' is an alias (*) of a value defined elsewhere"),
])
def test_edits_that_would_break_or_hide_an_alias_are_refused(override: str, message: str) -> None:
    with pytest.raises(EditError, match=re.escape(message)):
        apply_overrides(ANCHORED, [override], add=True)


def test_an_alias_value_is_replaced_by_its_new_value() -> None:
    assert apply_overrides(ANCHORED, ["sgd=none"]) == edited(ANCHORED, "sgd: *base", "sgd: none")


# --- unknown keys and --add ----------------------------------------------------------------------


@pytest.mark.parametrize("override, key, known", [
    ("lrr=0.1", "lrr", ("VERSION", "DEBUG", "RESUME", "TRAIN", "name", "lr", "momentum", "empty", "optimizer", "data")),
    ("optimizer.wd=0.1", "optimizer.wd", ("kind", "nesterov")),
    ("data.batch.size=4", "data.batch", ("path", "workers")),
])
def test_an_unknown_key_is_refused_with_the_keys_at_its_level(override: str, key: str, known: tuple[str, ...]) -> None:
    with pytest.raises(UnknownKey) as info:
        apply_overrides(CONFIG, [override])
    assert (info.value.key, info.value.known) == (key, known)
    assert f"unknown key '{key}'" in str(info.value) and ", ".join(known) in str(info.value)


def test_add_appends_at_the_end_of_its_map_as_the_file_indents() -> None:
    result = apply_overrides(CONFIG, ["optimizer.wd=1e-4", "scheduler.kind=cosine", "scheduler.warmup.steps=100", "on=1"], add=True)
    expected = edited(CONFIG, "    nesterov: true\n", "    nesterov: true\n    wd: 0.0001\n")
    assert result == expected + "scheduler:\n    kind: cosine\n    warmup:\n        steps: 100\n'on': 1\n"
    assert yaml.safe_load(result)["on"] == 1  # not True: the key is quoted


def test_add_after_a_last_value_that_spans_lines() -> None:
    text = "a:\n  notes: |\n    one\n    two\n\n# next section\nb: 1\n"
    assert apply_overrides(text, ["a.c=2"], add=True) == "a:\n  notes: |\n    one\n    two\n  c: 2\n\n# next section\nb: 1\n"


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("override, message", [
    ("lr", "'lr' is not KEY=VALUE"),
    ("=1", "an override has an empty KEY"),
    ("a..b=1", "'a..b' is not a KEY"),
    ("a.=1", "'a.' is not a KEY"),
    ("a b=1", "'a b' is not a KEY"),
    ("a/b=1", "'a/b' is not a KEY"),
    ("lr=", "'lr=' has no value; write lr=null for null or lr='' for an empty string"),
    ("lr=  ", "'lr=' has no value"),
    ("lr=[1, 2", "the value of 'lr' is not valid YAML"),
    ("lr='open", "the value of 'lr' is not valid YAML"),
    ("lr=*ref", "the value of 'lr' is not valid YAML"),
    ("lr=!!python/object:os.system x", "the value of 'lr' is not valid YAML"),
    ("lr=2026-13-45", "the value of 'lr' is not valid YAML"),
    ("lr=a: b", "reads as a YAML block map; quote it to mean text (lr='a: b')"),
    ("lr=- x", "reads as a YAML block list"),
    ("lr=x # y", "has text around its value"),
    ("lr=--- x", "has text around its value"),
    ("lr.x=1", "'lr' is a single value, not a map: 'lr.x' cannot be set inside it"),
    ("data.path.x=1", "'data.path' is a single value, not a map"),
])
def test_malformed_overrides_are_refused(override: str, message: str) -> None:
    with pytest.raises(EditError, match=re.escape(message)):
        apply_overrides(CONFIG, [override], add=True)


@pytest.mark.parametrize("text, override, message", [
    ("gpus: [0, 1]\n", "gpus.x=1", "'gpus' is a list, not a map"),
    ("- a\n- b\n", "a=1", "'the file' is a list, not a map"),
    ("--- ~\n", "a=1", "'the file' is a single value, not a map"),
    ("a: 1\nb: 2\na: 3\n", "a=4", "'a' appears 2 times in its map"),
    ("a: [1\n", "a=1", "config.yaml is not valid YAML"),
    ("a: 1\n---\nb: 2\n", "a=1", "config.yaml is not valid YAML: expected a single document"),
    ("a0: &a0 lol\n" + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 8)), "a0=1",
     "config.yaml is not valid YAML: YAML document holds more than 100,000 values"),
    ("? a\n: 1\n", "b=2", "'b' cannot be set without changing other values of the file"),  # indented as the '? a' key: wrong
])
def test_files_that_cannot_be_edited_are_refused(text: str, override: str, message: str) -> None:
    with pytest.raises(EditError, match=re.escape(message)):
        apply_overrides(text, [override], add=True)


def test_set_key_serves_resume_and_debug() -> None:
    assert set_key(CONFIG, "DEBUG", True) == edited(CONFIG, "DEBUG: false", "DEBUG: true")
    assert set_key(CONFIG, "RESUME", "ckpt: 1.pt") == edited(CONFIG, "RESUME: ~", "RESUME: 'ckpt: 1.pt'")
    assert set_key("VERSION: 0.1.0\n", "RESUME", None) == "VERSION: 0.1.0\nRESUME: null\n"
    with pytest.raises(UnknownKey):
        set_key("VERSION: 0.1.0\n", "RESUME", None, add=False)
    with pytest.raises(EditError, match="is not a KEY"):
        set_key(CONFIG, "a b", 1)


# --- the desc slug -------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides, slug", [
    (["lr=0.01", "bs=64"], "lr0.01-bs64"),
    (["optimizer.lr=0.01"], "lr0.01"),
    (["lr=1e-3", "optimizer.kind=adam"], "lr1e-3-kindadam"),
    (["name='a: b'"], "name-a-b"),
    (["lr=-0.5"], "lr-0.5"),
    (["gpus=[0, 1]"], "gpus-0-1"),
    (["模型=学习"], "run"),
    ([], "run"),
    (["x=a.lock"], "xa"),
    (["x=" + "9" * 60], "x" + "9" * 39),
    ([f"key{i}=value{i}" for i in range(10)], "key0value0-key1value1-key2value2"),
    (["a=1..2."], "a1.2"),
])
def test_desc_slug(overrides: list[str], slug: str) -> None:
    assert desc_slug(overrides) == slug
    assert re.fullmatch(model.SLUG, slug) and len(slug) <= yamledit.MAX_SLUG
    name = model.run_branch_name(model.Kind.TASK, "0.1.0", slug, Settings(), datetime(2026, 1, 2, tzinfo=timezone.utc))
    assert model.parse_branch(name, Settings()).kind is model.Kind.TASK


# --- the import path and real files --------------------------------------------------------------


def test_importing_the_modules_loads_no_yaml_library() -> None:
    code = "import sys, dlgit.safeyaml, dlgit.tasks.yamledit; print(sorted(m for m in sys.modules if 'yaml' in m and 'dlgit' not in m))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_a_task_started_with_overrides_passes_the_hooks_and_changes_only_its_lines(repo: Repo) -> None:
    """The template config, copied to a task folder with its overrides applied, committed on the
    task branch through the real hooks; git sees exactly the overridden lines change."""
    overrides = ["lr=0.05", "RANDOM_SEED=7"]
    branch = model.run_branch_name(model.Kind.TASK, "0.1.0", desc_slug(overrides), Settings())
    repo.git("switch", "-q", "-c", branch)
    template = (repo.path / "tasks/main/config.yaml").read_bytes().decode()
    repo.write(f"tasks/{branch}/config.yaml", apply_overrides(template, overrides).encode())
    repo.write(f"tasks/{branch}/train.py", "print('train')\n")
    repo.commit(f"task: start {desc_slug(overrides)}")
    diff = repo.git("diff", "--no-index", "--numstat", "tasks/main/config.yaml", f"tasks/{branch}/config.yaml", check=False).stdout
    assert diff.split()[:2] == ["2", "2"]
    assert yaml.safe_load(repo.git("show", f"HEAD:tasks/{branch}/config.yaml").stdout) == {
        **yaml.safe_load(TEMPLATE_CONFIG), "lr": 0.05, "RANDOM_SEED": 7}


def test_a_bad_override_written_anyway_is_what_the_hook_refuses(repo: Repo) -> None:
    """DEBUG=maybe types as a string: the edit does it faithfully, and task-config refuses it."""
    branch = model.run_branch_name(model.Kind.TASK, "0.1.0", "debugmaybe", Settings())
    repo.git("switch", "-q", "-c", branch)
    text = apply_overrides(TEMPLATE_CONFIG, ["DEBUG=maybe"])
    problems = config_problems(text.encode(), model.parse_branch(branch, Settings()), Settings())
    assert problems == ["DEBUG is 'maybe', expected true or false"]
    repo.write(f"tasks/{branch}/config.yaml", text)
    result = repo.commit("task: start debugmaybe", check=False)
    assert result.returncode != 0 and "DEBUG is 'maybe'" in result.stdout + result.stderr
