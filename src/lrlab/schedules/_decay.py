"""Monotone schedules: constant, step decay, exponential, linear, polynomial, cosine."""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import MappingProxyType

from lrlab.schedules._base import Schedule, lerp


def _check_growth(s: Schedule, init: float, gamma: float, exponent: int | None) -> None:
    """A factor gamma > 1 needs a declared total and must stay finite over it."""
    if gamma <= 1.0:
        return
    if exponent is None:
        s._fail(
            "gamma",
            gamma,
            "expected a number in (0, 1] unless total is given (it would grow without bound)",
        )
    elif exponent * math.log(gamma) > 700:  # gamma**exponent would overflow a double
        s._fail("gamma", gamma, f"the value overflows within total={exponent + 1} updates")


@dataclass(frozen=True)
class Constant(Schedule):
    """The same value at every update; the baseline a disciplined schedule has to beat.

    >>> constant(level=0.1)(12345)
    0.1
    """

    kind = "constant"
    bound_fields = MappingProxyType({"level": "max_lr"})
    total_optional = True
    level: float
    total: int | None = None

    def _validate(self) -> None:
        self._real("level")
        self._integer("total", optional=True)

    def _length(self) -> int | None:
        return self.total

    def _value(self, t: int) -> float:
        return self.level


@dataclass(frozen=True)
class Step(Schedule):
    """Multiply by ``gamma`` every ``step_size`` updates (PyTorch ``StepLR``).

    The "x0.1 every N epochs" baseline of the papers: ``value(t) = init * gamma**(t // step_size)``.

    >>> s = step(init=0.1, step_size=3, gamma=0.1)
    >>> [round(s(t), 6) for t in range(7)]
    [0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001]
    """

    kind = "step"
    bound_fields = MappingProxyType({"init": "max_lr"})
    total_optional = True
    init: float
    step_size: int
    gamma: float = 0.1
    total: int | None = None

    def _validate(self) -> None:
        self._real("init", low_open=True)
        self._integer("step_size")
        self._real("gamma", low_open=True)
        self._integer("total", optional=True)
        exponent = None if self.total is None else (self.total - 1) // self.step_size
        _check_growth(self, self.init, self.gamma, exponent)

    def _length(self) -> int | None:
        return self.total

    def _value(self, t: int) -> float:
        return self.init * self.gamma ** (t // self.step_size)

    def _phase_bounds(self, horizon: int | None) -> Iterator[tuple[str, int, int | None]]:
        end = self.total if self.total is not None else horizon
        if end is None:
            end = 3 * self.step_size
        return _pieces(range(self.step_size, end, self.step_size), self.total, end)

    def anchors(self) -> tuple[float, float]:
        return _monotone_anchors(self)


@dataclass(frozen=True)
class MultiStep(Schedule):
    """Multiply by ``gamma`` at each milestone (PyTorch ``MultiStepLR``).

    ``value(t) = init * gamma**(number of milestones <= t)``; Smith's piecewise-constant
    baseline (e.g. 0.35, x0.1 at 50k and 70k updates).

    >>> s = multistep(init=1.0, milestones=(2, 4), gamma=0.5)
    >>> [s(t) for t in range(6)]
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """

    kind = "multistep"
    bound_fields = MappingProxyType({"init": "max_lr"})
    total_optional = True
    init: float
    milestones: tuple[int, ...]
    gamma: float = 0.1
    total: int | None = None

    def _validate(self) -> None:
        self._real("init", low_open=True)
        self._real("gamma", low_open=True)
        self._integer("total", optional=True)
        ms = self.milestones
        if isinstance(ms, (str, bytes)) or not hasattr(ms, "__iter__"):
            self._fail("milestones", ms, "expected a list of increasing integers >= 1")
        ms = tuple(ms)
        if any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in ms) or any(
            b <= a for a, b in itertools.pairwise(ms)
        ):
            self._fail("milestones", ms, "expected strictly increasing integers >= 1")
        if self.total is not None and ms and ms[-1] >= self.total:
            self._fail("milestones", ms, f"expected every milestone < total={self.total}")
        self._set("milestones", ms)
        _check_growth(self, self.init, self.gamma, len(ms) if self.gamma > 1 else None)

    def _length(self) -> int | None:
        return self.total

    def _value(self, t: int) -> float:
        return self.init * self.gamma ** bisect.bisect_right(self.milestones, t)

    def _phase_bounds(self, horizon: int | None) -> Iterator[tuple[str, int, int | None]]:
        end = self.total if self.total is not None else horizon
        return _pieces(self.milestones, self.total, end)

    def anchors(self) -> tuple[float, float]:
        a, b = self.init, self._value(self.milestones[-1] if self.milestones else 0)
        return (min(a, b), max(a, b))


