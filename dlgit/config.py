""".dlgit.yaml -> a frozen Settings object. Every key is optional and has the spec's default.

```yaml
branches:
  main: main
  dev: dev
  prefixes: {feature: feature-, hotfix: hotfix-, task: task-, debug: debug-}
  extra_allowed: ["release/*"]      # glob patterns of other branch names to accept
tasks:
  dir: tasks
  template: main                    # tasks/<template>/ is copied for each task
  required_keys: [VERSION, DEBUG, RESUME, TRAIN, TEST, MODEL_PATH, RANDOM_SEED]
  entry: train.py                   # what `dlgit run` runs in the task folder
  python: null                      # the interpreter for it (null: the one dlgit runs under)
  outputs: [logs, runs, outputs, checkpoints]   # folders start-task leaves out of a copy
  metrics: [metrics.json, metrics.yaml]          # where `dlgit tasks` finds a run's metrics
  max_subtasks: 1000                # sub-tasks one sweep (start-task --sweep) may declare
hotfix: {max_files: 5, max_lines: 50, max_bytes: 16384}
large_files:
  max_bytes: 5242880
  patterns: ["*.pt", "*.pth", ...]
commit:
  types: [feat, fix, docs, style, refactor, test, chore, build, ci, perf, revert, task]
rules:
  disable: []                       # rule ids to switch off
limits:
  max_merge_paths: 20000            # bounded work: paths recomputed merges may differ in, per range
cluster:                            # `dlgit submit`'s defaults (its options override them)
  executor: slurm                   # slurm or local
  partition: null
  time: 60                          # minutes per job
  gpus: 0                           # per job
  cpus: 1
  mem: null                         # e.g. 16G
  array_parallelism: 256            # array elements running at once
  max_requeues: 3                   # after preemption or time limit
  signal_delay: 90                  # seconds between the warning signal (USR2) and the end
  sbatch: []                        # other #SBATCH options, KEY=VALUE
```
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from dlgit.errors import UsageError
from dlgit.model import RULE_IDS

CONFIG_FILE = ".dlgit.yaml"

DEFAULT_LARGE_FILE_PATTERNS = (
    "*.pt", "*.pth", "*.ckpt", "*.safetensors", "*.h5", "*.hdf5", "*.onnx", "*.npy", "*.npz",
    "*.pkl", "*.pickle", "*.joblib", "*.pb", "*.tflite", "*.parquet", "*.feather", "*.tfrecord",
    "*.mdb", "*.bin", "*.gguf", "*.ggml", "*.tar", "*.tar.gz", "*.tgz",
)
DEFAULT_COMMIT_TYPES = ("feat", "fix", "docs", "style", "refactor", "test", "chore", "build", "ci", "perf", "revert", "task")
DEFAULT_REQUIRED_KEYS = ("VERSION", "DEBUG", "RESUME", "TRAIN", "TEST", "MODEL_PATH", "RANDOM_SEED")


class Settings(NamedTuple):
    main: str = "main"
    dev: str = "dev"
    feature_prefix: str = "feature-"
    hotfix_prefix: str = "hotfix-"
    task_prefix: str = "task-"
    debug_prefix: str = "debug-"
    extra_allowed: tuple[str, ...] = ()
    tasks_dir: str = "tasks"
    template: str = "main"
    required_keys: tuple[str, ...] = DEFAULT_REQUIRED_KEYS
    task_entry: str = "train.py"
    task_python: str | None = None  # None: the interpreter dlgit runs under
    task_outputs: tuple[str, ...] = ("logs", "runs", "outputs", "checkpoints")
    task_metrics: tuple[str, ...] = ("metrics.json", "metrics.yaml")
    max_subtasks: int = 1000  # sub-tasks one sweep may declare
    hotfix_max_files: int = 5
    hotfix_max_lines: int = 50
    hotfix_max_bytes: int = 16 * 1024  # changed bytes: a binary or a long line is not "one line"
    large_file_max_bytes: int = 5 * 1024 * 1024
    large_file_patterns: tuple[str, ...] = DEFAULT_LARGE_FILE_PATTERNS
    commit_types: tuple[str, ...] = DEFAULT_COMMIT_TYPES
    disabled_rules: tuple[str, ...] = ()
    max_merge_paths: int = 20_000  # recomputed merges and squashes: paths git's merge may differ in, per judged range
    cluster_executor: str = "slurm"
    cluster_partition: str | None = None
    cluster_time: int = 60
    cluster_gpus: int = 0
    cluster_cpus: int = 1
    cluster_mem: str | None = None
    cluster_array_parallelism: int = 256
    cluster_max_requeues: int = 3
    cluster_signal_delay: int = 90
    cluster_sbatch: tuple[str, ...] = ()

    @property
    def template_dir(self) -> str:
        return f"{self.tasks_dir}/{self.template}"

    @property
    def template_config(self) -> str:
        return f"{self.template_dir}/config.yaml"


# Names that become refs or paths: a safe subset of git's ref-name rules (any script's letters).
_SEPARATORS = "letters, digits, '_', '.', '-'"
_BRANCH = (r"\w[\w./-]*(?<![./])", _SEPARATORS + ", '/'")
_NESTED_PREFIX = (r"\w[\w./-]*", _SEPARATORS + ", '/'")  # feature/ and hotfix/ styles
_FOLDER = (r"\w[\w.-]*", _SEPARATORS)  # task and debug branch names are folders under tasks/ too
_NAME_FORMS: dict[str, tuple[str, str]] = {  # Settings field -> (pattern, what it may hold)
    "main": _BRANCH, "dev": _BRANCH,
    "feature_prefix": _NESTED_PREFIX, "hotfix_prefix": _NESTED_PREFIX,
    "task_prefix": _FOLDER, "debug_prefix": _FOLDER, "tasks_dir": _FOLDER, "template": _FOLDER,
    "commit_types": (r"\w[\w-]*", "letters, digits, '_', '-'"),
}


# YAML path -> (Settings field, expected type, human description)
_SCHEMA: dict[tuple[str, ...], tuple[str, type, str]] = {
    ("branches", "main"): ("main", str, "a branch name"),
    ("branches", "dev"): ("dev", str, "a branch name"),
    ("branches", "prefixes", "feature"): ("feature_prefix", str, "a branch-name prefix"),
    ("branches", "prefixes", "hotfix"): ("hotfix_prefix", str, "a branch-name prefix"),
    ("branches", "prefixes", "task"): ("task_prefix", str, "a branch-name prefix"),
    ("branches", "prefixes", "debug"): ("debug_prefix", str, "a branch-name prefix"),
    ("branches", "extra_allowed"): ("extra_allowed", list, "a list of glob patterns"),
    ("tasks", "dir"): ("tasks_dir", str, "a folder name"),
    ("tasks", "template"): ("template", str, "a folder name under the tasks folder"),
    ("tasks", "required_keys"): ("required_keys", list, "a list of config.yaml keys"),
    ("tasks", "entry"): ("task_entry", str, "a script path inside the task folder"),
    ("tasks", "python"): ("task_python", str, "an interpreter command, or null for dlgit's own"),
    ("tasks", "outputs"): ("task_outputs", list, "a list of folder names"),
    ("tasks", "metrics"): ("task_metrics", list, "a list of file paths inside the task folder"),
    ("tasks", "max_subtasks"): ("max_subtasks", int, "a whole number of sub-tasks"),
    ("hotfix", "max_files"): ("hotfix_max_files", int, "a whole number of files"),
    ("hotfix", "max_lines"): ("hotfix_max_lines", int, "a whole number of changed lines"),
    ("hotfix", "max_bytes"): ("hotfix_max_bytes", int, "a number of changed bytes (every file read as text, binaries too)"),
    ("large_files", "max_bytes"): ("large_file_max_bytes", int, "a size in bytes"),
    ("large_files", "patterns"): ("large_file_patterns", list, "a list of glob patterns"),
    ("commit", "types"): ("commit_types", list, "a list of commit types"),
    ("rules", "disable"): ("disabled_rules", list, "a list of rule ids"),
    ("limits", "max_merge_paths"): ("max_merge_paths", int, "paths, summed over a range's recomputed merges and squashes, "
                                    "where git's own merge differs from the recorded one; beyond it the range is not judged (exit 2)"),
    ("cluster", "executor"): ("cluster_executor", str, "slurm or local"),
    ("cluster", "partition"): ("cluster_partition", str, "a Slurm partition, or null for the cluster's default"),
    ("cluster", "time"): ("cluster_time", int, "a job's time limit in minutes"),
    ("cluster", "gpus"): ("cluster_gpus", int, "GPUs per job"),
    ("cluster", "cpus"): ("cluster_cpus", int, "CPUs per job"),
    ("cluster", "mem"): ("cluster_mem", str, "memory per job (16G), or null for the partition's default"),
    ("cluster", "array_parallelism"): ("cluster_array_parallelism", int, "array elements running at once"),
    ("cluster", "max_requeues"): ("cluster_max_requeues", int, "requeues after preemption or time limit"),
    ("cluster", "signal_delay"): ("cluster_signal_delay", int, "seconds from the warning signal to the job's end"),
    ("cluster", "sbatch"): ("cluster_sbatch", list, "a list of KEY=VALUE sbatch options"),
}
_DEFAULTS = Settings()
_SECTIONS = {path[: i + 1] for path in _SCHEMA for i in range(len(path) - 1)}


def _fail(source: str, node: Any, message: str) -> UsageError:
    line = f":{node.start_mark.line + 1}" if node is not None else ""
    return UsageError(f"{source}{line}: {message}. Fix the file (every key is optional; see `dlgit explain config`).")


def parse(text: str, source: str = CONFIG_FILE) -> Settings:
    """Validate the YAML text and build Settings; errors name the file, line and expectation."""
    import yaml  # off the import path of repos without a .dlgit.yaml

    from dlgit import safeyaml

    try:
        root = safeyaml.compose(text)
    except safeyaml.YamlLimitError as exc:
        line = f":{exc.line}" if exc.line else ""
        refused = str(exc).removesuffix(f" at line {exc.line}")
        raise UsageError(f"{source}{line}: is refused ({refused}); a .dlgit.yaml holds a few settings "
                         "(see `dlgit explain config`).") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise UsageError(f"{source}{line}: not valid YAML ({safeyaml.reason(exc)}). "
                         "Fix the syntax or delete the file to use the defaults.") from None
    values: dict[str, Any] = {}
    if root is not None and not (isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null"):
        _walk(root, (), source, values)
    settings = Settings(**values)
    if settings.main == settings.dev:
        raise UsageError(f"{source}: 'branches.main' and 'branches.dev' are both '{settings.main}'; they must differ.")
    return settings


def _walk(node: Any, path: tuple[str, ...], source: str, values: dict[str, Any]) -> None:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise _fail(source, node, f"'{'.'.join(path) or 'the file'}' must be a mapping of keys")
    for key_node, value_node in node.value:
        key_path = (*path, str(key_node.value))
        if key_path in _SECTIONS:
            _walk(value_node, key_path, source, values)
        elif key_path in _SCHEMA:
            name, kind, description = _SCHEMA[key_path]
            nullable = getattr(_DEFAULTS, name) is None  # keys whose default is null accept null
            values[name] = _value(value_node, kind, description, ".".join(key_path), source, nullable)
            for value in values[name] if kind is list else [values[name]] if values[name] is not None else []:
                _check_name(name, value, ".".join(key_path), source, value_node)
            if name == "disabled_rules":
                _check_rule_ids(values[name], value_node, source)
            if name == "cluster_executor" and values[name] not in ("slurm", "local"):
                raise _fail(source, value_node, f"'cluster.executor' must be slurm or local, not {values[name]!r}")
        else:
            known = sorted(".".join(p) for p in _SCHEMA if p[: len(path)] == path)
            raise _fail(source, key_node, f"unknown key '{'.'.join(key_path)}' (known here: {', '.join(known)})")


def _check_rule_ids(ids: tuple[str, ...], node: Any, source: str) -> None:
    """A typo must not leave a rule silently on."""
    unknown = [rule_id for rule_id in ids if rule_id not in RULE_IDS]
    if unknown:
        raise _fail(source, node, f"'rules.disable' names unknown rule(s) {', '.join(unknown)} (known: {', '.join(RULE_IDS)})")


def _value(node: Any, kind: type, description: str, key: str, source: str, nullable: bool = False) -> Any:
    import yaml

    loader = yaml.SafeLoader("")
    try:
        value = loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        raise _fail(source, node, f"'{key}' must be {description} ({getattr(exc, 'problem', None) or exc})") from None
    finally:
        loader.dispose()
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise _fail(source, node, f"'{key}' must be {description} (strings)")
        return tuple(value)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise _fail(source, node, f"'{key}' must be {description}, not {value!r}")
    if value is None and nullable:
        return None
    if kind is str and (not isinstance(value, str) or not value.strip()):
        raise _fail(source, node, f"'{key}' must be {description}, not {value!r}")
    return value


def _check_name(field: str, value: object, key: str, source: str, node: Any) -> None:
    """Branch names, prefixes, folders and commit types become refs, paths and patterns."""
    if field not in _NAME_FORMS:
        return
    pattern, allowed = _NAME_FORMS[field]
    text = str(value)
    ref_like = field in ("main", "dev") and (re.fullmatch(r"[A-Z_]*HEAD", text) or text.startswith("refs/"))
    if not re.fullmatch(pattern, text) or ref_like or ".." in text or "//" in text or "/." in text or ".lock" in text:
        raise _fail(source, node, f"'{key}' must be a name of {allowed} (no '..', '.lock', 'HEAD' or 'refs/'), not {text!r}")


def load(toplevel: Path | None, cache: Path | None = None) -> Settings:
    """Settings from `<toplevel>/.dlgit.yaml` in the work tree, or the defaults. With `cache` (a file
    in the git dir, see settings_cache), the parsed settings are kept there for the next hook, so
    that it skips PyYAML while the file's content stays the same."""
    if toplevel is None:
        return Settings()
    path = toplevel / CONFIG_FILE
    raw = _work_tree_bytes(path)
    return Settings() if raw is None else _settings(raw, str(path), cache)


