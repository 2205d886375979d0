"""`HyperparamScheduler`: writes scheduled hyper-parameters into an optimizer's param groups.

The driver owns one integer, the number of optimizer updates taken, advanced by a
step hook on the optimizer itself. Skipped AMP steps and gradient-accumulation
micro-batches therefore never move the clock: ``GradScaler`` either does not call
``optimizer.step`` on an overflow or, for fused optimizers, calls it with ``found_inf``
set and the kernel skips, which the hook reads (`lrlab.optim._steps`). A wrapper such as
accelerate's ``AcceleratedOptimizer`` is driven through the torch optimizer it exposes.
The loop needs no ``scheduler.step()`` call, so the order warnings of PyTorch's
schedulers cannot arise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch.optim import Optimizer

from lrlab.optim._driver_args import (
    HYPERS,
    GroupSpec,
    Multiplier,
    ScheduleLike,
    as_schedule,
    first_difference,
    is_multiplier,
    key_for,
    multiplier_value,
    resolve_groups,
)
from lrlab.optim._steps import OptimizerLike, inner_optimizer, inner_step, step_was_skipped
from lrlab.schedules import Schedule

_STATE_FORMAT = 1


class _Target(NamedTuple):
    """How one hyper-parameter of one param group gets its value at each update.

    Groups are found by index at each write: ``optimizer.load_state_dict`` replaces the
    group dicts, so holding on to them would write into dead copies.
    """

    group: int  # index into optimizer.param_groups
    key: str  # "lr", "momentum", "betas" (its first entry), "weight_decay"
    own: Schedule | None  # a per-group schedule: absolute values
    scale: float  # multiplier of the global schedule when ``own`` is None
    scale_schedule: Multiplier | None  # a time-varying multiplier

    def value(self, glob: float, t: int) -> float:
        if self.own is not None:
            return self.own(t)
        return glob * (self.scale_schedule(t) if self.scale_schedule is not None else self.scale)


def _write(group: dict[str, Any], key: str, value: float) -> None:
    if key == "betas":
        betas = group["betas"]
        if isinstance(betas[0], torch.Tensor):
            betas[0].fill_(value)
        else:
            group["betas"] = (value, *betas[1:])
        return
    current = group[key]
    if isinstance(current, torch.Tensor):
        current.fill_(value)
    else:
        group[key] = value


def _read(group: dict[str, Any], key: str) -> float:
    return float(group["betas"][0] if key == "betas" else group[key])


class HyperparamScheduler:
    """Drive learning rate, momentum and weight decay of a torch optimizer from schedules.

    Each optimizer update ``t`` (0-indexed) uses the values the schedules give for ``t``:
    they are written into every param group before the first update and again after
    each ``optimizer.step()``. Values are absolute (never multiplied into the group's
    current value), so a resumed or modified optimizer cannot drift.

    Args:
        optimizer: any ``torch.optim.Optimizer``, or a wrapper exposing one as
            ``.optimizer`` (accelerate's ``AcceleratedOptimizer``, Lightning's
            ``LightningOptimizer``): the wrapped optimizer's groups are driven and its
            real updates counted; `optimizer` is then that torch optimizer.
        lr: global learning-rate schedule (a float means constant); None leaves LRs alone.
        momentum: momentum schedule, written to ``momentum`` (SGD, RMSprop) or to
            ``betas[0]`` (Adam family). An optimizer without momentum, or an SGD built
            with ``momentum=0``, is refused rather than silently switched on.
        weight_decay: weight-decay schedule. Groups built with ``weight_decay=0`` (biases
            and norms kept out of decay) stay at 0 unless ``groups`` says otherwise.
        groups: per-group settings, by index or by the group's ``"name"``: a float is an
            LR multiplier; a mapping may hold ``lr`` / ``momentum`` / ``weight_decay``
            (a per-group schedule, absolute) and ``lr_scale`` / ``weight_decay_scale``
            (a float, a schedule, or a stateful `Multiplier` such as `AutoLLR`'s,
            multiplying the global value). A group's own
            ``"lr_scale"`` entry (timm's convention) is used when ``groups`` is silent.
        auto: count updates with an optimizer step hook (default). With ``auto=False``
            call ``step()`` after each optimizer update yourself.

    Example (Smith's 1cycle with cyclical momentum, three lines in a plain loop):

    >>> import torch
    >>> from lrlab.schedules import one_cycle, cyclical_momentum
    >>> model = torch.nn.Linear(4, 2)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> lr = one_cycle(max_lr=0.4, total=100)
    >>> sched = HyperparamScheduler(opt, lr=lr, momentum=cyclical_momentum(lr))
    >>> for _ in range(3):
    ...     model(torch.randn(8, 4)).sum().backward()
    ...     opt.step()
    ...     opt.zero_grad()
    >>> sched.step_count, round(opt.param_groups[0]["lr"], 6), lr(3) == opt.param_groups[0]["lr"]
    (3, 0.065116, True)
    """

    def __init__(
        self,
        optimizer: OptimizerLike,
        lr: ScheduleLike | None = None,
        momentum: ScheduleLike | None = None,
        weight_decay: ScheduleLike | None = None,
        groups: Mapping[int | str, GroupSpec] | Sequence[GroupSpec] | None = None,
        *,
        auto: bool = True,
    ) -> None:
        self.optimizer: Optimizer = inner_optimizer(optimizer)
        self.auto = bool(auto)
        self.schedules: dict[str, Schedule | None] = {
            "lr": as_schedule("lr", lr),
            "momentum": as_schedule("momentum", momentum),
            "weight_decay": as_schedule("weight_decay", weight_decay),
        }
        self._group_specs = resolve_groups(self.optimizer, groups)
        self._targets: dict[str, list[_Target]] = {h: self._build_targets(h) for h in HYPERS}
        self._plan = [(self.schedules[h], ts) for h, ts in self._targets.items() if ts]
        self._step = 0
        self._handle = self.optimizer.register_step_post_hook(self._on_step) if self.auto else None
        self._apply()

    # ------------------------------------------------------------------ construction
    def _build_targets(self, hyper: str) -> list[_Target]:
        targets = []
        name = type(self.optimizer).__name__
        for i, (group, spec) in enumerate(zip(self.optimizer.param_groups, self._group_specs)):
            own = spec.get(hyper)
            if own is None and self.schedules[hyper] is None:
                scale_key = "lr_scale" if hyper == "lr" else "weight_decay_scale"
                if scale_key in spec:
                    raise ValueError(
                        f"groups[{i}].{scale_key} multiplies the global {hyper} schedule, "
                        f"but none was given: pass {hyper}=... or a per-group {hyper!r}"
                    )
                continue
            scale_key = "lr_scale" if hyper == "lr" else "weight_decay_scale"
            scale: float = 1.0
            scale_schedule: Multiplier | None = None
            if own is None and hyper in ("lr", "weight_decay"):
                raw = spec.get(scale_key)
                if raw is None and hyper == "lr":
                    raw = group.get("lr_scale", 1.0)
                if raw is None:  # weight decay: groups built without decay stay without
                    raw = 1.0 if group.get("weight_decay", 0.0) else 0.0
                if is_multiplier(raw):
                    scale_schedule = raw  # type: ignore[assignment]  # checked by is_multiplier
                else:
                    scale = multiplier_value(f"groups[{i}].{scale_key}", raw)
            targets.append(_Target(i, key_for(hyper, group, i, name), own, scale, scale_schedule))
        return targets

    # ------------------------------------------------------------------ the clock
    @property
    def step_count(self) -> int:
        """Number of optimizer updates taken so far (the ``t`` of the next update)."""
        return self._step

    def _on_step(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        # A fused step under GradScaler that found inf/NaN ran the hook but updated
        # nothing: the values written for this update stay for the next real one.
        if "found_inf" in optimizer.__dict__ and step_was_skipped(optimizer):
            return
        if inner_step(optimizer):  # a subclass's step calling super().step(): count once
            return
        self._step += 1
        self._apply()

    def step(self) -> None:
        """Advance one update (only with ``auto=False``; a no-op when the hook counts).

        Calling it after ``optimizer.step()`` out of habit is harmless: in the default
        mode the optimizer's own hook already advanced the clock.
        """
        if not self.auto:
            self._step += 1
            self._apply()

    def set_step(self, step: int) -> None:
        """Jump to update ``step`` and write its values (e.g. to resume without a state dict)."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step={step!r} is invalid; expected an integer >= 0")
        self._step = step
        self._apply()

    def _apply(self) -> None:
        # The per-update path: one evaluation per global schedule, then one multiply and
        # one dict write per group (a plain float write unless the value is a tensor).
        t = self._step
        groups = self.optimizer.param_groups
        for glob, targets in self._plan:
            g = glob(t) if glob is not None else 0.0
            for index, key, own, scale, scale_schedule in targets:
                if own is not None:
                    v = own(t)
                elif scale_schedule is not None:
                    v = g * scale_schedule(t)
                else:
                    v = g * scale
                group = groups[index]
                if key != "betas" and group[key].__class__ is float:
                    group[key] = v
                else:
                    _write(group, key, v)

    # ------------------------------------------------------------------ inspection
    def values(self, step: int | None = None) -> list[dict[str, float]]:
        """Per-group values for update ``step`` (default: the next one), without writing."""
        t = self._step if step is None else step
        out: list[dict[str, float]] = [{} for _ in self.optimizer.param_groups]
        for hyper, targets in self._targets.items():
            glob = self.schedules[hyper]
            g = glob(t) if glob is not None else 0.0
            for tg in targets:
                out[tg.group][hyper] = tg.value(g, t)
        return out

    def current(self) -> list[dict[str, float]]:
        """The values now in the optimizer's param groups, per group."""
        groups = self.optimizer.param_groups
        out: list[dict[str, float]] = [{} for _ in groups]
        for hyper, targets in self._targets.items():
            for tg in targets:
                out[tg.group][hyper] = _read(groups[tg.group], tg.key)
        return out

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """The schedules and per-group settings, JSON-ready; stored in checkpoints."""
        groups = []
        for spec in self._group_specs:
            groups.append({k: (v.to_dict() if is_multiplier(v) else v) for k, v in spec.items()})
        return {
            "schedules": {h: (s.to_dict() if s else None) for h, s in self.schedules.items()},
            "groups": groups,
        }

    def state_dict(self) -> dict[str, Any]:
        """Progress (the update count) and the configuration that produced it."""
        return {"format": _STATE_FORMAT, "step": self._step, "config": self.config()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Restore the update count and write its values into the optimizer.

        Args:
            state: the output of `state_dict`.
            strict: refuse a checkpoint written with different schedules (default), so
                that changed arguments are never silently replaced by the checkpoint's or
                vice versa. With ``strict=False`` this scheduler keeps its own schedules
                and takes only the count.
        """
        if not isinstance(state, Mapping) or "step" not in state:
            raise ValueError("not a HyperparamScheduler state dict (no 'step' entry)")
        if state.get("format") != _STATE_FORMAT:
            raise ValueError(
                f"unsupported state format {state.get('format')!r}; expected {_STATE_FORMAT}"
            )
        if strict and state.get("config") != self.config():
            diff = first_difference(state.get("config"), self.config())
            raise ValueError(
                "the checkpoint was written with different schedules "
                f"({diff}); pass strict=False to keep this scheduler's and take only the step count"
            )
        self.set_step(int(state["step"]))

    def remove(self) -> None:
        """Detach from the optimizer: later updates no longer change its values."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def as_torch_scheduler(self) -> Any:
        """This driver behind PyTorch's ``LRScheduler`` interface (Lightning, HF Trainer)."""
        from lrlab.optim.torch_adapter import TorchSchedulerAdapter

        return TorchSchedulerAdapter(self)

    def __repr__(self) -> str:
        parts = [f"{h}={s.to_spec()}" for h, s in self.schedules.items() if s is not None]
        return f"HyperparamScheduler(step={self._step}, {', '.join(parts)})"
