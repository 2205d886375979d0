"""ResNet-18 in its CIFAR form (He et al., 2016, arXiv:1512.03385, with a 3x3 stem)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from lrlab.models._common import check_common, check_rank, scaled

STAGE_CHANNELS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers and an identity (or 1x1 conv + BN) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                    bn=nn.BatchNorm2d(c_out),
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn1(self.conv1(x)).relu()
        h = self.bn2(self.conv2(h))
        return (h + self.shortcut(x)).relu()


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18: 3x3 stem, no max-pool, four stages of two BasicBlocks.

    The ImageNet ResNet-18 of He et al. (2016) with the stem the paper uses for CIFAR-10
    (a 3x3 convolution at stride 1, no max-pool), as in the widely used
    kuangliu/pytorch-cifar ``ResNet18``. Children, in depth order: ``stem`` (conv + BN +
    ReLU), ``layer1`` .. ``layer4`` (64, 128, 256, 512 filters times ``width``; stride 1,
    2, 2, 2), ``fc``; each stage holds blocks ``0`` and ``1``, so parameter names such as
    ``layer3.1.conv2.weight`` can be grouped with patterns like ``layer1*``. Global
    average pooling makes any input of at least 1x1 work: 32x32, 28x28 (28 -> 14 -> 7 -> 4)
    or 8x8. Parameters for (3, 32, 32) and 10 classes: 11,173,962 at ``width=1``,
    701,466 at ``width=0.25`` (16, 32, 64, 128 filters).

    Args:
        input_shape: ``(channels, height, width)``.
        num_classes: number of outputs.
        width: multiplies every filter count (0.25 makes CPU runs practical).

    >>> sum(p.numel() for p in ResNet18((3, 32, 32), 10).parameters())
    11173962
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, *, width: float = 1.0) -> None:
        super().__init__()
        check_common("resnet18", input_shape, num_classes, width)
        check_rank("resnet18", input_shape, 3, "(3, 32, 32)")
        widths = [scaled(c, width) for c in STAGE_CHANNELS]
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(input_shape[0], widths[0], 3, padding=1, bias=False),
                bn=nn.BatchNorm2d(widths[0]),
                relu=nn.ReLU(inplace=True),
            )
        )
        self.layer1 = _stage(widths[0], widths[0], stride=1)
        self.layer2 = _stage(widths[0], widths[1], stride=2)
        self.layer3 = _stage(widths[1], widths[2], stride=2)
        self.layer4 = _stage(widths[2], widths[3], stride=2)
        self.fc = nn.Linear(widths[3], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(h.mean(dim=(2, 3)))  # global average pooling


def _stage(c_in: int, c_out: int, *, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1))
