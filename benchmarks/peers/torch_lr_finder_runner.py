"""torch-lr-finder (davidtvs/pytorch-lr-finder) at its defaults, on an lrlab task.

``LRFinder(model, optimizer, criterion).range_test(loader)`` with every range-test argument
left at its default (``end_lr=10, num_iter=100, step_mode="exp", smooth_f=0.05,
diverge_th=5``), then the suggestion of ``plot(suggest_lr=True)`` (steepest
``np.gradient`` of the smoothed loss over ``history[10:-5]``), computed by that very method
on an off-screen Agg axes.

Start LR: ``range_test`` starts from the optimizer's LR (``start_lr=None``); the optimizer
is built with ``lr=1e-7``, as in the project's README examples (``optim.Adam(...,
lr=1e-7)`` / ``optim.SGD(..., lr=1e-7)``), which is also fastai's start.

Held-out tasks (``{"heldout": NAME, "seed": S}``): the optimizer is the one
``benchmarks/finder_heldout.py``'s ``start()`` gives lrlab's finder (lrlab's param groups,
no decay on biases and norms; SGD with momentum 0.9, or Adam/AdamW with the task's betas),
every group set to the same ``1e-7`` start; the loss is the task's (cross-entropy or MSE);
the loader yields lrlab's sweep batches, ``batches(task, seed, 0)``, on every pass. Nothing
the tool takes differs from what lrlab's finder gets, so nothing is approximated.

Run: ``python -m benchmarks.peers.torch_lr_finder_runner < spec.json`` (the dev venv).
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before torch_lr_finder imports pyplot: plot() must never open a window

import matplotlib.pyplot as plt
import torch
from torch_lr_finder import LRFinder

from ._task import Tap, build_task, loader, result, serve, task_optimizer

PEER = "torch-lr-finder"
START_LR = 1e-7  # the optimizer's LR = range_test's start (README examples)


def run(spec: dict[str, Any]) -> dict[str, Any]:
    task = build_task(spec)
    tap = Tap()
    tap.watch_model(task.model)
    optimizer = task_optimizer(task, spec, lr=START_LR)
    tap.watch_optimizer(optimizer)

    def criterion(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = task.loss(logits, target)
        tap.record_loss(loss)
        return loss

    finder = LRFinder(task.model, optimizer, criterion)
    start = time.perf_counter()
    finder.range_test(loader(task.train))
    fig, ax = plt.subplots()
    _, steepest = finder.plot(ax=ax, suggest_lr=True)  # defaults: skip_start=10, skip_end=5
    seconds = time.perf_counter() - start
    plt.close(fig)

    settings = _defaults(LRFinder.range_test, "end_lr", "num_iter", "step_mode", "smooth_f")
    settings |= _defaults(LRFinder.range_test, "diverge_th", "start_lr")
    settings |= _defaults(LRFinder.plot, "skip_start", "skip_end")
    settings["optimizer_lr"] = START_LR
    settings |= {f"task_{k}": v for k, v in task.settings.items()}
    n = len(finder.history["lr"])
    notes = [f"smoothed loss: EMA smooth_f={settings['smooth_f']} (not debiased, first raw)"]
    if n < settings["num_iter"]:
        notes.append(f"stopped early after {n} of {settings['num_iter']} iterations (diverged)")
    return result(
        PEER,
        spec,
        tap,
        suggestions={"steepest": steepest},
        lrs=finder.history["lr"],
        losses=finder.history["loss"],
        seconds=seconds,
        settings=settings,
        dists=("torch-lr-finder", "numpy"),
        notes=notes,
    )


def _defaults(fn: Any, *names: str) -> dict[str, Any]:
    params = inspect.signature(fn).parameters
    return {name: params[name].default for name in names}


if __name__ == "__main__":
    serve(run)
