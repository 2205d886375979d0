"""The arm's own optimizer stack, set up for its range test and confirm step.

A range test answers "which LR does *this* update rule tolerate", so it must sweep the
rule the arm trains with, not the study's base optimizer: a bound read at momentum 0.9
and then trained at 0.99 is a bound for another method. `arm_stack` sets the trial's
optimizer and model to what the arm's first updates will use, and undoes it afterwards:

* momentum (or Adam's beta1): the arm's constant; for cyclical momentum the value at the
  schedule's peak LR (its ``low``, where the LR is largest); a momentum schedule at
  update 0;
* weight decay: the arm's constant (or its schedule at update 0) on the groups that decay;
* layer-wise multipliers at the largest values they take over training (a cyclical
  policy's peak, a fixed or interpolated policy's values), so the bound holds at the
  peak; AutoLLR starts every multiplier at 1 and a per-group override keeps its own LR,
  so those sweep at 1;
* the blocks its freezing plan has frozen at update 0 stay frozen;
* LARS/LARC applied on every sweep update (`lars_in_step`).

The confirm step's short 1cycle runs keep their own cyclical momentum (0.95-0.85); every
other setting above holds for them too.

Optimizer name, base momentum, betas and batch size come from the trial config, which
already carries the arm's overrides. What the sweep ran with is returned as a record and
stored with the range test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from lrlab.optim import LARS
from lrlab.schedules import Schedule
from lrlab.study.arm_config import ArmConfig, MomentumRange
from lrlab.study.resolve import materialize

__all__ = ["arm_stack", "lars_in_step", "peak_scales", "sweep_momentum"]


def sweep_momentum(spec: Any, total: int, ipe: int) -> float | None:
    """The momentum the sweep runs at (None: the optimizer's own).

    >>> sweep_momentum(0.99, 100, 10), sweep_momentum("cyclical", 100, 10)
    (0.99, 0.85)
    """
    if spec is None:
        return None
    if spec == "cyclical":
        return MomentumRange().low
    if isinstance(spec, MomentumRange):
        return spec.low
    if isinstance(spec, (int, float)):
        return float(spec)
    return float(materialize(spec, total=total, iters_per_epoch=ipe)(0))


def _sweep_weight_decay(spec: Any, total: int, ipe: int) -> float | None:
    if spec is None:
        return None
    if isinstance(spec, (int, float)):
        return float(spec)
    return float(materialize(spec, total=total, iters_per_epoch=ipe)(0))


def _peak(value: Any, total: int) -> float:
    if isinstance(value, Schedule) or callable(value):
        stride = max(1, total // 20_000)
        return max(float(value(t)) for t in range(0, max(total, 1), stride))
    return float(value)


def peak_scales(
    arm: ArmConfig, optimizer: torch.optim.Optimizer, total: int, ipe: int
) -> list[float]:
    """Per group, the largest LR multiplier the arm's layer-wise policy applies."""
    from lrlab.study.arm import layerwise_groups

    groups = optimizer.param_groups
    base = [float(g.get("lr_scale", 1.0)) for g in groups]
    cfg = arm.layerwise
    if cfg is None or cfg.policy in ("auto", "override"):
        return base
    spec, _ = layerwise_groups(arm, optimizer, total, ipe)
    assert spec is not None
    return [_peak(s.get("lr_scale", b), total) for s, b in zip(spec, base)]


@contextlib.contextmanager
def lars_in_step(optimizer: torch.optim.Optimizer, lars_cfg: dict[str, Any]) -> Iterator[LARS]:
    """LARS/LARC on every ``optimizer.step()`` in this block, even with hooks suspended.

    The range test and the confirm step take the optimizer's own step hooks off (a
    scheduler must not count their updates); LARS is part of the update rule, not a
    bystander, so for the sweep it runs inside ``step`` itself.
    """
    lars = LARS(optimizer, **lars_cfg)
    lars.remove()  # its hooks would be suspended anyway; it runs through the step below
    own = optimizer.__dict__.get("step")  # an instance's own step, if something set one
    plain = optimizer.step

    def step(*args: Any, **kwargs: Any) -> Any:
        lars._before(optimizer, args, kwargs)
        try:
            return plain(*args, **kwargs)
        finally:
            lars._after(optimizer, args, kwargs)

    optimizer.step = step  # type: ignore[method-assign]
    try:
        yield lars
    finally:
        if own is None:
            del optimizer.step  # the class's step again
        else:
            optimizer.step = own  # type: ignore[method-assign]


def _set_momentum(group: dict[str, Any], value: float) -> None:
    if "betas" in group:
        group["betas"] = (value, *tuple(group["betas"])[1:])
    elif "momentum" in group:
        group["momentum"] = value


@contextlib.contextmanager
def arm_stack(
    arm: ArmConfig, model: nn.Module, optimizer: torch.optim.Optimizer, total: int, ipe: int
) -> Iterator[dict[str, Any]]:
    """``optimizer`` and ``model`` as the arm trains them, for a sweep; restored after.

    Yields the record of what the sweep runs with (stored with the range test).
    """
    groups = optimizer.param_groups
    keys = ("lr", "momentum", "betas", "weight_decay", "lr_scale")
    saved = [{k: g[k] for k in keys if k in g} for g in groups]
    momentum = sweep_momentum(arm.momentum, total, ipe)
    decay = _sweep_weight_decay(arm.weight_decay, total, ipe)
    scales = peak_scales(arm, optimizer, total, ipe)
    ref = max(float(g["lr"]) for g in groups)
    # The sweep's LR is that of its fastest group (`range_test` keeps the groups' ratios to
    # it): with multipliers peaking at ``top`` the bounds read are ``top`` times the global
    # LR's, and are divided back (`global_bounds`). The confirm step reads ``lr_scale``.
    top = max(scales)
    for g, scale in zip(groups, scales):
        g["lr"] = ref * scale
        g["lr_scale"] = scale / top
        if momentum is not None:
            _set_momentum(g, momentum)
        if decay is not None and g.get("weight_decay"):
            g["weight_decay"] = decay  # groups built without decay stay without, as in training
    frozen = _frozen_at_start(arm, model, ipe, total)
    record = {
        "optimizer": type(optimizer).__name__,
        "momentum": [_momentum_of(g) for g in groups],
        "weight_decay": [float(g.get("weight_decay", 0.0)) for g in groups],
        "lr_scales": scales,
        "peak_scale": top,
        "lars": None if arm.lars is None else arm.lars.model_dump(),
        "frozen": sorted(frozen),
    }
    try:
        with contextlib.ExitStack() as stack:
            if arm.lars is not None:
                stack.enter_context(lars_in_step(optimizer, arm.lars.model_dump()))
            yield record
    finally:
        # the sweep's snapshot restore may have replaced the group dicts: write the live ones
        for g, s in zip(optimizer.param_groups, saved):
            g.update(s)
            if "lr_scale" not in s:  # the confirm step's key, set for the sweep only
                g.pop("lr_scale", None)
        names = dict(model.named_parameters())
        for n in frozen:
            names[n].requires_grad_(True)


def _momentum_of(group: dict[str, Any]) -> float | None:
    if "betas" in group:
        return float(group["betas"][0])
    return float(group["momentum"]) if "momentum" in group else None


def _frozen_at_start(arm: ArmConfig, model: nn.Module, ipe: int, total: int) -> set[str]:
    from lrlab.study.arm import freeze_plan

    plan = freeze_plan(arm.freeze, ipe, total)
    if plan is None:
        return set()
    names = dict(model.named_parameters())
    frozen = {n for n in plan.frozen_at(0, list(names), ipe) if names[n].requires_grad}
    for n in frozen:
        names[n].requires_grad_(False)
        names[n].grad = None
    return frozen
