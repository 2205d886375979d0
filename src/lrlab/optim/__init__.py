"""Torch glue: the hyper-parameter driver and its PyTorch ``LRScheduler`` adapter."""

from lrlab.optim.driver import HyperparamScheduler
from lrlab.optim.torch_adapter import TorchSchedulerAdapter

__all__ = ["HyperparamScheduler", "TorchSchedulerAdapter"]
