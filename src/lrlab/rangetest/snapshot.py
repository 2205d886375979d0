"""Snapshot and restore everything a range test touches, in CPU memory.

A range test trains the user's real model with absurd learning rates; afterwards the
model, optimizer, grad scaler and random-number streams must be exactly as before, also
when the sweep raises. Peers save to a file in the user's directory (fastai, Lightning)
or leave restoring to the user (torch-lr-finder); lrlab copies to CPU memory and restores
in ``finally``.
"""

from __future__ import annotations

import copy
import random
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return copy.deepcopy(obj)


@dataclass
class TrainingSnapshot:
    """A CPU copy of model, optimizer, scaler, gradients, train/eval mode and RNG states."""

    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]
    scaler_state: dict[str, Any] | None
    grads: list[torch.Tensor | None]
    training: dict[str, bool]
    rng: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def take(
        cls, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any | None = None
    ) -> TrainingSnapshot:
        rng: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return cls(
            model_state=_to_cpu(model.state_dict()),
            optimizer_state=_to_cpu(optimizer.state_dict()),
            scaler_state=_to_cpu(scaler.state_dict()) if scaler is not None else None,
            grads=[None if p.grad is None else _to_cpu(p.grad) for p in model.parameters()],
            training={name: m.training for name, m in model.named_modules()},
            rng=rng,
        )

    def restore(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any | None = None
    ) -> None:
        model.load_state_dict(self.model_state)
        # load_state_dict casts state to each parameter's device and replaces the group dicts
        optimizer.load_state_dict(copy.deepcopy(self.optimizer_state))
        if scaler is not None and self.scaler_state is not None:
            scaler.load_state_dict(self.scaler_state)
        for p, g in zip(model.parameters(), self.grads):
            p.grad = None if g is None else g.to(p.device, copy=True)
        modes = self.training
        for name, m in model.named_modules():
            if name in modes:
                m.training = modes[name]
        torch.set_rng_state(self.rng["torch"])
        np.random.set_state(self.rng["numpy"])
        random.setstate(self.rng["python"])
        if "cuda" in self.rng:
            torch.cuda.set_rng_state_all(self.rng["cuda"])


@contextmanager
def hooks_suspended(optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Take the optimizer's own step hooks off for a while (a sweep, a confirm run).

    A scheduler, LARS or an instrument already attached to the user's optimizer would
    otherwise count the sweep's updates, rewrite its learning rates or log them; the
    snapshot cannot undo those side effects, so they are kept from happening.
    """
    names = ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks")
    saved = {n: getattr(optimizer, n) for n in names if hasattr(optimizer, n)}
    for n in saved:
        setattr(optimizer, n, OrderedDict())
    try:
        yield
    finally:
        for n, hooks in saved.items():
            setattr(optimizer, n, hooks)
