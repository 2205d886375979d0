"""The `Schedule` base class: an immutable, pure function of the optimizer-update count.

Conventions shared by every schedule in this package:

* Time is the number of optimizer updates already taken, ``t = 0, 1, 2, ...``:
  ``value(t)`` is the value the ``t``-th update uses (0-indexed).
* ``length`` is the number of updates a schedule covers (``None``: it runs forever,
  as a constant or a cyclical schedule without a cycle count does).
* A decay (linear, cosine, polynomial, the last phase of 1cycle) reaches its end value
  at its last update, ``t = length - 1``, so the end value is actually used. Periodic
  schedules (CLR, SGDR) use half-open cycles: a cycle's first update is its restart value.
* Past the end, ``after_end`` decides: ``"hold"`` (default) repeats the last value,
  ``"cycle"`` starts over, ``"error"`` raises. Nothing is ever extrapolated, so no
  schedule can produce a negative, NaN or infinite value.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from lrlab.schedules._checks import FieldChecks
from lrlab.schedules._registry import BoundsReading, build, has_field, register

AFTER_END = ("hold", "error", "cycle")


class Phase(NamedTuple):
    """One row of a schedule's phase table: updates ``[start, stop)`` and their end values."""

    name: str
    start: int
    stop: int | None
    start_value: float
    end_value: float


