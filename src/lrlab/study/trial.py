"""One trial's parts: model, optimizer, bounds, schedules and the hooks on the optimizer.

`build_trial` makes them from the trial's validated config and task data, attaching the
hooks in `ATTACH_ORDER` (the order is the rule, written down once); `restore` continues a
trial from the state `checkpoint_state` wrote, in `RESTORE_ORDER`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lrlab.optim import LARS, AutoLLR, HyperparamScheduler, Instrument, combine, param_groups
from lrlab.optim.freeze import FreezePlan
from lrlab.schedules import Schedule
from lrlab.study.arm import (
    freeze_plan,
    layerwise_groups,
    momentum_schedule,
    range_test_bounds,
    scalar_or_schedule,
    torch_one_cycle,
)
from lrlab.study.config import TrialConfig
from lrlab.study.measures import collect_instrument
from lrlab.study.optimizers import make_optimizer
from lrlab.study.resolve import TrialSpec, count, materialize
from lrlab.study.trace import UpdateRecorder, recorder_for
from lrlab.tasks import TaskData
from lrlab.tasks.metrics import MetricSet

__all__ = ["ATTACH_ORDER", "RESTORE_ORDER", "Trial", "build_trial", "checkpoint_state", "restore"]

#: What hangs on the optimizer, in the order it is attached; the order is the rule:
#: * ``auto_llr`` before ``driver``: the driver scales each group's LR by AutoLLR's
#:   multipliers, so they must exist (and on resume hold their averages) first;
#: * ``torch_scheduler`` (PyTorch's OneCycleLR, for comparisons) before ``driver``, which
#:   then only counts updates and writes weight decay;
#: * ``trace`` (`lrlab.study.trace`) before ``driver``: its post-step hook reads the values
#:   an update used before the driver writes the next update's;
#: * ``instrument`` before ``lars``, and ``lars`` last: LARS's pre-step hook rescales the
#:   gradients, and AutoLLR and the instrument, attached before it, read the raw ones.
ATTACH_ORDER = ("auto_llr", "torch_scheduler", "trace", "driver", "instrument", "lars")
#: What a checkpoint restores, in order (the attach order's state holders, after the model
#: and optimizer whose state they refer to).
RESTORE_ORDER = ("model", "optimizer", "auto_llr", "driver", "scaler", "torch_scheduler", "trace")


@dataclass
class Trial:
    """One trial's parts and its progress (what a checkpoint holds, and what builds it)."""

    spec: TrialSpec
    cfg: TrialConfig
    data: TaskData
    metrics: MetricSet
    model: nn.Module
    optimizer: torch.optim.Optimizer
    total: int
    lr: Schedule
    momentum: Schedule | None = None
    bounds: dict[str, Any] | None = None
    tuning: int = 0
    range_test: str | None = None
    plan: FreezePlan | None = None
    group_spec: list[dict[str, Any]] | None = None
    auto_llr: AutoLLR | None = None
    torch_scheduler: Any = None
    trace: UpdateRecorder | None = None
    driver: HyperparamScheduler | None = None
    instrument: Instrument | None = None
    lars: LARS | None = None
    scaler: Any = None
    amp: bool = False
    per_group: bool = False
    snap_at: set[int] = field(default_factory=set)
    # progress
    history: list[dict[str, Any]] = field(default_factory=list)
    instrument_rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    snapshots: list[torch.Tensor] = field(default_factory=list)
    snapshot_targets: torch.Tensor | None = None
    start_epoch: int = 0
    diverged_at: int | None = None
    seconds_before: float = 0.0
    applied: tuple[float, float] = (math.nan, math.nan)  # what PyTorch's scheduler set

    @property
    def ipe(self) -> int:
        return self.data.iters_per_epoch

    @property
    def steps(self) -> int:
        assert self.driver is not None
        return self.driver.step_count


def _range_test(
    cfg: TrialConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TaskData,
    state: dict[str, Any] | None,
    total: int,
) -> tuple[dict[str, Any] | None, int, str | None]:
    """The arm's LR bounds: read at the start of the trial (with the arm's own momentum,
    weight decay, LARS, peak layer-wise multipliers and frozen blocks), or kept in its
    checkpoint."""
    arm = cfg.arm
    if arm.range_test is None:
        return None, 0, None
    if state is not None:
        return state["bounds"], state["tuning_updates"], state["range_test"]
    return range_test_bounds(arm, model, optimizer, data, total)


def _attach_auto_llr(t: Trial) -> None:
    t.group_spec, t.auto_llr = layerwise_groups(t.cfg.arm, t.optimizer, t.total, t.ipe)
    if t.plan is not None:  # a freezing plan's LR scales join the groups' specs
        names = {id(p): n for n, p in t.model.named_parameters()}
        scales = t.plan.lr_scales(t.optimizer.param_groups, names)
        if any(isinstance(s, Schedule) for s in scales):
            t.group_spec = combine(
                t.group_spec or [{} for _ in scales], [{"lr_scale": s} for s in scales]
            )


