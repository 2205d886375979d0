"""What a study does with a range-test pick that is not confident (``on_low_confidence``).

* ``"refine"`` (default): the range test runs a second, denser sweep when the first has
  no signal (within the tuning budget); a pick that is still not confident is used, with
  a `LowConfidenceWarning` and its reasons stored with the trial's bounds.
* ``"error"``: as ``"refine"``, then a pick that is still not confident stops the arm
  with a message saying why and how to go on.
* ``"use"``: no second sweep; the pick is used as it is (warned and stored).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from lrlab.rangetest import Bounds, LowConfidenceWarning, RangeTestResult

#: updates of the sweep and its refinement a trial may always spend, or TUNING_SHARE of
#: the trial's updates when that is more; the confirm step's runs (opt-in) come on top
#: (it checks the pick, so it must not shorten the sweep that reads it)
TUNING_FLOOR, TUNING_SHARE = 200, 0.1


def tuning_budget(total: int) -> int:
    """Updates of the sweep and its refinement in a trial of ``total`` updates.

    >>> tuning_budget(1080), tuning_budget(10_000)
    (200, 1000)
    """
    return max(TUNING_FLOOR, int(TUNING_SHARE * total))


def read_bounds(
    cfg: Any,
    arm: str,
    run_sweep: Callable[..., RangeTestResult],
    schedule: str,
    iters_per_epoch: int,
    total: int,
) -> tuple[RangeTestResult, Bounds]:
    """Sweep (``run_sweep(refine=..., refine_updates=...)``) and read the bounds ``cfg``
    (a `RangeTestConfig`) asks for, applying its ``on_low_confidence`` policy; the
    refinement gets what is left of `tuning_budget` of the trial's ``total`` updates."""
    # the refined sweep is as long as the first (what its reading was calibrated on), and
    # never past the budget
    left = min(max(cfg.num_updates, 50), max(0, tuning_budget(total) - cfg.num_updates))
    result = run_sweep(refine=cfg.on_low_confidence != "use", refine_updates=left)
    with warnings.catch_warnings():
        if cfg.on_low_confidence == "error":
            warnings.simplefilter("ignore", LowConfidenceWarning)
        b = result.bounds(
            schedule,
            rule=cfg.rule,
            iters_per_epoch=iters_per_epoch,
            epochs_per_step=cfg.epochs_per_step,
        )
    if cfg.on_low_confidence == "error" and not b.suggestion.confident:
        raise ValueError(
            f"arm {arm!r}: the range test's pick max_lr={b.max_lr:.3g} is not confident "
            f"({'; '.join(b.suggestion.warnings)}); give the arm fixed bounds, a longer "
            "sweep (range_test.num_updates), or range_test.on_low_confidence = 'use'"
        )
    return result, b
