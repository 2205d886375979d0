"""What lrlab's step hooks need to know about the step they run in: the torch optimizer
behind a wrapper, whether the step applies an update at all, and the gradient scale.

``torch.amp.GradScaler`` skips an overflowing step in one of two ways. For most
optimizers it does not call ``optimizer.step()``, so no step hook runs. For optimizers
with ``_step_supports_amp_scaling`` (``fused=True`` Adam, AdamW, SGD, Adagrad) it always
calls ``step()``, after setting two attributes on the optimizer: ``found_inf`` (a 0-dim
float tensor, non-zero when some gradient is inf/NaN) and ``grad_scale`` (the scale the
gradients still carry, or None once ``unscale_`` ran). The fused kernel divides by
``grad_scale`` and skips the update when ``found_inf`` is set; the scaler deletes both
attributes after ``step()`` returns, so they are readable in pre- and post-step hooks.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol, Union

import torch
from torch.optim import Optimizer


class WrapsOptimizer(Protocol):
    """A wrapper that exposes the torch optimizer it steps as ``.optimizer``."""

    @property
    def optimizer(self) -> Any: ...


OptimizerLike = Union[Optimizer, WrapsOptimizer]  # noqa: UP007 (a runtime alias)

# The last flag read: (tensor, its version counter, value). GradScaler makes one found_inf
# tensor per step and several hooks (driver, instrument, LARS, AutoLLR) ask about the
# same step, so the device is read once. Holding the reference keeps ``is`` meaningful;
# the version counter catches a flag tensor that is reused and rewritten in place.
_last_flag: list[Any] = [None, -1, False]


def step_was_skipped(optimizer: Optimizer) -> bool:
    """True when the step now running applies no update (GradScaler found inf/NaN).

    Call it from a step pre- or post-hook of ``optimizer``. Without a GradScaler, or with
    one that skips by not calling ``step()`` at all, it is False: a hook that runs saw a
    real update. On a GPU, a fused optimizer under a GradScaler costs one read of a
    scalar from the device per step (the read a non-fused GradScaler step makes anyway).

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    >>> step_was_skipped(opt)
    False
    >>> opt.found_inf = torch.tensor(1.0)  # what GradScaler sets before a fused step
    >>> step_was_skipped(opt)
    True
    """
    flag = optimizer.__dict__.get("found_inf")
    if flag is None:
        return False
    if not isinstance(flag, torch.Tensor):
        return bool(flag)
    if flag is not _last_flag[0] or flag._version != _last_flag[1]:
        _last_flag[:] = flag, flag._version, bool(flag.item() != 0)
    return bool(_last_flag[2])


def grad_scale(optimizer: Optimizer) -> torch.Tensor | None:
    """The factor the gradients still carry during this step (None: they are unscaled).

    Set only for fused optimizers under a GradScaler that were not ``unscale_``-d first;
    a hook reading ``p.grad`` then sees gradients times this scale.

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    >>> grad_scale(opt) is None
    True
    """
    scale = optimizer.__dict__.get("grad_scale")
    return scale if isinstance(scale, torch.Tensor) else None


def inner_optimizer(optimizer: OptimizerLike, field: str = "optimizer") -> Optimizer:
    """The torch optimizer behind ``optimizer``: itself, or what a wrapper exposes.

    A wrapper such as accelerate's ``AcceleratedOptimizer`` (or Lightning's
    ``LightningOptimizer``) exposes the torch optimizer as ``.optimizer``, possibly
    nested, and forwards ``step()`` to it only when an update really happens (not on
    gradient-accumulation micro-batches, not on skipped AMP steps); the step hooks of
    that inner optimizer therefore count exactly the real updates.

    Args:
        optimizer: a ``torch.optim.Optimizer`` or a wrapper exposing one as ``.optimizer``.
        field: the argument's name in error messages.

    Raises:
        TypeError: if no initialised torch optimizer is found.

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    >>> class Wrapper:
    ...     def __init__(self, optimizer):
    ...         self.optimizer = optimizer
    >>> inner_optimizer(Wrapper(Wrapper(opt))) is opt
    True
    """
    current: Any = optimizer
    for _ in range(8):  # wrappers nest a level or two; a cycle must not hang
        # An Optimizer subclass that never ran Optimizer.__init__ (AcceleratedOptimizer)
        # has no hook tables: hooks registered on it would never run.
        if isinstance(current, Optimizer) and "_optimizer_step_post_hooks" in current.__dict__:
            return current
        inner = getattr(current, "optimizer", None)
        if inner is None or inner is current:
            break
        current = inner
    raise TypeError(
        f"{field} must be a torch.optim.Optimizer or a wrapper exposing one as .optimizer "
        f"(such as accelerate's AcceleratedOptimizer), got {type(optimizer).__name__}; "
        "pass the torch optimizer itself"
    )


# torch runs the step hooks in a wrapper it puts around each optimizer class's ``step``
# (once per class, when the first instance of that class is made). A subclass whose
# ``step`` calls ``super().step()`` then runs them twice per update once an instance of
# the base class exists: lrlab's hooks must act in the outer call only.
_WRAPPER = Optimizer.profile_hook_step(lambda *a, **k: None).__code__
_NESTS: dict[type, bool] = {}


def _may_nest(cls: type) -> bool:
    """Whether two classes of ``cls``'s MRO define ``step`` (so hooks can run nested)."""
    if cls not in _NESTS:
        steps = [c for c in cls.__mro__ if c is not Optimizer and "step" in c.__dict__]
        _NESTS[cls] = len(steps) > 1
    return _NESTS[cls]


def inner_step(optimizer: Optimizer) -> bool:
    """True when a step hook runs inside a nested ``step`` of ``optimizer`` (the base
    class's, called by a subclass's ``step``): the outer call runs the same hooks again,
    so an update must be counted, and gradients rescaled, in one of them only.

    >>> import torch
    >>> class Mine(torch.optim.SGD):
    ...     def step(self, closure=None):
    ...         return super().step(closure)
    >>> _ = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)  # SGD.step hooked
    >>> opt = Mine([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    >>> calls = []
    >>> _ = opt.register_step_post_hook(lambda o, a, k: calls.append(inner_step(o)))
    >>> opt.step(); calls  # the hook ran twice: inner call first, then the outer one
    [True, False]
    """
    if not _may_nest(type(optimizer)):
        return False
    frame = sys._getframe(1)
    wrappers = 0
    while frame is not None:
        if frame.f_code is _WRAPPER and frame.f_locals.get("args", (None,))[0] is optimizer:
            wrappers += 1
            if wrappers > 1:
                return True
        frame = frame.f_back  # type: ignore[assignment]
    return False
