"""`Task`: a model, its data and its loss, the one thing the study layer trains.

Everything above `lrlab.tasks` (studies, resume, reports, searches, ``lrlab find``, Ray)
sees a task only through this contract, so a user's model and data take the same path as
the bundled benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import IterableDataset

from lrlab.tasks.metrics import Metric, MetricSet


def _int(name: str, value: Any, low: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"Task: {name}={value!r} is invalid; expected an integer >= {low}")


def is_iterable(dataset: Any) -> bool:
    """Whether ``dataset`` is an iterable-style dataset (no ``len``, no indexing)."""
    return isinstance(dataset, IterableDataset)


def _check_dataset(name: str, ds: Any, optional: bool = False) -> None:
    if ds is None and optional:
        return
    if is_iterable(ds):
        return
    if not (hasattr(ds, "__getitem__") and hasattr(ds, "__len__")):
        raise TypeError(
            f"Task: {name}={type(ds).__name__} is not a dataset; expected a torch "
            "Dataset with __getitem__ and __len__ (map-style) or an IterableDataset"
        )
    if len(ds) == 0:
        raise ValueError(f"Task: {name} is empty; expected at least one example")


@dataclass(frozen=True, eq=False)
class Task:
    """A model factory, training and validation data, a loss, and optional metrics.

    Args:
        model: ``model() -> nn.Module``, called once per trial after the trial's seed is
            set (``torch.manual_seed(seed)``), so initial weights follow the seed.
        train: training data, a torch ``Dataset``: map-style (``__getitem__`` and
            ``__len__``; shuffled each epoch in an order fixed by ``(seed, epoch)``) or an
            ``IterableDataset`` with ``batches_per_epoch`` (give it a ``set_epoch(epoch)``
            method when its stream should differ per epoch; lrlab calls it).
        val: validation data (what studies, range tests and searches read).
        loss: ``loss(outputs, targets) -> scalar tensor``, e.g. ``F.cross_entropy`` or
            ``F.mse_loss``. Needed unless ``step`` is given. On validation it is summed
            exactly when it takes ``reduction=`` (every ``torch.nn.functional`` loss does).
        test: optional test data, evaluated once at the end of a trial (``test_<metric>``)
            when it is not the validation set.
        metrics: `Metric`s computed on validation batches from ``predict``'s outputs; the
            first is the primary metric (headline, stability, search); without metrics
            the validation loss is.
        step: ``step(model, batch) -> loss`` for any batch structure; lrlab does the
            backward pass, the optimizer step and everything around it. Validation loss
            is the same step under ``torch.no_grad()``.
        predict: ``predict(model, batch) -> (outputs, targets)`` for metrics (and for
            ``loss`` when there is no ``step``); default ``(model(batch[0]), batch[1])``.
        batch_size: the default batch size (a study's ``task.batch_size`` overrides it).
        batches_per_epoch: batches in one epoch; required for an ``IterableDataset``,
            for a map-style one a cap (default: all of it).
        num_workers, pin_memory, collate_fn: passed to ``torch.utils.data.DataLoader``.
            Data held as a ``TensorDataset`` without a ``collate_fn`` skip the DataLoader
            and are batched by indexing (the fast path).
        eval_batch_size: batch size on validation (default: 1000 for tensors held in
            memory, else ``batch_size``).
        name: a name for messages and reports.

    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> x, y = torch.randn(64, 3), torch.randn(64, 1)
    >>> task = Task(lambda: torch.nn.Linear(3, 1), TensorDataset(x[:48], y[:48]),
    ...             TensorDataset(x[48:], y[48:]), torch.nn.functional.mse_loss, batch_size=16)
    >>> task.metric_set.primary.name, task.iters_per_epoch(16)
    ('val_loss', 3)
    """

    model: Callable[[], nn.Module]
    train: Any
    val: Any
    loss: Callable[..., torch.Tensor] | None = None
    test: Any = field(default=None, kw_only=True)
    metrics: Sequence[Metric] = field(default=(), kw_only=True)
    step: Callable[[nn.Module, Any], torch.Tensor] | None = field(default=None, kw_only=True)
    predict: Callable[[nn.Module, Any], tuple[Any, Any]] | None = field(default=None, kw_only=True)
    batch_size: int = field(default=32, kw_only=True)
    batches_per_epoch: int | None = field(default=None, kw_only=True)
    num_workers: int = field(default=0, kw_only=True)
    pin_memory: bool = field(default=False, kw_only=True)
    collate_fn: Callable[[list[Any]], Any] | None = field(default=None, kw_only=True)
    eval_batch_size: int | None = field(default=None, kw_only=True)
    name: str = field(default="task", kw_only=True)

    def __post_init__(self) -> None:
        if not callable(self.model):
            raise TypeError(
                f"Task: model={self.model!r} is not callable; expected a function that "
                "returns a new nn.Module (called after the trial's seed is set)"
            )
        _check_dataset("train", self.train)
        _check_dataset("val", self.val)
        _check_dataset("test", self.test, optional=True)
        for key in ("loss", "step", "predict", "collate_fn"):
            value = getattr(self, key)
            if value is not None and not callable(value):
                raise TypeError(f"Task: {key}={value!r} is not callable")
        if self.loss is None and self.step is None:
            raise ValueError(
                "Task: give loss= (loss(outputs, targets)) or step= (step(model, batch) -> loss)"
            )
        _int("batch_size", self.batch_size, 1)
        _int("batches_per_epoch", self.batches_per_epoch, 1, optional=True)
        _int("num_workers", self.num_workers, 0)
        _int("eval_batch_size", self.eval_batch_size, 1, optional=True)
        if is_iterable(self.train) and self.batches_per_epoch is None:
            raise ValueError(
                "Task: train is an IterableDataset; give batches_per_epoch= (how many "
                "batches make one epoch)"
            )
        if not isinstance(self.pin_memory, bool):
            raise TypeError(f"Task: pin_memory={self.pin_memory!r}; expected True or False")
        metrics = tuple(self.metrics)
        for m in metrics:
            if not isinstance(m, Metric) or m.fn is None:
                raise TypeError(
                    f"Task: metrics entry {m!r} is not a Metric with a function; expected "
                    "lrlab.Metric(name, fn, higher_is_better=...)"
                )
        object.__setattr__(self, "metrics", metrics)
        MetricSet.of(metrics)  # unique names, none called 'loss'

    @property
    def metric_set(self) -> MetricSet:
        """The metrics a study of this task records (see `lrlab.tasks.metrics`)."""
        return MetricSet.of(self.metrics)

    def outputs(self, model: nn.Module, batch: Any) -> tuple[Any, Any]:
        """``(outputs, targets)`` of one batch: ``predict``, or ``(model(batch[0]), batch[1])``."""
        if self.predict is not None:
            return self.predict(model, batch)
        return model(batch[0]), batch[1]

    def training_loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The loss one update minimises: ``step``, or ``loss`` of ``outputs``."""
        if self.step is not None:
            return self.step(model, batch)
        assert self.loss is not None
        return self.loss(*self.outputs(model, batch))

    @property
    def plain(self) -> bool:
        """``(inputs, targets)`` batches and ``loss(model(inputs), targets)``: no step, predict."""
        return self.step is None and self.predict is None

    def iters_per_epoch(self, batch_size: int) -> int:
        """Optimizer updates in one epoch at ``batch_size``."""
        if is_iterable(self.train):
            assert self.batches_per_epoch is not None
            return self.batches_per_epoch
        full = math.ceil(len(self.train) / batch_size)
        return min(full, self.batches_per_epoch) if self.batches_per_epoch else full

    def __repr__(self) -> str:
        size = "iterable" if is_iterable(self.train) else str(len(self.train))
        names = ", ".join(m.name for m in self.metrics) or "none"
        return f"Task(name={self.name!r}, train={size}, metrics={names})"
