"""Executors run trials and hand results back; the caller is the only writer of the store.

`LocalExecutor` runs trials in this process (``workers=1``), or in this process and a
pool of worker processes, each with its own torch thread count from the trial config. Workers send
progress events through a queue and return their result; a trial that raises becomes a
``failed`` result, never a crash of the study. (A Ray executor plugs in behind the same
`Executor` protocol.)
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
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


_EVENTS: Any = None  # a worker process's queue back to the driver (set at its start)


def _init_worker(events: Any) -> None:
    global _EVENTS
    _EVENTS = events


def _worker(spec: TrialSpec) -> dict[str, Any]:
    return execute(spec, _EVENTS.put)


def _ready() -> None:
    """A no-op task: its completion means a worker process is up and warm."""


def _context() -> Any:
    """``forkserver`` where the platform has it, else ``spawn`` (never a plain ``fork`` of
    the driver, whose torch thread pools a forked child would inherit half-initialised).

    The fork server is one fresh process that imports lrlab's trainer (and torch) once
    and pays torch's first-optimizer cost (`lrlab.study._preload`); each worker is then a
    fork of it and starts in a fraction of a second, instead of paying both itself as a
    spawned worker does.
    """
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["lrlab.study._preload"])
    return ctx


# The worker processes of this process's studies: started once (by the first study with
# several workers) and reused by the next ones, so a script that runs many studies (a
# benchmark, a sweep over settings) pays process start-up, imports and data loading once.
# A pool whose processes broke, or that a stopped study leaves, is closed and made anew.
_SHARED: list[Any] = []  # [(processes, pool, events queue)] or empty


def _shared_pool(processes: int) -> tuple[ProcessPoolExecutor, Any]:
    if _SHARED and _SHARED[0][0] != processes:
        _close_shared_pool()
    if not _SHARED:
        ctx = _context()
        events = ctx.Queue()
        pool = ProcessPoolExecutor(
            processes, mp_context=ctx, initializer=_init_worker, initargs=(events,)
        )
        _SHARED.append((processes, pool, events))
    _, pool, events = _SHARED[0]
    return pool, events


def _close_shared_pool() -> None:
    if _SHARED:
        _, pool, _ = _SHARED.pop()
        pool.shutdown(wait=True, cancel_futures=True)


class LocalExecutor:
    """Trials on this machine: in this process (``workers=1``), or here and in
    ``workers - 1`` worker processes.

    With several workers this process runs trials too, on a thread, while the worker
    processes start: it has torch imported and usually the data loaded already, so it
    never waits for them (`benchmarks/study_throughput.py` measures what this gains).
    The processes outlive the study: the next study of this process with as many workers
    reuses them, warm (torch imported, data loaded), instead of starting its own.
    Progress events from the thread and from the processes reach ``on_event`` on the
    calling thread only, so the store keeps one writer.
    """

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
        yield from _Pool(min(self.workers, len(specs)), specs, on_event).results()


class _Pool:
    """Trials on a thread of this process and in ``workers - 1`` worker processes.

    Two feeders take trials from one queue: the thread, which can start at once, and the
    process side, which takes a trial for a process only once that process is up (a
    process takes seconds to start; meanwhile this process runs trials). Results and
    events come back through one queue to the caller's thread, the only one that calls
    ``on_event``.
    """

    def __init__(
        self, workers: int, specs: list[TrialSpec], on_event: Callable[[Event], None]
    ) -> None:
        self.workers, self.specs, self.on_event = workers, specs, on_event
        self.todo: deque[TrialSpec] = deque(specs)
        self.lock = threading.Lock()
        self.out: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.stopping = threading.Event()

    def take(self) -> TrialSpec | None:
        with self.lock:
            if self.stopping.is_set() or not self.todo:
                return None
            return self.todo.popleft()

    def results(self) -> Iterator[dict[str, Any]]:
        feeders = [
            threading.Thread(target=self._here, name="lrlab-trial", daemon=True),
            threading.Thread(target=self._there, name="lrlab-workers", daemon=True),
        ]
        for f in feeders:
            f.start()
        try:
            left = len(self.specs)
            while left:
                kind, item = self.out.get()
                if kind == "event":
                    self.on_event(item)
                else:
                    left -= 1
                    yield item
        except BaseException:
            # Ctrl-C, or a caller that stops early: no new trial starts; the running ones
            # end with the process (their checkpoints let the next run resume them)
            self.stopping.set()
            raise
        for f in feeders:  # the pool's processes have exited when this returns
            f.join()

    def _here(self) -> None:
        while (spec := self.take()) is not None:
            result = execute(spec, lambda e: self.out.put(("event", e)))
            self.out.put(("result", result))

    def _there(self) -> None:
        pool, events = _shared_pool(self.workers - 1)
        broken = False
        running: dict[Future[Any], TrialSpec | None] = {
            pool.submit(_ready): None for _ in range(self.workers - 1)
        }
        while running:
            done, _ = wait(list(running), timeout=0.2, return_when=FIRST_COMPLETED)
            self._drain(events)
            for future in done:
                spec = running.pop(future)
                broken |= isinstance(future.exception(), BrokenProcessPool)
                if spec is not None:
                    self.out.put(("result", self._result(spec, future)))
                elif future.exception() is not None:
                    continue  # the process could not start: the thread does the work
                nxt = None if broken else self.take()
                if nxt is not None:
                    running[pool.submit(_worker, nxt)] = nxt
        self._drain(events)
        if broken or self.stopping.is_set():  # what is left runs on the thread
            _close_shared_pool()

    @staticmethod
    def _result(spec: TrialSpec, future: Future[Any]) -> dict[str, Any]:
        try:
            result: dict[str, Any] = future.result()
            return result
        except Exception as e:  # a worker died (OOM kill, segfault), or pickling
            # BrokenProcessPool fails every running trial too; each is recorded as
            # failed and resumes from its checkpoint on the next run.
            return _failed(spec, e)

    def _drain(self, events: Any) -> None:
        while True:
            try:
                self.out.put(("event", events.get_nowait()))
            except queue.Empty:
                return
