"""The rules (the README's rule table), one function each, registered with a stable id, a statement and a why.

A rule sees only a Change and the Settings; it returns violations carrying the exact fix.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Iterator

from dlgit.config import CONFIG_FILE, Settings
from dlgit.git.parse import UNEXPLAINED
from dlgit.model import (
    MERGE_SOURCES,
    NAME_FORMATS,
    OWN_REFS,
    RULE_IDS,
    SEMVER,
    SQUASH_SOURCES_INTO_MAIN,
    SQUASH_TRAILER,
    Branch,
    Bump,
    Kind,
    is_git_own_message,
    next_version,
    parse_branch,
    parse_bump_subject,
    parse_squash_trailer,
    parse_subject,
    prefixes,
    record_refspec,
    slugify,
    squash_trailer,
    subject_line,
    version_line_of,
)
from dlgit.policy.change import Change, Committed, Merge, Rule, Unexplained, Violation
from dlgit.policy.repairs import pushed, repair, squash_again
from dlgit.shell import quote

RULES: dict[str, Rule] = {}
MAX_LISTED = 20  # offending items shown per violation

CheckFn = Callable[[Change, Settings], Iterable[Violation]]

# Where rules are checked: the git hooks by name, and "check" for `dlgit check`.
HISTORY = ("pre-push", "pre-receive", "check")  # history is judged by the same rules
COMMIT = ("pre-commit", "pre-merge-commit", *HISTORY)  # what a commit changes (a merge's too)
MESSAGE = ("commit-msg", *HISTORY)
STAGES = ("pre-commit", "pre-merge-commit", "commit-msg", *HISTORY)
OTHER_REFS = "other-refs"  # the commits a push brings through refs that are no branch (tags, notes, stash ...): content only

_BRANCH_NAMES = ("branches.main", "branches.dev")
_PREFIXES = ("branches.prefixes.feature", "branches.prefixes.hotfix", "branches.prefixes.task", "branches.prefixes.debug")


def rule(rule_id: str, statement: str, why: str, stages: tuple[str, ...] = COMMIT, settings: tuple[str, ...] = (),
         per_ref: bool = False, wants_content: Callable[[Branch | None, str], bool] | None = None) -> Callable[[CheckFn], CheckFn]:
    assert rule_id in RULE_IDS, rule_id  # the stable ids, which .dlgit.yaml may name

    def register(check: CheckFn) -> CheckFn:
        extra = {"wants_content": wants_content} if wants_content else {}
        RULES[rule_id] = Rule(rule_id, statement, why, check, stages, settings, per_ref, **extra)
        return check

    return register


def version_bump(change: Change, settings: Settings) -> tuple[str, str] | None:
    """(old, new) when the change edits nothing but the VERSION value of the template config, to the
    next major, minor or patch version; recognised by content, never by a flag: the same bytes
    around it (no line break swapped for U+2028, no mode change such as the exec bit)."""
    if len(change.entries) != 1 or change.template_config_before is None or change.template_mode_changed:
        return None
    entry = change.entries[0]
    after = dict(change.configs).get(settings.template_config)
    if entry.status != "M" or entry.path != settings.template_config or after is None:
        return None
    old_lines, new_lines = change.template_config_before.split(b"\n"), after.split(b"\n")
    if len(old_lines) != len(new_lines):
        return None
    differing = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    if len(differing) != 1:
        return None
    try:
        old_line, new_line = (line.decode("utf-8") for line in differing[0])
    except UnicodeDecodeError:
        return None
    old, new = version_line_of(old_line), version_line_of(new_line)
    if old and new and new in next_versions(old) and old_line.replace(old, new, 1) == new_line:
        return old, new
    return None


def next_versions(version: str) -> tuple[str, ...]:
    """The versions a release may bump `version` to: the next major, minor or patch."""
    return tuple(next_version(version, level, major_zero=False) for level in (Bump.MAJOR, Bump.MINOR, Bump.PATCH))


# --- rules -------------------------------------------------------------------------------------


@rule(
    "branch-name",
    "the branch is of a known kind and well formed",
    "dlgit decides what a branch may change and where it may be merged from its name; a name "
    "it cannot read gets no protection and hides an experiment from the task history.",
    settings=(*_BRANCH_NAMES, *_PREFIXES, "branches.extra_allowed"), per_ref=True,
)
def branch_name(change: Change, settings: Settings) -> Iterator[Violation]:
    branch = change.branch
    if branch is None or branch.valid:
        return
    kinds = ", ".join([settings.main, settings.dev, *NAME_FORMATS.values()])
    kind, rest = _meant_kind(branch.name, settings)
    task_name = _task_name(change, rest, settings)
    folder = f"{settings.tasks_dir}/{branch.name}"
    move = f" && git mv {quote(folder)} {settings.tasks_dir}/{task_name}" if change.has_task_folder else ""
    as_task = f"git branch -m {quote(branch.name)} {task_name}{move}   # a run: the core VERSION and the UTC time in its name"
    as_other = f"git branch -m {quote(branch.name)} {quote(prefixes(settings)[kind] + (slugify(rest) or 'change'))}   # rename it"
    yield RULES["branch-name"].violation(
        f"'{branch.name}' {branch.problem}; known kinds: {kinds}"
        + (f", or a pattern in branches.extra_allowed ({', '.join(settings.extra_allowed)})" if settings.extra_allowed else ""),
        [branch.name],
        [*((as_task,) if kind is Kind.TASK else (as_other, as_task)),
         f"# or start a task afresh from {settings.main}: dlgit start-task DESC"],
    )


def _meant_kind(name: str, settings: Settings) -> tuple[Kind, str]:
    """The kind a malformed name was meant as, by a kind word it starts with (`feature/x`,
    `Feature-X`, `task_lr`), and the rest of it; a feature by default."""
    for kind, prefix in prefixes(settings).items():
        word = prefix.rstrip("-/_")
        match = re.match(rf"(?i){re.escape(word)}[-/_.]?(.*)$", name)
        if word and match:
            rest = match.group(1)
            if kind in (Kind.TASK, Kind.DEBUG):  # drop what already reads as a version and a time
                rest = re.sub(r"^(?:[0-9][0-9.]*[-_])?(?:[0-9]{8}T?[0-9]{0,6}[-_])?", "", rest)
            return kind, rest
    return Kind.FEATURE, name


def _task_name(change: Change, rest: str, settings: Settings) -> str:
    """task-<VERSION>-<UTC time>-<desc>: from the facts when the hook knows them, else as a shell
    expression that reads VERSION and the clock when pasted."""
    desc = slugify(rest) or "run"
    version = change.core_version or f"$(sed -n 's/^VERSION:[^0-9]*\\([0-9.]*\\).*/\\1/p' {settings.template_config})"
    stamp = change.now or "$(date -u +%Y%m%dT%H%M%S)"
    return f"{settings.task_prefix}{version}-{stamp}-{desc}"


@rule(
    "main-protected",
    "no direct commit on the main branch",
    "main is the released state that every task branch starts from and that VERSION tags name; "
    "it changes only by merges from dev, hotfix-* and task-*, a release/hotfix squash, or the "
    "release's VERSION bump, so every state of main is a reviewed release.",
    stages=STAGES, settings=("branches.main", "tasks.dir", "tasks.template"),
    wants_content=lambda branch, message: branch is not None and branch.kind is Kind.MAIN,
)
def main_protected(change: Change, settings: Settings) -> Iterator[Violation]:
    if change.branch is None or change.branch.kind is not Kind.MAIN or change.is_root:
        return
    this = RULES["main-protected"]
    merge = change.merge
    if merge is not None and merge.squash:
        if change.message is not None and merge.sha and merge.source and merge.source.kind in SQUASH_SOURCES_INTO_MAIN:
            trailer = parse_squash_trailer(change.message)
            if trailer is None or not merge.sha.startswith(trailer[1]) or trailer[0] != merge.source.name:
                expected = squash_trailer(merge.source.name, merge.sha)
                if change.commit is None:
                    again = "git commit --amend" if change.amending else "git commit"
                    kept = "\n".join(line for line in change.message.splitlines() if not line.startswith(f"{SQUASH_TRAILER}:")).strip()
                    fix = [f'{again} -m {quote(kept)} --trailer "{expected}"   # your message, with the trailer']
                else:
                    amend = [f"git commit --amend --trailer {quote(expected)}   # not pushed yet and the tip: add the trailer"]
                    fix = [*(amend if change.commit.tip else []), *repair(change, settings, "drop"), squash_again(merge.source.name)]
                yield this.violation(
                    f"a squash of '{merge.source.name}' onto {settings.main} must end with the trailer '{expected}' "
                    "so that `dlgit check` can verify its content later",
                    [expected],
                    fix,
                )
        yield from _unverified_squash(change, settings)
        return  # which branch may be squashed here is merge-direction's question
    if merge is not None:
        yield from _recomputed_merge(change, settings, this)
        return
    if version_bump(change, settings):
        return
    paths = change.paths
    release = f"dlgit release   # a release brings {settings.dev} into {settings.main}"
    if change.commit is None:
        if change.dev_missing:
            to_dev = f"git switch -c {settings.dev}   # {settings.dev} does not exist yet: make it here, then commit there"
        elif change.dev_worktree:
            to_dev = (_carrying_changes(None, f"git -C {quote(change.dev_worktree)} stash pop -q")
                      + f"   # commit it on {settings.dev}, checked out in {quote(change.dev_worktree)}")
        else:
            to_dev = _carrying_changes(f"git switch {settings.dev}") + f"   # commit it on {settings.dev} instead"
        fix = [
            to_dev,
            f"git switch -c {settings.hotfix_prefix}NAME   # or: a small urgent fix as a hotfix branch (keeps the staged changes)",
            release,
        ]
    else:
        redo = [] if change.commit.on_dev else [
            f"git switch {settings.dev} && git cherry-pick {change.commit.sha}   # then redo the change on {settings.dev} "
            f"(a small urgent fix: on a {settings.hotfix_prefix}NAME branch from {settings.main})"]
        fix = [*repair(change, settings, "drop"), *redo, release]
    yield this.violation(
        f"this is a direct commit on '{settings.main}'" + (f" changing {len(paths)} path(s)" if paths else ""),
        paths[:MAX_LISTED],
        fix,
    )


def _unverified_squash(change: Change, settings: Settings) -> Iterator[Violation]:
    """What recomputing a squash onto main from its trailer (history) or SQUASH_MSG (the hooks) found."""
    evidence, merge = change.squash_evidence, change.merge
    if evidence is None or merge is None:
        return
    trailer = parse_squash_trailer(change.message or "") if change.commit is not None else None
    named = trailer[0] if trailer else merge.label
    shown = squash_trailer(named, merge.sha or "")
    again = squash_again(merge.source.name if merge.source and merge.source.kind in SQUASH_SOURCES_INTO_MAIN else named)
    redo = [*repair(change, settings, "drop"), again] if change.commit else [f"git reset --merge && {again}"]
    this = RULES["main-protected"]
    if not evidence.exists:
        yield this.violation(f"the trailer '{shown}' names no commit in this repository, so the squash cannot be verified",
                             [shown], [f"git push {quote(change.commit.remote if change.commit else 'origin')} {quote(named)}"
                                       "   # the squashed branch must be pushed first", *redo])
    elif evidence.on_branch is False:
        owner = f" (it is on '{merge.source.name}')" if merge.source and merge.source.name != named else ""
        yield this.violation(f"the trailer '{shown}' names a commit that is not on branch '{named}'{owner}", [shown],
                             [*_fetch_record(change, settings), *redo])
    if evidence.exists and evidence.redundant:
        undo = repair(change, settings, "drop") if change.commit else ["git reset --merge   # undo the squash, keep other work"]
        yield this.violation(f"the trailer '{shown}' names a commit '{settings.main}' already contains: the squash squashes nothing, "
                             f"so whatever it holds (or its message announces) is a direct commit on '{settings.main}'",
                             [shown], [*undo, f"# then squash a branch {settings.main} does not hold yet: dlgit release"])
    if evidence.exists and evidence.differing:
        paths = [path for path, _ in evidence.differing[:MAX_LISTED]]
        yield this.violation(
            f"the squash differs from merging {merge.sha} into its parent in {len(evidence.differing)} path(s): it holds content "
            "that git's merge does not explain (a resolved conflict may keep only lines of one side or the other)",
            [f"{path} ({UNEXPLAINED[problem]})" for path, problem in evidence.differing[:MAX_LISTED]],
            [*_resolve_on_source(change, evidence.differing, settings), *_unstage_extra(change, tuple(paths)),
             "# commit those changes on the squashed branch (or a hotfix branch) instead", *redo],
        )


def _unstage_extra(change: Change, differing: tuple[str, ...]) -> list[str]:
    """For a squash being made: unstage what the user staged on top of it (kept in the work tree)."""
    staged = [path for path in differing if path in set(change.paths)]
    if change.commit is not None or not staged:
        return []
    return [f"git restore --staged -- {' '.join(quote(p) for p in staged[:MAX_LISTED])}   # keep them out of the squash"]


def _recomputed_merge(change: Change, settings: Settings, this: Rule) -> Iterator[Violation]:
    """A merge into main (main-protected) or dev (merge-direction) must be git's merge of its parents:
    a merge whose second parent is already in its first merges nothing, and content that git's merge
    does not explain (an evil merge) was never on either side."""
    evidence, merge, branch = change.merge_evidence, change.merge, change.branch
    if evidence is None or merge is None or branch is None:
        return
    undo = _undo_merge(change, merge, settings)
    unexplained = evidence.unexplained
    if branch.kind is Kind.DEV:  # dev takes any direct commit: so a conflict resolved with lines of both sides (or new ones)
        unexplained = tuple(item for item in unexplained if item[1] == "changed-clean")
    if evidence.redundant:
        yield this.violation(
            f"this merge brings nothing into '{branch.name}': its second parent {merge.label} is already there, so whatever it "
            "changes is a direct commit",
            [merge.label], [*undo, "# commit the change on a branch and merge that branch"],
        )
    if unexplained:
        paths = [path for path, _ in unexplained[:MAX_LISTED]]
        commit_elsewhere = f"# commit those changes on the merged branch (or {settings.dev}, or a hotfix branch) and merge again"
        keep_out = _as_git_merges(paths)
        where = ("a clean path changed: an evil merge" if branch.kind is Kind.DEV
                 else "content found on neither side (a resolved conflict may keep only lines of one side or the other)")
        yield this.violation(
            f"the merge of {merge.label} into '{branch.name}' differs from git's merge of its parents in {len(unexplained)} "
            f"path(s): {where}",
            [f"{path} ({UNEXPLAINED[problem]})" for path, problem in unexplained[:MAX_LISTED]],
            [*_resolve_on_source(change, unexplained, settings), *([keep_out] if change.commit is None else []), *undo,
             commit_elsewhere],
        )


def _as_git_merges(paths: Iterable[str], worktree: bool = True) -> str:
    """For a merge being concluded: put back git's own merge of `paths` (`merge-tree` of HEAD and
    MERGE_HEAD, which is AUTO_MERGE when the merge conflicted; a conflict comes back marked), in
    the index and the work tree, or in the index only (the edits stay in the work tree, uncommitted)."""
    where, kept = ("--staged --worktree", "a conflict comes back marked: resolve it from the sides") if worktree else (
        "--staged", "your edits stay in the work tree, out of the merge")
    return (f'git restore --source="$(git merge-tree --write-tree HEAD MERGE_HEAD | head -n 1)" {where} -- '
            f"{' '.join(quote(p) for p in paths)}   # git's own merge of those paths ({kept})")


_RELEASE_MESSAGES = {Kind.DEV: "chore: release {name}", Kind.HOTFIX: "fix: merge {name}"}


def _resolve_on_source(change: Change, unexplained: Unexplained, settings: Settings) -> list[str]:
    """A conflict of a merge or squash onto main resolved with lines of both sides (or new ones): main
    takes no such commit, its source does (dev, a hotfix take direct commits). The fix carries the
    resolution over: main merged into the source there, conflicted paths as resolved here, then the
    source merged or squashed onto main again, which git now merges cleanly. Nothing is dropped."""
    merge, target = change.merge, change.branch
    if (change.commit is not None or merge is None or merge.source is None or merge.source.kind not in _RELEASE_MESSAGES
            or target is None or target.kind is not Kind.MAIN or any(problem == "changed-clean" for _, problem in unexplained)
            or (change.dev_worktree and merge.source.name == settings.dev)):  # dev is checked out elsewhere: no switch to it
        return []
    source, main = quote(merge.source.name), quote(target.name)
    message = quote(_RELEASE_MESSAGES[merge.source.kind].format(name=merge.source.name))
    paths = " ".join(quote(path) for path, _ in unexplained)
    undo = "git reset --merge" if merge.squash else "git merge --abort"
    if merge.squash:
        trailer = quote(f"{SQUASH_TRAILER}: {merge.source.name}@") + f'"$(git rev-parse {source})"'
        again = f"git merge --squash --ff {source} && git commit -m {message} --trailer {trailer}"
    else:
        again = f"git merge --no-ff -m {message} {source}"
    return [f'resolved=$(git write-tree) && {undo} && git switch {source} && {{ git merge --no-ff --no-commit {main}; '
            f'test -f "$(git rev-parse --git-path MERGE_HEAD)"; }} && git checkout "$resolved" -- {paths} && git commit --no-edit '
            f"&& git switch {main} && {again}   # resolve the conflict on {source}, which takes it, then bring {source} as it is"]


@rule(
    "merge-direction",
    "merges follow the branch model (`dlgit status` shows what this branch accepts), one branch per merge, "
    "and debug branches are never merged",
    "each kind of branch carries one kind of change: feature work reaches main only through a "
    "release of dev, task branches carry only their results, and debug branches hold throw-away "
    "runs; a merge against the model mixes these and breaks the history that explains a result.",
    settings=(*_BRANCH_NAMES, *_PREFIXES, "branches.extra_allowed"),
)
def merge_direction(change: Change, settings: Settings) -> Iterator[Violation]:
    merge, target = change.merge, change.branch
    if merge is None or target is None or not target.valid:
        return
    this = RULES["merge-direction"]
    undo = _undo_merge(change, merge, settings)
    source = merge.source
    action = "squash" if merge.squash else "merge"
    if merge.octopus:
        yield this.violation(
            f"this merge brings several branches into '{target.name}' at once; each merge is judged by its one source",
            [merge.label],
            [*undo, "# then merge them one at a time: git merge --no-ff BRANCH"],
        )
        return
    if target.kind is Kind.DEV:
        yield from _recomputed_merge(change, settings, this)
    if change.stale_release and source is not None and source.kind is Kind.DEV:
        earlier = change.stale_release
        yield this.violation(
            f"this {action} takes {merge.label} @ {(merge.sha or '')[:12]}, which does not contain {earlier[:12]}, the {source.name} "
            f"commit an earlier release took: {target.name} takes {source.name} only forward (its tip, or a commit after every "
            f"release), never a commit it left behind (one it reverted since, say)",
            [(merge.sha or "")[:12], earlier[:12]],
            [*undo, f"git switch {quote(target.name)} && git merge --no-ff -m {quote(f'chore: release {source.name}')} "
                    f"{quote(source.name)}   # release {source.name} as it is now (or: dlgit release)"])
    if source is None:
        if target.kind is Kind.MAIN:  # dev accepts any change: an unknown source is judged by what it brings
            how = "merge --squash" if merge.squash else "merge --no-ff"
            yield this.violation(
                f"no branch here owns commit {merge.label}, and what this {action} brings proves none of the sources "
                f"'{target.name}' accepts ({settings.dev}; a hotfix within its limits; a task changing only its folder), so "
                f"nothing tells where it comes from",
                [merge.label],
                [*_fetch_record(change, settings), *undo,
                 f"# then merge a real branch (pushed, or here): dlgit release ({settings.dev}), dlgit hotfix finish NAME, "
                 f"dlgit finish-task, or git {how} BRANCH with the branch named in the message"],
            )
        return
    if source.name == target.name:  # pulling the same branch from a remote
        return
    if source.kind is Kind.DEBUG:
        yield this.violation(
            f"'{source.name}' is a debug branch; its runs and changes are never merged anywhere",
            [source.name],
            [*undo, f"# then carry its code fixes (not its logs) over: git switch {quote(source.name)} && dlgit debug finish"],
        )
        return
    if merge.squash and target.kind is not Kind.MAIN:
        return  # elsewhere a squash is an ordinary commit: the content rules judge it
    allowed = SQUASH_SOURCES_INTO_MAIN if merge.squash else MERGE_SOURCES[target.kind]
    if source.kind in allowed:
        return
    names = ", ".join(sorted(k.value for k in allowed))
    yield this.violation(
        f"a {action} of {source.kind.value} branch '{source.name}' into {target.kind.value} branch '{target.name}' "
        f"is not allowed (allowed sources here: {names})",
        [source.name],
        [*undo, *_feature_route(change, undo, settings)] if change.commit else [*_feature_route(change, undo, settings), *undo],
    )


def _fetch_record(change: Change, settings: Settings) -> list[str]:
    """A clone without its server's record of the tips main and dev had: the one fetch that brings it."""
    remote = change.unrecorded
    if remote is None:
        return []
    return [f"git fetch {quote(remote)} {quote(record_refspec(remote))}   # first: the tips {settings.main} and {settings.dev} "
            "had, as the server recorded them, may prove where it came from; then check again"]


