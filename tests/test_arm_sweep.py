"""The arm's range test sweeps the update rule the arm trains with."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lrlab.optim import param_groups
from lrlab.study.arm import range_test_bounds
from lrlab.study.arm_config import ArmConfig
from lrlab.tasks import Task, TaskData


class RecordingSGD(torch.optim.SGD):
    """SGD that writes down each step's (lr, momentum, weight decay) per group.

    It records from a wrapper on the instance, not by overriding ``step``: torch patches
    each optimizer class's ``step`` to run the step hooks, so a subclass whose ``step``
    calls ``super().step()`` runs them twice once a plain SGD has been made in the process.
    """

    seen: list[list[tuple[float, float, float]]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen = []
        inner = self.step

        def step(closure: Any = None) -> Any:
            self.seen.append(
                [(g["lr"], g["momentum"], g["weight_decay"]) for g in self.param_groups]
            )
            return inner(closure)

        self.step = step  # type: ignore[method-assign]


def _data() -> TaskData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 8, generator=g)
    y = x[:, :3].argmax(dim=1)  # learnable: the loss falls along the sweep
    model = lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))  # noqa: E731
    task = Task(
        model, TensorDataset(x, y), TensorDataset(x[:100], y[:100]), nn.functional.cross_entropy
    )
    return TaskData(task, batch_size=20, seed=0)


def _run(arm: dict[str, Any], total: int = 200) -> tuple[RecordingSGD, dict[str, Any], nn.Module]:
    data = _data()
    torch.manual_seed(0)
    model = data.task.model()
    groups = param_groups(model, weight_decay=5e-4, no_decay_bias_norm=False)
    opt = RecordingSGD(groups, lr=0.1, momentum=0.9, weight_decay=5e-4)
    cfg = ArmConfig(
        name="x",
        # one sweep, read as it is: these tests check what the sweep ran with
        range_test={
            "rule": "lrlab",
            "num_updates": 40,
            "start_lr": 1e-4,
            "on_low_confidence": "use",
        },
        **arm,
    )
    found, _, curve = range_test_bounds(cfg, model, opt, data, total)
    found["curve"] = curve
    return opt, found, model


def test_a_momentum_099_arm_sweeps_at_099_and_is_put_back() -> None:
    opt, found, _ = _run({"lr": {"kind": "one_cycle"}, "momentum": 0.99, "weight_decay": 1e-5})
    assert len(opt.seen) >= 15  # until the loss blew up (18-21 updates, by thread count)
    assert {m for step in opt.seen for _, m, _ in step} == {0.99}
    assert {wd for step in opt.seen for _, _, wd in step} == {1e-5}
    assert found["swept_with"]["momentum"] == [0.99, 0.99]
    assert found["swept_with"]["weight_decay"] == [1e-5, 1e-5]
    # the trial then starts from the study's optimizer settings again
    assert [(g["momentum"], g["weight_decay"]) for g in opt.param_groups] == [(0.9, 5e-4)] * 2


def test_cyclical_momentum_sweeps_at_its_value_at_peak_lr() -> None:
    opt, found, _ = _run({"lr": {"kind": "one_cycle"}, "momentum": {"low": 0.8, "high": 0.95}})
    assert found["swept_with"]["momentum"] == [0.8, 0.8]
    assert {m for step in opt.seen for _, m, _ in step} == {0.8}


def test_a_cyclical_layers_arm_sweeps_at_its_peak_multipliers() -> None:
    # triangular 0.25 -> 1.75 over 3-update half cycles; group 1 lags by 2 updates: both
    # peak at 1.75 within the 200 updates, so the sweep runs every group at 1.75x
    arm = {
        "lr": {"kind": "constant"},
        "layerwise": {
            "policy": "cyclical",
            "multiplier": "triangular(base_lr=0.25, max_lr=1.75, step_size=3)",
            "offset": 2,
        },
    }
    opt, found, _ = _run(arm)
    assert found["swept_with"]["lr_scales"] == [1.75, 1.75]
    assert found["swept_with"]["peak_scale"] == 1.75
    # the sweep's LR of each group is 1.75 times its ladder value: equal ratios between groups
    lrs = [[lr for lr, _, _ in step] for step in opt.seen]
    assert all(a == pytest.approx(b) for a, b in lrs)
    # with a fixed policy the groups keep their own (peak = only) multipliers: 3 and 0.5
    fixed = {
        "lr": {"kind": "constant"},
        "layerwise": {"policy": "fixed", "multipliers": {"0": 3.0, "2": 0.5}},
    }
    opt, found, _ = _run(fixed)
    assert found["swept_with"]["lr_scales"] == [3.0, 0.5]
    assert all(a / b == pytest.approx(6.0) for a, b in ([lr for lr, _, _ in s] for s in opt.seen))
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.1]  # put back
    assert all("lr_scale" not in g for g in opt.param_groups)
    # the curve's LRs are the x3 group's: the bound given for the global LR is a third of them
    from lrlab.rangetest import RangeTestResult

    read = RangeTestResult.from_json(found["curve"]).bounds("constant", rule="lrlab")
    assert found["max_lr"] == pytest.approx(read.max_lr / 3.0)


def test_blocks_frozen_at_the_start_stay_frozen_in_the_sweep() -> None:
    arm = {
        "lr": {"kind": "one_cycle"},
        "freeze": {"events": [{"at": 0, "action": "freeze", "blocks": ["0*"]}]},
    }
    data_model = _run(arm)
    _, found, model = data_model
    assert found["swept_with"]["frozen"] == ["0.bias", "0.weight"]
    assert all(p.requires_grad for p in model.parameters())  # the plan freezes them itself


def test_lars_runs_in_the_sweep() -> None:
    plain = _run({"lr": {"kind": "one_cycle"}})[1]
    lars = _run({"lr": {"kind": "one_cycle"}, "lars": {"trust_coefficient": 0.001}})[1]
    assert lars["swept_with"]["lars"]["trust_coefficient"] == 0.001
    # trust ratios of ~1e-3 shrink every update: the bound read moves up by orders of magnitude
    assert lars["max_lr"] > 10 * plain["max_lr"]
