"""Issue 8's pure layers, in-process: the recomputed-merge classifier, ownership, claims by content,
hook stdin, shell quoting (a property test through bash), terminal escaping and the JSON form."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess

import pytest

from dlgit import config, push
from dlgit.errors import UsageError
from dlgit.evidence import RefView, claimed_source, merge_source
from dlgit.git.parse import FileDiff, c_unquote, diff_header_path, parse_first_parents, parse_patches, problem
from dlgit.history.judge import Policy, Result
from dlgit.history.render import dumps
from dlgit.model import parse_branch
from dlgit.policy import Change, Entry, Merge, evaluate
from dlgit.policy.change import Committed, MergeEvidence, RefUpdate, Rule, Violation
from dlgit.shell import escape, printable, quote

SETTINGS = config.Settings()
SHA = "a" * 40


# --- the classifier of recomputed merges -------------------------------------------------------------

CONFLICT = """\x01dlgit-merge {sha}

diff --git a/f.txt b/f.txt
remerge CONFLICT (content): Merge conflict in f.txt
index 1111111111111111111111111111111111111111..2222222222222222222222222222222222222222 100644
--- a/f.txt
+++ b/f.txt
@@ -2,11 +2,7 @@ line 1
 line 2
-<<<<<<< 84196f4 (main)
{ours}
-=======
{theirs}
->>>>>>> e09e545 (side)
 line 6
{after}"""


def _one(text: str) -> FileDiff:
    [[diff]] = parse_patches(text.encode()).values()
    return diff


@pytest.mark.parametrize(("ours", "theirs", "after", "expected"), [
    ("-line 5 main", " line 5 side", " line 7", None),  # theirs
    (" line 5 main", "-line 5 side", " line 7", None),  # ours
    (" line 5 main", " line 5 side", " line 7", None),  # both (union)
    ("-line 5 main", "-line 5 side", " line 7", None),  # neither line kept: only deletions inside the block
    ("-line 5 main", "-line 5 side\n+line 5 NEITHER", " line 7", "new-content"),
    ("-line 5 main", " line 5 side", "-line 7", "dropped"),  # a line both sides agree on, thrown away
    ("-line 5 main", " line 5 side", "+import os", "new-content"),
])
def test_a_resolved_conflict_may_keep_only_lines_of_either_side(ours: str, theirs: str, after: str, expected: str | None) -> None:
    diff = _one(CONFLICT.format(sha=SHA, ours=ours, theirs=theirs, after=after))
    assert diff.conflicted and diff.markers and problem(diff) == expected


def test_a_file_git_merges_cleanly_may_not_change() -> None:
    text = f"\x01dlgit-merge {SHA}\n\ndiff --git a/evil.py b/evil.py\nnew file mode 100644\nindex 0000000..21b405d\n" \
           "--- /dev/null\n+++ b/evil.py\n@@ -0,0 +1 @@\n+import os\n"
    assert problem(_one(text)) == "changed-clean"


def test_binary_conflicts_and_deletions() -> None:
    binary = f"\x01dlgit-merge {SHA}\n\ndiff --git a/b.dat b/b.dat\nremerge CONFLICT (content): Merge conflict in b.dat\n" \
             "index 30112f7..c4185b4 100644\nBinary files a/b.dat and b/b.dat differ\n"
    diff = _one(binary)
    assert problem(diff, frozenset({"c4185b4"})) is None and problem(diff, frozenset({"30112f7"})) == "binary"
    kept_deleted = f"\x01dlgit-merge {SHA}\n\ndiff --git a/d.txt b/d.txt\ndeleted file mode 100644\n" \
                   "remerge CONFLICT (modify/delete): d.txt deleted in x and modified in y.\nindex 0cfbf08..0000000\n" \
                   "--- a/d.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-2\n"
    assert problem(_one(kept_deleted)) is None  # deleting is one side


def test_a_line_of_equals_signs_outside_a_conflict_is_content() -> None:
    text = CONFLICT.format(sha=SHA, ours="-line 5 main", theirs=" line 5 side", after=" =======\n-dropped after")
    assert problem(_one(text)) == "dropped"


def test_patches_of_several_commits_and_wanted_ones_only() -> None:
    two = CONFLICT.format(sha="b" * 40, ours="-x", theirs="+y", after="") + "\n" + \
        CONFLICT.format(sha="c" * 40, ours="-x", theirs=" y", after="")
    assert set(parse_patches(two.encode())) == {"b" * 40, "c" * 40}
    assert set(parse_patches(two.encode(), wanted={"c" * 40})) == {"c" * 40}
    plain = b"diff --git a/x b/x\nindex 1..2 100644\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
    assert problem(parse_patches(plain, conflicted=frozenset({"x"}))[""][0]) == "new-content"


@pytest.mark.parametrize(("header", "path"), [
    ("a/x b/x", "x"),
    ("a/new file.txt b/new file.txt", "new file.txt"),
    ("a/a b/c b/a b/c", "a b/c"),  # " b/" inside the path: both sides are the same path
    ('"a/we ird\\tname.txt" "b/we ird\\tname.txt"', "we ird\tname.txt"),
    ('"a/caf\\351.py" "b/caf\\351.py"', os.fsdecode(b"caf\xe9.py")),
])
def test_paths_of_diff_headers(header: str, path: str) -> None:
    assert diff_header_path(header) == path


def test_c_unquote_and_first_parents() -> None:
    assert c_unquote('"a\\"b\\\\c\\n" "b/..."') == b'a"b\\c\n'
    assert parse_first_parents(b"m p1 p2\np1 p0\np0\n") == [("m", "p1"), ("p1", "p0"), ("p0", None)]


# --- ownership and claims -----------------------------------------------------------------------------


class _Graph:
    """A stand-in for Git's one first-parent walk: the pairs are given."""

    def __init__(self, pairs: list[tuple[str, str | None]]) -> None:
        self.pairs = pairs

    def first_parents(self, tips: object) -> list[tuple[str, str | None]]:
        return self.pairs


