"""The trial trainer: a plain, deterministic training loop for one arm, one seed, one task.

A trial is built (`build_trial`), restored from its checkpoint when there is one
(`restore`), run an epoch at a time (`run_epoch`) with a checkpoint after each
(`checkpoint_state`), and summarised (`finish`). Everything that varies between arms
(schedules, layer-wise policies, LARS, freezing, range-test bounds) arrives through the
trial's validated config; everything about the model and its data through its `Task`.

On CPU a trial is bit-for-bit reproducible: the initial weights come from the seed, the
data order of each epoch is a pure function of (seed, epoch), and the checkpoint holds
everything else (model, optimizer, driver, automatic-LLR averages, grad scaler, RNG,
history), so a killed trial resumes to exactly the numbers an uninterrupted one reaches.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
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
    momentum_of,
    momentum_schedule,
    range_test_bounds,
    scalar_or_schedule,
    torch_one_cycle,
)
from lrlab.study.checkpoint import Checkpoint
from lrlab.study.config import TrialConfig
from lrlab.study.measures import collect_instrument, final_metrics, snapshot_ensemble
from lrlab.study.optimizers import has_train_eval_modes, make_optimizer
from lrlab.study.resolve import TrialSpec, count, materialize
from lrlab.study.taskdata import build_task, check_targets
from lrlab.tasks import TaskData, device_of
from lrlab.tasks.metrics import MetricSet

Progress = Callable[[dict[str, Any]], None]

__all__ = [
    "ATTACH_ORDER",
    "RESTORE_ORDER",
    "Progress",
    "Trial",
    "build_trial",
    "checkpoint_state",
    "restore",
    "run_epoch",
    "run_trial",
]

#: What hangs on the optimizer, in the order it is attached; the order is the rule:
#: * ``auto_llr`` before ``driver``: the driver scales each group's LR by AutoLLR's
#:   multipliers, so they must exist (and on resume hold their averages) first;
#: * ``torch_scheduler`` (PyTorch's OneCycleLR, for comparisons) before ``driver``, which
#:   then only counts updates and writes weight decay;
#: * ``instrument`` before ``lars``, and ``lars`` last: LARS's pre-step hook rescales the
#:   gradients, and AutoLLR and the instrument, attached before it, read the raw ones.
ATTACH_ORDER = ("auto_llr", "torch_scheduler", "driver", "instrument", "lars")
#: What a checkpoint restores, in order (the attach order's state holders, after the model
#: and optimizer whose state they refer to).
RESTORE_ORDER = ("model", "optimizer", "auto_llr", "driver", "scaler", "torch_scheduler")


@functools.cache
def _warm_up() -> None:
    """Pay torch's one-time cost in this process: the first optimizer built imports
    torch._dynamo (seconds), which would otherwise be charged to the first trial's time."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


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
) -> tuple[dict[str, Any] | None, int, str | None]:
    """The arm's LR bounds: read at the start of the trial, or kept in its checkpoint."""
    arm = cfg.arm
    if arm.range_test is None:
        return None, 0, None
    if state is not None:
        return state["bounds"], state["tuning_updates"], state["range_test"]
    # LARS is on during the range test: the global LR is swept with trust ratios active
    lars = LARS(optimizer, **arm.lars.model_dump()) if arm.lars else None
    found = range_test_bounds(arm, model, optimizer, data)
    if lars is not None:
        lars.remove()
    return found


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


