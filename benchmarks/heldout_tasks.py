"""Model families the range test's constants were not calibrated on, as small CPU tasks.

Each task is a function of the seed returning tensors and a model factory, small enough
that a 12-point oracle grid x 3 seeds of 1cycle trains in about a minute on one core:
a GRU on a sequence task, a one-block transformer, an 8-layer MLP without normalisation,
an MLP regression (MSE; scored by validation R^2), and the digits MLP at batch 16 and 512.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class HeldoutTask:
    """Tensors, a model factory, the loss, the optimizer and the run length of one task."""

    family: str
    x: torch.Tensor
    y: torch.Tensor
    vx: torch.Tensor
    vy: torch.Tensor
    model: Callable[[], nn.Module]
    optimizer: dict[str, Any]
    batch_size: int
    epochs: int
    regression: bool = False

    @property
    def loss(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return nn.functional.mse_loss if self.regression else nn.functional.cross_entropy

    @property
    def iters_per_epoch(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def score(self, model: nn.Module) -> float:
        """Validation accuracy, or R^2 for regression (both: higher is better, 1 is perfect)."""
        model.eval()
        with torch.no_grad():
            out = model(self.vx)
        model.train()
        if not torch.isfinite(out).all():
            return 0.0
        if self.regression:
            r2 = 1 - float(((out - self.vy) ** 2).mean()) / float(self.vy.var())
            return max(r2, 0.0)
        return float((out.argmax(1) == self.vy).float().mean())


class _GRU(nn.Module):
    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.rnn = nn.GRU(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


class _Attention(nn.Module):
    def __init__(self, vocab: int = 8, d: int = 32, length: int = 12) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(length, d) * 0.1)
        self.block = nn.TransformerEncoderLayer(d, 2, 64, dropout=0.0, batch_first=True)
        self.head = nn.Linear(d, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.embed(x) + self.pos).mean(dim=1))


def _deep_mlp(inputs: int, classes: int, depth: int = 8, width: int = 64) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(inputs, width), nn.ReLU()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, classes))


def _mlp(inputs: int, outputs: int, width: int = 64) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(inputs, width), nn.ReLU(), nn.Linear(width, outputs)
    )


def _split(x: torch.Tensor, y: torch.Tensor, n_val: int) -> tuple[torch.Tensor, ...]:
    return x[n_val:], y[n_val:], x[:n_val], y[:n_val]


def gru_sequence() -> HeldoutTask:
    """GRU/Adam: is the running sum of a length-20 sequence positive after its 5th step?"""
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(3000, 20, 1, generator=g)
    y = (x[:, :5, 0].sum(1) > 0).long()
    x[:, 5:] *= 0.5  # distractors after the steps that decide the label
    return HeldoutTask(
        "recurrent", *_split(x, y, 600), lambda: _GRU(),
        {"name": "adam", "betas": (0.9, 0.999), "weight_decay": 0.0}, 64, 4,
    )  # fmt: skip


def attention_majority() -> HeldoutTask:
    """One-block transformer/AdamW: the most frequent of 8 tokens in a length-12 sequence."""
    g = torch.Generator().manual_seed(4321)
    x = torch.randint(0, 8, (3000, 12), generator=g)
    counts = torch.nn.functional.one_hot(x, 8).sum(1).float()
    y = (counts + 0.01 * torch.arange(8)).argmax(1)  # ties broken by token id
    return HeldoutTask(
        "attention", *_split(x, y, 600), lambda: _Attention(),
        {"name": "adamw", "betas": (0.9, 0.999), "weight_decay": 1e-2}, 64, 4,
    )  # fmt: skip


def _digits() -> tuple[torch.Tensor, ...]:
    from lrlab.data import load_dataset

    ds = load_dataset("digits")
    return ds.x_train, ds.y_train, ds.x_test, ds.y_test


def deep_plain() -> HeldoutTask:
    """An 8-layer ReLU MLP without normalisation or residuals on digits, SGD (it trains
    in a window of about half a decade)."""
    x, y, vx, vy = _digits()
    return HeldoutTask(
        "deep-no-norm", x, y, vx, vy, lambda: _deep_mlp(64, 10),
        {"name": "sgd", "momentum": 0.9, "weight_decay": 5e-4}, 64, 10,
    )  # fmt: skip


def regression() -> HeldoutTask:
    """MLP regression (MSE) of a smooth function of 8 inputs plus noise, Adam."""
    g = torch.Generator().manual_seed(99)
    x = torch.randn(3000, 8, generator=g)
    y = (torch.sin(2 * x[:, :1]) + x[:, 1:2] * x[:, 2:3] + 0.5 * x[:, 3:4] ** 2) * 3.0 + 1.0
    y = y + 0.3 * torch.randn(3000, 1, generator=g)
    return HeldoutTask(
        "regression", *_split(x, y, 600), lambda: _mlp(8, 1),
        {"name": "adam", "betas": (0.9, 0.999), "weight_decay": 0.0}, 64, 5, regression=True,
    )  # fmt: skip


def digits_batch(batch_size: int) -> Callable[[], HeldoutTask]:
    def build() -> HeldoutTask:
        x, y, vx, vy = _digits()
        epochs = 3 if batch_size <= 32 else 40
        return HeldoutTask(
            f"batch-{batch_size}", x, y, vx, vy, lambda: _mlp(64, 10, 128),
            {"name": "sgd", "momentum": 0.9, "weight_decay": 5e-4}, batch_size, epochs,
        )  # fmt: skip

    return build


TASKS: dict[str, Callable[[], HeldoutTask]] = {
    "gru-seq": gru_sequence,
    "attention-majority": attention_majority,
    "deep-mlp-no-norm": deep_plain,
    "mlp-regression": regression,
    "digits-mlp-batch16": digits_batch(16),
    "digits-mlp-batch512": digits_batch(512),
}