def _attach_torch_scheduler(t: Trial) -> None:
    if t.cfg.arm.torch_scheduler == "OneCycleLR":
        # PyTorch's own scheduler, for comparisons with it: lrlab only counts the updates
        t.torch_scheduler = torch_one_cycle(t.optimizer, t.lr, t.total)
        t.momentum = None


def _attach_driver(t: Trial) -> None:
    wd = scalar_or_schedule(t.cfg.arm.weight_decay, t.total, t.ipe)
    t.driver = HyperparamScheduler(
        t.optimizer,
        lr=None if t.torch_scheduler is not None else t.lr,
        momentum=t.momentum,
        weight_decay=wd,
        groups=t.group_spec,
    )


def _attach_instrument(t: Trial) -> None:
    arm, every = t.cfg.arm, t.cfg.task.instrument_every
    t.per_group = bool(arm.layerwise or arm.lars or arm.freeze)
    if t.per_group or every is not None:
        rows, ipe = t.instrument_rows, t.ipe
        t.instrument = Instrument(
            t.optimizer,
            every=count(every, ipe, t.total) if every is not None else ipe,
            keep=False,
            callback=lambda records: collect_instrument(records, rows, ipe),
        )


def _attach_lars(t: Trial) -> None:
    if t.cfg.arm.lars:
        t.lars = LARS(t.optimizer, **t.cfg.arm.lars.model_dump())


def _attach_trace(t: Trial) -> None:
    t.trace = recorder_for(t)


_ATTACH = {
    "auto_llr": _attach_auto_llr,
    "torch_scheduler": _attach_torch_scheduler,
    "trace": _attach_trace,
    "driver": _attach_driver,
    "instrument": _attach_instrument,
    "lars": _attach_lars,
}


def build_trial(
    spec: TrialSpec, cfg: TrialConfig, data: TaskData, state: dict[str, Any] | None
) -> Trial:
    """The trial's model (from its seed), optimizer, bounds, schedules and hooks."""
    torch.manual_seed(spec.seed)
    model = data.task.model().to(data.device)
    groups = param_groups(
        model,
        cfg.task.groups.by,
        cfg.task.groups.blocks,
        weight_decay=cfg.optimizer.weight_decay,
        no_decay_bias_norm=cfg.optimizer.no_decay_bias_norm,
    )
    optimizer = make_optimizer(cfg.optimizer, groups)
    ipe = data.iters_per_epoch
    total = ipe * cfg.task.epochs
    bounds, tuning, found = _range_test(cfg, model, optimizer, data, state, total)
    lr = materialize(cfg.arm.lr, total=total, iters_per_epoch=ipe, bounds=bounds)
    t = Trial(
        spec,
        cfg,
        data,
        data.task.metric_set,
        model,
        optimizer,
        total,
        lr,
        momentum=momentum_schedule(cfg.arm.momentum, lr, total, ipe),
        bounds=bounds,
        tuning=tuning,
        range_test=found,
        plan=freeze_plan(cfg.arm.freeze, ipe, total),
    )
    for name in ATTACH_ORDER:
        _ATTACH[name](t)
    t.amp = bool(cfg.task.amp) and data.device.type == "cuda"
    t.scaler = torch.amp.GradScaler("cuda") if t.amp else None
    if cfg.arm.snapshots:
        # snapshot ensembles (Huang et al. 2017): validation probabilities at each cycle's end
        ends = t.lr.cycle_ends(total) if hasattr(t.lr, "cycle_ends") else [total - 1]
        t.snap_at = {e + 1 for e in ends}
    return t


def restore(t: Trial, state: dict[str, Any]) -> None:
    """Continue ``t`` from a checkpoint written by `checkpoint_state`."""
    for name in RESTORE_ORDER:
        holder = getattr(t, name)
        if holder is not None and state.get(name) is not None:
            holder.load_state_dict(state[name])
    torch.set_rng_state(state["rng"])
    t.history, t.start_epoch = list(state["history"]), int(state["epoch"])
    t.snapshots = list(state.get("snapshots") or [])
    t.snapshot_targets = state.get("snapshot_targets")
    t.instrument_rows.update({int(k): v for k, v in state.get("instrument", {}).items()})
    if t.instrument is not None:
        t.instrument.set_step(t.steps)
    t.seconds_before = float(state.get("seconds", 0.0))


def checkpoint_state(t: Trial, epoch: int, seconds: float) -> dict[str, Any]:
    """Everything `restore` needs to continue after ``epoch`` (0-indexed) as if never stopped."""
    state: dict[str, Any] = {"epoch": epoch + 1}
    for name in RESTORE_ORDER:
        holder = getattr(t, name)
        state[name] = holder.state_dict() if holder is not None else None
    state.update(
        {
            "rng": torch.get_rng_state(),
            "history": t.history,
            "bounds": t.bounds,
            "tuning_updates": t.tuning,
            "range_test": t.range_test,
            "instrument": {str(k): v for k, v in t.instrument_rows.items()},
            "snapshots": t.snapshots,
            "snapshot_targets": t.snapshot_targets,
            "seconds": seconds,
        }
    )
    return state
