"""The registry of schedule families: ``kind`` -> class, filled as `Schedule` subclasses
are defined, and `build`, which constructs a family from parameters with errors that name
the parameter and list the allowed ones.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lrlab.schedules._base import Schedule

_REGISTRY: dict[str, type[Schedule]] = {}


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
