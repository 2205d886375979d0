"""LARS and LARC for any torch optimizer (You, Gitman & Ginsburg 2017, arXiv:1708.03888).

Per parameter tensor (a "layer") with weights ``w``, gradient ``g`` and weight decay ``wd``:

    ratio = trust_coefficient * ||w|| / (||g|| + wd * ||w|| + eps)   (1 if ||w|| or ||g|| is 0)
    LARC ("clip"):  ratio = min(ratio / lr, 1), so the effective LR is min(lr, trust ratio)
    update direction = (g + wd * w) * ratio        (weight decay folded in, as in the paper)

The denominator is the paper's sum of norms (Apex, timm and torchlars do the same;
optax uses the norm of the sum). The wrapped optimizer then runs with
``weight_decay=0`` and the rescaled gradients; ``p.grad`` itself is left unmodified (the
originals are put back after the step). Groups with ``weight_decay == 0`` (biases and
norms, when the groups come from `param_groups`) keep plain updates, as in timm and the
self-supervised recipes; ``exclude="none"`` adapts every group. All norms and products
are foreach operations: one kernel per list, not per tensor. Under a GradScaler, a fused
optimizer runs its step hooks with the gradients still scaled and on skipped (overflow)
steps too: the ratios use the unscaled norms, and a skipped step is left alone.

Adaptive optimizers (Adam, AdamW and any optimizer whose groups carry ``betas``; Adagrad,
RMSprop, Adadelta) divide the gradient by its own running scale, which cancels a
rescaled gradient: LARS before Adam would change nothing. For them the trust ratio is
applied to the optimizer's update instead, LAMB's form (You et al. 2019,
arXiv:1904.00962): with ``u`` the update the optimizer made per unit LR (its step divided
by ``lr``, weight decay included),

    ratio = trust_coefficient * ||w|| / (||u|| + eps)        (1 if ||w|| or ||u|| is 0)
    w <- w_before - lr * ratio * u      (LARC: - min(lr, ratio) * u)

so the step's length per layer is ``lr * ratio * ||u|| = lr * trust_coefficient * ||w||``
(LAMB is this with ``trust_coefficient = 1``). The optimizer's state (Adam's moments)
is left as the optimizer wrote it, as in LAMB.
"""

from __future__ import annotations

from collections.abc import Callable
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

Exclude = Callable[[dict[str, Any]], bool]


