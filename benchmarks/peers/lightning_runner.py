"""PyTorch Lightning's ``Tuner(trainer).lr_find`` at its defaults, on an lrlab task.

``lr_find(module, train_dataloaders=loader)`` with every finder argument at its default
(``min_lr=1e-8, max_lr=1, num_training=100, mode="exponential", early_stop_threshold=4.0,
update_attr=True``), then ``.suggestion()`` (``skip_begin=10, skip_end=1``; since 2.5.3 the
gradient is taken with respect to the LR itself on the log-spaced grid).

The LightningModule is the smallest a user writes: the lrlab model, cross-entropy, and
``configure_optimizers`` returning the same torch optimizer as the other peers. It has an
``lr`` attribute because ``update_attr=True`` (the default) requires ``lr`` or
``learning_rate``; Lightning sets every param group to ``min_lr`` before the sweep, so the
value it starts with does not matter. Trainer: CPU, one device, no logger, no checkpointing,
no progress bar, no model summary (display and files only; the finder itself is unchanged).

Held-out tasks: the task's loss, and ``configure_optimizers`` returns the optimizer
``benchmarks/finder_heldout.py``'s ``start()`` builds (lrlab's param groups).

Run: ``python -m benchmarks.peers.lightning_runner < spec.json`` (the dev venv).
"""

from __future__ import annotations

import inspect
import logging
import tempfile
import time
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.tuner import Tuner

from ._task import Tap, Task, build_task, loader, result, serve, task_optimizer

PEER = "lightning"


class FinderModule(pl.LightningModule):
    def __init__(self, task: Task, spec: dict[str, Any], tap: Tap, lr: float) -> None:
        super().__init__()
        self.model = task.model
        self._task = task
        self.lr = lr  # read and overwritten by lr_find(update_attr=True)
        self._spec = spec
        self._tap = tap

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self._task.loss(self.model(x), y)
        self._tap.record_loss(loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        optimizer = task_optimizer(self._task, self._spec, lr=self.lr)
        self._tap.watch_optimizer(optimizer)
        return optimizer


def run(spec: dict[str, Any]) -> dict[str, Any]:
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # its info lines -> quiet
    task = build_task(spec)
    tap = Tap()
    tap.watch_model(task.model)
    defaults = {
        name: p.default
        for name, p in inspect.signature(Tuner.lr_find).parameters.items()
        if name in ("min_lr", "max_lr", "num_training", "mode", "early_stop_threshold")
    }
    module = FinderModule(task, spec, tap, lr=defaults["min_lr"])
    with tempfile.TemporaryDirectory(prefix="lrlab-lightning-") as root:
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=root,  # lr_find writes its .lr_find_<uuid>.ckpt here
        )
        torch.set_num_threads(spec["threads"])  # whatever the Trainer did
        start = time.perf_counter()
        finder = Tuner(trainer).lr_find(module, train_dataloaders=loader(task.train))
        assert finder is not None  # None only under fast_dev_run
        suggestion = finder.suggestion()
        seconds = time.perf_counter() - start

    settings = dict(defaults)
    settings |= {
        name: p.default
        for name, p in inspect.signature(finder.suggestion).parameters.items()
        if name in ("skip_begin", "skip_end")
    }
    settings |= {f"task_{k}": v for k, v in task.settings.items()}
    n = len(finder.results["lr"])
    notes = ["smoothed loss: EMA beta=0.98 debiased by trainer.global_step"]
    if n < settings["num_training"]:
        notes.append(f"stopped early after {n} of {settings['num_training']} steps (diverged)")
    if suggestion is None:
        notes.append("suggestion() returned None (too few finite points)")
    return result(
        PEER,
        spec,
        tap,
        suggestions={"steepest": suggestion},
        lrs=finder.results["lr"],
        losses=finder.results["loss"],
        seconds=seconds,
        settings=settings,
        dists=("pytorch-lightning",),
        notes=notes,
    )


if __name__ == "__main__":
    serve(run)
