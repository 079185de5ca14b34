"""commitizen integration: the `cz_dlgit` rules and the `dlgit` version provider.

Registered as entry points (pyproject.toml), so commitizen imports this module at every start: it
imports only commitizen's own classes (loaded by commitizen anyway) and dlgit's light modules; the
repository's settings are read when commitizen instantiates a class. The only module of dlgit
that imports commitizen: the hooks never do.

Everything that judges a message comes from dlgit.model, built from `commit.types` in the
repository's .dlgit.yaml: `schema_pattern` accepts what dlgit's commit-msg rule accepts off main,
`bump_pattern` and `bump_map` give what `dlgit.model.release_bump` gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dlgit import config, model
from dlgit.errors import UsageError

if TYPE_CHECKING:
    from commitizen.config.base_config import BaseConfig
    from commitizen.question import CzQuestion


def cz_dlgit(settings: BaseConfig) -> DlgitCz:
    """The `commitizen.plugin` entry point; commitizen calls it as it calls a plugin class. Defined
    before commitizen is imported: importing commitizen.cz runs commitizen's plugin discovery, which
    loads this entry point, also when this module is what imports commitizen first."""
    return DlgitCz(settings)


from commitizen.cz.conventional_commits import ConventionalCommitsCz  # noqa: E402  (see cz_dlgit)
from commitizen.exceptions import InvalidConfigurationError, NoVersionSpecifiedError  # noqa: E402
from commitizen.providers.base_provider import VersionProvider  # noqa: E402

CHANGELOG_SECTIONS = {"feat": "Feat", "fix": "Fix", "refactor": "Refactor", "perf": "Perf", "task": "Task"}
_CHOICES = {  # the types commitizen's conventional rules do not describe
    "chore": "chore: Maintenance that changes no behaviour (tooling, housekeeping)",
    "revert": "revert: Reverts a previous commit",
    "task": "task: The record of a task run, or the merge of a task branch; bumps no version",
}


def _repository() -> tuple[Path | None, config.Settings]:
    """The work tree commitizen runs in and dlgit's settings there (the defaults outside a repository)."""
    from dlgit.git import Git  # runs git: only when a class is instantiated

    try:
        repo = Git.open()
    except UsageError:
        return None, config.Settings()
    try:
        return repo.root, config.load(repo.root, config.settings_cache(repo.git_dir))
    except UsageError as exc:
        raise InvalidConfigurationError(str(exc)) from None


class DlgitCz(ConventionalCommitsCz):
    """Conventional commits with dlgit's types (`task` included) and dlgit's bump and changelog."""

    def __init__(self, config: BaseConfig) -> None:
        super().__init__(config)
        self.settings = _repository()[1]
        types = self.settings.commit_types
        self.bump_pattern = model.bump_pattern(types)
        self.bump_map_major_version_zero = _bump_map(below_one=True)
        listed = [kind for kind in CHANGELOG_SECTIONS if kind in types]
        self.changelog_pattern = self.bump_pattern
        self.commit_parser = (rf"^((?P<change_type>{'|'.join([*listed, 'BREAKING CHANGE'])})"
                              r"(?:\((?P<scope>[^()\r\n]*)\)|\()?(?P<breaking>!)?|\w+!):\s(?P<message>.*)?")
        self.change_type_map = {kind: CHANGELOG_SECTIONS[kind] for kind in listed}
        self.change_type_order = ["BREAKING CHANGE", *self.change_type_map.values()]

    @property  # type: ignore[override]
    def bump_map(self) -> dict[str, str | None]:
        """Below 1.0 a breaking change bumps the minor version, as dlgit.model.next_version says,
        whether or not commitizen's `major_version_zero` is set."""
        from commitizen.providers import get_provider

        version = get_provider(self.config).get_version()
        return _bump_map(below_one=version.split(".", 1)[0] == "0")

    def questions(self) -> list[CzQuestion]:
        """commitizen's conventional questions, the type offered from dlgit's types."""
        questions = super().questions()
        known = {choice["value"]: choice for choice in questions[0]["choices"]}  # type: ignore[typeddict-item]
        questions[0]["choices"] = [known.get(kind) or {"value": kind, "name": _CHOICES.get(kind, kind)}  # type: ignore[typeddict-unknown-key]
                                   for kind in self.settings.commit_types]
        return questions

    def schema_pattern(self) -> str:
        return model.message_pattern(self.settings.commit_types)


def _bump_map(below_one: bool) -> dict[str, str | None]:
    """dlgit.model.BUMP_RULES as commitizen's bump map (increment names; None: no bump)."""
    rules = ((regex, model.below_one(bump) if below_one else bump) for regex, bump in model.BUMP_RULES)
    return {regex: None if bump is model.Bump.NONE else bump.name for regex, bump in rules}


class DlgitProvider(VersionProvider):
    """VERSION in the template task's config.yaml (settings: tasks.dir/tasks.template), read and
    rewritten as dlgit's release does: only the value changes, every other byte of the file stays."""

    def _path(self) -> Path:
        toplevel, settings = _repository()
        return (toplevel or Path()) / settings.template_config

    def _text(self, path: Path) -> str:
        try:
            return path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NoVersionSpecifiedError(f"dlgit: cannot read VERSION from {path} ({exc}).") from None

    def get_version(self) -> str:
        path = self._path()
        version = model.read_version(self._text(path))
        if version is None:
            raise NoVersionSpecifiedError(f"dlgit: {path} has no top-level 'VERSION: X.Y.Z' line.")
        return version

    def set_version(self, version: str) -> None:
        path = self._path()
        try:
            text = model.rewrite_version(self._text(path), version)
        except ValueError as exc:  # e.g. a pre-release: VERSION is X.Y.Z
            raise InvalidConfigurationError(f"dlgit: cannot set VERSION {version} in {path}: {exc}.") from None
        path.write_bytes(text.encode("utf-8"))
