"""What a trial measures: validation metrics, snapshot ensembles, per-group rows and the
final summary (last and best accuracy, stability over the last evaluations, updates to
each target) that the store keeps and the reports read.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lrlab.schedules import Schedule


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


@torch.no_grad()
def probabilities(
    model: nn.Module, x: torch.Tensor, limit: int | None, bs: int = 1000
) -> torch.Tensor:
    was = model.training
    model.eval()
    n = len(x) if limit is None else min(len(x), limit * bs)
    probs = torch.cat([F.softmax(model(x[i : i + bs]).float(), dim=1) for i in range(0, n, bs)])
    model.train(was)
    return probs.cpu()


def snapshot_ensemble(snaps: list[torch.Tensor], y: torch.Tensor) -> dict[str, Any]:
    """Accuracy of each snapshot and of their average prediction (snapshot ensemble)."""
    y = y[: len(snaps[0])].cpu()
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
