"""Smith's automatic layer-wise learning rate: weight-norm change over gradient-norm change.

Proposed by Leslie Smith in the fast.ai thread "Cyclical Layer Learning Rates (a
research question)": give each layer the rate movingAvg(change in its weight norm) /
movingAvg(change in its gradient norm). It is a secant (inverse-curvature) estimate per
layer, in the family of Barzilai-Borwein steps and LDoG. The precise definition used
here, every choice exposed as a parameter:

For param group ``l`` at update ``t`` (read in the optimizer's pre-step hook, so the
gradient is the one about to be applied and the weights are those it was computed at):

* ``W_t = ||w_t||`` and ``G_t = ||g_t||``: Euclidean norms over all of the group's
  parameters that have gradients (the group is one "layer").
* ``variant="norm_change"`` (Smith's words): ``dW_t = |W_t - W_{t-1}|``,
  ``dG_t = |G_t - G_{t-1}|``. ``variant="secant"``: ``dW_t = ||w_t - w_{t-1}||`` and
  ``dG_t = ||g_t - g_{t-1}||`` (needs a copy of the previous weights and gradients).
* Moving averages: ``A_t = beta * A_{t-1} + (1 - beta) * dW_t`` and ``B_t`` likewise for
  ``dG_t``, debiased by ``1 - beta**k`` after ``k`` observations (the first update only
  records norms; there is no change yet).
* Ratio ``r_l = A_l / B_l``; a group whose ``B_l <= eps`` (gradient norm not changing)
  gets the largest finite ratio of the others, so it is not a division by zero.
* Multiplier ``m_l = clip(r_l / geometric_mean_l(r_l), min_scale, max_scale)``: the
  normalisation keeps the global schedule in charge of the overall size; only the
  *relative* rates are automatic.
* Before ``warmup`` observations every multiplier is 1. Groups with ``auto_llr: False``
  in their param-group dict (e.g. biases) keep 1 and do not enter the mean.

The multiplier computed at update ``t`` is used from update ``t + 1`` (the driver writes
the next values right after each step). Steps a GradScaler skips are not observed, and
gradients a fused optimizer still carries scaled are unscaled first.
"""

from __future__ import annotations

import math
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


