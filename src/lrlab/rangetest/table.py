"""The rule table: every suggestion rule by name, with what it reads and how bounds use it.

`RangeTestResult.suggest`, ``lrlab find``, study configs and the benchmarks all read
rules from here, so a rule added to the table is available everywhere at once.

>>> RULES["lrlab"].reads, RULES["smith_accuracy"].reads, RULES["smith_loss"].base_from_low
('loss', 'accuracy', True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from lrlab.rangetest import rules as R

#: ``fn(lrs, values, num_updates)``: the curve (loss or accuracy) and the sweep's length.
RuleFn = Callable[[np.ndarray, np.ndarray, int], R.RuleOutput]


class Rule(NamedTuple):
    """A suggestion rule: its function, a one-line description and what it reads."""

    fn: RuleFn
    description: str
    reads: str = "loss"  # "loss" or "accuracy"
    base_from_low: bool = False  # CLR's base_lr is the rule's own lower bound (Smith)


RULES: dict[str, Rule] = {
    "lrlab": Rule(
        lambda a, b, n: R.lrlab_rule(a, b), "1.4 x the LR at the zero-lag smoothed loss minimum"
    ),
    "steepest": Rule(
        lambda a, b, n: R.steepest(a, b),
        "steepest descent of the smoothed loss per decade, before the minimum",
    ),
    "smith_loss": Rule(
        lambda a, b, n: R.smith_loss(a, b),
        "Smith: base where the loss starts to fall, max where it stops",
        base_from_low=True,
    ),
    "smith_accuracy": Rule(
        lambda a, b, n: R.smith_accuracy(a, b),
        "Smith: base where accuracy starts to rise, max where it stops or turns ragged",
        reads="accuracy",
        base_from_low=True,
    ),
    "valley": Rule(R.fastai_valley, "fastai valley"),
    "slide": Rule(lambda a, b, n: R.fastai_slide(a, b, n), "fastai slide"),
    "minimum": Rule(R.fastai_minimum, "fastai minimum / 10"),
    "steep": Rule(R.fastai_steep, "fastai steep"),
}
