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

import dataclasses
import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lrlab.data import Dataset, batches, load_dataset, num_batches
from lrlab.models import build_model
from lrlab.optim import (
    LARS,
    AutoLLR,
    FreezeEvent,
    FreezePlan,
    HyperparamScheduler,
    Instrument,
    combine,
    cyclical_layers,
    fixed,
    interpolate,
    override,
    param_groups,
)
from lrlab.schedules import Constant, Schedule, cyclical_momentum
from lrlab.study.checkpoint import Checkpoint
from lrlab.study.optimizers import has_train_eval_modes, make_optimizer
from lrlab.study.resolve import TrialSpec, bound_schedule, count, materialize

Progress = Callable[[dict[str, Any]], None]
_DATA: dict[str, tuple[Dataset, torch.Tensor, torch.Tensor]] = {}


def _data(task: dict[str, Any]) -> tuple[Dataset, torch.Tensor, torch.Tensor]:
    """The data set and its validation split (the test set, or a fixed holdout of train)."""
    subset, down = task.get("train_subset"), task.get("downsample")
    key = repr((task["data"], sorted(task["data_options"].items()), task["holdout"], subset, down))
    if key not in _DATA:
        ds = load_dataset(task["data"], **task["data_options"])
        if subset is not None and subset < ds.n_train:
            # a fixed random subset (the same for every trial), for CPU-sized presets
            keep = torch.randperm(ds.n_train, generator=torch.Generator().manual_seed(20_201_017))
            keep = keep[:subset].sort().values
            ds = dataclasses.replace(ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep])
        if down is not None and down > 1:  # average-pool images once: CPU presets
            if ds.x_train.dim() != 4:
                raise ValueError(f"task.downsample needs image data; {task['data']} is not")
            ds = dataclasses.replace(
                ds, x_train=F.avg_pool2d(ds.x_train, down), x_test=F.avg_pool2d(ds.x_test, down)
            )
        if task["holdout"] > 0:
            ds, val = ds.holdout(task["holdout"], seed=0)
            _DATA[key] = (ds, val.x_test, val.y_test)
        else:
            _DATA[key] = (ds, ds.x_test, ds.y_test)
    return _DATA[key]


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "task.device = 'cuda' but no CUDA device is available; use 'cpu' or 'auto'"
        )
    return torch.device(name)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    limit: int | None = None,
    batch_size: int = 1000,
) -> dict[str, float]:
    """Mean loss, top-1 and top-5 accuracy (top-5 when there are more than 5 classes)."""
    was = model.training
    model.eval()
    n = len(x) if limit is None else min(len(x), limit * batch_size)
    loss = top1 = top5 = 0.0
    for i in range(0, n, batch_size):
        out = model(x[i : i + batch_size]).float()
        target = y[i : i + batch_size]
        loss += float(F.cross_entropy(out, target, reduction="sum"))
        ranks = out.topk(min(5, out.shape[1]), dim=1).indices
        top1 += float((ranks[:, 0] == target).sum())
        top5 += float((ranks == target[:, None]).any(dim=1).sum())
    model.train(was)
    result = {"val_loss": loss / n, "val_top1": top1 / n}
    if out.shape[1] > 5:
        result["val_top5"] = top5 / n
    return result


