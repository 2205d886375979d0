"""Freezing plans: which blocks stop training when, applied by one function.

The network-stability experiments (Smith et al., "Proposing a new effect of learning
rate decay: network stability") freeze every block of a ResNet-18 but one at a fixed
epoch (B), after one block's LR decayed (C), or after a network-wide decay (D). A
`FreezePlan` states such a protocol as data (it round-trips through ``to_dict`` for study
files) and `FreezePlan.apply` makes a model and optimizer match it at any update:

* frozen parameters get ``requires_grad=False`` and ``grad=None``, so torch optimizers
  skip them entirely (no momentum, no weight decay): they stop changing bit for bit;
* optimizer state: ``"keep"`` leaves momentum/Adam moments in place, so an unfrozen
  block resumes with its old buffers; ``"drop"`` deletes them when the block freezes, so
  it restarts from zero when unfrozen (fastai's ``freeze_to`` clears state this way);
* batch norm: with ``freeze_bn_stats=True`` the norm layers inside frozen blocks run in
  eval mode (running statistics fixed, even after ``model.train()``), so a frozen block
  computes a fixed function; with False their statistics keep updating.

Unfreezing can set the block's LR multiplier from then on (`FreezePlan.lr_scales` gives
per-group multipliers for the driver).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lrlab.schedules import Constant, Join, Schedule

_BN = nn.modules.batchnorm._BatchNorm


@dataclass(frozen=True)
class FreezeEvent:
    """At update (or epoch) ``at``, freeze or unfreeze the parameters matching ``blocks``.

    ``blocks`` and ``except_blocks`` are glob patterns over parameter names
    (``"layer1*"``, ``"*"``); ``lr_scale`` (unfreeze only) is the block's LR multiplier
    from then on.
    """

    at: int
    action: str
    blocks: tuple[str, ...]
    except_blocks: tuple[str, ...] = ()
    unit: str = "epoch"
    lr_scale: float | None = None

    def __post_init__(self) -> None:
        if self.action not in ("freeze", "unfreeze"):
            raise ValueError(f"action={self.action!r} is invalid; expected 'freeze' or 'unfreeze'")
        if self.unit not in ("epoch", "update"):
            raise ValueError(f"unit={self.unit!r} is invalid; expected 'epoch' or 'update'")
        if isinstance(self.at, bool) or not isinstance(self.at, int) or self.at < 0:
            raise ValueError(f"at={self.at!r} is invalid; expected an integer >= 0")
        blocks = (self.blocks,) if isinstance(self.blocks, str) else tuple(self.blocks)
        excepts = (
            (self.except_blocks,)
            if isinstance(self.except_blocks, str)
            else tuple(self.except_blocks)
        )
        if not blocks:
            raise ValueError("blocks is empty; give glob patterns such as 'layer1*' or '*'")
        object.__setattr__(self, "blocks", blocks)
        object.__setattr__(self, "except_blocks", excepts)
        if self.lr_scale is not None and (self.action != "unfreeze" or not self.lr_scale >= 0):
            raise ValueError(
                f"lr_scale={self.lr_scale!r} is invalid; only an unfreeze takes one, >= 0"
            )

    def matches(self, name: str) -> bool:
        hit = any(fnmatch.fnmatchcase(name, p) for p in self.blocks)
        return hit and not any(fnmatch.fnmatchcase(name, p) for p in self.except_blocks)

    def step(self, iters_per_epoch: int | None) -> int:
        if self.unit == "update":
            return self.at
        if iters_per_epoch is None:
            raise ValueError(
                f"event at epoch {self.at} needs iters_per_epoch to become an update count"
            )
        return self.at * iters_per_epoch


def freeze(
    blocks: str | Sequence[str],
    at: int,
    *,
    unit: str = "epoch",
    except_blocks: str | Sequence[str] = (),
) -> FreezeEvent:
    """Freeze the blocks matching ``blocks`` (minus ``except_blocks``) from ``at`` on."""
    return FreezeEvent(
        at,
        "freeze",
        tuple([blocks] if isinstance(blocks, str) else blocks),
        tuple([except_blocks] if isinstance(except_blocks, str) else except_blocks),
        unit,
    )


def unfreeze(
    blocks: str | Sequence[str], at: int, *, unit: str = "epoch", lr_scale: float | None = None
) -> FreezeEvent:
    """Unfreeze the matching blocks from ``at`` on, optionally with an LR multiplier."""
    return FreezeEvent(
        at, "unfreeze", tuple([blocks] if isinstance(blocks, str) else blocks), (), unit, lr_scale
    )


@dataclass
class FreezePlan:
    """An ordered list of freeze/unfreeze events and how to treat state and batch norm.

    >>> plan = FreezePlan([freeze("*", at=60, except_blocks="layer2*")])
    >>> sorted(plan.frozen_at(60 * 100, ["layer1.w", "layer2.w", "fc.w"], iters_per_epoch=100))
    ['fc.w', 'layer1.w']
    """

    events: list[FreezeEvent]
    optimizer_state: str = "keep"
    freeze_bn_stats: bool = True
    iters_per_epoch: int | None = None
    _frozen: set[str] = field(default_factory=set, repr=False)
    _bn_hooks: dict[str, Any] = field(default_factory=dict, repr=False)
    _checked: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.optimizer_state not in ("keep", "drop"):
            raise ValueError(
                f"optimizer_state={self.optimizer_state!r} is invalid; expected 'keep' or 'drop'"
            )
        self.events = [e if isinstance(e, FreezeEvent) else FreezeEvent(**e) for e in self.events]

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": [
                {
                    "at": e.at,
                    "action": e.action,
                    "blocks": list(e.blocks),
                    "except_blocks": list(e.except_blocks),
                    "unit": e.unit,
                    "lr_scale": e.lr_scale,
                }
                for e in self.events
            ],
            "optimizer_state": self.optimizer_state,
            "freeze_bn_stats": self.freeze_bn_stats,
            "iters_per_epoch": self.iters_per_epoch,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FreezePlan:
        events = [
            FreezeEvent(
                **{
                    **e,
                    "blocks": tuple(e["blocks"]),
                    "except_blocks": tuple(e.get("except_blocks", ())),
                }
            )
            for e in data["events"]
        ]
        return cls(
            events,
            data.get("optimizer_state", "keep"),
            data.get("freeze_bn_stats", True),
            data.get("iters_per_epoch"),
        )

    def _ordered(self, iters_per_epoch: int | None) -> list[tuple[int, FreezeEvent]]:
        ipe = iters_per_epoch if iters_per_epoch is not None else self.iters_per_epoch
        return sorted(((e.step(ipe), e) for e in self.events), key=lambda x: x[0])

    def frozen_at(
        self, step: int, names: Sequence[str], iters_per_epoch: int | None = None
    ) -> set[str]:
        """Names (of ``names``) frozen at update ``step``: events with ``at <= step``, in order."""
        frozen: set[str] = set()
        for at, e in self._ordered(iters_per_epoch):
            if at > step:
                break
            hits = {n for n in names if e.matches(n)}
            frozen = frozen | hits if e.action == "freeze" else frozen - hits
        return frozen

    def check(self, names: Sequence[str]) -> None:
        """Refuse an event whose blocks match none of the parameter ``names``.

        >>> plan = FreezePlan([FreezeEvent(5, "freeze", ("head*",))])
        >>> plan.check(["body.weight", "fc.weight"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: freeze plan: event 0 (freeze of ['head*']) matches no parameter; ...
        """
        for i, e in enumerate(self.events):
            if not any(e.matches(n) for n in names):
                tops = sorted({n.split(".")[0] for n in names})
                raise ValueError(
                    f"freeze plan: event {i} ({e.action} of {list(e.blocks)}) matches no "
                    f"parameter; the model's top-level blocks are {', '.join(tops)}"
                )

    def apply(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> bool:
        """Make ``model`` and ``optimizer`` match the plan at update ``step``; True if changed.

        Idempotent and cheap when nothing changes, so a training loop can call it before
        every update.
        """
        names = dict(model.named_parameters())
        if not self._checked:
            self.check(list(names))
            self._checked = True
        target = self.frozen_at(step, list(names))
        if target == self._frozen:
            return False
        if len(target) == len(names):
            raise ValueError(
                f"freeze plan: at update {step} every parameter is frozen and nothing is left "
                "to train; keep at least one block out of the freeze (except_blocks)"
            )
        for name in target - self._frozen:
            p = names[name]
            p.requires_grad_(False)
            p.grad = None
            if self.optimizer_state == "drop":
                optimizer.state.pop(p, None)
        for name in self._frozen - target:
            names[name].requires_grad_(True)
        self._frozen = set(target)
        if self.freeze_bn_stats:
            self._sync_batch_norm(model)
        return True

    def _sync_batch_norm(self, model: nn.Module) -> None:
        for mname, module in model.named_modules():
            if not isinstance(module, _BN):
                continue
            own = [
                f"{mname}.{n}" if mname else n for n, _ in module.named_parameters(recurse=False)
            ]
            frozen = bool(own) and all(n in self._frozen for n in own)
            if frozen and mname not in self._bn_hooks:
                self._bn_hooks[mname] = module.register_forward_pre_hook(_force_eval)
                module.eval()
            elif not frozen and mname in self._bn_hooks:
                self._bn_hooks.pop(mname).remove()
                module.train(model.training)

    def lr_scales(
        self,
        groups: Sequence[dict[str, Any]],
        param_names: dict[int, str],
        iters_per_epoch: int | None = None,
    ) -> list[float | Schedule]:
        """Per-group LR multipliers implied by unfreeze events with ``lr_scale``.

        ``param_names`` maps ``id(parameter)`` to its name (``{id(p): n for n, p in
        model.named_parameters()}``). A group changes multiplier when an unfreeze with
        ``lr_scale`` matches any of its parameters.
        """
        out: list[float | Schedule] = []
        for g in groups:
            names = [param_names[id(p)] for p in g["params"] if id(p) in param_names]
            by_step = {
                at: e.lr_scale
                for at, e in self._ordered(iters_per_epoch)
                if e.lr_scale is not None and any(e.matches(n) for n in names)
            }
            changes = sorted(by_step.items())  # events at the same update: the last one wins
            if not changes:
                out.append(1.0)
                continue
            lead = changes[0][0] > 0
            levels = [1.0] * lead + [float(m) for _, m in changes]
            bounds = [at for at, _ in changes][0 if lead else 1 :]
            parts = tuple(Constant(v) for v in levels)
            out.append(parts[0] if len(parts) == 1 else Join(parts, tuple(bounds)))
        return out


def _force_eval(module: nn.Module, args: Any) -> None:
    module.training = False
