"""A study's confirm step: the sweep it checks keeps its budget, and its runs are long
enough that a too-high LR does not look best (the MNIST-1D CNN of the methods benchmark)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lrlab.rangetest import LowConfidenceWarning, RangeTestResult
from lrlab.study import expand, parse_study
from lrlab.study.arm_config import RangeTestConfig
from lrlab.study.confidence import read_bounds
from lrlab.study.trainer import run_trial
from lrlab.study.tuning import confirm_horizon


def test_the_confirm_step_does_not_shorten_the_refined_sweep() -> None:
    # A flat curve has no signal, so the study asks for a refined sweep. With the confirm
    # step's 3 x 30 updates taken out of the 200-update floor it got 10 updates, and a
    # 10-point sweep falls back on the first sweep's reading (on the MNIST-1D CNN, seeds 1
    # and 2: 0.859 where the 100-update refinement read 0.217 and 0.146; 1cycle at 0.859
    # ended at chance, at 0.217 and 0.146 at 94%).
    lrs = np.logspace(-7, 1, 100)
    losses = 0.69 + 0.01 * np.random.default_rng(0).standard_normal(100)
    flat = RangeTestResult(
        "exp", 1e-7, 10.0, 100, list(lrs), list(losses), list(losses), "completed", 100
    )
    asked: list[dict[str, object]] = []

    def run_sweep(**kw: object) -> RangeTestResult:
        asked.append(kw)
        return flat

    with pytest.warns(LowConfidenceWarning):
        read_bounds(RangeTestConfig(), "auto", run_sweep, "one_cycle", 36, 1080)
    with pytest.warns(LowConfidenceWarning):
        read_bounds(RangeTestConfig(confirm=[1, 2, 4]), "confirm", run_sweep, "one_cycle", 36, 1080)
    assert asked == [{"refine": True, "refine_updates": 100}] * 2


def test_confirm_runs_are_a_tenth_of_the_trial_at_least_30_updates() -> None:
    assert confirm_horizon(None, 1080) == 108  # the methods benchmark's MNIST-1D tasks
    assert confirm_horizon(None, 630) == 63  # its digits task
    assert confirm_horizon(None, 36) == 30
    assert confirm_horizon(12, 1080) == 12  # the arm's own range_test.confirm_updates


def test_the_confirm_step_keeps_the_pick_where_twice_it_collapses_mnist1d_cnn(
    tmp_path: Path,
) -> None:
    # The methods benchmark's "lrlab auto + confirm" on the MNIST-1D CNN, seed 4: the rule
    # picks 0.234. 30-update confirm runs scored [1x, 2x, 4x] at [1.786, 1.736, 2.250]
    # and kept 2x (0.467), whose 1080-update 1cycle collapsed to chance (8.9% test
    # accuracy); 108-update runs score 2x worse than the pick, which trains to 95.8%.
    torch.set_num_threads(1)
    study = {
        "name": "confirm",
        "seeds": [4],
        "task": {"data": "mnist1d", "model": "cnn1d", "batch_size": 100, "epochs": 30},
        "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 5e-4},
        "arms": [
            {
                "name": "lrlab auto + confirm",
                "lr": {"kind": "one_cycle"},
                "momentum": "cyclical",
                "range_test": {"rule": "lrlab", "confirm": [1.0, 2.0, 4.0]},
            }
        ],
    }
    r = run_trial(expand(parse_study(study), str(tmp_path))[0])
    c = r["final"]["bounds"]["confirm"]
    pick = c["candidates"][0]
    assert pick == pytest.approx(0.2335, rel=1e-3)
    assert c["val_losses"][0] < min(c["val_losses"][1:])
    assert r["final"]["bounds"]["max_lr"] == pytest.approx(pick, rel=1e-12)
    assert r["status"] == "done" and r["final"]["test_top1"] > 0.9
    assert math.isfinite(r["final"]["val_loss"])
    assert c["updates_each"] == 108
    assert r["tuning_updates"] == 87 + 3 * 108  # the sweep stopped at 87 (diverged)
