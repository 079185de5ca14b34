"""`dlgit run`: run a task's script from its folder, tee its output into a log, record the run.

A run belongs to the checked-out branch: `tasks/<branch>/` (on main, the template folder). Its
script runs with that folder as working directory and DLGIT_TASK, DLGIT_TASK_DIR and DLGIT_CONFIG
set; stdout and stderr reach the terminal byte for byte as they come, and one log,
`logs/<time>.log`, keeps what the screen showed: each line once, progress bars (nested ones too)
in their last state, without colour codes (`dlgit.tasks.runlog`). `runs/<time>.yaml` records
what ran, from which commit, where, and how it ended; it is written when the run starts and
rewritten when it ends, so even a crash of dlgit leaves one. One run per machine at a time
(`dlgit.tasks.lock`). Ctrl-C reaches the script (the terminal sends it to the whole process
group); dlgit outlives it, records the run as interrupted and exits 130.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

from dlgit import config
from dlgit.config import Settings
from dlgit.errors import UsageError
from dlgit.git import Git
from dlgit.model import task_folder, utc_stamp
from dlgit.shell import escape, quote
from dlgit.tasks import envfreeze, jobs, lock
from dlgit.tasks.runlog import ProgressLog, write_all

CHUNK = 1 << 16
COALESCE = 0.001  # seconds the tee waits after a short read: output arrives at most this much later
SHOWN_PATHS = 20  # dirty paths listed before "... and N more"
FREEZE_WAIT = 60.0  # seconds finish-task waits for a pip freeze still being computed
FACT_TIMEOUT = 5.0  # seconds a fact (GPU list, interpreter version) may take once the run is over
QUIET_AFTER_EXIT = 0.2  # seconds of silence after the script exits before its pipes are let go
FORWARDED = (signal.SIGTERM, signal.SIGHUP)  # sent to dlgit alone, so passed on to the script
CAUGHT = (signal.SIGINT, *FORWARDED)  # SIGINT: the terminal sends it to the script too
INTERRUPTING = {sig.name for sig in CAUGHT}
PSTATS = "import pstats, sys; pstats.Stats(sys.argv[1]).sort_stats('cumulative').print_stats(20)"
SECRET_NAME = re.compile(r"token|key|secret|passw(or)?d|auth|credential", re.IGNORECASE)  # an argument whose value dlgit masks
MASK = "***"
RESTORE_NAME = "config.yaml.dlgit-before-debug"  # the folder's config.yaml while a --debug run has DEBUG: true in it
GPU_QUERY = ("nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader")


# --- where the run happens -----------------------------------------------------------------------


class Task(NamedTuple):
    toplevel: Path
    repository: Path  # the common git dir: what the machine-wide lock names
    branch: str
    commit: str
    folder: str  # tasks/<branch>, relative to the top of the work tree
    path: Path  # the folder, absolute

    def relative(self, path: Path) -> str:
        """A path inside the folder as the record names it (relative to the folder)."""
        return path.relative_to(self.path).as_posix()


def locate(cwd: Path | str | None = None) -> tuple[Task, Settings]:
    """The task of the checked-out branch: its folder must exist in the work tree."""
    info = Git.open(cwd).info
    if info.toplevel is None:
        raise UsageError(f"{info.git_dir} is a bare repository: a task runs in a work tree; run dlgit from a checkout.")
    branch = info.branch or jobs.snapshot_branch(info.toplevel, info.head)  # a submitted job's snapshot is detached
    if branch is None:
        raise UsageError(f"HEAD is detached{f' at {info.head[:12]}' if info.head else ''}: a run belongs to a branch. "
                         "Switch to a task branch (`git switch task-...`) or create one with `dlgit start-task [DESC]`.")
    if info.head is None:
        raise UsageError(f"branch {quote(branch)} has no commit yet: a run must map to a commit. Commit first, then run.")
    settings = config.load(info.toplevel)
    folder = settings.template_dir if branch == settings.main else task_folder(branch, settings)
    path = info.toplevel / folder
    if not path.is_dir():
        if branch == settings.main:
            raise UsageError(f"the template folder {quote(folder)}/ does not exist on {quote(branch)}: "
                             "create it (`dlgit init` sets up tasks/main/) and commit it.")
        raise UsageError(f"branch {quote(branch)} has no task folder {quote(folder)}/: `dlgit run` runs the folder of the "
                         f"checked-out task branch (or {quote(settings.template_dir)}/ on {settings.main}). Create a task branch "
                         "with `dlgit start-task [DESC]`, or switch to one (`git switch task-...`).")
    return Task(info.toplevel, info.common_dir, branch, info.head, folder, path.resolve()), settings


def resolve_script(task: Task, script: str, cwd: Path | str | None = None) -> Path:
    """SCRIPT relative to the task folder (or to the current directory), which must hold it."""
    tried = []
    for base in (task.path, Path(cwd or os.getcwd())):
        candidate = (base / script).resolve()
        if candidate.is_relative_to(task.path) and candidate.is_file():
            return candidate
        tried.append(str(candidate))
    raise UsageError(f"no script {quote(script)} in the task folder {quote(task.folder)}/ (looked for "
                     f"{' and '.join(map(quote, dict.fromkeys(tried)))}): a run's script must be a file inside its task folder.")


def interpreter(settings: Settings) -> list[str]:
    """`tasks.python` as a command (it may hold arguments), or the Python dlgit runs under."""
    if settings.task_python is None:
        return [sys.executable]
    command = shlex.split(settings.task_python)
    if not command or shutil.which(command[0]) is None:
        raise UsageError(f"the task interpreter {quote(settings.task_python)} (tasks.python in .dlgit.yaml) is not found: "
                         "set it to an existing Python, or remove it to use the one dlgit runs under.")
    return command


def dirty_state(task: Task) -> tuple[bool, list[str]]:
    """Whether the work tree differs from HEAD at all, and the changed paths outside the task folder."""
    changed = Git(task.toplevel).changed_paths(untracked=True)
    prefix = task.folder + "/"
    return bool(changed), [path for path in changed if not path.startswith(prefix)]


def _refuse_dirty(task: Task, outside: list[str]) -> UsageError:
    shown = [f"  - {escape(path)}" for path in outside[:SHOWN_PATHS]]
    if len(outside) > SHOWN_PATHS:
        shown.append(f"  ... and {len(outside) - SHOWN_PATHS} more")
    return UsageError(f"uncommitted changes outside the task folder {quote(task.folder)}/ — a run's results must map to a "
                      "commit, and these would not be in it:\n" + "\n".join(shown) + "\nCommit them (on the branch they belong "
                      "to) or stash them (`git stash -u`), or run with --allow-dirty (the record then says dirty: true).")


def masked(args: Sequence[str]) -> list[str]:
    """The arguments as dlgit writes them down: the value of an option (or KEY=VALUE) whose name
    looks secret (token, key, secret, password, auth) replaced by MASK."""
    shown: list[str] = []
    hide_next = False
    for arg in args:
        name, equals, _ = arg.partition("=")
        if hide_next and not arg.startswith("-"):
            shown.append(MASK)
        elif equals and SECRET_NAME.search(name.lstrip("-")):
            shown.append(f"{name}={MASK}")
        else:
            shown.append(arg)
        hide_next = arg.startswith("-") and not equals and bool(SECRET_NAME.search(arg.lstrip("-")))
    return shown


def debug_config(text: str) -> str:
    """The config's text with DEBUG set to true and every other byte kept (a DEBUG line is added
    when there is none). UsageError when it cannot be set so."""
    from dlgit.tasks.yamledit import EditError, set_key

    try:
        return set_key(text, "DEBUG", True)
    except EditError as exc:
        raise UsageError(f"cannot set DEBUG in config.yaml: {exc}.") from None


# --- --debug: the folder's own config.yaml says DEBUG: true while the run lasts -----------------


def _replace_text(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.dlgit-tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


@contextlib.contextmanager
def _debug_config_in_place(folder: Path, debug_text: str) -> Iterator[None]:
    """config.yaml with DEBUG: true for the run (for a script that reads its own file rather than
    $DLGIT_CONFIG), restored when it ends. Crash-safe: the original is saved first, beside it
    (RESTORE_NAME); whatever runs next in the folder (a run, finish-task) puts it back."""
    config_path, saved = folder / "config.yaml", folder / RESTORE_NAME
    _replace_text(saved, config_path.read_bytes())
    _replace_text(config_path, debug_text.encode("utf-8"))
    try:
        yield
    finally:
        if restored := restore_debug_config(folder):
            print(f"dlgit: {restored}", file=sys.stderr)


def restore_debug_config(folder: Path) -> str | None:
    """Put back the config.yaml a --debug run set aside (after a crash of dlgit, too); what was
    done, when it was something to say. A config.yaml changed during the run is left alone."""
    config_path, saved = folder / "config.yaml", folder / RESTORE_NAME
    if not saved.is_file():
        return None
    if config_path.is_file() and read_debug(config_path) is not True:
        return (f"config.yaml in {folder} changed during a --debug run; it is kept as it is, and the one from before the run "
                f"is in {saved.name}")
    os.replace(saved, config_path)
    return None


def read_debug(path: Path) -> object:
    """DEBUG of a config file (None when it cannot be read)."""
    import yaml

    from dlgit import safeyaml

    try:
        data = safeyaml.load(safeyaml.read_file(path))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return data.get("DEBUG") if isinstance(data, dict) else None


# --- the log ---------------------------------------------------------------------------------------


def _tee(proc: subprocess.Popen[bytes], log: ProgressLog, signals: _Signals) -> bool:
    """Copy the script's stdout and stderr to ours and into the log until both close (or the
    script has exited and something it left behind still holds them, silent); the signals are
    looked at between reads. Whether the terminal was left in the middle of a line."""
    assert proc.stdout and proc.stderr
    mid_line = False
    selector = selectors.DefaultSelector()
    targets = {proc.stdout.fileno(): 1, proc.stderr.fileno(): 2}
    for fd in targets:
        selector.register(fd, selectors.EVENT_READ)
    echo = {1: True, 2: True}
    while selector.get_map():
        events = selector.select(QUIET_AFTER_EXIT)
        signals.poll()
        if not events and proc.poll() is not None:
            break
        for key, _ in events:
            chunk = os.read(key.fd, CHUNK)
            stream = targets[key.fd]
            if not chunk:
                selector.unregister(key.fd)
                continue
            if echo[stream]:
                try:
                    write_all(stream, chunk)
                    mid_line = not chunk.endswith(b"\n")
                except OSError:  # the terminal or pipe went away: the log goes on
                    echo[stream] = False
            log.feed(stream, chunk)
        if events and len(chunk) < CHUNK:
            time.sleep(COALESCE)  # let a fast writer fill the pipe: one wake-up per batch, not per write
    selector.close()
    return mid_line


# --- signals -------------------------------------------------------------------------------------


class _Signals:
    """While the script runs, dlgit survives SIGINT and passes SIGTERM and SIGHUP on to it. A
    SIGINT the terminal sent (Ctrl-C: to the whole foreground group, the script included) is not
    passed on again; one a process sent (`kill -INT <dlgit's pid>`) is: once the script runs,
    SIGINT is blocked and taken with its sender's details (sigtimedwait) between reads. Signals
    that were ignored stay ignored (for the script too: it inherits that), as under `nohup`."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.child: subprocess.Popen[bytes] | None = None
        self.previous: dict[int, Any] = {}
        self.blocked = False

    def __enter__(self) -> _Signals:
        for sig in CAUGHT:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        self._forward(signum)

    def _forward(self, signum: int) -> None:
        if self.child is not None and signum in FORWARDED and self.child.poll() is None:
            self.child.send_signal(signum)

    def started(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child
        for signum in self.received:  # arrived while it was being started
            self._forward(signum)

    def watch_interrupts(self) -> None:
        """From now on SIGINT waits for `poll` (call it once the helpers are started: they would
        inherit the mask)."""
        if signal.SIGINT in self.previous:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            self.blocked = True

    def poll(self) -> None:
        if not self.blocked:
            return
        while (info := signal.sigtimedwait({signal.SIGINT}, 0)) is not None:
            self.received.append(signal.SIGINT)
            by_a_process = info.si_code <= 0  # SI_USER, SI_QUEUE, SI_TKILL; the terminal's comes as SI_KERNEL
            if by_a_process and self.child is not None and self.child.poll() is None:
                self.child.send_signal(signal.SIGINT)

    def __exit__(self, *exc: object) -> None:
        if self.blocked:
            self.poll()  # taken here: none may reach the restored handler
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


# --- facts gathered beside the run -----------------------------------------------------------------


def _own(python: list[str]) -> bool:
    """Whether the script runs under dlgit's own interpreter (whose version dlgit knows)."""
    return python == [sys.executable]


def _background(command: Sequence[str], stdout: Any = subprocess.PIPE) -> subprocess.Popen[bytes] | None:
    """A helper process in its own session (Ctrl-C is for the script) at the lowest priority (set
    from here: a `preexec_fn` would cost a full fork of dlgit)."""
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return None
    with contextlib.suppress(OSError):  # it may have ended already
        os.setpriority(os.PRIO_PROCESS, proc.pid, 19)
    return proc


def _answer(proc: subprocess.Popen[bytes] | None) -> str | None:
    if proc is None:
        return None
    try:
        out, _ = proc.communicate(timeout=FACT_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None
    return out.decode("utf-8", "replace").strip() if proc.returncode == 0 else None


def freeze_cache(repository: Path) -> Path:
    """Where the pip freezes of the repository's environments are kept (its common git dir)."""
    return repository / "dlgit" / "freeze"


class _Facts:
    """Asked beside the run: the environment's key (and its pip freeze computed into the cache
    when it has none, `dlgit.tasks.envfreeze`), the interpreter's version when it is not dlgit's
    own, and the GPUs (nvidia-smi, when there is one)."""

    def __init__(self, python: list[str], freeze: Path, cache: Path, taken: Path | None = None) -> None:
        self.freeze, self.cache = freeze, cache
        self.key: str | None = None
        self.helper = None  # a task interpreter of its own: it says its version and key
        if taken is not None:  # the environment's freeze, taken once for a whole sweep
            shutil.copyfile(taken, freeze)
            self.key = taken.stem
        elif _own(python):
            self.key = envfreeze.key()
            envfreeze.start(str(cache), self.key)
        else:
            self.helper = _key_helper(python, cache)
        self.gpus = _background(GPU_QUERY) if shutil.which(GPU_QUERY[0]) else None

    def gathered(self) -> dict[str, Any]:
        """What is known once the run is over; the freeze is copied beside the record when it is
        computed already (else the next run or finish-task copies it: nothing is waited for, and
        nothing lands in the task folder once dlgit has exited)."""
        facts: dict[str, Any] = {}
        if self.helper is not None:
            facts["python_version"], self.key = _helper_answer(self.helper)
        facts["pip_freeze_key"] = self.key
        if self.key is None:
            facts["pip_freeze"] = None
        elif not self.freeze.exists():
            with contextlib.suppress(OSError):  # not computed yet
                shutil.copyfile(envfreeze.cached(str(self.cache), self.key), self.freeze)
        if self.gpus is not None:
            answer = _answer(self.gpus)
            facts["gpus"] = [dict(zip(("name", "memory_total", "driver_version"), (f.strip() for f in line.split(",")), strict=False))
                             for line in answer.splitlines()] if answer else None
        return facts


def missing_freezes(runs: Path) -> list[tuple[Path, str | None]]:
    """The records in a runs/ folder whose pip freeze is not beside them, with their environment key."""
    import yaml

    from dlgit import safeyaml

    try:
        names = set(os.listdir(runs))
    except OSError:
        return []
    missing = []
    for name in sorted(names):
        stem = name.removesuffix(".yaml")
        if stem == name or name.startswith(".") or stem.endswith(".config") or f"{stem}.pip-freeze.txt" in names:
            continue
        try:
            record = safeyaml.load(safeyaml.read_file(runs / name))
        except (OSError, ValueError, yaml.YAMLError):
            continue
        if isinstance(record, dict) and record.get("pip_freeze"):
            key = record.get("pip_freeze_key")
            missing.append((runs / f"{stem}.pip-freeze.txt", key if isinstance(key, str) else None))
    return missing


def fill_freezes(runs: Path, cache: Path, python: list[str] | None = None, seconds: float = FREEZE_WAIT) -> list[str]:
    """Copy from the cache the pip freeze of each run in `runs` that has none beside its record.
    With `python` (finish-task), a missing freeze of that interpreter's environment is computed
    now (or waited for up to `seconds`, when a run's is being computed). The runs still without one."""
    missing = [(path, key) for path, key in missing_freezes(runs)
               if key is None or not _copied(envfreeze.cached(str(cache), key), path)]
    if missing and python is not None and any(key is not None for _, key in missing):
        now, final = environment_freeze(python, cache, seconds)
        missing = [(path, key) for path, key in missing if not (final and key == now and _copied(str(final), path))]
    return [path.name for path, _ in missing]


def environment_freeze(python: list[str], cache: Path, seconds: float = FREEZE_WAIT) -> tuple[str | None, Path | None]:
    """A task interpreter's environment key and its pip freeze in the cache: waited for up to
    `seconds` when one is being computed, else computed now (None when pip cannot say)."""
    key = envfreeze.key() if _own(python) else _helper_answer(_key_helper(python, None))[1]
    if key is None:
        return None, None
    final = envfreeze.cached(str(cache), key)
    deadline = time.monotonic() + seconds
    while envfreeze.going(final) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not os.path.exists(final):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run([*python, envfreeze.__file__, "--freeze", final], stdin=subprocess.DEVNULL, capture_output=True,
                           check=False, timeout=seconds)
    return key, Path(final) if os.path.exists(final) else None


def _copied(source: str, target: Path) -> bool:
    try:
        shutil.copyfile(source, target)
    except OSError:
        return False
    return True


def _key_helper(python: list[str], cache: Path | None) -> subprocess.Popen[bytes] | None:
    """A task interpreter of its own says its version and environment key (and, given the cache,
    starts its freeze there when the cache has none)."""
    return _background([*python, envfreeze.__file__, str(cache) if cache else "--key"])


def _helper_answer(proc: subprocess.Popen[bytes] | None) -> tuple[str | None, str | None]:
    version, _, key = (_answer(proc) or "").partition("\n")
    return version or None, key.strip() or None


# --- the run -------------------------------------------------------------------------------------


class RunFiles(NamedTuple):
    stem: str  # <UTC time>, or <UTC time>-<n> when that second is taken
    log: Path
    record: Path
    freeze: Path
    config: Path  # the effective config of a --debug run
    profile: Path


def _run_files(task: Task, stamp: str) -> tuple[RunFiles, int]:
    """The run's file names, and its log opened (created exclusively: two runs never share one)."""
    (task.path / "logs").mkdir(exist_ok=True)
    (task.path / "runs").mkdir(exist_ok=True)
    for n in range(1000):
        stem = stamp if n == 0 else f"{stamp}-{n}"
        runs = task.path / "runs"
        files = RunFiles(stem, task.path / "logs" / f"{stem}.log", runs / f"{stem}.yaml", runs / f"{stem}.pip-freeze.txt",
                         runs / f"{stem}.config.yaml", runs / f"{stem}.prof")
        if files.record.exists():
            continue
        try:
            return files, os.open(files.log, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            continue
    raise UsageError(f"too many runs started in the second {stamp} in {quote(task.folder)}/.")


def _write_record(path: Path, record: dict[str, Any]) -> None:
    """Replace the record whole: a reader never sees half of one."""
    import yaml

    temporary = path.with_name(f".{path.name}.tmp")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's, when there: 4x faster, the same text
    temporary.write_text(yaml.dump(record, Dumper=dumper, sort_keys=False, allow_unicode=True), encoding="utf-8")
    os.replace(temporary, path)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return str(os.getuid())


class Plan(NamedTuple):
    """What a run will do, settled before it starts."""

    task: Task
    script: str  # relative to the task folder
    args: tuple[str, ...]
    python: list[str]
    dirty: bool  # the work tree differs from HEAD at all
    outside: list[str]  # changed paths outside the task folder (allowed with --allow-dirty)
    debug_config: str | None  # the effective config text of a --debug run
    profile: bool
    freeze: Path | None = None  # a pip freeze taken already (a sweep's), copied beside the record

    def command(self, files: RunFiles) -> list[str]:
        profiling = ["-m", "cProfile", "-o", self.task.relative(files.profile)] if self.profile else []
        return [*self.python, *profiling, self.script, *self.args]


def _start_record(plan: Plan, files: RunFiles, started: datetime) -> dict[str, Any]:
    task, uname = plan.task, os.uname()
    return {
        "state": "running",
        "branch": task.branch,
        "task_dir": task.folder,
        "script": plan.script,
        "args": masked(plan.args),
        "command": masked(plan.command(files)),
        "commit": task.commit,
        "dirty": plan.dirty,
        "dirty_outside_task": plan.outside,
        "debug": plan.debug_config is not None,
        "profile": task.relative(files.profile) if plan.profile else None,
        "config": task.relative(files.config) if plan.debug_config is not None else "config.yaml",
        "start": _iso(started),
        "end": None,
        "duration_s": None,
        "exit_code": None,
        "signal": None,
        "interrupted": False,
        "host": socket.gethostname(),
        "user": _user(),
        "pid": os.getpid(),
        "python_executable": shutil.which(plan.python[0]) or plan.python[0],
        "python_version": sys.version.split()[0] if _own(plan.python) else None,  # else asked beside the run
        "platform": f"{uname.sysname} {uname.release} {uname.machine}",
        "gpus": None,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "log": task.relative(files.log),
        "pip_freeze": task.relative(files.freeze),
        "pip_freeze_key": None,  # the environment's (dlgit.tasks.envfreeze): its freeze is copied from the repository's cache
        **jobs.job_fields(),  # executor, job id, node, partition, GPUs, requeues: inside a submitted job
    }


def _environment(plan: Plan, files: RunFiles) -> dict[str, str]:
    task = plan.task
    config_path = files.config if plan.debug_config is not None else task.path / "config.yaml"
    env = {**os.environ, "DLGIT_TASK": task.branch, "DLGIT_TASK_DIR": str(task.path), "DLGIT_CONFIG": str(config_path)}
    env.setdefault("PYTHONUNBUFFERED", "1")  # print() reaches the terminal as it happens, as it would on a tty
    if plan.debug_config is not None:
        env["DLGIT_DEBUG"] = "1"
    else:
        env.pop("DLGIT_DEBUG", None)
    return env


def prepare(script: str | None, args: Sequence[str], debug: bool, profile: bool, allow_dirty: bool,
            cwd: Path | str | None = None) -> Plan:
    """Every check a run makes before it starts (UsageError on the first that fails)."""
    task, settings = locate(cwd)
    script_path = resolve_script(task, script or settings.task_entry, cwd)
    python = interpreter(settings)
    dirty, outside = dirty_state(task)
    if outside and not allow_dirty:
        raise _refuse_dirty(task, outside)
    effective = None
    if debug:
        config_path = task.path / "config.yaml"
        if not config_path.is_file():
            raise UsageError(f"--debug needs {quote(task.folder + '/config.yaml')} (with a DEBUG key); there is none.")
        from dlgit import safeyaml

        try:
            effective = debug_config(safeyaml.read_file(config_path).decode("utf-8"))
        except (safeyaml.YamlLimitError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot set DEBUG in {quote(task.folder + '/config.yaml')}: {exc}.") from None
    return Plan(task, task.relative(script_path), tuple(args), python, dirty, outside, effective, profile)


def run(script: str | None, args: Sequence[str], debug: bool = False, profile: bool = False, allow_dirty: bool = False,
        cwd: Path | str | None = None) -> int:
    """`dlgit run`: the script's exit code (128+N when a signal N ended it, 130 after Ctrl-C)."""
    return run_prepared(prepare(script, args, debug, profile, allow_dirty, cwd))


def run_prepared(plan: Plan) -> int:
    """The run of a settled plan, under the machine's lock."""
    started = datetime.now(timezone.utc)
    held = take_lock(plan.task, started)
    try:
        code, files = run_plan(plan, started)
    finally:
        held.release()
    if plan.profile:
        _print_profile(plan.python, files.profile)
    return code


def take_lock(task: Task, started: datetime) -> lock.RunLock:
    """The machine's one run lock, for a run of `task` (UsageError naming the run that holds it)."""
    held, stale = lock.acquire(lock.Holder(os.getpid(), socket.gethostname(), task.branch, str(task.repository),
                                           str(task.toplevel), _iso(started)))
    if stale:
        print(f"dlgit: warning: taking over a stale run lock left by {stale.describe()}; that run ended without "
              "releasing it.", file=sys.stderr)
    return held


def run_plan(plan: Plan, started: datetime, extra: dict[str, Any] | None = None) -> tuple[int, RunFiles]:
    """One run of a settled plan in its folder, `extra` added to its record; the caller holds the lock."""
    if restored := restore_debug_config(plan.task.path):  # a --debug run that was killed left DEBUG in config.yaml
        print(f"dlgit: {restored}", file=sys.stderr)
    files, log_fd = _run_files(plan.task, utc_stamp(started))
    record = {**_start_record(plan, files, started), **(extra or {})}
    if plan.debug_config is None:
        return _execute(plan, files, log_fd, record), files
    files.config.write_text(plan.debug_config, encoding="utf-8")
    with _debug_config_in_place(plan.task.path, plan.debug_config):
        return _execute(plan, files, log_fd, record), files


def _execute(plan: Plan, files: RunFiles, log_fd: int, record: dict[str, Any]) -> int:
    log = ProgressLog(log_fd)
    command = plan.command(files)
    begin = time.monotonic()
    with _Signals() as signals:
        try:
            proc = subprocess.Popen(command, cwd=plan.task.path, env=_environment(plan, files),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            log.close()
            files.log.unlink(missing_ok=True)
            raise UsageError(f"cannot start {quote(command[0])}: {exc.strerror}.") from None
        signals.started(proc)
        facts = _Facts(plan.python, files.freeze, freeze_cache(plan.task.repository), plan.freeze)
        signals.watch_interrupts()
        _write_record(files.record, record)
        mid_line = False
        try:
            mid_line = _tee(proc, log, signals)
        except BaseException:
            assert proc.stdout and proc.stderr
            proc.stdout.close()  # nobody reads them any more: the script must not block on a full pipe
            proc.stderr.close()
            raise
        finally:
            returncode = proc.wait()
            log.close()
            record.update(_ending(returncode, signals.received, time.monotonic() - begin), **facts.gathered())
            _write_record(files.record, record)
            fill_freezes(files.record.parent, facts.cache)  # earlier runs' freezes computed since
    _summary(record, files, mid_line)
    return 128 + signals.received[0] if signals.received else record["exit_code"]


def _ending(returncode: int, received: list[int], seconds: float) -> dict[str, Any]:
    killed = _signal_name(-returncode) if returncode < 0 else None
    interrupted = bool(received) or killed in INTERRUPTING
    exit_code = 128 - returncode if returncode < 0 else returncode
    return {
        "state": "interrupted" if interrupted else "finished" if exit_code == 0 else "failed",
        "end": _iso(datetime.now(timezone.utc)),
        "duration_s": round(seconds, 3),
        "exit_code": exit_code,
        "signal": killed,  # the signal that ended the script
        "interrupted": interrupted,
        "signals_received": [_signal_name(number) for number in dict.fromkeys(received)],  # by dlgit while the script ran
    }


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _summary(record: dict[str, Any], files: RunFiles, mid_line: bool = False) -> None:
    def shown(path: Path) -> str:
        return quote(os.path.relpath(path))

    how = f"was interrupted ({record['signal'] or 'signal'})" if record["interrupted"] else f"exited {record['exit_code']}"
    start = "\n" if mid_line else ""  # not glued to a half-drawn bar
    print(f"{start}dlgit: run {how} after {record['duration_s']:.1f} s; log {shown(files.log)}, record {shown(files.record)}",
          file=sys.stderr)


def _print_profile(python: list[str], profile: Path) -> None:
    """The 20 functions with the most cumulative time, read by the run's own interpreter (the
    profile's format belongs to its Python version)."""
    if not profile.is_file():
        print("dlgit: no profile was written (the script ended before cProfile could save it).", file=sys.stderr)
        return
    sys.stdout.flush()
    subprocess.run([*python, "-c", PSTATS, str(profile)], check=False)
