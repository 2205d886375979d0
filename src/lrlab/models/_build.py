"""`build_model`: the networks by name, with errors that list what is allowed."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from torch import nn

from lrlab.models._cnn import CifarQuick, SmallCNN
from lrlab.models._common import check_common
from lrlab.models._mnist1d import MLP, Conv1dNet
from lrlab.models._resnet import ResNet18

MODELS: tuple[str, ...] = ("mlp", "cnn1d", "cnn", "cifar_quick", "resnet18")

_BUILDERS: dict[str, tuple[Callable[..., nn.Module], tuple[str, ...]]] = {
    "mlp": (MLP, ("hidden",)),
    "cnn1d": (Conv1dNet, ("channels",)),
    "cnn": (SmallCNN, ()),
    "cifar_quick": (CifarQuick, ("init",)),
    "resnet18": (ResNet18, ()),
}


def build_model(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    width: float = 1.0,
    **kwargs: Any,
) -> nn.Module:
    """Build network ``name`` for inputs of ``input_shape`` (no batch dimension).

    Parameter counts are for 10 classes at ``width=1``:

    * ``mlp``: any input, flattened; MNIST-1D's MLP, two hidden layers of 100
      (15,210 on (1, 40)).
    * ``cnn1d``: (C, L); MNIST-1D's 1-D CNN, three convolutions (5,210 on (1, 40)).
    * ``cnn``: (C, H, W), H and W >= 4; two conv + pool stages and a linear head
      (28,938 on (1, 28, 28)).
    * ``cifar_quick``: (C, H, W); Caffe's CIFAR-10 quick (145,578 on (3, 32, 32)).
    * ``resnet18``: (C, H, W); CIFAR-style ResNet-18 (11,173,962 on (3, 32, 32)).

    Initialisation draws from torch's global generator, so ``torch.manual_seed(s)`` before
    the call fixes the initial weights; parameters are registered from input to output,
    so ``named_parameters()`` lists them in depth order.

    Args:
        name: one of `MODELS`.
        input_shape: shape of one input, e.g. ``Dataset.input_shape``.
        num_classes: number of outputs.
        width: multiplies every layer's filter or unit count (rounded, at least 1).
        **kwargs: ``hidden`` (mlp, 100), ``channels`` (cnn1d, 25), ``init`` (cifar_quick,
            ``"torch"`` or ``"caffe"``).

    Returns:
        The ``nn.Module``, in training mode, on the CPU.

    Raises:
        ValueError: for an unknown name or option, or a shape the network cannot take.

    >>> import torch
    >>> net = build_model("cnn1d", (1, 40), 10)
    >>> net(torch.zeros(2, 1, 40)).shape
    torch.Size([2, 10])
    """
    if name not in _BUILDERS:
        close = difflib.get_close_matches(str(name), MODELS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown model {name!r}{hint}; expected one of {', '.join(MODELS)}")
    cls, options = _BUILDERS[name]
    for option in kwargs:
        if option not in options:
            allowed = ", ".join((*options, "width"))
            raise ValueError(f"{name}: unknown option {option!r}; allowed: {allowed}")
    check_common(name, input_shape, num_classes, width)
    return cls(tuple(input_shape), num_classes, width=width, **kwargs)
