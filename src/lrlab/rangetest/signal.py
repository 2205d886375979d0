"""Does a range-test curve carry a signal? And if not, where should a second sweep look?

A sweep can be silently wrong: a recurrent net whose training loss stays within its own
batch-to-batch noise for the whole sweep has a smoothed "minimum" that sits in that
noise, and every rule reads a learning rate off it. This module says when that happens
(pure numpy, hand-made curves test it) and what to do:

* the training loss has no signal when the sweep is too short (fewer than `MIN_POINTS`
  finite points), when it never fell, or when its smoothed descent is within `SNR` times
  the noise of that difference on the smoothed curve (the raw losses' spread around it,
  shrunk by the smoother's averaging at the two points; pure noise over ten independent
  stretches spans about three of those deviations) or within 1% of its level;
* the validation loss the sweep records (every few updates, on fixed batches, so with
  far less noise) is read when it fell clearly on a sweep of `MIN_POINTS` or more:
  `val_lr` is `VAL_MULTIPLE` x the LR where it first reached 90% of its total drop
  (and the drop is over 2% of its level: a loss at chance moves 1% while the output
  bias settles);
* when the training loss has no signal and the validation loss fell only at or after the
  point where the training loss rose (the blow-up, not learning), the reading is
  `ONSET_FRACTION` x that onset: the first LR at which the smoothed loss rose beyond its
  noise above where it started. A model on a plateau for the whole sweep (a deep net
  without normalisation, a GRU at chance) shows nothing else; the onset still bounds
  the LR from above, and 1cycle loses little a factor below its best and everything a
  factor above. The reading is flagged (`onset_note`);
* `refine_range` is where a second, denser sweep looks: from a decade below the first LR
  at which the training or validation loss moved beyond its noise up to three times
  where the first sweep stopped (two decades at least); a linear sweep is run again
  from its start to where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lrlab.rangetest.rules import CurveError, prepare

MIN_POINTS = 30  # finite points a curve needs to be read with confidence
SNR = 5.0  # the smoothed descent must exceed this many deviations of the smoothed curve
MIN_RELATIVE_DROP = 0.01  # ... and this fraction of the loss level
VAL_MIN_POINTS = 6
VAL_SNR = 4.0  # validation is on fixed batches: its noise is the drift between evaluations
VAL_MIN_RELATIVE_DROP = 0.02  # a loss at chance moves 1% as the output bias settles
VAL_BOTTOM = 0.9  # the bottom: the first point with 90% of the total drop
VAL_MULTIPLE = 1.4  # the default rule's multiple of the LR at the minimum
#: The no-signal reading's fraction of the onset of the blow-up, chosen on the held-out
#: families' no-signal sweeps (benchmarks/finder_heldout.py, in sample there): on the
#: 8-layer MLP without normalisation (best 0.17, onsets 0.7-1.3) the default loses 8.7
#: points, at the task's 8.4 noise floor, where fastai's rules on the same sweeps lose
#: 46-49; on the GRU at chance (best 0.14, onsets 0.10-0.14) it loses 6.3.
ONSET_FRACTION = 0.25
REFINE_DECADES = 2.0  # a refined exponential sweep spans at least this many decades
REFINE_PAST = 3.0  # ... and runs to this multiple of where the first one stopped
#: The default rule's multiple on a refined sweep: a denser sweep has trained longer by the
#: time it reaches each LR, so its minimum sits higher. Measured: refined picks at 1.4 x
#: were 0.9-3.6x the best grid LR (median 2x) on MNIST-1D, Fashion-MNIST, a GRU and a deep
#: MLP; 1cycle loses little a factor below its best and everything a factor above.
REFINED_MULTIPLE = 0.7


@dataclass(frozen=True)
class Signal:
    """What a curve supports: ``reasons`` (empty when the training loss has a signal), the
    LR range where anything moved, and the reading off the validation loss."""

    reasons: tuple[str, ...]
    moved_from: float | None  # first LR where the training or validation loss moved
    val_lr: float | None  # VAL_MULTIPLE x the LR at the validation minimum, if it fell clearly
    onset: float | None = None  # first LR where the smoothed training loss rose beyond noise

    @property
    def ok(self) -> bool:
        return not self.reasons


def _robust_sd(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return 0.0
    return float(np.median(np.abs(values - np.median(values))) / 0.6745)


def training_signal(
    lrs: np.ndarray, losses: np.ndarray
) -> tuple[list[str], float | None, float | None]:
    """(reasons the training loss has no signal, first LR where it moved beyond its
    noise, first LR where it rose beyond its noise above where it started)."""
    finite = np.isfinite(np.asarray(losses, dtype=float))
    n = int(np.argmin(finite)) if not finite.all() else len(finite)
    if n < 8:
        return [f"only {n} finite points: the sweep is too short to read"], None, None
    try:
        curve = prepare(lrs, losses)
    except CurveError as e:
        return [str(e)], None, None
    reasons = []
    if len(curve.raw) < MIN_POINTS:
        reasons.append(f"only {len(curve.raw)} points: too short a sweep to read with confidence")
    # the smoothed curve's own noise: the raw losses' spread around it, scaled by the
    # smoother's averaging (the norm of a row of the smoother matrix)
    raw_noise = _robust_sd(curve.raw - curve.fit)
    spread = raw_noise * np.sqrt((curve.smoother**2).sum(axis=1))  # larger at the ends
    fit = curve.fit
    i_min = int(np.argmin(fit))
    i_top = int(np.argmax(fit[: i_min + 1]))
    top = float(fit[i_top])
    drop = top - float(fit[i_min])
    noise = float(np.hypot(spread[i_top], spread[i_min]))
    level = max(abs(top), abs(float(fit[0])), 1e-12)
    if drop <= max(SNR * noise, MIN_RELATIVE_DROP * level):
        reasons.append(
            f"no signal: the loss fell by {drop:.3g}, within its own noise (raw losses "
            f"scatter by {raw_noise:.3g}; the smoothed curve by {noise:.3g})"
        )
    beyond = np.maximum(SNR * np.hypot(spread, spread[0]), MIN_RELATIVE_DROP * level)
    away = np.abs(fit - fit[0]) > beyond
    moved = float(curve.lrs[int(np.argmax(away))]) if away.any() else None
    up = fit - fit[0] > beyond
    onset = float(curve.lrs[int(np.argmax(up))]) if up.any() else None
    return reasons, moved, onset


def validation_reading(
    val_lrs: list[float] | None, val_losses: list[float] | None
) -> tuple[float | None, float | None]:
    """(VAL_MULTIPLE x the LR at the validation minimum when it fell clearly, first LR
    where the validation loss moved beyond its noise)."""
    if not val_lrs or not val_losses:
        return None, None
    v = np.asarray(val_losses, dtype=float)
    lr = np.asarray(val_lrs, dtype=float)
    finite = np.isfinite(v)
    n = int(np.argmin(finite)) if not finite.all() else len(v)
    v, lr = v[:n], lr[:n]
    if n < VAL_MIN_POINTS:
        return None, None
    noise = _robust_sd(np.diff(v)) / np.sqrt(2)
    level = max(abs(float(v[0])), 1e-12)
    threshold = max(VAL_SNR * noise, MIN_RELATIVE_DROP * level)
    away = np.abs(v - v[0]) > threshold
    moved = float(lr[int(np.argmax(away))]) if away.any() else None
    i_min = int(np.argmin(v))
    drop = float(v[0] - v[i_min])
    if i_min == 0 or drop <= max(threshold, VAL_MIN_RELATIVE_DROP * level):
        return None, moved
    # the bottom is where the loss first got within a tenth of the drop of its minimum:
    # a flat bottom's lowest point wanders over a decade on noise alone
    bottom = int(np.argmax(v <= v[0] - VAL_BOTTOM * drop))
    return VAL_MULTIPLE * float(lr[bottom]), moved


def check_signal(
    lrs: list[float],
    losses: list[float],
    val_lrs: list[float] | None = None,
    val_losses: list[float] | None = None,
) -> Signal:
    """The training curve's signal, the validation reading and where anything moved."""
    reasons, moved, onset = training_signal(
        np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    )
    val_lr, val_moved = validation_reading(val_lrs, val_losses)
    if int(np.isfinite(np.asarray(losses, dtype=float)).sum()) < MIN_POINTS:
        # on a sweep this short the model barely trains at any LR, and the validation
        # minimum sits decades late (digits/MLP at 20 updates: 0.76 where 0.11 is right)
        val_lr = None
    starts = [m for m in (moved, val_moved) if m is not None]
    return Signal(tuple(reasons), min(starts) if starts else None, val_lr, onset)