def load_committed(blob: str | None, read_blob: Callable[[str], bytes | None], cache: Path | None = None) -> Settings:
    """Settings from the .dlgit.yaml committed in HEAD (`blob`, its object id; None: none there, the
    defaults): what the hooks judge by, so that a .dlgit.yaml staged or edited with a commit takes
    effect only once committed. With `cache`, the settings parsed for that blob id are kept for the
    next hook, which then reads no file and starts no process for them (`read_blob(blob)` reads
    the blob on a miss). A blob id names one content: git refuses colliding objects (SHA-1DC)."""
    if blob is None:
        return Settings()
    key = _blob_key(blob)
    settings = _cached(cache, key) if cache else None
    if settings is None:
        raw = read_blob(blob)
        source = f"HEAD:{CONFIG_FILE}"
        settings = Settings() if raw is None else _parse_bounded(_decode(raw, source), source)
        if cache:
            _store(cache, key, settings)
    return settings


def _work_tree_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror}).") from None


def _settings(raw: bytes, source: str, cache: Path | None) -> Settings:
    key = _cache_key(raw)
    settings = _cached(cache, key) if cache else None
    if settings is None:
        settings = _parse_bounded(_decode(raw, source), source)
        if cache:
            _store(cache, key, settings)
    return settings


# --- the parsed-settings cache of the hooks ------------------------------------------------------


