"""Torch glue: the hyper-parameter driver, param groups, layer-wise policies, LARS/LARC,
automatic layer rates, freezing plans and instrumentation."""

from lrlab.optim._steps import inner_optimizer
from lrlab.optim.auto_llr import AutoLLR
from lrlab.optim.driver import HyperparamScheduler, Multiplier
from lrlab.optim.freeze import FreezeEvent, FreezePlan, freeze, unfreeze
from lrlab.optim.groups import depth_count, is_no_decay, match_groups, param_groups
from lrlab.optim.instrument import GroupRecord, Instrument
from lrlab.optim.lars import LARC, LARS
from lrlab.optim.llr import combine, cyclical_layers, fixed, interpolate, override
from lrlab.optim.torch_adapter import TorchSchedulerAdapter

__all__ = [
    "LARC",
    "LARS",
    "AutoLLR",
    "FreezeEvent",
    "FreezePlan",
    "GroupRecord",
    "HyperparamScheduler",
    "Instrument",
    "Multiplier",
    "TorchSchedulerAdapter",
    "combine",
    "cyclical_layers",
    "depth_count",
    "fixed",
    "freeze",
    "inner_optimizer",
    "interpolate",
    "is_no_decay",
    "match_groups",
    "override",
    "param_groups",
    "unfreeze",
]
