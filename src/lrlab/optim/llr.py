"""Layer-wise learning-rate policies as per-group multipliers of any global schedule.

Each policy returns one settings dict per param group, ready for
``HyperparamScheduler(optimizer, lr=<global schedule>, groups=<these>)``: the driver
writes ``global(t) * lr_scale_g(t)`` into group ``g`` (timm's ``lr_scale`` convention), so
every policy composes with every schedule, and `combine` multiplies policies together.
Groups need ``depth`` entries (see `lrlab.optim.param_groups`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lrlab.optim.groups import depth_count, match_groups
from lrlab.schedules import Schedule, Shift

Groups = Sequence[Mapping[str, Any]]
Spec = list[dict[str, Any]]


def _depths(groups: Groups) -> list[int]:
    depth_count(groups)  # raises when a depth entry is missing
    return [int(g["depth"]) for g in groups]


def fixed(groups: Groups, multipliers: Mapping[str | int, float]) -> Spec:
    """Fixed multipliers by group name (glob patterns allowed) or depth index; others get 1.

    >>> groups = [{"name": "body", "depth": 0}, {"name": "head", "depth": 1}]
    >>> fixed(groups, {"head": 10.0})
    [{'lr_scale': 1.0}, {'lr_scale': 10.0}]
    """
    spec: Spec = [{"lr_scale": 1.0} for _ in groups]
    depths = _depths(groups)
    for key, m in multipliers.items():
        if (
            isinstance(m, bool)
            or not isinstance(m, (int, float))
            or not (math.isfinite(m) and m >= 0)
        ):
            raise ValueError(
                f"multipliers[{key!r}]={m!r} is invalid; expected a finite number >= 0"
            )
        hits = (
            [i for i, d in enumerate(depths) if d == key]
            if isinstance(key, int)
            else match_groups(groups, key)
        )
        if not hits:
            raise ValueError(f"multipliers: no group at depth {key!r}")
        for i in hits:
            spec[i]["lr_scale"] = float(m)
    return spec


def interpolate(groups: Groups, first: float, last: float, *, geometric: bool = True) -> Spec:
    """Smith's manual method 1: multipliers from ``first`` (input side) to ``last`` (output side).

    Geometric spacing is fastai's ``slice(lo, hi)`` (``even_mults``); ``geometric=False``
    spaces linearly. "High for the lowest layers, low for the highest" is
    ``first > last``; the reverse swaps them. Groups at the same depth (a layer and its
    no-decay part) share a multiplier.

    >>> groups = [{"depth": d} for d in range(3)]
    >>> [s["lr_scale"] for s in interpolate(groups, first=4.0, last=1.0)]
    [4.0, 2.0, 1.0]
    >>> [s["lr_scale"] for s in interpolate(groups, first=4.0, last=1.0, geometric=False)]
    [4.0, 2.5, 1.0]
    """
    for name, v in (("first", first), ("last", last)):
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or not (math.isfinite(v) and v > 0)
        ):
            raise ValueError(f"{name}={v!r} is invalid; expected a finite number > 0")
    depths = _depths(groups)
    top = max(depths)
    out: Spec = []
    for d in depths:
        p = d / top if top else 0.0
        m = first * (last / first) ** p if geometric else first + (last - first) * p
        out.append({"lr_scale": last if d == top else m})
    return out


def cyclical_layers(groups: Groups, multiplier: Schedule, offset: int) -> Spec:
    """Smith's manual method 2: depth ``d`` follows ``multiplier`` delayed by ``d * offset``.

    Hold the global LR constant (``lr=constant(...)``) and let the layers cycle: with a
    triangular multiplier and ``offset`` a fraction of its cycle, the rates travel across
    depth like a wave.

    >>> from lrlab.schedules import triangular
    >>> wave = triangular(0.5, 1.5, step_size=2)
    >>> spec = cyclical_layers([{"depth": 0}, {"depth": 1}], wave, offset=1)
    >>> [round(spec[1]["lr_scale"](t), 3) for t in range(4)]
    [0.5, 0.5, 1.0, 1.5]
    """
    if not isinstance(multiplier, Schedule):
        raise ValueError(f"multiplier={multiplier!r} is invalid; expected a Schedule")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset={offset!r} is invalid; expected an integer >= 0 (updates)")
    return [
        {"lr_scale": Shift(multiplier, d * offset) if d * offset else multiplier}
        for d in _depths(groups)
    ]


def override(groups: Groups, patterns: str | Sequence[str], *, lr: Schedule) -> Spec:
    """Give matching groups their own schedule (absolute values); the rest follow the global one.

    Experiment A of "Proposing a new effect of learning rate decay: network stability":
    one block's LR decays while the others keep theirs.
    """
    hits = set(match_groups(groups, patterns))
    return [{"lr": lr} if i in hits else {} for i in range(len(groups))]


class Product:
    """The product of per-group multipliers of any kind (numbers, schedules, AutoLLR views)."""

    def __init__(self, *factors: Any) -> None:
        self.factors = factors

    def __call__(self, step: int) -> float:
        out = 1.0
        for f in self.factors:
            out *= f(step) if callable(f) else f
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "product",
            "factors": [f.to_dict() if hasattr(f, "to_dict") else f for f in self.factors],
        }


def _product(a: Any, b: Any) -> Any:
    numbers = all(isinstance(x, (int, float)) for x in (a, b))
    if numbers:
        return a * b
    if 0 in (a, b) and any(isinstance(x, (int, float)) for x in (a, b)):
        return 0.0  # zero times anything
    if isinstance(a, Schedule) and isinstance(b, (Schedule, int, float)):
        return a * b
    if isinstance(b, Schedule) and isinstance(a, (int, float)):
        return b * a
    return Product(a, b)


def combine(*specs: Spec) -> Spec:
    """Multiply the ``lr_scale`` of several policies group by group; other keys are merged.

    >>> combine([{"lr_scale": 2.0}, {}], [{"lr_scale": 3.0}, {"lr_scale": 0.5}])
    [{'lr_scale': 6.0}, {'lr_scale': 0.5}]
    """
    if not specs:
        raise ValueError("combine() needs at least one policy")
    n = len(specs[0])
    if any(len(s) != n for s in specs):
        raise ValueError(f"policies cover different numbers of groups: {[len(s) for s in specs]}")
    out: Spec = []
    for parts in zip(*specs):
        merged: dict[str, Any] = {}
        for part in parts:
            for key, value in part.items():
                if key == "lr_scale" and "lr_scale" in merged:
                    merged[key] = _product(merged[key], value)
                elif key in merged:
                    raise ValueError(f"two policies both set {key!r} for the same group")
                else:
                    merged[key] = value
        out.append(merged)
    return out
