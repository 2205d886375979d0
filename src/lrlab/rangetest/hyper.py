"""Momentum and weight-decay tests ("A disciplined approach to neural network hyper-parameters").

Smith (2018, sections 4.3-4.4): with the learning-rate range fixed, repeat a short range
test at a few momentum values (0.8-0.99) and weight-decay values (1e-2 ... 1e-6, 0) and
keep the one with the lowest validation loss; the curves are read together, so every
value starts from the same model, optimizer state, random state and batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrlab.rangetest.result import RangeTestResult
from lrlab.rangetest.sweep import range_test

MOMENTA = (0.8, 0.85, 0.9, 0.95, 0.99)
WEIGHT_DECAYS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 0.0)


@dataclass
class HyperTestResult:
    """One range test per value of ``name``; ``best`` has the lowest mean validation loss."""

    name: str
    values: list[float]
    runs: list[RangeTestResult]
    scores: list[float]

    @property
    def best(self) -> float:
        finite = [(s, v) for s, v in zip(self.scores, self.values) if math.isfinite(s)]
        if not finite:
            raise ValueError(f"every {self.name} value diverged; lower the LR range")
        return min(finite)[1]

    def lead(self) -> tuple[float, float] | None:
        """(how much lower ``best``'s mean validation loss is than the runner-up's, its
        standard error): the pair's evaluations are taken at the same LRs on the same
        batches, so the error is that of their paired differences. None with one value."""
        ranked = sorted((s, i) for i, s in enumerate(self.scores) if math.isfinite(s))
        if len(ranked) < 2:
            return None
        a, b = (_tail(self.runs[i]) for _, i in ranked[:2])
        diffs = [y - x for x, y in zip(a, b)]
        n = len(diffs)
        mean = sum(diffs) / n
        sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else math.inf
        return mean, sd / math.sqrt(n)

    @property
    def decisive(self) -> bool:
        """Whether ``best`` leads the runner-up by more than two standard errors."""
        lead = self.lead()
        return lead is not None and lead[0] > 2 * lead[1]

    def summary(self) -> str:
        """``best`` with its lead over the runner-up, or a note that it is a tie."""
        lead = self.lead()
        if lead is None:
            return f"{self.name} {self.best:g}"
        verdict = "" if self.decisive else " (within noise: treat as a tie)"
        return f"{self.name} {self.best:g}, ahead by {lead[0]:.2g} ± {lead[1]:.2g}{verdict}"

    def plot(self, path: str | Path) -> Path:
        """Validation loss against LR, one curve per value, the best one drawn thickest."""
        from lrlab._figures import save, subplots

        fig, ax = subplots(figsize=(7.5, 4.2))
        best = self.best
        for v, run in zip(self.values, self.runs):
            if run.val_lrs is None or run.val_losses is None:
                continue
            ax.plot(
                run.val_lrs,
                run.val_losses,
                "o-",
                ms=3,
                lw=2.4 if v == best else 1.1,
                label=f"{self.name}={v:g}" + (" (best)" if v == best else ""),
            )
        ax.set_xlabel("learning rate")
        ax.set_ylabel("validation loss")
        ax.set_title(f"{self.name} test: lowest mean validation loss wins", fontsize=9)
        ax.legend(fontsize=8, frameon=False)
        ax.grid(alpha=0.25)
        fig.tight_layout()
        return save(fig, path)


def _set_hyper(optimizer: torch.optim.Optimizer, name: str, value: float) -> None:
    for i, g in enumerate(optimizer.param_groups):
        if name == "momentum" and "betas" in g:
            g["betas"] = (value, *g["betas"][1:])
        elif name in g:
            if name == "momentum" and g[name] == 0:
                raise ValueError(
                    f"param group {i} was built with momentum=0; "
                    "build the optimizer with momentum > 0"
                )
            g[name] = value
        else:
            raise ValueError(f"{type(optimizer).__name__} param group {i} has no {name!r}")


def hyper_test(
    name: str,
    values: Sequence[float],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Iterable[Any],
    *,
    val_data: Iterable[Any],
    base_lr: float,
    max_lr: float,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    num_updates: int = 100,
    **kwargs: Any,
) -> HyperTestResult:
    """Run a linear range test from ``base_lr`` to ``max_lr`` for each value of ``name``.

    The optimizer's own value of ``name`` is restored afterwards, as is everything else.
    """
    if name not in ("momentum", "weight_decay"):
        raise ValueError(f"name={name!r} is invalid; expected 'momentum' or 'weight_decay'")
    if not values:
        raise ValueError("values is empty; give at least one value to test")
    runs, scores = [], []
    saved = [dict(g) for g in optimizer.param_groups]
    try:
        for v in values:
            _set_hyper(optimizer, name, float(v))
            run = range_test(
                model,
                optimizer,
                data,
                loss_fn=loss_fn,
                val_data=val_data,
                mode="linear",
                start_lr=base_lr,
                end_lr=max_lr,
                num_updates=num_updates,
                stop_on_divergence=False,
                **kwargs,
            )
            runs.append(run)
            # A run that stopped early (non-finite loss) was evaluated only while it still
            # worked; averaging those evaluations would make the worst value look best.
            tail = _tail(run)
            ok = run.stop_reason == "completed" and all(math.isfinite(x) for x in tail)
            scores.append(sum(tail) / len(tail) if ok else math.inf)
    finally:
        for g, old in zip(optimizer.param_groups, saved):
            for key in ("momentum", "betas", "weight_decay"):
                if key in old:
                    g[key] = old[key]
    return HyperTestResult(name, [float(v) for v in values], runs, scores)


def momentum_test(*args: Any, values: Sequence[float] = MOMENTA, **kwargs: Any) -> HyperTestResult:
    """`hyper_test` over momentum (SGD ``momentum`` or Adam ``betas[0]``), 0.8-0.99 by default."""
    return hyper_test("momentum", values, *args, **kwargs)


def weight_decay_test(
    *args: Any, values: Sequence[float] = WEIGHT_DECAYS, **kwargs: Any
) -> HyperTestResult:
    """`hyper_test` over weight decay, {1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 0} by default."""
    return hyper_test("weight_decay", values, *args, **kwargs)


def _tail(run: RangeTestResult) -> list[float]:
    """The evaluations a hyper test scores: every one after the starting point."""
    return (run.val_losses or [math.nan])[1:] or [math.nan]
