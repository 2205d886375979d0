"""The LR range test: a sweep that records the loss, and rules that read bounds off it.

>>> from lrlab.rangetest import RULES
>>> "lrlab" in RULES and "valley" in RULES
True
"""

from lrlab.rangetest.confirm import ConfirmResult, confirm
from lrlab.rangetest.hyper import HyperTestResult, hyper_test, momentum_test, weight_decay_test
from lrlab.rangetest.result import (
    SCHEDULES,
    Bounds,
    LowConfidenceWarning,
    RangeTestResult,
    Suggestion,
)
from lrlab.rangetest.sweep import ladder, range_test
from lrlab.rangetest.table import RULES, Rule

__all__ = [
    "RULES",
    "SCHEDULES",
    "Bounds",
    "ConfirmResult",
    "HyperTestResult",
    "LowConfidenceWarning",
    "RangeTestResult",
    "Rule",
    "Suggestion",
    "confirm",
    "hyper_test",
    "ladder",
    "momentum_test",
    "range_test",
    "weight_decay_test",
]
