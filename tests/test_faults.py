"""Faults a study must survive: corrupt stores and checkpoints, two runs on one directory,
SIGKILL while a checkpoint is written, a late failure, user text that looks like markup."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from lrlab.cli.main import app
from lrlab.study import StudyStore, TrialRow, expand, load_study, parse_study, run_study
from lrlab.study.checkpoint import Checkpoint
from lrlab.study.lock import StudyBusy, StudyLock

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def _tiny(epochs: int = 2, seeds: tuple[int, ...] = (0,), **arm: Any) -> dict[str, Any]:
    return {
        "name": "tiny",
        "seeds": list(seeds),
        "task": {
            "data": "mnist1d",
            "model": "mlp",
            "epochs": epochs,
            "batch_size": 50,
            "train_subset": 200,
        },
        "arms": [{"name": "c", "lr": "one_cycle(max_lr=0.2)", "momentum": "cyclical", **arm}],
    }


def _toml(path: Path, epochs: int = 2, seeds: str = "[0]", arm_name: str = "c") -> Path:
    path.write_text(
        f'name = "tiny"\nseeds = {seeds}\n[task]\ndata = "mnist1d"\nmodel = "mlp"\n'
        f"epochs = {epochs}\nbatch_size = 50\ntrain_subset = 200\n"
        f'[[arms]]\nname = "{arm_name}"\nlr = "one_cycle(max_lr=0.2)"\nmomentum = "cyclical"\n',
        encoding="utf-8",
    )
    return path


def _results(directory: Path) -> dict[str, Any]:
    store = StudyStore(directory / "study.db", read_only=True)
    out = {}
    for t in store.trials():
        series = {n: store.series(t.id, n) for n in store.metric_names(t.id)}
        final = {k: v for k, v in t.final.items() if k != "seconds"}
        out[t.id] = (t.status, final, series)
    store.close()
    return out


def _events(directory: Path, kind: str | None = None) -> list[tuple[Any, ...]]:
    store = StudyStore(directory / "study.db", read_only=True)
    rows = [e for e in store.events() if kind is None or e[2] == kind]
    store.close()
    return rows


# ----------------------------------------------------------------------------- stores
def test_report_and_findings_never_write_into_the_store(tmp_path: Path) -> None:
    run_study(parse_study(_tiny(epochs=1)), tmp_path / "s")
    db = tmp_path / "s" / "study.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    runner = CliRunner()
    assert runner.invoke(app, ["report", str(tmp_path / "s")]).exit_code == 0
    assert (tmp_path / "s" / "report.html").is_file()
    out = tmp_path / "f.md"
    assert runner.invoke(app, ["findings", str(tmp_path / "s"), "-o", str(out)]).exit_code == 0
    assert out.is_file()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    empty = tmp_path / "e"
    empty.mkdir()
    (empty / "study.db").write_bytes(b"")
    assert runner.invoke(app, ["report", str(empty)]).exit_code == 2
    assert (empty / "study.db").stat().st_size == 0  # lrlab's tables were not written into it


def test_a_late_failure_cannot_erase_a_finished_trial(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "study.db")
    store.add_trials([TrialRow("a@seed0", "a", 0, "h", {}, "pending")])
    history = [{"step": s, "epoch": s / 10, "val_top1": s / 100} for s in (10, 20, 30)]
    assert store.finish({"id": "a@seed0", "status": "done", "history": history, "final": {}})
    late = {"id": "a@seed0", "status": "failed", "error": "boom", "history": [], "final": {}}
    assert store.finish(late) is False
    store.mark_running("a@seed0", {"lrlab_version": "x"})
    (trial,) = store.trials()
    assert trial.status == "done" and trial.error is None
    assert store.series("a@seed0", "val_top1") == ([10, 20, 30], [1.0, 2.0, 3.0], [0.1, 0.2, 0.3])
    assert [e[2] for e in store.events("a@seed0")] == ["done", "ignored", "ignored"]
    store.close()


# ----------------------------------------------------------------------------- checkpoints
class _Stop(Exception):
    pass


def _checkpoint_after_one_epoch(study: Any, root: Path) -> Path:
    """Run the study's trial for one epoch and stop it: its last.pt is on disk."""
    from lrlab.study.trainer import run_trial

    spec = expand(study, str(root.resolve() / "checkpoints"))[0]

    def stop(e: dict[str, Any]) -> None:
        if e.get("kind") == "epoch":
            raise _Stop

    with pytest.raises(_Stop):
        run_trial(spec, stop)
    path = Path(spec.checkpoint_dir) / "last.pt"
    assert Checkpoint(spec.checkpoint_dir).load() is not None
    return path


