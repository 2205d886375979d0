"""The range test, confirm step and momentum / weight-decay tests on a task: what studies
run at the start of a trial, and what ``lrlab find`` runs (`lrlab.study.find`).

Both read a task the same way (`TaskData`): the first epoch's batches in the trial's order,
validation on the first examples of the validation split, so the bounds ``lrlab find``
prints are the bounds a study would use. A task in the plain form (``(inputs, targets)``
batches, ``loss(model(inputs), targets)``) goes to `lrlab.rangetest` as it is, with
training accuracy recorded for classification; a task with its own ``step`` or
``predict`` is handed over as a model whose output is its loss (`AsLoss`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lrlab.rangetest import (
    ConfirmResult,
    HyperTestResult,
    RangeTestResult,
    confirm,
    momentum_test,
    range_test,
    weight_decay_test,
)
from lrlab.tasks import Task, TaskData
from lrlab.tasks.data import batch_len

#: Validation the range test reads: the first SWEEP_VAL examples in chunks of SWEEP_CHUNK.
SWEEP_VAL, SWEEP_CHUNK = 2000, 500
#: Validation each confirm run is scored on: the first CONFIRM_VAL examples, one batch.
CONFIRM_VAL = 1000
#: A study's confirm runs: CONFIRM_SHARE of the trial's updates each, CONFIRM_MIN at least.
CONFIRM_SHARE, CONFIRM_MIN = 0.1, 30


def confirm_horizon(updates: int | None, total: int) -> int:
    """Updates of each confirm run in a trial of ``total`` updates (``updates``: the arm's
    own ``range_test.confirm_updates``).

    A short run rewards a high LR too early: on the MNIST-1D CNN (1080 updates, the pick
    read at the arm's peak momentum), 30-update runs ranked 2x the pick first on two seeds
    of five whose full 1cycle at 2x collapsed to chance (one of them up to 100-update runs);
    108-update runs ranked the pick first wherever 2x collapsed (10 seeds, 4 of them
    collapsing at 2x), and kept 2x on 4 of 5 MNIST-1D MLP seeds, where it trains better.

    >>> confirm_horizon(None, 1080), confirm_horizon(None, 210), confirm_horizon(8, 1080)
    (108, 30, 8)
    """
    if updates is not None:
        return updates
    return max(CONFIRM_MIN, round(CONFIRM_SHARE * total))


class AsLoss(nn.Module):
    """A task's training loss as a model: ``AsLoss(model, task)(batch) == task's loss``.

    The range test and the confirm step take ``(inputs, targets)`` batches and
    ``loss_fn(model(inputs), targets)``; a task with any other batch structure is run
    through them as ``(batch, stand-in targets)`` with this as the model, the loss as its
    output and a stand-in that only carries the batch size (validation is weighted by it).
    Its state is the wrapped model's, so their snapshot and restore cover it.
    """

    def __init__(self, model: nn.Module, task: Task) -> None:
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, batch: Any) -> torch.Tensor:
        return self.task.training_loss(self.model, batch)


def _own_loss(loss: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
    return loss


@dataclass
class RangeTestForm:
    """What `lrlab.rangetest` is given for a task: model, batches, loss and validation."""

    model: nn.Module
    loss_fn: Callable[..., torch.Tensor]
    wrap: bool

    @classmethod
    def of(cls, model: nn.Module, data: TaskData) -> RangeTestForm:
        task = data.task
        if task.plain:
            assert task.loss is not None
            return cls(model, task.loss, False)
        return cls(AsLoss(model, task), _own_loss, True)

    def batches(self, batches: list[Any]) -> list[Any]:
        if not self.wrap:
            return batches
        return [(b, torch.empty(batch_len(b))) for b in batches]


def _validation(form: RangeTestForm, data: TaskData, examples: int, chunk: int) -> list[Any]:
    return form.batches(list(data.val_batches(examples=examples, chunk=chunk)))


def sweep(
    model: nn.Module, optimizer: torch.optim.Optimizer, data: TaskData, **kwargs: Any
) -> RangeTestResult:
    """The range test as studies run it: the first epoch's batches (repeated if the sweep is
    longer), validation on the first 2000 examples, every other option in ``kwargs``."""
    form = RangeTestForm.of(model, data)
    train = form.batches(data.first_batches(kwargs.get("num_updates", 100) + 1))
    return range_test(
        form.model,
        optimizer,
        train,
        loss_fn=form.loss_fn,
        val_data=_validation(form, data, SWEEP_VAL, SWEEP_CHUNK),
        **kwargs,
    )


def confirm_runs(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TaskData,
    candidates: Sequence[float],
    updates_each: int = 30,
) -> ConfirmResult:
    """The confirm step as studies run it: short 1cycle runs on the first epoch's batches at
    each candidate max LR, validation loss on the first 1000 examples."""
    form = RangeTestForm.of(model, data)
    return confirm(
        form.model,
        optimizer,
        form.batches(data.first_batches(updates_each)),
        list(candidates),
        loss_fn=form.loss_fn,
        val_data=_validation(form, data, CONFIRM_VAL, CONFIRM_VAL),
        updates_each=updates_each,
    )


def hyper_tests(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TaskData,
    bounds: tuple[float, float],
    num_updates: int,
    *,
    momentum: bool,
    weight_decay: bool,
) -> tuple[HyperTestResult | None, HyperTestResult | None]:
    """Smith's momentum and weight-decay tests between the one_cycle ``bounds``."""
    form = RangeTestForm.of(model, data)
    train = form.batches(data.first_batches(num_updates + 1))
    common: dict[str, Any] = {
        "val_data": _validation(form, data, SWEEP_VAL, SWEEP_CHUNK),
        "base_lr": bounds[0],
        "max_lr": bounds[1],
        "loss_fn": form.loss_fn,
        "num_updates": num_updates,
    }
    m = momentum_test(form.model, optimizer, train, **common) if momentum else None
    w = weight_decay_test(form.model, optimizer, train, **common) if weight_decay else None
    return m, w


def _tensor_task(x: torch.Tensor, y: torch.Tensor, vx: torch.Tensor, vy: torch.Tensor) -> Task:
    from torch.utils.data import TensorDataset

    return Task(
        lambda: nn.Identity(),
        TensorDataset(x, y),
        TensorDataset(vx, vy),
        torch.nn.functional.cross_entropy,
    )


def sweep_task(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    batch_size: int,
    seed: int,
    **kwargs: Any,
) -> RangeTestResult:
    """`sweep` on a classification task given as tensors (kept for scripts written before
    `TaskData`; new code builds a `TaskData` and calls `sweep`)."""
    task = _tensor_task(x, y, val_x, val_y)
    data = TaskData(task, batch_size=batch_size, seed=seed, device=x.device)
    return sweep(model, optimizer, data, **kwargs)


def confirm_task(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    batch_size: int,
    seed: int,
    candidates: list[float],
    updates_each: int = 30,
) -> ConfirmResult:
    """`confirm_runs` on a classification task given as tensors (see `sweep_task`)."""
    task = _tensor_task(x, y, val_x, val_y)
    data = TaskData(task, batch_size=batch_size, seed=seed, device=x.device)
    return confirm_runs(model, optimizer, data, candidates, updates_each)
