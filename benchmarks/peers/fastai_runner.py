"""fastai's ``Learner.lr_find`` at its defaults, on an lrlab task (runs in the fastai venv).

``learn.lr_find(suggest_funcs=(valley, slide, steep, minimum), show_plot=False)`` with the
sweep at its defaults (``start_lr=1e-7, end_lr=10, num_it=100, stop_div=True``); the
suggestions are fastai's own functions on ``recorder.lrs/losses[num_it//10:-5]``.
``show_plot=False`` and ``no_bar()`` only drop the figure and the progress bar.

The optimizer is fastai's own, set to compute exactly what the torch optimizer of the
other peers computes (checked by ``--check-optimizers``):

* SGD:   ``fastai.optimizer.SGD(mom=momentum, wd=weight_decay, decouple_wd=False)``: L2
  added to the gradient before momentum, as ``torch.optim.SGD(momentum, weight_decay)``
  (fastai's default ``decouple_wd=True`` would be decoupled decay instead);
* AdamW: ``fastai.optimizer.Adam(mom=betas[0], sqr_mom=betas[1], eps=eps, wd=weight_decay,
  decouple_wd=True)``, as ``torch.optim.AdamW`` (fastai's defaults would be
  ``sqr_mom=0.99, eps=1e-5``);
* ``Learner(wd_bn_bias=True)``: decay on biases and norm weights too, as torch does
  (fastai's default ``False`` exempts them).

Data: a ``DataLoaders`` of two plain torch DataLoaders (lrlab's batch order); the second
(test set) is only there because fastai indexes ``dls[1]`` before ``LRFinder`` cancels
validation. Loss: ``CrossEntropyLossFlat()``.

Run: ``/work/peer-venvs/fastai/bin/python -m benchmarks.peers.fastai_runner < spec.json``.
"""

from __future__ import annotations

import copy
import inspect
import sys
import tempfile
import time
from functools import partial
from typing import Any

import torch
from fastai.callback.core import Callback
from fastai.callback.progress import ProgressCallback  # noqa: F401  (patches Learner.no_bar)
from fastai.callback.schedule import minimum, slide, steep, valley  # patches Learner.lr_find
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.optimizer import SGD, Adam

from ._task import Tap, build_task, loader, result, serve, torch_optimizer

PEER = "fastai"


class _TapCallback(Callback):
    """Counts the optimizer steps fastai actually takes and records each raw batch loss."""

    order = 0

    def __init__(self, tap: Tap) -> None:
        self.tap = tap

    def after_loss(self) -> None:
        if self.training:
            self.tap.record_loss(self.learn.loss)

    def after_step(self) -> None:
        self.tap.updates += 1


def fastai_opt_func(spec: dict[str, Any]) -> Any:
    if spec["optimizer"] == "sgd":
        return partial(SGD, mom=spec["momentum"], wd=spec["weight_decay"], decouple_wd=False)
    beta1, beta2 = spec["betas"]
    return partial(
        Adam, mom=beta1, sqr_mom=beta2, eps=spec["eps"], wd=spec["weight_decay"], decouple_wd=True
    )


def run(spec: dict[str, Any]) -> dict[str, Any]:
    task = build_task(spec)
    tap = Tap()
    tap.watch_model(task.model)
    settings = {
        name: p.default
        for name, p in inspect.signature(Learner.lr_find).parameters.items()
        if name in ("start_lr", "end_lr", "num_it", "stop_div")
    }
    with tempfile.TemporaryDirectory(prefix="lrlab-fastai-") as root:
        dls = DataLoaders(loader(task.train), loader(task.test), path=root)
        learn = Learner(
            dls,
            task.model,
            loss_func=CrossEntropyLossFlat(),
            opt_func=fastai_opt_func(spec),
            path=root,  # LRFinder saves and reloads the model under path/model_dir
            wd_bn_bias=True,
            cbs=[_TapCallback(tap)],
        )
        torch.set_num_threads(spec["threads"])
        start = time.perf_counter()
        with learn.no_bar():
            found = learn.lr_find(suggest_funcs=(valley, slide, steep, minimum), show_plot=False)
        seconds = time.perf_counter() - start
        lrs, losses = list(learn.recorder.lrs), [float(v) for v in learn.recorder.losses]

    settings["suggestion_window"] = "recorder[num_it//10:-5], cut at the first NaN"
    settings["opt_func"] = _describe(fastai_opt_func(spec))
    settings["wd_bn_bias"] = True
    notes = ["smoothed loss: fastai AvgSmoothLoss (EMA beta=0.98, debiased)"]
    if tap.updates < settings["num_it"]:
        notes.append(f"stopped early after {tap.updates} of {settings['num_it']} updates (4x best)")
    return result(
        PEER,
        spec,
        tap,
        suggestions=found._asdict(),
        lrs=lrs,
        losses=losses,
        seconds=seconds,
        settings=settings,
        dists=("fastai", "fastcore"),
        notes=notes,
    )


def _describe(opt_func: partial) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in opt_func.keywords.items())
    return f"fastai.optimizer.{opt_func.func.__name__}({args})"


def check_optimizers(steps: int = 5) -> dict[str, float]:
    """Max |difference| of parameters after ``steps`` updates of fastai's optimizer (as set
    up here) versus the torch one, on the same model, data and LR, with decay on biases."""
    torch.manual_seed(0)
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    specs = {
        "sgd": {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4},
        "adamw": {"optimizer": "adamw", "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01},
    }
    out = {}
    for name, spec in specs.items():
        torch.manual_seed(1)
        ours = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
        theirs = copy.deepcopy(ours)
        reference = torch_optimizer(spec, ours.parameters(), lr=0.05)
        fast = fastai_opt_func(spec)(list(theirs.parameters()), lr=0.05)
        for _ in range(steps):
            for model, opt in ((ours, reference), (theirs, fast)):
                torch.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
                opt.zero_grad()
        out[name] = max(
            (a - b).abs().max().item() for a, b in zip(ours.parameters(), theirs.parameters())
        )
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["--check-optimizers"]:
        import json

        print(json.dumps(check_optimizers()))
    else:
        serve(run)
