"""Suggestion rules: pure functions of a range-test curve ``(lrs, losses, accuracy)``.

Each rule returns a `RuleOutput`: the suggested (maximum) learning rate, a lower bound
when the rule has one, the curve index it came from and a one-line reason. The sweep
that produced the curve lives in `lrlab.rangetest.sweep`; nothing here touches torch.

The fastai rules are ports of fastai 2.8.12 ``callback/schedule.py`` applied after
fastai's own preprocessing (debiased EMA 0.98, drop the first tenth and the last five
points, cut at the first NaN). lrlab pairs each loss with the LR that produced it, one
ladder step below where fastai attributes it; on a 100-point sweep over 8 decades that
is a factor of 1.2.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np

from lrlab.rangetest.smoothing import ema, local_linear_matrix


class RuleOutput(NamedTuple):
    """What a rule read off the curve."""

    lr: float
    low: float | None
    position: int  # index into the curve
    reason: str


class CurveError(ValueError):
    """The curve has no feature the rule needs (too short, no descent)."""


def _finite_prefix(lrs: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    bad = np.flatnonzero(~np.isfinite(losses))
    end = int(bad[0]) if bad.size else len(losses)
    return lrs[:end], losses[:end]


def _fastai_view(
    lrs: np.ndarray, losses: np.ndarray, num_it: int | None
) -> tuple[np.ndarray, np.ndarray]:
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    smoothed = ema(np.where(np.isfinite(losses), losses, np.inf))
    n = num_it if num_it is not None else len(losses)
    lrs, smoothed = lrs[n // 10 : -5], smoothed[n // 10 : -5]
    lrs, smoothed = _finite_prefix(lrs, smoothed)
    if len(smoothed) < 3:
        raise CurveError(f"only {len(smoothed)} usable points after fastai's trimming")
    return lrs, smoothed


def fastai_valley(lrs: np.ndarray, losses: np.ndarray, num_it: int | None = None) -> RuleOutput:
    """fastai ``valley``: the middle of the longest (non-contiguous) decreasing run of the loss."""
    lrs, losses = _fastai_view(lrs, losses, num_it)
    n = len(losses)
    lds = [1] * n
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return RuleOutput(float(lrs[idx]), None, idx, "fastai valley: middle of the longest descent")


def fastai_slide(
    lrs: np.ndarray,
    losses: np.ndarray,
    num_it: int | None = None,
    lr_diff: int = 15,
    thresh: float = 0.005,
    adjust_value: float = 1.0,
) -> RuleOutput:
    """fastai ``slide``: slide a window left from the end until its two slopes agree."""
    lrs, losses = _fastai_view(lrs, losses, num_it)
    if len(losses) <= lr_diff:
        raise CurveError(f"slide needs more than lr_diff={lr_diff} points, got {len(losses)}")
    grad = np.gradient(losses)
    r, left = -1, -1 - lr_diff
    local = lrs[left]
    while left >= -len(losses) and abs(grad[r] - grad[left]) > thresh:
        local = lrs[left]
        r -= 1
        left -= 1
    idx = int(np.flatnonzero(lrs == local)[0])
    return RuleOutput(
        float(local) * adjust_value, None, idx, "fastai slide: where the slope settles"
    )


def fastai_minimum(lrs: np.ndarray, losses: np.ndarray, num_it: int | None = None) -> RuleOutput:
    """fastai ``minimum``: a tenth of the LR at the smoothed loss minimum."""
    lrs, losses = _fastai_view(lrs, losses, num_it)
    idx = int(np.argmin(losses))
    return RuleOutput(float(lrs[idx]) / 10, None, idx, "fastai minimum: LR at the minimum / 10")


def fastai_steep(lrs: np.ndarray, losses: np.ndarray, num_it: int | None = None) -> RuleOutput:
    """fastai ``steep``: the steepest forward difference of the loss in ln(LR)."""
    lrs, losses = _fastai_view(lrs, losses, num_it)
    grads = (losses[1:] - losses[:-1]) / (np.log(lrs[1:]) - np.log(lrs[:-1]))
    idx = int(np.argmin(grads))
    return RuleOutput(float(lrs[idx]), None, idx, "fastai steep: steepest slope in ln(LR)")


# --------------------------------------------------------------------- lrlab's curve model


class Curve(NamedTuple):
    """A range-test curve prepared for lrlab's rules: finite points, smoothed in log10(LR)."""

    lrs: np.ndarray
    x: np.ndarray  # log10(lr)
    raw: np.ndarray
    fit: np.ndarray  # zero-lag local-linear smooth of raw over x
    smoother: np.ndarray  # the matrix with fit = smoother @ raw
    bandwidth: float  # decades


