""".dlgit.yaml parsing (in-process, no git): defaults, every key, and errors that name file, line and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlgit import config
from dlgit.config import Settings
from dlgit.errors import UsageError

FULL = """\
branches:
  main: master
  dev: develop
  prefixes: {feature: feat/, hotfix: fix/, task: exp-, debug: dbg-}
  extra_allowed: ["release/*", "renovate/*"]
tasks:
  dir: experiments
  template: base
  required_keys: [VERSION, RANDOM_SEED]
hotfix: {max_files: 2, max_lines: 20}
large_files:
  max_bytes: 1024
  patterns: ["*.bin"]
commit:
  types: [feat, fix]
rules:
  disable: [hotfix-size]
"""


def error(text: str) -> str:
    with pytest.raises(UsageError) as info:
        config.parse(text, "repo/.dlgit.yaml")
    assert info.value.exit_code == 2
    return str(info.value)


def test_defaults_match_the_spec() -> None:
    s = Settings()
    assert (s.main, s.dev) == ("main", "dev")
    assert (s.feature_prefix, s.hotfix_prefix, s.task_prefix, s.debug_prefix) == ("feature-", "hotfix-", "task-", "debug-")
    assert (s.hotfix_max_files, s.hotfix_max_lines, s.large_file_max_bytes) == (5, 50, 5 * 2**20)
    assert {"*.pt", "*.pth", "*.ckpt", "*.safetensors", "*.h5", "*.onnx", "*.npy", "*.npz", "*.pkl"} <= set(s.large_file_patterns)
    assert s.commit_types == ("feat", "fix", "docs", "style", "refactor", "test", "chore", "build", "ci", "perf", "revert", "task")
    assert s.required_keys == ("VERSION", "DEBUG", "RESUME", "TRAIN", "TEST", "MODEL_PATH", "RANDOM_SEED")
    assert (s.tasks_dir, s.template_config, s.extra_allowed, s.disabled_rules) == ("tasks", "tasks/main/config.yaml", (), ())


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_file_is_the_defaults(text: str) -> None:
    assert config.parse(text) == Settings()


def test_every_key() -> None:
    s = config.parse(FULL)
    assert (s.main, s.dev) == ("master", "develop")
    assert (s.feature_prefix, s.hotfix_prefix, s.task_prefix, s.debug_prefix) == ("feat/", "fix/", "exp-", "dbg-")
    assert s.extra_allowed == ("release/*", "renovate/*")
    assert (s.tasks_dir, s.template, s.template_config) == ("experiments", "base", "experiments/base/config.yaml")
    assert s.required_keys == ("VERSION", "RANDOM_SEED")
    assert (s.hotfix_max_files, s.hotfix_max_lines, s.large_file_max_bytes, s.large_file_patterns) == (2, 20, 1024, ("*.bin",))
    assert (s.commit_types, s.disabled_rules) == (("feat", "fix"), ("hotfix-size",))


def test_names_in_other_scripts_and_nested_prefixes_allowed() -> None:
    settings = config.parse("branches: {main: 主干, dev: develop, prefixes: {feature: feature/, hotfix: fix/x-}}\n"
                            "tasks: {dir: 实验, template: base.v2}\ncommit: {types: [feat, 修复]}\n")
    assert (settings.main, settings.feature_prefix, settings.tasks_dir) == ("主干", "feature/", "实验")
    assert settings.commit_types == ("feat", "修复")


def test_partial_section_keeps_other_defaults() -> None:
    s = config.parse("hotfix:\n  max_lines: 80\n")
    assert (s.hotfix_max_files, s.hotfix_max_lines, s.main) == (5, 80, "main")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("branches:\n  extra_allowed: [release/*\n", ["repo/.dlgit.yaml:3", "not valid YAML"]),
        ("hotfix: {max_files: 5\n", ["repo/.dlgit.yaml:2", "not valid YAML"]),
        ("a: b: c\n", ["repo/.dlgit.yaml:1", "not valid YAML"]),
        ("hotfix:\n  max_file: 5\n", ["repo/.dlgit.yaml:2:", "unknown key 'hotfix.max_file'", "hotfix.max_files, hotfix.max_lines"]),
        ("hotfixes:\n  max_files: 5\n", ["repo/.dlgit.yaml:1:", "unknown key 'hotfixes'"]),
        ("branches:\n  prefixes:\n    bugfix: bug-\n", ["repo/.dlgit.yaml:3:", "unknown key 'branches.prefixes.bugfix'"]),
        ("hotfix:\n  max_files: five\n", ["repo/.dlgit.yaml:2:", "'hotfix.max_files' must be a whole number of files, not 'five'"]),
        ("hotfix:\n  max_files: true\n", [":2:", "'hotfix.max_files' must be a whole number"]),
        ("hotfix:\n  max_files: -1\n", [":2:", "whole number"]),
        ("large_files:\n  max_bytes: 1.5\n", [":2:", "'large_files.max_bytes' must be a size in bytes"]),
        ("branches:\n  main: 42\n", [":2:", "'branches.main' must be a branch name, not 42"]),
        ("branches:\n  main: ''\n", [":2:", "'branches.main' must be a branch name"]),
        ("branches:\n  extra_allowed: release/*\n", [":2:", "'branches.extra_allowed' must be a list of glob patterns"]),
        ("commit:\n  types: [feat, 3]\n", [":2:", "'commit.types' must be a list of commit types (strings)"]),
        ("hotfix: 5\n", [":1:", "'hotfix' must be a mapping of keys"]),
        ("- a\n- b\n", [":1:", "'the file' must be a mapping"]),
        ("hotfix:\n  max_files:\n", [":2:", "'hotfix.max_files' must be a whole number"]),
        ("hotfix:\n  max_files: !!int x\n", [":2:", "'hotfix.max_files' must be a whole number"]),
        ("hotfix:\n  max_files: !custom 1\n", [":2:", "'hotfix.max_files' must be a whole number"]),
        ("rules:\n  disable: [task-scop]\n", [":2:", "unknown rule(s) task-scop", "task-scope"]),
        ("branches:\n  main: a b\n", [":2:", "'branches.main' must be a name", "not 'a b'"]),
        ("branches:\n  dev: -x\n", [":2:", "'branches.dev' must be a name"]),
        ("branches:\n  dev: release/\n", [":2:", "'branches.dev' must be a name"]),
        ("branches:\n  prefixes: {task: 'x..y-'}\n", [":2:", "'branches.prefixes.task' must be a name", "no '..'"]),
        ("branches:\n  prefixes: {task: 'exp/task-'}\n", [":2:", "'branches.prefixes.task' must be a name", "not 'exp/task-'"]),
        ("branches:\n  dev: FETCH_HEAD\n", [":2:", "'branches.dev' must be a name"]),
        ("branches:\n  dev: refs/heads/dev\n", [":2:", "'branches.dev' must be a name"]),
        ("branches:\n  dev: a/.hidden\n", [":2:", "'branches.dev' must be a name"]),
        ("branches:\n  dev: a.lock/b\n", [":2:", "'branches.dev' must be a name"]),
        ("branches:\n  main: trunk\n  dev: trunk\n", ["repo/.dlgit.yaml:", "both 'trunk'"]),
        ("tasks:\n  dir: ../x\n", [":2:", "'tasks.dir' must be a name"]),
        ("tasks:\n  template: a/b\n", [":2:", "'tasks.template' must be a name"]),
        ("commit:\n  types: [feat, 'a b']\n", [":2:", "'commit.types' must be a name", "not 'a b'"]),
        ("commit:\n  types: [feat, 'a.b']\n", [":2:", "letters, digits, '_', '-' (no"]),
    ],
)
def test_errors_name_file_line_and_expectation(text: str, expected: list[str]) -> None:
    message = error(text)
    for part in expected:
        assert part in message, (part, message)
    assert "\n" not in message.strip()


def test_load_from_work_tree(tmp_path: Path) -> None:
    assert config.load(tmp_path) == Settings()
    assert config.load(None) == Settings()
    (tmp_path / ".dlgit.yaml").write_text("hotfix:\n  max_files: 1\n")
    assert config.load(tmp_path).hotfix_max_files == 1
    (tmp_path / ".dlgit.yaml").write_bytes(b"branches:\n  main: ma\xefn\n")
    with pytest.raises(UsageError, match=r"\.dlgit\.yaml: is not UTF-8"):
        config.load(tmp_path)


def test_from_bytes() -> None:
    assert config.from_bytes(None, "HEAD:.dlgit.yaml") == Settings()
    assert config.from_bytes(b"hotfix: {max_lines: 7}\n", "HEAD:.dlgit.yaml").hotfix_max_lines == 7
    with pytest.raises(UsageError, match=r"HEAD:\.dlgit\.yaml:1"):
        config.from_bytes(b"nope: 1\n", "HEAD:.dlgit.yaml")


def test_describe_defaults_lists_every_key() -> None:
    text = config.describe_defaults()
    for key in ("branches.extra_allowed", "hotfix.max_files", "large_files.patterns", "rules.disable"):
        assert key in text
