"""Bounded YAML loading (in-process): hostile documents fail fast and small, honest ones load as
`yaml.safe_load` loads them — through libyaml's parser and PyYAML's pure one alike."""

from __future__ import annotations

import sysconfig
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Work

from dlgit import safeyaml
from dlgit.safeyaml import YamlLimitError

ROOT = Path(__file__).resolve().parent.parent
PARSERS = pytest.mark.parametrize("pure", [False, True], ids=["libyaml", "pure"])


def laughs(levels: int) -> str:
    """The billion-laughs document: each level repeats the one before nine times (~400 bytes for 7 levels)."""
    lines = ['a0: &a0 "lol"']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def refused(call: Callable[[], Any], traced: bool = True) -> tuple[YamlLimitError, int, int]:
    """The limit error `call` raises, with the Python calls it took and the peak traced bytes
    (`traced=False` leaves tracemalloc off where memory is not the point)."""
    if traced:
        tracemalloc.start()
    try:
        with Work() as work, pytest.raises(YamlLimitError) as info:
            call()
        return info.value, work.calls, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- hostile documents ---------------------------------------------------------------------------


@PARSERS
@pytest.mark.parametrize("levels", [7, 8])
def test_billion_laughs_fails_fast_and_small(levels: int, pure: bool) -> None:
    assert len(laughs(7)) < 500
    error, work, peak = refused(lambda: safeyaml.load(laughs(levels), pure=pure))
    assert error.limit == "max_nodes" and "100,000 values" in str(error) and error.line is not None
    assert work < 50_000 and peak < 2 * 2**20


@PARSERS
def test_compose_has_the_same_limits(pure: bool) -> None:
    error, work, _ = refused(lambda: safeyaml.compose(laughs(8), pure=pure))
    assert error.limit == "max_nodes" and work < 50_000


@PARSERS
@pytest.mark.parametrize("text, line", [
    ("[" * 10_000 + "]" * 10_000, 1),  # over libyaml's own cap of 1,000 as well
    ("[" * 65 + "]" * 65, 1),
    ("".join(f"{'  ' * i}k{i}:\n" for i in range(200)) + "  " * 200 + "v\n", 65),
    ("- " * 65 + "x\n", 1),
])
def test_deep_nesting_fails_cleanly(text: str, line: int, pure: bool) -> None:
    """PyYAML's own composer dies of RecursionError here; its scanner's look-ahead of 1,024
    characters costs ~0.1 s, libyaml's far less."""
    error, work, _ = refused(lambda: safeyaml.load(text, pure=pure), traced=False)
    assert (error.limit, error.line) == ("max_depth", line) and "deeper than 64 levels" in str(error) and work < 200_000


@PARSERS
def test_depth_counts_what_aliases_nest(pure: bool) -> None:
    """Each anchor nests 40 levels and holds the one before: composed depth stays 41, but the
    value nests 40 more per alias."""
    text = "a0: &a0 " + "[" * 40 + "1" + "]" * 40 + "\n"
    text += "".join(f"a{i}: &a{i} " + "[" * 40 + f"*a{i - 1}" + "]" * 40 + "\n" for i in range(1, 4))
    assert refused(lambda: safeyaml.load(text, pure=pure))[0].limit == "max_depth"
    assert safeyaml.load(text, max_depth=200, pure=pure) == yaml.safe_load(text)


@PARSERS
def test_alias_count_is_capped(pure: bool) -> None:
    text = "x: &x 1\nlist: [" + ", ".join(["*x"] * 101) + "]\n"
    error = refused(lambda: safeyaml.load(text, pure=pure))[0]
    assert (error.limit, error.line) == ("max_aliases", 2) and "more than 100 aliases" in str(error)
    assert safeyaml.load(text, max_aliases=101, pure=pure)["list"] == [1] * 101


@PARSERS
@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n"])
def test_a_recursive_alias_is_refused(text: str, pure: bool) -> None:
    error = refused(lambda: safeyaml.load(text, pure=pure))[0]
    assert error.limit == "max_nodes" and "*a sits inside the value it names" in str(error)