def _undo_merge(change: Change, merge: Merge, settings: Settings) -> list[str]:
    """Undo a merge or squash: the one being made (the hooks), or the commit in history."""
    if change.commit is not None:
        return repair(change, settings, "drop")
    return ["git reset --merge   # undo the squash, keep other work" if merge.squash else "git merge --abort   # undo this merge"]


def _feature_route(change: Change, undo: list[str], settings: Settings) -> list[str]:
    """Feature work goes to dev (then a release), from where the merge stands (the commit, as a
    branch named here may be a remote's)."""
    merge = change.merge
    if merge is None or merge.source is None or merge.source.kind is not Kind.FEATURE or not merge.sha:
        return []
    if change.commit is not None:  # after the repair above
        return [f"git switch {settings.dev} && git merge {quote(merge.source.name)}   # feature work goes to {settings.dev}, "
                f"then `dlgit release`"]
    back = undo[0].split("   #")[0]
    switch = f"git switch {'-c ' if change.dev_missing else ''}{settings.dev}"
    return [f"{back} && {switch} && git merge --no-ff {merge.sha}   # feature work goes to {settings.dev} "
            f"({quote(merge.source.name)}); `dlgit release` brings it to {settings.main}"]


@rule(
    "settings-file",
    f"a {CONFIG_FILE} a change adds or edits holds valid settings",
    "every hook and `dlgit check` after it reads the settings from that file: a broken one is found only when it "
    "stops the next commit, the next push and every check, far from the change that broke it.",
)
def settings_file(change: Change, settings: Settings) -> Iterator[Violation]:
    if change.settings_problem is None:
        return
    edit = [f"# edit {CONFIG_FILE} (`dlgit explain config` lists every key and its default), then: git add -- {CONFIG_FILE}"]
    if change.commit is None:
        fix = [*edit, f"git restore --staged -- {CONFIG_FILE}   # or leave it out of this commit (your edit stays in the work tree)"]
    else:
        fix = repair(change, settings, "edit", edit, forward=True)
    yield RULES["settings-file"].violation(change.settings_problem, [CONFIG_FILE], fix)


