"""Every rule in-process: `evaluate(Change(...))` over a table of facts, blocked and allowed (the
real-git tests in test_rules.py drive the same rules through the hooks)."""

from __future__ import annotations

import random
import re

import pytest

from dlgit.config import Settings
from dlgit.model import Branch, parse_branch
from dlgit.policy import RULES, Change, Entry, Merge, evaluate, rules
from dlgit.policy.change import Committed, RefUpdate, SquashEvidence

S = Settings()
TASK = "task-0.1.0-20260101T000000-lr0.01"
CONFIG = b"VERSION: 0.1.0\nDEBUG: false\nRESUME: null\nTRAIN: true\nTEST: false\nMODEL_PATH: null\nRANDOM_SEED: 42\n"
SHA = "a" * 40


def on(name: str | None) -> Branch | None:
    return parse_branch(name, S) if name else None


def changed(*paths: str, size: int | None = None) -> tuple[Entry, ...]:
    return tuple(Entry("A", path, None, size) for path in paths)


def bump_of(after: bytes, **facts: bool) -> Change:
    """A commit on main that edits only the template config from CONFIG to `after`."""
    return Change(on("main"), (Entry("M", "tasks/main/config.yaml"),), configs=(("tasks/main/config.yaml", after),),
                  template_config_before=CONFIG, **facts)  # type: ignore[arg-type]


