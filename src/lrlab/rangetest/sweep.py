"""The LR range test sweep: raise the learning rate over a short run and record the losses.

Smith, "Cyclical Learning Rates for Training Neural Networks" (2017, section 3.3) sweeps
linearly and reads bounds off accuracy; Howard & Gugger (fastai) sweep exponentially and
read the loss. Both are here. What the peers get wrong and this loop does not:

* each loss is paired with the learning rate that produced it (the loss of the forward
  pass *after* the update), not with the rate about to be applied;
* the ladder is evenly spaced and ends at end_lr (to rounding); with several param groups a
  global multiplier is swept so layer-wise ratios survive;
* divergence is detected for any sign and scale of loss and on NaN/inf, and the result
  says why the sweep stopped;
* model, optimizer, scaler and RNG are restored exactly afterwards, also on exceptions,
  from a CPU copy (never a file in the user's directory).

Example (`range_test`; the state is restored after it):
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> x, y = torch.randn(256, 10), torch.randint(0, 3, (256,))
    >>> model = torch.nn.Linear(10, 3)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> batches = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)]
    >>> result = range_test(model, opt, batches, loss_fn=torch.nn.functional.cross_entropy,
    ...                     start_lr=1e-4, end_lr=10, num_updates=40)
    >>> result.stop_reason in ("completed", "diverged"), opt.param_groups[0]["lr"]
    (True, 0.1)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lrlab.optim import HyperparamScheduler
from lrlab.optim._steps import inner_optimizer
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
from lrlab.rangetest.result import RangeTestResult
from lrlab.rangetest.rules import DivergenceTest
from lrlab.rangetest.signal import MIN_POINTS, check_signal, refine_range
from lrlab.rangetest.snapshot import TrainingSnapshot, hooks_suspended
from lrlab.schedules import Exponential, Linear, Schedule

Progress = Callable[[int, int, float, float], None]


def ladder(start_lr: float, end_lr: float, num_updates: int, mode: str) -> Schedule:
    """The LR for each sweep update: evenly spaced in log (``exp``) or linear space."""
    if mode == "exp":
        gamma = (end_lr / start_lr) ** (1.0 / (num_updates - 1))
        return Exponential(init=start_lr, gamma=gamma, total=num_updates)
    return Linear(init=start_lr, end=end_lr, total=num_updates)


def range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Iterable[Any],
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    step: Callable[[Any], torch.Tensor] | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_updates: int = 100,
    mode: str = "exp",
    val_data: Iterable[Any] | None = None,
    val_batches: int = 4,
    eval_every: int | None = None,
    evaluate: Callable[[], Mapping[str, float]] | None = None,
    accumulation: int = 1,
    scaler: Any | None = None,
    device: torch.device | str | None = None,
    smoothing: float = 0.98,
    diverge_factor: float = 1.0,
    stop_on_divergence: bool = True,
    progress: Progress | None = None,
    refine: bool = True,
    refine_updates: int | None = None,
) -> RangeTestResult:
    """Sweep the learning rate from ``start_lr`` to ``end_lr`` and record loss (and accuracy).

    A training step is ``loss_fn(model(inputs), targets)`` on ``(inputs, targets, *rest)``
    batches (train accuracy recorded for classification), or your own ``step(batch) ->
    loss`` for anything else (autocast inside it for AMP); lrlab does the backward pass,
    accumulation, the (scaled) optimizer step and ``zero_grad``.

    Args:
        model: the model; its state is restored afterwards.
        optimizer: any torch optimizer (group LR ratios kept; the largest is reported),
            or a wrapper exposing one as ``.optimizer``, which the sweep steps itself.
        data: training batches, re-iterated as epochs if the sweep needs more.
        loss_fn: loss for the ``(inputs, targets)`` form.
        step: ``batch -> scalar loss tensor`` (forward only) for any other form.
        start_lr, end_lr, num_updates: the first and last LR (both reached), the updates.
        mode: ``"exp"`` (geometric ladder, Howard) or ``"linear"`` (Smith).
        val_data: validation batches; the first ``val_batches`` non-empty ones are cached
            and evaluated every ``eval_every`` updates (default: 20 over the sweep).
        evaluate: your own evaluation returning ``{"loss": ..., "accuracy": ...}``.
        accumulation: micro-batches per optimizer update.
        scaler: a ``torch.amp.GradScaler``; skipped (overflow) steps do not advance the sweep.
        device: where batches go in the ``loss_fn`` form (default: the model's device).
        smoothing: the debiased EMA factor of the recorded smoothed loss (fastai's 0.98).
        diverge_factor: stop when the smoothed loss exceeds ``best + factor * (start -
            best)`` and 5x the first 20 losses' noise (1.0: back above where it started;
            `lrlab.rangetest.rules.DivergenceTest`).
        stop_on_divergence: False records the whole ladder (non-finite losses still stop).
        progress: ``progress(update, num_updates, lr, loss)``, called after each update.
        refine: when the sweep has no signal (`lrlab.rangetest.signal`), run a denser
            second sweep from the same state over where the loss moved and return it,
            with the first in ``coarse``; False returns the first sweep as it is.
        refine_updates: updates of the second sweep (default ``max(num_updates, 50)``;
            under 30: none); `RangeTestResult.tuning_updates` counts both sweeps.

    Returns a `RangeTestResult`: ``.suggest()``, ``.bounds(schedule=...)``, ``.plot()``.
    """
    _check_args(
        start_lr, end_lr, num_updates, mode, accumulation, smoothing, diverge_factor,
        val_batches, eval_every,
    )  # fmt: skip
    if (loss_fn is None) == (step is None):
        raise ValueError("give exactly one of loss_fn= (for (inputs, targets) batches) or step=")
    setup = _setup(
        model, optimizer, data, loss_fn, step, val_data, val_batches, evaluate, device, mode,
        eval_every, accumulation, scaler, (smoothing, diverge_factor, stop_on_divergence),
        progress,
    )  # fmt: skip
    first = _run(setup, start_lr, end_lr, num_updates)
    window = _refinement(first) if refine and iter(data) is not data else None
    extra = refine_updates if refine_updates is not None else max(num_updates, 50)
    if window is None or extra < MIN_POINTS:  # a shorter second sweep could not be read
        return first
    second = _run(setup, window[0], window[1], extra)
    second.coarse = dataclasses.asdict(first)
    return second


def _setup(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Iterable[Any],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
    step: Callable[[Any], torch.Tensor] | None,
    val_data: Iterable[Any] | None,
    val_batches: int,
    evaluate: Callable[[], Mapping[str, float]] | None,
    device: torch.device | str | None,
    mode: str,
    eval_every: int | None,
    accumulation: int,
    scaler: Any | None,
    divergence: tuple[float, float, bool],
    progress: Progress | None,
) -> _Setup:
    """What every sweep of one range test shares: the unwrapped optimizer, the step, the
    cached validation and each group's LR ratio to the largest."""
    # A wrapper's step() may skip (accumulation) or scale on its own; the sweep does both.
    optimizer = inner_optimizer(optimizer)
    dev = model_device(model, device)
    if evaluate is None and val_data is not None:
        if loss_fn is None:
            raise ValueError("val_data needs loss_fn=; with step= pass evaluate= instead")
        evaluate = cached_evaluator(model, loss_fn, cache_batches(val_data, val_batches, dev))
    ref = max(float(g["lr"]) for g in optimizer.param_groups)
    return _Setup(
        model,
        optimizer,
        data,
        step if step is not None else SupervisedStep(model, loss_fn, dev),  # type: ignore[arg-type]
        evaluate,
        [float(g["lr"]) / ref if ref > 0 else 1.0 for g in optimizer.param_groups],
        mode,
        eval_every,
        accumulation,
        scaler,
        divergence,
        progress,
    )


def _refinement(result: RangeTestResult) -> tuple[float, float] | None:
    """The LR window of a second sweep when the first has no signal (or disagrees with
    itself under resampling); None when it can be read as it is."""
    signal = check_signal(result.lrs, result.losses, result.val_lrs, result.val_losses)
    if signal.ok:
        try:
            if result.suggest("lrlab").confident:
                return None
        except ValueError:
            pass
    return refine_range(
        signal,
        result.lrs,
        result.losses,
        mode=result.mode,
        start_lr=result.start_lr,
        end_lr=result.end_lr,
    )


@dataclass
class _Setup:
    """What every sweep of one range test shares (a refined sweep reuses it)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    data: Iterable[Any]
    step: Callable[[Any], torch.Tensor]
    evaluate: Callable[[], Mapping[str, float]] | None
    scales: list[float]
    mode: str
    eval_every: int | None
    accumulation: int
    scaler: Any | None
    divergence: tuple[float, float, bool]  # smoothing, diverge_factor, stop_on_divergence
    progress: Progress | None


def _run(setup: _Setup, start_lr: float, end_lr: float, num_updates: int) -> RangeTestResult:
    """One sweep from ``start_lr`` to ``end_lr``; the training state is restored after it."""
    model, optimizer, scaler, evaluate = setup.model, setup.optimizer, setup.scaler, setup.evaluate
    schedule = ladder(start_lr, end_lr, num_updates, setup.mode)
    every = setup.eval_every or max(1, num_updates // 20)
    snapshot = TrainingSnapshot.take(model, optimizer, scaler)
    # The user's own step hooks (a scheduler, LARS, an instrument) stay off during the
    # sweep: the snapshot restores tensors, not what those hooks would count or log.
    suspended = contextlib.ExitStack()
    suspended.enter_context(hooks_suspended(optimizer))
    driver: HyperparamScheduler | None = None
    rec = _Recorder(num_updates, *setup.divergence)
    started = time.perf_counter()
    try:
        model.train()
        train_mode(optimizer)
        driver = HyperparamScheduler(
            optimizer, lr=schedule, groups=[{"lr_scale": s} for s in setup.scales]
        )
        batches = epochs(setup.data)
        if evaluate is not None:
            rec.evaluation(None, evaluated(model, evaluate, optimizer))
        while rec.reason is None:
            t = driver.step_count
            m = forward_backward(setup.step, batches, setup.accumulation, scaler)
            if m.exhausted:
                rec.reason = "data exhausted"
                break
            # This forward saw the parameters after update t - 1: it measures lr(t - 1).
            rec.measured(t, m.loss, m.accuracy)
            if rec.reason is not None or t >= num_updates:
                break
            apply_update(optimizer, scaler)
            if driver.step_count == t:  # GradScaler skipped the step (inf/NaN gradients)
                rec.skipped += 1
                if rec.skipped > num_updates:
                    rec.reason = "every step skipped (inf/NaN gradients)"
                continue
            if evaluate is not None and (t + 1) % every == 0:
                rec.evaluation(t, evaluated(model, evaluate, optimizer))
            if setup.progress is not None:
                setup.progress(t + 1, num_updates, schedule(t), rec.last_loss)
    finally:
        if driver is not None:
            driver.remove()
        snapshot.restore(model, optimizer, scaler)
        suspended.close()
    return RangeTestResult(
        mode=setup.mode,
        start_lr=start_lr,
        end_lr=end_lr,
        num_updates=num_updates,
        lrs=[schedule(i) for i in range(len(rec.losses))],
        losses=rec.losses,
        smoothed=rec.smoothed,
        train_accuracy=rec.accuracies if any(a is not None for a in rec.accuracies) else None,
        initial_loss=rec.initial,
        val_lrs=[start_lr if i is None else schedule(i) for i in rec.val_steps] or None,
        val_losses=rec.val_losses or None,
        val_accuracy=rec.val_accs if any(a is not None for a in rec.val_accs) else None,
        group_scales=setup.scales,
        stop_reason=rec.reason or "completed",
        updates=len(rec.losses),
        skipped_steps=rec.skipped,
        seconds=time.perf_counter() - started,
        optimizer=type(optimizer).__name__,
    )


class _Recorder:
    """Losses paired with their LR index, EMA smoothing and the divergence test."""

    def __init__(self, n: int, beta: float, factor: float, stop: bool) -> None:
        self.stop = stop
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.accuracies: list[float | None] = []
        self.val_steps: list[int | None] = []
        self.val_losses: list[float] = []
        self.val_accs: list[float | None] = []
        self.initial: float | None = None
        self.reason: str | None = None
        self.skipped = 0
        self._test = DivergenceTest(n, beta, factor)

    @property
    def last_loss(self) -> float:
        return self.losses[-1] if self.losses else math.nan

    def measured(self, t: int, loss: float, acc: float | None) -> None:
        if t == 0:
            self.initial = self._test.initial = loss
            if not math.isfinite(loss):
                self.reason = "non-finite loss"
            return
        if len(self.losses) >= t:  # a skipped (AMP overflow) step measured the same LR again
            return
        self.losses.append(loss)
        self.accuracies.append(acc)
        if not math.isfinite(loss):
            self.smoothed.append(math.nan)
            self.reason = "non-finite loss"
            return
        self.smoothed.append(self._test.update(loss))
        if self.stop and self._test.fired:
            self.reason = "diverged"

    def evaluation(self, t: int | None, metrics: Mapping[str, float]) -> None:
        self.val_steps.append(t)
        self.val_losses.append(float(metrics["loss"]))
        acc = metrics.get("accuracy")
        self.val_accs.append(None if acc is None else float(acc))


def _check_args(
    start: float,
    end: float,
    n: int,
    mode: str,
    acc: int,
    beta: float,
    factor: float,
    val_batches: int,
    every: int | None,
) -> None:
    if mode not in ("exp", "linear"):
        raise ValueError(f"mode={mode!r} is invalid; expected 'exp' or 'linear'")
    low = 0.0 if mode == "linear" else None
    if not (isinstance(start, (int, float)) and math.isfinite(start)) or (
        start < 0 if low is not None else start <= 0
    ):
        allowed = ">= 0" if mode == "linear" else "> 0 (an exponential sweep cannot start at 0)"
        raise ValueError(f"start_lr={start!r} is invalid; expected a finite number {allowed}")
    if not (isinstance(end, (int, float)) and math.isfinite(end)) or end <= start:
        raise ValueError(
            f"end_lr={end!r} is invalid; expected a finite number > start_lr={start!r}"
        )
    for name, v, lo in (
        ("num_updates", n, 5),
        ("accumulation", acc, 1),
        ("val_batches", val_batches, 1),
    ):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name}={v!r} is invalid; expected an integer >= {lo}")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise ValueError(f"eval_every={every!r} is invalid; expected an integer >= 1")
    if not 0 <= beta < 1:
        raise ValueError(f"smoothing={beta!r} is invalid; expected a number in [0, 1)")
    if not factor > 0:
        raise ValueError(f"diverge_factor={factor!r} is invalid; expected a number > 0")
