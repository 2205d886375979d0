"""What a trial measures beyond its evaluations: snapshot ensembles, per-group rows and the
final summary (last and best value of the primary metric, its stability over the last
evaluations, updates to each target) that the store keeps and the reports read.

Which way a metric is better comes from the task's `MetricSet` (`lrlab.tasks.metrics`).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch

from lrlab.schedules import Schedule
from lrlab.tasks.metrics import MetricSet


def snapshot_ensemble(snaps: list[torch.Tensor], targets: torch.Tensor) -> dict[str, Any]:
    """Accuracy of each snapshot and of their average prediction (snapshot ensemble)."""
    y = targets[: len(snaps[0])].cpu()
    singles = [float((p.argmax(1) == y).float().mean()) for p in snaps]
    mean = torch.stack(snaps).mean(0)
    return {
        "ensemble_top1": float((mean.argmax(1) == y).float().mean()),
        "ensemble_size": len(snaps),
        "snapshot_top1": singles,
    }


def collect_instrument(rows: list[Any], into: dict[int, dict[str, Any]], ipe: int) -> None:
    for r in rows:
        row = into.setdefault(r.step, {"step": r.step, "epoch": r.step / ipe})
        row[f"effective_lr/{r.name}"] = r.effective_lr
        row[f"update_ratio/{r.name}"] = r.update_ratio


def final_metrics(
    history: list[dict[str, Any]],
    metrics: MetricSet,
    *,
    window: int,
    targets: dict[str, float],
    diverged_at: int | None,
    bounds: dict[str, Any] | None,
    lr: Schedule,
    momentum: Schedule | None,
    ipe: int,
    total: int,
) -> dict[str, Any]:
    """The trial's summary: the last evaluation, the best and the stability of the primary
    metric, and the first update at which each target was reached (None: never)."""
    primary = metrics.primary
    evals = [h for h in history if primary.name in h]
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
    for key in (*(m.name for m in metrics.validation), "train_loss"):
        if key in last:
            final[key] = last[key]
    pick = max if primary.higher_is_better else min
    final[f"best_{primary.name}"] = pick(h[primary.name] for h in evals)
    tail = [h[primary.name] for h in evals[-window:]]
    mean = sum(tail) / len(tail)
    final["stability_std"] = math.sqrt(sum((v - mean) ** 2 for v in tail) / max(1, len(tail) - 1))
    final["stability_change"] = (
        sum(abs(b - a) for a, b in itertools.pairwise(tail)) / (len(tail) - 1)
        if len(tail) > 1
        else 0.0
    )
    reached: dict[str, int | None] = {}
    for key, target in targets.items():
        metric = metrics[key]
        reached[key] = next(
            (h["step"] for h in evals if key in h and metric.reached(h[key], target)), None
        )
    final["updates_to_target"] = reached
    return final
