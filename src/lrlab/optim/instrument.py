"""Per-group instrumentation every N updates: LR, weight and gradient norms, update size.

An `Instrument` hangs on the optimizer's step hooks. On a sampled update it records, for
each param group, the LR in the group, ``||w||``, ``||g||``, the update ``||dw||``, the
update/weight ratio ``||dw|| / ||w||`` and the effective LR ``||dw|| / ||g||`` (what the
step actually did per unit of gradient: it includes momentum, Adam's scaling and LARS's
trust ratio, when the instrument is attached before LARS and so reads the raw gradients).
Between samples the hooks return after one integer test, and a detached instrument
costs nothing. Steps a GradScaler skips are not updates and are not recorded (fused
optimizers run their hooks on such steps too), and gradients a fused step still carries
scaled are measured unscaled.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.optim import Optimizer

from lrlab.optim._steps import (
    OptimizerLike,
    grad_scale,
    inner_optimizer,
    inner_step,
    step_was_skipped,
)


@dataclass(frozen=True)
class GroupRecord:
    """One group's numbers at one sampled update."""

    step: int
    group: int
    name: str
    lr: float
    weight_norm: float
    grad_norm: float
    update_norm: float
    update_ratio: float
    effective_lr: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Instrument:
    """Record `GroupRecord` rows every ``every`` updates; pass them to ``callback`` too.

    >>> import torch
    >>> w = torch.nn.Parameter(torch.ones(4))
    >>> opt = torch.optim.SGD([w], lr=0.1)
    >>> inst = Instrument(opt, every=1)
    >>> w.grad = torch.ones(4)
    >>> opt.step()
    >>> r = inst.records[0]
    >>> (r.step, r.weight_norm, r.grad_norm, round(r.update_norm, 6), round(r.effective_lr, 6))
    (0, 2.0, 2.0, 0.2, 0.1)
    """

    def __init__(
        self,
        optimizer: OptimizerLike,
        every: int = 10,
        callback: Callable[[list[GroupRecord]], None] | None = None,
        keep: bool = True,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every={every!r} is invalid; expected an integer >= 1")
        optimizer = inner_optimizer(optimizer)
        self.optimizer, self.every, self.callback, self.keep = optimizer, every, callback, keep
        self.records: list[GroupRecord] = []
        self._step = 0
        self._pending: list[tuple[int, list[torch.Tensor], float, float, float]] | None = None
        self._handles = [
            optimizer.register_step_pre_hook(self._before),
            optimizer.register_step_post_hook(self._after),
        ]

    @torch.no_grad()
    def _before(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        if self._step % self.every or step_was_skipped(optimizer) or inner_step(optimizer):
            return
        # A fused optimizer under GradScaler sees gradients still multiplied by the scale.
        scale = grad_scale(optimizer)
        inv = 1.0 / float(scale) if scale is not None else 1.0
        pending = []
        for i, group in enumerate(optimizer.param_groups):
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            w = _norm(params)
            g = _norm([p.grad for p in params]) * inv
            # the LR this update uses: after the step, a driver has already written the next one
            pending.append((i, [p.detach().clone() for p in params], w, g, float(group["lr"])))
        self._pending = pending

    @torch.no_grad()
    def _after(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        if inner_step(optimizer):  # the outer call of a nested step records it
            return
        if step_was_skipped(optimizer):  # an AMP-skipped fused step: not an update
            self._pending = None
            return
        step, self._step = self._step, self._step + 1
        if self._pending is None:
            return
        rows = []
        for i, before, w, g, lr in self._pending:
            group = optimizer.param_groups[i]
            params = [p for p in group["params"] if p.grad is not None]
            if len(params) != len(before):  # the group changed under us: skip it this time
                continue
            du = _norm(torch._foreach_sub([p.detach() for p in params], before))
            rows.append(
                GroupRecord(
                    step=step,
                    group=i,
                    name=str(group.get("name", i)),
                    lr=lr,
                    weight_norm=w,
                    grad_norm=g,
                    update_norm=du,
                    update_ratio=du / w if w > 0 else math.nan,
                    effective_lr=du / g if g > 0 else math.nan,
                )
            )
        self._pending = None
        if self.keep:
            self.records.extend(rows)
        if self.callback is not None:
            self.callback(rows)

    @property
    def step_count(self) -> int:
        """The number of optimizer updates seen (the next sampled update is a multiple of
        ``every``)."""
        return self._step

    def set_step(self, step: int) -> None:
        """Continue counting from ``step`` updates, e.g. after resuming from a checkpoint.

        >>> import torch
        >>> w = torch.nn.Parameter(torch.ones(2))
        >>> opt = torch.optim.SGD([w], lr=0.1)
        >>> inst = Instrument(opt, every=5)
        >>> inst.set_step(10)
        >>> w.grad = torch.ones(2)
        >>> opt.step()
        >>> [r.step for r in inst.records], inst.step_count
        ([10], 11)
        """
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step={step!r} is invalid; expected an integer >= 0")
        self._step = step

    def remove(self) -> None:
        """Detach from the optimizer."""
        for h in self._handles:
            h.remove()


def _norm(tensors: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> float:
    return float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors))))
