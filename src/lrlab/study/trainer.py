"""The trial trainer: a plain, deterministic training loop for one arm and one seed.

Everything that varies between arms (schedules, layer-wise policies, LARS, freezing,
range-test bounds) arrives through the trial's resolved config; the loop itself is the
same for all of them. On CPU a trial is bit-for-bit reproducible: the initial weights
come from the seed, the data order of each epoch is a pure function of (seed, epoch),
and the checkpoint written after every epoch holds everything else (model, optimizer,
driver, automatic-LLR averages, grad scaler, RNG, history), so a killed trial resumes
to exactly the numbers an uninterrupted one reaches.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from lrlab.data import batches, num_batches
from lrlab.models import build_model
from lrlab.optim import LARS, HyperparamScheduler, Instrument, combine, param_groups
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
from lrlab.study.measures import (
    collect_instrument,
    evaluate,
    final_metrics,
    probabilities,
    snapshot_ensemble,
)
from lrlab.study.optimizers import has_train_eval_modes, make_optimizer
from lrlab.study.resolve import TrialSpec, count, materialize
from lrlab.study.taskdata import task_data, task_device

Progress = Callable[[dict[str, Any]], None]

__all__ = ["Progress", "evaluate", "run_trial"]


@functools.cache
def _warm_up() -> None:
    """Pay torch's one-time cost in this process: the first optimizer built imports
    torch._dynamo (seconds), which would otherwise be charged to the first trial's time."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


