"""lrlab.integrations.hf with the real transformers Trainer and accelerate (CPU, tiny model).

The values are read back from inside the Trainer's loop: a ``TrainerCallback``'s
``on_step_begin`` (called once per optimizer update, before its first micro-batch) and
the ``learning_rate`` the Trainer itself logs.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from accelerate.optimizer import AcceleratedOptimizer
from transformers import Trainer, TrainerCallback, TrainingArguments

from lrlab.integrations.hf import (
    LRLabSchedule,
    ScheduleNotFinishedWarning,
    build_scheduler,
)
from lrlab.schedules import cyclical_momentum, one_cycle

torch.set_num_threads(1)


class Net(torch.nn.Module):
    """A Trainer-style model: keyword inputs, a dict with ``loss`` when labels are given."""

    def __init__(self, bad_calls: set[int] | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(4, 2)
        self.bad_calls = bad_calls or set()
        self.calls = 0

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"logits": self.lin(x)}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(out["logits"], labels)
            if self.training and self.calls in self.bad_calls:
                out["loss"] = out["loss"] * float("inf")  # fp16: the GradScaler skips it
            self.calls += 1
        return out


class Data(torch.utils.data.Dataset):
    def __init__(self, n: int = 256) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = (self.x[:, 0] + 0.5 * self.x[:, 1] > 0).long()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "labels": self.y[i]}


class Recorder(TrainerCallback):
    def __init__(self) -> None:
        self.seen: list[tuple[float, float]] = []
        self.optimizer: Any = None
        self.first_weights: torch.Tensor | None = None

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        opt = self.optimizer = kwargs["optimizer"]
        g = opt.param_groups[0]
        self.seen.append((g["lr"], g["betas"][0] if "betas" in g else g["momentum"]))
        if self.first_weights is None:
            self.first_weights = kwargs["model"].lin.weight.detach().clone()


class StopAt(TrainerCallback):
    """What EarlyStoppingCallback does when its metric stalls: set should_training_stop."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            control.should_training_stop = True


def _args(tmp_path: Any, **kwargs: Any) -> TrainingArguments:
    options: dict[str, Any] = {
        "output_dir": str(tmp_path / "out"),
        "use_cpu": True,
        "report_to": [],
        "per_device_train_batch_size": 16,
        "num_train_epochs": 2,
        "logging_steps": 1,
        "save_strategy": "no",
        "disable_tqdm": True,
        "seed": 0,
        "dataloader_num_workers": 0,
    }
    options.update(kwargs)
    return TrainingArguments(**options)


def _sgd(model: torch.nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def _expected(cb: LRLabSchedule, n: int) -> list[tuple[float, float]]:
    assert cb.plan is not None and cb.plan.lr is not None and cb.plan.momentum is not None
    return [(cb.plan.lr(t), cb.plan.momentum(t)) for t in range(n)]


def _lrlab_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, ScheduleNotFinishedWarning)]


def _logged_lrs(trainer: Trainer) -> list[float]:
    return [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]


def _logged_should_be(values: list[float], logged: list[float]) -> list[float]:
    """The Trainer logs the LR each update used (recent transformers) or, in older
    releases, the one after its scheduler stepped: the schedule shifted by one."""
    return values if logged[:1] == values[:1] else [*values[1:], values[-1]]


def test_optimizers_tuple_exact_lr_momentum_and_logged_lr(tmp_path: Any) -> None:
    model, rec = Net(), Recorder()
    opt = _sgd(model)
    cb = LRLabSchedule("one_cycle(max_lr=0.4)", momentum="cyclical")
    trainer = Trainer(
        model=model,
        args=_args(tmp_path),
        train_dataset=Data(),
        optimizers=(opt, cb.scheduler(opt)),
        callbacks=[cb, rec],
    )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer.train()
    n = 32  # 16 batches x 2 epochs
    lr = one_cycle(max_lr=0.4, total=n)
    assert cb.plan is not None and cb.plan.lr == lr and cb.plan.momentum == cyclical_momentum(lr)
    assert rec.seen == [(lr(t), cyclical_momentum(lr)(t)) for t in range(n)]
    logged = _logged_lrs(trainer)  # the Trainer's own log
    assert logged == _logged_should_be([lr(t) for t in range(n)], logged)
    assert cb.driver is not None and cb.driver.step_count == trainer.state.global_step == n
    assert _lrlab_warnings(record) == [] and cb.unfinished is None


