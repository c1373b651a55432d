"""A real two-node Ray cluster on loopback for the tests: a head and one worker node.

Both nodes run on this machine with ``--node-ip-address`` on loopback, with token
authentication (``RAY_AUTH_MODE=token`` and a fresh ``RAY_AUTH_TOKEN`` for every process) and
their own temp dir, so they never meet another session's Ray. The address is 127.0.0.2, not
127.0.0.1: Ray 2.60 replaces a node address of 127.0.0.1/localhost with the machine's routable
one (``services.resolve_ip_for_localhost``), which would send the cluster's traffic over the
network address; any other 127.x address is loopback too and is kept as given.

``ray stop`` is never used: it kills every Ray process on the machine. :func:`stop` kills only
this cluster's processes, by pid: those in the sessions its ``ray start`` commands opened and
those whose command line names its temp dir.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
NODE_IP = "127.0.0.2"  # loopback (see the module docstring)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_env(token: str, temp_dir: str | None = None) -> dict[str, str]:
    """The environment every process of the cluster (and each client) runs with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_USAGE_STATS_ENABLED="0",
               RAY_DEDUP_LOGS="0", PYTHONUNBUFFERED="1")
    if temp_dir:
        env["RAY_TMPDIR"] = temp_dir
    return env


@dataclass
class Cluster:
    temp_dir: Path
    address: str  # GCS address, for --address / RAY_ADDRESS
    dashboard: str | None  # http://127.0.0.1:PORT, for `ray job submit`
    env: dict[str, str]
    sessions: list[int] = field(default_factory=list)  # pids of the `ray start` commands

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([RAY, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def node_ids(self, timeout: float = 60) -> list[str]:
        """Ids of the alive nodes, read by a short driver process (not this one)."""
        code = ("import ray; ray.init(address=%r, logging_level='ERROR'); "
                "print(' '.join(n['NodeID'] for n in ray.nodes() if n['Alive']))" % self.address)
        r = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"cannot list the cluster's nodes: {r.stderr[-2000:]}")
        return r.stdout.split()


def _start(args: list[str], env: dict[str, str], cluster: Cluster) -> None:
    p = subprocess.Popen([RAY, "start", *args], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    cluster.sessions.append(p.pid)
    out, _ = p.communicate(timeout=180)
    if p.returncode != 0:
        raise RuntimeError(f"ray start {' '.join(args)} failed ({p.returncode}):\n{out[-3000:]}")


def start(*, head_cpus: int = 1, worker_cpus: int = 1, dashboard: bool = True) -> Cluster:
    """Start the head, then the worker; wait until both nodes are alive."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rayt", dir="/tmp"))  # short: socket paths
    env = ray_env(secrets.token_hex(32), str(temp_dir))
    port = free_port()
    dash = free_port() if dashboard else None
    cluster = Cluster(temp_dir=temp_dir, address=f"{NODE_IP}:{port}",
                      dashboard=f"http://127.0.0.1:{dash}" if dash else None, env=env)
    common = ["--node-ip-address", NODE_IP, "--temp-dir", str(temp_dir),
              "--disable-usage-stats", "--object-store-memory", str(80 * 2**20)]
    try:
        head = ["--head", "--port", str(port), "--num-cpus", str(head_cpus),
                "--ray-client-server-port", str(free_port()),
                "--dashboard-agent-listen-port", str(free_port()),
                "--include-dashboard", "true" if dashboard else "false"]
        if dash:
            head += ["--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash)]
        _start(head + common, env, cluster)
        _start(["--address", cluster.address, "--num-cpus", str(worker_cpus),
                "--dashboard-agent-listen-port", str(free_port())] + common, env, cluster)
        deadline = time.monotonic() + 120
        while len(cluster.node_ids()) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the worker node did not join the head within 120 s")
            time.sleep(1)
    except BaseException:
        stop(cluster)
        raise
    return cluster


def cluster_pids(cluster: Cluster) -> set[int]:
    """This cluster's processes (read from /proc): in the sessions its ``ray start`` commands
    opened, or naming its temp dir on their command line."""
    mine = set()
    marker = str(cluster.temp_dir).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            if os.getsid(pid) in cluster.sessions or marker in (entry / "cmdline").read_bytes():
                if _alive(pid):
                    mine.add(pid)
        except OSError:
            pass
    return mine


def stop(cluster: Cluster, *, grace: float = 5.0) -> set[int]:
    """SIGTERM, then SIGKILL, this cluster's processes only; returns any that survived."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        pids = cluster_pids(cluster)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            pids = {p for p in pids if _alive(p)}
            time.sleep(0.2)
        if not pids:
            break
    left = cluster_pids(cluster)
    if not left:
        shutil.rmtree(cluster.temp_dir, ignore_errors=True)
    return left


def _alive(pid: int) -> bool:
    """Running, and not a zombie (a zombie is dead for our purposes)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:][:1] not in ("Z", "X")