class LARS:
    """Layer-wise adaptive rate scaling around ``optimizer`` (which you keep using as is).

    Args:
        optimizer: any torch optimizer; its ``step()`` gets the rescaled gradients.
        trust_coefficient: eta of the paper (1e-3 for LARS; Apex's LARC uses 0.02).
        eps: added to the denominator.
        mode: ``"scale"`` (LARS) or ``"clip"`` (LARC).
        exclude: ``"no_decay"`` (default: groups with ``weight_decay == 0`` are not
            adapted), ``"none"``, or a predicate on the param-group dict.
        trust_ratio: False passes gradients through untouched (the wrapped optimizer,
            bit for bit; for ablations).

    >>> import torch
    >>> w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))          # ||w|| = 5
    >>> opt = torch.optim.SGD([w], lr=1.0, weight_decay=0.1)
    >>> lars = LARS(opt, trust_coefficient=0.01)
    >>> w.grad = torch.tensor([0.6, 0.8])                          # ||g|| = 1
    >>> opt.step()          # ratio = 0.01*5/(1+0.1*5); w -= ([.6,.8] + 0.1*[3,4]) * ratio
    >>> [round(v, 6) for v in w.tolist()], round(lars.last_ratios[0][0], 6)
    ([2.97, 3.96], 0.033333)
    """

    def __init__(
        self,
        optimizer: OptimizerLike,
        trust_coefficient: float = 1e-3,
        eps: float = 1e-8,
        mode: str = "scale",
        exclude: str | Exclude = "no_decay",
        trust_ratio: bool = True,
    ) -> None:
        optimizer = inner_optimizer(optimizer)
        if not (isinstance(trust_coefficient, (int, float)) and trust_coefficient > 0):
            raise ValueError(
                f"trust_coefficient={trust_coefficient!r} is invalid; expected a number > 0"
            )
        if not (isinstance(eps, (int, float)) and eps >= 0):
            raise ValueError(f"eps={eps!r} is invalid; expected a number >= 0")
        if mode not in ("scale", "clip"):
            raise ValueError(f"mode={mode!r} is invalid; expected 'scale' (LARS) or 'clip' (LARC)")
        if isinstance(exclude, str) and exclude not in ("no_decay", "none"):
            raise ValueError(
                f"exclude={exclude!r} is invalid; expected 'no_decay', 'none' or a function"
            )
        for i, g in enumerate(optimizer.param_groups):
            if "weight_decay" not in g:
                raise ValueError(f"{type(optimizer).__name__} param group {i} has no weight_decay")
        self.optimizer = optimizer
        self.trust_coefficient, self.eps, self.mode = float(trust_coefficient), float(eps), mode
        self.exclude = exclude
        self.trust_ratio = trust_ratio
        self._last: list[torch.Tensor | None] = [None] * len(optimizer.param_groups)
        self._saved: list[tuple[list[torch.nn.Parameter], list[torch.Tensor], int, float]] = []
        self._before_step: list[tuple[int, list[torch.nn.Parameter], list[torch.Tensor], float]]
        self._before_step = []
        self._zeros: dict[int, float] = {}
        #: True: the trust ratio scales the optimizer's update (LAMB's form), not the gradient
        self.adaptive = is_adaptive(optimizer)
        self._handles = [
            optimizer.register_step_pre_hook(self._before),
            optimizer.register_step_post_hook(self._after),
        ]

    @property
    def last_ratios(self) -> list[list[float]]:
        """Per group, the trust ratio of each parameter with a gradient at the last step."""
        return [[] if r is None else r.tolist() for r in self._last]

    def _excluded(self, group: dict[str, Any]) -> bool:
        if callable(self.exclude):
            return bool(self.exclude(group))
        return self.exclude == "no_decay" and not group.get("weight_decay", 0.0)

    @torch.no_grad()
    def _before(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        # A step GradScaler skips (fused optimizers still run it) changes nothing: its
        # inf/NaN gradients must not become the reported trust ratios.
        if not self.trust_ratio or step_was_skipped(optimizer) or inner_step(optimizer):
            return
        # Gradients a fused step still carries times the loss scale S: the ratio needs the
        # true norm, and the direction goes back in the same units (the kernel divides by S).
        if self.adaptive:
            self._keep_weights(optimizer)
            return
        scale = grad_scale(optimizer)
        for i, group in enumerate(optimizer.param_groups):
            if self._excluded(group):
                continue
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            wd = float(group["weight_decay"])
            w_norm = torch.stack(torch._foreach_norm(params))
            g_norm = torch.stack(torch._foreach_norm(grads))
            if scale is not None:
                scale = scale.to(g_norm.device)
                g_norm = g_norm / scale
            ratio = self.trust_coefficient * w_norm / (g_norm + wd * w_norm + self.eps)
            ratio = torch.where((w_norm > 0) & (g_norm > 0), ratio, torch.ones_like(ratio))
            lr = float(group["lr"])
            if self.mode == "clip" and lr > 0:
                ratio = torch.clamp(ratio / lr, max=1.0)
            direction: list[torch.Tensor] | tuple[torch.Tensor, ...]
            if not wd:
                direction = [g.clone() for g in grads]
            elif scale is None:
                direction = torch._foreach_add(grads, params, alpha=wd)
            else:
                direction = torch._foreach_add(grads, torch._foreach_mul(params, scale * wd))
            torch._foreach_mul_(direction, list(ratio.unbind()))
            self._last[i] = ratio  # kept as a tensor: no device sync on the hot path
            self._saved.append((params, grads, i, wd))
            for p, d in zip(params, direction):
                p.grad = d
            # A fresh float object, so _after can tell it from a value a scheduler wrote since.
            group["weight_decay"] = self._zeros[i] = float("0")

    def _keep_weights(self, optimizer: Optimizer) -> None:
        for i, group in enumerate(optimizer.param_groups):
            if self._excluded(group):
                continue
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                before = [p.detach().clone() for p in params]
                # the LR this step used: a scheduler's post-step hook may rewrite it first
                self._before_step.append((i, params, before, float(group["lr"])))

    @torch.no_grad()
    def _scale_updates(self) -> None:
        for i, params, before, lr in self._before_step:
            if lr <= 0:
                continue
            delta = torch._foreach_sub([p.detach() for p in params], before)
            w_norm = torch.stack(torch._foreach_norm(before))
            u_norm = torch.stack(torch._foreach_norm(delta)) / lr
            ratio = self.trust_coefficient * w_norm / (u_norm + self.eps)
            ratio = torch.where((w_norm > 0) & (u_norm > 0), ratio, torch.ones_like(ratio))
            factor = torch.clamp(ratio / lr, max=1.0) if self.mode == "clip" else ratio
            torch._foreach_mul_(delta, list(factor.unbind()))
            for p, w, d in zip(params, before, delta):
                p.copy_(w + d)
            self._last[i] = factor if self.mode == "clip" else ratio
        self._before_step.clear()

    def _after(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        if inner_step(optimizer):
            return
        if self._before_step:
            self._scale_updates()
        for params, grads, i, wd in self._saved:
            for p, g in zip(params, grads):
                p.grad = g
            group = optimizer.param_groups[i]
            if group["weight_decay"] is self._zeros[i]:  # untouched since _before: put it back
                group["weight_decay"] = wd
        self._saved.clear()

    def remove(self) -> None:
        """Detach: the optimizer behaves as it did before."""
        for h in self._handles:
            h.remove()


_ADAPTIVE = (torch.optim.Adagrad, torch.optim.RMSprop, torch.optim.Adadelta)


def is_adaptive(optimizer: Optimizer) -> bool:
    """Whether ``optimizer`` normalises its gradients (groups with ``betas``, or Adagrad,
    RMSprop, Adadelta), so LARS must scale its update rather than its gradient.

    >>> import torch
    >>> w = [torch.nn.Parameter(torch.ones(1))]
    >>> is_adaptive(torch.optim.AdamW(w)), is_adaptive(torch.optim.SGD(w, lr=0.1))
    (True, False)
    """
    return isinstance(optimizer, _ADAPTIVE) or any("betas" in g for g in optimizer.param_groups)


def LARC(optimizer: Optimizer, trust_coefficient: float = 0.02, **kwargs: Any) -> LARS:
    """LARC: `LARS` in clip mode (effective LR ``min(lr, trust ratio)``); Apex's eta 0.02."""
    return LARS(optimizer, trust_coefficient=trust_coefficient, mode="clip", **kwargs)
