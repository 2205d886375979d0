"""The benchmark networks: MNIST-1D's MLP and 1-D CNN, a small CNN, CIFAR-10 quick, ResNet-18.

>>> from lrlab.models import build_model
>>> net = build_model("resnet18", (1, 28, 28), 10, width=0.25)
>>> [name for name, _ in net.named_children()]
['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'fc']
"""

from lrlab.models._build import MODELS, build_model
from lrlab.models._cnn import CifarQuick, SmallCNN
from lrlab.models._mnist1d import MLP, Conv1dNet
from lrlab.models._resnet import BasicBlock, ResNet18

__all__ = [
    "MLP",
    "MODELS",
    "BasicBlock",
    "CifarQuick",
    "Conv1dNet",
    "ResNet18",
    "SmallCNN",
    "build_model",
]
