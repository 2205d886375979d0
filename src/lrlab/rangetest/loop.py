"""The training-loop pieces the sweep and the confirm step share.

One update is the same everywhere: ``accumulation`` micro-batches through the step
(forward only), each loss divided by ``accumulation`` and backpropagated (through the
scaler's ``scale`` with AMP), then the optimizer step (``scaler.step`` and ``update``
with AMP) and ``zero_grad``. Validation is a fixed set of cached batches evaluated in
``eval`` mode without gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_END = object()  # end of data (a batch may legitimately be None)


def epochs(data: Iterable[Any]) -> Iterator[Any]:
    """Iterate ``data`` again and again (epochs); a one-shot iterator ends when exhausted."""
    total = 0
    while True:
        for batch in data:
            total += 1
            yield batch
        if total == 0:
            raise ValueError("data yielded no batches")
        if iter(data) is data:  # an iterator, not a re-iterable collection or loader
            return


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` (a tensor, or lists, tuples and dicts of them) moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def batch_accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float | None:
    """Top-1 accuracy for class-index targets; None for anything that is not classification."""
    if outputs.dim() != 2 or targets.dim() != 1 or targets.dtype not in (torch.int64, torch.int32):
        return None
    return float((outputs.argmax(dim=1) == targets).float().mean())


def model_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    """``device`` if given, else where the model's first parameter lives (CPU without any)."""
    if device is not None:
        return torch.device(device)
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


class SupervisedStep:
    """``loss_fn(model(inputs), targets)`` on ``(inputs, targets, *rest)`` batches (+ accuracy)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, device: torch.device) -> None:
        self.model, self.loss_fn, self.device = model, loss_fn, device
        self.last_accuracy: float | None = None

    def __call__(self, batch: Any) -> torch.Tensor:
        inputs, targets = to_device(batch[0], self.device), to_device(batch[1], self.device)
        outputs = self.model(inputs)
        self.last_accuracy = batch_accuracy(outputs.detach(), targets)
        return self.loss_fn(outputs, targets)


@dataclass
class Measured:
    """What the forward passes of one update measured (before its optimizer step)."""

    loss: float  # mean over the micro-batches; non-finite stops the update
    accuracy: float | None
    exhausted: bool  # the data ran out before the update was complete


def forward_backward(
    step: Callable[[Any], torch.Tensor],
    batches: Iterator[Any],
    accumulation: int = 1,
    scaler: Any | None = None,
) -> Measured:
    """Run ``accumulation`` micro-batches forward and backward; gradients are left in place."""
    losses, accs = [], []
    for _ in range(accumulation):
        batch = next(batches, _END)
        if batch is _END:
            return Measured(math.nan, None, True)
        loss = step(batch)
        value = float(loss.detach())
        losses.append(value)
        if isinstance(step, SupervisedStep) and step.last_accuracy is not None:
            accs.append(step.last_accuracy)
        if not math.isfinite(value):
            break
        (scaler.scale(loss / accumulation) if scaler else loss / accumulation).backward()
    return Measured(sum(losses) / len(losses), sum(accs) / len(accs) if accs else None, False)


def apply_update(optimizer: torch.optim.Optimizer, scaler: Any | None = None) -> None:
    """The optimizer step on the accumulated gradients (through the scaler with AMP)."""
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def cache_batches(data: Iterable[Any], n: int, device: torch.device) -> list[Any]:
    """The first ``n`` non-empty batches of ``data`` on ``device`` (validation is read
    from these). An empty batch (a slice past the end of a tensor) is skipped: its mean
    loss is NaN, and even at weight zero it would make every reading NaN."""
    cached = []
    for batch in data:
        targets = batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else None
        if targets is not None and hasattr(targets, "__len__") and len(targets) == 0:
            continue
        cached.append(to_device(batch, device))
        if len(cached) == n:
            break
    if not cached:
        raise ValueError("val_data yielded no non-empty batches")
    return cached


def cached_evaluator(
    model: nn.Module, loss_fn: LossFn, cached: list[Any]
) -> Callable[[], Mapping[str, float]]:
    """An evaluation over ``cached`` batches: example-weighted loss (and accuracy)."""

    def evaluate() -> Mapping[str, float]:
        total, correct, count, has_acc = 0.0, 0.0, 0, True
        for inputs, targets, *_ in cached:
            outputs = model(inputs)
            n = len(targets)
            total += float(loss_fn(outputs, targets)) * n
            acc = batch_accuracy(outputs, targets)
            has_acc = has_acc and acc is not None
            correct += (acc or 0.0) * n
            count += n
        return {"loss": total / count, **({"accuracy": correct / count} if has_acc else {})}

    return evaluate


def evaluated(
    model: nn.Module,
    evaluate: Callable[[], Mapping[str, float]],
    optimizer: torch.optim.Optimizer | None = None,
) -> Mapping[str, float]:
    """``evaluate()`` in eval mode without gradients; the model's mode is restored. An
    optimizer with modes of its own (Schedule-Free's) is switched to eval too, so the model
    is evaluated at the point it would be used."""
    was_training = model.training
    modes = optimizer is not None and has_modes(optimizer)
    if modes:
        optimizer.eval()  # type: ignore[union-attr]
    model.eval()
    try:
        with torch.no_grad():
            return evaluate()
    finally:
        model.train(was_training)
        if modes:
            optimizer.train()  # type: ignore[union-attr]


def has_modes(optimizer: torch.optim.Optimizer) -> bool:
    """Schedule-free optimizers keep two points and must be told train() / eval()."""
    return callable(getattr(optimizer, "train", None)) and callable(
        getattr(optimizer, "eval", None)
    )


def train_mode(optimizer: torch.optim.Optimizer) -> None:
    """An optimizer with modes steps only in train mode (restored with its state after)."""
    if has_modes(optimizer):
        optimizer.train()  # type: ignore[attr-defined]
