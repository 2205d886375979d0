"""The MNIST-1D paper's baselines (Greydanus, 2020; arXiv:2011.14439).

Reference implementation: ``notebooks/models.py`` (``MLPBase``, ``ConvBase``) in
https://github.com/greydanus/mnist1d. Layer names follow it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lrlab.models._common import check_common, check_positive_int, check_rank, scaled


class MLP(nn.Module):
    """MNIST-1D's MLP baseline: two hidden layers of 100 ReLU units, a residual second layer.

    As in the reference ``MLPBase``, the second hidden layer adds its output to its input
    (``h = h + relu(linear2(h))``). Any input is flattened. Parameters for a (1, 40) input
    and 10 classes: 40*100+100 + 100*100+100 + 100*10+10 = 15,210.

    Args:
        input_shape: shape of one input without the batch dimension.
        num_classes: number of outputs.
        hidden: hidden units at ``width=1`` (100 in the paper).
        width: multiplies ``hidden``.

    >>> sum(p.numel() for p in MLP((1, 40), 10).parameters())
    15210
    """

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, *, hidden: int = 100, width: float = 1.0
    ) -> None:
        super().__init__()
        check_common("mlp", input_shape, num_classes, width)
        check_positive_int("mlp", "hidden", hidden)
        n_in, h = 1, scaled(hidden, width)
        for d in input_shape:
            n_in *= d
        self.linear1 = nn.Linear(n_in, h)
        self.linear2 = nn.Linear(h, h)
        self.linear3 = nn.Linear(h, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear1(x.flatten(1)).relu()
        h = h + self.linear2(h).relu()
        return self.linear3(h)


class Conv1dNet(nn.Module):
    """MNIST-1D's 1-D CNN baseline (the reference ``ConvBase``).

    ``Conv1d(C, 25, 5, stride 2, padding 1) -> ReLU -> Conv1d(25, 25, 3, 2, 1) -> ReLU ->
    Conv1d(25, 25, 3, 2, 1) -> ReLU -> flatten -> Linear(25 * 5, classes)`` for length 40
    (40 -> 19 -> 10 -> 5). Parameters for a (1, 40) input and 10 classes:
    (1*25*5+25) + 2 * (25*25*3+25) + (125*10+10) = 150 + 3,800 + 1,260 = 5,210.

    Args:
        input_shape: ``(channels, length)``; any length of at least 5 works.
        num_classes: number of outputs.
        channels: filters per convolution at ``width=1`` (25 in the paper).
        width: multiplies ``channels``.

    >>> sum(p.numel() for p in Conv1dNet((1, 40), 10).parameters())
    5210
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        *,
        channels: int = 25,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        check_common("cnn1d", input_shape, num_classes, width)
        check_rank("cnn1d", input_shape, 2, "(1, 40)")
        check_positive_int("cnn1d", "channels", channels)
        c_in, length = input_shape
        if length < 5:
            raise ValueError(
                f"cnn1d: input_shape={tuple(input_shape)!r} is invalid; expected a length >= 5"
            )
        c = scaled(channels, width)
        self.conv1 = nn.Conv1d(c_in, c, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(c, c, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(c, c, 3, stride=2, padding=1)
        for kernel in (5, 3, 3):  # stride 2, padding 1
            length = (length + 2 - kernel) // 2 + 1
        self.linear = nn.Linear(c * length, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x).relu()
        h = self.conv2(h).relu()
        h = self.conv3(h).relu()
        return self.linear(h.flatten(1))
