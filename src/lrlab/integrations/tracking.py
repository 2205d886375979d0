"""Experiment tracking: each trial of a study logged to TensorBoard or MLflow.

::

    lrlab study run studies/example.toml --track mlflow     # or a [track] table
    mlflow ui --backend-store-uri sqlite:///runs/example/mlflow.db
    lrlab study run studies/example.toml --track tensorboard
    tensorboard --logdir runs/example/tensorboard

`run_study` calls the tracker from the driver process when a trial's result arrives
(workers, local or Ray, only return results), so a trial killed mid-run has logged
nothing and logs once, whole, when it finishes after its resume. A trial's run is found
again by its study directory and trial id: a driver killed after logging a trial but
before storing it logs the trial again on the next run, and the new run replaces the old
one (MLflow: the older run is deleted; TensorBoard: the trial's event files are rewritten).

What each trial's run holds (see `trial_log`):

* parameters: the trial's resolved config (``task.*``, ``optimizer.*``, ``arm.*``,
  ``seed``), the schedules it ran (``resolved.lr``, ``resolved.momentum``: spec strings
  with the update count and range-test bounds filled in), the bounds the range test found
  (``bounds.*``) and ``trial.*`` / ``study.name``;
* per update, step ``t`` = the update's index (what lrlab's schedules take): ``lr``,
  ``momentum`` and, for per-group arms, ``lr/<group>`` (`lrlab.study.trace`), exact
  (TensorBoard stores them as float64 tensors);
* per evaluation, step = updates done: every series the study store keeps (``train_loss``,
  ``val_loss``, ``val_top1``, ..., ``epoch``; per-group instrument rows) except its
  per-evaluation copies of ``lr``/``momentum``, which the per-update series cover;
* at the end: ``final/<name>`` (the store's final summary: last and best values,
  stability, updates to each target, ``updates``, ``tuning_updates``, ``seconds``).

MLflow runs are named by trial id and nested under one run per study directory (tag
``mlflow.parentRunId``, named after the study). TensorBoard writes one run directory per
trial, ``<log dir>/<experiment>/<trial id>``, with its parameters in the HParams tab.

Importing this module imports neither package; each tracker imports its own in `open`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrlab.study.track_config import TrackConfig, resolved_uri, store_of

if TYPE_CHECKING:
    from lrlab.study.config import StudyConfig
    from lrlab.study.resolve import TrialSpec
    from lrlab.study.track_config import Tracker

__all__ = ["MlflowTracker", "TensorBoardTracker", "TrialLog", "tracker_for", "trial_log"]

Param = str | int | float | bool
#: The store's per-evaluation copies of what the per-update series hold exactly.
_PER_UPDATE = ("lr", "momentum")


@dataclass
class TrialLog:
    """What one trial's run holds (one value per update in ``updates``: step = index)."""

    name: str
    key: str
    status: str
    params: dict[str, Param] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    updates: dict[str, list[float]] = field(default_factory=dict)
    evaluations: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    last_step: int = 0


def run_key(directory: Path, name: str = "") -> str:
    """The identity of a study's run (``name=""``) or of one trial's, for finding it again.

    >>> run_key(Path("/runs/s"), "1cycle@seed0") == run_key(Path("/runs/s"), "1cycle@seed0")
    True
    """
    return hashlib.sha256(f"{directory}\n{name}".encode()).hexdigest()[:16]


