"""Pure learning-rate and momentum schedules: ``step -> value``, no torch.

Every schedule is an immutable object: ``value(step)`` (or ``schedule(step)``) for the
0-indexed optimizer update, a declared ``length``, a past-the-end policy ``after_end``,
``to_dict()``/``Schedule.from_dict()``, ``describe()`` and ``sample(n)``. The driver in
``lrlab.optim`` writes these values into an optimizer; this package can be used, plotted
(``lrlab.schedules.plot``) and tested without torch.

>>> from lrlab.schedules import one_cycle, cyclical_momentum
>>> lr = one_cycle(max_lr=0.4, total=1000)
>>> momentum = cyclical_momentum(lr)
>>> round(lr(430), 4), round(momentum(430), 4)
(0.4, 0.85)
"""

from lrlab.schedules._base import AFTER_END, Phase, Schedule
from lrlab.schedules._combinators import (
    Clip,
    Join,
    Mirror,
    Multiply,
    Repeat,
    Scale,
    Shift,
    clip,
    cyclical_momentum,
    join,
    mirror,
    multiply,
    repeat,
    scale,
    shift,
)
from lrlab.schedules._cyclical import (
    MIN_AMPLITUDE,
    SGDR,
    ExpRange,
    Triangular,
    Triangular2,
    clr_step_size,
    exp_range,
    sgdr,
    triangular,
    triangular2,
)
from lrlab.schedules._decay import (
    Constant,
    Cosine,
    Exponential,
    Linear,
    MultiStep,
    Polynomial,
    Step,
    constant,
    cosine,
    exponential,
    linear,
    multistep,
    polynomial,
    step,
)
from lrlab.schedules._one_cycle import (
    OneCycle,
    OneCycleFastai,
    OneCycleTorch,
    one_cycle,
    one_cycle_fastai,
    one_cycle_torch,
)
from lrlab.schedules._registry import (
    BOUNDS_READINGS,
    BoundsReading,
    bound_fields,
    bounds_reading,
    is_cyclical,
    registered_kinds,
    schedule_class,
    total_optional,
    with_total,
)
from lrlab.schedules._spec import parse, spec_to_dict
from lrlab.schedules._warmup import Warmup, WarmupStableDecay, warmup, warmup_stable_decay

__all__ = [
    "AFTER_END",
    "BOUNDS_READINGS",
    "MIN_AMPLITUDE",
    "SGDR",
    "BoundsReading",
    "Clip",
    "Constant",
    "Cosine",
    "ExpRange",
    "Exponential",
    "Join",
    "Linear",
    "Mirror",
    "MultiStep",
    "Multiply",
    "OneCycle",
    "OneCycleFastai",
    "OneCycleTorch",
    "Phase",
    "Polynomial",
    "Repeat",
    "Scale",
    "Schedule",
    "Shift",
    "Step",
    "Triangular",
    "Triangular2",
    "Warmup",
    "WarmupStableDecay",
    "bound_fields",
    "bounds_reading",
    "clip",
    "clr_step_size",
    "constant",
    "cosine",
    "cyclical_momentum",
    "exp_range",
    "exponential",
    "is_cyclical",
    "join",
    "linear",
    "mirror",
    "multiply",
    "multistep",
    "one_cycle",
    "one_cycle_fastai",
    "one_cycle_torch",
    "parse",
    "polynomial",
    "registered_kinds",
    "repeat",
    "scale",
    "schedule_class",
    "sgdr",
    "shift",
    "spec_to_dict",
    "step",
    "total_optional",
    "triangular",
    "triangular2",
    "warmup",
    "warmup_stable_decay",
    "with_total",
]
