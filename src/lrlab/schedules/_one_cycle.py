"""1cycle in three parameterisations, named apart so nobody confuses them.

* `one_cycle`: Smith's policy (super-convergence, arXiv:1708.07120; "A disciplined
  approach to neural network hyper-parameters", arXiv:1803.09820): one symmetric linear
  cycle ``base_lr -> max_lr -> base_lr`` slightly shorter than training, then an
  annihilation phase that takes the LR orders of magnitude below ``base_lr``.
* `one_cycle_fastai`: fastai's ``fit_one_cycle`` (two cosine halves; ``div_final``
  divides the *maximum*).
* `one_cycle_torch`: PyTorch's ``OneCycleLR`` (cosine or linear, two or three phases;
  ``final_div_factor`` divides the *initial* LR), matched update for update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

from lrlab.schedules._base import Schedule, lerp


def _anneal(shape: str, start: float, end: float, pct: float) -> float:
    # Same arithmetic as PyTorch's OneCycleLR._annealing_cos/_annealing_linear.
    if shape == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


def _fastai_cos(start: float, end: float, pos: float) -> float:
    # fastai.callback.schedule.sched_cos
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


@dataclass(frozen=True)
class OneCycle(Schedule):
    """Smith's 1cycle: linear up, linear down, then annihilation.

    The cycle takes ``cycle = round((1 - annihilation) * total)`` updates, ``up = cycle // 2``
    rising and ``down = cycle - up`` falling (one more when ``cycle`` is odd); the rest
    annihilates linearly from ``base_lr`` to ``final_lr``, which the last update uses.
    Defaults follow Smith's own solver files (lnsmith54/hyperParam1): ``base_lr =
    max_lr / 10`` and a cycle of about 86% of training (``annihilation=0.14``);
    ``final_lr = base_lr / 1000`` ("several orders of magnitude" below base). Pair it with
    ``cyclical_momentum(schedule)`` for momentum 0.95 -> 0.85 -> 0.95, held at 0.95 while
    annihilating.

    >>> s = one_cycle(max_lr=1.0, total=10, annihilation=0.2)
    >>> [round(s(t), 4) for t in range(10)]
    [0.1, 0.325, 0.55, 0.775, 1.0, 0.775, 0.55, 0.325, 0.1, 0.0001]
    """

    kind = "one_cycle"
    bound_fields = MappingProxyType({"max_lr": "max_lr", "base_lr": "base_lr"})
    bounds_reading = "one_cycle"
    cyclical = True
    max_lr: float
    total: int
    base_lr: float | None = None
    final_lr: float | None = None
    annihilation: float = 0.14

    def _validate(self) -> None:
        max_lr = self._real("max_lr", low_open=True)
        assert max_lr is not None
        if self.base_lr is None:
            self._set("base_lr", max_lr / 10)
        base = self._real("base_lr", low_open=True, high=max_lr, high_open=True)
        assert base is not None
        if self.final_lr is None:
            self._set("final_lr", base / 1000)
        self._real("final_lr", high=base)
        total = self._integer("total", low=3)
        assert total is not None
        a = self._real("annihilation", low_open=True, high=1.0, high_open=True)
        assert a is not None
        cycle = round((1 - a) * total)
        up = cycle // 2
        if up < 1:
            self._fail(
                "total",
                total,
                f"the cycle rounds to {cycle} updates; expected total >= {math.ceil(2 / (1 - a))}",
            )
        if total - cycle < 1:
            self._fail(
                "annihilation",
                a,
                f"it rounds to 0 of total={total} updates; "
                f"expected at least 1/total = {1 / total:.3g}",
            )
        self._set("_up", up)
        self._set("_down", cycle - up)

    def _length(self) -> int | None:
        return self.total

    def _value(self, t: int) -> float:
        up, down = self.__dict__["_up"], self.__dict__["_down"]
        base, peak = self.base_lr, self.max_lr
        assert base is not None and self.final_lr is not None
        if t < up:
            return base + (peak - base) * (t / up)
        if t < up + down:
            return peak + (base - peak) * ((t - up) / down)
        n = self.total - up - down
        if n == 1:
            return self.final_lr
        return lerp(base, self.final_lr, (t - up - down) / (n - 1))

    def _height(self, t: int) -> float:
        up, down = self.__dict__["_up"], self.__dict__["_down"]
        if t < up:
            return t / up
        if t < up + down:
            return 1.0 - (t - up) / down
        return 0.0

    def anchors(self) -> tuple[float, float]:
        assert self.base_lr is not None
        return (self.base_lr, self.max_lr)

    def _phase_bounds(self, horizon: int | None) -> list[tuple[str, int, int | None]]:
        up, down = self.__dict__["_up"], self.__dict__["_down"]
        return [("up", 0, up), ("down", up, up + down), ("annihilation", up + down, self.total)]


@dataclass(frozen=True)
class OneCycleTorch(Schedule):
    """PyTorch's ``OneCycleLR`` with its own parameter names and endpoint arithmetic.

    Starts at ``max_lr / div_factor``, ends at ``max_lr / div_factor / final_div_factor``
    (the final divisor applies to the *initial* LR) at update ``total - 1``. Unlike
    PyTorch, which extrapolates at update ``total`` (negative with ``anneal='linear'``)
    and raises after it, lrlab holds the final value.

    >>> s = one_cycle_torch(max_lr=1.0, total=10, anneal="linear")
    >>> [round(s(t), 4) for t in (0, 2, 9)]
    [0.04, 1.0, 0.0]
    """

    kind = "one_cycle_torch"
    bound_fields = MappingProxyType({"max_lr": "max_lr"})
    bounds_reading = "one_cycle"
    cyclical = True
    max_lr: float
    total: int
    pct_start: float = 0.3
    anneal: str = "cos"
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False

    def _validate(self) -> None:
        max_lr = self._real("max_lr", low_open=True)
        total = self._integer("total", low=2)
        pct = self._real("pct_start", low_open=True, high=1.0, high_open=True)
        self._choice("anneal", ("cos", "linear"))
        div = self._real("div_factor", low_open=True)
        final_div = self._real("final_div_factor", low_open=True)
        if not isinstance(self.three_phase, bool):
            self._fail("three_phase", self.three_phase, "expected true or false")
        assert max_lr is not None and total is not None and pct is not None
        assert div is not None and final_div is not None
        initial = max_lr / div
        low = initial / final_div
        e1 = float(pct * total) - 1
        # (end_step, start value, end value, start height, end height), as OneCycleLR builds them.
        if self.three_phase:
            e2 = float(2 * pct * total) - 2
            phases = [
                (e1, initial, max_lr, 0.0, 1.0),
                (e2, max_lr, initial, 1.0, 0.0),
                (total - 1.0, initial, low, 0.0, 0.0),
            ]
        else:
            phases = [(e1, initial, max_lr, 0.0, 1.0), (total - 1.0, max_lr, low, 1.0, 0.0)]
        start = 0.0
        for i, (end, *_rest) in enumerate(phases):
            if end - start < 1:
                self._fail(
                    "pct_start",
                    pct,
                    f"phase {i + 1} spans {end - start:g} updates of total={total}; "
                    "every phase needs at least 1",
                )
            start = end
        self._set("_phases", tuple(phases))

    def _length(self) -> int | None:
        return self.total

    def _locate(self, t: int) -> tuple[float, tuple[float, float, float, float, float]]:
        phases = self.__dict__["_phases"]
        start = 0.0
        for i, phase in enumerate(phases):
            if t <= phase[0] or i == len(phases) - 1:
                return (t - start) / (phase[0] - start), phase
            start = phase[0]
        raise AssertionError("unreachable")

    def _value(self, t: int) -> float:
        pct, phase = self._locate(t)
        return _anneal(self.anneal, phase[1], phase[2], pct)

    def _height(self, t: int) -> float:
        pct, phase = self._locate(t)
        return _anneal(self.anneal, phase[3], phase[4], pct)

    def anchors(self) -> tuple[float, float]:
        return (self.max_lr / self.div_factor, self.max_lr)

    def _phase_bounds(self, horizon: int | None) -> list[tuple[str, int, int | None]]:
        names = ("warm-up", "anneal", "annihilation")
        rows: list[tuple[str, int, int | None]] = []
        start = 0
        for i, phase in enumerate(self.__dict__["_phases"]):
            stop = math.floor(phase[0]) + 1
            rows.append((names[i], start, stop))
            start = stop
        return rows


@dataclass(frozen=True)
class OneCycleFastai(Schedule):
    """fastai's ``fit_one_cycle``: cosine up from ``max_lr / div``, down to ``max_lr / div_final``.

    Evaluated at ``pos = t / total`` as fastai does (so the last update sits just above
    the final value). ``div_final`` divides the *maximum*, unlike PyTorch's
    ``final_div_factor``. Momentum with ``cyclical_momentum`` gives fastai's
    ``moms=(0.95, 0.85, 0.95)``.

    >>> s = one_cycle_fastai(max_lr=1.0, total=8, pct_start=0.25)
    >>> [round(s(t), 4) for t in (0, 1, 2, 5)]
    [0.04, 0.52, 1.0, 0.5]
    """

    kind = "one_cycle_fastai"
    bound_fields = MappingProxyType({"max_lr": "max_lr"})
    bounds_reading = "one_cycle"
    cyclical = True
    max_lr: float
    total: int
    pct_start: float = 0.25
    div: float = 25.0
    div_final: float = 1e5

    def _validate(self) -> None:
        self._real("max_lr", low_open=True)
        total = self._integer("total", low=2)
        pct = self._real("pct_start", low_open=True, high=1.0, high_open=True)
        self._real("div", low_open=True)
        self._real("div_final", low_open=True)
        assert total is not None and pct is not None
        warm = math.ceil(pct * total)  # updates with t / total < pct_start
        if warm < 1 or warm >= total:
            self._fail("pct_start", pct, f"a phase gets 0 of total={total} updates")

    def _length(self) -> int | None:
        return self.total

    def _value(self, t: int) -> float:
        pos = t / self.total
        if pos < self.pct_start:
            return _fastai_cos(self.max_lr / self.div, self.max_lr, pos / self.pct_start)
        p = (pos - self.pct_start) / (1 - self.pct_start)
        return _fastai_cos(self.max_lr, self.max_lr / self.div_final, p)

    def _height(self, t: int) -> float:
        pos = t / self.total
        if pos < self.pct_start:
            return _fastai_cos(0.0, 1.0, pos / self.pct_start)
        return _fastai_cos(1.0, 0.0, (pos - self.pct_start) / (1 - self.pct_start))

    def anchors(self) -> tuple[float, float]:
        return (self.max_lr / self.div, self.max_lr)

    def _phase_bounds(self, horizon: int | None) -> list[tuple[str, int, int | None]]:
        warm = math.ceil(self.pct_start * self.total)
        return [("warm-up", 0, warm), ("anneal", warm, self.total)]


one_cycle = OneCycle
one_cycle_torch = OneCycleTorch
one_cycle_fastai = OneCycleFastai
