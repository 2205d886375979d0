"""lrlab.integrations.lightning.LRLabSchedule with the real Lightning Trainer (CPU, tiny model).

Every test reads the values back from inside Lightning's own loop (the module's
``on_before_optimizer_step`` hook, ``LearningRateMonitor``'s logged metrics) and compares
them with the schedule's ``s(0..n-1)``.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import (
    EarlyStopping,
    LearningRateFinder,
    LearningRateMonitor,
    ModelCheckpoint,
)
from pytorch_lightning.loggers import Logger
from pytorch_lightning.plugins.precision import MixedPrecision
from pytorch_lightning.tuner import Tuner
from torch.utils.data import DataLoader, TensorDataset

from lrlab.integrations.lightning import LRLabSchedule, ScheduleNotFinishedWarning
from lrlab.optim import HyperparamScheduler
from lrlab.schedules import clr_step_size, cyclical_momentum, one_cycle

torch.set_num_threads(1)


def _loader(n: int = 128, batch_size: int = 8) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


class Module(pl.LightningModule):
    """Records (global_step, lr, momentum) right before every optimizer step."""

    def __init__(self, optimizer: str = "sgd", bad_steps: set[int] | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(4, 2)
        self.optimizer = optimizer
        self.bad_steps = bad_steps or set()
        self.updates: list[tuple[int, float, float]] = []
        self.batches: list[tuple[int, float]] = []
        self.first_weights: torch.Tensor | None = None

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        if self.global_step in self.bad_steps:
            self.bad_steps.discard(self.global_step)
            loss = loss * float("inf")  # the GradScaler skips this step
        self.log("train_loss", loss)  # also during the range test, where it is dropped
        return loss

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.first_weights is None:
            self.first_weights = self.net.weight.detach().clone()
        self.batches.append((batch_idx, self.trainer.optimizers[0].param_groups[0]["lr"]))

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        g = optimizer.param_groups[0]
        momentum = g["betas"][0] if "betas" in g else g["momentum"]
        self.updates.append((self.global_step, g["lr"], momentum))

    def configure_optimizers(self) -> Any:
        if self.optimizer == "adamw":
            return torch.optim.AdamW(self.parameters(), lr=1e-3)
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def _trainer(tmp_path: Any, **kwargs: Any) -> pl.Trainer:
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "default_root_dir": str(tmp_path),
        "max_epochs": 2,
    }
    options.update(kwargs)
    return pl.Trainer(**options)


def _expected(cb: LRLabSchedule, n: int) -> list[tuple[float, float]]:
    assert cb.plan is not None and cb.plan.lr is not None and cb.plan.momentum is not None
    return [(cb.plan.lr(t), cb.plan.momentum(t)) for t in range(n)]


def _lrlab_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, ScheduleNotFinishedWarning)]


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_exact_lr_and_momentum_at_every_update(tmp_path: Any, optimizer: str) -> None:
    module = Module(optimizer)
    cb = LRLabSchedule("one_cycle(max_lr=0.4)", momentum="cyclical")
    trainer = _trainer(tmp_path, callbacks=[cb])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer.fit(module, _loader())
    n = 32  # 16 batches x 2 epochs = trainer.estimated_stepping_batches
    lr = one_cycle(max_lr=0.4, total=n)
    assert cb.plan is not None and cb.plan.lr == lr and cb.plan.momentum == cyclical_momentum(lr)
    assert [(u[1], u[2]) for u in module.updates] == [
        (lr(t), cyclical_momentum(lr)(t)) for t in range(n)
    ]
    assert [u[0] for u in module.updates] == list(range(n))
    assert cb.driver is not None and cb.driver.step_count == trainer.global_step == n
    assert _lrlab_warnings(record) == [] and cb.unfinished is None


def test_gradient_accumulation_advances_per_real_update(tmp_path: Any) -> None:
    module = Module()
    cb = LRLabSchedule("one_cycle(max_lr=0.4)", momentum="cyclical")
    trainer = _trainer(tmp_path, callbacks=[cb], accumulate_grad_batches=3)
    trainer.fit(module, _loader())
    n = 12  # ceil(16 / 3) = 6 updates per epoch (the last one takes one batch)
    assert trainer.estimated_stepping_batches == n and cb.plan is not None and cb.plan.total == n
    assert [(u[1], u[2]) for u in module.updates] == _expected(cb, n)
    # inside an accumulation window every micro-batch sees the same LR
    windows = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 11), (12, 13, 14), (15,)]
    per_epoch = [b[1] for b in module.batches[:16]]
    assert [[per_epoch[i] for i in w] for w in windows] == [
        [cb.plan.lr(t)] * len(w) for t, w in enumerate(windows)
    ]
    assert cb.driver is not None and cb.driver.step_count == n


def test_range_test_bounds_are_what_the_schedule_uses(tmp_path: Any) -> None:
    module = Module()
    before = module.net.weight.detach().clone()
    cb = LRLabSchedule(
        "one_cycle",
        momentum="cyclical",
        range_test={"start_lr": 1e-4, "end_lr": 100.0, "num_updates": 60},
    )
    trainer = _trainer(tmp_path, callbacks=[cb], max_epochs=1)
    trainer.fit(module, _loader())
    result = cb.range_test_result
    assert result is not None and result.updates >= 30
    suggested = result.suggest("lrlab").lr
    assert cb.plan is not None and cb.plan.found is not None
    assert cb.plan.found["max_lr"] == suggested
    assert cb.plan.lr == one_cycle(max_lr=suggested, base_lr=suggested / 10, total=16)
    assert [(u[1], u[2]) for u in module.updates] == _expected(cb, 16)
    # the sweep trained the real module; it was restored before the first real batch
    assert module.first_weights is not None and torch.equal(module.first_weights, before)


def test_range_test_clr_reading_sets_step_size_from_epochs(tmp_path: Any) -> None:
    module = Module()
    cb = LRLabSchedule(
        "triangular",
        range_test={"start_lr": 1e-4, "end_lr": 100.0, "num_updates": 60, "epochs_per_step": 2},
    )
    trainer = _trainer(tmp_path, callbacks=[cb], max_epochs=1)
    trainer.fit(module, _loader())
    assert cb.range_test_result is not None and cb.plan is not None and cb.plan.lr is not None
    suggested = cb.range_test_result.suggest("lrlab").lr
    d = cb.plan.lr.to_dict()
    assert (d["kind"], d["max_lr"], d["base_lr"]) == ("triangular", suggested, suggested / 4)
    assert d["step_size"] == clr_step_size(16, 2) == 32
    assert [u[1] for u in module.updates] == [cb.plan.lr(t) for t in range(16)]


def test_checkpoint_resume_continues_the_same_schedule(tmp_path: Any) -> None:
    spec = {"start_lr": 1e-4, "end_lr": 100.0, "num_updates": 60}
    first = Module()
    cb = LRLabSchedule("one_cycle", momentum="cyclical", range_test=spec)
    mid = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=5, save_top_k=-1)
    end = ModelCheckpoint(dirpath=tmp_path / "end", every_n_epochs=1, save_top_k=-1)
    trainer = _trainer(tmp_path, callbacks=[cb, mid, end], enable_checkpointing=True)
    trainer.fit(first, _loader())
    assert len(first.updates) == 32

    second = Module()
    resumed = LRLabSchedule("one_cycle", momentum="cyclical", range_test=spec)
    trainer = _trainer(tmp_path, callbacks=[resumed])
    ckpt = tmp_path / "ckpt" / "epoch=0-step=5.ckpt"  # 5 of 16 batches into epoch 0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*mid-epoch.*|.*ended before the epoch.*")
        trainer.fit(second, _loader(), ckpt_path=str(ckpt))
    assert resumed.range_test_result is None  # the bounds came from the checkpoint
    assert resumed.plan == cb.plan
    # Lightning < 2.5 runs one update more after a mid-epoch resume; lrlab's count follows
    steps = list(range(5, trainer.global_step))
    assert [u[0] for u in second.updates] == steps and len(steps) in (27, 28)
    assert [u[1:] for u in second.updates] == [_expected(cb, 40)[t] for t in steps]
    assert [u[1:] for u in second.updates[:27]] == [u[1:] for u in first.updates[5:]]
    assert resumed.driver is not None and resumed.driver.step_count == trainer.global_step

    # from the end of epoch 0 Lightning replays the same batches: bit-identical weights
    # (and the first run's callback object, reused, resumes like a new one)
    third, plan = Module(), cb.plan
    trainer = _trainer(tmp_path, callbacks=[cb])
    trainer.fit(third, _loader(), ckpt_path=str(tmp_path / "end" / "epoch=0-step=16.ckpt"))
    assert third.updates == first.updates[16:] and cb.plan == plan
    assert torch.equal(third.net.weight, first.net.weight)
    assert torch.equal(third.net.bias, first.net.bias)

    other = LRLabSchedule("one_cycle(max_lr=0.3)", momentum="cyclical")
    with pytest.raises(ValueError, match="other arguments"):
        _trainer(tmp_path, callbacks=[other]).fit(Module(), _loader(), ckpt_path=str(ckpt))


class MemoryLogger(Logger):
    """A Lightning logger that keeps what it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[tuple[int, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "memory"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.metrics.append((int(step or 0), dict(metrics)))


def test_learning_rate_monitor_logs_the_schedule(tmp_path: Any) -> None:
    logger = MemoryLogger()
    monitor = LearningRateMonitor(logging_interval="step", log_momentum=True)
    cb = LRLabSchedule("one_cycle(max_lr=0.4)", momentum="cyclical")
    trainer = _trainer(tmp_path, callbacks=[cb, monitor], logger=logger, log_every_n_steps=1)
    trainer.fit(Module(), _loader())
    logged = [(s, m["lr-SGD"], m["lr-SGD-momentum"]) for s, m in logger.metrics if "lr-SGD" in m]
    assert logged == [(t, *pair) for t, pair in enumerate(_expected(cb, 32))]


def test_tuner_lr_find_sweeps_without_lrlab(tmp_path: Any) -> None:
    module = Module()
    cb = LRLabSchedule("one_cycle(max_lr=0.4)", momentum="cyclical")
    trainer = _trainer(tmp_path, callbacks=[cb])
    finder = Tuner(trainer).lr_find(module, _loader(), num_training=12, update_attr=False)
    assert finder is not None and len(finder.results["lr"]) == 12
    sweep = module.updates
    assert [u[2] for u in sweep] == [0.9] * 12  # the optimizer's own momentum, not lrlab's
    assert [u[1] for u in sweep] == sorted(u[1] for u in sweep) and sweep[0][1] < 1e-6
    assert cb.driver is None  # lrlab attached nothing
    module.updates = []
    trainer.fit(module, _loader())
    assert [(u[1], u[2]) for u in module.updates] == _expected(cb, 32)


class _FinderInTraining(LearningRateFinder):
    """Lightning's documented pattern: an LR finder run from on_train_epoch_start."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        return None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 0:
            self.lr_find(trainer, pl_module)


def test_lr_finder_during_training_suspends_lrlab(tmp_path: Any) -> None:
    module = Module()
    cb = LRLabSchedule("one_cycle(max_lr=0.4)", momentum="cyclical")
    finder = _FinderInTraining(num_training_steps=10, update_attr=False)
    trainer = _trainer(tmp_path, callbacks=[finder, cb])
    trainer.fit(module, _loader())
    sweep, run = module.updates[:10], module.updates[10:]
    # lrlab's driver was attached (s(0) written: momentum 0.95) and held still while
    # Lightning swept; the sweep's steps did not move lrlab's count
    assert [u[2] for u in sweep] == [0.95] * 10
    assert [u[1] for u in sweep] == sorted(u[1] for u in sweep)
    # (Lightning 2.6 then trains the whole run; 2.5 counts the sweep's batches toward epoch 0)
    assert [(u[1], u[2]) for u in run] == _expected(cb, len(run)) and len(run) in (22, 32)
    assert cb.driver is not None and cb.driver.step_count == trainer.global_step == len(run)


def test_skipped_amp_steps_warn_that_the_schedule_did_not_finish(tmp_path: Any) -> None:
    module = Module(bad_steps={2, 5, 9})
    cb = LRLabSchedule("one_cycle(max_lr=0.4)", momentum="cyclical")
    amp = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
    trainer = _trainer(tmp_path, callbacks=[cb], plugins=[amp], max_epochs=1)
    with pytest.warns(ScheduleNotFinishedWarning) as record:
        trainer.fit(module, _loader())
    assert cb.driver is not None and trainer.global_step == 16 and cb.driver.step_count == 13
    # a skipped attempt leaves the clock where it was: the retry uses the same values
    clock = [0, 1, 2, 2, 3, 4, 4, 5, 6, 7, 7, 8, 9, 10, 11, 12]
    expected = _expected(cb, 16)
    assert [(u[1], u[2]) for u in module.updates] == [expected[t] for t in clock]
    messages = _lrlab_warnings(record.list)
    assert len(messages) == 1 and "after 13 optimizer updates" in messages[0]
    assert "3 optimizer steps were skipped" in messages[0] and "lasts 16" in messages[0]
    assert cb.unfinished is not None and cb.unfinished in messages[0]


def test_early_stopping_warns(tmp_path: Any) -> None:
    cb = LRLabSchedule("one_cycle(max_lr=0.4)", momentum="cyclical")
    stop = EarlyStopping(
        monitor="train_loss", stopping_threshold=100.0, check_on_train_epoch_end=True
    )
    trainer = _trainer(tmp_path, callbacks=[cb, stop], max_epochs=3)
    with pytest.warns(ScheduleNotFinishedWarning, match="after 16 optimizer updates") as record:
        trainer.fit(Module(), _loader())
    assert "stopped early" in _lrlab_warnings(record.list)[-1]


def test_max_steps_shorter_than_a_fixed_schedule_warns_twice(tmp_path: Any) -> None:
    cb = LRLabSchedule(one_cycle(max_lr=0.4, total=40), momentum="cyclical")
    trainer = _trainer(tmp_path, callbacks=[cb], max_steps=10)
    with pytest.warns(ScheduleNotFinishedWarning) as record:
        trainer.fit(Module(), _loader())
    start, end = _lrlab_warnings(record.list)
    assert "lasts 40 updates but this fit" in start and "at most 10" in start
    assert "after 10 optimizer updates" in end and "max_steps=10 is shorter" in end


def test_refuses_a_scheduler_from_configure_optimizers(tmp_path: Any) -> None:
    class WithScheduler(Module):
        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, 5)]

    cb = LRLabSchedule("one_cycle(max_lr=0.4)")
    with pytest.raises(ValueError, match=r"scheduler \(StepLR\) as well.*return only"):
        _trainer(tmp_path, callbacks=[cb]).fit(WithScheduler(), _loader())


@pytest.mark.parametrize("interval", ["step", "epoch"])
def test_adapter_in_configure_optimizers_drives_every_update(tmp_path: Any, interval: str) -> None:
    lr = one_cycle(max_lr=0.4, total=32)

    class WithAdapter(Module):
        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
            driver = HyperparamScheduler(opt, lr=lr, momentum=cyclical_momentum(lr))
            return {
                "optimizer": opt,
                "lr_scheduler": {"scheduler": driver.as_torch_scheduler(), "interval": interval},
            }

    module = WithAdapter()
    _trainer(tmp_path).fit(module, _loader())
    m = cyclical_momentum(lr)
    assert [(u[1], u[2]) for u in module.updates] == [(lr(t), m(t)) for t in range(32)]


def test_arguments_are_checked_before_training() -> None:
    with pytest.raises(ValueError, match="leaves max_lr open"):
        LRLabSchedule("one_cycle")
    with pytest.raises(ValueError, match=r"unknown option.*num_iter"):
        LRLabSchedule("one_cycle", range_test={"num_iter": 10})
    with pytest.raises(ValueError, match="already fixes"):
        LRLabSchedule("one_cycle(max_lr=0.1, base_lr=0.01)", range_test=True)
    with pytest.raises(ValueError, match="momentum='cyclical' mirrors"):
        LRLabSchedule(momentum="cyclical")
    with pytest.raises(ValueError, match=r"range_test.rule='fastest' is invalid"):
        LRLabSchedule("one_cycle", range_test={"rule": "fastest"})
    with pytest.raises(ValueError, match="needs at least one"):
        LRLabSchedule()
    with pytest.raises(ValueError, match=r"unknown schedule|no schedule|not a known"):
        LRLabSchedule("one_cylce(max_lr=0.1)")


def test_importing_lrlab_integrations_imports_no_framework() -> None:
    code = (
        "import sys, lrlab, lrlab.integrations; "
        "heavy = [m for m in ('torch', 'pytorch_lightning', 'lightning', 'transformers') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