def prepare(lrs: np.ndarray, losses: np.ndarray, bandwidth: float | None = None) -> Curve:
    """Drop non-finite tails and non-positive LRs, then smooth in log10(LR) without lag.

    ``bandwidth`` (decades) defaults to four ladder steps, at least 0.05 decades; on a
    short sweep (steps over 0.15 decades) at most 0.6 decades or 1.5 steps, whichever is
    wider: four steps of a 20-update sweep over eight decades are 1.7 decades, a smoother
    that flattens the whole descent.
    """
    lrs, losses = _finite_prefix(lrs, losses)
    keep = lrs > 0
    lrs, losses = lrs[keep], losses[keep]
    if len(losses) < 8:
        raise CurveError(f"only {len(losses)} finite points; run a longer sweep")
    x = np.log10(lrs)
    if bandwidth is None:
        step = float(np.median(np.diff(x)))
        bandwidth = max(0.05, min(4 * step, max(0.6, 1.5 * step)))
    s = local_linear_matrix(x, bandwidth)
    return Curve(lrs, x, losses, s @ losses, s, bandwidth)


def _descent(curve: Curve) -> tuple[int, int, float]:
    """(onset index, minimum index, total drop) of the smoothed loss."""
    fit = curve.fit
    i_min = int(np.argmin(fit))
    # the reference level is the plateau before the descent: the start of the curve
    top = float(np.max(fit[: i_min + 1]))
    drop = top - float(fit[i_min])
    if i_min == 0 or drop <= 0:
        raise CurveError(
            "the loss never decreased: end_lr too low, start_lr too high, or too few updates"
        )
    i_top = int(np.argmax(fit[: i_min + 1]))
    below = np.flatnonzero(fit[i_top : i_min + 1] <= top - 0.1 * drop)
    onset = i_top + int(below[0]) if below.size else i_top
    return onset, i_min, drop


def steepest(lrs: np.ndarray, losses: np.ndarray, bandwidth: float | None = None) -> RuleOutput:
    """Steepest descent of the zero-lag smoothed loss in log(LR), before the minimum.

    The slope is taken per decade (not per unit LR, the mistake that puts Lightning
    >= 2.5.3 three to four decades low), and points after the minimum (where the
    divergence spike has the steepest slopes of all) are excluded.
    """
    curve = prepare(lrs, losses, bandwidth)
    onset, i_min, _ = _descent(curve)
    lo = max(0, onset - 1)
    grad = np.gradient(curve.fit, curve.x)
    idx = lo + int(np.argmin(grad[lo : i_min + 1]))
    return RuleOutput(
        float(curve.lrs[idx]), None, idx, "steepest slope of the smoothed loss per decade"
    )


def smith_loss(lrs: np.ndarray, losses: np.ndarray, bandwidth: float | None = None) -> RuleOutput:
    """Smith's bounds read off the loss: base where it starts to fall, max where it stops.

    "Cyclical Learning Rates for Training Neural Networks" (2017, section 3.3) reads
    accuracy; on the loss the same reading is the onset of the descent (10% of the total
    drop) and the minimum of the smoothed curve.
    """
    curve = prepare(lrs, losses, bandwidth)
    onset, i_min, _ = _descent(curve)
    return RuleOutput(
        float(curve.lrs[i_min]),
        float(curve.lrs[onset]),
        i_min,
        "Smith (loss): base where the loss starts falling, max at its minimum",
    )


def smith_accuracy(
    lrs: np.ndarray, accuracy: np.ndarray, bandwidth: float | None = None
) -> RuleOutput:
    """Smith's accuracy rule: base where accuracy starts to rise, max where it stops rising.

    Smith (2017, section 3.3): "note the learning rate value when the accuracy starts to
    increase and when the accuracy slows, becomes ragged, or starts to fall". Onset is
    10% of the total rise; the stop is the maximum of the smoothed accuracy curve, or
    earlier where the accuracy turns ragged (`ragged_from`).
    """
    # Smoothing the negated accuracy turns the rule into `_descent` on a loss-like curve.
    curve = prepare(np.asarray(lrs), -np.asarray(accuracy, dtype=float), bandwidth)
    onset, i_max, rise = _descent(curve)
    ragged = ragged_from(curve.raw, onset, rise)
    stop = min(i_max, ragged) if ragged is not None and ragged > onset else i_max
    why = "turns ragged" if stop < i_max else "stops"
    return RuleOutput(
        float(curve.lrs[stop]),
        float(curve.lrs[onset]),
        stop,
        f"Smith (accuracy): base where accuracy starts rising, max where it {why}",
    )


RAGGED_WINDOW = 5
RAGGED_FACTOR = 3.0


