"""lrlab: disciplined learning-rate work for PyTorch.

The layers (imports point down only): ``schedules`` (pure math, no torch), ``optim``
(the driver that writes scheduled values into an optimizer), ``rangetest``, ``tasks``
(the `Task` contract), ``study`` and ``report``, and the command line in ``lrlab.cli``.

``lrlab.Task`` and ``lrlab.Metric`` are loaded on first use, so ``import lrlab.schedules``
stays free of torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Metric", "Task", "__version__"]

_LAZY = {"Task": "lrlab.tasks.task", "Metric": "lrlab.tasks.metrics"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lrlab' has no attribute {name!r}")
