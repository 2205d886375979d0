"""lrlab search: Optuna TPE + Hyperband over a study's [search] ranges, resumable."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lrlab.cli.main import main
from lrlab.study import load_study, parse_study
from lrlab.study.search import apply_params, run_search

optuna = pytest.importorskip("optuna")

STUDY = {
    "name": "s",
    "seeds": [0, 1],
    "task": {"data": "digits", "model": "mlp", "batch_size": 64, "epochs": 3},
    "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 1e-4},
    "arms": [
        {
            "name": "1cycle",
            "lr": {"kind": "one_cycle"},
            "momentum": "cyclical",
            "range_test": {"rule": "lrlab"},
            "epochs": 2,
        },
        {"name": "constant", "lr": "constant(level=0.05)"},
    ],
    "search": {
        "arm": "1cycle",
        "space": {
            "max_lr": {"low": 0.01, "high": 1.0, "log": True},
            "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
            "batch_size": {"choices": [32, 64]},
        },
    },
}


def test_search_runs_resumes_and_writes_a_runnable_best_study(tmp_path: Path) -> None:
    study = parse_study(STUDY)
    first = run_search(study, tmp_path, n_trials=3)
    assert first["complete"] + first["pruned"] >= 3 and 0 < first["best_value"] <= 1
    assert (tmp_path / "search" / "journal.log").exists()
    best = load_study(tmp_path / "search" / "best.toml")
    arm = best.arms[-1]
    assert arm.name == "search best" and arm.range_test is None
    assert arm.epochs == 2 and best.arms[0].epochs == 2  # the arm's override is kept
    assert arm.lr["max_lr"] == pytest.approx(first["best_params"]["max_lr"])
    assert [a.name for a in best.arms[:2]] == ["1cycle", "constant"]
    assert best.optimizer.weight_decay == 1e-4  # the searched value belongs to the best arm only
    assert "![history](history.png)" in (tmp_path / "search" / "report.md").read_text()

    # a crash leaves a trial RUNNING; the next run fails it and runs its setting again
    opt = optuna.load_study(
        study_name="s",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "search" / "journal.log"))
        ),
    )
    space = {
        "max_lr": optuna.distributions.FloatDistribution(0.01, 1.0, log=True),
        "weight_decay": optuna.distributions.FloatDistribution(1e-6, 1e-2, log=True),
        "batch_size": optuna.distributions.CategoricalDistribution([32, 64]),
    }
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = opt.ask(space)
    stale.set_user_attr("host", socket.gethostname())
    stale.set_user_attr("pid", dead.pid)
    # a trial running on another machine that shares the journal is not touched
    elsewhere = opt.ask(space)
    elsewhere.set_user_attr("host", "another-machine")
    elsewhere.set_user_attr("pid", 1)
    again = run_search(study, tmp_path, n_trials=5)
    opt = optuna.load_study(study_name="s", storage=opt._storage)
    states = {t.number: t.state.name for t in opt.trials}
    assert states[stale.number] == "FAIL" and states[elsewhere.number] == "RUNNING"
    rerun = [t for t in opt.trials if t.number > stale.number and t.params == stale.params]
    assert rerun and rerun[0].state.name in ("COMPLETE", "PRUNED")
    assert again["complete"] + again["pruned"] >= 5


def test_apply_params_for_constant_and_interpolated_layers() -> None:
    cfg = {
        "arm": {
            "lr": "constant(level=0.1)",
            "range_test": None,
            "momentum": None,
            "layerwise": None,
        },
        "optimizer": {"weight_decay": 0.0},
        "task": {"batch_size": 8},
    }
    out = apply_params(
        cfg, {"max_lr": 0.3, "momentum": 0.95, "llr_first": 2.0, "llr_last": 0.5, "batch_size": 32}
    )
    assert out["arm"]["lr"] == {"kind": "constant", "level": 0.3}
    assert out["arm"]["momentum"] == 0.95 and out["task"]["batch_size"] == 32
    assert out["arm"]["layerwise"]["first"] == 2.0 and out["arm"]["layerwise"]["last"] == 0.5
    assert cfg["arm"]["lr"] == "constant(level=0.1)"  # the input is not modified


def test_search_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    no_search = tmp_path / "n.toml"
    no_search.write_text(
        'name = "n"\n[task]\ndata = "digits"\nmodel = "mlp"\n'
        '[[arms]]\nname = "a"\nlr = "constant(level=0.1)"\n'
    )
    assert main(["search", str(no_search), "--dir", str(tmp_path / "o")]) == 2
    assert "has no [search] table" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown parameter\\(s\\) lr_max"):
        parse_study(
            {**STUDY, "search": {"arm": "1cycle", "space": {"lr_max": {"low": 1, "high": 2}}}}
        )
    with pytest.raises(ValueError, match="expected low < high"):
        parse_study(
            {**STUDY, "search": {"arm": "1cycle", "space": {"max_lr": {"low": 2, "high": 1}}}}
        )
    with pytest.raises(ValueError, match=r"search\.arm=.x. is not an arm"):
        parse_study({**STUDY, "search": {"arm": "x", "space": {"max_lr": {"low": 1, "high": 2}}}})


def test_parallel_workers_sample_apart(tmp_path: Path) -> None:
    # Workers seeded alike proposed the same start-up points, trained the same config and
    # raced on its checkpoint directory; each worker now seeds TPE with seed + its index.
    from lrlab.study.search import _study, _suggest

    study = parse_study(STUDY)
    assert study.search is not None
    space = study.search.space

    def first(worker: int, d: str) -> dict[str, object]:
        trial = _study(study, tmp_path / d, None, worker).ask()
        return {n: _suggest(trial, n, r) for n, r in space.items()}

    assert first(0, "a") == first(0, "b")  # deterministic per worker
    assert first(0, "c")["max_lr"] != first(1, "d")["max_lr"]


def test_a_search_whose_freeze_pattern_matches_nothing_stops_before_optuna_starts(
    tmp_path: Path,
) -> None:
    arms = [dict(STUDY["arms"][0]), STUDY["arms"][1]]
    arms[0]["freeze"] = {"events": [{"at": 1, "action": "freeze", "blocks": ["head*"]}]}
    study = parse_study({**STUDY, "arms": arms})
    with pytest.raises(ValueError, match=r"arm '1cycle': freeze: .*\['head\*'\]\) matches no"):
        run_search(study, tmp_path, n_trials=3)
    assert not (tmp_path / "search" / "journal.log").exists()
