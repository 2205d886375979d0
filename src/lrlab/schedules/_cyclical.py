"""Cyclical schedules: Smith's CLR (triangular, triangular2, exp_range) and SGDR warm restarts."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import MappingProxyType

from lrlab.schedules._base import Schedule

#: Smallest amplitude factor a declared run may decay to before it counts as collapsed
#: (the cycle no longer moves the value; bckenstler/CLR#8 is the classic report).
MIN_AMPLITUDE = 1e-3


def clr_step_size(iters_per_epoch: int, epochs: float = 4.0) -> int:
    """Half-cycle length in updates from the number of iterations per epoch.

    Smith ("Cyclical Learning Rates for Training Neural Networks", 2017, section 3.3):
    "it is good to set stepsize equal to 2 - 10 times the number of iterations in an
    epoch". A value outside that range is allowed but warns.

    >>> clr_step_size(iters_per_epoch=500, epochs=4)
    2000
    """
    if (
        isinstance(iters_per_epoch, bool)
        or not isinstance(iters_per_epoch, int)
        or iters_per_epoch < 1
    ):
        raise ValueError(
            f"iters_per_epoch={iters_per_epoch!r} is invalid; expected an integer >= 1"
        )
    if (
        isinstance(epochs, bool)
        or not isinstance(epochs, (int, float))
        or not (math.isfinite(epochs) and epochs > 0)
    ):
        raise ValueError(f"epochs={epochs!r} is invalid; expected a finite number > 0")
    if not 2 <= epochs <= 10:
        warnings.warn(
            f"epochs={epochs} per half cycle is outside the 2-10 the CLR paper recommends",
            stacklevel=2,
        )
    return max(1, round(epochs * iters_per_epoch))


@dataclass(frozen=True)
class Triangular(Schedule):
    """Smith's triangular cyclical learning rate (CLR, arXiv:1506.01186, eq. 1-3).

    The value climbs linearly from ``base_lr`` to ``max_lr`` over ``step_size`` updates
    (a half cycle) and falls back over ``step_size_down`` (default: the same), forever or
    for ``cycles`` cycles. With equal halves this is the paper's
    ``base + (max - base) * max(0, 1 - |t/step_size - 2*cycle + 1|)``; the arithmetic
    follows PyTorch's ``CyclicLR`` so the two agree to the last bits.

    >>> s = triangular(base_lr=0.1, max_lr=0.5, step_size=2)
    >>> [round(s(t), 6) for t in range(6)]
    [0.1, 0.3, 0.5, 0.3, 0.1, 0.3]
    """

    kind = "triangular"
    bound_fields = MappingProxyType(
        {"max_lr": "max_lr", "base_lr": "base_lr", "step_size": "step_size"}
    )
    bounds_reading = "clr"
    cyclical = True
    base_lr: float
    max_lr: float
    step_size: int
    step_size_down: int | None = None
    cycles: int | None = None

    def _validate(self) -> None:
        self._real("base_lr", low_open=True)
        self._real("max_lr", low_open=True)
        if not self.max_lr > self.base_lr:
            self._fail("max_lr", self.max_lr, f"expected a number > base_lr={self.base_lr}")
        self._integer("step_size")
        self._integer("step_size_down", optional=True)
        self._integer("cycles", optional=True)
        n = self._length()
        if n is not None and self.cycles is not None:
            factor = self._scale(self.cycles, n - 1)
            if factor < MIN_AMPLITUDE:
                self._fail(
                    self._collapse_field,
                    getattr(self, self._collapse_field),
                    f"the cycle amplitude collapses to {factor:.2g} of (max_lr - base_lr) "
                    f"by the end of cycle {self.cycles}; use fewer or longer cycles",
                )

    _collapse_field = "cycles"

    @property
    def cycle_length(self) -> int:
        """Updates in one full cycle (up and down)."""
        down = self.step_size if self.step_size_down is None else self.step_size_down
        return self.step_size + down

    def _length(self) -> int | None:
        return None if self.cycles is None else self.cycles * self.cycle_length

    def _scale(self, cycle: int, t: int) -> float:
        return 1.0

    def _wave(self, t: int) -> tuple[float, int]:
        total = float(self.cycle_length)
        ratio = self.step_size / total
        cycle = math.floor(1 + t / total)
        x = 1.0 + t / total - cycle
        s = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        return s, cycle

    def _value(self, t: int) -> float:
        s, cycle = self._wave(t)
        return self.base_lr + (self.max_lr - self.base_lr) * s * self._scale(cycle, t)

    def _height(self, t: int) -> float:
        s, cycle = self._wave(t)
        return s * self._scale(cycle, t)

    def anchors(self) -> tuple[float, float]:
        return (self.base_lr, self.max_lr)

    def _phase_bounds(self, horizon: int | None) -> Iterator[tuple[str, int, int | None]]:
        span = self.length if self.length is not None else horizon
        n_cycles = self.cycles if self.cycles is not None else 2
        if span is not None:
            n_cycles = math.ceil(span / self.cycle_length)
        for c in range(n_cycles):
            start = c * self.cycle_length
            yield (f"up {c + 1}", start, start + self.step_size)
            yield (f"down {c + 1}", start + self.step_size, start + self.cycle_length)


@dataclass(frozen=True)
class Triangular2(Triangular):
    """CLR ``triangular2``: the triangle's amplitude halves after every cycle (Smith 2017).

    >>> s = triangular2(base_lr=0.1, max_lr=0.9, step_size=1)
    >>> [round(s(t), 6) for t in range(6)]
    [0.1, 0.9, 0.1, 0.5, 0.1, 0.3]
    """

    kind = "triangular2"

    def _scale(self, cycle: int, t: int) -> float:
        return 0.5 ** (cycle - 1)  # == 1 / 2**(cycle - 1) exactly, without overflow


@dataclass(frozen=True)
class ExpRange(Triangular):
    """CLR ``exp_range``: the triangle's amplitude shrinks by ``gamma`` every update (Smith 2017).

    Smith's CIFAR-10 run used ``gamma=0.99994`` with ``step_size=2000``.

    >>> s = exp_range(base_lr=0.1, max_lr=1.1, step_size=1, gamma=0.5)
    >>> [round(s(t), 6) for t in range(4)]
    [0.1, 0.6, 0.1, 0.225]
    """

    kind = "exp_range"
    gamma: float = field(kw_only=True)
    _collapse_field = "gamma"

    def _validate(self) -> None:
        self._real("gamma", low_open=True, high=1.0)
        super()._validate()

    def _scale(self, cycle: int, t: int) -> float:
        return self.gamma**t


@dataclass(frozen=True)
class SGDR(Schedule):
    """Cosine annealing with warm restarts (Loshchilov & Hutter, arXiv:1608.03983).

    Cycle ``i`` lasts ``t_0 * t_mult**i`` updates; within it
    ``eta_min + (max_lr - eta_min) * decay**i * (1 + cos(pi * t_cur / t_i)) / 2``.
    ``decay`` (timm's ``cycle_decay``) shrinks each restart's peak; ``decay=1`` is
    PyTorch's ``CosineAnnealingWarmRestarts``, which this matches update for update.
    Cycles are half-open, so ``eta_min`` itself is approached but not used (as in the paper).

    >>> s = sgdr(max_lr=1.0, t_0=2, t_mult=2)
    >>> [round(s(t), 6) for t in range(7)]
    [1.0, 0.5, 1.0, 0.853553, 0.5, 0.146447, 1.0]
    >>> s.cycle_ends(horizon=14)
    [1, 5, 13]
    """

    kind = "sgdr"
    bound_fields = MappingProxyType({"max_lr": "max_lr"})
    bounds_reading = "one_cycle"
    max_lr: float
    t_0: int
    t_mult: int = 1
    eta_min: float = 0.0
    decay: float = 1.0
    cycles: int | None = None

    def _validate(self) -> None:
        self._real("max_lr", low_open=True)
        self._real("eta_min", high=self.max_lr, high_open=True)
        self._integer("t_0")
        self._integer("t_mult")
        self._real("decay", low_open=True, high=1.0)
        self._integer("cycles", optional=True)
        if self.cycles is not None and self.t_mult > 1:
            # cycle i lasts t_0 * t_mult**i updates: past 2**63 no step counter holds them
            bits = (self.cycles - 1) * math.log2(self.t_mult) + math.log2(self.t_0)
            if bits >= 63:
                self._fail(
                    "cycles",
                    self.cycles,
                    f"with t_mult={self.t_mult} the last cycle would last more than 2**63 "
                    "updates; expected fewer cycles",
                )
        if self.cycles is not None and self.decay ** (self.cycles - 1) < MIN_AMPLITUDE:
            self._fail(
                "decay",
                self.decay,
                f"the restart amplitude collapses to {self.decay ** (self.cycles - 1):.2g} "
                f"by cycle {self.cycles}; use a decay closer to 1 or fewer cycles",
            )

    def _length(self) -> int | None:
        if self.cycles is None:
            return None
        if self.t_mult == 1:
            return self.t_0 * self.cycles
        # the geometric series in closed form: 10**8 cycles must not take 10**8 steps
        return self.t_0 * (self.t_mult**self.cycles - 1) // (self.t_mult - 1)

    def _locate(self, t: int) -> tuple[int, int, int]:
        """(cycle index, updates into the cycle, cycle length) for update ``t``."""
        if self.t_mult == 1:
            i, t_cur = divmod(t, self.t_0)
            return i, t_cur, self.t_0
        i, t_i = 0, self.t_0
        while t >= t_i:
            t -= t_i
            t_i *= self.t_mult
            i += 1
        return i, t, t_i

    def _value(self, t: int) -> float:
        i, t_cur, t_i = self._locate(t)
        amplitude = (self.max_lr - self.eta_min) * self.decay**i
        return self.eta_min + amplitude * (1 + math.cos(math.pi * t_cur / t_i)) / 2

    def anchors(self) -> tuple[float, float]:
        return (self.eta_min, self.max_lr)

    def cycle_ends(self, horizon: int | None = None) -> list[int]:
        """The last update of each cycle: where snapshot ensembles take their models."""
        span = self.span(horizon)
        ends, start, t_i = [], 0, self.t_0
        while start + t_i <= span:
            ends.append(start + t_i - 1)
            start += t_i
            t_i *= self.t_mult
        return ends

    def _phase_bounds(self, horizon: int | None) -> Iterator[tuple[str, int, int | None]]:
        span = self.length if self.length is not None else horizon
        start, t_i, i = 0, self.t_0, 0
        while (span is None and i < 3) or (span is not None and start < span):
            yield (f"cycle {i + 1}", start, start + t_i)
            start, t_i, i = start + t_i, t_i * self.t_mult, i + 1


triangular = Triangular
triangular2 = Triangular2
exp_range = ExpRange
sgdr = SGDR
