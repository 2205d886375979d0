"""A real two-node Ray cluster on loopback: a study runs across it, survives a killed worker,
and stores the same numbers a local run does.

Select with ``pytest -m ray``; skipped when Ray is not installed. The test starts the
head and a second node with ``ray start`` in a private temp directory, each in a session
of its own, and afterwards ends those two sessions (and nothing else on the host),
whatever happens.

Token authentication (Ray >= 2.52) is set up as Ray documents it for a manual cluster:
``RAY_AUTH_MODE=token`` and one ``RAY_AUTH_TOKEN`` in the environment of every node and of
the driver. Left to itself, Ray enables token mode whenever ``~/.ray/auth_token`` exists
(any earlier ``ray.init()`` on the host writes one), and a second node started with
``--address`` then fails with ``InvalidAuthToken``; an explicit token makes the test
independent of what the host's home directory holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lrlab.study import LocalExecutor, StudyStore, parse_study, run_study

pytest.importorskip("ray")
pytestmark = pytest.mark.ray

STUDY = {
    "name": "cluster",
    "seeds": [0, 1],
    "task": {"data": "digits", "model": "mlp", "batch_size": 16, "epochs": 6},
    "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 1e-4},
    "arms": [
        {"name": "1cycle", "lr": "one_cycle(max_lr=0.1)", "momentum": "cyclical"},
        {"name": "constant", "lr": "constant(level=0.05)"},
    ],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_start(*args: str, env: dict[str, str]) -> int:
    """`ray start ...` in a new session; returns the session id its daemons inherit."""
    exe = Path(sys.executable).parent / "ray"
    proc = subprocess.Popen(
        [str(exe), "start", *args],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out, _ = proc.communicate(timeout=180)
    if proc.returncode != 0:
        _end_sessions([proc.pid])
        raise RuntimeError(f"ray start {' '.join(args)} exited {proc.returncode}:\n{out[-3000:]}")
    return proc.pid


def _session_pids(sids: list[int]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[3]) in sids:  # field 6 of stat: the session id
            pids.append(int(entry.name))
    return pids


def _end_sessions(sids: list[int]) -> None:
    """SIGTERM every process of these sessions (Ray's daemons stop gracefully), then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _session_pids(sids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.time() + 15
        while time.time() < deadline and _alive(_session_pids(sids)):
            time.sleep(0.2)


def _alive(pids: list[int]) -> bool:
    """Whether any of these has not exited (zombies waiting for their parent count as gone)."""
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                return True
        except OSError:
            pass
    return False


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    port = _free_port()
    temp = Path("/tmp") / f"lrlab-ray-{os.getpid()}"  # short: Ray's socket paths are length-limited
    common = ["--num-cpus=1", "--disable-usage-stats", f"--temp-dir={temp}"]
    token = secrets.token_hex(32)
    for name, value in (("RAY_AUTH_MODE", "token"), ("RAY_AUTH_TOKEN", token)):
        monkeypatch.setenv(name, value)  # the driver (ray.init below) and both nodes
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    env = dict(os.environ)
    sessions: list[int] = []
    try:
        head = ["--head", "--node-ip-address=127.0.0.1", f"--port={port}"]
        sessions.append(_ray_start(*head, "--include-dashboard=false", *common, env=env))
        second = [f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1"]
        sessions.append(_ray_start(*second, *common, env=env))
        yield f"127.0.0.1:{port}"
    finally:
        _end_sessions(sessions)
        shutil.rmtree(temp, ignore_errors=True)


def _snapshot(directory: Path) -> dict[str, tuple]:
    store = StudyStore(directory / "study.db")
    out = {
        t.id: (t.status, t.final, {n: store.series(t.id, n) for n in store.metric_names(t.id)})
        for t in store.trials()
    }
    store.close()
    return out


# The driver runs in a process of its own: Ray reads the authentication mode and token
# once per process, so this pytest process (which may have imported Ray already) would
# keep whatever it saw first.
DRIVER = """
import json, sys
import ray
from lrlab.study import parse_study, run_study
from lrlab.study.ray_executor import RayExecutor

address, directory, study, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
ray.init(address=address, log_to_driver=False)
nodes = [n for n in ray.nodes() if n["Alive"]]
events = []
summary = run_study(
    parse_study(study), directory, executor=RayExecutor(address), on_event=events.append
)
with open(out, "w") as f:
    json.dump({
        "nodes": len(nodes), "cpus": ray.cluster_resources()["CPU"],
        "failed": summary.failed, "ran": summary.ran,
        "starts": sum(e["kind"] == "start" for e in events),
    }, f)
"""


def test_study_across_two_nodes_survives_a_killed_worker(cluster: str, tmp_path: Path) -> None:
    killed: list[int] = []
    checkpoints = tmp_path / "ray" / "checkpoints"

    def assassin() -> None:  # SIGKILL the first worker that has written a checkpoint
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            for d in checkpoints.glob("*") if checkpoints.exists() else []:
                if (d / "last.pt").exists() and (d / "worker.pid").exists():
                    pid = int((d / "worker.pid").read_text())
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.02)

    thread = threading.Thread(target=assassin, daemon=True)
    thread.start()
    out = tmp_path / "driver.json"
    args = [cluster, str(tmp_path / "ray"), json.dumps(STUDY), str(out)]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    thread.join(timeout=5)
    result = json.loads(out.read_text())
    assert result["nodes"] == 2 and result["cpus"] == 2
    assert killed, "no worker was killed: the trials finished too fast"
    assert result["failed"] == [] and result["ran"] == 4
    assert result["starts"] >= 5  # one trial started twice: the retry after the kill
    run_study(parse_study(STUDY), tmp_path / "local", executor=LocalExecutor(1))
    assert _snapshot(tmp_path / "ray") == _snapshot(tmp_path / "local")
