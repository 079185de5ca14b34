"""A real one-node Slurm cluster on this machine, for the tests of `dlgit submit` (a pytest plugin).

Debian's packages (`apt-get install slurmctld slurmd slurm-client munge`; `.ci/run` installs them)
give the daemons; the fixture writes a slurm.conf into a temporary folder (no accounting database,
process tracking by parentage, no cgroups), starts a private munged, slurmctld and slurmd on free
ports, waits until `sinfo` shows the node idle, points SLURM_CONF at it, and stops them after the
session. Each pytest worker gets its own cluster. Without the packages or the rights to start them
the tests that need it skip, saying why (CI has both and must not skip: DLGIT_REQUIRE_SLURM=1 turns
the skip into a failure).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, NoReturn

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "srun")
NODE = "dlgitnode"
PARTITION = "debug"
START_TIMEOUT = 60.0
CPUS = 4  # more than the machine has (config_overrides): tests' jobs mostly sleep


class Cluster(NamedTuple):
    conf: Path
    folder: Path
    env: dict[str, str]  # what a client needs (SLURM_CONF)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, env={**os.environ, **self.env}, check=False, timeout=60)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _daemon(name: str) -> str | None:
    return shutil.which(name) or next((path for path in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(path, os.X_OK)), None)


def missing() -> str | None:
    """Why no cluster can be started here, or None."""
    absent = [name for name in DAEMONS if _daemon(name) is None] + [name for name in CLIENTS if shutil.which(name) is None]
    if absent:
        return (f"Slurm is not installed ({', '.join(absent)} missing): "
                "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge")
    if os.geteuid() != 0:
        return "a test Slurm cluster needs root (slurmd starts jobs as their users)"
    return None


def slurm_conf(folder: Path, munge_socket: Path, ctld_port: int, node_port: int) -> str:
    user = "root"
    host = socket.gethostname()
    return f"""\
ClusterName=dlgit-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={node_port}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool/%n
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd-%n.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=10
KillWait=5
InactiveLimit=0
MessageTimeout=20
JobRequeue=1
MaxArraySize=1001
MaxJobCount=10000
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={NODE} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory=4000 State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""


class _Daemons:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{Path(command[0]).name}.out", "ab")  # noqa: SIM115 - the daemon keeps it
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _logs(folder: Path) -> str:
    return "\n".join(f"--- {path.name}\n" + path.read_text(errors="replace")[-2000:]
                     for path in sorted(folder.glob("*.log")) + sorted(folder.glob("*.out")))


def _wait_idle(cluster: Cluster, daemons: _Daemons) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    state = ""
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in daemons.procs):
            break
        state = cluster.run("sinfo", "-h", "-N", "-o", "%T").stdout.strip()
        if state == "idle":
            return
        time.sleep(0.3)
    raise RuntimeError(f"the test Slurm cluster did not become idle (node state {state or 'unknown'!r}):\n{_logs(cluster.folder)}")


def start(folder: Path) -> tuple[Cluster, _Daemons]:
    """munged, slurmctld and slurmd for a one-node cluster whose files live in `folder`."""
    for sub in ("state", "spool", "munge"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(folder / "munge", 0o700)
    key, socket_path = folder / "munge" / "munge.key", folder / "munge" / "munge.socket"
    key.write_bytes(os.urandom(1024))  # what `mungekey --create` writes (older munge has no mungekey)
    key.chmod(0o600)
    ctld_port, node_port = _free_ports(2)
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, socket_path, ctld_port, node_port))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemons = _Daemons(folder)
    try:
        daemons.start(_daemon("munged") or "munged", "--foreground", "--force", f"--key-file={key}", f"--socket={socket_path}",
                      f"--pid-file={folder / 'munge' / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
                      f"--seed-file={folder / 'munge' / 'munged.seed'}", env=env)
        deadline = time.monotonic() + 10
        while not socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        daemons.start(_daemon("slurmctld") or "slurmctld", "-D", "-i", "-f", str(conf), env=env)
        daemons.start(_daemon("slurmd") or "slurmd", "-D", "-N", NODE, "-f", str(conf), env=env)
        cluster = Cluster(conf, folder, {"SLURM_CONF": str(conf)})
        _wait_idle(cluster, daemons)
    except BaseException:
        daemons.stop()
        raise
    return cluster, daemons


def unavailable(reason: str) -> NoReturn:
    """Skip the test, saying why no cluster runs here; fail it where one must (DLGIT_REQUIRE_SLURM=1: CI)."""
    if os.environ.get("DLGIT_REQUIRE_SLURM") == "1":
        pytest.fail(f"{reason} (DLGIT_REQUIRE_SLURM=1: a Slurm test must not skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A running one-node Slurm cluster (skips, saying why, when none can be started)."""
    reason = missing()
    if reason:
        unavailable(reason)
    folder = Path(f"/tmp/dlgit-slurm-{os.getpid()}")  # short: a unix socket path must fit in 108 bytes
    shutil.rmtree(folder, ignore_errors=True)
    try:
        cluster, daemons = start(folder)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        unavailable(f"the test Slurm cluster cannot be started: {exc}")
    try:
        yield cluster
    finally:
        cluster.run("scancel", "--full", "--quiet", "--partition", PARTITION)
        daemons.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def slurm(slurm_cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """The session's cluster, with SLURM_CONF set for this test's commands."""
    for key, value in slurm_cluster.env.items():
        monkeypatch.setenv(key, value)
    return slurm_cluster