def test_create_scheduler_override_keeps_hf_fused_adamw(tmp_path: Any) -> None:
    cb = LRLabSchedule("one_cycle(max_lr=0.01)", momentum="cyclical")

    class LRLabTrainer(Trainer):
        def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
            if self.lr_scheduler is None:
                self.lr_scheduler = cb.scheduler(optimizer or self.optimizer, num_training_steps)
            return self.lr_scheduler

    rec = Recorder()
    trainer = LRLabTrainer(
        model=Net(), args=_args(tmp_path), train_dataset=Data(), callbacks=[cb, rec]
    )
    trainer.train()
    assert isinstance(trainer.optimizer, AcceleratedOptimizer)  # what create_scheduler got
    assert cb.driver is not None and type(cb.driver.optimizer) is torch.optim.AdamW
    # HF's default optimizer: fused AdamW (also on CPU) since transformers 5
    assert bool(cb.driver.optimizer.defaults.get("fused")) == ("fused" in trainer.args.optim)
    assert rec.seen == _expected(cb, 32)  # lr and betas[0]
    assert cb.driver.step_count == trainer.state.global_step == 32


def test_build_scheduler_with_hf_optimizer_and_watching_callback(tmp_path: Any) -> None:
    lr = one_cycle(max_lr=0.01, total=32)

    class BuiltTrainer(Trainer):
        def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
            if self.lr_scheduler is None:
                self.lr_scheduler = build_scheduler(
                    optimizer or self.optimizer,
                    num_training_steps,
                    lr="one_cycle(max_lr=0.01)",
                    momentum="cyclical",
                )
            return self.lr_scheduler

    rec, watch = Recorder(), LRLabSchedule()
    trainer = BuiltTrainer(
        model=Net(), args=_args(tmp_path), train_dataset=Data(), callbacks=[watch, rec]
    )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer.train()
    assert rec.seen == [(lr(t), cyclical_momentum(lr)(t)) for t in range(32)]
    logged = _logged_lrs(trainer)
    assert logged == _logged_should_be([lr(t) for t in range(32)], logged)
    assert _lrlab_warnings(record) == [] and watch.unfinished is None
    assert watch.driver is not None and watch.driver.step_count == 32


def test_gradient_accumulation_advances_per_real_update(tmp_path: Any) -> None:
    model, rec = Net(), Recorder()
    opt = _sgd(model)
    updates: list[int] = []  # counted by torch itself, independently of lrlab
    opt.register_step_post_hook(lambda *args: updates.append(1))
    cb = LRLabSchedule("one_cycle(max_lr=0.4)", momentum="cyclical")
    trainer = Trainer(
        model=model,
        args=_args(tmp_path, gradient_accumulation_steps=3),
        train_dataset=Data(),
        optimizers=(opt, cb.scheduler(opt)),
        callbacks=[cb, rec],
    )
    trainer.train()
    n = trainer.state.max_steps
    # 16 batches in windows of 3: 6 updates per epoch, the last on a one-batch window
    # (transformers before 4.5x counted 5 per epoch)
    assert n in (12, 10) and model.calls >= 2.5 * n  # micro-batches did not move the clock
    assert cb.plan is not None and cb.plan.total == n and len(updates) == n
    assert rec.seen == _expected(cb, n)
    assert cb.driver is not None and cb.driver.step_count == trainer.state.global_step == n


def _resumable_run(tmp_path: Any, resume: str | None) -> tuple[LRLabSchedule, Recorder, Net]:
    model, rec = Net(), Recorder()
    opt = _sgd(model)
    cb = LRLabSchedule(
        "one_cycle",
        momentum="cyclical",
        range_test={"start_lr": 1e-4, "end_lr": 100.0, "num_updates": 60},
    )
    trainer = Trainer(
        model=model,
        args=_args(tmp_path, save_strategy="steps", save_steps=5, logging_steps=100),
        train_dataset=Data(),
        optimizers=(opt, cb.scheduler(opt)),
        callbacks=[cb, rec],
    )
    trainer.train(resume_from_checkpoint=resume)
    return cb, rec, model


def test_resume_from_checkpoint_is_bit_identical(tmp_path: Any) -> None:
    first, first_rec, first_model = _resumable_run(tmp_path, None)
    assert first.range_test_result is not None and len(first_rec.seen) == 32
    resumed, rec, model = _resumable_run(tmp_path, str(tmp_path / "out" / "checkpoint-5"))
    assert resumed.range_test_result is None  # bounds and schedules came from scheduler.pt
    assert resumed.plan == first.plan
    assert rec.seen == first_rec.seen[5:]
    assert resumed.driver is not None and resumed.driver.step_count == 32
    for a, b in zip(first_model.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)


