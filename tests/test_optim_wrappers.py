"""Optimizer wrappers (accelerate's AcceleratedOptimizer, Lightning's LightningOptimizer)
and the torch-scheduler adapter inside real frameworks.

``AcceleratedOptimizer`` subclasses ``torch.optim.Optimizer`` without running its
``__init__`` (no step-hook tables) and forwards ``step()`` to the wrapped optimizer only
on gradient-accumulation boundaries and, under a GradScaler, through ``scaler.step``.
lrlab drives the wrapped optimizer, so it counts exactly the inner updates.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from lrlab import schedules as S
from lrlab.optim import LARS, AutoLLR, HyperparamScheduler, Instrument
from lrlab.rangetest import range_test

LR = S.triangular(base_lr=0.01, max_lr=0.1, step_size=5)  # a new value at every update
MOM = S.cyclical_momentum(LR, low=0.8, high=0.9)


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


def _batches(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(n)
    ]


def _observe(opt: torch.optim.Optimizer) -> list[tuple[float, float]]:
    """(lr, beta1) the torch optimizer holds when each of its steps starts, and the
    steps the kernel skipped removed (found_inf set by GradScaler)."""
    seen: list[tuple[float, float]] = []

    def hook(o: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        flag = o.__dict__.get("found_inf")
        if flag is None or flag.item() == 0:
            g = o.param_groups[0]
            seen.append((g["lr"], g["betas"][0]))

    opt.register_step_pre_hook(hook)
    return seen


@pytest.fixture
def accelerate() -> Iterator[object]:
    acc = pytest.importorskip("accelerate")
    from accelerate.state import AcceleratorState, GradientState

    yield acc
    # Accelerator state is a process-wide singleton: leave none behind for other tests.
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "plain"])
def test_accelerate_gradient_accumulation(accelerate, fused: bool) -> None:
    accelerator = accelerate.Accelerator(cpu=True, gradient_accumulation_steps=3)
    net = _model()
    model, opt = accelerator.prepare(net, torch.optim.AdamW(net.parameters(), fused=fused))
    assert type(opt).__name__ == "AcceleratedOptimizer"
    driver = HyperparamScheduler(opt, lr=LR, momentum=MOM)
    assert driver.optimizer is opt.optimizer
    seen = _observe(opt.optimizer)
    syncs = []
    for x, y in _batches(24):
        with accelerator.accumulate(model):
            accelerator.backward(F.cross_entropy(model(x), y))
            syncs.append(accelerator.sync_gradients)
            opt.step()
            opt.zero_grad()
    assert syncs == [i % 3 == 2 for i in range(24)]
    assert driver.step_count == 8
    assert seen == [(LR(t), MOM(t)) for t in range(8)]
    assert {float(s["step"]) for s in opt.optimizer.state.values()} == {8.0}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "plain"])
def test_accelerate_grad_scaler_and_prepared_adapter(accelerate, fused: bool) -> None:
    # Accelerate builds a GradScaler only for GPU devices; a CPU GradScaler set before
    # prepare() takes the same code paths (accelerator.backward scales the loss,
    # AcceleratedOptimizer.step calls scaler.step / scaler.update).
    accelerator = accelerate.Accelerator(cpu=True, gradient_accumulation_steps=2)
    accelerator.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    net = _model()
    opt = torch.optim.AdamW(net.parameters(), fused=fused)
    adapter = HyperparamScheduler(opt, lr=LR, momentum=MOM).as_torch_scheduler()
    model, wrapped, prepared = accelerator.prepare(net, opt, adapter)
    assert prepared.optimizers == [wrapped]  # accelerate paired the adapter with its wrapper
    seen = _observe(opt)
    inf_at = {1, 7, 13}  # boundaries are the odd micro-batches: 3 of 12 updates overflow
    last_lrs = []
    for i, (x, y) in enumerate(_batches(24)):
        with accelerator.accumulate(model):
            accelerator.backward(F.cross_entropy(model(x), y))
            if i in inf_at:
                next(model.parameters()).grad[0, 0] = math.inf
            wrapped.step()
            prepared.step()
            wrapped.zero_grad()
        last_lrs.append(prepared.get_last_lr()[0])
    assert adapter.driver.step_count == 9
    assert seen == [(LR(t), MOM(t)) for t in range(9)]
    assert {float(s["step"]) for s in opt.state.values()} == {9.0}
    updates = [sum(1 for j in range(i + 1) if j % 2 == 1 and j not in inf_at) for i in range(24)]
    assert last_lrs == [LR(k) for k in updates]


def test_lightning_optimizer_wrapper() -> None:
    lo = pytest.importorskip("pytorch_lightning.core.optimizer")
    model = _model()
    opt = torch.optim.AdamW(model.parameters())
    wrapped = lo.LightningOptimizer(opt)
    driver = HyperparamScheduler(wrapped, lr=LR, momentum=MOM)
    assert driver.optimizer is opt
    for x, y in _batches(5):  # stepping the wrapper needs a Trainer: its strategy steps opt
        F.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
    assert driver.step_count == 5 and opt.param_groups[0]["lr"] == LR(5)


def test_other_step_hook_components_take_a_wrapper(accelerate) -> None:
    accelerator = accelerate.Accelerator(cpu=True)
    net = _model()
    opt = accelerator.prepare(torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=1e-3))
    inst, lars, auto = Instrument(opt, every=1), LARS(opt), AutoLLR(opt)
    assert inst.optimizer is lars.optimizer is auto.optimizer is opt.optimizer
    for x, y in _batches(3):
        F.cross_entropy(net(x), y).backward()
        opt.step()
        opt.zero_grad()
    assert [r.step for r in inst.records] == [0, 1, 2]
    assert len(lars.last_ratios[0]) == 4 and auto._seen == 2


def test_range_test_unwraps_accelerated_optimizer(accelerate) -> None:
    accelerator = accelerate.Accelerator(cpu=True)
    model = _model()
    opt = accelerator.prepare(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    driver = HyperparamScheduler(opt, lr=LR)  # the user's own driver: left alone by the sweep
    before = [p.detach().clone() for p in model.parameters()]
    kw = dict(loss_fn=F.cross_entropy, start_lr=1e-4, end_lr=1.0, num_updates=20, refine=False)
    wrapped = range_test(model, opt, _batches(20), **kw)  # type: ignore[arg-type]
    inner = range_test(model, opt.optimizer, _batches(20), **kw)  # type: ignore[arg-type]
    assert wrapped.updates == inner.updates == 20
    assert wrapped.losses == inner.losses  # the state was restored exactly in between
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert driver.step_count == 0 and opt.param_groups[0]["lr"] == LR(0)


class _Unwired(torch.optim.Optimizer):
    def __init__(self) -> None:  # like a wrapper that skips Optimizer.__init__, minus .optimizer
        self.param_groups = []


@pytest.mark.parametrize(
    "thing", [object(), torch.nn.Linear(2, 2), _Unwired()], ids=["object", "module", "unwired"]
)
def test_not_an_optimizer_is_refused_with_what_to_pass(thing: object) -> None:
    with pytest.raises(TypeError, match=r"^optimizer must be a torch.optim.Optimizer or a wrapper"):
        HyperparamScheduler(thing, lr=0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pass the torch optimizer itself"):
        LARS(thing)  # type: ignore[arg-type]


def test_get_last_lr_is_current_with_lightning_epoch_interval() -> None:
    pl = pytest.importorskip("pytorch_lightning")
    batches = _batches(5)

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = _model()

        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            return F.cross_entropy(self.net(batch[0]), batch[1])

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            opt = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
            self.adapter = HyperparamScheduler(opt, lr=LR, momentum=MOM).as_torch_scheduler()
            config = {"scheduler": self.adapter, "interval": "epoch"}
            return {"optimizer": opt, "lr_scheduler": config}

    seen: list[tuple[int, float, float]] = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):  # type: ignore[no-untyped-def]
            group = trainer.optimizers[0].param_groups[0]
            seen.append((trainer.global_step, module.adapter.get_last_lr()[0], group["lr"]))

    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Record()],
    )
    trainer.fit(Tiny(), train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    assert [s for s, _, _ in seen] == list(range(1, 11))
    assert [(lr, g) for _, lr, g in seen] == [(LR(t), LR(t)) for t in range(1, 11)]
