"""Your own model and data in lrlab: a regression MLP on Friedman's benchmark function.

Everything lrlab does beyond a range test in your own loop (many-seed studies that
resume, reports, ``lrlab find``, ``lrlab search``, Ray) runs on any model and data given
as an `lrlab.Task`: a model factory, training and validation ``Dataset``s, a loss and,
optionally, metrics of your own. This file is a complete one; ``my_task.toml`` names it.

    lrlab study run examples/my_task.toml             # 2 arms x 5 seeds, then report.html
    lrlab find --task examples/my_task.py:friedman --option noise=0.5 --start-lr 1e-4
    python examples/my_task.py                         # the same study from Python
"""

from __future__ import annotations

import torch
from sklearn.datasets import make_friedman1
from torch import nn
from torch.utils.data import TensorDataset

import lrlab


def mean_absolute_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example absolute error (lrlab averages it over the validation set)."""
    return (outputs - targets).abs().mean(dim=1)


def friedman(n: int = 4000, noise: float = 1.0, hidden: int = 64) -> lrlab.Task:
    """Friedman's regression benchmark #1 (1991): y = 10 sin(pi x1 x2) + 20 (x3 - 1/2)^2 +
    10 x4 + 5 x5 + noise, with five more inputs that do not matter; 80% to train, 20% to
    validate, the target standardised with the training set's mean and std."""
    x_np, y_np = make_friedman1(n_samples=n, n_features=10, noise=noise, random_state=0)
    x = torch.tensor(x_np, dtype=torch.float32)
    y = torch.tensor(y_np, dtype=torch.float32).unsqueeze(1)
    cut = round(0.8 * n)
    mean, std = y[:cut].mean(), y[:cut].std()
    y = (y - mean) / std

    def model() -> nn.Module:  # called once per trial, after the trial's seed is set
        return nn.Sequential(
            nn.Linear(10, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1),
        )  # fmt: skip

    return lrlab.Task(
        model=model,
        train=TensorDataset(x[:cut], y[:cut]),
        val=TensorDataset(x[cut:], y[cut:]),
        loss=nn.functional.mse_loss,
        metrics=[
            lrlab.Metric(
                "mae", mean_absolute_error, higher_is_better=False, words="mean absolute error"
            )
        ],
        batch_size=64,
        name="friedman",
    )


if __name__ == "__main__":  # worker processes re-import this file: keep the run in here
    import lrlab.study

    study = {
        "name": "my_task-python",
        "seeds": [0, 1, 2],
        "baseline": "constant",
        "task": {"epochs": 20, "options": {"noise": 1.0}},
        "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 1e-4},
        "arms": [
            {"name": "constant", "lr": "constant(level=0.02)"},
            {
                "name": "1cycle",
                "lr": {"kind": "one_cycle"},
                "momentum": "cyclical",
                "range_test": {"rule": "lrlab", "start_lr": 1e-4},
            },
        ],
    }
    summary = lrlab.study.run(study, task=friedman, workers=2)
    print(f"{summary.ran} trials in {summary.seconds:.0f} s; lrlab report {summary.directory}")
