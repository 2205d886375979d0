"""lrlab schedules in the Hugging Face ``Trainer``: a ``TrainerCallback`` and scheduler builders.

The Trainer steps its own ``lr_scheduler`` after every update, so an lrlab schedule has to
be that scheduler. Two ways:

* ``build_scheduler(optimizer, num_training_steps, lr=..., momentum=...)`` when the
  schedule is known: pass it as ``Trainer(optimizers=(optimizer, scheduler))`` or return
  it from a ``create_scheduler`` override (which keeps the Trainer's own optimizer).
* ``LRLabSchedule(...)``, a ``TrainerCallback``, when the Trainer should decide the length
  (``state.max_steps``) or a range test should read the bounds first:
  ``callback.scheduler(optimizer)`` is the scheduler to hand the Trainer; the callback
  runs the range test on the model and train dataloader when training begins and then
  attaches the schedule. ``LRLabSchedule()`` without schedules only watches a scheduler
  made by ``build_scheduler``.

The schedule counts real optimizer updates (gradient accumulation and skipped fp16 steps
never move it). Its state lives in the scheduler's ``state_dict``, which the Trainer saves
as ``scheduler.pt``; ``trainer.train(resume_from_checkpoint=...)`` continues bit for bit
without repeating the range test. At the end of training the callback warns (a
`ScheduleNotFinishedWarning`, on the main process) when the schedule did not finish: skipped
steps that the Trainer counts toward ``max_steps``, ``EarlyStoppingCallback``, a
``max_steps`` shorter than the schedule.

Accelerate's ``AcceleratedOptimizer`` (what ``create_scheduler`` receives) is unwrapped to
the torch optimizer inside.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from lrlab.integrations._plan import (
    Plan,
    ScheduleNotFinishedWarning,
    loss_of,
    warn,
)
from lrlab.integrations._request import GroupsArg, Request, ScheduleArg, read_bounds
from lrlab.optim import HyperparamScheduler, TorchSchedulerAdapter, inner_optimizer
from lrlab.optim._driver_args import first_difference
from lrlab.rangetest import RangeTestResult

__all__ = ["LRLabSchedule", "LRLabScheduler", "ScheduleNotFinishedWarning", "build_scheduler"]

LossFn = Callable[[torch.nn.Module, Any], torch.Tensor]


def build_scheduler(
    optimizer: Any,
    num_training_steps: int,
    lr: ScheduleArg | None = None,
    momentum: ScheduleArg | None = None,
    weight_decay: ScheduleArg | None = None,
    *,
    groups: GroupsArg = None,
    iters_per_epoch: int | None = None,
) -> TorchSchedulerAdapter:
    """An lrlab schedule behind the ``LRScheduler`` interface the Trainer steps.

    Args:
        optimizer: a torch optimizer or a wrapper exposing one as ``.optimizer``.
        num_training_steps: optimizer updates in the run; fills the specs' ``total``.
        lr, momentum, weight_decay: as for `LRLabSchedule` (no range test here).
        groups: per-param-group settings, as `HyperparamScheduler`'s ``groups``.
        iters_per_epoch: updates per epoch, for counts written ``"2 epochs"``.

    Example:
        >>> import torch
        >>> opt = torch.optim.AdamW(torch.nn.Linear(2, 1).parameters(), lr=1e-3)
        >>> sched = build_scheduler(opt, 100, lr="one_cycle(max_lr=0.01)", momentum="cyclical")
        >>> sched.get_last_lr(), opt.param_groups[0]["betas"][0]
        ([0.001], 0.95)
    """
    request = Request.make(lr, momentum, weight_decay, groups, False, None)
    if request.empty:
        raise ValueError("build_scheduler needs at least one of lr=, momentum=, weight_decay=")
    plan = request.build(_steps("num_training_steps", num_training_steps), iters_per_epoch, None)
    adapter: TorchSchedulerAdapter = plan.driver(optimizer, groups).as_torch_scheduler()
    return adapter


def _steps(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid; expected an integer >= 1")
    return value


class LRLabScheduler(LRScheduler):
    """The Trainer's scheduler for an `LRLabSchedule` callback; it holds lrlab's driver.

    Made by ``LRLabSchedule.scheduler(optimizer)``. Until training begins it leaves the
    optimizer alone; the callback then builds the driver. ``step()`` only reports the
    values the driver already wrote (the driver counts updates itself).
    """

    def __init__(
        self, callback: LRLabSchedule, optimizer: Any, num_training_steps: int | None = None
    ) -> None:
        self.callback = callback
        self.num_training_steps = (
            None if num_training_steps is None else _steps("num_training_steps", num_training_steps)
        )
        self.plan: Plan | None = None
        self.driver: HyperparamScheduler | None = None
        self.pending: dict[str, Any] | None = None
        self._ready = False
        super().__init__(inner_optimizer(optimizer))
        self._ready = True

    def get_lr(self) -> list[float]:  # type: ignore[override]
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def step(self, epoch: int | None = None) -> None:
        if epoch is not None:
            raise ValueError("step(epoch) is not supported: lrlab counts optimizer updates")
        if self._ready and self.driver is None:
            raise RuntimeError(
                "this scheduler is driven by an LRLabSchedule callback that never ran: pass "
                "it to the Trainer too, Trainer(..., callbacks=[callback])"
            )
        self._step_count += 1
        self.refresh()

    def refresh(self) -> None:
        self.last_epoch = self.driver.step_count if self.driver is not None else 0
        self._last_lr = self.get_lr()  # type: ignore[assignment]

    def attach(self, plan: Plan, state: Mapping[str, Any] | None = None) -> None:
        if self.driver is not None:
            self.driver.remove()
        self.plan = plan
        self.driver = plan.driver(self.optimizer, self.callback.request.groups)
        if state is not None:
            self.driver.load_state_dict(state)
        self.refresh()

    def state_dict(self) -> dict[str, Any]:
        if self.plan is None or self.driver is None:
            return {}
        return {
            "request": self.callback.request.describe(),
            "plan": self.plan.to_state(),
            "driver": self.driver.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        mine = self.callback.request.describe()
        if state_dict.get("request") != mine:
            diff = first_difference(state_dict.get("request"), mine, "request")
            raise ValueError(
                f"the checkpoint was written by an LRLabSchedule with other arguments ({diff}); "
                "resume with the same arguments, or start a new run"
            )
        if self.driver is not None:
            self.attach(Plan.from_state(state_dict["plan"]), state_dict["driver"])
        else:
            self.pending = state_dict  # the callback attaches it when training begins


class LRLabSchedule(TrainerCallback):
    """Range test (optional), then an lrlab schedule, for the Hugging Face ``Trainer``.

    Args:
        lr, momentum, weight_decay, groups: as `lrlab.integrations.lightning.LRLabSchedule`:
            schedules, spec strings (``total`` filled from the run), bare family names whose
            bounds the range test reads, numbers; ``momentum="cyclical"`` for Smith's
            cyclical momentum (``betas[0]`` for AdamW). All None: watch a scheduler made by
            `build_scheduler` and warn when it does not finish.
        range_test: True, or a dict of `lrlab.rangetest.range_test` options and of the
            reading (``rule``, ``schedule``); runs on the Trainer's model and train
            dataloader (the loss is ``model(**batch)["loss"]``) when training begins.
        total: the schedule's length; default the scheduler's ``num_training_steps`` or the
            Trainer's ``max_steps``.
        loss: ``loss(model, batch) -> tensor`` for the range test (e.g. a custom
            ``compute_loss``).
        data: batches for the range test instead of the train dataloader.

    Example:
        >>> import torch
        >>> cb = LRLabSchedule("one_cycle", momentum="cyclical", range_test=True)
        >>> opt = torch.optim.AdamW(torch.nn.Linear(2, 1).parameters(), lr=1e-3)
        >>> sched = cb.scheduler(opt)  # Trainer(..., optimizers=(opt, sched), callbacks=[cb])
        >>> sched.driver is None  # built when training begins, after the range test
        True
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
        self.loss = loss
        self.data = data
        self.range_test_result: RangeTestResult | None = None
        self.unfinished: str | None = None
        self._scheduler: LRLabScheduler | None = None
        self._watched: Plan | None = None
        self._driver: HyperparamScheduler | None = None

    def scheduler(self, optimizer: Any, num_training_steps: int | None = None) -> LRLabScheduler:
        """The scheduler to hand the Trainer (``optimizers=(opt, sched)``, ``create_scheduler``)."""
        if self.request.empty:
            raise ValueError(
                "LRLabSchedule() without schedules only watches; give lr=/momentum= to build one"
            )
        self._scheduler = LRLabScheduler(self, optimizer, num_training_steps)
        return self._scheduler

    @property
    def plan(self) -> Plan | None:
        """The schedules in use, once training began."""
        return self._scheduler.plan if self._scheduler is not None else self._watched

    @property
    def driver(self) -> HyperparamScheduler | None:
        return self._scheduler.driver if self._scheduler is not None else self._driver

    # ------------------------------------------------------------------ events
    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        trainer_scheduler = getattr(kwargs.get("lr_scheduler"), "scheduler", None) or kwargs.get(
            "lr_scheduler"
        )
        if self.request.empty:
            self._watch(trainer_scheduler, state)
            return
        sched = self._scheduler
        wired = trainer_scheduler is sched  # (kept apart: an identity test with Any un-narrows)
        if sched is None or not wired:
            raise ValueError(
                f"the Trainer's scheduler is {type(trainer_scheduler).__name__}, not this "
                "callback's: pass Trainer(optimizers=(optimizer, callback.scheduler(optimizer))) "
                "or return callback.scheduler(optimizer, num_training_steps) from create_scheduler"
            )
        if sched.pending is not None:
            pending, sched.pending = sched.pending, None
            sched.attach(Plan.from_state(pending["plan"]), pending["driver"])
            return
        if sched.driver is not None:
            return  # a second train() on the same Trainer continues the same schedule
        total = self.request.total or sched.num_training_steps or state.max_steps
        ipe = _iters_per_epoch(kwargs.get("train_dataloader"), args)
        found = None
        if self.request.range_test is not None:  # an empty dict: the defaults
            found = self._range_test(kwargs, sched.optimizer, ipe)
        if found is not None and found["warnings"] and state.is_world_process_zero:
            warn(
                f"LRLabSchedule: the range test's reading ({found['suggestion']:.3g}) is "
                f"uncertain: {'; '.join(found['warnings'])}",
                UserWarning,
            )
        sched.attach(self.request.build(total, ipe, found))
        self._length_check(state)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        plan, driver = self.plan, self.driver
        if plan is None or driver is None:
            return
        updates = driver.step_count
        reasons = []
        skipped = state.global_step - updates
        if skipped > 0:
            reasons.append(
                f"{skipped} optimizer steps were skipped (inf/NaN gradients under fp16) and "
                "the Trainer counted them toward max_steps"
            )
        n = plan.length
        if n is not None and state.max_steps < n:
            reasons.append(f"max_steps={state.max_steps} is shorter than the schedule")
        if state.global_step < state.max_steps:
            reasons.append(
                f"the Trainer stopped at step {state.global_step} of {state.max_steps} "
                "(control.should_training_stop, e.g. EarlyStoppingCallback)"
            )
        self.unfinished = plan.end_message(updates, reasons)
        if self.unfinished is not None and state.is_world_process_zero:
            warn(f"LRLabSchedule: {self.unfinished}")

    # ------------------------------------------------------------------ internals
    def _watch(self, scheduler: Any, state: TrainerState) -> None:
        driver = getattr(scheduler, "driver", None)
        if not isinstance(driver, HyperparamScheduler):
            raise ValueError(
                f"LRLabSchedule() watches an lrlab scheduler, but the Trainer's is "
                f"{type(scheduler).__name__}: pass optimizers=(optimizer, build_scheduler(...))"
            )
        s = driver.schedules
        self._driver = driver
        self._watched = Plan(s["lr"], s["momentum"], s["weight_decay"], state.max_steps)
        self._length_check(state)

    def _length_check(self, state: TrainerState) -> None:
        plan = self.plan
        assert plan is not None
        message = plan.length_warning(state.max_steps, "the Trainer (max_steps)")
        if message is not None and state.is_world_process_zero:
            warn(f"LRLabSchedule: {message}")

    def _range_test(
        self, kwargs: Mapping[str, Any], optimizer: Optimizer, ipe: int | None
    ) -> dict[str, Any]:
        model = kwargs["model"]
        loader = kwargs.get("train_dataloader")
        # Accelerate's DataLoaderShard registers itself as the active dataloader until it is
        # exhausted; a sweep that stops early would leave it registered. Its base loader is
        # the same per-process shard without that bookkeeping.
        data = self.data if self.data is not None else getattr(loader, "base_dataloader", loader)
        if data is None:
            raise ValueError("the range test needs a train dataset on the Trainer, or data=")
        device = next(model.parameters()).device
        loss = self.loss

        def step(batch: Any) -> torch.Tensor:
            batch = _to_device(batch, device)
            if loss is not None:
                return loss_of(loss(model, batch), "loss")
            out = model(**batch) if isinstance(batch, Mapping) else model(*batch)
            return loss_of(out, "the model")

        self.range_test_result, found = read_bounds(
            self.request, model, optimizer, data, step, None, ipe
        )
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            box = [found]
            torch.distributed.broadcast_object_list(box, src=0)  # every rank uses rank 0's
            found = box[0]
        return found


def _iters_per_epoch(loader: Any, args: TrainingArguments) -> int | None:
    try:
        batches = len(loader)
    except TypeError:
        return None
    return max(1, math.ceil(batches / args.gradient_accumulation_steps))


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch
