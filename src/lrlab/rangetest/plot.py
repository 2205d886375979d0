"""Plot of a range test: loss and accuracy against the learning rate, suggestions marked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lrlab._figures import save, subplots
from lrlab.rangetest.rules import CurveError, prepare

if TYPE_CHECKING:
    from lrlab.rangetest.result import RangeTestResult

_COLORS = ("tab:red", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def plot_range_test(result: RangeTestResult, path: str | Path, rules: tuple[str, ...]) -> Path:
    """Write the PNG described in `RangeTestResult.plot`."""
    acc_lrs, acc = result.accuracy_curve()
    panels = 2 if acc is not None else 1
    fig, axes = subplots(panels, 1, figsize=(8, 3.4 * panels + 0.6), sharex=True, squeeze=False)
    ax = axes[0][0]
    lrs, losses = np.asarray(result.lrs), np.asarray(result.losses, dtype=float)
    ax.plot(lrs, losses, ".", color="0.65", ms=3, label="loss (each update)")
    try:
        curve = prepare(lrs, losses)
        ax.plot(curve.lrs, curve.fit, color="tab:blue", lw=1.8, label="smoothed (zero lag)")
        low, high = float(np.min(curve.fit)), float(np.max(curve.raw))
        top = max(result.initial_loss or high, float(curve.fit[0]))
        ax.set_ylim(low - 0.1 * (top - low), top + 0.35 * (top - low))
    except CurveError:
        pass
    if result.val_losses is not None and result.val_lrs is not None:
        ax.plot(
            result.val_lrs,
            result.val_losses,
            "o-",
            color="tab:orange",
            ms=3,
            lw=1,
            label="validation loss",
        )
    ax.set_ylabel("loss")
    for i, rule in enumerate(rules):
        try:
            s = result.suggest(rule, resamples=0)
        except ValueError:
            continue
        for a in axes[:, 0]:
            a.axvline(
                s.lr,
                color=_COLORS[i % len(_COLORS)],
                ls="--",
                lw=1.2,
                label=f"{rule}: {s.lr:.3g}" if a is ax else None,
            )
    if result.mode == "exp":
        ax.set_xscale("log")
    ax.legend(fontsize=8, loc="lower left", frameon=False)
    ax.grid(alpha=0.25)
    ax.set_title(
        f"LR range test ({result.mode}, {result.updates} updates, {result.optimizer}); "
        f"stopped: {result.stop_reason}",
        fontsize=9,
    )
    if acc is not None:
        ax2 = axes[1][0]
        label = (
            "validation accuracy" if result.val_accuracy is not None else "training-batch accuracy"
        )
        ax2.plot(acc_lrs, acc, ".-", color="tab:green", ms=3, lw=0.8, label=label)
        ax2.set_ylabel("accuracy")
        ax2.legend(fontsize=8, loc="upper left", frameon=False)
        ax2.grid(alpha=0.25)
    axes[-1][0].set_xlabel("learning rate")
    fig.tight_layout()
    return save(fig, path)