def settings_cache(git_dir: Path) -> Path:
    return git_dir / "dlgit" / "settings-cache"


CacheKey = tuple[str, tuple[str, ...], object]


def _cache_key(raw: bytes) -> CacheKey:
    from dlgit import __version__

    return __version__, Settings._fields, raw  # the whole content, compared byte for byte: no hash to collide


def _blob_key(blob: str) -> CacheKey:
    from dlgit import __version__

    return __version__, Settings._fields, ("blob", blob)  # a tuple: never equal to a file's bytes


def _cached(cache: Path, wanted: CacheKey) -> Settings | None:
    """The settings stored for exactly this key by this dlgit, else None (absent, stale, corrupt)."""
    import marshal

    try:
        key, values = marshal.loads(cache.read_bytes())
        return Settings(*values) if key == wanted and len(values) == len(Settings._fields) else None
    except (OSError, ValueError, EOFError, TypeError):
        return None


def _store(cache: Path, key: CacheKey, settings: Settings) -> None:
    """Best effort (a read-only git dir just means no cache); written whole, then renamed into place."""
    import contextlib
    import marshal
    import os

    temporary = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    try:
        cache.parent.mkdir(exist_ok=True)
        temporary.write_bytes(marshal.dumps((key, tuple(settings))))
        os.replace(temporary, cache)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def from_bytes(raw: bytes | None, source: str) -> Settings:
    """Settings from a file's bytes as stored in a commit (None: the file is absent)."""
    return Settings() if raw is None else _parse_bounded(_decode(raw, source), source)


