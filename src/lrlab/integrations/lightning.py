"""`LRLabSchedule`: an lrlab schedule (and optionally its range test) as a Lightning callback.

::

    import pytorch_lightning as pl
    from lrlab.integrations.lightning import LRLabSchedule

    trainer = pl.Trainer(max_epochs=10, callbacks=[
        LRLabSchedule("one_cycle", momentum="cyclical", range_test=True),
    ])
    trainer.fit(module)          # configure_optimizers returns only the optimizer

When training starts (after Lightning restored a checkpoint, before the first batch) the
callback runs lrlab's range test on the module's own ``training_step`` and train
dataloader if asked, builds the schedule for ``trainer.estimated_stepping_batches``
updates and attaches lrlab's driver to the optimizer. The driver counts real optimizer
updates, so gradient accumulation and AMP-skipped steps never move the schedule, and it
writes LR and momentum before every update (``LearningRateMonitor`` logs them).

Its state (the schedules, the range test's bounds, the update count) goes into
Lightning's checkpoints through ``state_dict``; ``trainer.fit(..., ckpt_path=...)``
continues the same schedules without repeating the range test, also from a mid-epoch
checkpoint. When training ends before the schedule did (skipped AMP steps that Lightning
counts toward ``max_steps``, early stopping, a ``max_steps`` shorter than the schedule)
it warns with a `ScheduleNotFinishedWarning` on rank zero.

Lightning's own ``Tuner.lr_find`` / ``LearningRateFinder`` run at fit start, before this
callback attaches, so they sweep with the optimizer's own momentum; a finder run later
in training (Lightning's ``milestones`` example) finds lrlab's driver suspended while it
sweeps and restored afterwards. Returning ``HyperparamScheduler(...).as_torch_scheduler()``
from ``configure_optimizers`` instead also drives LR and momentum exactly, but its hook is
active inside ``lr_find``.

Both packages are supported: ``pytorch_lightning`` (what ``lrlab[lightning]`` installs)
and ``lightning.pytorch``; the one already imported is used, else ``pytorch_lightning``.
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

from lrlab.integrations._plan import (
    Plan,
    ScheduleNotFinishedWarning,
    loss_of,
    warn,
)
from lrlab.integrations._request import GroupsArg, Request, ScheduleArg, read_bounds
from lrlab.optim import HyperparamScheduler, inner_optimizer
from lrlab.optim._driver_args import first_difference
from lrlab.rangetest import RangeTestResult

if TYPE_CHECKING:
    import pytorch_lightning as pl
else:

    def _lightning() -> Any:
        if "lightning.pytorch" in sys.modules and "pytorch_lightning" not in sys.modules:
            return sys.modules["lightning.pytorch"]
        for name in ("pytorch_lightning", "lightning.pytorch"):
            try:
                return importlib.import_module(name)
            except ImportError:
                continue
        raise ImportError(
            'lrlab.integrations.lightning needs Lightning: pip install "lrlab[lightning]"'
        )

    pl = _lightning()

__all__ = ["LRLabSchedule", "ScheduleNotFinishedWarning"]

LossFn = Callable[[Any, Any], torch.Tensor]


class LRLabSchedule(pl.Callback):
    """Drive LR / momentum / weight decay from lrlab schedules in a Lightning fit.

    Args:
        lr: a `Schedule`, a spec string (``"one_cycle(max_lr=0.4)"``; ``total`` and counts
            in epochs are filled from the run), a bare family name whose bounds the range
            test reads (``"one_cycle"``, ``"triangular"``), or a number.
        momentum: ``"cyclical"`` (Smith's 0.95 -> 0.85 -> 0.95 mirrored on the LR), a dict
            ``{"low": ..., "high": ...}``, a schedule or spec, or a number; written to
            ``momentum`` (SGD) or ``betas[0]`` (Adam family).
        weight_decay: a schedule, spec or number.
        groups: per-param-group settings, as `HyperparamScheduler`'s ``groups``.
        range_test: True, or a dict of `lrlab.rangetest.range_test` options (``start_lr``,
            ``end_lr``, ``num_updates``, ``mode``...) and of the reading (``rule``,
            ``schedule``: ``"one_cycle"`` / ``"clr"`` / ``"constant"``); runs on the
            module's ``training_step`` and the trainer's train dataloader before the first
            update and fills the LR bounds the spec left open.
        total: the schedule's length in updates; default ``trainer.estimated_stepping_batches``.
        loss: ``loss(module, batch) -> tensor`` for the range test instead of
            ``training_step`` (needed with manual optimization).
        data: batches for the range test instead of the train dataloader.

    Attributes:
        plan: the schedules in use (``plan.lr``, ``plan.momentum``), set at train start.
        driver: the `HyperparamScheduler` writing them (``driver.step_count``).
        range_test_result: the range test's `RangeTestResult`, when one ran.
        unfinished: the end-of-training message when the schedule did not finish, else None.

    Example:
        >>> cb = LRLabSchedule("one_cycle", momentum="cyclical", range_test={"num_updates": 50})
        >>> cb
        LRLabSchedule(lr=one_cycle(...), momentum=cyclical, range_test={'num_updates': 50})
        >>> LRLabSchedule("one_cycle")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: lr=one_cycle(...) leaves max_lr open: give it or pass range_test=True ...
    """

    def __init__(
        self,
        lr: ScheduleArg | None = None,
        momentum: ScheduleArg | None = None,
        weight_decay: ScheduleArg | None = None,
        *,
        groups: GroupsArg = None,
        range_test: bool | Mapping[str, Any] = False,
        total: int | None = None,
        loss: LossFn | None = None,
        data: Iterable[Any] | None = None,
    ) -> None:
        self.request = Request.make(lr, momentum, weight_decay, groups, range_test, total)
        if self.request.empty:
            raise ValueError("LRLabSchedule needs at least one of lr=, momentum=, weight_decay=")
        self.loss = loss
        self.data = data
        self.plan: Plan | None = None
        self.driver: HyperparamScheduler | None = None
        self.range_test_result: RangeTestResult | None = None
        self.unfinished: str | None = None
        self._pending: dict[str, Any] | None = None
        self._trainer: pl.Trainer | None = None
        self._guard: Any = None
        self._suspended: dict[str, Any] | None = None

    def __repr__(self) -> str:
        r = self.request
        parts = []
        for name in ("lr", "momentum", "weight_decay"):
            value = getattr(r, name)
            if isinstance(value, dict):
                value = f"{value['kind']}(...)" if "kind" in value else f"cyclical{value}"
            elif value is not None and not isinstance(value, str):
                value = value.to_spec()
            if value is not None:
                parts.append(f"{name}={value}")
        parts.append(f"range_test={r.range_test if r.range_test is not None else 'off'}")
        return f"LRLabSchedule({', '.join(parts)})"

    # ------------------------------------------------------------------ training
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizer = self._optimizer(trainer)
        self._trainer = trainer
        if self._pending is not None:
            state, self._pending = self._pending, None
            self._resume(optimizer, state)
        else:
            self._start(trainer, pl_module, optimizer)
        self._guard = optimizer.register_step_pre_hook(self._check_tuner)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._suspended is not None:  # a tuner ended without restoring a checkpoint
            state, self._suspended = self._suspended, None
            self._resume(self._optimizer(trainer), state)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.plan is None or self.driver is None:
            return
        updates = self.driver.step_count
        reasons = []
        skipped = trainer.global_step - updates
        if skipped > 0:
            reasons.append(
                f"{skipped} optimizer steps were skipped (inf/NaN gradients under AMP) and "
                "Lightning counted them toward max_steps / the epoch's steps"
            )
        n = self.plan.length
        if trainer.max_steps != -1 and n is not None and trainer.max_steps < n:
            reasons.append(f"max_steps={trainer.max_steps} is shorter than the schedule")
        if trainer.should_stop:
            reasons.append("training was stopped early (trainer.should_stop, e.g. EarlyStopping)")
        self.unfinished = self.plan.end_message(updates, reasons)
        if self.unfinished is not None and trainer.is_global_zero:
            warn(f"LRLabSchedule: {self.unfinished}")

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._detach()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._detach()

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        if self.plan is None or self.driver is None:
            return {}
        return {
            "request": self.request.describe(),
            "plan": self.plan.to_state(),
            "driver": self.driver.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        if state_dict.get("request") != self.request.describe():
            diff = first_difference(state_dict.get("request"), self.request.describe(), "request")
            raise ValueError(
                f"the checkpoint was written by an LRLabSchedule with other arguments ({diff}); "
                "resume with the same arguments, or start a new run"
            )
        if self._guard is not None:
            # Lightning restores a checkpoint it wrote itself during this fit (the end of an
            # LR finder): continue at once, the optimizer is already the run's.
            self._suspended = None
            assert self._trainer is not None
            self._resume(self._optimizer(self._trainer), state_dict)
        else:
            self._pending = state_dict  # applied at train start, after the optimizer exists

    # ------------------------------------------------------------------ internals
    def _optimizer(self, trainer: pl.Trainer) -> torch.optim.Optimizer:
        configs = [c for c in trainer.lr_scheduler_configs if c.scheduler is not None]
        if configs:
            name = type(configs[0].scheduler).__name__
            raise ValueError(
                f"configure_optimizers returned a learning-rate scheduler ({name}) as well; "
                "LRLabSchedule writes the learning rate itself: return only the optimizer"
            )
        if len(trainer.optimizers) != 1:
            raise ValueError(
                f"LRLabSchedule drives one optimizer; configure_optimizers returned "
                f"{len(trainer.optimizers)}"
            )
        return inner_optimizer(trainer.optimizers[0])

    def _start(
        self, trainer: pl.Trainer, module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        estimated = trainer.estimated_stepping_batches
        total = self.request.total
        if total is None:
            if not math.isfinite(estimated):
                raise ValueError(
                    "LRLabSchedule needs the run's length: set max_steps or max_epochs on the "
                    "Trainer, or pass total= (updates)"
                )
            total = int(estimated)
        batches = trainer.num_training_batches
        ipe = (
            math.ceil(batches / trainer.accumulate_grad_batches) if math.isfinite(batches) else None
        )
        found = None
        if self.request.range_test is not None:
            data = self.data if self.data is not None else trainer.train_dataloader
            if data is None or isinstance(data, (Mapping, list, tuple)):
                raise ValueError(
                    "the range test needs one train dataloader; with several, pass data="
                )
            if self.loss is None and not module.automatic_optimization:
                raise ValueError(
                    "with manual optimization training_step steps the optimizer itself; "
                    "pass loss=lambda module, batch: ... for the range test"
                )
            scaler = getattr(trainer.precision_plugin, "scaler", None)
            step = _TrainingStep(trainer, module, self.loss)
            self.range_test_result, found = read_bounds(
                self.request, module, optimizer, data, step, scaler, ipe
            )
            found = trainer.strategy.broadcast(found, src=0)  # every rank trains with rank 0's
            if found["warnings"] and trainer.is_global_zero:
                warn(
                    f"LRLabSchedule: the range test's reading ({found['suggestion']:.3g}) is "
                    f"uncertain: {'; '.join(found['warnings'])}",
                    UserWarning,
                )
        self.plan = self.request.build(total, ipe, found)
        self.driver = self.plan.driver(optimizer, self.request.groups)
        message = self.plan.length_warning(estimated, "this fit (max_steps / max_epochs)")
        if message is not None and trainer.is_global_zero:
            warn(f"LRLabSchedule: {message}")

    def _resume(self, optimizer: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
        self._detach_driver()
        self.plan = Plan.from_state(state["plan"])
        self.driver = self.plan.driver(optimizer, self.request.groups)
        self.driver.load_state_dict(state["driver"])

    def _check_tuner(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        # Lightning's LR finder and batch-size finder replace trainer.callbacks with their
        # own while they run a trial fit; those updates must not move lrlab's schedule nor
        # get lrlab's momentum. The finder restores its checkpoint afterwards (-> resume).
        trainer = self._trainer
        if trainer is None or self.driver is None or self in getattr(trainer, "callbacks", [self]):
            return
        self._suspended = self.state_dict()
        self._detach_driver()

    def _detach_driver(self) -> None:
        if self.driver is not None:
            self.driver.remove()
            self.driver = None

    def _detach(self) -> None:
        self._suspended = None
        if self._guard is not None:
            self._guard.remove()
            self._guard = None
        if self.driver is not None:
            self.driver.remove()  # keep .driver for inspection; it no longer writes


class _TrainingStep:
    """One range-test step on the module's ``training_step`` as Lightning would run it."""

    def __init__(self, trainer: pl.Trainer, module: pl.LightningModule, loss: LossFn | None):
        self.trainer, self.module, self.loss = trainer, module, loss
        params = inspect.signature(module.training_step).parameters
        self.with_index = len(params) >= 2 or "batch_idx" in params
        self.index = 0

    def __call__(self, batch: Any) -> torch.Tensor:
        batch = self.trainer.strategy.batch_to_device(batch)
        with self.trainer.precision_plugin.forward_context(), _logging_off(self.module):
            if self.loss is not None:
                return loss_of(self.loss(self.module, batch), "loss")
            args = (batch, self.index) if self.with_index else (batch,)
            self.index += 1
            return loss_of(self.module.training_step(*args), "training_step")


def _no_log(*args: Any, **kwargs: Any) -> None:
    return None


@contextmanager
def _logging_off(module: pl.LightningModule) -> Iterator[None]:
    """``self.log`` in training_step is dropped during the sweep: outside Lightning's loop
    there is no result collection to take it, and the sweep's losses are not the run's."""
    names = ("log", "log_dict")
    own = {n: module.__dict__[n] for n in names if n in module.__dict__}
    for n in names:
        setattr(module, n, _no_log)
    try:
        yield
    finally:
        for n in names:
            if n in own:
                setattr(module, n, own[n])
            else:
                delattr(module, n)
