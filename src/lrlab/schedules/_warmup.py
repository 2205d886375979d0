"""Warm-up: a linear prefix for any schedule, and warmup-stable-decay (WSD)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from lrlab.schedules._base import Schedule, lerp
from lrlab.schedules._registry import has_field, schedule_class


@dataclass(frozen=True)
class Warmup(Schedule):
    """Prefix ``steps`` updates that rise linearly from ``init`` to the schedule's first value.

    The wrapped schedule starts after the warm-up (timm's ``warmup_prefix``), so its own
    shape is untouched; the warm-up's last update sits one step below the target.

    >>> from lrlab.schedules import constant
    >>> s = warmup(constant(level=1.0), steps=4)
    >>> [s(t) for t in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """

    kind = "warmup"
    schedule: Schedule
    steps: int
    init: float = 0.0

    def _validate(self) -> None:
        self._schedule("schedule")
        self._integer("steps")
        self._real("init")

    def _length(self) -> int | None:
        n = self.schedule.length
        return None if n is None else self.steps + n

    def _value(self, t: int) -> float:
        if t < self.steps:
            return self.init + (self.schedule.value(0) - self.init) * (t / self.steps)
        return self.schedule.value(t - self.steps)

    def _height(self, t: int) -> float:
        if t < self.steps:
            return self.schedule.height(0) * (t / self.steps)
        return self.schedule.height(t - self.steps)

    def check_mirrorable(self) -> None:
        self.schedule.check_mirrorable()

    def anchors(self) -> tuple[float, float]:
        low, high = self.schedule.anchors()
        return (min(low, self.init), high)

    @classmethod
    def _with_total(cls, spec: dict[str, Any], total: int) -> dict[str, Any]:
        # The wrapped schedule starts after the warm-up, so it gets the updates that remain,
        # and gets them even where its own total is optional: a warmed-up constant or step
        # decay ends with the run.
        inner = spec.get("schedule")
        if (
            isinstance(inner, dict)
            and "total" not in inner
            and has_field(schedule_class(inner["kind"]), "total")
        ):
            spec["schedule"] = {**inner, "total": total - int(spec.get("steps", 0))}
        return spec

    def _phase_bounds(self, horizon: int | None) -> Iterator[tuple[str, int, int | None]]:
        yield ("warm-up", 0, self.steps)
        inner = self.schedule._phase_bounds(
            None if horizon is None else max(1, horizon - self.steps)
        )
        for n, a, b in inner:
            yield (n, a + self.steps, None if b is None else b + self.steps)


@dataclass(frozen=True)
class WarmupStableDecay(Schedule):
    """Warmup-stable-decay ("trapezoid"; Hu et al. 2024, MiniCPM; timm ``wsd``).

    ``fractions = (warmup, stable, decay)`` of ``total`` must sum to 1. The warm-up rises
    linearly from ``init`` to ``peak``, the stable phase holds ``peak``, and the decay
    reaches ``end`` at the last update with ``decay_shape`` ``linear``, ``cosine`` or
    ``sqrt`` (``1 - sqrt(p)``, the "1-sqrt" cooldown).

    >>> s = warmup_stable_decay(peak=1.0, total=10, fractions=(0.2, 0.4, 0.4))
    >>> [round(s(t), 4) for t in range(10)]
    [0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 0.6667, 0.3333, 0.0]
    """

    kind = "warmup_stable_decay"
    bound_fields = MappingProxyType({"peak": "max_lr"})
    bounds_reading = "one_cycle"
    peak: float
    total: int
    fractions: tuple[float, float, float] = (0.05, 0.75, 0.2)
    init: float = 0.0
    end: float = 0.0
    decay_shape: str = "linear"

    def _validate(self) -> None:
        peak = self._real("peak", low_open=True)
        total = self._integer("total", low=2)
        self._real("init", high=peak)
        self._real("end", high=peak)
        self._choice("decay_shape", ("linear", "cosine", "sqrt"))
        fr = self.fractions
        ok = isinstance(fr, (list, tuple)) and len(fr) == 3
        ok = ok and all(
            not isinstance(f, bool) and isinstance(f, (int, float)) and 0 <= f <= 1 for f in fr
        )
        if not ok:
            self._fail("fractions", fr, "expected three numbers in [0, 1] (warmup, stable, decay)")
        fr = (float(fr[0]), float(fr[1]), float(fr[2]))
        if abs(sum(fr) - 1.0) > 1e-6:
            self._fail("fractions", fr, f"they sum to {sum(fr):.6g}; expected 1 (within 1e-6)")
        assert total is not None
        warm, dec = round(fr[0] * total), round(fr[2] * total)
        for name, f, n in (("warmup", fr[0], warm), ("decay", fr[2], dec)):
            if f > 0 and n < 1:
                self._fail(
                    "fractions", fr, f"the {name} phase rounds to 0 of total={total} updates"
                )
        if fr[1] > 0 and total - warm - dec < 1:
            self._fail("fractions", fr, f"the stable phase rounds to 0 of total={total} updates")
        if warm + dec > total:
            self._fail(
                "fractions", fr, f"warm-up and decay round to {warm + dec} > total={total} updates"
            )
        self._set("fractions", fr)
        self._set("_warm", warm)
        self._set("_decay", dec)

    def _length(self) -> int | None:
        return self.total

    def _value(self, t: int) -> float:
        warm, dec = self.__dict__["_warm"], self.__dict__["_decay"]
        if t < warm:
            return self.init + (self.peak - self.init) * (t / warm)
        start = self.total - dec
        if t < start:
            return self.peak
        p = 1.0 if dec == 1 else (t - start) / (dec - 1)
        if self.decay_shape == "linear":
            return lerp(self.peak, self.end, p)
        if self.decay_shape == "cosine":
            return self.end + (self.peak - self.end) * (1 + math.cos(math.pi * p)) / 2
        return self.end + (self.peak - self.end) * (1 - math.sqrt(p))

    def anchors(self) -> tuple[float, float]:
        return (min(self.init, self.end), self.peak)

    def _phase_bounds(self, horizon: int | None) -> list[tuple[str, int, int | None]]:
        warm, dec = self.__dict__["_warm"], self.__dict__["_decay"]
        rows = [
            ("warm-up", 0, warm),
            ("stable", warm, self.total - dec),
            ("decay", self.total - dec, self.total),
        ]
        return [r for r in rows if r[2] > r[1]]


warmup = Warmup
warmup_stable_decay = WarmupStableDecay
