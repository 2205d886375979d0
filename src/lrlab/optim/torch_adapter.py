"""`HyperparamScheduler` behind PyTorch's ``LRScheduler`` interface.

Lightning (``{"scheduler": ..., "interval": "step"}``) and the Hugging Face Trainer
(``optimizers=(opt, scheduler)``) accept any ``LRScheduler``; they call ``step()`` after
each optimizer update and save ``state_dict()``. The adapter forwards those calls to the
driver, which keeps counting real optimizer updates itself.

Its ``optimizer`` is the torch optimizer the driver hooks, also when the driver was built
on a wrapper: accelerate pairs a scheduler with its ``AcceleratedOptimizer`` by comparing
``scheduler.optimizer`` with the wrapper's ``.optimizer``, and Lightning checks that it
is one of ``configure_optimizers``'s optimizers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch.optim.lr_scheduler import LRScheduler

if TYPE_CHECKING:
    from lrlab.optim.driver import HyperparamScheduler


class TorchSchedulerAdapter(LRScheduler):
    """An ``LRScheduler`` whose values come from a `HyperparamScheduler`.

    ``step()`` advances the driver only when the driver was built with ``auto=False``;
    with the default optimizer hook it just reports the values already in place, so a
    framework stepping the scheduler cannot double-count, and no order warning is raised.
    ``get_last_lr()`` reads the param groups, so it is current however seldom the
    framework calls ``step()`` (Lightning's ``interval="epoch"``).

    >>> import torch
    >>> from lrlab.optim import HyperparamScheduler
    >>> from lrlab.schedules import linear
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=1.0)
    >>> adapter = HyperparamScheduler(opt, lr=linear(0.1, 0.0, total=11)).as_torch_scheduler()
    >>> opt.param_groups[0]["params"][0].grad = torch.ones(1)
    >>> opt.step(); opt.step()      # two updates, no adapter.step() in between
    >>> [round(v, 6) for v in adapter.get_last_lr()]
    [0.08]
    """

    def __init__(self, driver: HyperparamScheduler) -> None:
        self.driver = driver
        self._ready = False
        super().__init__(driver.optimizer)
        self._ready = True

    def get_lr(self) -> list[float]:  # type: ignore[override]
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:  # type: ignore[override]
        """The learning rates in effect: what the param groups (the driver) hold now."""
        return self.get_lr()

    def step(self, epoch: int | None = None) -> None:
        if epoch is not None:
            raise ValueError(
                "step(epoch) is not supported: lrlab counts optimizer updates; "
                "call step() with no argument"
            )
        if self._ready:
            self.driver.step()
        self._step_count += 1
        self.last_epoch = self.driver.step_count
        self._last_lr = self.get_lr()  # type: ignore[assignment]

    def state_dict(self) -> dict[str, Any]:
        return self.driver.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.driver.load_state_dict(state_dict)
        self.last_epoch = self.driver.step_count
        self._last_lr = self.get_lr()  # type: ignore[assignment]
