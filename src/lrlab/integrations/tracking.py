"""Experiment tracking: each trial of a study logged to TensorBoard or MLflow.

::

    lrlab study run studies/example.toml --track mlflow     # or a [track] table
    mlflow ui --backend-store-uri sqlite:///runs/example/mlflow.db   # the full mlflow
    lrlab study run studies/example.toml --track tensorboard
    tensorboard --logdir runs/example/tensorboard

`run_study` calls the tracker from the driver process when a trial's result arrives
(workers, local or Ray, only return results), so a trial killed mid-run has logged
nothing and logs once, whole, when it finishes after its resume. A trial's run is found
again by its study directory and trial id: a driver killed after logging a trial but
before storing it logs the trial again on the next run, and the new run replaces the old
one (MLflow: the older run is deleted; TensorBoard: the trial's event files are rewritten).

What each trial's run holds (`lrlab.integrations._trial_log`):

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

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrlab.integrations._trial_log import TrialLog, run_key, trial_log
from lrlab.study.track_config import TrackConfig, resolved_uri, store_of

if TYPE_CHECKING:
    from lrlab.study.config import StudyConfig
    from lrlab.study.resolve import TrialSpec
    from lrlab.study.track_config import Tracker

__all__ = ["MlflowTracker", "TensorBoardTracker", "TrialLog", "tracker_for", "trial_log"]


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
        from torch.utils.tensorboard.summary import hparams

        assert self.root is not None, "open() first"
        log = trial_log(spec, result, self.directory, self.provenance)
        run = self.root / _safe(log.name)
        for old in run.glob("events.out.tfevents.*"):  # a re-run replaces, never appends
            old.unlink()
        steps = _scalars_by_step(log)
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


def _scalars_by_step(log: TrialLog) -> dict[int, list[Any]]:
    """Every series of ``log`` as TensorBoard summary values, grouped by step.

    Values are float64 tensors with the scalars plugin's metadata (TensorBoard's "new
    style" scalars, what ``SummaryWriter.add_scalar(..., new_style=True,
    double_precision=True)`` writes), so they read back exactly; the metadata goes with a
    tag's first value only, as TensorFlow's writers do, since the event files' checksums
    are computed in Python and cost time per byte.
    """
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.types_pb2 import DT_DOUBLE

    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    steps: dict[int, list[Any]] = {}

    def add(tag: str, points: list[tuple[int, float]]) -> None:
        for i, (step, v) in enumerate(points):
            tensor = TensorProto(dtype=DT_DOUBLE, double_val=[v])
            value = Summary.Value(tag=tag, tensor=tensor, metadata=None if i else meta)
            steps.setdefault(step, []).append(value)

    for tag, values in log.updates.items():
        add(tag, list(enumerate(values)))
    for tag, points in log.evaluations.items():
        add(tag, points)
    for tag, v in log.final.items():
        add(f"final/{tag}", [(log.last_step, v)])
    return steps


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
        run = self.client.create_run(self.experiment_id, run_name=log.name, tags=tags)
        run_id = str(run.info.run_id)
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
