"""`RayExecutor`: run a study's trials as Ray tasks on a cluster (``pip install "lrlab[ray]"``).

Each trial is one Ray task with declared resources (CPUs, GPUs). Workers write their
per-epoch checkpoints under the trial's checkpoint directory, which must be reachable
from every node (the study directory on a shared file system, or ``--checkpoint-dir``).
When a worker dies mid-trial, Ray runs the task again (``max_retries``) and the trial
resumes from its last checkpoint; results come back to the driver, which stays the only
writer of ``study.db``. Progress events travel through a Ray queue.

Start a cluster with ``ray start --head`` on one machine and ``ray start --address
HEAD:6379`` on the others, then ``lrlab study run STUDY --executor ray --address HEAD:6379``
(or ``auto`` on a cluster node). The workers need lrlab installed (the same version).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lrlab.study.executors import Event, _failed, execute
from lrlab.study.resolve import TrialSpec


def _ray_trial(spec: TrialSpec, queue: Any) -> dict[str, Any]:
    """The task body: note the worker's pid beside the checkpoint (for operators and tests).

    Progress events go to the queue's actor without waiting for each (Ray runs one
    caller's calls to an actor in order, so waiting for the last one before returning
    means every event is queued before the result is seen): ``queue.put`` waited for a
    round trip per event, which a trial with an event per epoch paid dozens of times.
    """
    Path(spec.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    (Path(spec.checkpoint_dir) / "worker.pid").write_text(str(os.getpid()))
    last: list[Any] = []

    def put(event: Event) -> None:
        last[:] = [queue.actor.put_nowait.remote(event)]

    result = execute(spec, put)
    if last:  # the actor runs one caller's calls in order: all events are in the queue
        import ray

        ray.get(last[0])
    return result


def _drain(queue: Any, on_event: Callable[[Event], None]) -> None:
    """Every event waiting in ``queue``, in two calls to its actor (not two per event)."""
    waiting = queue.qsize()
    if waiting:
        for event in queue.get_nowait_batch(waiting):
            on_event(event)


class RayExecutor:
    """Run trials as Ray tasks on the cluster at ``address`` (``"auto"``, ``"local"`` or host:port).

    Args:
        address: the cluster to join; ``"local"`` starts a private one on this machine.
        cpus_per_trial, gpus_per_trial: resources each trial's task declares.
        max_retries: how often Ray re-runs a trial whose worker died (it resumes from
            its checkpoint each time).
    """

    def __init__(
        self,
        address: str = "auto",
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
        max_retries: int = 3,
    ) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError('--executor ray needs Ray: pip install "lrlab[ray]"') from None
        if cpus_per_trial <= 0 or gpus_per_trial < 0:
            raise ValueError(
                f"cpus_per_trial={cpus_per_trial}, gpus_per_trial={gpus_per_trial}: "
                "expected CPUs > 0 and GPUs >= 0"
            )
        if max_retries < 0:
            raise ValueError(f"max_retries={max_retries} is invalid; expected an integer >= 0")
        self.address, self.cpus, self.gpus, self.max_retries = (
            address,
            cpus_per_trial,
            gpus_per_trial,
            max_retries,
        )

    def run(
        self, specs: list[TrialSpec], on_event: Callable[[Event], None]
    ) -> Iterator[dict[str, Any]]:
        import ray
        from ray.util.queue import Queue

        if not ray.is_initialized():
            ray.init(
                address=None if self.address == "local" else self.address,
                log_to_driver=False,
                configure_logging=False,
            )
        queue = Queue()
        task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.max_retries)(
            _ray_trial
        )
        refs = {task.remote(spec, queue): spec for spec in specs}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
                _drain(queue, on_event)
                for ref in done:
                    try:
                        yield ray.get(ref)
                    except Exception as exc:  # the task failed even after its retries
                        yield _failed(refs[ref], exc)
            _drain(queue, on_event)
        finally:
            queue.shutdown()