# --- paths as git's fsck judges them ---------------------------------------------------------------

# Code points HFS+ ignores when it compares names (git's is_hfs_dotgit): `.g\u200cit` is `.git` there.
_HFS_IGNORED = "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u206a\u206b\u206c\u206d\u206e\u206f\ufeff"
# What may begin an unsafe component (case ignored): dots and spaces up to a separator, a ':' or the end
# (also an empty component: '//', a leading or trailing '/'), .git, git~1.
_SUSPECT_COMPONENT = r"(?:[. ]*(?:[/\\\0:]|$)|\.git|git~1)"


def _suspect(text: str) -> bool:
    """May a component of the text (paths joined by NULs: a cheap first pass over a whole commit's
    paths) be unsafe? A few scans that re runs at C speed (a pattern that begins with an uncased
    character set): one alternation with `^` scans ten times slower."""
    return bool(re.match(rf"(?i){_SUSPECT_COMPONENT}", text) or re.search(rf"(?i)[/\\\0]{_SUSPECT_COMPONENT}", text)
                or (not text.isascii() and re.search(f"[{_HFS_IGNORED}]", text)))  # those code points are not ASCII


def _component_problem(name: str) -> str | None:
    """Why git's fsck (or a checkout on NTFS or HFS+) refuses one path component, or None."""
    if name in ("", ".", ".."):
        return f"a '{name}' component" if name else "an empty component"
    head = name.split(":", 1)[0]  # NTFS: `..:stream` and `.. ` are `..`
    if "." in head and not head.strip(". "):
        return f"the component {name!r}, which Windows reads as '.' or '..'"
    folded = "".join(ch for ch in name if ch not in _HFS_IGNORED).lower()
    if folded == ".git":
        where = "" if name == ".git" else " where case is ignored" if name.lower() == ".git" else " on macOS (HFS+)"
        return f"the component {name!r}, which is .git{where}"
    ntfs = name.split(":", 1)[0].rstrip(". ").lower()
    if ntfs in (".git", "git~1"):
        return f"the component {name!r}, which is .git on Windows (NTFS)"
    return None