def test_many_plain_values_are_capped() -> None:
    text = "".join(f"k{i}: {i}\n" for i in range(60_000))  # 120,000 values, under the byte limit
    assert len(text) < safeyaml.MAX_BYTES
    error, work, _ = refused(lambda: safeyaml.load(text), traced=False)
    assert (error.limit, error.line) == ("max_nodes", 50_000)  # the map, then two values a line
    assert work < 2_000_000  # linear: ~11 calls a value
    small = text[:text.index("k500:")]
    assert refused(lambda: safeyaml.load(small, max_nodes=999, pure=True))[0].line == 500
    assert len(safeyaml.load(small, max_nodes=1001, pure=True)) == 500


def test_an_oversize_document_is_refused_unread() -> None:
    """100 MB of bytes that are neither UTF-8 nor YAML: refused by size alone, before decoding or parsing."""
    huge = b"\xff[" * (50 * 2**20)
    error, work, peak = refused(lambda: safeyaml.load(huge))
    assert error.limit == "max_bytes" and "(104,857,600 bytes)" in str(error) and "not parsed" in str(error)
    assert work < 100 and peak < 2**20  # not decoded, not copied
    assert refused(lambda: safeyaml.compose("é" * 2**20))[0].limit == "max_bytes"  # 2 MiB of UTF-8 in 1 Mi characters
    assert refused(lambda: safeyaml.load("x" * (2**20 + 1)))[0].limit == "max_bytes"
    assert refused(lambda: safeyaml.load(b"a: 1\n", max_bytes=4))[0].limit == "max_bytes"


def test_the_byte_limit_is_inclusive() -> None:
    text = "a: " + "x" * (safeyaml.MAX_BYTES - 4) + "\n"
    assert len(text.encode()) == safeyaml.MAX_BYTES
    assert safeyaml.load(text) == {"a": "x" * (safeyaml.MAX_BYTES - 4)}


# --- honest documents ----------------------------------------------------------------------------

CORPUS = [
    "",
    "# only a comment\n",
    "---\n",
    "--- 3\n...\n",
    "# the template task\nVERSION: 0.1.0  # core version\nDEBUG: false\nRESUME: null\nTRAIN: true\nTEST: false\n"
    "MODEL_PATH: null\nRANDOM_SEED: 42\nlr: 0.01\n",
    "branches:\n  main: master\n  prefixes: {feature: feat/, task: exp-}\n  extra_allowed: [\"release/*\"]\nrules:\n  disable: []\n",
    "ints: [0, -3, 0x1F, 0o17, 017, 1_000, 190:20:30]\nfloats: [1e-3, 0.01, -.5, .inf, 6.8523015e+5]\nbools: [yes, No, on, OFF, true]\n",
    "when: 2001-12-14t21:59:43.10-05:00\nday: 2002-12-14\nnull: [~, null, '']\nbinary: !!binary aGVsbG8=\n",
    "set: !!set {a, b}\nomap: !!omap [{a: 1}, {b: 2}]\npairs: !!pairs [{a: 1}, {a: 2}]\nstr: !!str 12\nfloat: !!float 3\n",
    "text: |\n  line one\n  line two\nfolded: >-\n  a\n  b\nquoted: \"tab\\there\"\nsingle: 'it''s'\n",
    "unicode: 学习率\n键: valeur\nemoji: \"\\U0001F600\"\n",
    "base: &base {lr: 0.1, momentum: 0.9}\nsgd: *base\nadam: {<<: *base, lr: 0.001}\nmany: {<<: [*base, {beta: 2}]}\n",
    "\ufeffVERSION: 0.1.0\r\nDEBUG: false\r\n",
    "- a\n- - b\n  - c\n- {d: [e, {f: g}]}\n",
]


@PARSERS
@pytest.mark.parametrize("text", CORPUS)
def test_honest_documents_load_as_safe_load_does(text: str, pure: bool) -> None:
    assert safeyaml.load(text, pure=pure) == yaml.safe_load(text)
    assert safeyaml.load(text.encode(), pure=pure) == yaml.safe_load(text)


