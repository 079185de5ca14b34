"""What `dlgit init --commitizen` writes: commitizen's configuration for `cz_dlgit` and the `dlgit`
version provider, and the commitizen hook entry for .pre-commit-config.yaml.

No commitizen import: commitizen need not be installed where dlgit is (its pre-commit hook runs in
an environment of its own, which `additional_dependencies` gives dlgit).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from dlgit import origin
from dlgit.errors import UsageError

COMMITIZEN_REPO = "https://github.com/commitizen-tools/commitizen"
COMMITIZEN_FALLBACK_REV = "v4.19.3"  # when commitizen is not installed here: the release dlgit was tested with
# Where commitizen looks for its settings, in its order (commitizen.defaults.CONFIG_FILES).
CONFIG_FILES = (".cz.toml", "cz.toml", ".cz.json", "cz.json", ".cz.yaml", "cz.yaml", "pyproject.toml")
ESSENTIAL = ("name", "version_provider", "tag_format")  # what dlgit needs; the rest are defaults the user may change


def settings(changelog: bool = False) -> dict[str, Any]:
    """commitizen's settings for a dlgit repository."""
    return {
        "name": "cz_dlgit",
        "version_provider": "dlgit",  # VERSION in tasks/main/config.yaml
        "tag_format": "v$version",  # dlgit's release tags
        "annotated_tag": True,  # as `dlgit release` tags
        "update_changelog_on_bump": changelog,
        "allowed_prefixes": [],  # git's own messages are in cz_dlgit's schema_pattern, exactly as dlgit allows them
    }


class ConfigPlan(NamedTuple):
    path: Path
    action: str  # "create", "append" or "unchanged"
    text: str  # what is written: the whole new file, or the section appended


def commitizen_config(toplevel: Path, changelog: bool = False, write: bool = True) -> ConfigPlan:
    """Write (or, with write=False, only plan) commitizen's settings: into the file commitizen
    already reads when one has a commitizen section (which must then agree on ESSENTIAL, else a
    UsageError names the keys to change; nothing is rewritten), else a `[tool.commitizen]` table
    appended to pyproject.toml when there is one, else a new .cz.toml."""
    wanted = settings(changelog)
    existing = _existing_section(toplevel)
    if existing is not None:
        path, section = existing
        wrong = {key: wanted[key] for key in ESSENTIAL if section.get(key) != wanted[key]}
        if wrong:
            lines = ", ".join(f"{json.dumps(key)}: {json.dumps(value)}" if path.suffix == ".json" else
                              f"{key}: {value}" if path.suffix == ".yaml" else f"{key} = {_toml(value)}" for key, value in wrong.items())
            raise UsageError(f"{path.name} already configures commitizen, differently: set {lines} in its commitizen "
                             "section (dlgit does not rewrite it), then run this again.")
        return ConfigPlan(path, "unchanged", "")
    table = "[tool.commitizen]\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in wanted.items())
    target = toplevel / "pyproject.toml"
    if not target.is_file():
        target = toplevel / ".cz.toml"
    current = target.read_text(encoding="utf-8") if target.is_file() else None
    if current is None:
        plan = ConfigPlan(target, "create", table)
    else:
        plan = ConfigPlan(target, "append", ("" if not current else "\n" if current.endswith("\n") else "\n\n") + table)
    if write:
        with plan.path.open("a", encoding="utf-8") as file:
            file.write(plan.text)
    return plan


def _existing_section(toplevel: Path) -> tuple[Path, dict[str, Any]] | None:
    """The first of commitizen's files that holds a commitizen section, and that section."""
    for name in CONFIG_FILES:
        path = toplevel / name
        if not path.is_file():
            continue
        try:
            data = _read(path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot be read as commitizen reads it ({exc}); fix it first.") from None
        section = (data.get("tool", {}) if name.endswith(".toml") else data).get("commitizen") if isinstance(data, dict) else None
        if isinstance(section, dict):
            return path, section
    return None


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    if path.suffix == ".yaml":
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(str(exc)) from None
    return _toml_reader()(text)


def _toml_reader() -> Any:
    """tomllib.loads (Python 3.11+), else that of tomli or of tomlkit (commitizen's) where installed."""
    from importlib import import_module

    for module in ("tomllib", "tomli", "tomlkit"):
        try:
            return import_module(module).loads
        except ImportError:
            continue
    raise UsageError("reading an existing TOML file needs Python 3.11+, tomli or tomlkit: `pip install tomli`, then run this again.")


def _toml(value: Any) -> str:
    """A TOML value: strings (JSON's escapes are TOML's), booleans and lists of strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(value)


def precommit_hook(rev: str | None = None) -> dict[str, Any]:
    """The `repos:` entry that runs commitizen's own commit-msg hook (`cz check`) with cz_dlgit:
    its isolated environment gets dlgit from where this dlgit was installed."""
    return {
        "repo": COMMITIZEN_REPO,
        "rev": rev or _commitizen_rev(),
        "hooks": [{"id": "commitizen", "stages": ["commit-msg"], "additional_dependencies": [origin.install_source()]}],
    }


def _commitizen_rev() -> str:
    from importlib import metadata

    try:
        return f"v{metadata.version('commitizen')}"
    except metadata.PackageNotFoundError:
        return COMMITIZEN_FALLBACK_REV
