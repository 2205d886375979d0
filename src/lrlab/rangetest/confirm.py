"""The confirm step: short 1cycle runs at a few candidate LRs, picked by validation loss.

A range test reads one sweep; the confirm step spends a stated budget to check its
reading: from the same starting state, it trains ``updates_each`` updates of a compressed
1cycle (with cyclical momentum when the optimizer has momentum) at each candidate maximum
LR, evaluates the validation loss, and keeps the lowest. Model, optimizer and RNG are
restored after every candidate and at the end, as in the sweep.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lrlab.optim import HyperparamScheduler
from lrlab.rangetest.loop import (
    SupervisedStep,
    apply_update,
    cache_batches,
    cached_evaluator,
    epochs,
    evaluated,
    forward_backward,
    model_device,
    train_mode,
)
from lrlab.rangetest.snapshot import TrainingSnapshot, hooks_suspended
from lrlab.schedules import cyclical_momentum, one_cycle


@dataclass(frozen=True)
class ConfirmResult:
    """Validation loss after a short run at each candidate; ``best`` has the lowest."""

    candidates: tuple[float, ...]
    val_losses: tuple[float, ...]
    updates: int

    @property
    def best(self) -> float:
        finite = [(v, c) for v, c in zip(self.val_losses, self.candidates) if math.isfinite(v)]
        if not finite:
            raise ValueError("every candidate diverged in the confirm runs; lower the LR range")
        return min(finite)[1]


def confirm(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Iterable[Any],
    candidates: Sequence[float],
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    val_data: Iterable[Any],
    updates_each: int = 30,
    val_batches: int = 4,
    accumulation: int = 1,
    scaler: Any | None = None,
    device: torch.device | str | None = None,
) -> ConfirmResult:
    """Train a short 1cycle at each candidate max LR and keep the lowest validation loss.

    The budget is ``len(candidates) * updates_each`` optimizer updates; each update is
    the sweep's (`lrlab.rangetest.loop`: ``accumulation`` micro-batches, ``scaler`` for AMP).

    Example:
        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> x, y = torch.randn(256, 10), torch.randint(0, 3, (256,))
        >>> model = torch.nn.Linear(10, 3)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> data = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)]
        >>> loss = torch.nn.functional.cross_entropy
        >>> r = confirm(model, opt, data, [0.01, 0.1, 10.0], loss_fn=loss, val_data=data[:2],
        ...             updates_each=20)
        >>> r.updates, r.best in (0.01, 0.1)
        (60, True)
    """
    _check(candidates, updates_each, accumulation)
    dev = model_device(model, device)
    step = SupervisedStep(model, loss_fn, dev)
    evaluate = cached_evaluator(model, loss_fn, cache_batches(val_data, val_batches, dev))
    has_momentum = all(
        ("momentum" in g and g["momentum"]) or "betas" in g for g in optimizer.param_groups
    )
    snapshot = TrainingSnapshot.take(model, optimizer, scaler)
    losses: list[float] = []
    suspended = hooks_suspended(optimizer)  # the user's scheduler/LARS hooks stay off
    suspended.__enter__()
    try:
        run = _Run(step, optimizer, updates_each, accumulation, scaler, has_momentum)
        for lr_max in candidates:
            snapshot.restore(model, optimizer, scaler)
            if run.trains(data, float(lr_max)):
                value = float(evaluated(model, evaluate, optimizer)["loss"])
                losses.append(value if math.isfinite(value) else math.inf)
            else:
                losses.append(math.inf)
    finally:
        snapshot.restore(model, optimizer, scaler)
        suspended.__exit__(None, None, None)
    return ConfirmResult(
        tuple(float(c) for c in candidates), tuple(losses), len(candidates) * updates_each
    )


def _check(candidates: Sequence[float], updates_each: int, accumulation: int) -> None:
    if not candidates or any(not (isinstance(c, (int, float)) and c > 0) for c in candidates):
        raise ValueError(
            f"candidates={list(candidates)!r} is invalid; expected positive learning rates"
        )
    if isinstance(updates_each, bool) or not isinstance(updates_each, int) or updates_each < 4:
        raise ValueError(f"updates_each={updates_each!r} is invalid; expected an integer >= 4")
    if isinstance(accumulation, bool) or not isinstance(accumulation, int) or accumulation < 1:
        raise ValueError(f"accumulation={accumulation!r} is invalid; expected an integer >= 1")


@dataclass(frozen=True)
class _Run:
    """One candidate's short 1cycle (with cyclical momentum when the optimizer has any)."""

    step: SupervisedStep
    optimizer: torch.optim.Optimizer
    updates: int
    accumulation: int
    scaler: Any | None
    has_momentum: bool

    def trains(self, data: Iterable[Any], lr_max: float) -> bool:
        """Train ``updates`` updates peaking at ``lr_max``; False when the loss diverged."""
        lr = one_cycle(max_lr=lr_max, total=self.updates)
        momentum = cyclical_momentum(lr) if self.has_momentum else None
        driver = HyperparamScheduler(self.optimizer, lr=lr, momentum=momentum)
        self.step.model.train()
        train_mode(self.optimizer)
        batches = epochs(data)
        try:
            for _ in range(self.updates):
                m = forward_backward(self.step, batches, self.accumulation, self.scaler)
                if m.exhausted:
                    raise ValueError("data yielded fewer batches than the confirm runs need")
                if not math.isfinite(m.loss):
                    return False
                apply_update(self.optimizer, self.scaler)
        finally:
            driver.remove()
        return True