def test_a_branch_owns_its_first_parent_chain_only() -> None:
    # dev: d2 (merge of main's m1) -> d1 -> r; main: m1 -> r; feature-x: f1 -> d1
    refs = RefView(_Graph([("d2", "d1"), ("f1", "d1"), ("m1", "r"), ("d1", "r"), ("r", None)]),  # type: ignore[arg-type]
                   {"dev": {"d2"}, "main": {"m1"}, "feature-x": {"f1"}})
    assert refs.owns("dev", "d1") and refs.owns("feature-x", "d1") and not refs.owns("dev", "m1")
    assert refs.owners("r") == ["dev", "feature-x", "main"] and not refs.owns("ghost", "r")
    dev, main = parse_branch("dev", SETTINGS), parse_branch("main", SETTINGS)
    assert merge_source(["feature-ghost"], "m1", dev, refs, SETTINGS) == main  # the name counts for nothing
    assert merge_source(["feature-x"], "f1", dev, refs, SETTINGS).name == "feature-x"
    assert merge_source([], "nowhere", dev, refs, SETTINGS) is None
    assert merge_source([], "m1", main, refs, SETTINGS) == main  # a pull of its own tip


def test_claims_that_content_proves() -> None:
    task, hotfix = parse_branch("task-0.1.0-20260101T000000-x", SETTINGS), parse_branch("hotfix-x", SETTINGS)
    main, dev = parse_branch("main", SETTINGS), parse_branch("dev", SETTINGS)
    inside, outside = [f"tasks/{task.name}/log.txt"], ["model/net.py"]
    assert claimed_source([task], dev, inside, SETTINGS) == task and claimed_source([task], dev, outside, SETTINGS) is None
    assert claimed_source([task], main, outside, SETTINGS) == task  # task-scope then refuses it on main
    assert claimed_source([hotfix], main, outside, SETTINGS) == hotfix and claimed_source([hotfix], dev, outside, SETTINGS) is None
    assert claimed_source([task], main, inside, SETTINGS, squash=True) is None
    assert claimed_source([parse_branch("feature-x", SETTINGS), dev], main, outside, SETTINGS) is None