def unsafe_paths(paths: list[str]) -> list[tuple[str, str]]:
    """(path, why) for each path that git's fsck refuses or that names .git or a parent folder on some
    file system: a `..` tree entry written with `git mktree` makes `tasks/x/../../model/net.py`."""
    return list(_unsafe("\0".join(paths))) if paths else []


@functools.lru_cache(maxsize=4)
def _unsafe(joined: str) -> tuple[tuple[str, str], ...]:
    """unsafe_paths of the paths joined by NULs (which no path holds): path-names and task-scope
    ask it of the same commit's thousands of paths."""
    if not _suspect(joined):
        return ()
    found = []
    for path in joined.split("\0"):
        if _suspect(path):
            why = next(filter(None, map(_component_problem, re.split(r"[/\\]", path))), None)
            if why:
                found.append((path, why))
    return tuple(found)


@rule(
    "path-names",
    "every path is one git's fsck accepts: no '.', '..' or empty component, and no .git in any spelling",
    "a tree entry named '..' or '.git' (or '.GIT', '.git.', 'git~1', '.g<U+200C>it', which Windows and macOS read as "
    ".git) escapes the folder it appears in: it passes a folder test as a string, breaks every fresh clone's checkout, "
    "and on some systems writes into git's own directory.",
    stages=(*COMMIT, OTHER_REFS),
)
def path_names(change: Change, settings: Settings) -> Iterator[Violation]:
    found = unsafe_paths(change.paths)
    if not found:
        return
    names = " ".join(quote(path) for path, _ in found[:MAX_LISTED])
    fix = [f"git rm -r -q --cached -- {names}   # git's own commands never make such paths: take them out"]
    yield RULES["path-names"].violation(
        f"{len(found)} path(s) that git's fsck refuses (`git fsck` reports them; a checkout breaks or escapes its folder)",
        [f"{path} ({why})" for path, why in found[:MAX_LISTED]],
        fix if change.commit is None else repair(change, settings, "drop"),
    )


@rule(
    "task-scope",
    "a task branch changes only tasks/<its branch name>/ (both sides of a rename; deletions count)",
    "a task run must be reproducible from its core version: if a task branch edits core code, its "
    "result no longer belongs to the version in its name and cannot be merged into main safely.",
    settings=("branches.prefixes.task", "branches.main", "branches.dev", "tasks.dir"),
)
def task_scope(change: Change, settings: Settings) -> Iterator[Violation]:
    branch, merge = change.branch, change.merge
    if branch is None:
        return
    if branch.kind is Kind.TASK and (merge is None or merge.squash):  # a squash is an ordinary commit here
        folder, what = f"{settings.tasks_dir}/{branch.name}", "this commit"
    elif branch.kind is Kind.TASK and merge is not None:
        yield from _merge_on_task(change, branch, merge, settings)
        return
    elif branch.kind in (Kind.MAIN, Kind.DEV) and merge and merge.source and merge.source.kind is Kind.TASK:
        folder, what = f"{settings.tasks_dir}/{merge.source.name}", f"the merge of '{merge.source.name}'"
    else:
        return
    inside = folder + "/"
    if branch.kind is Kind.TASK and change.foreign_paths:
        yield _foreign_commits(change, branch, settings)
    # into dev, main's commits the task holds are what a back-merge brings (dev takes them): the task's own changes are judged
    paths = list(change.task_brings) if branch.kind is Kind.DEV and change.task_brings is not None else change.paths
    unsafe = {path for path, _ in unsafe_paths(paths)}  # `tasks/x/../../model/net.py` starts with the folder, as a string
    outside = [path for path in paths if not path.startswith(inside) or path in unsafe]
    if not outside:
        return
    quoted = " ".join(quote(p) for p in outside[:MAX_LISTED])
    commit = change.commit
    if merge and merge.source and merge.source.kind is Kind.TASK:
        there = "the task branch changed files outside its folder; fix it there first"
        if commit is not None:
            fix = [*repair(change, settings, "drop"), there]
        else:
            fix = [f"{'git reset --merge   # undo the squash' if merge.squash else 'git merge --abort'}   # {there}"]
    elif commit is not None and len(outside) == len(change.paths):  # nothing would be left of it: drop it
        fix = repair(change, settings, "drop")
    elif commit is not None:
        take_out = f"git restore --source={commit.sha}^ --staged --worktree -- {quoted}   # take out what lies outside {folder}/"
        fix = repair(change, settings, "edit", [take_out])
    elif change.amending:  # the amended commit holds them already: back to its parent's version, kept in the work tree
        fix = [f"git restore --source=HEAD^ --staged -- {quoted}   # leave out of the amend what lies outside {folder}/"]
    else:
        fix = [f"git restore --staged -- {quoted}   # unstage what lies outside {folder}/"]
    fix.append(f"# core code changes belong on {settings.dev} or a {settings.feature_prefix}* branch; "
               "a new hyper-parameter in config.yaml often avoids them")
    fix[:0] = _parent_tasks_first(outside, merge, settings, commit)
    yield RULES["task-scope"].violation(f"{what} touches {len(outside)} path(s) outside {folder}/", outside[:MAX_LISTED], fix)


