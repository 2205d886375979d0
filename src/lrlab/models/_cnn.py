"""Small 2-D CNNs: a two-stage CNN for Fashion-MNIST, and Caffe's "CIFAR-10 quick"."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lrlab.models._common import check_common, check_rank, flat_features, scaled

INITS = ("torch", "caffe")


class SmallCNN(nn.Module):
    """Two conv + max-pool stages and a linear head, for 28x28, 32x32 or 8x8 images.

    ``Conv2d(C, 16, 5, padding 2) -> ReLU -> MaxPool 2 -> Conv2d(16, 32, 5, padding 2) ->
    ReLU -> MaxPool 2 -> Linear(32 * H/4 * W/4, classes)``. The reference is the
    "2 Conv+pooling" network of the Fashion-MNIST benchmark table (Xiao et al., 2017),
    i.e. TensorFlow's "Deep MNIST" tutorial CNN (5x5 convolutions with 32 and 64 filters,
    2x2 max-pooling); this one has half the filters (``width=2`` restores 32/64) and no
    1024-unit hidden layer, so that an epoch of Fashion-MNIST at batch 128 takes about
    17 s on two CPU cores. Parameters for (1, 28, 28) and 10 classes:
    (1*16*25+16) + (16*32*25+32) + (32*7*7*10+10) = 416 + 12,832 + 15,690 = 28,938.

    Args:
        input_shape: ``(channels, height, width)``, height and width at least 4.
        num_classes: number of outputs.
        width: multiplies the filter counts 16 and 32.

    >>> sum(p.numel() for p in SmallCNN((1, 28, 28), 10).parameters())
    28938
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, *, width: float = 1.0) -> None:
        super().__init__()
        check_common("cnn", input_shape, num_classes, width)
        check_rank("cnn", input_shape, 3, "(1, 28, 28)")
        c1, c2 = scaled(16, width), scaled(32, width)
        self.conv1 = nn.Conv2d(input_shape[0], c1, 5, padding=2)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2)
        self.pool2 = nn.MaxPool2d(2)
        if min(input_shape[1:]) < 4:
            raise ValueError(
                f"cnn: input_shape={tuple(input_shape)!r} is invalid; expected height and "
                "width >= 4 (two 2x2 poolings)"
            )
        self.fc = nn.Linear(c2 * (input_shape[1] // 4) * (input_shape[2] // 4), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool1(self.conv1(x).relu())
        h = self.pool2(self.conv2(h).relu())
        return self.fc(h.flatten(1))


class CifarQuick(nn.Module):
    """Caffe's "CIFAR-10 quick" network, the one Smith (2017) used for CLR on CIFAR-10.

    From ``examples/cifar10/cifar10_quick_train_test.prototxt`` in BVLC/caffe:
    ``conv1 32 5x5 pad 2 -> max-pool 3/2 -> ReLU -> conv2 32 5x5 pad 2 -> ReLU ->
    avg-pool 3/2 -> conv3 64 5x5 pad 2 -> ReLU -> avg-pool 3/2 -> ip1 64 -> ip2 classes``
    (no ReLU between ``ip1`` and ``ip2``, as in the prototxt). Caffe rounds pooled sizes
    up, ``ceil((H - 3) / 2) + 1``, so pooling uses ``ceil_mode=True``: 32 -> 16 -> 8 -> 4
    (PyTorch's default floor would give 15 -> 7 -> 3). Caffe's average pooling divides
    by the window's in-image size, which is what PyTorch does without padding.
    Parameters for (3, 32, 32) and 10 classes: 2,432 + 25,632 + 51,264 + 65,600 + 650 =
    145,578.

    Args:
        input_shape: ``(channels, height, width)``; any channel count.
        num_classes: number of outputs.
        width: multiplies the filter counts 32, 32, 64 and the 64 hidden units.
        init: ``"torch"`` (PyTorch's default initialisation) or ``"caffe"``: the
            prototxt's Gaussian fillers (std 1e-4, 1e-2, 1e-2, 0.1, 0.1; zero biases).
            The Caffe fillers were chosen for mean-subtracted 0..255 pixels, 255 times
            the scale of lrlab's standardised inputs, hence not the default.

    >>> sum(p.numel() for p in CifarQuick((3, 32, 32), 10).parameters())
    145578
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        *,
        width: float = 1.0,
        init: str = "torch",
    ) -> None:
        super().__init__()
        check_common("cifar_quick", input_shape, num_classes, width)
        check_rank("cifar_quick", input_shape, 3, "(3, 32, 32)")
        if init not in INITS:
            raise ValueError(
                f"cifar_quick: init={init!r} is invalid; expected one of {', '.join(INITS)}"
            )
        c1, c3, hidden = scaled(32, width), scaled(64, width), scaled(64, width)
        self.conv1 = nn.Conv2d(input_shape[0], c1, 5, padding=2)
        self.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = nn.Conv2d(c1, c1, 5, padding=2)
        self.pool2 = nn.AvgPool2d(3, stride=2, ceil_mode=True)
        self.conv3 = nn.Conv2d(c1, c3, 5, padding=2)
        self.pool3 = nn.AvgPool2d(3, stride=2, ceil_mode=True)
        n_flat = flat_features("cifar_quick", self._features, input_shape)
        self.ip1 = nn.Linear(n_flat, hidden)
        self.ip2 = nn.Linear(hidden, num_classes)
        if init == "caffe":
            stds = {"conv1": 1e-4, "conv2": 1e-2, "conv3": 1e-2, "ip1": 0.1, "ip2": 0.1}
            for name, std in stds.items():
                layer = getattr(self, name)
                nn.init.normal_(layer.weight, std=std)
                nn.init.zeros_(layer.bias)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool1(self.conv1(x)).relu()
        h = self.pool2(self.conv2(h).relu())
        return self.pool3(self.conv3(h).relu())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ip2(self.ip1(self._features(x).flatten(1)))