# --- the rules on recomputed merges ---------------------------------------------------------------------


def _rules(change: Change) -> list[str]:
    return [violation.rule for violation in evaluate(change, SETTINGS)]


def test_recomputed_merges_are_judged_on_main_and_dev() -> None:
    dev, main, feature = (parse_branch(name, SETTINGS) for name in ("dev", "main", "feature-x"))
    evil = MergeEvidence((("model/backdoor.py", "changed-clean"),))
    assert _rules(Change(main, merge=Merge(dev, SHA), merge_evidence=evil, message="chore: release")) == ["main-protected"]
    assert _rules(Change(dev, merge=Merge(feature, SHA), merge_evidence=evil, message="feat: x")) == ["merge-direction"]
    assert _rules(Change(main, merge=Merge(main, SHA), merge_evidence=MergeEvidence(redundant=True), message="chore: x")) \
        == ["main-protected"]
    assert _rules(Change(main, merge=Merge(dev, SHA), merge_evidence=MergeEvidence(), message="chore: release")) == []


def test_an_unknown_source_is_refused_on_main_only() -> None:
    main, dev = parse_branch("main", SETTINGS), parse_branch("dev", SETTINGS)
    [violation] = evaluate(Change(main, merge=Merge(None, SHA), message="chore: merge"), SETTINGS)
    assert violation.rule == "merge-direction" and "dlgit release" in violation.fix[-1] and "dlgit finish-task" in violation.fix[-1]
    assert _rules(Change(dev, merge=Merge(None, SHA), message="Merge pull request #1 from a/b")) == []


def test_hotfix_size_counts_what_a_merge_brings() -> None:
    main, hotfix = parse_branch("main", SETTINGS), parse_branch("hotfix-x", SETTINGS)
    big = (("model/net.py", 1, 20), ("model/extra.py", 200, 4000))
    [violation] = evaluate(Change(main, merge=Merge(hotfix, SHA, by_content=True), brought=big, message="fix: merge hotfix-x"), SETTINGS)
    assert violation.rule == "hotfix-size" and "no branch here owns it" in violation.detail and violation.items[0].startswith("model/extra")
    assert _rules(Change(main, merge=Merge(hotfix, SHA), brought=(("model/net.py", 1, 20),), message="fix: merge hotfix-x")) == []


def test_release_tags_never_move_nor_go_and_replace_refs_are_refused() -> None:
    def ref_rules(update: RefUpdate) -> list[str]:
        return [v.rule for v in evaluate(Change(None, ref_update=update), SETTINGS)]

    assert ref_rules(RefUpdate("refs/tags/v1.0.0", deleted=True)) == ["release-tag"]
    assert ref_rules(RefUpdate("refs/tags/v1.0.0", moved=True, on_main=True, version="1.0.0")) == ["release-tag"]
    assert ref_rules(RefUpdate("refs/tags/v1.0.0", on_main=True, version="1.0.0")) == []
    assert ref_rules(RefUpdate("refs/tags/scratch", deleted=True)) == []
    assert ref_rules(RefUpdate(f"refs/replace/{SHA}")) == ["history-rewrite"]
    assert ref_rules(RefUpdate(f"refs/replace/{SHA}", deleted=True)) == []


def test_values_of_a_violation_are_cut_to_a_printable_length() -> None:
    rule = Rule("task-config", "s", "w", lambda change, settings: (), ("check",))
    violation = rule.violation("x" * 10_000_000, ["y" * 100_000])
    assert len(violation.detail) < 2100 and len(violation.items[0]) < 1100 and "more characters" in violation.detail


# --- hook stdin ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["garbage", "a b c", f"{SHA} {SHA}", f"{SHA} {'b' * 64} refs/heads/x", f"{SHA} {SHA} main",
                                  f"{SHA} {SHA} refs/heads/x\x1b[2J"])
