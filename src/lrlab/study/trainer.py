"""The trial trainer: a plain, deterministic training loop for one arm, one seed, one task.

A trial is built (`lrlab.study.trial.build_trial`), restored from its checkpoint when
there is one (`restore`), run an epoch at a time (`run_epoch`) with a checkpoint after
each (`checkpoint_state`), and summarised (`finish`). Everything that varies between arms
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
from typing import Any

import torch

from lrlab.study.arm import momentum_of
from lrlab.study.checkpoint import Checkpoint
from lrlab.study.config import TrialConfig
from lrlab.study.measures import final_metrics, snapshot_ensemble
from lrlab.study.optimizers import has_train_eval_modes
from lrlab.study.resolve import TrialSpec, count
from lrlab.study.taskdata import build_task, check_targets, split_of
from lrlab.study.trace import update_trace
from lrlab.study.trial import (
    ATTACH_ORDER,
    RESTORE_ORDER,
    Trial,
    build_trial,
    checkpoint_state,
    restore,
)
from lrlab.tasks import TaskData, device_of

Progress = Callable[[dict[str, Any]], None]

__all__ = [
    "ATTACH_ORDER",
    "RESTORE_ORDER",
    "Progress",
    "Trial",
    "build_trial",
    "checkpoint_state",
    "finish",
    "restore",
    "run_epoch",
    "run_trial",
]


@functools.cache
def _warm_up() -> None:
    """Pay torch's one-time cost in this process: the first optimizer built imports
    torch._dynamo (seconds), which would otherwise be charged to the first trial's time."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


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
    final.update(_test_metrics(t))
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
        "trace": update_trace(t),  # for experiment trackers; the store does not keep it
    }


def _test_metrics(t: Trial) -> dict[str, Any]:
    """The test split, scored once at the end, when validation was held out of training
    (``test_loss``, ``test_<metric>``); which split validation was is kept with them."""
    split = split_of(t.cfg.task, t.spec.task)
    out: dict[str, Any] = {"split": split}
    task = t.data.task
    if split["holdout"] > 0 and task.test is not None and t.diverged_at is None:
        out.update(t.data.evaluate(t.model, split="test"))
    return out


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
    state = ckpt.load(progress, spec.id)
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