# (rule, change, blocked?, a text the violation names)
CASES: list[tuple[str, Change, bool, str]] = [
    ("branch-name", Change(on("wip")), True, "wip"),
    ("branch-name", Change(on(f"{TASK[:-6]}")), True, "task-"),
    ("branch-name", Change(on("feature-loader")), False, ""),
    ("main-protected", Change(on("main"), changed("model/net.py")), True, "model/net.py"),
    ("main-protected", Change(on("main"), changed("model/net.py"), is_root=True), False, ""),
    ("main-protected", Change(on("main"), changed(f"tasks/{TASK}/log"), merge=Merge(on(TASK), SHA)), False, ""),
    ("main-protected", Change(on("main"), (Entry("M", "tasks/main/config.yaml"),), configs=(("tasks/main/config.yaml",
     CONFIG.replace(b"0.1.0", b"0.2.0")),), template_config_before=CONFIG), False, ""),
    ("main-protected", Change(on("main"), merge=Merge(on("dev"), SHA, squash=True), message="chore: release"), True,
     f"Squashed-from: dev@{SHA}"),
    ("main-protected", Change(on("main"), merge=Merge(on("dev"), SHA, squash=True), message=f"chore: release\n\nSquashed-from: dev@{SHA}",
     squash_evidence=SquashEvidence(exists=True, differing=(("extra.py", "changed-clean"),))), True, "extra.py"),
    ("main-protected", Change(on("main"), merge=Merge(on("dev"), SHA, squash=True), message=f"chore: release\n\nSquashed-from: dev@{SHA}",
     squash_evidence=SquashEvidence(exists=True)), False, ""),
    ("main-protected", Change(on("dev"), changed("model/net.py")), False, ""),
    ("merge-direction", Change(on("main"), merge=Merge(on("feature-x"), SHA)), True, "feature-x"),
    ("merge-direction", Change(on("dev"), merge=Merge(on("debug-0.1.0-20260101T000000-x"), SHA)), True, "debug-"),
    ("merge-direction", Change(on("dev"), merge=Merge(on("feature-x"), SHA, octopus=True)), True, "several branches"),
    ("merge-direction", Change(on("main"), merge=Merge(None, SHA)), True, SHA[:12]),
    ("merge-direction", Change(on("main"), merge=Merge(on("hotfix-x"), SHA, squash=True)), False, ""),
    ("merge-direction", Change(on("dev"), merge=Merge(on("feature-x"), SHA)), False, ""),
    ("task-scope", Change(on(TASK), changed(f"tasks/{TASK}/log.txt", "model/net.py")), True, "model/net.py"),
    ("task-scope", Change(on(TASK), (Entry("R", f"tasks/{TASK}/a", "model/a"),)), True, "model/a"),
    ("task-scope", Change(on("main"), changed(f"tasks/{TASK}/a", "model/b"), merge=Merge(on(TASK), SHA)), True, "model/b"),
    ("task-scope", Change(on(TASK), changed(f"tasks/{TASK}/log.txt")), False, ""),
    ("hotfix-size", Change(on("hotfix-x"), hotfix_diff=tuple((f"f{i}.py", 1, 10) for i in range(6))), True, "6 file(s)"),
    ("hotfix-size", Change(on("hotfix-x"), hotfix_diff=(("f.py", 51, 500),)), True, "51 line(s)"),
    ("hotfix-size", Change(on("hotfix-x"), hotfix_diff=(("f.py", 50, 500),)), False, ""),
    ("hotfix-size", Change(on("hotfix-x"), hotfix_diff=(("model/net.so", 1, 16385),)), True, "16,385 or more bytes"),
    ("hotfix-size", Change(on("hotfix-x"), hotfix_diff=(("model/net.so", 1, 16384),)), False, ""),
    ("commit-message", Change(on("dev"), message="tweak things"), True, "tweak things"),
    ("commit-message", Change(on("main"), message="Merge branch 'dev'"), True, "Merge branch"),
    ("commit-message", Change(on("dev"), message="Merge branch 'feature-x' into dev"), False, ""),
    ("commit-message", Change(on("dev"), message="feat(model)!: a new head"), False, ""),
    ("commit-message", Change(on("dev"), message=""), True, "empty"),
    ("large-file", Change(on("dev"), changed("ckpt/best.PT")), True, "best.PT"),
    ("large-file", Change(on("dev"), changed("data/big.dat", size=6 * 2**20)), True, "6.0 MiB"),
    ("large-file", Change(on("dev"), changed("data/small.dat", size=2**20)), False, ""),
    ("task-config", Change(on(TASK), configs=((f"tasks/{TASK}/config.yaml", b"VERSION: 0.1.0\n"),)), True, "lacks DEBUG"),
    ("task-config", Change(on(TASK), configs=((f"tasks/{TASK}/config.yaml", CONFIG.replace(b"0.1.0", b"0.3.0")),)), True,
     "branch name says 0.1.0"),
    ("task-config", Change(on(TASK), configs=((f"tasks/{TASK}/config.yaml", b"[unclosed"),)), True, "YAML"),
    ("task-config", Change(on(TASK), configs=((f"tasks/{TASK}/config.yaml", CONFIG),)), False, ""),
    ("no-debug-on-main", Change(on("dev"), changed("tasks/debug-0.1.0-20260101T000000-x/log")), True, "tasks/debug-"),
    ("no-debug-on-main", Change(on("debug-0.1.0-20260101T000000-x"), changed("tasks/debug-0.1.0-20260101T000000-x/log")), False, ""),
    ("history-rewrite", Change(on("main"), ref_update=RefUpdate("refs/heads/main", forced=True)), True, "refs/heads/main"),
    ("history-rewrite", Change(on("dev"), ref_update=RefUpdate("refs/heads/dev", deleted=True)), True, "refs/heads/dev"),
    ("history-rewrite", Change(on("feature-x"), ref_update=RefUpdate("refs/heads/feature-x", forced=True)), False, ""),
    ("release-tag", Change(None, ref_update=RefUpdate("refs/tags/v0.2.0", on_main=False, version="0.2.0")), True, "v0.2.0"),
    ("release-tag", Change(None, ref_update=RefUpdate("refs/tags/v0.2.0", on_main=True, version="0.1.0")), True, "v0.2.0"),
    ("release-tag", Change(None, ref_update=RefUpdate("refs/tags/v0.2.0", on_main=True, version="0.2.0")), False, ""),
]

