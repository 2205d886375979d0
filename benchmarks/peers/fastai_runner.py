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
  ``sqr_mom=0.99, eps=1e-5``); Adam: the same with ``decouple_wd=False`` (L2, as
  ``torch.optim.Adam(weight_decay)``);
* ``Learner(wd_bn_bias=True)``: decay on biases and norm weights too, as torch does
  (fastai's default ``False`` exempts them).

Data: a ``DataLoaders`` of two plain torch DataLoaders (lrlab's batch order); the second
(test set) is only there because fastai indexes ``dls[1]`` before ``LRFinder`` cancels
validation. Loss: ``CrossEntropyLossFlat()``.

Held-out tasks (``{"heldout": NAME, "seed": S}``, see ``_heldout``): the optimizer settings
are read off the torch optimizer ``benchmarks/finder_heldout.py``'s ``start()`` builds for
lrlab's finder, and the parameters its groups exempt from weight decay (lrlab's
``param_groups``: biases, 1-d and norm parameters) get fastai's per-parameter
``do_wd=False`` in the optimizer fastai creates (``wd_bn_bias=True`` keeps fastai's own,
slightly different exemption rule out of it), so the update is lrlab's, group for group.
Loss: ``CrossEntropyLossFlat()``, or ``MSELossFlat()`` for the regression task. Batches:
``batches(task, seed, 0)`` on every pass, as lrlab's range test cycles that list. What
cannot match: fastai runs its own torch (the fastai venv's), so the arithmetic agrees to
rounding, not bit for bit; and fastai's one param group stands for lrlab's several (same
LR and hyperparameters in all of them, so the same update).

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
from fastai.losses import CrossEntropyLossFlat, MSELossFlat
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
    decouple = spec["optimizer"] == "adamw"  # Adam's weight_decay is L2, as in torch
    wd = spec["weight_decay"]
    return partial(Adam, mom=beta1, sqr_mom=beta2, eps=spec["eps"], wd=wd, decouple_wd=decouple)


def exempt(opt: Any, params: list[Any]) -> None:
    """No weight decay on ``params`` in fastai optimizer ``opt`` (its per-parameter state)."""
    for p in params:
        opt.state[p]["do_wd"] = False


def run(spec: dict[str, Any]) -> dict[str, Any]:
    task = build_task(spec)
    tap = Tap()
    tap.watch_model(task.model)
    settings = {
        name: p.default
        for name, p in inspect.signature(Learner.lr_find).parameters.items()
        if name in ("start_lr", "end_lr", "num_it", "stop_div")
    }
    opt_spec = task.settings or spec  # a held-out task's optimizer, or the bundled spec's
    with tempfile.TemporaryDirectory(prefix="lrlab-fastai-") as root:
        dls = DataLoaders(loader(task.train), loader(task.test), path=root)
        learn = Learner(
            dls,
            task.model,
            loss_func=MSELossFlat() if task.regression else CrossEntropyLossFlat(),
            opt_func=fastai_opt_func(opt_spec),
            path=root,  # LRFinder saves and reloads the model under path/model_dir
            wd_bn_bias=True,
            cbs=[_TapCallback(tap)],
        )
        if task.no_decay:
            learn.create_opt()  # fit() keeps an optimizer that exists (reset_opt=False)
            exempt(learn.opt, task.no_decay)
        torch.set_num_threads(spec["threads"])
        start = time.perf_counter()
        with learn.no_bar():
            found = learn.lr_find(suggest_funcs=(valley, slide, steep, minimum), show_plot=False)
        seconds = time.perf_counter() - start
        lrs, losses = list(learn.recorder.lrs), [float(v) for v in learn.recorder.losses]

    settings["suggestion_window"] = "recorder[num_it//10:-5], cut at the first NaN"
    settings["opt_func"] = _describe(fastai_opt_func(opt_spec))
    settings["wd_bn_bias"] = True
    settings["no_decay_params"] = len(task.no_decay)
    settings["loss_func"] = type(learn.loss_func).__name__
    settings |= {f"task_{k}": v for k, v in task.settings.items()}
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
    up here) versus the torch one, on the same model, data and LR: with decay on biases
    (``NAME``), and over lrlab's ``param_groups`` against ``exempt`` (``NAME+groups``)."""
    from lrlab.optim import param_groups

    torch.manual_seed(0)
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    specs = {
        "sgd": {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4},
        "adam": {"optimizer": "adam", "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 1e-3},
        "adamw": {"optimizer": "adamw", "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01},
    }
    out = {}
    for (name, spec), groups in [(item, g) for item in specs.items() for g in (False, True)]:
        torch.manual_seed(1)
        ours = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
        theirs = copy.deepcopy(ours)
        if groups:
            lrlab_groups = param_groups(ours, weight_decay=spec["weight_decay"])
            reference = torch_optimizer(spec, lrlab_groups, lr=0.05)
            skip = {id(p) for g in lrlab_groups if g["weight_decay"] == 0 for p in g["params"]}
        else:
            reference, skip = torch_optimizer(spec, ours.parameters(), lr=0.05), set()
        fast = fastai_opt_func(spec)(list(theirs.parameters()), lr=0.05)
        pairs = zip(ours.parameters(), theirs.parameters())
        exempt(fast, [b for a, b in pairs if id(a) in skip])
        for _ in range(steps):
            for model, opt in ((ours, reference), (theirs, fast)):
                torch.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
                opt.zero_grad()
        out[name + ("+groups" if groups else "")] = max(
            (a - b).abs().max().item() for a, b in zip(ours.parameters(), theirs.parameters())
        )
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["--check-optimizers"]:
        import json

        print(json.dumps(check_optimizers()))
    else:
        serve(run)
