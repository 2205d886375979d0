"""The range test on a named task: what ``lrlab find`` runs.

It builds the task's model (from the seed), its optimizer and its batches exactly as a
study trial would, so the bounds it prints are the bounds a study would use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from lrlab.data import DATASETS, batches, load_dataset, num_batches
from lrlab.models import MODELS, build_model
from lrlab.optim import param_groups
from lrlab.rangetest import (
    ConfirmResult,
    HyperTestResult,
    RangeTestResult,
    confirm,
    momentum_test,
    range_test,
    weight_decay_test,
)
from lrlab.rangetest.sweep import Progress
from lrlab.study.config_fields import one_of
from lrlab.study.optimizers import make_optimizer

#: Batch sizes of the published baselines: MNIST-1D (Greydanus 2020) 100, Fashion-MNIST 128.
DEFAULT_BATCH = {"mnist1d": 100, "fashion-mnist": 128, "digits": 64, "cifar10": 128}


def sweep_task(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    batch_size: int,
    seed: int,
    **kwargs: Any,
) -> RangeTestResult:
    """The range test as studies run it: the first epoch's batches (repeated if the sweep is
    longer), validation on the first 2000 held-out examples, every other option in ``kwargs``."""
    train = list(batches(x, y, batch_size, seed=seed, epoch=0))
    n = min(2000, len(val_x))
    val = [(val_x[i : i + 500], val_y[i : i + 500]) for i in range(0, n, 500)]
    return range_test(model, optimizer, train, loss_fn=F.cross_entropy, val_data=val, **kwargs)


def confirm_task(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    batch_size: int,
    seed: int,
    candidates: list[float],
    updates_each: int = 30,
) -> ConfirmResult:
    """The confirm step as studies run it: short 1cycle runs on the first epoch's batches at
    each candidate max LR, validation loss on the first 1000 held-out examples."""
    return confirm(
        model,
        optimizer,
        list(batches(x, y, batch_size, seed=seed, epoch=0)),
        candidates,
        loss_fn=F.cross_entropy,
        val_data=[(val_x[:1000], val_y[:1000])],
        updates_each=updates_each,
    )


@dataclass
class FindResult:
    """The range test, and the momentum / weight-decay tests when asked for."""

    range_test: RangeTestResult
    iters_per_epoch: int
    momentum: HyperTestResult | None = None
    weight_decay: HyperTestResult | None = None
    confirmed: ConfirmResult | None = None


def find_on_task(
    data: str,
    model: str,
    *,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    batch_size: int | None = None,
    width: float = 1.0,
    samples: int | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_updates: int = 100,
    mode: str = "exp",
    seed: int = 0,
    threads: int | None = None,
    test_momentum: bool = False,
    test_weight_decay: bool = False,
    confirm_candidates: int = 0,
    confirm_updates: int = 30,
    progress: Progress | None = None,
) -> FindResult:
    """Run the range test (and optionally Smith's momentum and weight-decay tests) on a task."""
    one_of("--data", data, DATASETS, "a dataset")
    one_of("--model", model, MODELS, "a model")
    if threads is not None:
        torch.set_num_threads(threads)
    ds = load_dataset(data)
    x, y = ds.x_train, ds.y_train
    if samples is not None:
        if samples < 1:
            raise ValueError(f"--samples={samples} is invalid: the training data would be empty")
        x, y = x[:samples], y[:samples]
    bs = batch_size or DEFAULT_BATCH.get(data, 100)
    torch.manual_seed(seed)
    net = build_model(model, ds.input_shape, ds.num_classes, width=width)
    groups = param_groups(net, weight_decay=weight_decay)
    opt = make_optimizer(
        {
            "name": optimizer,
            "lr": 0.1,
            "momentum": momentum,
            "nesterov": False,
            "betas": (momentum, 0.999),
            "weight_decay": weight_decay,
        },
        groups,
    )
    result = sweep_task(
        net,
        opt,
        x,
        y,
        ds.x_test,
        ds.y_test,
        bs,
        seed,
        start_lr=start_lr,
        end_lr=end_lr,
        num_updates=num_updates,
        mode=mode,
        progress=progress,
    )
    out = FindResult(result, num_batches(len(x), bs))
    if confirm_candidates:
        if confirm_candidates not in (2, 3, 4):
            raise ValueError(
                f"--confirm={confirm_candidates} is invalid; expected 2, 3 or 4 candidates"
            )
        # the rule sits at or below the best 1cycle max_lr (docs/finder_regret.md): look up
        factors = {2: (1.0, 2.0), 3: (1.0, 2.0, 4.0), 4: (1.0, 2.0, 4.0, 8.0)}[confirm_candidates]
        lr = result.suggest().lr
        out.confirmed = confirm_task(
            net,
            opt,
            x,
            y,
            ds.x_test,
            ds.y_test,
            bs,
            seed,
            [lr * f for f in factors],
            confirm_updates,
        )
    if test_momentum or test_weight_decay:
        train = list(batches(x, y, bs, seed=seed, epoch=0))
        n = min(2000, len(ds.x_test))
        val = [(ds.x_test[i : i + 500], ds.y_test[i : i + 500]) for i in range(0, n, 500)]
        b = result.bounds("one_cycle")
        common: dict[str, Any] = {
            "val_data": val,
            "base_lr": b.base_lr,
            "max_lr": b.max_lr,
            "loss_fn": F.cross_entropy,
            "num_updates": num_updates,
        }
        if test_momentum:
            out.momentum = momentum_test(net, opt, train, **common)
        if test_weight_decay:
            out.weight_decay = weight_decay_test(net, opt, train, **common)
    return out
