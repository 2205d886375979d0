"""Trials per minute of one fixed small study: local executor at 1 and 2 workers, and Ray.

The same study (8 short trials, one torch thread each) runs back to back with the local
executor at 1 worker, at 2 workers (twice: the first run starts the worker process, the
second reuses it, as a script running several studies does), and with the Ray executor
on a two-node cluster started on this machine (one CPU per node, like the 2-worker local
run). Each run starts
from an empty study directory; the time counted is the whole ``run_study`` call (process
start-up, data loading and store writes included). Printed: trials per minute, the
2-worker speed-up, and Ray's overhead against local at the same worker count.
Targets: 2 local workers >= 1.7x one worker on 2 cores; Ray within 15% of local.

    python benchmarks/study_throughput.py [--trials 8] [--epochs 60] [--no-ray]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from lrlab.study import LocalExecutor, parse_study, run_study


def study(trials: int, epochs: int) -> dict:
    return {
        "name": "throughput",
        "seeds": list(range(trials // 2)),
        "task": {
            "data": "digits",
            "model": "mlp",
            "batch_size": 16,
            "epochs": epochs,
            "threads": 1,
        },
        "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 1e-4},
        "arms": [
            {"name": "1cycle", "lr": "one_cycle(max_lr=0.1)", "momentum": "cyclical"},
            {"name": "constant", "lr": "constant(level=0.05)"},
        ],
    }


def timed(executor: object, cfg: dict, root: Path) -> float:
    directory = root / f"run-{time.perf_counter_ns()}"
    start = time.perf_counter()
    summary = run_study(parse_study(cfg), directory, executor=executor)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    assert summary.ran == len(cfg["seeds"]) * len(cfg["arms"]) and not summary.failed
    shutil.rmtree(directory)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cfg = study(args.trials, args.epochs)
    n = len(cfg["seeds"]) * len(cfg["arms"])
    root = Path(tempfile.mkdtemp(prefix="lrlab-throughput-"))
    results: dict[str, float] = {}
    timed(LocalExecutor(1), {**cfg, "seeds": [0]}, root)  # warm the data caches once
    results["local, 1 worker"] = timed(LocalExecutor(1), cfg, root)
    # the first study with 2 workers starts the worker process (fork server, imports,
    # data); the next study of the same process reuses it, as the 1-worker run reuses
    # this process's warm state
    results["local, 2 workers, cold"] = timed(LocalExecutor(2), cfg, root)
    results["local, 2 workers"] = timed(LocalExecutor(2), cfg, root)
    if not args.no_ray:
        from lrlab.study.ray_executor import RayExecutor
        from lrlab.study.ray_local import local_cluster

        # two nodes of one CPU, like the 2-worker local run; ended by session afterwards,
        # so no other Ray on the host is touched
        with local_cluster(nodes=2, cpus_per_node=1) as cluster:
            os.environ.update(cluster.env)  # before this process first imports Ray
            import ray

            ray.init(address=cluster.address, log_to_driver=False)
            try:
                timed(RayExecutor(cluster.address), {**cfg, "seeds": [0]}, root)  # warm workers
                results["ray, 2 nodes x 1 CPU"] = timed(RayExecutor(cluster.address), cfg, root)
            finally:
                ray.shutdown()
    shutil.rmtree(root, ignore_errors=True)
    print(f"{n} trials of {args.epochs} epochs (digits MLP, batch 16, 1 thread each)")
    for name, secs in results.items():
        print(f"  {name:<22} {secs:7.1f} s   {60 * n / secs:6.1f} trials/min")
    one, two = results["local, 1 worker"], results["local, 2 workers"]
    cold = results["local, 2 workers, cold"]
    print(f"  2 local workers vs 1: {one / two:.2f}x (target >= 1.7)")
    print(f"  2 local workers vs 1, processes starting in the run: {one / cold:.2f}x")
    if "ray, 2 nodes x 1 CPU" in results:
        ray_s = results["ray, 2 nodes x 1 CPU"]
        overhead = 100 * (ray_s / two - 1)
        print(f"  Ray vs local at 2 workers: {overhead:+.1f}% time (target within 15%)")


if __name__ == "__main__":
    main()
