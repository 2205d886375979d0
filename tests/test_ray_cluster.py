"""A real two-node Ray cluster on loopback: a study runs across it, survives a killed worker,
and stores the same numbers a local run does.

Select with ``pytest -m ray``; skipped when Ray is not installed. The test starts the
head and a second node with ``ray start`` in a private temp directory and stops them
(``ray stop --force``) afterwards, whatever happens.
"""

from __future__ import annotations

import os
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

ray = pytest.importorskip("ray")
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


def _ray(*args: str) -> None:
    exe = Path(sys.executable).parent / "ray"
    subprocess.run([str(exe), *args], check=True, capture_output=True, timeout=180)


@pytest.fixture
def cluster(tmp_path: Path):
    port = _free_port()
    temp = Path("/tmp") / f"lrlab-ray-{os.getpid()}"  # short: Ray's socket paths are length-limited
    common = ["--num-cpus=1", "--disable-usage-stats", f"--temp-dir={temp}"]
    try:
        _ray(
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--include-dashboard=false",
            *common,
        )
        _ray("start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", *common)
        yield f"127.0.0.1:{port}"
    finally:
        if ray.is_initialized():
            ray.shutdown()
        subprocess.run(
            [str(Path(sys.executable).parent / "ray"), "stop", "--force"],
            capture_output=True,
            timeout=180,
        )
        shutil.rmtree(temp, ignore_errors=True)


def _snapshot(directory: Path) -> dict[str, tuple]:
    store = StudyStore(directory / "study.db")
    out = {
        t.id: (t.status, t.final, {n: store.series(t.id, n) for n in store.metric_names(t.id)})
        for t in store.trials()
    }
    store.close()
    return out


def test_study_across_two_nodes_survives_a_killed_worker(cluster: str, tmp_path: Path) -> None:
    from lrlab.study.ray_executor import RayExecutor

    ray.init(address=cluster, log_to_driver=False)
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2 and ray.cluster_resources()["CPU"] == 2
    study = parse_study(STUDY)
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
    events: list[dict] = []
    summary = run_study(
        study, tmp_path / "ray", executor=RayExecutor(cluster), on_event=events.append
    )
    thread.join(timeout=5)
    assert killed, "no worker was killed: the trials finished too fast"
    assert summary.failed == [] and summary.ran == 4
    starts = [e for e in events if e["kind"] == "start"]
    assert len(starts) >= 5  # one trial started twice: the retry after the kill
    run_study(study, tmp_path / "local", executor=LocalExecutor(1))
    assert _snapshot(tmp_path / "ray") == _snapshot(tmp_path / "local")
