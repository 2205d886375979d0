"""`RangeTestResult`: the recorded curve, suggestions with their spread, bounds per schedule."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings as _warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.rangetest import rules as R
from lrlab.rangetest.signal import (
    ONSET_FRACTION,
    REFINED_MULTIPLE,
    VAL_MULTIPLE,
    Signal,
    check_signal,
    onset_note,
)
from lrlab.rangetest.table import RULES
from lrlab.schedules import BOUNDS_READINGS

#: the readings `RangeTestResult.bounds` gives (`lrlab.schedules.BoundsReading`)
SCHEDULES = BOUNDS_READINGS


class LowConfidenceWarning(UserWarning):
    """A range-test pick was used although it is flagged as not confident."""


@dataclass(frozen=True)
class Suggestion:
    """A suggested learning rate with where it came from and how much to trust it."""

    lr: float
    rule: str
    reason: str
    low: float | None = None
    interval: tuple[float, float] | None = None  # 10th-90th percentile over resampled curves
    warnings: tuple[str, ...] = ()

    @property
    def confident(self) -> bool:
        return not self.warnings

    @property
    def spread_decades(self) -> float | None:
        """Half the width of `interval` in decades."""
        if self.interval is None:
            return None
        return 0.5 * math.log10(self.interval[1] / self.interval[0])


@dataclass(frozen=True)
class Bounds:
    """Learning-rate bounds for a schedule family, as read off a range test."""

    schedule: str
    base_lr: float
    max_lr: float
    suggestion: Suggestion
    step_size: int | None = None


@dataclass
class RangeTestResult:
    """A range-test curve: ``losses[i]`` is the loss produced by update ``i`` at ``lrs[i]``."""

    mode: str
    start_lr: float
    end_lr: float
    num_updates: int
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    stop_reason: str
    updates: int
    initial_loss: float | None = None
    train_accuracy: list[float | None] | None = None
    val_lrs: list[float] | None = None
    val_losses: list[float] | None = None
    val_accuracy: list[float | None] | None = None
    group_scales: list[float] = field(default_factory=lambda: [1.0])
    skipped_steps: int = 0
    seconds: float = 0.0
    optimizer: str = ""
    #: the first sweep, when this curve is the denser sweep it was refined into
    coarse: dict[str, Any] | None = None

    @property
    def tuning_updates(self) -> int:
        """Optimizer updates spent on this reading: this sweep and the one it refined."""
        return self.updates + (int(self.coarse["updates"]) if self.coarse else 0)

    def signal(self) -> Signal:
        """Whether the training loss carries a signal, and the validation loss's reading
        (this sweep's, else the coarse sweep's it refined)."""
        own = check_signal(self.lrs, self.losses, self.val_lrs, self.val_losses)
        if own.val_lr is not None or not self.coarse:
            return own
        first = check_signal(
            self.coarse["lrs"],
            self.coarse["losses"],
            self.coarse.get("val_lrs"),
            self.coarse.get("val_losses"),
        )
        return dataclasses.replace(own, val_lr=first.val_lr)

    # ------------------------------------------------------------------ suggestions
    def suggest(self, rule: str = "lrlab", *, resamples: int = 200, seed: int = 0) -> Suggestion:
        """Read a learning rate off the curve with a named rule (see `RULES`).

        The spread comes from ``resamples`` wild-bootstrap curves (the smooth fit plus
        each point's own residual with a random sign, so the noisy divergence tail
        stays where it is). Resampling around a smoothed fit smooths twice, which
        shifts the resampled answers, so `interval` is the point estimate times the
        resamples' 10th and 90th percentiles relative to their median. Warnings flag a
        curve that cannot be trusted (no signal in the training loss, too short, never
        turned up, spread over 0.5 decades). With the default rule, a training loss
        without signal is read off the validation loss instead when that fell clearly
        before the training loss began to rise, else at `ONSET_FRACTION` of where it
        began to rise (flagged).

        Raises:
            ValueError: unknown rule, or a curve without the feature the rule needs.
        """
        fn, lrs, ys = self._rule(rule)
        signal = self.signal() if RULES[rule].reads == "loss" else None
        if rule == "lrlab" and signal is not None and not signal.ok:
            no_signal = _no_signal_reading(signal)
            if no_signal is not None:
                return no_signal
        if rule == "lrlab" and self.coarse:
            fn = _refined_rule
        try:
            out = fn(lrs, ys, self.num_updates)
        except R.CurveError as e:
            raise ValueError(f"rule {rule!r} found nothing on this curve: {e}") from None
        interval = (
            _bootstrap(fn, lrs, ys, resamples, seed, out.lr, self.num_updates)
            if resamples
            else None
        )
        found = self._warnings(interval, signal)
        return Suggestion(out.lr, rule, out.reason, out.low, interval, found)

    def bounds(
        self,
        schedule: str = "one_cycle",
        *,
        rule: str = "lrlab",
        iters_per_epoch: int | None = None,
        epochs_per_step: float = 4.0,
    ) -> Bounds:
        """Bounds for the schedule you will train with.

        * ``one_cycle``: ``max_lr`` = the suggestion, ``base_lr = max_lr / 10`` (Smith's
          solver files).
        * ``clr``: ``max_lr`` = the suggestion, ``base_lr`` the rule's own lower bound
          for Smith's rules (where loss or accuracy starts to move) and ``max_lr / 4``
          otherwise (Smith 2017: "1/3 or 1/4 of the maximum"); ``step_size`` from
          ``iters_per_epoch`` (4 epochs per half cycle by default) when given.
        * ``constant``: one LR, a third of the 1cycle maximum (a run that never anneals
          cannot sit as close to the edge of stability).

        A suggestion that is not confident is still returned, with a
        `LowConfidenceWarning` saying why (``warnings.simplefilter("error",
        LowConfidenceWarning)`` turns it into an exception).
        """
        if schedule not in SCHEDULES:
            raise ValueError(
                f"schedule={schedule!r} is invalid; expected one of {', '.join(SCHEDULES)}"
            )
        s = self.suggest(rule)
        if not s.confident:
            _warnings.warn(
                f"range test pick max_lr={s.lr:.3g} ({rule}) is not confident: "
                + "; ".join(s.warnings),
                LowConfidenceWarning,
                stacklevel=2,
            )
        if schedule == "one_cycle":
            return Bounds(schedule, s.lr / 10, s.lr, s)
        if schedule == "constant":
            return Bounds(schedule, s.lr / 3, s.lr / 3, s)
        step = None
        if iters_per_epoch is not None:
            from lrlab.schedules import clr_step_size

            step = clr_step_size(iters_per_epoch, epochs_per_step)
        low = s.low if RULES[rule].base_from_low and s.low is not None and s.low < s.lr else None
        return Bounds(schedule, low if low is not None else s.lr / 4, s.lr, s, step)

    def _rule(self, rule: str) -> tuple[Callable[..., R.RuleOutput], np.ndarray, np.ndarray]:
        if rule not in RULES:
            raise ValueError(f"rule={rule!r} is invalid; expected one of {', '.join(RULES)}")
        if RULES[rule].reads == "accuracy":
            acc_lrs, accs = self.accuracy_curve()
            if accs is None:
                raise ValueError(f"rule {rule!r} needs accuracy: pass val_data or loss_fn")
            return RULES[rule].fn, acc_lrs, accs
        return (
            RULES[rule].fn,
            np.asarray(self.lrs, dtype=float),
            np.asarray(self.losses, dtype=float),
        )

    def accuracy_curve(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(lrs, accuracy): validation accuracy when recorded, else training-batch accuracy."""
        if self.val_accuracy is not None and self.val_lrs is not None and len(self.val_lrs) >= 8:
            return np.asarray(self.val_lrs, dtype=float), np.asarray(self.val_accuracy, dtype=float)
        if self.train_accuracy is not None:
            return np.asarray(self.lrs, dtype=float), np.asarray(self.train_accuracy, dtype=float)
        return np.asarray(self.lrs, dtype=float), None

    def _warnings(
        self, interval: tuple[float, float] | None, signal: Signal | None
    ) -> tuple[str, ...]:
        out = list(signal.reasons) if signal is not None else []
        finite = [v for v in self.losses if math.isfinite(v)]
        if signal is None and len(finite) < 30:
            out.append(f"only {len(finite)} points; run a longer sweep for a reliable reading")
        if self.stop_reason == "completed" and len(finite) >= 8:
            fit = R.prepare(np.asarray(self.lrs), np.asarray(self.losses)).fit
            if int(np.argmin(fit)) >= len(fit) - 3:
                out.append(f"the loss was still falling at end_lr={self.end_lr:g}; raise end_lr")
        if self.stop_reason == "data exhausted":
            out.append("the data ran out before the sweep ended")
        if interval is not None and 0.5 * math.log10(interval[1] / interval[0]) > 0.5:
            out.append(
                f"resampled curves disagree: {interval[0]:.3g}..{interval[1]:.3g} "
                "(more than half a decade either way)"
            )
        return tuple(out)

    # ------------------------------------------------------------------ output
    def plot(
        self, path: str | Path, rules: tuple[str, ...] = ("lrlab", "steepest", "valley")
    ) -> Path:
        """Write a PNG: loss (raw and smoothed) and accuracy against LR, suggestions marked."""
        from lrlab.rangetest.plot import plot_range_test

        return plot_range_test(self, path, rules)

    def to_json(self) -> str:
        """JSON text (non-finite numbers become null) that `from_json` reads back."""
        return json.dumps(_finite(dataclasses.asdict(self)), indent=1)

    @classmethod
    def from_json(cls, text: str) -> RangeTestResult:
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(
                f"not a RangeTestResult: unknown field(s) {', '.join(sorted(unknown))}"
            )
        if data.get("coarse") is not None:
            for key in ("losses", "smoothed"):
                data["coarse"][key] = [math.nan if v is None else v for v in data["coarse"][key]]
        for key in ("losses", "smoothed"):
            data[key] = [math.nan if v is None else v for v in data[key]]
        return cls(**data)


