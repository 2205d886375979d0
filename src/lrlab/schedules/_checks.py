"""The field checks every schedule's ``_validate`` uses: each error is one line naming the
schedule's kind, the field, its value and what is allowed.

>>> from lrlab.schedules import cosine
>>> cosine(init=-1.0, total=10)
Traceback (most recent call last):
...
ValueError: cosine: init=-1.0 is invalid; expected a finite number >= 0
"""

from __future__ import annotations

import math
import operator
from typing import TYPE_CHECKING, ClassVar, NoReturn

if TYPE_CHECKING:
    from lrlab.schedules._base import Schedule


class FieldChecks:
    """Checks of a frozen dataclass's fields, normalising what they accept (ints to floats
    where a real is asked for); `Schedule` inherits them."""

    kind: ClassVar[str]

    def _fail(self, name: str, value: object, allowed: str) -> NoReturn:
        raise ValueError(f"{self.kind}: {name}={value!r} is invalid; {allowed}")

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def _real(
        self,
        name: str,
        *,
        low: float | None = 0.0,
        low_open: bool = False,
        high: float | None = None,
        high_open: bool = False,
        optional: bool = False,
    ) -> float | None:
        """Check that field ``name`` is a finite number in the given range; store it as float."""
        v = getattr(self, name)
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            self._fail(
                name, v, f"expected a finite number{_range_text(low, low_open, high, high_open)}"
            )
        v = float(v)
        too_low = low is not None and (v <= low if low_open else v < low)
        too_high = high is not None and (v >= high if high_open else v > high)
        if too_low or too_high:
            self._fail(
                name, v, f"expected a finite number{_range_text(low, low_open, high, high_open)}"
            )
        self._set(name, v)
        return v

    def _integer(self, name: str, *, low: int = 1, optional: bool = False) -> int | None:
        """Check that field ``name`` is an integer >= ``low`` (floats such as 2.0 are refused)."""
        v = getattr(self, name)
        if v is None and optional:
            return None
        if isinstance(v, bool):
            self._fail(name, v, f"expected an integer >= {low}")
        if not isinstance(v, int):
            try:
                v = operator.index(v)
            except TypeError:
                self._fail(name, v, f"expected an integer >= {low}")
        if v < low:
            self._fail(name, v, f"expected an integer >= {low}")
        self._set(name, int(v))
        return int(v)

    def _choice(self, name: str, options: tuple[str, ...]) -> str:
        v = getattr(self, name)
        if v not in options:
            self._fail(name, v, f"expected one of {', '.join(map(repr, options))}")
        return str(v)

    def _schedule(self, name: str) -> Schedule:
        from lrlab.schedules._base import Schedule

        v = getattr(self, name)
        if not isinstance(v, Schedule):
            self._fail(name, v, "expected a Schedule")
        return v


def _range_text(low: float | None, low_open: bool, high: float | None, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return (" " + " and ".join(parts)) if parts else ""