def _flatten(prefix: str, value: Any, out: dict[str, Param]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = json.dumps(value)
    elif value is not None:
        out[prefix] = value


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def trial_log(
    spec: TrialSpec, result: dict[str, Any], directory: Path, provenance: dict[str, str]
) -> TrialLog:
    """The parameters, series and summary a tracker logs for ``result`` (see the module).

    >>> from lrlab.study.resolve import TrialSpec
    >>> spec = TrialSpec("a@seed0", "s", "a", 0, {"seed": 0, "arm": {"lr": "one_cycle()"}},
    ...                  "abc", "/ckpt")
    >>> result = {"id": "a@seed0", "status": "done", "updates": 2, "final": {"val_top1": 0.5},
    ...     "history": [{"step": 2, "epoch": 1.0, "val_top1": 0.5, "lr": 0.1}],
    ...     "trace": {"lr": [0.1, 0.2]}}
    >>> log = trial_log(spec, result, Path("/runs/s"), {})
    >>> log.params["arm.lr"], log.updates["lr"], log.evaluations
    ('one_cycle()', [0.1, 0.2], {'epoch': [(2, 1.0)], 'val_top1': [(2, 0.5)]})
    >>> log.final
    {'val_top1': 0.5, 'updates': 2}
    """
    from lrlab.schedules import Schedule

    final = result.get("final") or {}
    params: dict[str, Param] = {}
    _flatten("", spec.config, params)
    for name, d in (final.get("schedules") or {}).items():
        if d is not None:
            params[f"resolved.{name}"] = Schedule.from_dict(d).to_spec()
    _flatten("bounds", final.get("bounds"), params)
    for key in ("iters_per_epoch", "total_updates"):
        if final.get(key) is not None:
            params[key] = final[key]
    params.update(
        {
            "trial.id": spec.id,
            "trial.arm": spec.arm,
            "trial.seed": spec.seed,
            "trial.config_hash": spec.config_hash,
            "study.name": spec.study,
        }
    )
    evaluations: dict[str, list[tuple[int, float]]] = {}
    for row in result.get("history") or []:
        for name, v in row.items():
            if name == "step" or not _number(v) or name.split("/")[0] in _PER_UPDATE:
                continue
            evaluations.setdefault(name, []).append((int(row["step"]), float(v)))
    summary: dict[str, float] = {k: float(v) for k, v in final.items() if _number(v)}
    for k in ("iters_per_epoch", "total_updates"):
        summary.pop(k, None)
    for k, v in (final.get("updates_to_target") or {}).items():
        if _number(v):
            summary[f"updates_to_target/{k}"] = float(v)
    for k in ("updates", "tuning_updates", "seconds"):
        if _number(result.get(k)):
            summary[k] = result[k]
    tags = {
        "lrlab.trial": spec.id,
        "lrlab.arm": spec.arm,
        "lrlab.status": result["status"],
        "lrlab.config_hash": spec.config_hash,
        "lrlab.study_dir": str(directory),
        **{f"lrlab.{k}": v for k, v in provenance.items()},
    }
    if result.get("error"):
        tags["lrlab.error"] = str(result["error"])[:5000]
    return TrialLog(
        name=spec.id,
        key=run_key(directory, spec.id),
        status=result["status"],
        params=params,
        tags=tags,
        updates=dict(result.get("trace") or {}),
        evaluations=evaluations,
        final=summary,
        last_step=int(result.get("updates") or 0),
    )


def tracker_for(track: TrackConfig) -> Tracker:
    """The tracker a ``[track]`` table asks for (nothing is imported or opened yet).

    >>> from lrlab.study.track_config import TrackConfig
    >>> type(tracker_for(TrackConfig(backend="tensorboard"))).__name__
    'TensorBoardTracker'
    """
    if track.backend == "tensorboard":
        return TensorBoardTracker(track)
    return MlflowTracker(track)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)