# issues 15-17, the rules' hardening: each change a blocked and an allowed case
CASES += [
    ("path-names", Change(on(TASK), changed(f"tasks/{TASK}/../../model/net.py")), True, "'..' component"),
    ("path-names", Change(on("dev"), changed(".GIT/hooks/post-checkout")), True, ".GIT"),
    ("path-names", Change(on("dev"), changed("model/git~1/config")), True, "NTFS"),
    ("path-names", Change(on("dev"), changed(".g\u200cit/config")), True, "HFS+"),
    ("path-names", Change(on("dev"), changed(".git./config")), True, ".git."),
    ("path-names", Change(on("dev"), changed(".gitignore", ".github/ci.yml", "x/.dvc/config", "fa/\u06a9\u200c\u0633.py")), False, ""),
    ("task-scope", Change(on(TASK), changed(f"tasks/{TASK}/../../model/net.py")), True, "../../model/net.py"),
    ("task-scope", Change(on(TASK), changed(f"tasks/{TASK}/..results/x")), False, ""),
    ("commit-message", Change(on("dev"), message="  \n\n"), True, "empty"),
    ("commit-message", Change(on("dev"), message="feat: a long story\n\n" + "word " * 60_000), True, "at most 262,144"),
    ("commit-message", Change(on("dev"), message="feat: a long story\n\n" + "word " * 50_000), False, ""),
    ("main-protected", bump_of(CONFIG.replace(b"0.1.0", b"0.2.0"), template_mode_changed=True), True, "tasks/main/config.yaml"),
    ("main-protected", bump_of(CONFIG.replace(b"0.1.0", b"0.2.0").replace(b"\nDEBUG", "\u2028".encode() + b"DEBUG")), True, "config.yaml"),
    ("main-protected", bump_of(CONFIG.replace(b"0.1.0", b"99999999999999999999.0.0")), True, "config.yaml"),
    ("main-protected", bump_of(CONFIG.replace(b"0.1.0", b"0.3.0")), True, "config.yaml"),  # not the next version
    ("main-protected", bump_of(CONFIG.replace(b"0.1.0", b"0.1.0  # 0.2.0").replace(b"0.1.0", b"0.2.0", 1)), True, "config.yaml"),
    ("main-protected", bump_of(CONFIG.replace(b"0.1.0", b"1.0.0")), False, ""),
    ("settings-file", Change(on("dev"), changed(".dlgit.yaml"), settings_problem="the staged .dlgit.yaml:2: not valid YAML"), True,
     "not valid YAML"),
    ("settings-file", Change(on("dev"), changed(".dlgit.yaml")), False, ""),
    ("task-config", Change(on(TASK), task_versions=("0.1.0", "0.2.0")), True, "the core this commit runs it on"),
    ("task-config", Change(on(TASK), task_versions=("0.1.0", "0.1.0")), False, ""),
    ("release-tag", Change(None, ref_update=RefUpdate("refs/tags/notes", tag_bytes=20 * 2**20)), True, "20,971,520 bytes"),
    ("release-tag", Change(None, ref_update=RefUpdate("refs/tags/notes", tag_bytes=2000)), False, ""),
    ("main-protected", bump_of(CONFIG.replace(b"0.1.0", b"0.1.1")), False, ""),
]


@pytest.mark.parametrize(("rule", "change", "blocked", "named"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule(rule: str, change: Change, blocked: bool, named: str) -> None:
    violations = evaluate(change, S, [rule])
    assert bool(violations) is blocked, violations
    for violation in violations:
        assert violation.rule == rule and violation.fix and violation.why
        assert named in violation.detail + " ".join(violation.items), violation


def test_every_rule_has_a_blocked_and_an_allowed_case() -> None:
    for rule in RULES:
        outcomes = {blocked for rule_id, _, blocked, _ in CASES if rule_id == rule}
        assert outcomes == {True, False}, rule


def test_a_disabled_rule_is_not_evaluated() -> None:
    change = Change(on("wip"))
    assert evaluate(change, S._replace(disabled_rules=("branch-name",)), ["branch-name"]) == []


def test_history_fixes_repair_the_commit_not_the_index() -> None:
    change = Change(on("dev"), message="tweak", commit=Committed(SHA, tip=True))
    [violation] = evaluate(change, S, ["commit-message"])
    assert violation.fix[0].startswith("git commit --amend")


# The first pass of path-names as one alternation (the form it had): its three faster scans find the same texts.
ONE_ALTERNATION = (rf"(?i)(?:^|[/\\\0])(?:[. ]*(?:[/\\\0:]|$)|\.git|git~1)|[/\\]{{2}}|^[/\\]|[/\\]$|[{rules._HFS_IGNORED}]")


@pytest.mark.parametrize("text", ["", "\n", "/a", "a/", "a//b", "a\\b\\", " a", ". /x", "x/..", "x/ ./y", "a/.Git", "GIT~1/a",
                                  "a:b", "x/:y", "a\0.b", "a\0", "\0b", ".g\u200cit", "tasks/x/results/r1.txt", "a/gpu/.gitignore",
                                  "a/b.git", "a.", "a/b/c\n", "a\nb"])
def test_path_names_first_pass_finds_what_one_alternation_finds(text: str) -> None:
    assert rules._suspect(text) is bool(re.search(ONE_ALTERNATION, text))


def test_path_names_first_pass_agrees_on_random_paths() -> None:
    pieces = [*"/\\\0:. gGiI~1a\n", "\u200c", "\u0131", "\u0130", ".git", "git~1"]
    draw = random.Random(15)
    for _ in range(20_000):
        text = "".join(draw.choice(pieces) for _ in range(draw.randint(0, 8)))
        assert rules._suspect(text) is bool(re.search(ONE_ALTERNATION, text)), repr(text)
