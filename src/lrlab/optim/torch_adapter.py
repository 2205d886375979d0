"""`HyperparamScheduler` behind PyTorch's ``LRScheduler`` interface.

Lightning (``{"scheduler": ..., "interval": "step"}``) and the Hugging Face Trainer
(``optimizers=(opt, scheduler)``) accept any ``LRScheduler``; they call ``step()`` after
each optimizer update and save ``state_dict()``. The adapter forwards those calls to the
driver, which keeps counting real optimizer updates itself.
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
    """

    def __init__(self, driver: HyperparamScheduler) -> None:
        self.driver = driver
        self._ready = False
        super().__init__(driver.optimizer)
        self._ready = True

    def get_lr(self) -> list[float]:  # type: ignore[override]
        return [float(g["lr"]) for g in self.optimizer.param_groups]

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