class TensorBoardTracker:
    """One TensorBoard run directory per trial: ``<uri>/<experiment>/<trial id>``."""

    def __init__(self, track: TrackConfig) -> None:
        self.track = track
        self.root: Path | None = None
        self.directory = Path()
        self.provenance: dict[str, str] = {}

    def open(self, study: StudyConfig, directory: Path, provenance: dict[str, str]) -> None:
        import torch.utils.tensorboard  # noqa: F401  (fails here, not at the first trial)

        self.directory, self.provenance = directory, provenance
        self.root = Path(resolved_uri(self.track, directory)) / _safe(
            self.track.experiment or study.name
        )
        self.root.mkdir(parents=True, exist_ok=True)

    def trial(self, spec: TrialSpec, result: dict[str, Any]) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams, scalar

        assert self.root is not None, "open() first"
        log = trial_log(spec, result, self.directory, self.provenance)
        run = self.root / _safe(log.name)
        for old in run.glob("events.out.tfevents.*"):  # a re-run replaces, never appends
            old.unlink()
        steps: dict[int, list[Any]] = {}

        def add(tag: str, step: int, value: float) -> None:
            # float64 tensors (TensorBoard's "new style" scalars): the exact values
            s = scalar(tag, value, new_style=True, double_precision=True)
            steps.setdefault(step, []).extend(s.value)

        for tag, values in log.updates.items():
            for t, v in enumerate(values):
                add(tag, t, v)
        for tag, points in log.evaluations.items():
            for step, v in points:
                add(tag, step, v)
        for tag, v in log.final.items():
            add(f"final/{tag}", log.last_step, v)
        writer = SummaryWriter(str(run), max_queue=1000, flush_secs=3600)
        try:
            files = writer.file_writer
            assert files is not None  # SummaryWriter opens it in its constructor
            for step in sorted(steps):  # one event per step holds all of its tags
                files.add_summary(Summary(value=steps[step]), step)
            hp = {**log.params, **{k: v for k, v in log.tags.items() if k != "lrlab.error"}}
            metrics = {f"final/{k}": v for k, v in log.final.items()}
            for summary in hparams(hp, metrics):
                files.add_summary(summary)
            writer.add_text("lrlab/status", log.tags.get("lrlab.error", log.status))
        finally:
            writer.close()

    def close(self) -> None:
        pass


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Hold the named loggers at WARNING (MLflow's schema migrations print a dozen lines)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class MlflowTracker:
    """One MLflow run per trial (named by trial id) under one run per study directory."""

    def __init__(self, track: TrackConfig) -> None:
        self.track = track
        self.client: Any = None
        self.experiment_id = ""
        self.parent_id: str | None = None
        self.directory = Path()
        self.provenance: dict[str, str] = {}

    def open(self, study: StudyConfig, directory: Path, provenance: dict[str, str]) -> None:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self.directory, self.provenance = directory, provenance
        uri = resolved_uri(self.track, directory)
        kind, local = store_of(self.track, uri)
        name = self.track.experiment or study.name
        try:
            with _quiet("mlflow", "alembic"):
                self.client = MlflowClient(tracking_uri=uri)
                self.experiment_id = self._experiment(name, kind, local)
            self.parent_id = self._study_run(study)
        except MlflowException as e:
            raise ValueError(_refused(uri, e)) from None

    def _experiment(self, name: str, kind: str, local: Path | None) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is None:
            # a SQL store's default artifact root is ./mlruns of whatever the working
            # directory is; keep it beside the database instead
            where = (local / "mlflow-artifacts").as_uri() if kind == "sql" and local else None
            return str(self.client.create_experiment(name, artifact_location=where))
        if found.lifecycle_stage != "active":
            raise ValueError(
                f"track.experiment={name!r} is a deleted MLflow experiment; restore it "
                "(mlflow experiments restore) or choose another name"
            )
        return str(found.experiment_id)

    def _runs(self, tag: str, value: str) -> list[Any]:
        return list(
            self.client.search_runs([self.experiment_id], filter_string=f"tags.`{tag}` = '{value}'")
        )

    def _study_run(self, study: StudyConfig) -> str:
        from mlflow.entities import RunTag

        key = run_key(self.directory)
        found = self._runs("lrlab.study_key", key)
        if found:
            run_id = str(found[0].info.run_id)
            self.client.update_run(run_id, status="RUNNING")
        else:
            run_id = str(
                self.client.create_run(
                    self.experiment_id, run_name=study.name, tags={"lrlab.study_key": key}
                ).info.run_id
            )
        tags = {
            "lrlab.role": "study",
            "lrlab.study": study.name,
            "lrlab.study_dir": str(self.directory),
            "lrlab.question": study.question[:5000],
            "lrlab.arms": json.dumps([a.name for a in study.arms]),
            "lrlab.seeds": json.dumps(study.seeds),
            "lrlab.baseline": study.baseline_arm,
            **{f"lrlab.{k}": v for k, v in self.provenance.items()},
        }
        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        return run_id

    def trial(self, spec: TrialSpec, result: dict[str, Any]) -> None:
        from mlflow.entities import Metric, Param

        log = trial_log(spec, result, self.directory, self.provenance)
        tags = {**log.tags, "lrlab.trial_key": log.key, "mlflow.parentRunId": str(self.parent_id)}
        run_id = self.client.create_run(self.experiment_id, run_name=log.name, tags=tags)
        run_id = str(run_id.info.run_id)
        now = int(time.time() * 1000)
        metrics = [
            Metric(_key(tag), v, now, t)
            for tag, vs in log.updates.items()
            for t, v in enumerate(vs)
        ]
        metrics += [
            Metric(_key(tag), v, now, s) for tag, ps in log.evaluations.items() for s, v in ps
        ]
        metrics += [Metric(_key(f"final/{k}"), v, now, log.last_step) for k, v in log.final.items()]
        params = [Param(_key(k), str(v)[:6000]) for k, v in sorted(log.params.items())]
        for batch in _batches(params, 100):  # MLflow's limits per log_batch call
            self.client.log_batch(run_id, params=batch)
        for batch in _batches(metrics, 1000):
            self.client.log_batch(run_id, metrics=batch)
        status = "FAILED" if log.status == "failed" else "FINISHED"
        self.client.set_terminated(run_id, status=status)
        for old in self._runs("lrlab.trial_key", log.key):  # a re-run replaces the earlier run
            if old.info.run_id != run_id:
                self.client.delete_run(old.info.run_id)

    def close(self) -> None:
        if self.client is not None and self.parent_id is not None:
            self.client.set_terminated(self.parent_id, status="FINISHED")
            self.parent_id = None


def _key(name: str) -> str:
    """A metric or parameter name MLflow accepts (letters, digits, ``_-. :/``)."""
    return "".join(c if c.isalnum() or c in "_-. :/" else "_" for c in name)


def _refused(uri: str, e: Exception) -> str:
    text = str(e)
    if "MLFLOW_ALLOW_FILE_STORE" in text:
        return (
            f"track.uri={uri!r}: this MLflow keeps its file store in maintenance mode and "
            "refuses it; use a SQLite store (sqlite:///path/mlflow.db, the default) or set "
            "MLFLOW_ALLOW_FILE_STORE=true"
        )
    return f"track.uri={uri!r}: MLflow cannot use it: {text.splitlines()[0] if text else e!r}"