def _merge_on_task(change: Change, branch: Branch, merge: Merge, settings: Settings) -> Iterator[Violation]:
    """A merge on a task branch (of main, or of the task it was started from) brings that branch's
    content; what it adds beyond git's merge of its parents is a commit on the task: only its folder.
    A merge of a commit no branch here owns vouches for nothing: all it changes must lie in task folders."""
    evidence, folder = change.merge_evidence, f"{settings.tasks_dir}/{branch.name}"
    if merge.source is None:
        inside, judged, what = f"{settings.tasks_dir}/", change.paths, f"the merge of {merge.label}, which no branch here owns,"
    elif evidence is None or merge.octopus:
        return
    else:
        inside, what = folder + "/", f"what the merge of '{merge.source.name}' adds beyond git's merge of its parents"
        judged = change.paths if evidence.redundant else [path for path, _ in evidence.unexplained]
    outside = [path for path in judged if not path.startswith(inside)]
    if not outside:
        return
    if change.commit is not None:
        fix = [*repair(change, settings, "drop"), f"# then merge again, changing nothing outside {inside} beyond git's own merge"]
    elif merge.source is None:
        fix = [f"git merge --abort   # a task merges only {settings.main} or the task it was started from"]
    else:
        fix = [_as_git_merges(outside[:MAX_LISTED], worktree=False), "git merge --abort   # or undo the merge"]
    fix.append(f"# core code changes belong on {settings.dev} or a {settings.feature_prefix}* branch; "
               "a result needs the core it ran on, as released")
    yield RULES["task-scope"].violation(f"{what} touches {len(outside)} path(s) outside {inside}", outside[:MAX_LISTED], fix)


def _foreign_commits(change: Change, branch: Branch, settings: Settings) -> Violation:
    """A task branch started from dev (or with core commits) carries them: its own commits go onto main."""
    paths = change.foreign_paths
    name = quote(branch.name)
    return RULES["task-scope"].violation(
        f"'{branch.name}' holds commits that change {len(paths)} path(s) outside {settings.tasks_dir}/ since it left "
        f"{settings.main}: it was started from {settings.dev} (or another branch), not from {settings.main}",
        paths[:MAX_LISTED],
        [f"git -c rebase.autoStash=true rebase -q --onto {settings.main} {settings.dev} {name}   # keep only the task's "
         f"own commits, on {settings.main} (where a task starts)",
         f"# or start the task again from {settings.main}: git switch {settings.main} && dlgit start-task"])


def _parent_tasks_first(outside: list[str], merge: Merge | None, settings: Settings, commit: Committed | None = None) -> list[str]:
    """A task branch started from another task carries that task's folder: when that is all it
    brings along, the other task has to be merged first."""
    prefix = f"{settings.tasks_dir}/{settings.task_prefix}"
    if not merge or not merge.source or any(not path.startswith(prefix) for path in outside):
        return []
    parents = sorted({path.split("/")[1] for path in outside})
    if commit:  # in history: the merge is made already
        return [f"git merge {' '.join(map(quote, parents))}   # '{quote(merge.source.name)}' was started from "
                f"{', '.join(map(quote, parents))}: merge that task first (allowed: only its folder), then this one"]
    merges = " && ".join(f"git merge --no-ff -m {quote(f'task: merge {parent}')} {quote(parent)}" for parent in parents)
    return [f"git merge --abort && {merges}   # '{quote(merge.source.name)}' was started from {', '.join(map(quote, parents))}: "
            "merge that task first (allowed: only its folder), then this one again"]


@rule(
    "hotfix-size",
    "a hotfix branch stays small: its diff from the fork point with main is within the limits",
    "a hotfix goes straight into main without a release; only a change small enough to review "
    "at a glance may skip dev. Larger work is a feature. Bytes count as well as lines (every file "
    "read as text, whatever .gitattributes says): a compiled module or a blob is not \"0 lines\".",
    settings=("hotfix.max_files", "hotfix.max_lines", "hotfix.max_bytes", "branches.prefixes.hotfix", "branches.main"),
)
def hotfix_size(change: Change, settings: Settings) -> Iterator[Violation]:
    merge = change.merge
    if change.brought is not None and merge is not None and merge.source is not None:
        yield from _hotfix_brought(change, merge, settings)
    if change.branch is None or change.branch.kind is not Kind.HOTFIX or change.hotfix_diff is None:
        return
    measured = _hotfix_measure(change.hotfix_diff, settings)
    if measured is None:
        return
    commit = change.commit
    if commit is None:
        trim = [_trim_hotfix(change, settings)]
    else:
        fork = f"$(git merge-base {commit.merged_by + '^' if commit.merged_by else settings.main} {commit.sha})"
        trim = [f"git switch {quote(change.branch.name)} && git rebase -i {fork}   # keep only the fix: drop or edit the rest",
                *pushed(change, settings, None)]
    yield RULES["hotfix-size"].violation(
        f"'{change.branch.name}' changes {measured[0]} since it left {settings.main} ({_HOTFIX_LIMITS.format(s=settings)})",
        measured[1], [*trim, f"# or raise {_HOTFIX_KEYS} in .dlgit.yaml"],
    )


_HOTFIX_LIMITS = "limits: {s.hotfix_max_files} files, {s.hotfix_max_lines} lines, {s.hotfix_max_bytes:,} bytes"
_HOTFIX_KEYS = "hotfix.max_files / hotfix.max_lines / hotfix.max_bytes"


def _within_hotfix_limits(files: int, lines: int, size: int, settings: Settings) -> bool:
    return files <= settings.hotfix_max_files and lines <= settings.hotfix_max_lines and size <= settings.hotfix_max_bytes


def _hotfix_measure(diff: tuple[tuple[str, int, int], ...], settings: Settings) -> tuple[str, list[str]] | None:
    """None within the limits; else what the diff changes in words, and its biggest paths."""
    files, lines, size = len(diff), sum(item[1] for item in diff), sum(item[2] for item in diff)
    if _within_hotfix_limits(files, lines, size, settings):
        return None
    over = " or more" if size > settings.hotfix_max_bytes else ""  # reading stops once past the limit
    biggest = sorted(diff, key=lambda item: (-item[2], -item[1]))
    return (f"{files}{over and '+'} file(s), {lines}{over and '+'} line(s) and {size:,}{over} bytes",
            [f"{path} ({count} lines, {nbytes:,} bytes)" for path, count, nbytes in biggest[:MAX_LISTED]])


def _trim_hotfix(change: Change, settings: Settings) -> str:
    """Unstage what makes the hotfix too big when that is enough; else the work is a feature:
    the branch renamed and moved onto dev, the uncommitted changes kept."""
    assert change.branch is not None and change.hotfix_diff is not None
    staged = set(change.paths)
    kept = [item for item in change.hotfix_diff if item[0] not in staged]
    if staged and _within_hotfix_limits(len(kept), sum(item[1] for item in kept), sum(item[2] for item in kept), settings):
        listed = " ".join(quote(path) for path in sorted(staged))
        return f"git restore --staged -- {listed}   # keep the hotfix to the fix itself (they stay in the work tree)"
    feature = quote(f"{settings.feature_prefix}{change.branch.desc or 'work'}")
    return _carrying_changes(f"git branch -m {quote(change.branch.name)} {feature} && git rebase -q --onto {settings.dev} "
                             f"{settings.main} {feature}") + f"   # larger work is a feature, on {settings.dev}"


def _carrying_changes(commands: str | None, pop: str = "git stash pop -q") -> str:
    """`commands` with the uncommitted changes set aside in the stash and brought back after: the
    pop only when the push made an entry (a clean tree makes none, and someone's own stash
    entry is never applied or dropped)."""
    return (f'top=$(git rev-parse -q --verify refs/stash); git stash push -q && {commands + " && " if commands else ""}'
            f'if [ "$(git rev-parse -q --verify refs/stash)" != "$top" ]; then {pop}; fi')


def _hotfix_brought(change: Change, merge: Merge, settings: Settings) -> Iterator[Violation]:
    """A hotfix merged or squashed into main: what the merge itself brings stays within the limits."""
    assert change.brought is not None and merge.source is not None
    measured = _hotfix_measure(change.brought, settings)
    if measured is None:
        return
    action = "squash" if merge.squash else "merge"
    claim = " (the name it gives: no branch here owns it)" if merge.by_content else ""
    undo = _undo_merge(change, merge, settings)
    yield RULES["hotfix-size"].violation(
        f"the {action} of '{merge.source.name}'{claim} brings {measured[0]} onto '{settings.main}' ({_HOTFIX_LIMITS.format(s=settings)})",
        measured[1],
        [*undo, f"git switch -c {settings.feature_prefix}NAME {settings.dev}   # larger work goes through {settings.dev}",
         f"or raise {_HOTFIX_KEYS} in .dlgit.yaml"],
    )


