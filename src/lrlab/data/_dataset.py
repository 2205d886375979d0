"""`Dataset`: a benchmark task held in memory as four tensors."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from lrlab.data._batching import seeded_permutation


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification task held in memory: inputs ``(N, C, ...)`` float32, labels int64.

    Tensors returned by `lrlab.data.load_dataset` are shared by every call in a process
    (that is what makes a second load free), so treat them as read-only; `batches` and
    `holdout` only index them.

    Attributes:
        name: the data set's name, e.g. ``"fashion-mnist"`` (``holdout`` appends the split).
        x_train: training inputs, float32, shape ``(n_train, C, ...)``.
        y_train: training labels, int64 in ``[0, num_classes)``, shape ``(n_train,)``.
        x_test: test inputs, float32, shape ``(n_test, C, ...)``.
        y_test: test labels, int64, shape ``(n_test,)``.
        num_classes: number of classes.
        classes: optional class names, ``classes[label]``.

    >>> import torch
    >>> ds = Dataset("toy", torch.zeros(8, 1, 4), torch.arange(8) % 2,
    ...              torch.zeros(2, 1, 4), torch.tensor([0, 1]), num_classes=2)
    >>> ds.input_shape, ds.n_train, ds.n_test
    ((1, 4), 8, 2)
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.dim() < 2:
                raise ValueError(
                    f"{self.name}: x_{split} must be a float32 tensor of shape (N, C, ...), "
                    f"got {_describe(x)}"
                )
            if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.dim() != 1:
                raise ValueError(
                    f"{self.name}: y_{split} must be an int64 tensor of shape (N,), "
                    f"got {_describe(y)}"
                )
            if len(x) != len(y):
                raise ValueError(
                    f"{self.name}: x_{split} has {len(x)} rows but y_{split} has {len(y)}"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"{self.name}: train inputs {tuple(self.x_train.shape[1:])} and test inputs "
                f"{tuple(self.x_test.shape[1:])} differ in shape"
            )
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise ValueError(f"{self.name}: num_classes={self.num_classes!r} is not an integer")
        if self.num_classes < 1:
            raise ValueError(
                f"{self.name}: num_classes={self.num_classes} is invalid; expected >= 1"
            )
        if self.classes and len(self.classes) != self.num_classes:
            raise ValueError(
                f"{self.name}: {len(self.classes)} class names for num_classes={self.num_classes}"
            )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, without the batch dimension, e.g. ``(1, 28, 28)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        """Number of training examples."""
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        """Number of test examples."""
        return len(self.y_test)

    def holdout(self, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
        """Split the training set into a smaller training set and a validation set.

        Both results train on the same remaining part of the training set; they differ in
        what they evaluate on. ``train`` keeps the real test set (for the final numbers);
        ``val`` has the held-out part as its *test* tensors, so any code that trains on
        ``x_train`` and evaluates on ``x_test`` tunes on validation data when given ``val``
        and never sees the test set. The split is a pure function of ``(fraction, seed)``
        (a seeded permutation; the last ``round(fraction * n_train)`` indices are held out).

        Args:
            fraction: share of the training set to hold out, in (0, 1).
            seed: seed of the permutation (an integer >= 0).

        Returns:
            ``(train, val)`` as described above.

        Raises:
            ValueError: if ``fraction`` is outside (0, 1) or leaves either part empty.

        >>> import torch
        >>> ds = Dataset("toy", torch.zeros(10, 1, 3), torch.arange(10) % 2,
        ...              torch.zeros(4, 1, 3), torch.zeros(4, dtype=torch.long), num_classes=2)
        >>> train, val = ds.holdout(0.2, seed=0)
        >>> train.n_train, train.n_test, val.n_train, val.n_test
        (8, 4, 8, 2)
        """
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, (int, float))
            or not math.isfinite(fraction)
            or not 0 < fraction < 1
        ):
            raise ValueError(
                f"holdout: fraction={fraction!r} is invalid; expected a number in (0, 1)"
            )
        n_val = round(fraction * self.n_train)
        if not 0 < n_val < self.n_train:
            raise ValueError(
                f"holdout: fraction={fraction!r} of {self.n_train} training examples leaves "
                "an empty part; expected both parts to be non-empty"
            )
        # its own key, so the split is unrelated to every epoch's order under the same seed
        order = seeded_permutation(self.n_train, "holdout", seed)
        keep, held = order[: self.n_train - n_val], order[self.n_train - n_val :]
        x_keep, y_keep = self.x_train[keep], self.y_train[keep]
        tag = f"{self.name}[holdout={fraction:g},seed={seed}]"
        train = replace(self, name=f"{tag}:train", x_train=x_keep, y_train=y_keep)
        val = replace(
            train,
            name=f"{tag}:val",
            x_test=self.x_train[held],
            y_test=self.y_train[held],
        )
        return train, val

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, input_shape={self.input_shape}, "
            f"n_train={self.n_train}, n_test={self.n_test}, num_classes={self.num_classes})"
        )


def _describe(t: object) -> str:
    if isinstance(t, torch.Tensor):
        return f"{t.dtype} tensor of shape {tuple(t.shape)}"
    return type(t).__name__
