"""One table of commit messages as the ecosystem writes them, with the verdict each judge must give.

`dlgit` is the commit-msg hook's verdict off main (on dev), `main` its verdict on main where that
differs, `cz` the verdict of `cz check --allow-abort --commit-msg-file` with `cz_dlgit` configured
(the way commitizen's own pre-commit hook runs it) where that differs. A row where the judges
differ says why in `differs`: every such difference is by design, and the tests assert it.
"""

from __future__ import annotations

from typing import NamedTuple


class Case(NamedTuple):
    message: str  # the message file's text, as git hands it to the hook
    dlgit: bool  # accepted by `dlgit hook commit-msg` on dev
    cz: bool | None = None  # None: as dlgit
    main: bool | None = None  # None: as dlgit on dev (only the commit-message rule is looked at on main)
    differs: str = ""  # why a judge differs

    @property
    def cz_verdict(self) -> bool:
        return self.dlgit if self.cz is None else self.cz

    @property
    def main_verdict(self) -> bool:
        return self.dlgit if self.main is None else self.main

    @property
    def id(self) -> str:
        return self.message[:40].encode("unicode_escape").decode() or "(empty)"


EMPTY = "an empty message: commitizen's hook allows it (--allow-abort), dlgit never does"
GITS_OWN = "git's own message: allowed off main only; cz cannot see the branch"
BUMP_ONLY_REAL = "`bump:` is dlgit's only for a commit that changes VERSION and nothing else; cz cannot see the content"

CASES: tuple[Case, ...] = (
    # conventional subjects, every default type
    *(Case(f"{kind}: a change", True) for kind in
      ("feat", "fix", "docs", "style", "refactor", "test", "chore", "build", "ci", "perf", "revert", "task")),
    Case("feat: add a data loader\n", True),
    Case("fix(model): nan loss", True),
    Case("fix(data-loader.v2_x): scopes may hold '-', '.', '_'", True),
    Case("refactor(model)!: a new forward signature", True),
    Case("feat!: drop the old config format", True),
    Case("task: run lr0.01\n\nloss 0.12 after 10 epochs\n", True),
    Case("feat: " + "a long subject " * 8, True),
    # BREAKING CHANGE footers and multi-line bodies
    Case("feat: new loader\n\nLoads shards lazily.\n\nBREAKING CHANGE: the loader takes a path\n", True),
    Case("fix: a\n\nBREAKING-CHANGE: b\nRefs: #12\n", True),
    Case("feat: x\n\nfirst paragraph\nwraps here\n\n- a bullet\n- another\n", True),
    Case("feat: x\nno blank line before the body", True),
    Case("\n\nfeat: leading blank lines\n", True),
    # comment lines (an edited message) and the scissors line of `git commit -v`
    Case("feat: x\n# Please enter the commit message for your changes.\n#\n# On branch dev\n", True),
    Case("# a comment first\nfeat: x\n", True),
    Case("feat: x\n# ------------------------ >8 ------------------------\n# Do not modify or remove the line above.\n"
         "diff --git a/x b/x\n+wip: not a subject\n", True),
    Case("# only a comment\n", False, cz=True, differs=EMPTY),  # empty once git removes the comment
    # CRLF line endings and trailing whitespace
    Case("feat: x\r\n\r\nbody\r\n", True),
    Case("wip: x\r\n", False),
    Case("feat: trailing blanks   \n", True),
    Case("Merge branch 'feature-x' into dev   \n", True, main=False, differs=GITS_OWN),
    # non-ASCII
    Case("feat: 支持中文数据集", True),
    Case("fix(données): accents é à", True),
    Case("feat: emoji ✨ in the description", True),
    Case("✨ feat: a gitmoji first", False),
    Case("fëat: a non-ASCII type", False),
    # git's own messages
    Case("Merge branch 'feature-x' into dev", True, main=False, differs=GITS_OWN),
    Case("Merge branches 'feature-a' and 'feature-b' into dev", True, main=False, differs=GITS_OWN),
    Case("Merge remote-tracking branch 'origin/dev' into dev", True, main=False, differs=GITS_OWN),
    Case("Merge remote-tracking branches 'origin/a' and 'origin/b' into dev", True, main=False, differs=GITS_OWN),
    Case("Merge tag 'v0.1.0' into dev", True, main=False, differs=GITS_OWN),
    Case("Merge tags 'v1' and 'v2'", True, main=False, differs=GITS_OWN),
    Case("Merge commit '1a2b3c4d' into dev", True, main=False, differs=GITS_OWN),
    Case("Merge remote-tracking branch 'origin/b1', tag 'v3'; commit '961bd7e3' into dev", True, main=False, differs=GITS_OWN),
    Case("Merge ../other repo into dev", True, main=False, differs=GITS_OWN),
    Case("Merge branch 'main' of ../other repo into dev", True, main=False, differs=GITS_OWN),
    Case("Merge https://example.com/team/repo.git into dev", True, main=False, differs=GITS_OWN),
    Case("Merge pull request #12 from someone/feature-x", True, main=False, differs=GITS_OWN),
    Case('Revert "feat: add a data loader"\n\nThis reverts commit 1a2b3c4d.\n', True, main=False, differs=GITS_OWN),
    Case('Revert "Revert "feat: add a data loader""', True, main=False, differs=GITS_OWN),
    Case('Reapply "feat: add a data loader"\n\nThis reverts commit 5e6f7a8b.\n', True, main=False, differs=GITS_OWN),
    Case("fixup! feat: add a data loader", True, main=False, differs=GITS_OWN),
    Case("squash! feat: add a data loader", True, main=False, differs=GITS_OWN),
    Case("amend! feat: add a data loader\n\nfeat: add a lazy data loader\n", True, main=False, differs=GITS_OWN),
    Case("Merge", False),
    Case("Merged in feature-x (pull request #1)", False),
    Case("Revert the loader", False),
    Case("fixup!feat: no space", False),
    # scopes
    Case("feat(data loader): a space in the scope", False),
    Case("feat(): an empty scope", False),
    Case("feat(a)(b): two scopes", False),
    Case("feat(a(b)): nested", False),
    # commitizen's bump subject
    Case("bump: version 0.1.0 → 0.2.0", False, cz=True, differs=BUMP_ONLY_REAL),
    Case("bump: version 0.1.0 -> 0.2.0", False, cz=True, differs=BUMP_ONLY_REAL),
    Case("bump: a version", False),
    # refused, each with its own diagnosis
    Case("wip: stuff", False),
    Case("Feat: capital", False),
    Case("FIX: shouting", False),
    Case("feat:no space", False),
    Case("feat:  two spaces", False),
    Case("feat:\ta tab", False),
    Case("feat : space before the colon", False),
    Case("feat:", False),
    Case("feat: ", False),
    Case("fix tests", False),
    Case("update readme", False),
    Case(": no type", False),
    # empty messages (`git commit --allow-empty-message`): never allowed (SPEC §3); cz's hook lets them pass (--allow-abort)
    Case("", False, cz=True, differs=EMPTY),
    Case("   \n\n", False, cz=True, differs=EMPTY),
)