_EXAMPLE = "feat: add a data loader"
_MAX_BODY_IN_FIX = 400  # characters of a body repeated in the printed `git commit -m ... -m ...`


@rule(
    "commit-message",
    "the message reads <type>[(scope)][!]: <subject> with a known type",
    "the type drives the release: feat bumps the minor version, fix the patch, ! or BREAKING "
    "CHANGE the major; task marks the record of a run. A free-form message breaks the automatic "
    "version bump and hides what a commit is.",
    stages=MESSAGE, settings=("commit.types", "branches.main"),
    wants_content=lambda branch, message: parse_bump_subject(message) is not None,  # a bump is recognised by its content
)
def commit_message(change: Change, settings: Settings) -> Iterator[Violation]:
    message = change.message
    if message is None:
        return
    if not message.strip():  # `git commit --allow-empty-message`
        yield _empty_message(change, settings)
        return
    if len(message) > MAX_MESSAGE:
        yield RULES["commit-message"].violation(
            f"the message holds {len(message):,} characters; a commit message holds at most {MAX_MESSAGE:,} "
            "(logs, tables and outputs belong in files of the task folder)", [subject_line(message)[:72]],
            _message_fix(change, settings, _EXAMPLE))
        return
    subject = subject_line(message)
    if parse_subject(subject, settings.commit_types):
        return
    on_main = change.branch is not None and change.branch.kind is Kind.MAIN
    if is_git_own_message(subject) and (not on_main or _pull_of_itself(change)):
        return
    bump = parse_bump_subject(subject)
    if bump and version_bump(change, settings) == bump:  # and it says which versions
        return
    problem, corrected = _subject_problem(subject, bump, on_main, settings)
    own_words = None if corrected or bump else _own_words(subject, settings)
    example = corrected or _merge_subject(change) or own_words or _EXAMPLE
    if change.commit is None:
        rest = message.strip()[len(subject):].strip() if corrected else ""
        body = f" -m {quote(rest)}" if rest and len(rest) <= _MAX_BODY_IN_FIX else ""
        other_types = "   # or fix:, docs:, task:, refactor(model)!: ..." if example in (_EXAMPLE, own_words) else ""
        again = "git commit --amend" if change.amending else "git commit"
        typed = ".git/MERGE_MSG" if change.merge and not change.merge.squash else ".git/COMMIT_EDITMSG"
        fix = [f"{again} -m {quote(example)}{body}{other_types}", f"# or edit what you typed: {again} -e -F {typed}"]
    else:
        fix = _message_fix(change, settings, example)
    yield RULES["commit-message"].violation(f"the subject '{subject[:72]}' {problem}", [subject[:72]], fix)


MAX_MESSAGE = 256 * 1024  # characters: a message is read by every check and hook after it; 20 MB is no message


def _empty_message(change: Change, settings: Settings) -> Violation:
    return RULES["commit-message"].violation(
        "the message is empty: a commit says what it does (an empty message is never allowed)", ["(empty)"],
        _message_fix(change, settings, _EXAMPLE))


def _message_fix(change: Change, settings: Settings, example: str) -> list[str]:
    """Write the message again: the commit being made, or the commit in history."""
    if change.commit is not None:
        return [*repair(change, settings, "reword"), f"# a subject reads like {quote(example)}"]
    again = "git commit --amend" if change.amending else "git commit"
    return [f"{again} -m {quote(example)}   # or fix:, docs:, task:, refactor(model)!: ..."]


def _pull_of_itself(change: Change) -> bool:
    """A merge of the branch's own remote tip (`git pull` after a teammate pushed): git's own
    "Merge branch 'main' of <url>" names it, and releases nothing."""
    merge = change.merge
    return (merge is not None and not merge.squash and change.branch is not None and merge.source is not None
            and merge.source.name == change.branch.name)


# A subject as people mistype it: every part optional, blanks allowed where they do not belong.
_LOOSE_SUBJECT = (r"(?P<type>[^\s():!]*)(?P<gap>\s*)(?:\((?P<scope>[^()]*)\))?(?P<bang>!)?(?P<colon>\s*:)?"
                  r"(?P<space>\s*)(?P<description>.*)")


def _subject_problem(subject: str, bump: tuple[str, str] | None, on_main: bool, settings: Settings) -> tuple[str, str | None]:
    """What is wrong with a refused subject, said once per failure (after "the subject '...'"), and
    the corrected subject when it can be derived (None when only the author knows what to write)."""
    types, form = settings.commit_types, "<type>[(scope)][!]: <description>"
    if bump:
        return (f"is commitizen's version-bump subject, allowed only on the commit that changes nothing but VERSION "
                f"in {settings.template_config} from {bump[0]} to {bump[1]}; this one is not that"), None
    if on_main and is_git_own_message(subject):
        return f"is git's own message, enough off {settings.main} only: a commit on {settings.main} reads {form}", None
    loose = re.fullmatch(_LOOSE_SUBJECT, subject)
    assert loose is not None  # every part is optional
    kind, scope, description = loose["type"], loose["scope"], loose["description"].strip()
    if kind not in types and kind.lower() not in types:
        if not loose["colon"]:
            return f"does not start with a type and ':' (types: {', '.join(types)})", None
        unknown = f"the unknown type '{kind}'" if kind else "no type before ':'"
        return f"has {unknown} (known: {', '.join(types)}; commit.types in {CONFIG_FILE} adds more)", None
    if not loose["colon"] and ":" in description:
        return f"does not read {form}", None
    problems = []
    if kind not in types:
        problems.append("an upper-case type")
        kind = kind.lower()
    if scope is not None and not scope.strip():
        problems.append("an empty scope")
    elif scope is not None and re.search(r"\s", scope):
        problems.append("a space in the scope")
    if not loose["colon"]:
        problems.append("no colon after the type")
    elif loose["gap"] or loose["colon"] != ":":
        problems.append("a space before the colon")
    scope_text = "-".join(scope.split()) if scope else ""
    prefix = f"{kind}{f'({scope_text})' if scope_text else ''}{loose['bang'] or ''}"
    if not description:
        return f"has {_listed([*problems, 'an empty description'])}: say what the commit does after '{prefix}: '", None
    if loose["colon"] and loose["space"] != " ":
        problems.append("more than one space after the colon" if loose["space"] else "no space after the colon")
    if not problems:
        return f"does not read {form}", None
    return f"has {_listed(problems)}: write '{prefix}: {description}'", _checked(f"{prefix}: {description}", types)


_MERGE_TYPES = {Kind.TASK: "task: merge", Kind.HOTFIX: "fix: merge", Kind.DEV: "chore: release"}


def _merge_subject(change: Change) -> str | None:
    """The subject dlgit's flows give a merge onto main from the branch being merged."""
    source = change.merge.source if change.merge and not change.merge.squash else None
    prefix = _MERGE_TYPES.get(source.kind) if source else None
    return f"{prefix} {source.name}" if source and prefix else None


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _own_words(subject: str, settings: Settings) -> str | None:
    """A free-form subject (or one of an unknown type) as a `feat:` subject in the author's words."""
    if is_git_own_message(subject):
        return None
    words = subject.partition(":")[2].strip() if ":" in subject else subject.strip()
    words = words[:1].lower() + words[1:] if words[1:2].islower() or len(words) == 1 else words
    return _checked(f"feat: {words}", settings.commit_types) if words else None


def _checked(subject: str, types: tuple[str, ...]) -> str | None:
    return subject if parse_subject(subject, types) else None


def _fold(text: str) -> str:
    """Model/data patterns ignore case: `best.PT` is a checkpoint too."""
    return text.lower()