def same_tree(ours: yaml.Node | None, theirs: yaml.Node | None) -> bool:
    if ours is None or theirs is None:
        return ours is theirs
    if (type(ours), ours.tag, ours.start_mark.line, ours.end_mark.line) != (type(theirs), theirs.tag, theirs.start_mark.line,
                                                                            theirs.end_mark.line):
        return False
    if isinstance(ours, yaml.ScalarNode):
        return (ours.value, ours.style) == (theirs.value, theirs.style)
    pairs = zip(ours.value, theirs.value, strict=True)
    if isinstance(ours, yaml.MappingNode):
        return all(same_tree(k1, k2) and same_tree(v1, v2) for (k1, v1), (k2, v2) in pairs)
    return all(same_tree(a, b) for a, b in pairs)


@PARSERS
@pytest.mark.parametrize("text", [*CORPUS, "? [complex, key]\n: value\n? {a: 1}\n"])
def test_compose_builds_yaml_compose_s_tree(text: str, pure: bool) -> None:
    """Against the same parser: libyaml marks a plain scalar's style '', PyYAML's parser None."""
    reference = yaml.SafeLoader if pure else yaml.CSafeLoader
    assert same_tree(safeyaml.compose(text, pure=pure), yaml.compose(text, Loader=reference))


@PARSERS
def test_shared_nodes_stay_shared(pure: bool) -> None:
    root = safeyaml.compose("a: &x [1]\nb: *x\n", pure=pure)
    assert root is not None and root.value[0][1] is root.value[1][1]


@PARSERS
@pytest.mark.parametrize("text, problem", [
    ("a: [1, 2\n", "expected ',' or ']'"),
    ("a: *nowhere\n", "found undefined alias 'nowhere'"),
    ("a: &x 1\nb: &x 2\n", "found duplicate anchor 'x'"),
    ("--- a\n--- b\n", "expected a single document"),
    ("a: 2020-13-45\n", "cannot read the value '2020-13-45' (month must be in 1..12)"),  # a ValueError out of yaml.safe_load
    ("a: " + "9" * 5000 + "\n", "cannot read the value '9999"),
    ("a: !!binary 'aGVsbG8'\n", "failed to decode base64"),
])
def test_malformed_yaml_is_a_yaml_error_with_its_line(text: str, problem: str, pure: bool) -> None:
    with pytest.raises(yaml.YAMLError) as info:
        safeyaml.load(text, pure=pure)
    assert not isinstance(info.value, ValueError) and problem in str(info.value)
    assert info.value.problem_mark.line in (0, 1)


def test_bytes_must_be_utf8() -> None:
    with pytest.raises(UnicodeDecodeError):
        safeyaml.load(b"a: \xff\n")


@pytest.mark.parametrize("value, text", [
    ("short", "'short'"),
    ("x" * 200, "'" + "x" * 37 + "..." + "x" * 38 + "'"),
    (list(range(100)), "[0, 1, 2, 3, 4, 5, ...]"),
    ("esc\x1b]52;c;\x07", r"'esc\x1b]52;c;\x07'"),
])
def test_shown_values_are_short(value: object, text: str) -> None:
    assert safeyaml.shown(value) == text


def test_shown_is_bounded_on_a_shared_structure() -> None:
    """What the unbounded yaml.load makes of a billion laughs: repr would print 9^30 items."""
    value: list[Any] = ["lol"]
    for _ in range(30):
        value = [value] * 9
    with Work() as work:
        text = safeyaml.shown(value, 40)
    assert len(text) == 40 and text.endswith("…") and work.calls < 10_000


# --- real files ----------------------------------------------------------------------------------


def test_every_yaml_file_installed_loads_as_safe_load_does() -> None:
    """The YAML files shipped by the installed packages (pre-commit, dvc, ...) and this repository's own."""
    site = Path(sysconfig.get_paths()["purelib"])
    files = [*sorted(p for p in site.rglob("*.y*ml") if p.suffix in (".yaml", ".yml")), ROOT / ".pre-commit-hooks.yaml"]
    assert len(files) >= 10
    for path in files:
        raw = path.read_bytes()
        expected = yaml.safe_load(raw)
        for pure in (False, True):
            assert safeyaml.load(raw, pure=pure) == expected, path


def test_a_hostile_config_on_disk_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# looks like a task config\nVERSION: 0.1.0\n" + laughs(8), encoding="utf-8")
    error, work, _ = refused(lambda: safeyaml.load(path.read_bytes()))
    assert error.limit == "max_nodes" and error.line == 9 and work < 50_000