def test_malformed_pre_receive_lines_are_refused(line: str) -> None:
    with pytest.raises(UsageError, match="line 1 of stdin"):
        push._pre_receive_line(1, line)


def test_well_formed_hook_lines() -> None:
    assert push._pre_receive_line(1, f"{'0' * 40} {SHA} refs/tags/v1.0.0") == push.Update("refs/tags/v1.0.0", "0" * 40, SHA)
    assert push._pre_push_line(1, f"refs/heads/x {SHA} refs/heads/x {'0' * 40}") == push.Update("refs/heads/x", "0" * 40, SHA)
    assert push._pre_push_line(1, f"(delete) {'0' * 40} refs/heads/x {SHA}").new == "0" * 40
    with pytest.raises(UsageError, match="pre-push: line 2"):
        push._pre_push_line(2, "x y")
    assert [n for n, _ in push._lines(io.StringIO("\nline\n\nline\n"))] == [2, 4]


# --- quoting, escaping, JSON ----------------------------------------------------------------------------

HOSTILE = ["plain", "", "it's", 'say "hi"', "$(touch PWNED)", "`touch PWNED`", "a b\tc", "new\nline", "\x1b]52;c;cHduZWQ=\x07",
           "\x1b[2J\rfeat", "semi; touch PWNED; #", "back\\slash", "!event", "${IFS}", "\u202ebidi", "é ü 日本",
           os.fsdecode(b"caf\xe9"), os.fsdecode(b"\xff\xfe raw"), "-n", "*", "~user", "a'b\"c$d`e\\f"]


def _random_strings(count: int) -> list[str]:
    pool = [*"'\"$`\\;&|<>(){}[]*?!#~ \t\n\r\x1b\x07\x00"[:-1], "é", "\u202e", *map(chr, range(0x20, 0x7f)),
            *(os.fsdecode(bytes([b])) for b in (0x80, 0xC3, 0xE9, 0xFF))]
    rng = random.Random(8)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 12))) for _ in range(count)]


def test_quoted_values_round_trip_through_bash() -> None:
    """Property: whatever a value holds, bash reads `quote(value)` back as exactly its bytes."""
    values = HOSTILE + _random_strings(300)
    script = "".join(f"printf '%s\\0' {quote(value)}\n" for value in values)
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True, env={**os.environ, "LC_ALL": "C"}).stdout
    assert out.split(b"\0")[:-1] == [os.fsencode(value) for value in values]


def test_printable_text_holds_no_control_character() -> None:
    for value in HOSTILE + _random_strings(300):
        shown = printable(value)
        assert shown.isprintable(), repr(shown)
        assert shown == value or "\\x" in shown or "\\n" in shown or "\\t" in shown
    assert printable("café 'x' \\ ok") == "café 'x' \\ ok"
    assert escape("\u202e") == "\\xe2\\x80\\xae"  # bytes, as bash's $'...' reads them in any locale


def test_json_is_valid_utf8_and_keeps_every_byte() -> None:
    path = os.fsdecode(b"model/caf\xe9.py")
    finding = Violation("large-file", "s", "d", (path,), "w", ())
    result = Result("r", None, Policy(SETTINGS, "the defaults"), ref_violations=[finding])
    text = dumps(result)
    text.encode("utf-8")  # no lone surrogate left
    [item] = json.loads(text)["ref_violations"][0]["items"]
    assert os.fsencode(item) == b"model/caf\xe9.py"


def test_history_fixes_quote_hostile_names() -> None:
    """A task merge bringing another task's folder prints "merge that task first": the name quoted."""
    task = parse_branch("task-0.1.0-20260101T000000-x", SETTINGS)
    hostile = Change(parse_branch("main", SETTINGS), (Entry("A", "tasks/task-y; touch PWNED; #/log.txt"),), Merge(task, SHA),
                     message="task: merge", commit=Committed("b" * 40))
    [violation] = evaluate(hostile, SETTINGS)
    assert violation.fix[0].startswith("git merge 'task-y; touch PWNED; #'   #"), violation.fix[0]
