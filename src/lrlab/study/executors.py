"""Executors run trials and hand results back; the caller is the only writer of the store.

`LocalExecutor` runs trials in this process (``workers=1``) or in a pool of worker
processes, each with its own torch thread count from the trial config. Workers send
progress events through a queue and return their result; a trial that raises becomes a
``failed`` result, never a crash of the study. (A Ray executor plugs in behind the same
`Executor` protocol.)
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from lrlab.study.resolve import TrialSpec

Event = dict[str, Any]


class Executor(Protocol):
    def run(
        self, specs: list[TrialSpec], on_event: Callable[[Event], None]
    ) -> Iterator[dict[str, Any]]:
        """Run ``specs``; yield each result as it finishes; report progress through ``on_event``."""
        ...


def _failed(spec: TrialSpec, exc: BaseException) -> dict[str, Any]:
    last = traceback.format_exception(type(exc), exc, exc.__traceback__)[-1].strip()
    return {
        "id": spec.id,
        "status": "failed",
        "error": last,
        "final": {},
        "history": [],
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


def execute(spec: TrialSpec, emit: Callable[[Event], None]) -> dict[str, Any]:
    """Run one trial, turning an exception into a ``failed`` result."""
    from lrlab.study.trainer import run_trial

    emit({"kind": "start", "trial": spec.id})
    try:
        return run_trial(spec, emit)
    except Exception as exc:  # a broken trial must not take the study down
        return _failed(spec, exc)


def _worker(spec: TrialSpec, queue: Any) -> dict[str, Any]:
    return execute(spec, queue.put)


class LocalExecutor:
    """Sequential (``workers=1``) or a process pool of ``workers`` processes."""

    def __init__(self, workers: int = 1) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers={workers!r} is invalid; expected an integer >= 1")
        self.workers = workers

    def run(
        self, specs: list[TrialSpec], on_event: Callable[[Event], None]
    ) -> Iterator[dict[str, Any]]:
        if self.workers == 1 or len(specs) <= 1:
            for spec in specs:
                yield execute(spec, on_event)
            return
        ctx = mp.get_context("spawn")  # no forked torch thread pools
        with ctx.Manager() as manager, ProcessPoolExecutor(self.workers, mp_context=ctx) as pool:
            queue = manager.Queue()
            spec_of = {pool.submit(_worker, s, queue): s for s in specs}
            pending: set[Future[dict[str, Any]]] = set(spec_of)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                while not queue.empty():
                    on_event(queue.get())
                for future in done:
                    try:
                        yield future.result()
                    except Exception as e:  # a worker died (OOM kill, segfault), or pickling
                        # BrokenProcessPool fails every queued trial too; each is recorded
                        # as failed and resumes from its checkpoint on the next run.
                        yield _failed(spec_of[future], e)
            while not queue.empty():
                on_event(queue.get())
