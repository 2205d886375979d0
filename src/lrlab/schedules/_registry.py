"""The registry of schedule families: ``kind`` -> class, filled as `Schedule` subclasses
are defined, and `build`, which constructs a family from parameters with errors that name
the parameter and list the allowed ones.

It also answers, by ``kind``, what the layers above need to know about a family (which
fields a range test fills, which reading it takes, whether a trial fills ``total``,
whether it is cyclical); each family declares these on its class.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from lrlab.schedules._base import Schedule

_REGISTRY: dict[str, type[Schedule]] = {}


#: How a range test's pick becomes a schedule's bounds: the reading a family of schedules
#: trains with (`RangeTestResult.bounds`). Not schedule kinds: "one_cycle" serves 1cycle,
#: SGDR and warm restarts (max at the pick, base a tenth), "clr" the cyclical families
#: (base a quarter of max, or Smith's onset, and a step size), "constant" the families that
#: start at their peak and only hold or decay (a third of the pick).
BoundsReading = Literal["one_cycle", "clr", "constant"]
BOUNDS_READINGS: tuple[str, ...] = get_args(BoundsReading)


def register(kind: str, cls: type[Schedule]) -> None:
    """Called by `Schedule.__init_subclass__` for every subclass that sets ``kind``."""
    _REGISTRY[kind] = cls


def registered_kinds() -> list[str]:
    """Names of every schedule family, as used by ``to_dict()`` and spec strings."""
    return sorted(_REGISTRY)


def schedule_class(kind: str) -> type[Schedule]:
    """The class registered under ``kind``; a ValueError lists the known names otherwise."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        close = difflib.get_close_matches(kind, _REGISTRY, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown schedule {kind!r}{hint}; known: {', '.join(registered_kinds())}"
        ) from None


def build(kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Schedule:
    """Construct schedule ``kind`` from positional and keyword parameters, with clear errors."""
    cls = schedule_class(kind)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    positional = [f.name for f in dataclasses.fields(cls) if f.init and not f.kw_only]
    if len(args) > len(positional):
        raise ValueError(
            f"{kind}: takes at most {len(positional)} positional parameters "
            f"({', '.join(positional)}), got {len(args)}"
        )
    params = dict(zip(positional, args))
    for k, v in kwargs.items():
        if k not in names:
            close = difflib.get_close_matches(k, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{kind}: unknown parameter {k!r}{hint}; allowed: {', '.join(names)}")
        if k in params:
            raise ValueError(f"{kind}: parameter {k!r} given twice")
        params[k] = v
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init
        and f.name not in params
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{kind}: missing required parameter(s): {', '.join(missing)}")
    return cls(**params)


def bound_fields(kind: str) -> dict[str, str]:
    """The fields a range test fills for family ``kind``, each mapped to the bound it takes.

    The bounds are those of `RangeTestResult.bounds`: ``"max_lr"``, ``"base_lr"`` and
    ``"step_size"``. A family the range test cannot parametrise answers ``{}``.

    >>> bound_fields("cosine"), bound_fields("triangular")["step_size"], bound_fields("join")
    ({'init': 'max_lr'}, 'step_size', {})
    """
    return dict(schedule_class(kind).bound_fields)


def bounds_reading(kind: str) -> BoundsReading:
    """The range-test reading family ``kind`` trains best with: "one_cycle", "clr" or "constant".

    >>> bounds_reading("sgdr"), bounds_reading("exp_range"), bounds_reading("cosine")
    ('one_cycle', 'clr', 'constant')
    """
    return schedule_class(kind).bounds_reading


def total_optional(kind: str) -> bool:
    """True where a spec of family ``kind`` may leave ``total`` out and then has no end.

    >>> total_optional("step"), total_optional("cosine")
    (True, False)
    """
    return schedule_class(kind).total_optional


def is_cyclical(kind: str) -> bool:
    """True for the families whose LR goes up and down (CLR, 1cycle; not SGDR's restarts).

    >>> is_cyclical("triangular2"), is_cyclical("one_cycle"), is_cyclical("sgdr")
    (True, True, False)
    """
    return schedule_class(kind).cyclical


def with_total(spec: dict[str, Any], total: int) -> dict[str, Any]:
    """A schedule dict (``{"kind": ..., **params}``, not yet built) with ``total`` filled in.

    A run of ``total`` updates fills the ``total`` its schedule left out, unless the
    family's total is optional; a warm-up passes what remains after its steps to the
    schedule it wraps. The dict given is not changed.

    >>> with_total({"kind": "cosine", "init": 0.1}, 1000)
    {'kind': 'cosine', 'init': 0.1, 'total': 1000}
    >>> with_total({"kind": "step", "init": 0.1, "step_size": 30}, 1000)
    {'kind': 'step', 'init': 0.1, 'step_size': 30}
    >>> inner = {"kind": "cosine", "init": 0.1}
    >>> with_total({"kind": "warmup", "schedule": inner, "steps": 100}, 1000)["schedule"]
    {'kind': 'cosine', 'init': 0.1, 'total': 900}
    """
    return schedule_class(spec["kind"])._with_total(dict(spec), total)


def has_field(cls: type[Schedule], name: str) -> bool:
    """Whether family ``cls`` has a parameter called ``name``."""
    return any(f.name == name for f in dataclasses.fields(cls))