@pytest.mark.parametrize("damage", ["cut-at-a-quarter", "cut-at-a-half", "random-bytes"])
def test_a_corrupt_checkpoint_is_kept_aside_and_the_trial_restarts(
    damage: str, tmp_path: Path
) -> None:
    study = parse_study(_tiny(epochs=2))
    root = tmp_path / "s"
    ckpt = _checkpoint_after_one_epoch(study, root)
    raw = ckpt.read_bytes()
    cut = {"cut-at-a-quarter": len(raw) // 4, "cut-at-a-half": len(raw) // 2}.get(damage)
    bad = raw[:cut] if cut is not None else random.Random(0).randbytes(4096)
    ckpt.write_bytes(bad)
    with pytest.raises(
        Exception, match=r"PytorchStreamReader|pop from empty|Invalid arg|Weights only"
    ):
        torch.load(ckpt, weights_only=True)  # what a trial died of, run after run

    events: list[dict[str, Any]] = []
    summary = run_study(study, root, on_event=events.append)
    assert summary.failed == [] and summary.ran == 1
    (note,) = [e for e in events if e["kind"] == "checkpoint_corrupt"]
    kept = list(ckpt.parent.glob("last.pt.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == bad  # moved aside, not deleted
    assert str(ckpt) in note["message"] and kept[0].name in note["message"]
    assert "restarts from its beginning" in note["message"]
    (stored,) = _events(root, "checkpoint_corrupt")
    assert stored[1] == note["trial"] == "c@seed0" and stored[3] == note["message"]
    run_study(study, tmp_path / "clean")
    assert _results(root) == _results(tmp_path / "clean")  # a full run from the beginning


def test_the_trainer_itself_never_fails_on_a_corrupt_checkpoint(tmp_path: Path) -> None:
    """The trial's own load sets an unreadable file aside too (a search trial, a checkpoint
    damaged after the run checked it)."""
    from lrlab.study.trainer import run_trial

    study = parse_study(_tiny(epochs=2))
    ckpt = _checkpoint_after_one_epoch(study, tmp_path / "s")
    ckpt.write_bytes(b"\x00" * 100)
    spec = expand(study, str((tmp_path / "s").resolve() / "checkpoints"))[0]
    resumed = run_trial(spec)
    clean = run_trial(expand(study, str(tmp_path / "other"))[0])
    assert resumed["status"] == "done" and resumed["history"] == clean["history"]
    assert len(list(ckpt.parent.glob("last.pt.corrupt-*"))) == 1
    seen: list[dict[str, Any]] = []
    ckpt.write_bytes(b"garbage")
    assert Checkpoint(ckpt.parent).load(seen.append, "t@seed0") is None
    assert seen[0]["kind"] == "checkpoint_corrupt" and seen[0]["trial"] == "t@seed0"


def test_a_corrupt_checkpoint_is_named_on_the_console_even_with_quiet(tmp_path: Path) -> None:
    study_file = _toml(tmp_path / "s.toml")
    study = parse_study(_tiny(epochs=2))
    ckpt = _checkpoint_after_one_epoch(study, tmp_path / "out")
    ckpt.write_bytes(os.urandom(3000))
    args = ["study", "run", str(study_file), "--dir", str(tmp_path / "out"), "-q", "--no-report"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert "could not be read" in result.stderr and "kept as last.pt.corrupt-" in result.stderr


_WRITER = """
import sys, torch
from lrlab.study.checkpoint import Checkpoint
torch.set_num_threads(1)
ckpt = Checkpoint(sys.argv[1])
state = ckpt.load()
i = 0 if state is None else state["epoch"] + 1
while True:
    w = torch.full((8_000_000,), float(i))
    print(f"writing {i}", flush=True)  # the save starts now and takes tens of milliseconds
    ckpt.save({"epoch": i, "w": w})
    i += 1
"""


@pytest.mark.slow
def test_sigkill_while_a_checkpoint_is_written_leaves_a_loadable_one(tmp_path: Path) -> None:
    directory = tmp_path / "ck"
    rng = random.Random(1)
    mid_write = 0
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(directory)],
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        assert proc.stdout is not None
        seen = []
        while len(seen) < 3:
            seen.append(int(proc.stdout.readline().split()[1]))
        time.sleep(rng.uniform(0.0, 0.02))  # somewhere inside the third write
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        mid_write += (directory / f"last.pt.tmp-{proc.pid}").exists()
        ckpt = Checkpoint(directory)
        state = ckpt.load()
        assert state is not None and ckpt.note is None
        assert state["epoch"] in (seen[-1] - 1, seen[-1])  # the previous one or the new one
        assert bool((state["w"] == float(state["epoch"])).all())
    print(f"{mid_write} of 3 kills landed inside a write")
    assert mid_write >= 1  # at least one kill landed inside a write
    Checkpoint(directory).remove()
    assert not directory.exists()


# ----------------------------------------------------------------------------- one writer
def _holder(directory: Path, procs: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    """The process that took the study directory's lock (its pid is in the lock file)."""
    deadline = time.time() + 120
    while time.time() < deadline and all(p.poll() is None for p in procs):
        lock = directory / "study.lock"
        text = lock.read_text() if lock.exists() else ""
        for p in procs:
            if f"pid={p.pid} " in text:
                return p
        time.sleep(0.02)
    raise AssertionError(f"no run took the lock (exits {[p.poll() for p in procs]})")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lrlab", "study", "run", *args, "-q", "--no-report"]


def _long_study(path: Path) -> Path:
    """About ten seconds of training: long enough for a second run to find it running."""
    _toml(path, epochs=6, seeds="[0, 1, 2]")
    path.write_text(
        path.read_text().replace("batch_size = 50\ntrain_subset = 200", "batch_size = 16")
    )
    return path


@pytest.mark.slow
def test_two_runs_on_one_directory_one_is_refused_and_nothing_runs_twice(
    tmp_path: Path,
) -> None:
    study_file = _long_study(tmp_path / "s.toml")
    directory = tmp_path / "out"
    cmd = _cli(str(study_file), "--dir", str(directory))
    procs = [subprocess.Popen(cmd, text=True, env=ENV, stderr=subprocess.PIPE) for _ in range(2)]
    holder = _holder(directory, procs)
    with pytest.raises(StudyBusy, match=f"host {socket.gethostname()}, pid {holder.pid},"):
        run_study(load_study(study_file), directory)  # the library refuses as the CLI does
    errors = {p.pid: p.communicate(timeout=300)[1] for p in procs}
    (other,) = [p for p in procs if p is not holder]
    assert (holder.returncode, other.returncode) == (0, 2), errors
    lines = [line for line in errors[other.pid].splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in errors[other.pid]
    assert f"host {socket.gethostname()}, pid {holder.pid}," in lines[0]
    starts = [e[1] for e in _events(directory, "start")]
    assert sorted(starts) == ["c@seed0", "c@seed1", "c@seed2"]  # each trial ran once
    assert {t[0] for t in _results(directory).values()} == {"done"}
    again = run_study(load_study(study_file), directory)  # the lock was released
    assert (again.ran, again.skipped) == (0, 3) and len(_events(directory, "start")) == 3


@pytest.mark.slow
def test_the_lock_of_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    study_file = _toml(tmp_path / "s.toml", epochs=4, seeds="[0, 1]")
    directory = tmp_path / "out"
    proc = subprocess.Popen(_cli(str(study_file), "--dir", str(directory)), text=True, env=ENV)
    _holder(directory, [proc])
    time.sleep(0.5)  # into the first trial
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert f"pid={proc.pid} " in (directory / "study.lock").read_text()  # left behind
    summary = run_study(parse_study(_tiny(epochs=4, seeds=(0, 1))), directory)
    assert summary.failed == []
    assert {t[0] for t in _results(directory).values()} == {"done"}
    assert f"pid={os.getpid()} " not in (directory / "study.lock").read_text()  # released


def test_a_lock_file_naming_a_dead_process_does_not_block(tmp_path: Path) -> None:
    (tmp_path / "study.lock").write_text(f"host={socket.gethostname()} pid=999999999 since=x\n")
    with StudyLock(tmp_path) as lock:
        assert lock.holder()["pid"] == str(os.getpid())
    assert (tmp_path / "study.lock").read_text() == ""


# ----------------------------------------------------------------------------- user text
def test_arm_names_and_errors_that_look_like_markup_are_printed_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study_file = _toml(tmp_path / "s.toml", epochs=1, arm_name="lr [/bold] 0.1 [x]")
    args = ["study", "run", str(study_file), "--dir", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert "lr [/bold] 0.1 [x]@seed0: done" in result.stderr
    assert (tmp_path / "out" / "report.html").is_file()

    import lrlab.study.trainer as trainer

    def broken(spec: Any, progress: Any = None) -> dict[str, Any]:
        raise ValueError('needs scikit-learn: pip install "lrlab[data]"')

    monkeypatch.setattr(trainer, "run_trial", broken)
    args = ["study", "run", str(_toml(tmp_path / "t.toml", epochs=1)), "--dir", str(tmp_path / "t")]
    result = CliRunner().invoke(app, [*args, "-q", "--no-report"])
    assert result.exit_code == 1
    # the reason, with its [data], even with --quiet
    assert 'c@seed0: ValueError: needs scikit-learn: pip install "lrlab[data]"' in result.stderr
