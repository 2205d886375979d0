"""lrlab.models: shapes, hand-counted parameters, names, depth order and seeded init."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from lrlab.models import MODELS, build_model

# Input shapes of the four data sets (lrlab.data), without the batch dimension.
SHAPES = {
    "fashion-mnist": (1, 28, 28),
    "mnist1d": (1, 40),
    "digits": (1, 8, 8),
    "cifar10": (3, 32, 32),
}
COMPATIBLE = {
    "mlp": ("fashion-mnist", "mnist1d", "digits", "cifar10"),
    "cnn1d": ("mnist1d",),
    "cnn": ("fashion-mnist", "digits", "cifar10"),
    "cifar_quick": ("fashion-mnist", "digits", "cifar10"),
    "resnet18": ("fashion-mnist", "digits", "cifar10"),
}


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    ("model", "data"), [(m, d) for m, ds in COMPATIBLE.items() for d in ds], ids=str
)
def test_output_shape_and_a_training_step(model: str, data: str) -> None:
    torch.manual_seed(0)
    width = 0.25 if model == "resnet18" else 1.0
    net = build_model(model, SHAPES[data], 7, width=width)
    x = torch.randn(4, *SHAPES[data])
    out = net(x)
    assert out.shape == (4, 7) and torch.isfinite(out).all()
    nn.functional.cross_entropy(out, torch.arange(4)).backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize(
    ("model", "data"),
    [(m, d) for m in MODELS for d in SHAPES if d not in COMPATIBLE[m]],
    ids=str,
)
def test_incompatible_shapes_are_refused(model: str, data: str) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f"{model}: input_shape={SHAPES[data]!r} is invalid")
    ):
        build_model(model, SHAPES[data], 10)


def test_parameter_counts_by_hand() -> None:
    # mlp: 40->100->100->10 with biases (Greydanus' MLPBase).
    assert n_params(build_model("mlp", (1, 40), 10)) == (40 * 100 + 100) + (100 * 100 + 100) + (
        100 * 10 + 10
    )
    assert n_params(build_model("mlp", (1, 28, 28), 10)) == 784 * 100 + 100 + 10100 + 1010
    # cnn1d: conv 1->25 k5, two convs 25->25 k3, linear 25*5 -> 10 (ConvBase).
    assert n_params(build_model("cnn1d", (1, 40), 10)) == (
        (1 * 25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (25 * 5 * 10 + 10)
    )
    # cifar_quick: three 5x5 convs (32, 32, 64), ip1 64 on a 64x4x4 map (ceil pooling), ip2.
    assert n_params(build_model("cifar_quick", (3, 32, 32), 10)) == (
        (3 * 32 * 25 + 32) + (32 * 32 * 25 + 32) + (32 * 64 * 25 + 64) + (64 * 16 * 64 + 64)
    ) + (64 * 10 + 10)
    # 28x28: 28 -> 14 -> 7 -> 3 with Caffe's rounding, so ip1 sees 64 * 3 * 3.
    assert n_params(build_model("cifar_quick", (1, 28, 28), 10)) == (
        (1 * 32 * 25 + 32) + (32 * 32 * 25 + 32) + (32 * 64 * 25 + 64) + (64 * 9 * 64 + 64) + 650
    )
    assert n_params(build_model("cnn", (1, 28, 28), 10)) == (
        (1 * 16 * 25 + 16) + (16 * 32 * 25 + 32) + (32 * 7 * 7 * 10 + 10)
    )
    assert n_params(build_model("resnet18", (3, 32, 32), 10)) == 11_173_962


def test_cifar_quick_pools_like_caffe() -> None:
    net = build_model("cifar_quick", (3, 32, 32), 10)
    assert net._features(torch.zeros(1, 3, 32, 32)).shape == (1, 64, 4, 4)
    names = [n for n, _ in net.named_parameters()]
    layers = ("conv1", "conv2", "conv3", "ip1", "ip2")
    assert names == [f"{layer}.{p}" for layer in layers for p in ("weight", "bias")]


def test_cifar_quick_caffe_fillers() -> None:
    torch.manual_seed(0)
    net = build_model("cifar_quick", (3, 32, 32), 10, init="caffe")
    assert abs(net.conv1.weight.std().item() - 1e-4) < 1e-5
    assert abs(net.conv3.weight.std().item() - 1e-2) < 1e-3
    assert abs(net.ip1.weight.std().item() - 0.1) < 1e-2
    assert all(getattr(net, n).bias.abs().sum() == 0 for n in ("conv1", "conv2", "ip2"))
    with pytest.raises(ValueError, match=r"init='xavier' is invalid; expected one of torch, caffe"):
        build_model("cifar_quick", (3, 32, 32), 10, init="xavier")


@pytest.mark.parametrize(
    ("width", "channels"), [(1.0, (64, 128, 256, 512)), (0.25, (16, 32, 64, 128))]
)
def test_resnet18_named_stages(width: float, channels: tuple[int, ...]) -> None:
    net = build_model("resnet18", (1, 28, 28), 10, width=width)
    assert [n for n, _ in net.named_children()] == [
        "stem",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "fc",
    ]
    assert net.stem.conv.in_channels == 1 and net.stem.conv.out_channels == channels[0]
    for i, c in enumerate(channels, start=1):
        stage = getattr(net, f"layer{i}")
        assert len(stage) == 2
        assert stage[0].conv1.out_channels == c and stage[1].conv2.out_channels == c
        assert stage[0].conv1.stride == ((1, 1) if i == 1 else (2, 2))
    assert net.fc.in_features == channels[-1]
    names = [n for n, _ in net.named_parameters()]
    assert names[0] == "stem.conv.weight" and names[-1] == "fc.bias"
    # depth order: all of stage i before stage i + 1, so glob groups are contiguous
    stages = [n.split(".")[0] for n in names]
    order = ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]
    assert stages == sorted(stages, key=order.index)
    assert "layer2.0.shortcut.conv.weight" in names and "layer1.0.shortcut.conv.weight" not in names


@pytest.mark.parametrize("model", MODELS)
def test_same_seed_same_initial_parameters(model: str) -> None:
    shape = SHAPES[COMPATIBLE[model][0]]

    def init(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        return [p.detach().clone() for p in build_model(model, shape, 10, width=0.25).parameters()]

    a, b, c = init(1), init(1), init(2)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not all(torch.equal(p, q) for p, q in zip(a, c))


def test_width_scales_layers() -> None:
    assert build_model("mlp", (1, 40), 10, width=2).linear1.out_features == 200
    assert build_model("cnn1d", (1, 40), 10, width=0.5).conv1.out_channels == 12
    net = build_model("cnn", (1, 28, 28), 10, width=2)
    assert (net.conv1.out_channels, net.conv2.out_channels) == (32, 64)
    assert build_model("mlp", (1, 40), 10, hidden=32).linear2.in_features == 32


def test_errors_name_the_value_and_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'resnet' \(did you mean 'resnet18'\?\)"):
        build_model("resnet", (3, 32, 32), 10)
    with pytest.raises(ValueError, match="expected one of mlp, cnn1d, cnn, cifar_quick, resnet18"):
        build_model("vgg", (3, 32, 32), 10)
    with pytest.raises(ValueError, match=r"cnn: unknown option 'dropout'; allowed: width"):
        build_model("cnn", (1, 28, 28), 10, dropout=0.5)
    with pytest.raises(ValueError, match=r"mlp: width=0 is invalid; expected a finite number > 0"):
        build_model("mlp", (1, 40), 10, width=0)
    with pytest.raises(ValueError, match=r"num_classes=0 is invalid"):
        build_model("cnn1d", (1, 40), 0)
    with pytest.raises(ValueError, match=r"cnn: input_shape=\(1, 3, 3\) is invalid"):
        build_model("cnn", (1, 3, 3), 10)