def ragged_from(values: np.ndarray, onset: int, rise: float) -> int | None:
    """First index after ``onset`` where the curve turns ragged: its point-to-point
    jaggedness (the second difference, blind to a smooth rise's slope), as a median over
    `RAGGED_WINDOW` points, exceeds `RAGGED_FACTOR` times its level up to the onset and
    a twentieth of the curve's total ``rise``."""
    v = np.asarray(values, dtype=float)
    w = RAGGED_WINDOW
    if len(v) < 2 * w + 2:
        return None
    jag = np.abs(np.convolve(v, [1.0, -2.0, 1.0], mode="same"))
    jag[0], jag[-1] = jag[1], jag[-2]
    local = np.array([np.median(jag[max(0, i - w // 2) : i + w // 2 + 1]) for i in range(len(v))])
    base = float(np.median(jag[: max(onset + 1, 2 * w)]))
    if base <= 0:
        base = float(np.median(jag)) or 1e-12
    high = np.flatnonzero(local[onset + 1 :] > max(RAGGED_FACTOR * base, 0.05 * rise))
    return onset + 1 + int(high[0]) if high.size else None


class DivergenceTest:
    """The sweep's stopping test, fed one finite loss at a time (pure: no torch, no sweep).

    The loss is smoothed by a debiased EMA (``beta``, fastai's 0.98). The starting level
    is the median of the first points, the noise the robust spread of point-to-point
    differences; the sweep has diverged once the smoothed loss rises above
    ``best + factor * max(start - best, 5 * noise)``, judged from the ``warm``-th point on.
    """

    SKIP = 3  # smoothed values too young to be the best level
    NOISE_POINTS = 20  # raw losses the batch-to-batch noise is estimated from

    def __init__(
        self,
        num_updates: int,
        beta: float = 0.98,
        factor: float = 1.0,
        initial: float | None = None,
    ) -> None:
        self.beta, self.factor, self.initial = beta, factor, initial
        self.warm = max(5, num_updates // 10)
        self.losses: list[float] = []
        self.fired = False
        self._avg = 0.0
        self._best = math.inf
        self._noise = 0.0
        self._start = math.inf

    def update(self, loss: float) -> float:
        """Record a finite loss; returns its smoothed value and sets `fired` on divergence."""
        self.losses.append(loss)
        self._avg = self.beta * self._avg + (1 - self.beta) * loss
        n = len(self.losses)
        smooth = self._avg / (1 - self.beta**n)
        # The first smoothed values average one or two raw losses: too noisy to be the
        # best level (the minimum of noisy values is biased low), so they do not count.
        if n > self.SKIP:
            self._best = min(self._best, smooth)
        if n <= max(self.warm, self.NOISE_POINTS):
            self._noise = _noise_scale(self.losses)
            early = sorted([*([self.initial] if self.initial is not None else []), *self.losses])
            self._start = early[len(early) // 2]  # the starting level: a median, not one sample
        spread = max(self._start - self._best, 5 * self._noise, 1e-12 * max(1.0, abs(self._start)))
        if n >= self.warm and smooth > self._best + self.factor * spread:
            self.fired = True
        return smooth


def _noise_scale(values: list[float]) -> float:
    """Robust standard deviation of point-to-point noise (MAD of first differences / sqrt 2)."""
    if len(values) < 3:
        return 0.0
    diffs = sorted(abs(b - a) for a, b in itertools.pairwise(values))
    return diffs[len(diffs) // 2] / 0.6745 / math.sqrt(2)


def lrlab_rule(
    lrs: np.ndarray, losses: np.ndarray, bandwidth: float | None = None, multiple: float = 1.4
) -> RuleOutput:
    """lrlab's default: ``multiple`` x the LR at the zero-lag smoothed loss minimum.

    The minimum of a zero-lag smoothed curve is the sweep's most stable feature (the
    steepest point moves with noise and smoothing lag, and where the sweep stops depends
    on whether the loss explodes or only climbs back to chance). A 1cycle run tolerates a
    little more than the short sweep's minimum because it warms up to its peak. The
    suggestion is floored at the onset of the descent. ``multiple`` is calibrated by
    ``benchmarks/calibrate_finder.py``: over eight task/optimizer combinations and eight
    seeds each it lost 0.4 points (AdamW) and 1.6 points (SGD) to the best LR of a grid on
    average, never more than 5 on any seed, where the rules that read SGD's bound off the
    divergence point lost up to 72 on the seeds they were not tuned on.
    """
    curve = prepare(lrs, losses, bandwidth)
    onset, i_min, _ = _descent(curve)
    floor = float(curve.lrs[onset])
    lr = max(multiple * float(curve.lrs[i_min]), floor)
    idx = int(np.searchsorted(curve.lrs, lr))
    return RuleOutput(
        lr,
        floor,
        min(idx, len(curve.lrs) - 1),
        f"{multiple:g} x the LR at the smoothed loss minimum",
    )


def decades(a: float, b: float) -> float:
    """Signed distance from ``b`` to ``a`` in decades (log10 a/b)."""
    return math.log10(a / b)
