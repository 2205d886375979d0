"""Run a study: expand arms x seeds, skip what is finished, resume what is not, store results."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lrlab import __version__
from lrlab.study.checkpoint import Checkpoint
from lrlab.study.config import StudyConfig
from lrlab.study.executors import Event, Executor, LocalExecutor
from lrlab.study.lock import StudyLock
from lrlab.study.preflight import preflight
from lrlab.study.resolve import TrialSpec, config_hash, expand
from lrlab.study.store import StudyStore, TrialRow
from lrlab.study.track_config import Tracker


@dataclass
class RunSummary:
    """What a run did: trials already finished, run now, diverged and failed."""

    directory: Path
    skipped: int
    ran: int
    diverged: int
    failed: list[str]
    seconds: float


def provenance() -> dict[str, str]:
    """lrlab and torch versions, and lrlab's git commit when it runs from its own checkout."""
    return {
        "lrlab_version": __version__,
        "git_commit": _lrlab_commit() or "unknown",
        "torch_version": torch.__version__,
    }


def _lrlab_commit() -> str:
    """``<sha>`` or ``<sha>+dirty`` for an lrlab checkout; "" for an installed copy.

    An installed lrlab can sit inside the user's own repository (a venv in the project);
    that repository's commit says nothing about lrlab, so only a checkout whose top level
    holds lrlab's sources counts.
    """
    root = Path(__file__).resolve().parents[3]  # <root>/src/lrlab/study/runner.py

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    if not (root / "src" / "lrlab" / "__init__.py").is_file():
        return ""
    top = git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root:
        return ""
    sha = git("rev-parse", "HEAD") or ""
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return sha + ("+dirty" if sha and dirty else "")


def run_study(
    study: StudyConfig,
    directory: str | Path,
    *,
    preset: str | None = None,
    executor: Executor | None = None,
    on_event: Callable[[Event], None] | None = None,
    checkpoint_root: str | Path | None = None,
    tracker: Tracker | None = None,
) -> RunSummary:
    """Run every unfinished trial of ``study``, storing results in ``directory/study.db``.

    Finished trials are skipped and unfinished ones resume from their last checkpoint.
    ``checkpoint_root`` puts the per-trial checkpoints elsewhere (a path every node of a
    cluster can reach); by default they live in ``directory/checkpoints``.
    A directory that already holds a study is extended when the new configuration only
    adds trials (new arms or seeds, every stored trial unchanged); any other change is
    refused, since old and new results would mix.

    Settings that can only fail (see `lrlab.study.preflight`) are refused before
    anything runs, and one process at a time runs a study directory: a second one raises
    `lrlab.study.lock.StudyBusy` naming the first (a dead one's lock is taken over).

    ``tracker`` logs each trial to an experiment tracker as its result arrives, from this
    process; a study with a ``[track]`` table needs one
    (``lrlab.integrations.tracking.tracker_for(study.track)``, which the CLI builds).
    """
    started = time.perf_counter()
    if study.track is not None and tracker is None:
        raise ValueError(
            f"track.backend={study.track.backend!r}: the study asks for tracking but no tracker "
            "was given; pass tracker=lrlab.integrations.tracking.tracker_for(study.track)"
        )
    # Absolute paths: worker processes and cluster nodes do not share our working directory.
    root = Path(directory).resolve()
    ckpt_root = Path(checkpoint_root).resolve() if checkpoint_root else root / "checkpoints"
    preflight(study, root, ckpt_root, executor, expand(study, str(ckpt_root)))
    with StudyLock(root):
        store = StudyStore(root / "study.db")
        try:
            return _run(study, store, root, ckpt_root, preset, executor, on_event, started, tracker)
        finally:
            if tracker is not None:
                tracker.close()
            store.close()


def _run(
    study: StudyConfig,
    store: StudyStore,
    root: Path,
    ckpt_root: Path,
    preset: str | None,
    executor: Executor | None,
    on_event: Callable[[Event], None] | None,
    started: float,
    tracker: Tracker | None = None,
) -> RunSummary:
    config = study.model_dump(mode="json", exclude={"track"})  # tracking is no result
    specs = expand(study, str(ckpt_root))
    _record_config(store, root, config, preset, specs)
    finished = {t.id for t in store.trials() if t.status in ("done", "diverged")}
    todo = [s for s in specs if s.id not in finished]
    prov = provenance()

    def event(e: Event) -> None:
        if e.get("kind") == "start":
            store.mark_running(e["trial"], prov)
        elif e.get("kind") == "checkpoint_corrupt":
            store.event("checkpoint_corrupt", str(e.get("message")), e.get("trial"))
        if on_event is not None:
            on_event(e)

    if on_event is not None:
        on_event(
            {
                "kind": "plan",
                "total": len(todo),
                "skipped": len(specs) - len(todo),
                "trials": [s.id for s in todo],
            }
        )
    _set_aside_unreadable_checkpoints(todo, event)
    if tracker is not None:
        tracker.open(study, root, prov)
    results = (executor or LocalExecutor()).run(todo, event)
    ran, diverged, failed = _record_results(results, todo, store, tracker, event, on_event)
    return RunSummary(
        root, len(specs) - len(todo), ran, diverged, failed, time.perf_counter() - started
    )