def test_range_test_bounds_are_what_the_schedule_uses(tmp_path: Any) -> None:
    model, rec = Net(), Recorder()
    before = model.lin.weight.detach().clone()
    opt = _sgd(model)
    cb = LRLabSchedule("one_cycle", momentum="cyclical", range_test=True)  # the defaults
    trainer = Trainer(
        model=model,
        args=_args(tmp_path, num_train_epochs=1),
        train_dataset=Data(),
        optimizers=(opt, cb.scheduler(opt)),
        callbacks=[cb, rec],
    )
    trainer.train()
    result = cb.range_test_result
    assert result is not None and result.start_lr == 1e-7 and result.updates >= 30
    suggested = result.suggest("lrlab").lr
    assert cb.plan is not None and cb.plan.found is not None
    assert cb.plan.found["max_lr"] == suggested
    assert cb.plan.lr == one_cycle(max_lr=suggested, base_lr=suggested / 10, total=16)
    assert rec.seen == _expected(cb, 16)
    assert rec.first_weights is not None and torch.equal(rec.first_weights, before)


def test_skipped_fp16_steps_warn_that_the_schedule_did_not_finish(tmp_path: Any) -> None:
    model, rec = Net(bad_calls={3, 7}), Recorder()
    opt = _sgd(model)
    cb = LRLabSchedule("one_cycle(max_lr=0.4)", momentum="cyclical")
    try:
        args = _args(tmp_path, fp16=True, num_train_epochs=1)
    except ValueError as e:  # older transformers refuse fp16 on CPU
        pytest.skip(str(e))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Data(),
        optimizers=(opt, cb.scheduler(opt)),
        callbacks=[cb, rec],
    )
    # What accelerate sets up for fp16 on a GPU; on CPU it leaves the scaler out.
    trainer.accelerator.scaler = torch.amp.GradScaler("cpu")
    with pytest.warns(ScheduleNotFinishedWarning) as record:
        trainer.train()
    assert cb.driver is not None and trainer.state.global_step == 16
    assert cb.driver.step_count == 14
    clock = [0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 10, 11, 12, 13]
    expected = _expected(cb, 16)
    assert rec.seen == [expected[t] for t in clock]
    (message,) = _lrlab_warnings(record.list)
    assert "after 14 optimizer updates" in message and "lasts 16" in message
    assert "2 optimizer steps were skipped" in message


def test_stopped_training_warns(tmp_path: Any) -> None:
    model = Net()
    opt = _sgd(model)
    cb = LRLabSchedule("one_cycle(max_lr=0.4)", momentum="cyclical")
    trainer = Trainer(
        model=model,
        args=_args(tmp_path),
        train_dataset=Data(),
        optimizers=(opt, cb.scheduler(opt)),
        callbacks=[cb, StopAt(5)],
    )
    with pytest.warns(ScheduleNotFinishedWarning) as record:
        trainer.train()
    (message,) = _lrlab_warnings(record.list)
    assert "after 5 optimizer updates" in message and "stopped at step 5 of 32" in message


def test_max_steps_shorter_than_a_fixed_schedule_warns_twice(tmp_path: Any) -> None:
    model = Net()
    opt = _sgd(model)
    trainer = Trainer(
        model=model,
        args=_args(tmp_path, max_steps=10),
        train_dataset=Data(),
        optimizers=(opt, build_scheduler(opt, 40, lr="one_cycle(max_lr=0.4)")),
        callbacks=[LRLabSchedule()],
    )
    with pytest.warns(ScheduleNotFinishedWarning) as record:
        trainer.train()
    start, end = _lrlab_warnings(record.list)
    assert "lasts 40 updates but the Trainer (max_steps) allows at most 10" in start
    assert "after 10 optimizer updates" in end and "max_steps=10 is shorter" in end


def test_wiring_mistakes_are_named(tmp_path: Any) -> None:
    model = Net()
    opt = _sgd(model)
    cb = LRLabSchedule("one_cycle(max_lr=0.4)")
    unwired = Trainer(model=model, args=_args(tmp_path), train_dataset=Data(), callbacks=[cb])
    with pytest.raises(ValueError, match=r"scheduler is LambdaLR, not this callback's"):
        unwired.train()
    orphan = Trainer(
        model=Net(),
        args=_args(tmp_path),
        train_dataset=Data(),
        optimizers=(opt, LRLabSchedule("one_cycle(max_lr=0.4)").scheduler(opt)),
    )
    with pytest.raises(RuntimeError, match=r"callbacks=\[callback\]"):
        orphan.train()
    with pytest.raises(ValueError, match="watches"):
        Trainer(
            model=Net(), args=_args(tmp_path), train_dataset=Data(), callbacks=[LRLabSchedule()]
        ).train()
    with pytest.raises(ValueError, match="num_training_steps=0 is invalid"):
        build_scheduler(opt, 0, lr=0.1)