_ATTACH = {
    "auto_llr": _attach_auto_llr,
    "torch_scheduler": _attach_torch_scheduler,
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
    bounds, tuning, found = _range_test(cfg, model, optimizer, data, state)
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


def _record(t: Trial, loss_sum: float, loss_n: int) -> None:
    """One evaluation row: training loss since the last row, validation metrics, LRs."""
    sf = has_train_eval_modes(t.optimizer)
    if sf:
        t.optimizer.eval()  # type: ignore[attr-defined]
    steps = t.steps
    row: dict[str, Any] = {
        "step": steps,
        "epoch": steps / t.ipe,
        "train_loss": loss_sum / loss_n if loss_n else math.nan,
    }
    row.update(t.data.evaluate(t.model, batches=t.cfg.task.eval_batches))
    last = max(0, steps - 1)
    g0 = t.optimizer.param_groups[0]
    row["lr"] = t.lr(last) if t.torch_scheduler is None else t.applied[0]
    if t.momentum is not None:
        row["momentum"] = t.momentum(last)
    else:
        row["momentum"] = t.applied[1] if t.torch_scheduler is not None else momentum_of(g0)
    if t.per_group:
        assert t.driver is not None
        for g, values in zip(t.optimizer.param_groups, t.driver.values(last)):
            row[f"lr/{g.get('name', '?')}"] = values.get("lr", float(g["lr"]))
    t.history.append(row)
    if sf:
        t.optimizer.train()  # type: ignore[attr-defined]


def _snapshot(t: Trial) -> None:
    probs, targets = t.data.probabilities(t.model, batches=t.cfg.task.eval_batches)
    t.snapshots.append(probs)
    t.snapshot_targets = targets


def run_epoch(t: Trial, epoch: int) -> None:
    """Train one epoch (stopping at a non-finite loss: ``t.diverged_at``), recording
    evaluations every ``eval_every`` updates and at the epoch's end."""
    task = t.cfg.task
    eval_every = count(task.eval_every, t.ipe, t.total) if task.eval_every is not None else None
    model, optimizer, scaler = t.model, t.optimizer, t.scaler
    device = t.data.device.type
    loss_sum, loss_n = 0.0, 0
    for batch in t.data.train_batches(epoch):
        if t.plan is not None:
            t.plan.apply(model, optimizer, t.steps)
        with torch.autocast(device, enabled=t.amp):
            loss = t.data.training_loss(model, batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            t.diverged_at = t.steps
            break
        if t.torch_scheduler is not None:  # what PyTorch's scheduler set for this update
            g0 = optimizer.param_groups[0]
            t.applied = (float(g0["lr"]), momentum_of(g0))
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if t.torch_scheduler is not None and t.steps < t.total:
            t.torch_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum, loss_n = loss_sum + value, loss_n + 1
        if t.steps in t.snap_at:
            _snapshot(t)
        if eval_every is not None and t.steps % eval_every == 0:
            _record(t, loss_sum, loss_n)
            loss_sum, loss_n = 0.0, 0
    if t.diverged_at is not None or eval_every is None or loss_n:
        _record(t, loss_sum, loss_n)


def finish(t: Trial, seconds: float) -> dict[str, Any]:
    """Detach the hooks and summarise the trial for the store."""
    for name in ATTACH_ORDER:
        hook = getattr(t, name)
        if hook is not None and hasattr(hook, "remove"):
            hook.remove()
    history = t.history + [t.instrument_rows[k] for k in sorted(t.instrument_rows)]
    final = final_metrics(
        history,
        t.metrics,
        window=t.cfg.task.stability_window,
        targets=t.cfg.targets,
        diverged_at=t.diverged_at,
        bounds=t.bounds,
        lr=t.lr,
        momentum=t.momentum,
        ipe=t.ipe,
        total=t.total,
    )
    if t.snapshots:
        if t.snapshot_targets is None:  # a checkpoint written before targets were kept
            _, t.snapshot_targets = t.data.probabilities(t.model, batches=t.cfg.task.eval_batches)
        final.update(snapshot_ensemble(t.snapshots, t.snapshot_targets))
    return {
        "id": t.spec.id,
        "status": "diverged" if t.diverged_at is not None else "done",
        "seconds": seconds,
        "updates": t.steps,
        "tuning_updates": t.tuning,
        "final": final,
        "history": history,
        "range_test": t.range_test,
        "metrics": t.metrics.to_dict(),
    }


def run_trial(spec: TrialSpec, progress: Progress | None = None) -> dict[str, Any]:
    """Run (or resume) one trial and return its result for the store."""
    cfg = TrialConfig.model_validate(spec.config)
    torch.set_num_threads(cfg.task.threads)
    device = device_of(cfg.task.device)
    task = build_task(cfg.task, spec.task)
    check_targets(task.metric_set, cfg.targets, cfg.task.label)
    data = TaskData(task, batch_size=cfg.task.batch_size, seed=spec.seed, device=device)
    _warm_up()
    # the clock starts after the once-per-process costs (data loading, torch's lazy imports),
    # so a worker's first trial is timed like the others
    started = time.perf_counter()
    ckpt = Checkpoint(spec.checkpoint_dir)
    state = ckpt.load()
    t = build_trial(spec, cfg, data, state)
    if state is not None:
        restore(t, state)
    t.model.train()
    if has_train_eval_modes(t.optimizer):
        t.optimizer.train()  # type: ignore[attr-defined]
    primary = t.metrics.primary.name
    for epoch in range(t.start_epoch, cfg.task.epochs):
        tick = time.perf_counter()
        run_epoch(t, epoch)
        if t.diverged_at is not None:
            break
        seconds = t.seconds_before + time.perf_counter() - started
        ckpt.save(checkpoint_state(t, epoch, seconds))
        if progress is not None:
            last = t.history[-1]
            progress(
                {
                    "kind": "epoch",
                    "trial": spec.id,
                    "epoch": epoch + 1,
                    "epochs": cfg.task.epochs,
                    "updates": t.steps,
                    "total": t.total,
                    "updates_per_s": t.ipe / max(1e-9, time.perf_counter() - tick),
                    "val_top1": last.get("val_top1"),
                    "metric": primary,
                    "value": last.get(primary),
                }
            )
    return finish(t, t.seconds_before + time.perf_counter() - started)
