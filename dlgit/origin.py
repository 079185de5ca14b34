"""Where this dlgit came from, so that advice names only sources that exist.

dlgit is installed from a git URL or a local folder, not from a package index, and its repository
has no release tags: a pip requirement, a CI install line or a pre-commit `repo:`/`rev:` is taken
from the install's own record (PEP 610 `direct_url.json`: the VCS URL and commit, the folder or the
archive) or from the dlgit entry of the repository's `.pre-commit-config.yaml`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dlgit.errors import UsageError

PLACEHOLDER_REPO = "<URL of the dlgit git repository>"
PLACEHOLDER_REV = "<a commit of it>"


@dataclass(frozen=True)
class Origin:
    """One installed distribution's recorded origin."""

    name: str
    version: str
    url: str | None  # PEP 610 url (https://..., file:///...); None: installed from a package index
    vcs: str | None = None  # "git" for a VCS checkout
    commit: str | None = None  # the installed commit (or the requested revision)
    subdirectory: str | None = None

    @property
    def requirement(self) -> str:
        """A pip requirement for exactly this install: `dlgit @ git+https://...@<sha>`,
        `dlgit @ file:///...`, or `dlgit==<version>` from an index."""
        if self.url is None:
            return f"{self.name}=={self.version}"
        url = f"{self.vcs}+{self.url}" + (f"@{self.commit}" if self.commit else "") if self.vcs else self.url
        return f"{self.name} @ {url}" + (f"#subdirectory={self.subdirectory}" if self.subdirectory else "")

    def with_extra(self, extra: str) -> str:
        """The requirement with an extra added: `dlgit[report] @ git+https://...@<sha>`."""
        return re.sub(r"^([^ =@]+)", rf"\1[{extra}]", self.requirement, count=1)

    @property
    def local(self) -> bool:
        """A folder, archive or clone on this machine: no other machine (a CI runner) can install from it."""
        return self.url is not None and self.url.startswith("file:")

    @property
    def folder(self) -> Path | None:
        """The local folder it was installed from (not an archive, not a VCS URL)."""
        if not self.local or self.vcs:
            return None
        path = Path(unquote(urlsplit(self.url or "").path))
        return path if path.is_dir() else None


def installed(distribution: str = "dlgit") -> Origin:
    """The origin of the installed distribution (UsageError when it is not installed)."""
    from importlib import metadata

    # An installer's record (INSTALLER) beats the metadata a build leaves in a source tree on sys.path.
    candidates = sorted(metadata.distributions(name=distribution), key=lambda found: found.read_text("INSTALLER") is None)
    if not candidates:
        raise UsageError(f"{distribution} is not installed here, so there is no source to name; install it with pip first.")
    found = candidates[0]
    name, version = found.metadata["Name"], found.version
    raw = found.read_text("direct_url.json")
    try:
        record = json.loads(raw) if raw else None
    except ValueError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("url"), str):
        return Origin(name, version, None)
    vcs = record.get("vcs_info") if isinstance(record.get("vcs_info"), dict) else {}
    subdirectory = record.get("subdirectory")
    return Origin(name, version, record["url"], vcs.get("vcs") or None, vcs.get("commit_id") or vcs.get("requested_revision") or None,
                  subdirectory if isinstance(subdirectory, str) and re.fullmatch(r"[\w./-]+", subdirectory) else None)


def install_source(distribution: str = "dlgit") -> str:
    """A pip requirement for the distribution as it was installed here (see Origin.requirement)."""
    return installed(distribution).requirement


# --- the pre-commit framework ----------------------------------------------------------------------


def framework_entry(config_text: str, hook_ids: tuple[str, ...]) -> tuple[str, str] | None:
    """(repo, rev) of the `repos:` entry of a .pre-commit-config.yaml that runs one of `hook_ids`;
    None when there is none (or the file cannot be read: other advice covers that)."""
    import yaml

    from dlgit import safeyaml

    try:
        data = safeyaml.load(config_text)
    except (yaml.YAMLError, safeyaml.YamlLimitError):
        return None
    repos = data.get("repos") if isinstance(data, dict) else None
    for entry in repos if isinstance(repos, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("repo"), str) or not isinstance(entry.get("rev"), (str, int, float)):
            continue
        hooks = entry.get("hooks") if isinstance(entry.get("hooks"), list) else []
        if any(isinstance(hook, dict) and hook.get("id") in hook_ids for hook in hooks):
            return entry["repo"], str(entry["rev"])
    return None


def hook_repo() -> tuple[str, str]:
    """(repo, rev) for a `.pre-commit-config.yaml` entry from this install: the git URL and commit
    of a VCS install, else the local dlgit checkout it came from at its HEAD (works on this machine
    only), else placeholders to fill in."""
    try:
        origin = installed()
    except UsageError:
        origin = None
    if origin is not None and origin.vcs == "git" and origin.url and origin.commit:
        return origin.url, origin.commit
    checkout = _checkout(origin.folder if origin is not None and origin.folder else Path(__file__).resolve().parent.parent)
    if checkout is not None:
        return checkout
    return _project_url(), PLACEHOLDER_REV


def _checkout(folder: Path) -> tuple[str, str] | None:
    """(folder, HEAD) when `folder` is the top of a git checkout of dlgit (it has .pre-commit-hooks.yaml)."""
    from dlgit.git import Git, GitError

    try:
        top = Git.open(folder).root
    except (UsageError, GitError):
        return None
    if top is None or top.resolve() != folder.resolve() or not (top / ".pre-commit-hooks.yaml").is_file():
        return None
    sha = Git(top).rev("HEAD")
    return (str(top), sha) if sha else None


def _project_url() -> str:
    from importlib import metadata

    try:
        urls = metadata.metadata("dlgit").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        urls = []
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("source", "repository", "homepage", "home"):
            return url.strip()
    return PLACEHOLDER_REPO


def pip_url(repo: str) -> str | None:
    """A pip VCS URL (`git+...`) for a pre-commit `repo:` that another machine can clone; None for a
    local path, a file:// URL or `local`/`meta`."""
    if re.match(r"^(https?|ssh|git)://", repo):
        return f"git+{repo}"
    scp = re.fullmatch(r"([\w.-]+@)?([\w.-]+):(?!//)(.+)", repo)  # git@host:owner/name, as git and pre-commit accept it
    if scp and "/" not in (scp.group(1) or "") and len(scp.group(2)) > 1:
        return f"git+ssh://{scp.group(1) or ''}{scp.group(2)}/{scp.group(3).lstrip('/')}"
    return None