@dataclass(frozen=True)
class Schedule(FieldChecks):
    """Base class of every schedule: subclasses define fields, `_validate`, `_length`, `_value`.

    Subclasses register themselves under their ``kind`` so that ``to_dict``/``from_dict``
    and spec strings such as ``"one_cycle(max_lr=0.4,total=1000)"`` can name them, and
    declare what the layers above need to know about their family in the class variables
    below (read by kind through `bound_fields`, `bounds_reading`, `total_optional`,
    `is_cyclical` and `with_total`). The field checks `_validate` uses (`_real`,
    `_integer`, `_choice`, `_schedule`) come from `FieldChecks`.
    """

    kind: ClassVar[str] = ""
    # Facts about the family that the layers above read by ``kind`` (see `_registry`), so
    # that adding a family touches this package only.
    #: Fields a range test fills when a spec leaves them out, each mapped to the bound it
    #: takes (``"max_lr"``, ``"base_lr"`` or ``"step_size"`` of `RangeTestResult.bounds`).
    bound_fields: ClassVar[Mapping[str, str]] = MappingProxyType({})
    #: The range-test reading (``RangeTestResult.bounds(schedule=...)``) the family trains
    #: with: ``"one_cycle"`` (max at the suggestion, base a tenth of it), ``"clr"`` (base a
    #: quarter of max, and a step size) or ``"constant"`` (one LR, a third of the max, for
    #: families that start at their peak and only hold or decay).
    bounds_reading: ClassVar[BoundsReading] = "constant"
    #: True where ``total`` has a default and leaving it out means "no end" (held or
    #: unbounded), so a trial does not fill it with its own number of updates.
    total_optional: ClassVar[bool] = False
    #: True for the families whose LR goes up and down (CLR, 1cycle), where a momentum
    #: that mirrors the LR is the natural default.
    cyclical: ClassVar[bool] = False
    after_end: str = field(default="hold", kw_only=True)
    if TYPE_CHECKING:
        _len: ClassVar[int | None]  # set once in __post_init__; read on every evaluation

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind:
            register(kind, cls)

    def __post_init__(self) -> None:
        self._validate()  # first: wrappers take their after_end from the wrapped schedule
        if self.after_end not in AFTER_END:
            self._fail("after_end", self.after_end, f"expected one of {', '.join(AFTER_END)}")
        n = self._length()
        if n is not None and n < 1:
            self._fail("length", n, "expected at least 1 update")
        object.__setattr__(self, "_len", n)

    # ----------------------------------------------------------------- subclass hooks
    def _validate(self) -> None:
        """Check and normalise fields; raise ValueError naming the field otherwise."""

    def _length(self) -> int | None:
        return None

    def _value(self, t: int) -> float:
        raise NotImplementedError

    def _phase_bounds(self, horizon: int | None) -> Iterable[tuple[str, int, int | None]]:
        # Schedules with many cycles yield their phases lazily, so `phases(limit=...)`
        # reads only the first ones.
        return [(self.kind, 0, self.length)]

    @classmethod
    def _with_total(cls, spec: dict[str, Any], total: int) -> dict[str, Any]:
        """``spec`` (a dict of this family, a copy) given a run's ``total``; see `with_total`."""
        if "total" not in spec and not cls.total_optional and has_field(cls, "total"):
            spec["total"] = total
        return spec

    def anchors(self) -> tuple[float, float]:
        """The (low, high) values this schedule moves between, for `mirror`.

        Raises:
            TypeError: if the schedule has no natural low and high (a constant, a product).
        """
        raise TypeError(f"{self.kind} has no low/high anchors, so it cannot be mirrored")

    def check_mirrorable(self) -> None:
        """Raise TypeError if `height` (and so `mirror`) is not defined at every step."""
        self._varying_anchors()

    def _height(self, t: int) -> float:
        low, high = self._varying_anchors()
        return min(1.0, max(0.0, (self._value(t) - low) / (high - low)))

    def _varying_anchors(self) -> tuple[float, float]:
        low, high = self.anchors()
        if not high > low:
            raise TypeError(f"{self.kind} does not vary (low == high), so it cannot be mirrored")
        return low, high

    # ----------------------------------------------------------------- public API
    @property
    def length(self) -> int | None:
        """Number of optimizer updates this schedule covers (None: unbounded)."""
        return self._len

    def value(self, step: int) -> float:
        """Value used by optimizer update number ``step`` (0-indexed)."""
        return self._value(self._resolve(step))

    __call__ = value

    def height(self, step: int) -> float:
        """Where ``value(step)`` sits between the schedule's low (0) and high (1) anchors.

        Cyclical schedules define it per phase, so that a mirrored momentum follows the
        same shape as the learning rate (this is what PyTorch's cyclical momentum does).
        """
        return self._height(self._resolve(step))

    def _resolve(self, step: int) -> int:
        n = self._len
        if step.__class__ is int and step >= 0 and (n is None or step < n):
            return step  # the common case, kept cheap for the per-update path
        if isinstance(step, bool):
            raise TypeError(
                f"{self.kind}: step must be an integer count of optimizer updates, got {step!r}"
            )
        try:
            t = operator.index(step)
        except TypeError:
            raise TypeError(
                f"{self.kind}: step must be an integer count of optimizer updates, got {step!r}"
            ) from None
        if t < 0:
            raise ValueError(f"{self.kind}: step={t} is invalid; expected an integer >= 0")
        if n is None or t < n:
            return t
        if self.after_end == "hold":
            return n - 1
        if self.after_end == "cycle":
            return t % n
        raise ValueError(
            f"{self.kind}: step {t} is past the end of the schedule "
            f"(length {n} updates) and after_end='error'"
        )

    def sample(self, n: int = 512, horizon: int | None = None) -> tuple[list[int], list[float]]:
        """Evenly spaced ``(steps, values)`` over the schedule, for plots and tables.

        Args:
            n: number of points; every update is returned when the span has fewer.
            horizon: span in updates; defaults to ``length`` (required when unbounded).

        >>> from lrlab.schedules import linear
        >>> linear(init=1.0, end=0.0, total=5).sample(3)
        ([0, 2, 4], [1.0, 0.5, 0.0])
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"n={n!r} is invalid; expected an integer >= 2 (points to sample)")
        span = self.span(horizon)
        if n >= span:
            steps = list(range(span))
        else:
            steps = sorted({round(i * (span - 1) / (n - 1)) for i in range(n)})
        return steps, [self.value(s) for s in steps]

    def span(self, horizon: int | None = None) -> int:
        """The number of updates to show or sample: ``horizon`` if given, else ``length``.

        Raises:
            ValueError: if the schedule runs forever and no horizon is given, or the
                horizon is below one update.

        >>> from lrlab.schedules import constant, cosine
        >>> cosine(init=0.1, total=90).span(), constant(level=0.1).span(horizon=500)
        (90, 500)
        """
        span = horizon if horizon is not None else self.length
        if span is None:
            raise ValueError(
                f"{self.kind} runs forever; give horizon= (a number of updates) to sample it"
            )
        if span < 1:
            raise ValueError(f"horizon={span} is invalid; expected at least 1 update")
        return span

    def phases(self, horizon: int | None = None, limit: int | None = None) -> list[Phase]:
        """The schedule's phases with their update ranges and start/end values.

        Args:
            horizon: updates to cover for a schedule that runs forever.
            limit: at most this many phases, the first ones (an SGDR with a million
                cycles has a million phases).

        >>> from lrlab.schedules import sgdr
        >>> [p.name for p in sgdr(max_lr=0.1, t_0=1, cycles=10**9).phases(limit=2)]
        ['cycle 1', 'cycle 2']
        """
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(f"limit={limit!r} is invalid; expected an integer >= 1 or None")
        rows = []
        for name, start, stop in itertools.islice(self._phase_bounds(horizon), limit):
            last = start if stop is None else stop - 1
            rows.append(Phase(name, start, stop, self.value(start), self.value(last)))
        return rows

    def describe(self, horizon: int | None = None) -> str:
        """A plain-text phase table (the CLI's ``lrlab schedule show`` prints the same).

        >>> from lrlab.schedules import one_cycle
        >>> print(one_cycle(max_lr=1.0, total=100).describe())
        one_cycle(max_lr=1.0, total=100, base_lr=0.1, final_lr=0.0001, annihilation=0.14)
        length: 100 updates; after the end: hold
        phase          updates      start        end
        up             0-42         0.1          0.97907
        down           43-85        1            0.12093
        annihilation   86-99        0.1          0.0001
        """
        n = self.length
        lines = [
            self.to_spec(),
            f"length: {'unbounded' if n is None else f'{n} updates'}; "
            f"after the end: {self.after_end}",
            f"{'phase':<14} {'updates':<12} {'start':<12} end",
        ]
        for p in self.phases(horizon):
            span = f"{p.start}-" + ("..." if p.stop is None else str(p.stop - 1))
            lines.append(f"{p.name:<14} {span:<12} {_fmt(p.start_value):<12} {_fmt(p.end_value)}")
        return "\n".join(lines)

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that `from_dict` turns back into an equal schedule.

        >>> from lrlab.schedules import Schedule, triangular
        >>> s = triangular(base_lr=0.001, max_lr=0.006, step_size=2000)
        >>> Schedule.from_dict(s.to_dict()) == s
        True
        """
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            out[f.name] = _encode(getattr(self, f.name))
        return out

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Schedule:
        """Build a schedule from the output of `to_dict` (``{"kind": ..., **params}``)."""
        if not isinstance(data, dict) or "kind" not in data:
            raise ValueError(f"a schedule dict needs a 'kind' key, got {data!r}")
        params = {k: _decode(v) for k, v in data.items() if k != "kind"}
        return build(str(data["kind"]), (), params)

    def to_spec(self) -> str:
        """The short form used on the command line, e.g. ``cosine(init=0.1, end=0.0, total=90)``."""
        args = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "after_end" and v == "hold":
                continue
            if f.default is None and v is None:
                continue
            args.append(f"{f.name}={_spec_value(v)}")
        return f"{self.kind}({', '.join(args)})"

    # ----------------------------------------------------------------- arithmetic
    def __mul__(self, other: object) -> Schedule:
        from lrlab.schedules._combinators import Multiply, Scale

        if isinstance(other, Schedule):
            return Multiply(self, other)
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return Scale(self, float(other))
        return NotImplemented

    __rmul__ = __mul__


def lerp(a: float, b: float, p: float) -> float:
    """Linear interpolation that returns ``b`` exactly at ``p == 1`` (so end values are exact)."""
    return b if p >= 1.0 else a + (b - a) * p


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _encode(v: Any) -> Any:
    if isinstance(v, Schedule):
        return v.to_dict()
    if isinstance(v, (tuple, list)):
        return [_encode(x) for x in v]
    return v


def _decode(v: Any) -> Any:
    if isinstance(v, dict) and "kind" in v:
        return Schedule.from_dict(v)
    if isinstance(v, list):
        return tuple(_decode(x) for x in v)
    return v


def _spec_value(v: Any) -> str:
    if isinstance(v, Schedule):
        return v.to_spec()
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(_spec_value(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v)
