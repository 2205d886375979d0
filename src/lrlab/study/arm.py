"""An arm's pieces, built from its validated config (`ArmConfig`) for one trial.

The trainer's loop is the same for every arm; what differs (the range test that reads the
bounds, the momentum and weight-decay schedules, layer-wise policies, freezing plans,
PyTorch's own OneCycleLR for comparisons) is built here.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from lrlab.optim import (
    AutoLLR,
    FreezeEvent,
    FreezePlan,
    cyclical_layers,
    fixed,
    interpolate,
    override,
)
from lrlab.schedules import Constant, Schedule, cyclical_momentum
from lrlab.study.arm_config import ArmConfig, FreezeConfig, MomentumRange
from lrlab.study.confidence import read_bounds
from lrlab.study.resolve import bound_schedule, count, materialize
from lrlab.study.tuning import confirm_horizon, confirm_runs, sweep
from lrlab.tasks import TaskData


def momentum_of(group: dict[str, Any]) -> float:
    return float(group["betas"][0] if "betas" in group else group.get("momentum", math.nan))


def torch_one_cycle(optimizer: torch.optim.Optimizer, lr: Schedule, total: int) -> Any:
    """torch.optim.lr_scheduler.OneCycleLR with the parameters of a one_cycle_torch schedule."""
    from torch.optim.lr_scheduler import OneCycleLR

    d = lr.to_dict()
    if d["kind"] != "one_cycle_torch":
        raise ValueError(
            f"torch_scheduler = 'OneCycleLR' needs lr kind one_cycle_torch, got {d['kind']}"
        )
    return OneCycleLR(
        optimizer,
        max_lr=d["max_lr"],
        total_steps=total,
        pct_start=d["pct_start"],
        anneal_strategy=d["anneal"],
        div_factor=d["div_factor"],
        final_div_factor=d["final_div_factor"],
        three_phase=d["three_phase"],
    )


def range_test_bounds(
    arm: ArmConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TaskData,
    total: int | None = None,
) -> tuple[dict[str, Any], int, str]:
    """Run the arm's range test on the trial's own model, data order and optimizer, set up
    as the arm trains (`lrlab.study.arm_sweep.arm_stack`; ``total``: the trial's updates,
    where layer-wise multipliers peak)."""
    from lrlab.study.arm_sweep import arm_stack

    total = total if total is not None else data.iters_per_epoch
    with arm_stack(arm, model, optimizer, total, data.iters_per_epoch) as swept_with:
        return _range_test_bounds(arm, model, optimizer, data, swept_with, total)


def _range_test_bounds(
    arm: ArmConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TaskData,
    swept_with: dict[str, Any],
    total: int,
) -> tuple[dict[str, Any], int, str]:
    rt = arm.range_test
    assert rt is not None
    which = bound_schedule(arm.lr, rt.schedule)
    result, b = read_bounds(
        rt,
        arm.name,
        lambda **refine: sweep(
            model,
            optimizer,
            data,
            start_lr=rt.start_lr,
            end_lr=rt.end_lr,
            num_updates=rt.num_updates,
            mode=rt.mode,
            **refine,
        ),
        which,
        data.iters_per_epoch,
        total,
    )
    scale, updates, confirmed = 1.0, result.tuning_updates, None
    if rt.confirm:
        # short 1cycle runs at multiples of the rule's LR, from the trial's starting state
        candidates = [b.suggestion.lr * f for f in rt.confirm]
        each = confirm_horizon(rt.confirm_updates, total)
        c = confirm_runs(model, optimizer, data, candidates, each)
        scale, updates = c.best / b.suggestion.lr, updates + c.updates
        confirmed = {
            "candidates": list(c.candidates),
            "val_losses": list(c.val_losses),
            "updates_each": each,
        }
    # in the global LR's units: the sweep ran the arm's fastest group at its peak multiplier
    scale /= float(swept_with.get("peak_scale", 1.0))
    found = {
        "base_lr": b.base_lr * scale,
        "max_lr": b.max_lr * scale,
        "step_size": b.step_size,
        "rule": rt.rule,
        "schedule": which,
        "interval": list(b.suggestion.interval) if b.suggestion.interval else None,
        "warnings": list(b.suggestion.warnings),
        "confirm": confirmed,
        "swept_with": swept_with,
    }
    return found, updates, result.to_json()


def momentum_schedule(spec: Any, lr: Schedule, total: int, ipe: int) -> Schedule | None:
    if spec is None:
        return None
    if spec == "cyclical":
        return cyclical_momentum(lr)
    if isinstance(spec, MomentumRange):
        return cyclical_momentum(lr, low=spec.low, high=spec.high)
    return scalar_or_schedule(spec, total, ipe)


def scalar_or_schedule(spec: Any, total: int, ipe: int) -> Schedule | None:
    if spec is None:
        return None
    if isinstance(spec, (int, float)):
        return Constant(float(spec))
    return materialize(spec, total=total, iters_per_epoch=ipe)


def layerwise_groups(
    arm: ArmConfig, optimizer: torch.optim.Optimizer, total: int, ipe: int
) -> tuple[list[dict[str, Any]] | None, AutoLLR | None]:
    cfg = arm.layerwise
    if cfg is None:
        return None, None
    groups = optimizer.param_groups
    if cfg.policy == "fixed":
        assert cfg.multipliers is not None
        multipliers: dict[str | int, float] = {k: v for k, v in cfg.multipliers.items()}
        return fixed(groups, multipliers), None
    if cfg.policy == "interpolate":
        assert cfg.first is not None and cfg.last is not None
        return interpolate(groups, cfg.first, cfg.last, geometric=cfg.geometric), None
    if cfg.policy == "cyclical":
        assert cfg.multiplier is not None and cfg.offset is not None
        mult = materialize(cfg.multiplier, total=total, iters_per_epoch=ipe)
        return cyclical_layers(groups, mult, count(cfg.offset, ipe, total)), None
    if cfg.policy == "override":
        assert cfg.blocks is not None and cfg.lr is not None
        lr = materialize(cfg.lr, total=total, iters_per_epoch=ipe)
        return override(groups, cfg.blocks, lr=lr), None
    auto = AutoLLR(
        optimizer,
        beta=cfg.beta,
        warmup=cfg.warmup,
        min_scale=cfg.min_scale,
        max_scale=cfg.max_scale,
        variant=cfg.variant,
    )
    return auto.groups(), auto


def freeze_plan(cfg: FreezeConfig | None, ipe: int, total: int) -> FreezePlan | None:
    if cfg is None:
        return None
    events = [
        FreezeEvent(
            count(e.at, ipe, total) if isinstance(e.at, str) else e.at,
            e.action,
            tuple(e.blocks),
            tuple(e.except_blocks),
            "update" if isinstance(e.at, str) else e.unit,
            e.lr_scale,
        )
        for e in cfg.events
    ]
    return FreezePlan(events, cfg.optimizer_state, cfg.freeze_bn_stats, ipe)
