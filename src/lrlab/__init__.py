"""lrlab: disciplined learning-rate work for PyTorch.

The layers (imports point down only): ``schedules`` (pure math, no torch),
``optim`` (the driver that writes scheduled values into an optimizer), and the
command line in ``lrlab.cli``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