@functools.lru_cache(maxsize=8)
def _pattern_index(patterns: tuple[str, ...]) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
    """`*.ext`-style patterns as plain suffixes, the rest as one regex: a commit with 20,000 files
    must not cost 20,000 x patterns fnmatch calls."""
    suffixes = tuple(_fold(p[1:]) for p in patterns if p.startswith("*") and not any(c in p[1:] for c in "*?["))
    others = [p for p in patterns if _fold(p[1:]) not in suffixes or not p.startswith("*")]
    regex = re.compile("|".join(f"(?:{fnmatch.translate(_fold(p))})" for p in others)) if others else None
    return suffixes, regex


@functools.lru_cache(maxsize=8)
def _suffix_regex(suffixes: tuple[str, ...]) -> re.Pattern[str]:
    """Any of the suffixes at the end of a NUL-terminated path."""
    return re.compile(f"(?:{'|'.join(map(re.escape, suffixes))})\0")


def _matching_pattern(name: str, path: str, patterns: tuple[str, ...]) -> str | None:
    """The first pattern that the file name or the whole path matches (fnmatch semantics)."""
    suffixes, regex = _pattern_index(patterns)
    cased = _fold(path)  # `*.pt` matches the name exactly when it matches the path (case-insensitively)
    if not (cased.endswith(suffixes) or (regex and (regex.match(_fold(name)) or regex.match(cased)))):
        return None
    return next((p for p in patterns if fnmatch.fnmatchcase(_fold(name), _fold(p)) or fnmatch.fnmatchcase(_fold(path), _fold(p))), None)


def _may_hold_large_files(change: Change, settings: Settings) -> bool:
    """A whole-commit pre-check (C-speed string search, not a call per path): `dlgit check` meets
    root commits of 100,000 files. False only when no entry can match a pattern or the size."""
    suffixes, regex = _pattern_index(settings.large_file_patterns)
    sizes = [entry.size for entry in change.entries if entry.size]
    if regex is not None or max(sizes, default=0) > settings.large_file_max_bytes:
        return True
    joined = _fold("\0".join([entry.path for entry in change.entries])) + "\0"
    return bool(suffixes) and _suffix_regex(suffixes).search(joined) is not None


def too_large(path: str, size: int | None, settings: Settings) -> str | None:
    """Why a file may not enter git (it matches a model/data pattern, or is over the size limit), or None."""
    pattern = _matching_pattern(path.rsplit("/", 1)[-1], path, settings.large_file_patterns)
    if pattern:
        return f"matches {pattern}"
    if size is not None and size > settings.large_file_max_bytes:
        return f"{size / 2**20:.1f} MiB"
    return None


@rule(
    "large-file",
    "no file over the size limit or matching a model/data pattern enters git",
    "checkpoints and data sets bloat every clone forever and cannot be removed without rewriting "
    "history; DVC keeps them outside git and versions a small .dvc pointer instead.",
    stages=(*COMMIT, OTHER_REFS), settings=("large_files.max_bytes", "large_files.patterns"),
)
def large_file(change: Change, settings: Settings) -> Iterator[Violation]:
    if not _may_hold_large_files(change, settings):
        return
    offending = [(entry.path, reason) for entry in change.entries
                 if entry.adds_content and (reason := too_large(entry.path, entry.size, settings))]
    if not offending:
        return
    limit = f"{settings.large_file_max_bytes / 2**20:g} MiB"
    quoted = " ".join(quote(path) for path, _ in offending[:MAX_LISTED])
    paths = [path for path, _ in offending[:MAX_LISTED]]
    pointers = " ".join(quote(f"{path}.dvc") for path in paths)
    ignores = " ".join(sorted({quote(f"{path.rpartition('/')[0]}/.gitignore" if "/" in path else ".gitignore") for path in paths}))
    to_dvc = [f"git rm --cached -q -- {quoted}", f"dvc add {quoted}", f"git add -- {pointers} {ignores}"]
    if change.commit is not None:
        fix = repair(change, settings, "edit", to_dvc, forward=True)
    elif change.uses_dvc:
        fix = [f"git rm --cached -q -- {quoted} && dvc add {quoted} && git add -- {pointers} {ignores}"
               "   # DVC keeps the files, git a small pointer; then commit again"]
    else:
        unstage = "git rm --cached -q --" if change.is_root else "git restore --staged --"  # no HEAD to restore from yet
        fix = [f"{unstage} {quoted}   # keep them out of git (they stay in the work tree)",
               f"# then version them with DVC, which this repository does not use yet: git switch {settings.dev} && "
               "dlgit init --dvc && dlgit release"]
    if change.branch is not None and change.branch.kind is Kind.TASK and change.commit is None:
        fix.append("# on a task branch, `dlgit finish-task` puts big results into DVC and commits the pointers")
    yield RULES["large-file"].violation(
        f"{len(offending)} file(s) are model/data files or larger than {limit}",
        [f"{path} ({reason})" for path, reason in offending[:MAX_LISTED]],
        fix,
    )


_TYPE_CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "VERSION": (lambda v: isinstance(v, str) and re.fullmatch(SEMVER, v) is not None, "a version X.Y.Z"),
    "DEBUG": (lambda v: isinstance(v, bool), "true or false"),
    "TRAIN": (lambda v: isinstance(v, bool), "true or false"),
    "TEST": (lambda v: isinstance(v, bool), "true or false"),
    "RESUME": (lambda v: v is None or isinstance(v, (str, bool)), "a checkpoint path, false or null"),
    "MODEL_PATH": (lambda v: v is None or isinstance(v, str), "a path or null"),
    "RANDOM_SEED": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
}


def config_problems(text: bytes, folder_branch: Branch | None, settings: Settings) -> list[str]:
    """What is wrong with one task config.yaml (empty list: it is fine)."""
    return list(_config_problems(text, folder_branch, settings))


@functools.lru_cache(maxsize=4096)
def _config_problems(text: bytes, folder_branch: Branch | None, settings: Settings) -> tuple[str, ...]:
    """Cached: `dlgit check` meets a task's config again in its merges into main and dev."""
    import yaml  # only when a config.yaml is part of the change

    from dlgit import safeyaml

    try:
        data = safeyaml.load(text)
    except UnicodeDecodeError as exc:
        return (f"is not UTF-8 text (byte {text[exc.start]:#04x} at offset {exc.start}); save it as UTF-8",)
    except safeyaml.YamlLimitError as exc:
        return (f"is refused: {exc}",)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return (f"is not valid YAML{f' at line {mark.line + 1}' if mark else ''}: {safeyaml.reason(exc)}",)
    if not isinstance(data, dict):
        return ("must be a mapping of KEY: value",)
    problems = [f"lacks {key}" for key in settings.required_keys if key not in data]
    for key, (ok, expected) in _TYPE_CHECKS.items():
        if key in data and not ok(data[key]):
            problems.append(f"{key} is {safeyaml.shown(data[key])}, expected {expected}")
    version = data.get("VERSION")
    valid = isinstance(version, str) and re.fullmatch(SEMVER, version) is not None  # else the type check said it
    if folder_branch and folder_branch.version and valid and version != folder_branch.version:
        problems.append(f"VERSION is {version} but the branch name says {folder_branch.version}")
    return tuple(problems)


@rule(
    "task-config",
    "every tasks/*/config.yaml parses and holds the required keys with sane types; a task's VERSION matches its name "
    "and the core it runs on (the template config in the same commit)",
    "a task is reproduced from its config.yaml: a missing seed, a wrong type or a VERSION that "
    "does not match the core version in the branch name makes the recorded result meaningless.",
    stages=(*COMMIT, OTHER_REFS), settings=("tasks.dir", "tasks.required_keys", "branches.prefixes.task", "branches.prefixes.debug"),
)
def task_config(change: Change, settings: Settings) -> Iterator[Violation]:
    yield from _task_on_another_core(change, settings)
    for path, text in change.configs:
        folder = path.split("/")[-2]
        problems = config_problems(text, parse_branch(folder, settings), settings)
        if problems:
            edit = [f"# edit {quote(path)} (keys: {', '.join(settings.required_keys)}), then: git add -- {quote(path)}"]
            yield RULES["task-config"].violation(
                f"{path}: " + "; ".join(problems),
                [path],
                edit if change.commit is None else repair(change, settings, "edit", edit, forward=True),
            )


