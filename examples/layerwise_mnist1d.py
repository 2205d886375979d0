"""Every layer-wise policy of lrlab in a plain PyTorch loop, on MNIST-1D, in under a minute.

Each policy is a few lines around the same loop: build param groups with names and
depths, pick a global schedule, add the policy's per-group multipliers (or LARS/LARC, or
a freezing plan), train 20 epochs of the MNIST-1D CNN, print test accuracy.

    python examples/layerwise_mnist1d.py
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from lrlab.data import batches, load_dataset, num_batches
from lrlab.models import build_model
from lrlab.optim import (
    LARC,
    LARS,
    AutoLLR,
    FreezePlan,
    HyperparamScheduler,
    cyclical_layers,
    freeze,
    interpolate,
    param_groups,
)
from lrlab.schedules import constant, cyclical_momentum, one_cycle, triangular

EPOCHS, BATCH, SEED = 20, 100, 0


def train(policy: str) -> tuple[float, float]:
    torch.manual_seed(SEED)
    ds = load_dataset("mnist1d")
    model = build_model("cnn1d", ds.input_shape, ds.num_classes)
    groups = param_groups(model, weight_decay=5e-4)  # one group per layer (+ its no-decay part)
    opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    total = EPOCHS * num_batches(ds.n_train, BATCH)
    lr = one_cycle(max_lr=0.2, total=total)
    momentum = cyclical_momentum(lr)
    spec = None
    plan = None
    if policy == "manual 1: high to low":  # 3x at the input, 1/3 at the output, geometric
        spec = interpolate(opt.param_groups, first=3.0, last=1 / 3)
    elif policy == "manual 2: cyclical layers":  # constant global LR, each depth cycles, offset
        lr, momentum = constant(level=0.05), None
        spec = cyclical_layers(opt.param_groups, triangular(0.2, 2.0, step_size=200), offset=50)
    elif policy == "LARS":
        LARS(opt, trust_coefficient=1e-3)
        lr = one_cycle(max_lr=10.0, total=total)  # LARS sets each layer's step: tune the global LR
        momentum = cyclical_momentum(lr)
    elif policy == "LARC":
        LARC(opt, trust_coefficient=0.02)
    elif policy == "automatic LLR":
        spec = AutoLLR(opt).groups()
    elif policy == "freeze conv1 at epoch 10":
        plan = FreezePlan([freeze("conv1*", at=10)], iters_per_epoch=num_batches(ds.n_train, BATCH))
    HyperparamScheduler(opt, lr=lr, momentum=momentum, groups=spec)
    start = time.perf_counter()
    for epoch in range(EPOCHS):
        model.train()
        for x, y in batches(ds.x_train, ds.y_train, BATCH, seed=SEED, epoch=epoch):
            if plan is not None:
                plan.apply(model, opt, epoch * num_batches(ds.n_train, BATCH))
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(ds.x_test).argmax(1) == ds.y_test).float().mean().item()
    return acc, time.perf_counter() - start


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name in (
        "1cycle baseline",
        "manual 1: high to low",
        "manual 2: cyclical layers",
        "LARS",
        "LARC",
        "automatic LLR",
        "freeze conv1 at epoch 10",
    ):
        acc, seconds = train(name)
        print(f"{name:<28} test accuracy {100 * acc:5.1f}%   ({seconds:.1f} s)")