def run_trial(spec: TrialSpec, progress: Progress | None = None) -> dict[str, Any]:
    """Run (or resume) one trial and return its result for the store."""
    cfg, task, arm = spec.config, spec.config["task"], spec.config["arm"]
    torch.set_num_threads(task["threads"])
    device = _device(task["device"])
    started = time.perf_counter()
    ds, val_x, val_y = _data(task)
    train_x, train_y = ds.x_train.to(device), ds.y_train.to(device)
    val_x, val_y = val_x.to(device), val_y.to(device)
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
            bounds, tuning, rt_json = _bounds(
                arm, model, optimizer, train_x, train_y, val_x, val_y, bs, seed, ipe
            )
            if sweep_lars is not None:
                sweep_lars.remove()
    lr = materialize(arm["lr"], total=total, iters_per_epoch=ipe, bounds=bounds)
    momentum = _momentum(arm["momentum"], lr, total, ipe)
    wd = _scalar_or_schedule(arm["weight_decay"], total, ipe)
    group_spec, auto = _layerwise(arm, optimizer, total, ipe)
    plan = _freeze_plan(arm["freeze"], ipe, total)
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
        torch_sched = _torch_one_cycle(optimizer, lr, total)
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
            optimizer, every=every, keep=False, callback=lambda rows: _collect(rows, inst_rows, ipe)
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
            else _momentum_of(g0)
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
                    _momentum_of(optimizer.param_groups[0]),
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
                snaps.append(_probabilities(model, val_x, task["eval_batches"]))
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
    ensemble = _ensemble(snaps, val_y) if snaps else None
    final = _final(
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


def _momentum_of(group: dict[str, Any]) -> float:
    return float(group["betas"][0] if "betas" in group else group.get("momentum", math.nan))


def _torch_one_cycle(optimizer: torch.optim.Optimizer, lr: Schedule, total: int) -> Any:
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


@torch.no_grad()
def _probabilities(
    model: nn.Module, x: torch.Tensor, limit: int | None, bs: int = 1000
) -> torch.Tensor:
    was = model.training
    model.eval()
    n = len(x) if limit is None else min(len(x), limit * bs)
    probs = torch.cat([F.softmax(model(x[i : i + bs]).float(), dim=1) for i in range(0, n, bs)])
    model.train(was)
    return probs.cpu()


def _ensemble(snaps: list[torch.Tensor], y: torch.Tensor) -> dict[str, Any]:
    """Accuracy of each snapshot and of their average prediction (snapshot ensemble)."""
    y = y[: len(snaps[0])].cpu()
    singles = [float((p.argmax(1) == y).float().mean()) for p in snaps]
    mean = torch.stack(snaps).mean(0)
    return {
        "ensemble_top1": float((mean.argmax(1) == y).float().mean()),
        "ensemble_size": len(snaps),
        "snapshot_top1": singles,
    }


def _collect(rows: list[Any], into: dict[int, dict[str, Any]], ipe: int) -> None:
    for r in rows:
        row = into.setdefault(r.step, {"step": r.step, "epoch": r.step / ipe})
        row[f"effective_lr/{r.name}"] = r.effective_lr
        row[f"update_ratio/{r.name}"] = r.update_ratio


def _bounds(
    arm: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    vx: torch.Tensor,
    vy: torch.Tensor,
    bs: int,
    seed: int,
    ipe: int,
) -> tuple[dict[str, Any], int, str]:
    """Run the arm's range test on the trial's own model, data order and optimizer."""
    from lrlab.study.find import sweep_task

    rt = arm["range_test"]
    result = sweep_task(
        model,
        optimizer,
        x,
        y,
        vx,
        vy,
        bs,
        seed,
        start_lr=rt["start_lr"],
        end_lr=rt["end_lr"],
        num_updates=rt["num_updates"],
        mode=rt["mode"],
    )
    which = bound_schedule(arm["lr"], rt["schedule"])
    b = result.bounds(
        which, rule=rt["rule"], iters_per_epoch=ipe, epochs_per_step=rt["epochs_per_step"]
    )
    found = {
        "base_lr": b.base_lr,
        "max_lr": b.max_lr,
        "step_size": b.step_size,
        "rule": rt["rule"],
        "schedule": which,
        "interval": list(b.suggestion.interval) if b.suggestion.interval else None,
        "warnings": list(b.suggestion.warnings),
    }
    return found, result.updates, result.to_json()


def _momentum(spec: Any, lr: Schedule, total: int, ipe: int) -> Schedule | None:
    if spec is None:
        return None
    if spec == "cyclical":
        return cyclical_momentum(lr)
    if isinstance(spec, dict) and "kind" not in spec:
        return cyclical_momentum(lr, low=spec["low"], high=spec["high"])
    return _scalar_or_schedule(spec, total, ipe)


def _scalar_or_schedule(spec: Any, total: int, ipe: int) -> Schedule | None:
    if spec is None:
        return None
    if isinstance(spec, (int, float)):
        return Constant(float(spec))
    return materialize(spec, total=total, iters_per_epoch=ipe)


def _layerwise(
    arm: dict[str, Any], optimizer: torch.optim.Optimizer, total: int, ipe: int
) -> tuple[list[dict[str, Any]] | None, AutoLLR | None]:
    cfg = arm["layerwise"]
    if cfg is None:
        return None, None
    groups = optimizer.param_groups
    policy = cfg["policy"]
    if policy == "fixed":
        return fixed(groups, cfg["multipliers"]), None
    if policy == "interpolate":
        return interpolate(groups, cfg["first"], cfg["last"], geometric=cfg["geometric"]), None
    if policy == "cyclical":
        mult = materialize(cfg["multiplier"], total=total, iters_per_epoch=ipe)
        return cyclical_layers(groups, mult, count(cfg["offset"], ipe, total)), None
    if policy == "override":
        return override(
            groups, cfg["blocks"], lr=materialize(cfg["lr"], total=total, iters_per_epoch=ipe)
        ), None
    auto = AutoLLR(
        optimizer,
        beta=cfg["beta"],
        warmup=cfg["warmup"],
        min_scale=cfg["min_scale"],
        max_scale=cfg["max_scale"],
        variant=cfg["variant"],
    )
    return auto.groups(), auto


def _freeze_plan(cfg: dict[str, Any] | None, ipe: int, total: int) -> FreezePlan | None:
    if cfg is None:
        return None
    events = [
        FreezeEvent(
            count(e["at"], ipe, total) if isinstance(e["at"], str) else e["at"],
            e["action"],
            tuple(e["blocks"]),
            tuple(e["except_blocks"]),
            "update" if isinstance(e["at"], str) else e["unit"],
            e["lr_scale"],
        )
        for e in cfg["events"]
    ]
    return FreezePlan(events, cfg["optimizer_state"], cfg["freeze_bn_stats"], ipe)


def _final(
    history: list[dict[str, Any]],
    window: int,
    targets: dict[str, float],
    diverged_at: int | None,
    bounds: dict[str, Any] | None,
    lr: Schedule,
    momentum: Schedule | None,
    ipe: int,
    total: int,
) -> dict[str, Any]:
    evals = [h for h in history if "val_top1" in h]
    final: dict[str, Any] = {
        "iters_per_epoch": ipe,
        "total_updates": total,
        "diverged_at": diverged_at,
        "schedules": {"lr": lr.to_dict(), "momentum": momentum.to_dict() if momentum else None},
    }
    if bounds is not None:
        final["bounds"] = bounds
    if not evals:
        return final
    last = evals[-1]
    for key in ("val_top1", "val_top5", "val_loss", "train_loss"):
        if key in last:
            final[key] = last[key]
    final["best_val_top1"] = max(h["val_top1"] for h in evals)
    tail = [h["val_top1"] for h in evals[-window:]]
    mean = sum(tail) / len(tail)
    final["stability_std"] = math.sqrt(sum((v - mean) ** 2 for v in tail) / max(1, len(tail) - 1))
    final["stability_change"] = (
        sum(abs(b - a) for a, b in itertools.pairwise(tail)) / (len(tail) - 1)
        if len(tail) > 1
        else 0.0
    )
    reached: dict[str, int | None] = {}
    for metric, target in targets.items():
        hit = next(
            (
                h["step"]
                for h in evals
                if metric in h
                and (h[metric] <= target if metric == "val_loss" else h[metric] >= target)
            ),
            None,
        )
        reached[metric] = hit
    final["updates_to_target"] = reached
    return final