def _task_on_another_core(change: Change, settings: Settings) -> Iterator[Violation]:
    """A task's VERSION is the core it runs on: the template config's VERSION in the same commit,
    whatever the branch name claims (`--resume` of an older task on a newer core)."""
    versions, branch = change.task_versions, change.branch
    if versions is None or branch is None or None in versions or versions[0] == versions[1]:
        return
    own, core = versions
    path = f"{settings.tasks_dir}/{branch.name}/config.yaml"
    redo = (f"# then start it again on this core, named and configured for {core}: git switch {settings.main} && "
            f"dlgit start-task {quote(branch.desc or 'DESC')}")
    unstage = f"git restore --staged -- {quote(path)}   # keep the config of another core out of this commit"
    yield RULES["task-config"].violation(
        f"{path} says VERSION {own}, but the core this commit runs it on ({settings.template_config}) is {core}: "
        "a result is tied to the core it ran on", [path],
        [unstage, redo] if change.commit is None else [*repair(change, settings, "drop"), redo])


@rule(
    "no-debug-on-main",
    "main and dev never contain tasks/debug-*/",
    "debug runs use a tiny data set and throw-away settings; their logs and outputs on a "
    "long-lived branch would be mistaken for real results.",
    settings=("branches.main", "branches.dev", "branches.prefixes.debug", "tasks.dir"),
)
def no_debug_on_main(change: Change, settings: Settings) -> Iterator[Violation]:
    if change.branch is None or change.branch.kind not in (Kind.MAIN, Kind.DEV):
        return
    prefix = f"{settings.tasks_dir}/{settings.debug_prefix}"
    found = [entry.path for entry in change.entries if entry.path.startswith(prefix) and entry.adds_content]  # the cheap test first
    if not found:
        return
    folders = sorted({"/".join(path.split("/")[:2]) for path in found})
    listed = " ".join(quote(f) for f in folders)
    remove = [f"git rm -r -q --cached -- {listed}"]
    merge = change.merge
    if change.commit is not None:
        fix = repair(change, settings, "edit", remove, forward=True)
    elif merge and not merge.squash and merge.source:  # the source holds them: take them out there, then merge again
        source = quote(merge.source.name)
        fix = [f"git merge --abort && git switch {source} && git rm -r -q -- {listed} && "
               f"git commit -q -m {quote('chore: remove debug runs')} && git switch {quote(change.branch.name)}"
               f"   # debug runs never reach {quote(change.branch.name)}: out of {source} first, then merge again"]
    else:
        fix = remove
    yield RULES["no-debug-on-main"].violation(
        f"{len(found)} path(s) under {', '.join(f + '/' for f in folders)} would land on '{change.branch.name}'",
        found[:MAX_LISTED],
        fix,
    )


@rule(
    "history-rewrite",
    "main and dev are never force-pushed or deleted, and no replace ref is pushed, nor any of dlgit's own refs",
    "main and dev are the shared record that tags, task branches and results point into; rewriting "
    "or deleting them orphans those commits and makes every clone disagree about what was released. "
    "A replace ref (refs/replace/) makes git show another commit in place of a real one: history rewritten in disguise. "
    f"Under {OWN_REFS} the server records the tips main and dev have had, which prove where a merge came from: "
    "only the server writes them.",
    stages=("pre-push", "pre-receive"), settings=("branches.main", "branches.dev"), per_ref=True,
)
def history_rewrite(change: Change, settings: Settings) -> Iterator[Violation]:
    update, branch = change.ref_update, change.branch
    if update is not None and update.ref.startswith("refs/replace/") and not update.deleted:
        replaced = update.ref.removeprefix("refs/replace/")
        yield RULES["history-rewrite"].violation(
            f"the push creates or moves the replace ref {update.ref}, which would show another commit in place of {replaced[:12]}",
            [update.ref],
            [f"git push REMOTE {quote(update.ref)}   # leave it out of the push (git push --all and --mirror include refs/replace/)",
             f"git replace -d {quote(replaced)}   # or drop the replacement here too"])
        return
    if update is not None and update.ref.startswith(OWN_REFS):
        yield RULES["history-rewrite"].violation(
            f"the push {'deletes' if update.deleted else 'writes'} {update.ref}: under {OWN_REFS} only the server writes (its "
            f"record of the tips {settings.main} and {settings.dev} have had, from its own reflogs)", [update.ref],
            [f"git push {quote(update.remote)} BRANCH...   # push branches and tags only (git push --mirror includes {OWN_REFS})",
             f"# to fetch the server's record instead: git fetch {quote(update.remote)} {quote(record_refspec(update.remote))}"])
        return
    if update is None or branch is None or branch.kind not in (Kind.MAIN, Kind.DEV):
        return
    if update.deleted:
        yield RULES["history-rewrite"].violation(f"the push deletes '{branch.name}'", [update.ref], [
            f"git push {quote(update.remote)} {quote(branch.name)}   # push it instead of deleting it (long-lived branches stay)"])
    elif update.forced:
        yield RULES["history-rewrite"].violation(
            f"the push replaces '{branch.name}' with a history that does not contain its current tip (a force push)",
            [update.ref],
            [
                f"git switch {quote(branch.name)} && git reset --keep @{{upstream}}   # drop the rewrite, keep your work tree",
                "# undo a commit by adding its inverse (git revert <commit>), never by removing it",
            ],
        )


@rule(
    "release-tag",
    "a release tag vX.Y.Z names a commit on main whose VERSION is X.Y.Z, and never moves nor goes once pushed; no tag's "
    "message is megabytes",
    "a task records the core version it ran on; a tag off main or with another VERSION points that "
    "record at code that was never released as that version.",
    stages=HISTORY, settings=("branches.main", "tasks.dir", "tasks.template"), per_ref=True,
)
def release_tag(change: Change, settings: Settings) -> Iterator[Violation]:
    update = change.ref_update
    if update is not None and (update.tag_bytes or 0) > MAX_MESSAGE:
        tag = update.ref.removeprefix("refs/tags/")
        yield RULES["release-tag"].violation(
            f"the tag {tag} carries {update.tag_bytes:,} bytes; a tag's message holds at most {MAX_MESSAGE:,}", [tag],
            [f"git tag -f -a {quote(tag)} -m {quote('release ' + tag)} {quote(tag)}^{{}}   # the tag again, with a short message"])
    match = re.fullmatch(rf"refs/tags/v({SEMVER})", update.ref) if update else None
    if update is None or match is None:
        return
    tag = update.ref.removeprefix("refs/tags/")
    if update.deleted or update.moved:
        what = "deletes" if update.deleted else "moves"
        yield RULES["release-tag"].violation(
            f"the push {what} the release tag {tag}: a released version names one commit forever (tasks record it)", [tag],
            [f"git fetch REMOTE +refs/tags/{tag}:refs/tags/{tag}   # take back the tag as the remote has it",
             f"release the change as the next version instead: dlgit release, or dlgit hotfix finish NAME on {settings.main}"])
        return
    problems = []
    if update.on_main is False:
        problems.append(f"the tagged commit is not on '{settings.main}'")
    if update.version != match.group(1):
        problems.append(f"{settings.template_config} there says VERSION {update.version or '(missing)'}")
    if problems:
        yield RULES["release-tag"].violation(f"tag {tag}: " + "; ".join(problems), [tag], [
            f"git tag -d {tag}   # remove the wrong tag (and `git push {quote(update.remote)} :refs/tags/{tag}` if it was pushed)",
            f"git tag -a v{match.group(1)} -m 'release {match.group(1)}' \"$(git log -1 --format=%H -G'^VERSION: {match.group(1)}' "
            f"{settings.main} -- {settings.template_config})\"   # on the {settings.main} commit that set VERSION {match.group(1)}",
        ])