class AutoLLR:
    """Per-group LR multipliers from Smith's rule; plug into ``HyperparamScheduler(groups=...)``.

    >>> import torch
    >>> from lrlab.optim import HyperparamScheduler, param_groups
    >>> from lrlab.schedules import one_cycle
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> opt = torch.optim.SGD(param_groups(net, no_decay_bias_norm=False), lr=0.1, momentum=0.9)
    >>> auto = AutoLLR(opt)
    >>> sched = HyperparamScheduler(opt, lr=one_cycle(max_lr=0.1, total=100), groups=auto.groups())
    >>> auto.multipliers
    [1.0, 1.0]
    """

    def __init__(
        self,
        optimizer: OptimizerLike,
        *,
        beta: float = 0.9,
        warmup: int = 10,
        min_scale: float = 0.1,
        max_scale: float = 10.0,
        variant: str = "norm_change",
        eps: float = 1e-12,
    ) -> None:
        if not 0 <= beta < 1:
            raise ValueError(f"beta={beta!r} is invalid; expected a number in [0, 1)")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
            raise ValueError(f"warmup={warmup!r} is invalid; expected an integer >= 1")
        if not 0 < min_scale <= 1 <= max_scale < math.inf:
            raise ValueError(
                f"min_scale={min_scale!r}, max_scale={max_scale!r} are invalid; "
                "expected 0 < min_scale <= 1 <= max_scale (finite)"
            )
        if variant not in ("norm_change", "secant"):
            raise ValueError(f"variant={variant!r} is invalid; expected 'norm_change' or 'secant'")
        if not eps > 0:
            raise ValueError(f"eps={eps!r} is invalid; expected a number > 0")
        optimizer = inner_optimizer(optimizer)
        self.optimizer = optimizer
        self.beta, self.warmup, self.eps = beta, warmup, eps
        self.min_scale, self.max_scale, self.variant = min_scale, max_scale, variant
        n = len(optimizer.param_groups)
        self.active = [g.get("auto_llr", True) is not False for g in optimizer.param_groups]
        self.multipliers = [1.0] * n
        self.ratios = [math.nan] * n
        self._prev: list[tuple[float, float] | None] = [None] * n
        self._prev_tensors: list[tuple[list[torch.Tensor], list[torch.Tensor]] | None] = [None] * n
        self._avg = [[0.0, 0.0] for _ in range(n)]
        self._seen = 0
        self._handle = optimizer.register_step_pre_hook(self._observe)

    def config(self) -> dict[str, Any]:
        return {
            "kind": "auto_llr",
            "beta": self.beta,
            "warmup": self.warmup,
            "min_scale": self.min_scale,
            "max_scale": self.max_scale,
            "variant": self.variant,
            "eps": self.eps,
        }

    def groups(self) -> list[dict[str, Any]]:
        """Settings for ``HyperparamScheduler(groups=...)``: each group's multiplier view."""
        return [{"lr_scale": _GroupScale(self, i)} for i in range(len(self.multipliers))]

    # ------------------------------------------------------------------ the rule
    def _observe(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        if step_was_skipped(optimizer) or inner_step(optimizer):  # AMP overflow; nested step
            return
        # A fused step under GradScaler sees the gradients still times the loss scale.
        scale = grad_scale(optimizer)
        inv = 1.0 / float(scale) if scale is not None else 1.0
        changes: list[tuple[float, float] | None] = []
        for i, group in enumerate(optimizer.param_groups):
            params = [p for p in group["params"] if p.grad is not None]
            if not self.active[i] or not params:
                changes.append(None)
                continue
            grads = [p.grad for p in params]
            w_norm = _norm(params)
            g_norm = _norm(grads) * inv
            prev = self._prev[i]
            if self.variant == "secant":
                if scale is not None:
                    grads = list(torch._foreach_mul([g.detach() for g in grads], inv))
                old = self._prev_tensors[i]
                if old is not None:
                    changes.append((_diff_norm(params, old[0]), _diff_norm(grads, old[1])))
                else:
                    changes.append(None)
                self._prev_tensors[i] = (
                    [p.detach().clone() for p in params],
                    [g.detach().clone() for g in grads],
                )
            else:
                changes.append(
                    None if prev is None else (abs(w_norm - prev[0]), abs(g_norm - prev[1]))
                )
            self._prev[i] = (w_norm, g_norm)
        if all(c is None for c in changes):
            return
        self._seen += 1
        debias = 1 - self.beta**self._seen
        for i, c in enumerate(changes):
            if c is None:
                continue
            a = self._avg[i]
            a[0] = self.beta * a[0] + (1 - self.beta) * c[0]
            a[1] = self.beta * a[1] + (1 - self.beta) * c[1]
            dw, dg = a[0] / debias, a[1] / debias
            self.ratios[i] = dw / dg if dg > self.eps else math.inf
        self._update_multipliers()

    def _update_multipliers(self) -> None:
        finite = [r for r, on in zip(self.ratios, self.active) if on and math.isfinite(r) and r > 0]
        if self._seen < self.warmup or not finite:
            return
        top = max(finite)
        ratios = [
            min(r, top) if on and not math.isnan(r) else math.nan
            for r, on in zip(self.ratios, self.active)
        ]
        logs = [math.log(r) for r in ratios if math.isfinite(r) and r > 0]
        center = math.exp(sum(logs) / len(logs))
        for i, r in enumerate(ratios):
            if math.isfinite(r) and r > 0:
                self.multipliers[i] = min(self.max_scale, max(self.min_scale, r / center))

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Averages, last norms and multipliers (the secant variant's tensor copies too)."""
        return {
            "config": self.config(),
            "seen": self._seen,
            "avg": [list(a) for a in self._avg],
            "prev": [None if p is None else list(p) for p in self._prev],
            "prev_tensors": self._prev_tensors,
            "multipliers": list(self.multipliers),
            "ratios": list(self.ratios),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("config") != self.config():
            raise ValueError(
                f"AutoLLR state was written with {state.get('config')}, not {self.config()}"
            )
        self._seen = int(state["seen"])
        self._avg = [list(a) for a in state["avg"]]
        self._prev = [None if p is None else (float(p[0]), float(p[1])) for p in state["prev"]]
        self._prev_tensors = state["prev_tensors"]
        self.multipliers = [float(m) for m in state["multipliers"]]
        self.ratios = [float(r) for r in state["ratios"]]

    def remove(self) -> None:
        """Stop observing the optimizer (multipliers stay at their last values)."""
        self._handle.remove()


class _GroupScale:
    """The driver's view of one group's multiplier (a `Multiplier`)."""

    def __init__(self, owner: AutoLLR, index: int) -> None:
        self.owner, self.index = owner, index

    def __call__(self, step: int) -> float:
        return self.owner.multipliers[self.index]

    def to_dict(self) -> dict[str, Any]:
        return {**self.owner.config(), "group": self.index}


def _norm(tensors: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> float:
    norms = torch._foreach_norm([t.detach() for t in tensors])
    return float(torch.linalg.vector_norm(torch.stack(norms)))


def _diff_norm(now: list[torch.Tensor], before: list[torch.Tensor]) -> float:
    return _norm(torch._foreach_sub([t.detach() for t in now], before))
