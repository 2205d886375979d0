"""`local_cluster`: a private multi-node Ray cluster on this machine, to try a study on Ray
(or test and benchmark lrlab's Ray executor) without a real cluster.

Every node is a ``ray start`` in a process session of its own on loopback, in a temp
directory of its own, and is ended by ending those sessions: any other Ray on the host
is left alone (``ray stop`` would end every Ray process of the user). Token
authentication is set up as Ray documents it for manually started clusters: one
``RAY_AUTH_MODE=token`` / ``RAY_AUTH_TOKEN`` for every node and for the driver. Left to
itself, Ray >= 2.52 turns token mode on whenever ``~/.ray/auth_token`` exists (any
earlier ``ray.init()`` writes one), and a second node then fails with
``InvalidAuthToken``; an explicit token makes the cluster independent of the home
directory. Linux only (sessions are found through ``/proc``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalCluster:
    """A running `local_cluster`: its address and the environment its nodes run with.

    A driver must run with ``env`` (``ray.init(address=...)`` in a process started with
    it, or in this process if Ray was not imported before the variables were set: Ray
    reads the authentication mode once per process).
    """

    address: str
    env: dict[str, str]
    sessions: tuple[int, ...]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_start(args: list[str], env: dict[str, str], sessions: list[int]) -> None:
    """``ray start ARGS`` in a new session, recorded in ``sessions`` before it can fail."""
    exe = Path(sys.executable).parent / "ray"
    proc = subprocess.Popen(
        [str(exe), "start", *args],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sessions.append(proc.pid)  # a session's id is its leader's pid
    out, _ = proc.communicate(timeout=180)
    if proc.returncode != 0:
        raise RuntimeError(f"ray start {' '.join(args)} exited {proc.returncode}:\n{out[-3000:]}")


def session_pids(sessions: list[int] | tuple[int, ...]) -> list[int]:
    """The processes of these sessions (field 6 of ``/proc/PID/stat`` is the session id)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) in sessions and fields[0] != "Z":  # zombies wait for their parent
            pids.append(int(entry.name))
    return pids


def end_sessions(sessions: list[int] | tuple[int, ...], grace: float = 15.0) -> None:
    """SIGTERM every process of these sessions (Ray's daemons stop gracefully), then SIGKILL
    what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in session_pids(sessions):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.time() + grace
        while time.time() < deadline and session_pids(sessions):
            time.sleep(0.2)


@contextlib.contextmanager
def local_cluster(nodes: int = 2, cpus_per_node: int = 1) -> Iterator[LocalCluster]:
    """Start a head and ``nodes - 1`` more nodes on loopback; end exactly them on exit.

    >>> with local_cluster(nodes=2) as cluster:  # doctest: +SKIP
    ...     run = subprocess.run([sys.executable, "-m", "lrlab", "study", "run", "example",
    ...                           "--executor", "ray", "--address", cluster.address],
    ...                          env=cluster.env)
    """
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise ValueError(f"nodes={nodes!r} is invalid; expected an integer >= 1")
    if isinstance(cpus_per_node, bool) or not isinstance(cpus_per_node, int) or cpus_per_node < 1:
        raise ValueError(f"cpus_per_node={cpus_per_node!r} is invalid; expected an integer >= 1")
    port = _free_port()
    # short: Ray's socket paths are length-limited
    temp = Path(tempfile.mkdtemp(prefix="lrlab-ray-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_TOKEN_PATH"}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    common = [f"--num-cpus={cpus_per_node}", "--disable-usage-stats", f"--temp-dir={temp}"]
    sessions: list[int] = []
    try:
        head = ["--head", "--node-ip-address=127.0.0.1", f"--port={port}"]
        _ray_start([*head, "--include-dashboard=false", *common], env, sessions)
        for _ in range(nodes - 1):
            more = [f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", *common]
            _ray_start(more, env, sessions)
        yield LocalCluster(f"127.0.0.1:{port}", env, tuple(sessions))
    finally:
        end_sessions(sessions)
        shutil.rmtree(temp, ignore_errors=True)