def _refined_rule(lrs: np.ndarray, losses: np.ndarray, num_updates: int) -> R.RuleOutput:
    """The default rule on a refined sweep (`REFINED_MULTIPLE` in place of 1.4)."""
    return R.lrlab_rule(lrs, losses, multiple=REFINED_MULTIPLE)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _bootstrap(
    fn: Callable[..., R.RuleOutput],
    lrs: np.ndarray,
    ys: np.ndarray,
    n: int,
    seed: int,
    point: float,
    num_updates: int,
) -> tuple[float, float] | None:
    """The rule's 10th-90th percentile spread over resampled curves, centred on ``point``."""
    try:
        curve = R.prepare(lrs, ys)
    except R.CurveError:
        return None
    residuals = curve.raw - curve.fit
    rng = np.random.default_rng(seed)
    picks = []
    for _ in range(n):
        signs = rng.choice((-1.0, 1.0), size=len(residuals))
        try:
            picks.append(fn(curve.lrs, curve.fit + signs * residuals, num_updates).lr)
        except R.CurveError:
            continue
    if len(picks) < n // 2:
        return None
    lo, mid, hi = np.percentile(np.log10(picks), [10, 50, 90])
    return float(point * 10 ** (lo - mid)), float(point * 10 ** (hi - mid))


def _no_signal_reading(signal: Signal) -> Suggestion | None:
    """The default rule's reading of a curve whose training loss has no signal: the
    validation loss's, when it fell clearly before the training loss began to rise
    (afterwards it is the blow-up, not learning); else `ONSET_FRACTION` x that onset,
    flagged; None when the curve has neither."""
    onset = signal.onset
    if signal.val_lr and (onset is None or signal.val_lr / VAL_MULTIPLE < onset):
        reason = (
            f"{VAL_MULTIPLE:g} x the LR at the validation loss's minimum; the training "
            f"loss had no signal ({signal.reasons[0]})"
        )
        return Suggestion(signal.val_lr, "lrlab", reason, None, None, ())
    if onset is None:
        return None
    reason = f"{ONSET_FRACTION:g} x the LR where the loss began to rise; it had no signal"
    return Suggestion(ONSET_FRACTION * onset, "lrlab", reason, None, None, (onset_note(signal),))
