"""Combinators: build schedules out of schedules, all pure and serialisable.

Because every schedule is a closed-form function of the update count with no side
effects, nesting is associative: ``join(warmup, join(a, b))`` is ``join(warmup, a, b)``,
the failure class of PyTorch's ``SequentialLR``/``ChainedScheduler`` cannot occur.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field

from lrlab.schedules._base import Schedule


@dataclass(frozen=True)
class Join(Schedule):
    """Run ``parts`` one after another; each part restarts its own clock at its boundary.

    ``boundaries`` are the updates where parts 2, 3, ... begin; by default each part
    runs for its declared length. (optax ``join_schedules``.)

    >>> from lrlab.schedules import constant, linear
    >>> s = join((constant(level=1.0, total=2), linear(init=0.5, end=0.0, total=3)))
    >>> [s(t) for t in range(6)]
    [1.0, 1.0, 0.5, 0.25, 0.0, 0.0]
    """

    kind = "join"
    parts: tuple[Schedule, ...]
    boundaries: tuple[int, ...] | None = None

    def _validate(self) -> None:
        parts = tuple(self.parts) if isinstance(self.parts, (list, tuple)) else None
        if not parts or not all(isinstance(p, Schedule) for p in parts):
            self._fail("parts", self.parts, "expected a non-empty list of schedules")
        assert parts is not None
        self._set("parts", parts)
        if self.boundaries is None:
            bounds, at = [], 0
            for i, p in enumerate(parts[:-1]):
                if p.length is None:
                    self._fail(
                        "parts",
                        p.to_spec(),
                        f"part {i + 1} runs forever; give it a total or pass boundaries=",
                    )
                at += p.length
                bounds.append(at)
            self._set("_bounds", tuple(bounds))
        else:
            b = tuple(self.boundaries)
            if (
                len(b) != len(parts) - 1
                or any(isinstance(x, bool) or not isinstance(x, int) for x in b)
                or any(x <= a for a, x in zip((0, *b), b))
            ):
                self._fail(
                    "boundaries",
                    self.boundaries,
                    f"expected {len(parts) - 1} strictly increasing integers >= 1",
                )
            self._set("boundaries", b)
            self._set("_bounds", b)

    def _length(self) -> int | None:
        last = self.parts[-1].length
        bounds = self.__dict__["_bounds"]
        return None if last is None else (bounds[-1] if bounds else 0) + last

    def _part(self, t: int) -> tuple[Schedule, int]:
        bounds = self.__dict__["_bounds"]
        i = bisect.bisect_right(bounds, t)
        return self.parts[i], t - (bounds[i - 1] if i else 0)

    def _value(self, t: int) -> float:
        part, local = self._part(t)
        return part.value(local)

    def _height(self, t: int) -> float:
        part, local = self._part(t)
        return part.height(local)

    def check_mirrorable(self) -> None:
        for part in self.parts:
            part.check_mirrorable()

    def _phase_bounds(self, horizon: int | None) -> Iterator[tuple[str, int, int | None]]:
        bounds = (0, *self.__dict__["_bounds"])
        for i, (part, start) in enumerate(zip(self.parts, bounds)):
            stop = bounds[i + 1] if i + 1 < len(bounds) else self.length
            for name, a, b in part._phase_bounds(None if stop is None else stop - start):
                if stop is not None and a >= stop - start:
                    break
                end = None if b is None else start + b
                if stop is not None and (end is None or end > stop):
                    end = stop
                yield (f"{i + 1}.{name}", start + a, end)


@dataclass(frozen=True)
class Repeat(Schedule):
    """Repeat a finite schedule ``times`` times (forever when None).

    >>> from lrlab.schedules import linear
    >>> s = repeat(linear(init=1.0, end=0.0, total=2), times=2)
    >>> [s(t) for t in range(5)], s.length
    ([1.0, 0.0, 1.0, 0.0, 0.0], 4)
    """

    kind = "repeat"
    schedule: Schedule
    times: int | None = None

    def _validate(self) -> None:
        inner = self._schedule("schedule")
        if inner.length is None:
            self._fail("schedule", inner.to_spec(), "expected a schedule with a total length")
        self._integer("times", optional=True)

    def _length(self) -> int | None:
        n = self.schedule.length
        return None if self.times is None or n is None else n * self.times

    def _value(self, t: int) -> float:
        return self.schedule.value(t % self.schedule.length)  # type: ignore[operator]

    def _height(self, t: int) -> float:
        return self.schedule.height(t % self.schedule.length)  # type: ignore[operator]

    def check_mirrorable(self) -> None:
        self.schedule.check_mirrorable()


INHERIT = "inherit"


def _same_clock(s: Schedule, child: Schedule) -> None:
    """A wrapper with its child's length also takes the child's past-the-end policy.

    Its steps are then resolved exactly as the child would resolve them, so calling the
    child's ``_value`` with them is correct (and one resolution per call cheaper).
    """
    if s.after_end == INHERIT:
        s._set("after_end", child.after_end)
    elif s.after_end != child.after_end:
        s._fail(
            "after_end",
            s.after_end,
            f"a {s.kind} follows the wrapped schedule's after_end ({child.after_end!r})",
        )


@dataclass(frozen=True)
class Scale(Schedule):
    """A schedule multiplied by a constant ``factor`` > 0 (also ``schedule * 0.5``).

    >>> from lrlab.schedules import cosine
    >>> (cosine(init=1.0, total=3) * 0.5)(0)
    0.5
    """

    kind = "scale"
    schedule: Schedule
    factor: float
    after_end: str = field(default=INHERIT, kw_only=True)

    def _validate(self) -> None:
        _same_clock(self, self._schedule("schedule"))
        self._real("factor", low_open=True)

    def _length(self) -> int | None:
        return self.schedule.length

    # Same length as the child: a step resolved here is already valid for it.
    def _value(self, t: int) -> float:
        return self.schedule._value(t) * self.factor

    def _height(self, t: int) -> float:
        return self.schedule._height(t)

    def anchors(self) -> tuple[float, float]:
        low, high = self.schedule.anchors()
        return (low * self.factor, high * self.factor)

    def check_mirrorable(self) -> None:
        self.schedule.check_mirrorable()


@dataclass(frozen=True)
class Multiply(Schedule):
    """Pointwise product of two schedules (also ``a * b``); its length is the longer one's.

    >>> from lrlab.schedules import constant, linear
    >>> (constant(level=2.0) * linear(init=1.0, end=0.0, total=3))(1)
    1.0
    """

    kind = "multiply"
    left: Schedule
    right: Schedule

    def _validate(self) -> None:
        self._schedule("left")
        self._schedule("right")

    def _length(self) -> int | None:
        a, b = self.left.length, self.right.length
        return None if a is None or b is None else max(a, b)

    def _value(self, t: int) -> float:
        return self.left.value(t) * self.right.value(t)


@dataclass(frozen=True)
class Clip(Schedule):
    """Clamp a schedule to ``[low, high]`` (``high=None``: no upper bound).

    >>> from lrlab.schedules import linear
    >>> clip(linear(init=0.0, end=1.0, total=5), low=0.2, high=0.6).sample()[1]
    [0.2, 0.25, 0.5, 0.6, 0.6]
    """

    kind = "clip"
    schedule: Schedule
    low: float = 0.0
    high: float | None = None
    after_end: str = field(default=INHERIT, kw_only=True)

    def _validate(self) -> None:
        _same_clock(self, self._schedule("schedule"))
        low = self._real("low")
        assert low is not None
        self._real("high", low=low, low_open=True, optional=True)

    def _length(self) -> int | None:
        return self.schedule.length

    def _value(self, t: int) -> float:
        v = max(self.low, self.schedule._value(t))
        return v if self.high is None else min(self.high, v)

    def anchors(self) -> tuple[float, float]:
        low, high = self.schedule.anchors()
        top = high if self.high is None else min(high, self.high)
        return (max(low, self.low), top)


@dataclass(frozen=True)
class Mirror(Schedule):
    """Inverse of another schedule between ``low`` and ``high``: high when it is low.

    ``high - (high - low) * schedule.height(t)``, where ``height`` is 0 at the schedule's
    low anchor and 1 at its peak. This is how cyclical momentum follows the learning rate
    (Smith 2018); for CLR and PyTorch's OneCycleLR it equals PyTorch's momentum cycling.

    >>> from lrlab.schedules import triangular
    >>> s = mirror(triangular(base_lr=0.1, max_lr=0.5, step_size=2), low=0.85, high=0.95)
    >>> [round(s(t), 4) for t in range(5)]
    [0.95, 0.9, 0.85, 0.9, 0.95]
    """

    kind = "mirror"
    schedule: Schedule
    low: float
    high: float
    after_end: str = field(default=INHERIT, kw_only=True)

    def _validate(self) -> None:
        inner = self._schedule("schedule")
        _same_clock(self, inner)
        low = self._real("low")
        assert low is not None
        self._real("high", low=low, low_open=True)
        try:
            inner.check_mirrorable()
        except TypeError as e:
            self._fail("schedule", inner.to_spec(), f"it cannot be mirrored ({e})")

    def _length(self) -> int | None:
        return self.schedule.length

    def _value(self, t: int) -> float:
        return self.high - (self.high - self.low) * self.schedule._height(t)

    def anchors(self) -> tuple[float, float]:
        return (self.low, self.high)


@dataclass(frozen=True)
class Shift(Schedule):
    """Delay a schedule by ``steps`` updates, holding its first value meanwhile.

    For a periodic schedule a delay is a phase offset: Smith's cyclical layer rates give
    each depth the same cycle, shifted (``shift(triangular(...), steps=depth * k)``).

    >>> from lrlab.schedules import linear
    >>> s = shift(linear(init=1.0, end=0.0, total=3), steps=2)
    >>> [s(t) for t in range(6)], s.length
    ([1.0, 1.0, 1.0, 0.5, 0.0, 0.0], 5)
    """

    kind = "shift"
    schedule: Schedule
    steps: int

    def _validate(self) -> None:
        self._schedule("schedule")
        self._integer("steps", low=0)

    def _length(self) -> int | None:
        n = self.schedule.length
        return None if n is None else n + self.steps

    def _value(self, t: int) -> float:
        return self.schedule.value(max(0, t - self.steps))

    def _height(self, t: int) -> float:
        return self.schedule.height(max(0, t - self.steps))

    def anchors(self) -> tuple[float, float]:
        return self.schedule.anchors()

    def check_mirrorable(self) -> None:
        self.schedule.check_mirrorable()


def cyclical_momentum(lr: Schedule, low: float = 0.85, high: float = 0.95) -> Mirror:
    """Smith's cyclical momentum: ``high`` when the LR is at its base, ``low`` at its peak.

    "A disciplined approach to neural network hyper-parameters" (Smith 2018) recommends
    0.95 -> 0.85 -> 0.95 with 1cycle; during 1cycle's annihilation momentum stays at
    ``high``.

    >>> from lrlab.schedules import one_cycle
    >>> m = cyclical_momentum(one_cycle(max_lr=1.0, total=10, annihilation=0.2))
    >>> [round(m(t), 4) for t in range(10)]
    [0.95, 0.925, 0.9, 0.875, 0.85, 0.875, 0.9, 0.925, 0.95, 0.95]
    """
    return Mirror(lr, low, high)


join = Join
repeat = Repeat
scale = Scale
multiply = Multiply
clip = Clip
mirror = Mirror
shift = Shift
