"""The range test and the confirm step on Schedule-Free optimizers (the real package).

Schedule-Free keeps two points and steps only in train mode; its LR still needs tuning
(its authors suggest 1-10x AdamW's), which is what a range test reads. The sweep switches
it to train mode, evaluates it in eval mode (at the averaged point it would be used at),
and leaves model and optimizer exactly as it found them.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lrlab.rangetest import confirm, range_test

schedulefree = pytest.importorskip("schedulefree")


def _setup() -> tuple[nn.Module, torch.optim.Optimizer, list[tuple[torch.Tensor, torch.Tensor]]]:
    torch.manual_seed(0)
    x, y = torch.randn(512, 10), torch.randint(0, 3, (512,))
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = schedulefree.AdamWScheduleFree(model.parameters(), lr=0.0025)
    data = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 512, 32)]
    return model, opt, data


def _state(model: nn.Module, opt: torch.optim.Optimizer) -> tuple[list[torch.Tensor], str]:
    return [p.detach().clone() for p in model.parameters()], repr(opt.state_dict())


def test_the_sweep_steps_in_train_mode_evaluates_in_eval_mode_and_restores_everything() -> None:
    model, opt, data = _setup()
    before, opt_before = _state(model, opt)
    modes: list[bool] = []

    def evaluate() -> dict[str, float]:
        modes.append(bool(opt.param_groups[0]["train_mode"]))
        with torch.no_grad():
            x, y = data[0]
            return {"loss": float(nn.functional.cross_entropy(model(x), y))}

    result = range_test(
        model, opt, data, loss_fn=nn.functional.cross_entropy, start_lr=1e-5, end_lr=10.0,
        num_updates=60, evaluate=evaluate, eval_every=10,
    )  # fmt: skip
    assert result.updates >= 30  # it trained (before this, step() raised at once)
    assert modes and not any(modes)  # every evaluation saw eval mode
    after, opt_after = _state(model, opt)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert opt_after == opt_before
    assert opt.param_groups[0]["train_mode"] is False  # as it was found


def test_confirm_runs_on_a_schedule_free_optimizer_and_restores_it() -> None:
    model, opt, data = _setup()
    before, opt_before = _state(model, opt)
    r = confirm(
        model, opt, data, [1e-3, 1e-2], loss_fn=nn.functional.cross_entropy,
        val_data=data[:2], updates_each=8,
    )  # fmt: skip
    assert r.updates == 16 and len(r.val_losses) == 2
    assert all(v < 2.0 for v in r.val_losses)  # trained, evaluated, finite
    after, opt_after = _state(model, opt)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert opt_after == opt_before


def test_a_study_optimizer_reaches_prodigy_with_its_d_coef() -> None:
    pytest.importorskip("prodigyopt")
    from lrlab.study.arm_config import OptimizerConfig
    from lrlab.study.optimizers import make_optimizer

    params = [nn.Parameter(torch.zeros(3))]
    opt = make_optimizer(OptimizerConfig(name="prodigy", lr=1.0, d_coef=0.25), [{"params": params}])
    assert type(opt).__name__ == "Prodigy"
    assert opt.param_groups[0]["d_coef"] == 0.25 and opt.param_groups[0]["lr"] == 1.0
    with pytest.raises(ValueError, match=r"d_coef=0.5 is Prodigy's setting; name='adam'"):
        OptimizerConfig(name="adam", d_coef=0.5)
