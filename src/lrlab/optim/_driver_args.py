"""Checking and resolving `HyperparamScheduler`'s arguments: schedules or numbers for the
global hyper-parameters, per-group settings by name or index, and the messages that name
the setting, the value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Union

from torch.optim import Optimizer

from lrlab.schedules import Constant, Schedule


class Multiplier(Protocol):
    """A per-group LR multiplier over time: a Schedule, or a stateful policy such as AutoLLR."""

    def __call__(self, step: int) -> float: ...

    def to_dict(self) -> dict[str, Any]: ...


def is_multiplier(value: object) -> bool:
    return isinstance(value, Schedule) or (callable(value) and hasattr(value, "to_dict"))


ScheduleLike = Union[Schedule, float]  # noqa: UP007 (a runtime alias; | needs 3.10 types)
GroupSpec = Union[float, Mapping[str, Any]]  # noqa: UP007

HYPERS = ("lr", "momentum", "weight_decay")
GROUP_KEYS = ("lr", "lr_scale", "momentum", "weight_decay", "weight_decay_scale")


def as_schedule(name: str, value: ScheduleLike | None) -> Schedule | None:
    if value is None or isinstance(value, Schedule):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a Schedule or a number, got {type(value).__name__}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name}={value!r} is invalid; expected a finite number >= 0")
    return Constant(float(value))


def multiplier_value(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value >= 0)
    ):
        raise ValueError(
            f"{name}={value!r} is invalid; expected a finite number >= 0 or a Schedule"
        )
    return float(value)


def key_for(hyper: str, group: Mapping[str, Any], index: int, opt_name: str) -> str:
    if hyper != "momentum":
        if hyper not in group:
            raise ValueError(
                f"{opt_name} param group {index} has no {hyper!r}; it cannot be scheduled"
            )
        return hyper
    if "betas" in group:
        return "betas"
    if "momentum" in group:
        if group["momentum"] == 0:
            raise ValueError(
                f"{opt_name} param group {index} was built with momentum=0; a momentum schedule "
                "would switch momentum on silently. Build the optimizer with momentum > 0 "
                "(e.g. momentum=0.9) to schedule it"
            )
        return "momentum"
    raise ValueError(
        f"{opt_name} has neither 'momentum' nor 'betas' in param group {index}; "
        "it cannot take a momentum schedule"
    )


def resolve_groups(
    optimizer: Optimizer, groups: Mapping[int | str, GroupSpec] | Sequence[GroupSpec] | None
) -> list[dict[str, Any]]:
    """One settings dict per param group, keys checked, schedules converted."""
    n = len(optimizer.param_groups)
    specs: list[dict[str, Any]] = [{} for _ in range(n)]
    if groups is None:
        return specs
    names = {g.get("name"): i for i, g in enumerate(optimizer.param_groups) if g.get("name")}
    if isinstance(groups, Mapping):
        items = list(groups.items())
    elif isinstance(groups, Sequence) and not isinstance(groups, str):
        if len(groups) != n:
            raise ValueError(
                f"groups has {len(groups)} entries; the optimizer has {n} param groups"
            )
        items = list(enumerate(groups))
    else:
        raise TypeError(f"groups must be a mapping or a list, got {type(groups).__name__}")
    for key, spec in items:
        if isinstance(key, str):
            if key not in names:
                known = ", ".join(map(str, names)) or "none (give groups a 'name' entry)"
                raise ValueError(f"groups: no param group named {key!r}; named groups: {known}")
            index = names[key]
        elif isinstance(key, int) and not isinstance(key, bool) and -n <= key < n:
            index = key % n
        else:
            raise ValueError(
                f"groups: key {key!r} is invalid; expected a group name or an index in [0, {n})"
            )
        if not isinstance(spec, Mapping):
            spec = {"lr_scale": spec}
        unknown = set(spec) - set(GROUP_KEYS)
        if unknown:
            raise ValueError(
                f"groups[{key!r}]: unknown setting(s) {', '.join(sorted(map(str, unknown)))}; "
                f"allowed: {', '.join(GROUP_KEYS)}"
            )
        resolved: dict[str, Any] = {}
        for k, v in spec.items():
            if k in HYPERS:
                resolved[k] = as_schedule(f"groups[{key!r}].{k}", v)
            else:
                resolved[k] = v if is_multiplier(v) else multiplier_value(f"groups[{key!r}].{k}", v)
        specs[index] = resolved
    return specs


def first_difference(a: Any, b: Any, path: str = "config") -> str:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for k in [*a, *(k for k in b if k not in a)]:
            if a.get(k) != b.get(k):
                return first_difference(a.get(k), b.get(k), f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return first_difference(x, y, f"{path}[{i}]")
    return f"{path}: checkpoint {a!r}, here {b!r}"