def run_trial(spec: TrialSpec, progress: Progress | None = None) -> dict[str, Any]:
    """Run (or resume) one trial and return its result for the store."""
    cfg, task, arm = spec.config, spec.config["task"], spec.config["arm"]
    torch.set_num_threads(task["threads"])
    device = task_device(task["device"])
    ds, val_x, val_y = task_data(task)
    train_x, train_y = ds.x_train.to(device), ds.y_train.to(device)
    val_x, val_y = val_x.to(device), val_y.to(device)
    _warm_up()
    # the clock starts after the once-per-process costs (data loading, torch's lazy imports),
    # so a worker's first trial is timed like the others
    started = time.perf_counter()
    bs, epochs, seed = task["batch_size"], task["epochs"], spec.seed
    ipe = num_batches(len(train_x), bs)
    total = ipe * epochs
    ckpt = Checkpoint(spec.checkpoint_dir)
    state = ckpt.load()

    torch.manual_seed(seed)
    model = build_model(task["model"], ds.input_shape, ds.num_classes, width=task["width"]).to(
        device
    )
    opt_cfg = cfg["optimizer"]
    groups = param_groups(
        model,
        task["groups"]["by"],
        task["groups"]["blocks"],
        weight_decay=opt_cfg["weight_decay"],
        no_decay_bias_norm=opt_cfg["no_decay_bias_norm"],
    )
    optimizer = make_optimizer(opt_cfg, groups)

    bounds, tuning, rt_json = None, 0, None
    if arm["range_test"] is not None:
        if state is not None:
            bounds, tuning, rt_json = state["bounds"], state["tuning_updates"], state["range_test"]
        else:
            # LARS is on during the range test: the global LR is swept with trust ratios active
            sweep_lars = LARS(optimizer, **arm["lars"]) if arm["lars"] else None
            bounds, tuning, rt_json = range_test_bounds(
                arm, model, optimizer, train_x, train_y, val_x, val_y, bs, seed, ipe
            )
            if sweep_lars is not None:
                sweep_lars.remove()
    lr = materialize(arm["lr"], total=total, iters_per_epoch=ipe, bounds=bounds)
    momentum = momentum_schedule(arm["momentum"], lr, total, ipe)
    wd = scalar_or_schedule(arm["weight_decay"], total, ipe)
    group_spec, auto = layerwise_groups(arm, optimizer, total, ipe)
    plan = freeze_plan(arm["freeze"], ipe, total)
    if plan is not None:
        names = {id(p): n for n, p in model.named_parameters()}
        scales = plan.lr_scales(optimizer.param_groups, names)
        if any(isinstance(s, Schedule) for s in scales):
            group_spec = combine(
                group_spec or [{} for _ in scales], [{"lr_scale": s} for s in scales]
            )
    torch_sched = None
    applied = (math.nan, math.nan)
    if arm.get("torch_scheduler") == "OneCycleLR":
        # PyTorch's own scheduler, for comparisons with it: lrlab only counts the updates
        torch_sched = torch_one_cycle(optimizer, lr, total)
        lr_driven: Schedule | None = None
        momentum = None
    else:
        lr_driven = lr
    driver = HyperparamScheduler(
        optimizer, lr=lr_driven, momentum=momentum, weight_decay=wd, groups=group_spec
    )
    per_group = bool(arm["layerwise"] or arm["lars"] or arm["freeze"])
    inst_rows: dict[int, dict[str, Any]] = {}
    inst_every = task["instrument_every"]
    instrument = None
    if per_group or inst_every is not None:
        every = count(inst_every, ipe, total) if inst_every is not None else ipe
        instrument = Instrument(
            optimizer,
            every=every,
            keep=False,
            callback=lambda rows: collect_instrument(rows, inst_rows, ipe),
        )
    # LARS last: its pre-step hook rescales the gradients, and AutoLLR and the instrument,
    # attached before it, must read the raw ones
    lars = LARS(optimizer, **arm["lars"]) if arm["lars"] else None
    amp = bool(task["amp"]) and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if amp else None

    history: list[dict[str, Any]] = []
    start_epoch, diverged_at = 0, None
    # snapshot ensembles (Huang et al. 2017): validation probabilities at each cycle's end
    snap_at: set[int] = set()
    if arm.get("snapshots"):
        ends = lr.cycle_ends(total) if hasattr(lr, "cycle_ends") else [total - 1]
        snap_at = {e + 1 for e in ends}
    snaps: list[torch.Tensor] = []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if auto is not None:  # before the driver, which writes LRs from its multipliers
            auto.load_state_dict(state["auto_llr"])
        driver.load_state_dict(state["driver"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if torch_sched is not None:
            torch_sched.load_state_dict(state["torch_scheduler"])
        torch.set_rng_state(state["rng"])
        history, start_epoch = list(state["history"]), int(state["epoch"])
        snaps = list(state.get("snapshots") or [])
        inst_rows = {int(k): v for k, v in state.get("instrument", {}).items()}
        if instrument is not None:
            instrument._step = driver.step_count
        elapsed_before = float(state.get("seconds", 0.0))
    else:
        elapsed_before = 0.0
    eval_every = count(task["eval_every"], ipe, total) if task["eval_every"] is not None else None
    sf = has_train_eval_modes(optimizer)

    def record(loss_sum: float, loss_n: int) -> None:
        if sf:
            optimizer.eval()  # type: ignore[attr-defined]
        row: dict[str, Any] = {
            "step": driver.step_count,
            "epoch": driver.step_count / ipe,
            "train_loss": loss_sum / loss_n if loss_n else math.nan,
        }
        row.update(evaluate(model, val_x, val_y, task["eval_batches"]))
        last = max(0, driver.step_count - 1)
        g0 = optimizer.param_groups[0]
        row["lr"] = lr(last) if torch_sched is None else applied[0]
        row["momentum"] = (
            momentum(last)
            if momentum is not None
            else applied[1]
            if torch_sched is not None
            else momentum_of(g0)
        )
        if per_group:
            for g, values in zip(optimizer.param_groups, driver.values(last)):
                row[f"lr/{g.get('name', '?')}"] = values.get("lr", float(g["lr"]))
        history.append(row)
        if sf:
            optimizer.train()  # type: ignore[attr-defined]

    model.train()
    if sf:
        optimizer.train()  # type: ignore[attr-defined]
    for epoch in range(start_epoch, epochs):
        loss_sum, loss_n, tick = 0.0, 0, time.perf_counter()
        for xb, yb in batches(train_x, train_y, bs, seed=seed, epoch=epoch):
            if plan is not None:
                plan.apply(model, optimizer, driver.step_count)
            with torch.autocast(device.type, enabled=amp):
                loss = F.cross_entropy(model(xb), yb)
            value = float(loss.detach())
            if not math.isfinite(value):
                diverged_at = driver.step_count
                break
            if torch_sched is not None:  # what PyTorch's scheduler set for this update
                applied = (
                    float(optimizer.param_groups[0]["lr"]),
                    momentum_of(optimizer.param_groups[0]),
                )
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            if torch_sched is not None and driver.step_count < total:
                torch_sched.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum, loss_n = loss_sum + value, loss_n + 1
            if driver.step_count in snap_at:
                snaps.append(probabilities(model, val_x, task["eval_batches"]))
            if eval_every is not None and driver.step_count % eval_every == 0:
                record(loss_sum, loss_n)
                loss_sum, loss_n = 0.0, 0
        if diverged_at is not None:
            record(loss_sum, loss_n)
            break
        if eval_every is None or loss_n:
            record(loss_sum, loss_n)
        seconds = elapsed_before + time.perf_counter() - started
        ckpt.save(
            {
                "epoch": epoch + 1,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "driver": driver.state_dict(),
                "auto_llr": auto.state_dict() if auto else None,
                "scaler": scaler.state_dict() if scaler else None,
                "torch_scheduler": torch_sched.state_dict() if torch_sched else None,
                "rng": torch.get_rng_state(),
                "history": history,
                "bounds": bounds,
                "tuning_updates": tuning,
                "range_test": rt_json,
                "instrument": {str(k): v for k, v in inst_rows.items()},
                "snapshots": snaps,
                "seconds": seconds,
            }
        )
        if progress is not None:
            progress(
                {
                    "kind": "epoch",
                    "trial": spec.id,
                    "epoch": epoch + 1,
                    "epochs": epochs,
                    "updates": driver.step_count,
                    "total": total,
                    "updates_per_s": ipe / max(1e-9, time.perf_counter() - tick),
                    "val_top1": history[-1].get("val_top1"),
                }
            )
    for h in (driver, lars, auto, instrument):
        if h is not None:
            h.remove()
    history.extend(inst_rows[k] for k in sorted(inst_rows))
    ensemble = snapshot_ensemble(snaps, val_y) if snaps else None
    final = final_metrics(
        history,
        task["stability_window"],
        cfg["targets"],
        diverged_at,
        bounds,
        lr,
        momentum,
        ipe,
        total,
    )
    if ensemble is not None:
        final.update(ensemble)
    return {
        "id": spec.id,
        "status": "diverged" if diverged_at is not None else "done",
        "seconds": elapsed_before + time.perf_counter() - started,
        "updates": driver.step_count,
        "tuning_updates": tuning,
        "final": final,
        "history": history,
        "range_test": rt_json,
    }