def problem(raw: bytes, source: str) -> str | None:
    """What is wrong with a .dlgit.yaml's bytes (the parser's reason, as a hook would print it), or None."""
    try:
        from_bytes(raw, source)
    except UsageError as exc:
        return str(exc)
    return None


def _parse_bounded(text: str, source: str) -> Settings:
    """`parse`, where a document too deep or too large to read is one paragraph too (never a traceback)."""
    from dlgit.safeyaml import YamlLimitError

    try:
        return parse(text, source)
    except RecursionError:
        raise UsageError(f"{source}: nests lists or maps too deeply to be read; a .dlgit.yaml has two or three levels.") from None
    except YamlLimitError as exc:
        raise UsageError(f"{source}: {exc}. Fix the file (see `dlgit explain config`).") from None


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{source}: is not UTF-8 text; save it as UTF-8.") from None


def commented_defaults() -> str:
    """A .dlgit.yaml holding every setting at its default, commented out (what `dlgit init` writes)."""
    lines = ["# dlgit's settings: every key is optional and shows its default; uncomment what you change.",
             "# `dlgit explain config` describes them, `dlgit explain RULE` the rules they shape."]
    written: set[tuple[str, ...]] = set()
    for key_path, (name, _, description) in _SCHEMA.items():
        for depth in range(len(key_path) - 1):
            if key_path[:depth + 1] not in written:
                written.add(key_path[:depth + 1])
                lines.append(f"# {'  ' * depth}{key_path[depth]}:")
        value = getattr(_DEFAULTS, name)
        shown = json.dumps(list(value)) if isinstance(value, tuple) else "null" if value is None else value  # JSON is YAML
        lines.append(f"# {'  ' * (len(key_path) - 1)}{key_path[-1]}: {shown}   # {description}")
    return "\n".join(lines) + "\n"


def describe_defaults() -> str:
    defaults = Settings()
    lines = []
    for key_path, (name, _, description) in _SCHEMA.items():
        value = getattr(defaults, name)
        shown = "[" + ", ".join(value) + "]" if isinstance(value, tuple) else "null" if value is None else value
        lines.append(f"  {'.'.join(key_path)}: {shown}  ({description})")
    return "\n".join(lines)

