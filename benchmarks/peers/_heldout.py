"""A held-out task (``benchmarks/heldout_tasks.py``) as the peers get it: what
``benchmarks/finder_heldout.py`` gives lrlab's range test, taken from that file itself.

* weights: ``start(task, seed)`` there (``torch.manual_seed(seed)`` then ``task.model()``);
* optimizer: the one ``start()`` builds (``make_optimizer`` over lrlab's ``param_groups``:
  no weight decay on biases, 1-d and normalisation parameters; momentum 0.9 for SGD, the
  task's betas for Adam/AdamW, torch's eps), handed to the torch-side tools as it is, and
  described in spec terms (``settings``, ``no_decay``) for fastai, which builds its own;
* batches: ``batches(task, seed, 0)``, the same list on every pass over the loader, because
  lrlab's ``range_test`` cycles the list it is given (its sweep sees epoch 0 repeated);
* loss: ``task.loss`` (cross-entropy, or MSE for the regression task).

Runs in the dev venv and in the fastai venv alike (finder_heldout imports only torch, numpy
and lrlab).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import IterableDataset

from ._task import Task


class RepeatedBatches(IterableDataset):
    """The same ready-made batches on every pass; ``passes`` counts the passes started."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.batches = batches
        self.passes = 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.passes += 1
        yield from self.batches


def optimizer_settings(opt: torch.optim.Optimizer) -> tuple[dict[str, Any], list[Any]]:
    """``opt`` in spec terms (``optimizer``, ``weight_decay``, ``momentum`` or ``betas`` and
    ``eps``) and the parameters its groups exempt from weight decay.

    Raises:
        ValueError: an optimizer or setting fastai's optimizer could not reproduce.
    """
    kinds = {torch.optim.SGD: "sgd", torch.optim.Adam: "adam", torch.optim.AdamW: "adamw"}
    if type(opt) not in kinds:
        raise ValueError(f"optimizer = {type(opt).__name__}: allowed SGD, Adam, AdamW")
    d = opt.defaults
    out: dict[str, Any] = {"optimizer": kinds[type(opt)], "weight_decay": d["weight_decay"]}
    if out["optimizer"] == "sgd":
        if d["nesterov"] or d["dampening"]:
            what = f"nesterov={d['nesterov']}, dampening={d['dampening']}"
            raise ValueError(f"SGD {what}: allowed nesterov=False, dampening=0")
        out["momentum"] = d["momentum"]
    else:
        if d["amsgrad"]:
            raise ValueError("Adam amsgrad=True: allowed amsgrad=False")
        out["betas"], out["eps"] = [float(b) for b in d["betas"]], d["eps"]
    no_decay = []
    for group in opt.param_groups:
        if group["weight_decay"] == 0:
            no_decay += list(group["params"])
        elif group["weight_decay"] != d["weight_decay"]:
            what = f"param group {group.get('name')!r} weight_decay = {group['weight_decay']}"
            raise ValueError(f"{what}: allowed 0 or {d['weight_decay']}")
    if d["weight_decay"] == 0:
        no_decay = []  # nothing decays: no exemption to make
    return out, no_decay


def build_heldout(spec: dict[str, Any]) -> Task:
    """The held-out task ``spec["heldout"]`` at ``spec["seed"]``, as lrlab's finder gets it."""
    from benchmarks.finder_heldout import batches, start
    from benchmarks.heldout_tasks import TASKS

    torch.set_num_threads(spec["threads"])
    task = TASKS[spec["heldout"]]()
    model, opt = start(task, spec["seed"])
    settings, no_decay = optimizer_settings(opt)
    settings |= {"batch_size": task.batch_size, "loss": task.loss.__name__}
    return Task(
        model,
        RepeatedBatches(batches(task, spec["seed"], 0)),
        RepeatedBatches([(task.vx, task.vy)]),
        loss=task.loss,
        regression=task.regression,
        optimizer=opt,
        settings=settings,
        no_decay=no_decay,
    )