def _record_config(
    store: StudyStore,
    root: Path,
    config: dict[str, Any],
    preset: str | None,
    specs: list[TrialSpec],
) -> None:
    """Store the study's config and its trials (pending), or a ValueError when ``root``
    holds trials of a different configuration."""
    digest = config_hash(config)
    old = store.meta("config_hash")
    if old is not None and old != digest:
        wanted = {s.id: s.config_hash for s in specs}
        changed = [t.id for t in store.trials() if wanted.get(t.id) != t.config_hash]
        if changed:
            raise ValueError(
                f"{root} holds results of a different configuration of study "
                f"{(store.meta('config') or {}).get('name', '?')!r} ({len(changed)} trial(s) "
                f"differ, e.g. {changed[0]!r}); use another --dir or --restart"
            )
    store.set_meta("config", config)
    store.set_meta("config_hash", digest)
    store.set_meta("preset", preset)
    store.add_trials(
        [TrialRow(s.id, s.arm, s.seed, s.config_hash, s.config, "pending") for s in specs]
    )


def _record_results(
    results: Iterable[dict[str, Any]],
    todo: list[TrialSpec],
    store: StudyStore,
    tracker: Tracker | None,
    event: Callable[[Event], None],
    on_event: Callable[[Event], None] | None,
) -> tuple[int, int, list[str]]:
    """Store (and track) each result as it comes; ``(ran, diverged, failed)``: the trials
    newly finished, how many diverged, and ``"id: error"`` for each that failed."""
    by_id = {s.id: s for s in todo}
    ran = diverged = 0
    failed: list[str] = []
    for result in results:
        if tracker is not None:  # before the store: a driver killed in between logs it again
            _track(tracker, by_id[result["id"]], result, store, event)
        if not store.finish(result):  # the trial was already finished: nothing to count
            continue
        ran += 1
        if result["status"] == "failed":
            failed.append(f"{result['id']}: {result.get('error', '')}")
            continue
        diverged += result["status"] == "diverged"
        Checkpoint(by_id[result["id"]].checkpoint_dir).remove()
        if on_event is not None:
            on_event(
                {
                    "kind": "done",
                    "trial": result["id"],
                    "status": result["status"],
                    "final": result.get("final", {}),
                    "metric": _primary(result),
                }
            )
    return ran, diverged, failed


def _track(
    tracker: Tracker,
    spec: TrialSpec,
    result: dict[str, Any],
    store: StudyStore,
    event: Callable[[Event], None],
) -> None:
    """Log one result; a tracker that fails costs the trial's tracking, never its result."""
    try:
        tracker.trial(spec, result)
    except Exception as e:  # a locked database, a full disk, a server gone away
        message = f"tracking failed: {type(e).__name__}: {e}".splitlines()[0]
        store.event("tracking_failed", message, spec.id)
        event({"kind": "tracking_failed", "trial": spec.id, "message": message})


def _set_aside_unreadable_checkpoints(
    todo: list[TrialSpec], event: Callable[[Event], None]
) -> None:
    """A checkpoint that cannot be read is moved aside before its trial starts (and the
    trial starts over), instead of failing the trial on every run."""
    for spec in todo:
        note = Checkpoint(spec.checkpoint_dir).check()
        if note is not None:
            event({"kind": "checkpoint_corrupt", "trial": spec.id, "message": note})


def _primary(result: dict[str, Any]) -> str:
    """The name of the trial's headline metric (``val_top1`` for the bundled tasks)."""
    from lrlab.tasks.metrics import MetricSet

    metrics = result.get("metrics")
    return MetricSet.from_dict(metrics).primary.name if metrics else "val_top1"


def describe(summary: RunSummary) -> str:
    parts = [f"{summary.ran} trial(s) run", f"{summary.skipped} already finished"]
    if summary.diverged:
        parts.append(f"{summary.diverged} diverged")
    if summary.failed:
        parts.append(f"{len(summary.failed)} failed")
    return ", ".join(parts) + f" in {summary.seconds:.0f} s"


__all__: list[Any] = ["RunSummary", "describe", "provenance", "run_study"]