def onset_note(signal: Signal) -> str:
    """Why a no-signal pick was read at the onset of the blow-up (its warning)."""
    return (
        f"{signal.reasons[0]}; read at {ONSET_FRACTION:g} x where the loss began to rise "
        f"({signal.onset:.3g}): the loss never left its starting plateau, so only a few "
        "training runs around this LR can confirm it"
    )


def refine_range(
    signal: Signal,
    lrs: list[float],
    losses: list[float],
    *,
    mode: str,
    start_lr: float,
    end_lr: float,
) -> tuple[float, float]:
    """Where a second sweep looks: from a decade below where anything moved to
    `REFINE_PAST` x where the first sweep stopped (at most end_lr)."""
    finite = [lr for lr, v in zip(lrs, losses) if np.isfinite(v)]
    hi = finite[-1] if finite and len(finite) < len(lrs) else (lrs[-1] if lrs else end_lr)
    if len(lrs) and len(finite) == len(lrs) and lrs[-1] >= end_lr * 0.999:
        hi = end_lr
    hi = max(hi, start_lr * 10)
    if mode == "linear":  # evenly spaced: the whole window up to the stop, densely
        return start_lr, min(hi, end_lr)
    # the denser sweep trains longer below that point and may hold on past it
    hi = min(hi * REFINE_PAST, end_lr)
    lo = signal.moved_from / 10 if signal.moved_from is not None else hi / 10**4
    lo = min(lo, hi / 10**REFINE_DECADES)
    return max(lo, start_lr), hi
