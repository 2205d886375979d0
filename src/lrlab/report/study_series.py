"""Series of a study read from its store: curves over seeds, applied schedules, per-group LRs.

Seeds of one arm are evaluated at the same updates, so their curves stack as they are;
only when they differ are they interpolated onto the union of their steps (never
extrapolated: outside a seed's own range it is missing, not invented).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrlab.report.stats import t_quantile
from lrlab.schedules import Schedule
from lrlab.study.store import StudyStore, TrialRow

#: Points sampled from a schedule for its plot.
SCHEDULE_POINTS = 512


@dataclass(frozen=True)
class Band:
    """A metric over updates for one arm: per-seed values, their mean and 95% CI."""

    steps: np.ndarray  # (updates,)
    values: np.ndarray  # (seeds, updates); NaN where a seed has no value
    confidence: float = 0.95

    @property
    def n(self) -> np.ndarray:
        return np.isfinite(self.values).sum(axis=0)

    @property
    def mean(self) -> np.ndarray:
        n = self.n
        total = np.where(np.isfinite(self.values), self.values, 0.0).sum(axis=0)
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)

    @property
    def half_width(self) -> np.ndarray:
        """t half-width per update (NaN where fewer than 2 seeds have a value)."""
        n, mean = self.n, self.mean
        dev = np.where(np.isfinite(self.values), self.values - mean, 0.0)
        var = (dev**2).sum(axis=0) / np.maximum(n - 1, 1)
        t = np.array([_t(int(k), self.confidence) for k in n])
        return np.where(n >= 2, t * np.sqrt(var / np.maximum(n, 1)), np.nan)


@functools.lru_cache(maxsize=256)
def _t(n: int, confidence: float) -> float:
    return t_quantile(0.5 + confidence / 2, n - 1) if n >= 2 else math.nan


def _dedupe(steps: list[int], values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Finite points in step order; a repeated step keeps its last value."""
    last: dict[int, float] = {}
    for s, v in zip(steps, values):
        if math.isfinite(v):
            last[int(s)] = float(v)
    keys = sorted(last)
    return np.array(keys, dtype=float), np.array([last[k] for k in keys], dtype=float)


def align(series: list[tuple[list[int], list[float]]]) -> Band | None:
    """Stack per-seed ``(steps, values)``; interpolate onto the union of steps if they differ.

    >>> b = align([([0, 10, 20], [0.1, 0.5, 0.7]), ([0, 10, 20], [0.3, 0.7, 0.9])])
    >>> b.mean.round(3).tolist()
    [0.2, 0.6, 0.8]
    >>> align([([0, 10], [1.0, 3.0]), ([0, 5, 20], [1.0, 2.0, 4.0])]).values.tolist()
    [[1.0, 2.0, 3.0, nan], [1.0, 2.0, 2.6666666666666665, 4.0]]
    """
    points = [_dedupe(s, v) for s, v in series]
    points = [(s, v) for s, v in points if len(s)]
    if not points:
        return None
    first = points[0][0]
    if all(len(s) == len(first) and np.array_equal(s, first) for s, _ in points):
        return Band(first.astype(int), np.stack([v for _, v in points]))
    grid = np.unique(np.concatenate([s for s, _ in points]))
    rows = []
    for s, v in points:
        row = np.interp(grid, s, v)
        row[(grid < s[0]) | (grid > s[-1])] = np.nan
        rows.append(row)
    return Band(grid.astype(int), np.stack(rows))


def curve(store: StudyStore, trials: list[TrialRow], name: str) -> Band | None:
    """One metric of the given trials as a band over seeds (None when no trial has it)."""
    series = []
    for t in trials:
        steps, _, values = store.series(t.id, name)
        if steps:
            series.append((steps, values))
    return align(series)


@dataclass(frozen=True)
class AppliedSchedule:
    """The LR (and momentum) a trial actually used, sampled for a plot."""

    seed: int
    steps: list[int]
    lr: list[float]
    momentum_steps: list[int]
    momentum: list[float]
    source: str  # "schedule" (from final.schedules) or "recorded" (the lr/momentum metrics)


def _horizon(t: TrialRow, sched: Schedule) -> int | None:
    for v in (t.final.get("total_updates"), t.updates, sched.length):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 1:
            return int(v)
    return None


def _sample(data: Any, t: TrialRow) -> tuple[list[int], list[float]] | None:
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        span = t.final.get("total_updates") or t.updates
        return ([0, int(span) - 1], [float(data)] * 2) if span else None
    if not isinstance(data, dict):
        return None
    try:
        sched = Schedule.from_dict(data)
        horizon = _horizon(t, sched)
        return None if horizon is None else sched.sample(SCHEDULE_POINTS, horizon=horizon)
    except (ValueError, TypeError, KeyError):
        return None  # an older or foreign schedule dict: fall back to the recorded values


def applied_schedule(store: StudyStore, t: TrialRow) -> AppliedSchedule | None:
    """The trial's schedules from ``final.schedules``, else its recorded ``lr``/``momentum``."""
    scheds = t.final.get("schedules")
    scheds = scheds if isinstance(scheds, dict) else {}
    lr, source = _sample(scheds.get("lr"), t), "schedule"
    if lr is None:
        steps, _, values = store.series(t.id, "lr")
        if not steps:
            return None
        lr, source = (steps, values), "recorded"
    mom = _sample(scheds.get("momentum"), t)
    if mom is None:  # no momentum schedule: a constant momentum is still recorded
        m_steps, _, m_values = store.series(t.id, "momentum")
        mom = (m_steps, m_values)
    return AppliedSchedule(t.seed, list(lr[0]), list(lr[1]), list(mom[0]), list(mom[1]), source)


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class GroupRates:
    """Per-group LR of one arm over updates: geometric mean over its seeds."""

    groups: list[str]
    steps: np.ndarray
    rates: np.ndarray  # (groups, updates)
    seeds: int


def group_rates(store: StudyStore, trials: list[TrialRow]) -> GroupRates | None:
    """The ``lr/<group>`` metrics of the trials (None when they have none)."""
    names: set[str] = set()
    for t in trials:
        names.update(n for n in store.metric_names(t.id) if n.startswith("lr/"))
    if not names:
        return None
    groups = sorted(names, key=_natural)
    bands = [curve(store, trials, g) for g in groups]
    steps = np.unique(np.concatenate([b.steps for b in bands if b is not None]))
    rows = []
    for b in bands:
        if b is None:
            rows.append(np.full(len(steps), np.nan))
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.where(b.values > 0, np.log(np.where(b.values > 0, b.values, 1.0)), np.nan)
        finite = np.isfinite(logs)
        mean_log = np.where(finite, logs, 0.0).sum(axis=0) / np.maximum(finite.sum(axis=0), 1)
        geo = np.where(finite.any(axis=0), np.exp(mean_log), np.nan)
        rows.append(np.interp(steps, b.steps, geo, left=np.nan, right=np.nan))
    return GroupRates([g.removeprefix("lr/") for g in groups], steps, np.stack(rows), len(trials))