@dataclass(frozen=True)
class Exponential(Schedule):
    """``value(t) = init * gamma**t`` (PyTorch ``ExponentialLR``; a geometric LR ladder).

    >>> exponential(init=1.0, gamma=0.5)(3)
    0.125
    """

    kind = "exponential"
    bound_fields = MappingProxyType({"init": "max_lr"})
    total_optional = True
    init: float
    gamma: float
    total: int | None = None

    def _validate(self) -> None:
        self._real("init", low_open=True)
        self._real("gamma", low_open=True)
        self._integer("total", optional=True)
        _check_growth(self, self.init, self.gamma, None if self.total is None else self.total - 1)

    def _length(self) -> int | None:
        return self.total

    def _value(self, t: int) -> float:
        return self.init * self.gamma**t

    def anchors(self) -> tuple[float, float]:
        return _monotone_anchors(self)


@dataclass(frozen=True)
class Linear(Schedule):
    """Straight line from ``init`` (update 0) to ``end`` (the last update, ``total - 1``).

    PyTorch's ``LinearLR(total_iters=n)`` reaches its end one update later: it equals
    ``linear(total=n + 1)`` with the factors multiplied into the base LR.

    >>> linear(init=0.0, end=1.0, total=5).sample()[1]
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """

    kind = "linear"
    bound_fields = MappingProxyType({"init": "max_lr"})
    init: float
    end: float
    total: int

    def _validate(self) -> None:
        self._real("init")
        self._real("end")
        self._integer("total", low=2)

    def _length(self) -> int | None:
        return self.total

    def _value(self, t: int) -> float:
        return lerp(self.init, self.end, t / (self.total - 1))

    def anchors(self) -> tuple[float, float]:
        return (min(self.init, self.end), max(self.init, self.end))


@dataclass(frozen=True)
class Polynomial(Schedule):
    """``end + (init - end) * (1 - t / (total - 1))**power``: ``end`` at the last update.

    PyTorch's ``PolynomialLR(total_iters=n, power=p)`` is ``polynomial(end=0, total=n + 1)``.

    >>> polynomial(init=1.0, end=0.0, power=2.0, total=3).sample()[1]
    [1.0, 0.25, 0.0]
    """

    kind = "polynomial"
    bound_fields = MappingProxyType({"init": "max_lr"})
    init: float
    total: int
    end: float = 0.0
    power: float = 1.0

    def _validate(self) -> None:
        self._real("init")
        self._real("end")
        self._real("power", low_open=True)
        self._integer("total", low=2)

    def _length(self) -> int | None:
        return self.total

    def _value(self, t: int) -> float:
        return self.end + (self.init - self.end) * (1.0 - t / (self.total - 1)) ** self.power

    def anchors(self) -> tuple[float, float]:
        return (min(self.init, self.end), max(self.init, self.end))


@dataclass(frozen=True)
class Cosine(Schedule):
    """Half a cosine from ``init`` to ``end`` (Loshchilov & Hutter, SGDR, without restarts).

    ``end + (init - end) * (1 + cos(pi * t / (total - 1))) / 2``: ``end`` is reached and used
    at the last update. PyTorch's ``CosineAnnealingLR(T_max=n, eta_min=e)`` is
    ``cosine(end=e, total=n + 1)`` over its first ``n + 1`` updates (after which PyTorch's
    curve rises again; lrlab holds ``end``).

    >>> [round(v, 6) for v in cosine(init=1.0, end=0.0, total=3).sample()[1]]
    [1.0, 0.5, 0.0]
    """

    kind = "cosine"
    bound_fields = MappingProxyType({"init": "max_lr"})
    init: float
    total: int
    end: float = 0.0

    def _validate(self) -> None:
        self._real("init")
        self._real("end")
        self._integer("total", low=2)

    def _length(self) -> int | None:
        return self.total

    def _value(self, t: int) -> float:
        return (
            self.end + (self.init - self.end) * (1 + math.cos(math.pi * t / (self.total - 1))) / 2
        )

    def anchors(self) -> tuple[float, float]:
        return (min(self.init, self.end), max(self.init, self.end))


def _pieces(
    cuts: Iterable[int], total: int | None, end: int | None
) -> Iterator[tuple[str, int, int | None]]:
    """Phases between increasing cut points, ending at ``total`` (or open when there is none)."""
    start, i = 0, 0
    for cut in cuts:
        if end is not None and cut >= end:
            break
        yield (f"level {i}", start, cut)
        start, i = cut, i + 1
    yield (f"level {i}", start, total)


def _monotone_anchors(s: Schedule) -> tuple[float, float]:
    if s.length is None:
        raise TypeError(f"{s.kind} without a total has no end value, so it cannot be mirrored")
    a, b = s.value(0), s.value(s.length - 1)
    return (min(a, b), max(a, b))


constant = Constant
step = Step
multistep = MultiStep
exponential = Exponential
linear = Linear
polynomial = Polynomial
cosine = Cosine
