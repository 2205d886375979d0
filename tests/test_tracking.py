"""Experiment tracking with the real packages: what lrlab logs is read back from TensorBoard's
event files and from MLflow's store, and compared with lrlab's schedules, with the values
the optimizer really used at every update, and with the study store's series."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from lrlab.cli.main import app
from lrlab.integrations.tracking import (
    MlflowTracker,
    TensorBoardTracker,
    tracker_for,
)
from lrlab.schedules import Schedule, cyclical_momentum, one_cycle
from lrlab.study import LocalExecutor, StudyStore, parse_study, run_study
from lrlab.study import trainer as trainer_module
from lrlab.study.resolve import expand
from lrlab.study.track_config import TrackConfig

IPE = 11  # 1438 digits less 144 held out for validation, in batches of 128, the last short
EPOCHS = 2
UPDATES = IPE * EPOCHS
ARMS = {
    "1cycle": {"name": "1cycle", "lr": "one_cycle(max_lr=0.3)", "momentum": "cyclical"},
    "llr": {
        "name": "llr",
        "lr": "one_cycle(max_lr=0.3)",
        "momentum": "cyclical",
        "layerwise": {"policy": "interpolate", "first": 0.1, "last": 1.0},
    },
    # automatic layer-wise rates: multipliers follow the gradients, known only during the run
    "auto": {
        "name": "auto",
        "lr": "one_cycle(max_lr=0.3)",
        "layerwise": {"policy": "auto", "warmup": 2},
    },
    # PyTorch's own OneCycleLR sets LR and momentum: recorded as they happen too
    "torch": {
        "name": "torch",
        "lr": "one_cycle_torch(max_lr=0.3)",
        "torch_scheduler": "OneCycleLR",
    },
}


def _study(*arms: str, name: str = "tiny", track: dict[str, Any] | None = None) -> Any:
    data: dict[str, Any] = {
        "name": name,
        "seeds": [0],
        "task": {"data": "digits", "model": "mlp", "batch_size": 128, "epochs": EPOCHS},
        "arms": [ARMS[a] for a in arms],
    }
    if track is not None:
        data["track"] = track
    return parse_study(data)


@pytest.fixture
def observed(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[float]]]:
    """Each trial's param-group LRs and momenta as its optimizer read them, every update."""
    seen: dict[str, list[list[float]]] = {}
    build = trainer_module.build_trial

    def spy(spec: Any, *args: Any) -> Any:
        t = build(spec, *args)
        rows = seen.setdefault(spec.id, [])

        def before(opt: Any, *_: Any) -> None:
            rows.append([g[k] for g in opt.param_groups for k in ("lr", "momentum")])

        t.optimizer.register_step_pre_hook(before)
        return t

    monkeypatch.setattr(trainer_module, "build_trial", spy)
    return seen


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module: creating MLflow's schema takes seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def _tensors(run: Path) -> dict[str, list[tuple[int, float]]]:
    acc = event_accumulator.EventAccumulator(str(run), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return {
        tag: [(e.step, tensor_util.make_ndarray(e.tensor_proto).item()) for e in acc.Tensors(tag)]
        for tag in acc.Tags()["tensors"]
        if not tag.endswith("text_summary")
    }


def _hparams(run: Path) -> dict[str, Any]:
    acc = event_accumulator.EventAccumulator(str(run))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {
        k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
        for k, v in info.hparams.items()
    }


def _store_series(directory: Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    store = StudyStore(directory / "study.db")
    out = {}
    for t in store.trials():
        out[t.id] = {}
        for name in store.metric_names(t.id):
            steps, _, values = store.series(t.id, name)
            out[t.id][name] = list(zip(steps, values))
    store.close()
    return out


def _same(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> bool:
    """Equal step for step and value for value (NaN equals NaN: an empty training window)."""
    return len(a) == len(b) and all(
        sa == sb and (va == vb or (math.isnan(va) and math.isnan(vb)))
        for (sa, va), (sb, vb) in zip(a, b)
    )


# ----------------------------------------------------------------------------- TensorBoard
def test_tensorboard_holds_every_update_exactly_and_the_store_series(
    tmp_path: Path, observed: dict[str, list[list[float]]]
) -> None:
    study = _study("1cycle", "llr", "torch")
    logdir = tmp_path / "tb"
    track = TrackConfig(backend="tensorboard", uri=str(logdir))
    summary = run_study(study, tmp_path / "s", tracker=tracker_for(track))
    assert (summary.ran, summary.failed) == (3, [])
    runs = sorted(p.name for p in (logdir / "tiny").iterdir())
    assert runs == ["1cycle@seed0", "llr@seed0", "torch@seed0"]
    series = _store_series(tmp_path / "s")

    lr = one_cycle(max_lr=0.3, total=UPDATES)  # what the arm asks for, built here by hand
    momentum = cyclical_momentum(lr)
    got = _tensors(logdir / "tiny" / "1cycle@seed0")
    assert got["lr"] == [(t, lr(t)) for t in range(UPDATES)]
    assert got["momentum"] == [(t, momentum(t)) for t in range(UPDATES)]
    # ... and what the optimizer really used, update for update
    assert [v for _, v in got["lr"]] == [row[0] for row in observed["1cycle@seed0"]]
    assert [v for _, v in got["momentum"]] == [row[1] for row in observed["1cycle@seed0"]]
    for name in ("train_loss", "val_loss", "val_top1", "val_top5"):
        assert _same(got[name], series["1cycle@seed0"][name]), name
    assert [s for s, _ in got["val_top1"]] == [IPE, UPDATES]
    assert got["epoch"] == [(IPE, 1.0), (UPDATES, 2.0)]
    assert "lr" in series["1cycle@seed0"]  # the store's per-evaluation copy is not logged again
    store = StudyStore(tmp_path / "s" / "study.db")
    final = {t.id: t.final for t in store.trials()}
    store.close()
    assert got["final/val_top1"] == [(UPDATES, final["1cycle@seed0"]["val_top1"])]

    # the layer-wise arm: one series per param group, what each group's optimizer used
    got = _tensors(logdir / "tiny" / "llr@seed0")
    groups = sorted(k for k in got if k.startswith("lr/"))
    assert groups == [
        "lr/linear1",
        "lr/linear1.no_decay",
        "lr/linear2",
        "lr/linear2.no_decay",
        "lr/linear3",
        "lr/linear3.no_decay",
    ]
    rows = observed["llr@seed0"]
    order = ["linear1", "linear1.no_decay", "linear2", "linear2.no_decay", "linear3"]
    order.append("linear3.no_decay")
    for i, name in enumerate(order):
        assert got[f"lr/{name}"] == [(t, rows[t][2 * i]) for t in range(UPDATES)], name
    assert got["lr/linear1"][5][1] == pytest.approx(0.1 * lr(5), rel=1e-12)  # first = 0.1
    assert got["lr/linear3"][5][1] == pytest.approx(lr(5), rel=1e-12)  # last = 1.0
    for name in ("val_top1", "effective_lr/linear2", "update_ratio/linear2"):
        assert _same(got[name], series["llr@seed0"][name]), name
    # once a step, also where an evaluation and an instrument row (from update 0) share it
    assert got["epoch"] == [(0, 0.0), (IPE, 1.0), (UPDATES, 2.0)]

    got = _tensors(logdir / "tiny" / "torch@seed0")
    rows = observed["torch@seed0"]
    assert got["lr"] == [(t, row[0]) for t, row in enumerate(rows)] and len(rows) == UPDATES
    assert got["momentum"] == [(t, row[1]) for t, row in enumerate(rows)]
    assert got["lr"][0][1] == pytest.approx(0.3 / 25) and got["momentum"][0][1] == 0.95

    hp = _hparams(logdir / "tiny" / "llr@seed0")
    assert hp["resolved.lr"] == Schedule.from_dict(final["llr@seed0"]["schedules"]["lr"]).to_spec()
    assert hp["resolved.lr"].startswith(f"one_cycle(max_lr=0.3, total={UPDATES}")
    assert (hp["arm.layerwise.policy"], hp["optimizer.name"], hp["trial.id"]) == (
        "interpolate",
        "sgd",
        "llr@seed0",
    )


def test_a_re_run_replaces_a_trial_s_event_files(tmp_path: Path) -> None:
    """A driver killed after logging a trial logs it again: the run is rewritten, not doubled."""
    study = _study("1cycle")
    track = TrackConfig(backend="tensorboard", uri=str(tmp_path / "tb"))
    run_study(study, tmp_path / "a", tracker=tracker_for(track))
    run = tmp_path / "tb" / "tiny" / "1cycle@seed0"
    first = _tensors(run)
    spec = expand(study, str(tmp_path / "ckpt"))[0]
    store = StudyStore(tmp_path / "a" / "study.db")
    trial = store.trials()[0]
    store.close()
    result = {"id": spec.id, "status": "done", "final": trial.final, "updates": trial.updates}
    result["trace"] = {"lr": [v for _, v in first["lr"]]}
    again = TensorBoardTracker(track)
    again.open(study, (tmp_path / "a").resolve(), {})
    again.trial(spec, result)
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert _tensors(run)["lr"] == first["lr"]


def test_the_python_api_logs_a_study_through_the_tracker_it_is_given(tmp_path: Path) -> None:
    import lrlab.study

    study = _study("1cycle", track={"backend": "tensorboard", "uri": str(tmp_path / "tb")})
    assert study.track is not None
    summary = lrlab.study.run(study, tmp_path / "a", tracker=tracker_for(study.track))
    assert (summary.ran, summary.failed) == (1, [])
    lr = _tensors(tmp_path / "tb" / "tiny" / "1cycle@seed0")["lr"]
    store = StudyStore(tmp_path / "a" / "study.db")
    updates = store.trials()[0].updates
    store.close()
    assert [step for step, _ in lr] == list(range(updates))


@pytest.mark.slow
def test_with_worker_processes_only_the_driver_writes_to_the_tracker(tmp_path: Path) -> None:
    """Workers return results; the event files are written by this process (their names
    carry the writer's process id) and hold what a single-process run logs."""
    study = _study("1cycle", "llr")
    logdir = tmp_path / "tb"
    track = TrackConfig(backend="tensorboard", uri=str(logdir))
    summary = run_study(
        study, tmp_path / "s", executor=LocalExecutor(2), tracker=tracker_for(track)
    )
    assert (summary.ran, summary.failed) == (2, [])
    files = sorted(logdir.glob("tiny/*/events.out.tfevents.*"))
    assert len(files) == 2
    assert {f.name.split(".")[-2] for f in files} == {str(os.getpid())}
    lr = one_cycle(max_lr=0.3, total=UPDATES)
    for f in files:
        assert _tensors(f.parent)["lr"] == [(t, lr(t)) for t in range(UPDATES)]


# ----------------------------------------------------------------------------- MLflow
def _runs(db: str, experiment: str) -> tuple[MlflowClient, dict[str, Any]]:
    client = MlflowClient(tracking_uri=db)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    return client, {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}


def _history(client: MlflowClient, run: Any, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))


def test_mlflow_runs_per_trial_nested_under_the_study_with_params_and_histories(
    tmp_path: Path, mlflow_db: str, observed: dict[str, list[list[float]]]
) -> None:
    study = _study("1cycle", "auto")
    track = TrackConfig(backend="mlflow", uri=mlflow_db, experiment="nested")
    directory = tmp_path / "s"
    run_study(study, directory, tracker=tracker_for(track))
    client, runs = _runs(mlflow_db, "nested")
    assert sorted(runs) == ["1cycle@seed0", "auto@seed0", "tiny"]  # run names = trial ids
    parent = runs["tiny"]
    assert parent.data.tags["lrlab.role"] == "study" and parent.info.status == "FINISHED"
    assert parent.data.tags["lrlab.study_dir"] == str(directory.resolve())
    series = _store_series(directory)
    store = StudyStore(directory / "study.db")
    stored = {t.id: t for t in store.trials()}
    store.close()
    for tid in ("1cycle@seed0", "auto@seed0"):
        run = runs[tid]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert (run.info.status, run.data.tags["lrlab.status"]) == ("FINISHED", "done")
        params = run.data.params
        assert params["trial.seed"] == "0" and params["optimizer.name"] == "sgd"
        assert params["trial.config_hash"] == stored[tid].config_hash
        lr = Schedule.from_dict(stored[tid].final["schedules"]["lr"])
        assert params["resolved.lr"] == lr.to_spec()
        assert _history(client, run, "lr") == [(t, lr(t)) for t in range(UPDATES)]
        for name in ("val_top1", "val_loss", "train_loss"):
            assert _same(_history(client, run, name), series[tid][name]), (tid, name)
        assert _history(client, run, "final/val_top1") == [(UPDATES, stored[tid].final["val_top1"])]
    assert runs["auto@seed0"].data.params["arm.layerwise.policy"] == "auto"
    # automatic layer-wise LRs are recorded as they happen: what the optimizer used
    rows = observed["auto@seed0"]
    got = _history(client, runs["auto@seed0"], "lr/linear2")
    assert got == [(t, rows[t][4]) for t in range(UPDATES)]
    glob = one_cycle(max_lr=0.3, total=UPDATES)
    assert {round(v / glob(t), 9) for t, v in got} != {1.0}  # the multiplier moved


def test_a_failed_trial_is_a_failed_run_with_its_error(tmp_path: Path, mlflow_db: str) -> None:
    study = _study("1cycle")
    spec = expand(study, str(tmp_path / "ckpt"))[0]
    tracker = MlflowTracker(TrackConfig(backend="mlflow", uri=mlflow_db, experiment="failed"))
    tracker.open(study, tmp_path, {"lrlab_version": "0.1.0"})
    result = {"id": spec.id, "status": "failed", "error": "RuntimeError: out of memory"}
    tracker.trial(spec, {**result, "final": {}, "history": []})
    tracker.close()
    _, runs = _runs(mlflow_db, "failed")
    run = runs["1cycle@seed0"]
    assert run.info.status == "FAILED"
    assert run.data.tags["lrlab.error"] == "RuntimeError: out of memory"
    assert run.data.tags["lrlab.lrlab_version"] == "0.1.0"
    assert run.data.params["arm.lr"] == "one_cycle(max_lr=0.3)" and not run.data.metrics


@pytest.mark.slow
def test_a_driver_killed_after_logging_leaves_one_run_per_trial(
    tmp_path: Path, mlflow_db: str
) -> None:
    """SIGKILL of the driver between the tracker and the store: the next run logs the trial
    again (its checkpoint is still there) and replaces the first run, which is deleted."""
    directory = tmp_path / "s"
    script = f"""
import os, signal
from lrlab.integrations.tracking import MlflowTracker
from lrlab.study import parse_study, run_study
from lrlab.study.track_config import TrackConfig

class KilledAfterLogging(MlflowTracker):
    def trial(self, spec, result):
        super().trial(spec, result)
        os.kill(os.getpid(), signal.SIGKILL)

study = parse_study({_study("1cycle").model_dump(mode="json")!r})
track = TrackConfig(backend="mlflow", uri={mlflow_db!r}, experiment="killed")
run_study(study, {str(directory)!r}, tracker=KilledAfterLogging(track))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    store = StudyStore(directory / "study.db")
    assert [t.status for t in store.trials()] == ["running"]  # logged, never stored
    store.close()
    client, runs = _runs(mlflow_db, "killed")
    first = runs["1cycle@seed0"]

    track = TrackConfig(backend="mlflow", uri=mlflow_db, experiment="killed")
    summary = run_study(_study("1cycle"), directory, tracker=tracker_for(track))
    assert summary.ran == 1
    client, runs = _runs(mlflow_db, "killed")
    assert sorted(runs) == ["1cycle@seed0", "tiny"]  # one study run, one run per trial
    second = runs["1cycle@seed0"]
    assert second.info.run_id != first.info.run_id
    assert client.get_run(first.info.run_id).info.lifecycle_stage == "deleted"
    assert _history(client, second, "lr") == _history(client, first, "lr")
    assert len(_history(client, second, "lr")) == UPDATES  # no update logged twice
    assert runs["tiny"].info.status == "FINISHED"


def test_a_resumed_trial_keeps_its_whole_recorded_curve(tmp_path: Path) -> None:
    """Killed after its first epoch, an automatic-LLR trial resumes with the values it had
    recorded (they are in its checkpoint) and returns the same trace, bit for bit."""
    study = _study("auto")
    whole = trainer_module.run_trial(expand(study, str(tmp_path / "a"))[0])
    spec = expand(study, str(tmp_path / "b"))[0]

    class Killed(Exception):
        pass

    def stop_after_one_epoch(e: dict[str, Any]) -> None:
        if e.get("kind") == "epoch":  # sent after the epoch's checkpoint was written
            raise Killed

    with pytest.raises(Killed):
        trainer_module.run_trial(spec, stop_after_one_epoch)
    resumed = trainer_module.run_trial(spec)
    assert resumed["trace"] == whole["trace"]
    assert set(whole["trace"]) == {"lr", *(f"lr/{g}" for g in _groups())}
    assert all(len(v) == UPDATES for v in whole["trace"].values())


def _groups() -> list[str]:
    names = ["linear1", "linear2", "linear3"]
    return [n + s for n in names for s in ("", ".no_decay")]


# ----------------------------------------------------------------------------- CLI and config
STUDY_FILE = """
name = "cli"
seeds = [0]
[task]
data = "digits"
model = "mlp"
batch_size = 128
epochs = 1
[[arms]]
name = "1cycle"
lr = "one_cycle(max_lr=0.3)"
momentum = "cyclical"
"""


def _invoke(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.stdout + result.stderr


def test_cli_track_mlflow_with_uri_and_experiment(tmp_path: Path, mlflow_db: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(STUDY_FILE + '[track]\nbackend = "tensorboard"\n')
    args = ["study", "run", str(path), "--dir", str(tmp_path / "d"), "-q", "--no-report"]
    code, out = _invoke([*args, "--track", "mlflow", "--track-uri", mlflow_db])
    assert code == 0, out
    client, runs = _runs(mlflow_db, "cli")  # the experiment defaults to the study's name
    assert sorted(runs) == ["1cycle@seed0", "cli"]
    assert len(_history(client, runs["1cycle@seed0"], "lr")) == IPE
    assert not (tmp_path / "d" / "tensorboard").exists()  # the flag replaced the file's backend

    # the file's [track] table alone: TensorBoard in the study directory
    code, out = _invoke([*args, "--restart"])
    assert code == 0, out
    assert (tmp_path / "d" / "tensorboard" / "cli" / "1cycle@seed0").is_dir()
    # --track none turns the file's table off; tracking is no part of the study's identity
    code, out = _invoke([*args, "--restart", "--track", "none"])
    assert code == 0 and not (tmp_path / "d" / "tensorboard").exists(), out


@pytest.mark.parametrize(
    ("flags", "missing"),
    [
        (["--track", "mlflow"], "mlflow"),
        (["--track", "tensorboard"], "tensorboard"),
        (["--track", "mlflow"], "sqlalchemy"),  # MLflow's SQLite store, beside mlflow-skinny
    ],
)
def test_a_missing_package_is_named_before_any_trial_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str], missing: str
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == missing else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    path = tmp_path / "s.toml"
    path.write_text(STUDY_FILE)
    code, out = _invoke(["study", "run", str(path), "--dir", str(tmp_path / "d"), *flags])
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, out
    assert lines[0].startswith("error: track.backend=") and repr(missing) in lines[0]
    assert lines[0].endswith('pip install "lrlab[track]"')
    assert not (tmp_path / "d" / "study.db").exists()  # refused before the study started


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--track", "wandb"], ("--track='wandb'", "tensorboard, mlflow or none")),
        (["--track-uri", "x.db"], ("--track-uri", "need a backend")),
        (["--track", "mlflow", "--track-uri", "sqlite://"], ("in-memory",)),
        (["--track", "mlflow", "--track-uri", "s3://bucket"], ("track.uri='s3://bucket'",)),
    ],
)
def test_bad_tracking_flags_are_one_line(tmp_path: Path, flags: list[str], words: tuple) -> None:
    path = tmp_path / "s.toml"
    path.write_text(STUDY_FILE)
    code, out = _invoke(["study", "run", str(path), "--dir", str(tmp_path / "d"), *flags])
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), out
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_a_bad_track_table_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(STUDY_FILE + '[track]\nbackend = "wandb"\n')
    code, out = _invoke(["study", "run", str(path), "--dir", str(tmp_path / "d")])
    assert code == 2 and "track.backend" in out and "'tensorboard'" in out, out


@pytest.fixture
def no_file_store_opt_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    yield


def test_mlflow_file_store_needs_mlflow_s_opt_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_file_store_opt_in: None
) -> None:
    from mlflow import environment_variables

    path = tmp_path / "s.toml"
    path.write_text(STUDY_FILE)
    store = tmp_path / "mlruns"
    args = ["study", "run", str(path), "--dir", str(tmp_path / "d"), "-q", "--no-report"]
    args += ["--track", "mlflow", "--track-uri", str(store)]
    if hasattr(environment_variables, "MLFLOW_ALLOW_FILE_STORE"):  # MLflow 3.x
        code, out = _invoke(args)
        assert code == 2 and "MLFLOW_ALLOW_FILE_STORE=true" in out and "sqlite:///" in out, out
        assert not (tmp_path / "d" / "checkpoints").exists() or not any(
            (tmp_path / "d" / "checkpoints").iterdir()
        )
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    code, out = _invoke(args)
    assert code == 0, out
    client, runs = _runs(str(store), "cli")
    assert sorted(runs) == ["1cycle@seed0", "cli"]
    assert len(_history(client, runs["1cycle@seed0"], "momentum")) == IPE


# ----------------------------------------------------------------------------- the driver's side
class _Broken:
    def open(self, *args: Any) -> None:
        pass

    def trial(self, spec: Any, result: dict[str, Any]) -> None:
        raise RuntimeError("database is locked")

    def close(self) -> None:
        pass


def test_a_failing_tracker_costs_the_tracking_never_the_result(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    summary = run_study(_study("1cycle"), tmp_path / "s", tracker=_Broken(), on_event=events.append)
    assert (summary.ran, summary.failed) == (1, [])
    failed = [e for e in events if e["kind"] == "tracking_failed"]
    assert [e["message"] for e in failed] == ["tracking failed: RuntimeError: database is locked"]
    store = StudyStore(tmp_path / "s" / "study.db")
    assert [t.status for t in store.trials()] == ["done"]
    assert "tracking_failed" in [e[2] for e in store.events("1cycle@seed0")]
    store.close()


def test_a_track_table_without_a_tracker_is_refused(tmp_path: Path) -> None:
    study = _study("1cycle", track={"backend": "mlflow"})
    with pytest.raises(ValueError, match=r"track.backend='mlflow'.*tracker_for"):
        run_study(study, tmp_path / "s")


def test_tracking_is_no_part_of_the_study_s_identity(tmp_path: Path) -> None:
    run_study(_study("1cycle"), tmp_path / "s")
    study = _study("1cycle", track={"backend": "tensorboard"})
    again = run_study(study, tmp_path / "s", tracker=tracker_for(study.track))
    assert (again.ran, again.skipped) == (0, 1)


@pytest.mark.slow
def test_importing_the_trackers_imports_no_tracking_package() -> None:
    code = (
        "import sys, lrlab.integrations.tracking as t; t.tracker_for; "
        "print(sorted(m for m in ('mlflow', 'tensorboard') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
    assert MlflowTracker.__module__ == "lrlab.integrations.tracking"
