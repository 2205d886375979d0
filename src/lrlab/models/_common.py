"""Checks shared by the model constructors: shapes, widths and class counts."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1 (so ``width=0.25`` of 64 is 16)."""
    return max(1, round(channels * width))


def check_common(name: str, input_shape: Sequence[int], num_classes: int, width: float) -> None:
    """Raise ValueError naming the argument when a constructor argument is invalid."""
    if not isinstance(input_shape, (tuple, list)) or not input_shape:
        raise ValueError(
            f"{name}: input_shape={input_shape!r} is invalid; expected a tuple of positive "
            "integers without the batch dimension, e.g. (1, 28, 28)"
        )
    for d in input_shape:
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ValueError(
                f"{name}: input_shape={tuple(input_shape)!r} is invalid; expected positive integers"
            )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"{name}: num_classes={num_classes!r} is invalid; expected an integer >= 1"
        )
    if (
        isinstance(width, bool)
        or not isinstance(width, (int, float))
        or not math.isfinite(width)
        or width <= 0
    ):
        raise ValueError(f"{name}: width={width!r} is invalid; expected a finite number > 0")


def check_rank(name: str, input_shape: Sequence[int], rank: int, example: str) -> None:
    """Require ``len(input_shape) == rank`` (channels first, no batch dimension)."""
    if len(input_shape) != rank:
        raise ValueError(
            f"{name}: input_shape={tuple(input_shape)!r} is invalid; expected {rank} dimensions "
            f"(channels first, no batch dimension), e.g. {example}"
        )


def check_positive_int(name: str, field: str, value: object) -> int:
    """Require an integer >= 1 for the model option ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: {field}={value!r} is invalid; expected an integer >= 1")
    return value


def flat_features(
    name: str, features: Callable[[torch.Tensor], torch.Tensor], input_shape: Sequence[int]
) -> int:
    """Size of ``features``' output for one input, found by a dry run (no RNG is used)."""
    try:
        with torch.no_grad():
            return int(features(torch.zeros(1, *input_shape)).numel())
    except RuntimeError:
        raise ValueError(
            f"{name}: input_shape={tuple(input_shape)!r} is too small for this network's "
            "convolutions and pooling"
        ) from None
