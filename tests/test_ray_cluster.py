"""A real two-node Ray cluster on loopback: a study runs across it, survives a killed worker,
and stores the same numbers a local run does.

Select with ``pytest -m ray``; skipped when Ray is not installed. The cluster is
`lrlab.study.ray_local.local_cluster`: a head and a second node started with ``ray start``
in a private temp directory, each in a session of its own, with an explicit
authentication token, and afterwards exactly those two sessions are ended (nothing else
on the host), whatever happens.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lrlab.study import LocalExecutor, StudyStore, parse_study, run_study
from lrlab.study.ray_local import LocalCluster, local_cluster, session_pids

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


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    with local_cluster(nodes=2, cpus_per_node=1) as c:
        yield c


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


def test_study_across_two_nodes_survives_a_killed_worker(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    assert len(session_pids(cluster.sessions)) >= 4  # gcs, raylets, agents: all in its sessions
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
    args = [cluster.address, str(tmp_path / "ray"), json.dumps(STUDY), str(out)]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=cluster.env,
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
