"""Running studies: end to end, resume after SIGKILL, worker pools, divergence and failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lrlab.study import LocalExecutor, StudyStore, load_study, parse_study, run_study

ROOT = Path(__file__).resolve().parent.parent


def _study(epochs: int = 3, seeds: tuple[int, ...] = (0, 1), **arm_extra: object) -> dict:
    return {
        "name": "t",
        "seeds": list(seeds),
        "task": {"data": "mnist1d", "model": "cnn1d", "batch_size": 100, "epochs": epochs},
        "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 5e-4},
        "arms": [
            {"name": "1cycle", "lr": "one_cycle(max_lr=0.3)", "momentum": "cyclical", **arm_extra},
            {"name": "step", "lr": "multistep(init=0.1, milestones=['2 epochs'])"},
        ],
        "targets": {"val_top1": 0.3},
    }


def _snapshot(directory: Path) -> dict[str, tuple]:
    store = StudyStore(directory / "study.db")
    out = {}
    for t in store.trials():
        series = {n: store.series(t.id, n) for n in store.metric_names(t.id)}
        final = {k: v for k, v in t.final.items() if k != "seconds"}
        out[t.id] = (t.status, final, series)
    store.close()
    return out


def test_example_study_runs_end_to_end_and_resumes_nothing_twice(tmp_path: Path) -> None:
    study = load_study(ROOT / "studies" / "example.toml")
    study = parse_study(
        {
            **study.model_dump(mode="json"),
            "seeds": [0],
            "task": {**study.task.model_dump(mode="json"), "epochs": 3},
        }
    )
    events: list[dict] = []
    summary = run_study(study, tmp_path / "ex", on_event=events.append)
    assert (summary.ran, summary.skipped, summary.failed) == (2, 0, [])
    store = StudyStore(tmp_path / "ex" / "study.db")
    trials = {t.id: t for t in store.trials()}
    assert set(trials) == {"constant@seed0", "1cycle@seed0"}
    t = trials["1cycle@seed0"]
    assert t.status == "done" and t.torch_version and t.lrlab_version and t.git_commit
    assert 0 < t.tuning_updates <= 100  # the sweep may stop early on divergence
    # 1438 digits less the 144 held out for validation (10%, shared by class) / 64 -> 21 an epoch
    assert t.updates == 3 * 21
    split = t.final["split"]
    assert (split["holdout"], split["val_examples"], split["tuning_saw_test"]) == (0.1, 144, False)
    assert 0 <= t.final["test_top1"] <= 1  # the test split, scored once at the end
    assert t.final["bounds"]["swept_with"]["optimizer"] == "SGD"
    assert 0 < t.final["bounds"]["base_lr"] < t.final["bounds"]["max_lr"]
    assert t.final["schedules"]["lr"]["kind"] == "one_cycle"
    steps, epochs, acc = store.series(t.id, "val_top1")
    assert steps == [21, 42, 63] and epochs == [1.0, 2.0, 3.0] and all(0 <= a <= 1 for a in acc)
    assert store.meta("config")["name"] == "example"
    assert [e["kind"] for e in events if e["kind"] in ("plan", "start", "done")] == [
        "plan",
        "start",
        "done",
        "start",
        "done",
    ]
    assert not (tmp_path / "ex" / "checkpoints").exists() or not any(
        (tmp_path / "ex" / "checkpoints").iterdir()
    )
    store.close()
    again = run_study(study, tmp_path / "ex")
    assert (again.ran, again.skipped) == (0, 2)
    more = parse_study({**study.model_dump(mode="json"), "seeds": [0, 5]})
    added = run_study(more, tmp_path / "ex")  # only new trials: the study is extended
    assert (added.ran, added.skipped) == (2, 2)
    changed = study.model_dump(mode="json")
    changed["task"]["epochs"] = 4
    with pytest.raises(ValueError, match=r"different configuration .*4 trial\(s\) differ"):
        run_study(parse_study(changed), tmp_path / "ex")


def test_sigkill_mid_trial_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    toml = tmp_path / "k.toml"
    toml.write_text(
        'name = "kill"\nseeds = [0]\n'
        '[task]\ndata = "mnist1d"\nmodel = "cnn1d"\nbatch_size = 32\nepochs = 5\n'
        '[optimizer]\nname = "sgd"\nmomentum = 0.9\nweight_decay = 5e-4\n'
        '[[arms]]\nname = "1cycle"\nlr = "one_cycle(max_lr=0.05)"\nmomentum = "cyclical"\n'
        'layerwise = { policy = "auto", warmup = 5 }\n'
    )
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    cmd = [
        sys.executable,
        "-m",
        "lrlab",
        "study",
        "run",
        str(toml),
        "--quiet",
        "--no-report",
        "--dir",
    ]
    proc = subprocess.Popen(
        [*cmd, str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    ckpt = None
    while time.time() < deadline and proc.poll() is None:
        found = (
            list((killed / "checkpoints").glob("*/last.pt"))
            if (killed / "checkpoints").exists()
            else []
        )
        if found:
            ckpt = found[0]
            break
        time.sleep(0.02)
    assert ckpt is not None and proc.poll() is None, "the run ended before it could be killed"
    time.sleep(0.3)  # into the next epoch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = StudyStore(killed / "study.db")
    assert [t.status for t in store.trials()] == ["running"]
    assert store.metric_names("1cycle@seed0") == []  # nothing half-written
    store.close()
    assert subprocess.run([*cmd, str(killed)], check=False).returncode == 0
    assert subprocess.run([*cmd, str(clean)], check=False).returncode == 0
    a, b = _snapshot(killed), _snapshot(clean)
    assert a.keys() == b.keys() == {"1cycle@seed0"}
    assert a["1cycle@seed0"][0] == "done"
    assert a == b  # every stored number identical, bit for bit


def test_worker_pool_gives_the_same_numbers_as_sequential(tmp_path: Path) -> None:
    study = parse_study(_study())
    run_study(study, tmp_path / "seq")
    run_study(study, tmp_path / "pool", executor=LocalExecutor(workers=2))
    assert _snapshot(tmp_path / "seq") == _snapshot(tmp_path / "pool")


def test_divergence_ends_the_trial_not_the_study_and_failures_are_recorded(tmp_path: Path) -> None:
    data = _study(epochs=2, seeds=(0,))
    data["arms"][0]["lr"] = "constant(level=1e6)"
    del data["arms"][0]["momentum"]
    data["arms"].append(
        {
            "name": "broken",
            "lr": "constant(level=0.1)",
            "optimizer": {"name": "sgd", "momentum": 0.0},
            "momentum": 0.9,
        }
    )
    summary = run_study(parse_study(data), tmp_path / "d")
    assert summary.diverged == 1 and len(summary.failed) == 1
    assert "momentum=0" in summary.failed[0]
    store = StudyStore(tmp_path / "d" / "study.db")
    trials = {t.id: t for t in store.trials()}
    assert trials["1cycle@seed0"].status == "diverged"
    assert trials["1cycle@seed0"].final["diverged_at"] is not None
    assert store.series("1cycle@seed0", "val_loss")[0]  # its history is kept
    assert trials["step@seed0"].status == "done"
    assert (
        trials["broken@seed0"].status == "failed" and "momentum=0" in trials["broken@seed0"].error
    )


def test_pytorch_onecycle_arm_equals_lrlab_one_cycle_torch(tmp_path: Path) -> None:
    data = {
        "name": "t",
        "seeds": [0],
        "task": {"data": "digits", "model": "mlp", "batch_size": 64, "epochs": 3},
        "arms": [
            {"name": "torch", "lr": "one_cycle_torch(max_lr=0.1)", "torch_scheduler": "OneCycleLR"},
            {"name": "lrlab", "lr": "one_cycle_torch(max_lr=0.1)", "momentum": "cyclical"},
        ],
    }
    run_study(parse_study(data), tmp_path / "s")
    store = StudyStore(tmp_path / "s" / "study.db")
    a, b = store.trials()
    for name in ("lr", "momentum", "val_top1", "val_loss", "train_loss"):
        assert store.series(a.id, name) == store.series(b.id, name), name
    # refused when the study loads, not by a failed trial after the data has loaded
    bad = {
        **data,
        "arms": [{"name": "x", "lr": "one_cycle(max_lr=0.1)", "torch_scheduler": "OneCycleLR"}],
    }
    with pytest.raises(ValueError, match="of kind one_cycle_torch; got 'one_cycle'"):
        parse_study(bad)


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize(
    "arm",
    [
        {"name": "torch", "lr": "one_cycle_torch(max_lr=0.1)", "torch_scheduler": "OneCycleLR"},
        {
            "name": "everything",
            "lr": {"kind": "sgdr", "t_0": "1 epochs", "t_mult": 1},
            "range_test": {"rule": "lrlab"},
            "snapshots": True,
            "freeze": {
                "events": [
                    {
                        "at": "50%",
                        "action": "freeze",
                        "blocks": ["*"],
                        "except_blocks": ["linear3*"],
                    }
                ]
            },
        },
        {
            "name": "lars+auto",
            "lr": "one_cycle(max_lr=1.0)",
            "momentum": "cyclical",
            "lars": {"trust_coefficient": 0.02, "mode": "clip"},
            "layerwise": {"policy": "auto", "warmup": 3},
        },
    ],
    ids=["torch-onecycle", "rangetest-freeze-snapshots", "lars-autollr"],
)
def test_interrupted_trials_resume_to_identical_results(arm: dict, tmp_path: Path) -> None:
    from lrlab.study import expand
    from lrlab.study.trainer import run_trial

    data = {
        "name": "r",
        "seeds": [0],
        "task": {
            "data": "digits",
            "model": "mlp",
            "batch_size": 64,
            "epochs": 4,
            "instrument_every": 10,
        },
        "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 1e-4},
        "arms": [arm],
    }
    spec = expand(parse_study(data), str(tmp_path / "ck"))[0]

    def stop_after_two(e: dict) -> None:
        if e.get("kind") == "epoch" and e["epoch"] == 2:
            raise _Interrupt  # the checkpoint of epoch 2 is on disk by now

    with pytest.raises(_Interrupt):
        run_trial(spec, stop_after_two)
    resumed = run_trial(spec)
    clean = run_trial(expand(parse_study(data), str(tmp_path / "other"))[0])
    assert resumed["status"] == clean["status"] == "done"
    assert resumed["history"] == clean["history"]
    drop = ("seconds",)
    assert {k: v for k, v in resumed["final"].items() if k not in drop} == {
        k: v for k, v in clean["final"].items() if k not in drop
    }


class _KillsItsWorker:
    """Unpickling this in a worker process ends that process, as an OOM kill would."""

    def __reduce__(self) -> tuple:
        return (os._exit, (1,))


def test_a_dead_worker_process_fails_its_trials_instead_of_the_study(tmp_path: Path) -> None:
    import dataclasses

    from lrlab.study.resolve import expand

    study = parse_study(_study(epochs=1, seeds=(0,)))
    good, bad = expand(study, str(tmp_path / "ckpt"))
    bad = dataclasses.replace(bad, config={**bad.config, "poison": _KillsItsWorker()})
    results = {r["id"]: r for r in LocalExecutor(workers=2).run([good, bad], lambda e: None)}
    assert set(results) == {good.id, bad.id}
    assert results[bad.id]["status"] == "failed"
    assert "BrokenProcessPool" in results[bad.id]["error"]
    # the pool broke under the good trial too, unless it had finished first: either way
    # it has a result and nothing was raised out of the executor
    assert results[good.id]["status"] in ("done", "failed")
    # the broken pool was closed: the next study gets working processes again
    again = {r["id"]: r for r in LocalExecutor(workers=2).run([good, good], lambda e: None)}
    assert again[good.id]["status"] == "done"


def test_worker_processes_start_once_and_serve_the_next_study(tmp_path: Path) -> None:
    from lrlab.study import executors
    from lrlab.study.resolve import expand

    study = parse_study(_study(epochs=1, seeds=(0, 1)))
    specs = expand(study, str(tmp_path / "ckpt"))
    first = list(LocalExecutor(workers=2).run(specs, lambda e: None))
    _, pool, _ = executors._SHARED[0]
    pids = set(pool._processes)
    second = list(LocalExecutor(workers=2).run(specs, lambda e: None))
    assert executors._SHARED[0][1] is pool and set(pool._processes) == pids  # reused
    assert {r["status"] for r in first + second} == {"done"}
    finals = lambda rs: sorted((r["id"], r["final"]["val_top1"]) for r in rs)  # noqa: E731
    assert finals(first) == finals(second)  # a warm process gives the same numbers


def test_range_test_confirm_step_picks_the_lowest_validation_loss(tmp_path: Path) -> None:
    from lrlab.study import expand
    from lrlab.study.trainer import run_trial

    def study(range_test: dict) -> dict:
        return {
            "name": "c",
            "seeds": [0],
            "task": {"data": "digits", "model": "mlp", "batch_size": 64, "epochs": 1},
            "optimizer": {"name": "sgd", "momentum": 0.9},
            "arms": [
                {
                    "name": "auto",
                    "lr": {"kind": "one_cycle"},
                    "momentum": "cyclical",
                    "range_test": range_test,
                }
            ],
        }

    # "use": one sweep, the same in both trials
    first = {"num_updates": 40, "on_low_confidence": "use"}
    plain = run_trial(expand(parse_study(study(first)), str(tmp_path / "a"))[0])
    rt = {**first, "confirm": [1.0, 4.0, 16.0], "confirm_updates": 8}
    checked = run_trial(expand(parse_study(study(rt)), str(tmp_path / "b"))[0])
    rule_lr = plain["final"]["bounds"]["max_lr"]
    c = checked["final"]["bounds"]["confirm"]
    # the same sweep from the same seed: candidates are the rule's LR times the factors
    assert c["candidates"] == pytest.approx([rule_lr, 4 * rule_lr, 16 * rule_lr], rel=1e-12)
    best = c["candidates"][c["val_losses"].index(min(c["val_losses"]))]
    assert checked["final"]["bounds"]["max_lr"] == pytest.approx(best, rel=1e-12)
    assert checked["final"]["bounds"]["base_lr"] == pytest.approx(best / 10, rel=1e-12)
    # the confirm runs count as tuning: 3 candidates x 8 updates on top of the sweep
    assert checked["tuning_updates"] == plain["tuning_updates"] + 24
    assert plain["final"]["bounds"]["confirm"] is None
    with pytest.raises(ValueError, match="confirm"):
        parse_study(study({"confirm": [2.0]}))
