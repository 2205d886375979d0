"""The bundled benchmark tasks as `Task`s, registered under their data set's name.

``[task] data = "digits" model = "mlp"`` in a study names the task ``BUNDLED["digits"]``
with ``model="mlp"``; it then takes the same path as a user's entry point. Each is a
classification task held in memory (``TensorDataset``, so it is batched by indexing),
with cross-entropy, top-1 (and top-5 with more than five classes) accuracy, and the
published baseline's batch size as its default.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from lrlab.data import DATASETS, load_dataset
from lrlab.models import MODELS, build_model
from lrlab.tasks.metrics import TOP1, TOP5, Metric
from lrlab.tasks.task import Task

#: Batch sizes of the published baselines: MNIST-1D (Greydanus 2020) 100, Fashion-MNIST 128.
DEFAULT_BATCH = {"mnist1d": 100, "fashion-mnist": 128, "digits": 64, "cifar10": 128}
#: The seed of the fixed training subset of CPU presets (``train_subset``): the same subset
#: for every trial and every run.
SUBSET_SEED = 20_201_017


def _ranks(outputs: torch.Tensor) -> torch.Tensor:
    # one top-k for both accuracies, so top-1 is the first of the top-5 ranks (ties included)
    return outputs.topk(min(5, outputs.shape[1]), dim=1).indices


def top1(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example top-1 hits (a bool tensor) of class scores ``(batch, classes)``."""
    return _ranks(outputs)[:, 0] == targets


def top5(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example top-5 hits of class scores ``(batch, classes)``."""
    return (_ranks(outputs) == targets[:, None]).any(dim=1)


#: Accuracy metrics for a classification `Task` of your own: ``metrics=[ACCURACY]``.
ACCURACY = dataclasses.replace(TOP1, name="top1", fn=top1)
TOP5_ACCURACY = dataclasses.replace(TOP5, name="top5", fn=top5)


def classification_metrics(num_classes: int) -> tuple[Metric, ...]:
    """Top-1, and top-5 when there are more than five classes."""
    return (ACCURACY, TOP5_ACCURACY) if num_classes > 5 else (ACCURACY,)


def classification(
    data: str,
    *,
    model: str,
    width: float = 1.0,
    data_options: Mapping[str, Any] | None = None,
    train_subset: int | None = None,
    downsample: int | None = None,
) -> Task:
    """A bundled data set with a bundled network (see `lrlab.data.load_dataset`,
    `lrlab.models.build_model`); its validation split is the test split, which studies
    replace by a split held out of training (``task.holdout``, 10% by default).

    Args:
        data: one of `lrlab.data.DATASETS`.
        model: one of `lrlab.models.MODELS`.
        width: the network's width multiplier.
        data_options: keyword options of `lrlab.data.load_dataset`.
        train_subset: train on a fixed random subset of this many examples (CPU presets).
        downsample: average-pool images by this factor (CPU presets).

    >>> task = classification("digits", model="mlp")
    >>> task.batch_size, len(task.train), [m.name for m in task.metrics]
    (64, 1438, ['top1', 'top5'])
    """
    if model not in MODELS:
        raise ValueError(f"model={model!r} is not a model; expected one of {', '.join(MODELS)}")
    try:
        ds = load_dataset(data, **dict(data_options or {}))
    except ValueError as e:
        if not data_options:
            raise
        raise ValueError(f"task.data_options: {e}") from None
    if train_subset is not None and train_subset < ds.n_train:
        keep = torch.randperm(ds.n_train, generator=torch.Generator().manual_seed(SUBSET_SEED))
        keep = keep[:train_subset].sort().values
        ds = dataclasses.replace(ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep])
    if downsample is not None and downsample > 1:
        if ds.x_train.dim() != 4:
            raise ValueError(f"task.downsample needs image data; {data} is not")
        ds = dataclasses.replace(
            ds,
            x_train=F.avg_pool2d(ds.x_train, downsample),
            x_test=F.avg_pool2d(ds.x_test, downsample),
        )
    test = TensorDataset(ds.x_test, ds.y_test)
    return Task(
        functools.partial(build_model, model, ds.input_shape, ds.num_classes, width=width),
        TensorDataset(ds.x_train, ds.y_train),
        test,
        F.cross_entropy,
        test=test,
        metrics=classification_metrics(ds.num_classes),
        batch_size=DEFAULT_BATCH.get(data, 100),
        name=f"{data}/{model}",
    )


#: The bundled tasks by name: ``BUNDLED[data](model=..., ...)`` returns a `Task`.
BUNDLED: dict[str, Callable[..., Task]] = {
    name: functools.partial(classification, name) for name in DATASETS
}
