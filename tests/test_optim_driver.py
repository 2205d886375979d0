"""lrlab.optim.HyperparamScheduler: values written, update counting, errors, exact resume."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from torch.optim.lr_scheduler import LRScheduler

from lrlab import schedules as S
from lrlab.optim import HyperparamScheduler


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


def _batches(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(n)
    ]


def _train_step(
    model: torch.nn.Module, opt: torch.optim.Optimizer, batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = batch
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_writes_values_for_each_update_sgd() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9, weight_decay=5e-4)
    lr = S.one_cycle(max_lr=0.5, total=20)
    mom = S.cyclical_momentum(lr)
    wd = S.linear(init=5e-4, end=1e-5, total=20)
    sched = HyperparamScheduler(opt, lr=lr, momentum=mom, weight_decay=wd)
    seen = []
    for batch in _batches(25):
        g = opt.param_groups[0]
        seen.append((g["lr"], g["momentum"], g["weight_decay"]))
        _train_step(model, opt, batch)
    assert sched.step_count == 25
    assert seen == [(lr(t), mom(t), wd(t)) for t in range(25)]
    assert sched.values(3) == [{"lr": lr(3), "momentum": mom(3), "weight_decay": wd(3)}]
    assert sched.current() == [{"lr": lr(25), "momentum": mom(25), "weight_decay": wd(25)}]


def test_adam_family_momentum_goes_to_beta1_and_keeps_beta2() -> None:
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    lr = S.triangular(base_lr=1e-4, max_lr=1e-3, step_size=3)
    HyperparamScheduler(opt, lr=lr, momentum=S.cyclical_momentum(lr))
    for t, batch in enumerate(_batches(7)):
        assert opt.param_groups[0]["betas"] == (S.cyclical_momentum(lr)(t), 0.98)
        _train_step(model, opt, batch)


def test_momentum_schedule_refused_where_it_would_change_the_optimizer_silently() -> None:
    model = _model()
    with pytest.raises(ValueError, match=r"SGD param group 0 was built with momentum=0"):
        HyperparamScheduler(torch.optim.SGD(model.parameters(), lr=0.1), momentum=0.9)
    with pytest.raises(ValueError, match=r"Adagrad has neither 'momentum' nor 'betas'"):
        HyperparamScheduler(torch.optim.Adagrad(model.parameters(), lr=0.1), momentum=0.9)
    with pytest.raises(TypeError, match=r"torch\.optim\.Optimizer"):
        HyperparamScheduler(object(), lr=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"lr=-0.1 is invalid"):
        HyperparamScheduler(torch.optim.SGD(model.parameters(), lr=0.1), lr=-0.1)


def test_per_group_multipliers_names_and_own_schedules() -> None:
    model = _model()
    first, last = model[0], model[2]
    opt = torch.optim.SGD(
        [
            {"params": first.weight, "name": "body", "weight_decay": 1e-4},
            {"params": first.bias, "name": "body_bias", "weight_decay": 0.0},
            {"params": last.weight, "name": "head", "lr_scale": 3.0, "weight_decay": 1e-4},
            {"params": last.bias, "weight_decay": 0.0},
        ],
        lr=0.1,
        momentum=0.9,
    )
    lr = S.cosine(init=0.2, total=10)
    own = S.constant(level=0.05)
    sched = HyperparamScheduler(
        opt,
        lr=lr,
        weight_decay=S.constant(level=5e-4),
        groups={
            "body": 0.5,
            "body_bias": {"lr": own},
            3: {"lr_scale": S.linear(init=1.0, end=0.0, total=10)},
        },
    )
    for t in range(10):
        lrs = [g["lr"] for g in opt.param_groups]
        assert lrs == [lr(t) * 0.5, 0.05, lr(t) * 3.0, lr(t) * (1.0 - t / 9)]
        assert [g["weight_decay"] for g in opt.param_groups] == [5e-4, 0.0, 5e-4, 0.0]
        sched.set_step(t + 1)


def test_group_errors_name_the_problem() -> None:
    model = _model()
    opt = torch.optim.SGD(
        [{"params": model[0].parameters(), "name": "body"}, {"params": model[2].parameters()}],
        lr=0.1,
    )
    with pytest.raises(ValueError, match=r"no param group named 'head'; named groups: body"):
        HyperparamScheduler(opt, lr=0.1, groups={"head": 2.0})
    with pytest.raises(ValueError, match=r"key 5 is invalid"):
        HyperparamScheduler(opt, lr=0.1, groups={5: 2.0})
    with pytest.raises(ValueError, match=r"unknown setting\(s\) lr_mult"):
        HyperparamScheduler(opt, lr=0.1, groups={0: {"lr_mult": 2.0}})
    with pytest.raises(ValueError, match=r"groups has 1 entries; the optimizer has 2"):
        HyperparamScheduler(opt, lr=0.1, groups=[1.0])
    with pytest.raises(ValueError, match=r"groups\['body'\].lr_scale=-1.0 is invalid"):
        HyperparamScheduler(opt, lr=0.1, groups={"body": -1.0})


def test_amp_skipped_steps_do_not_advance_the_clock() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    lr = S.linear(init=0.1, end=0.0, total=10)
    sched = HyperparamScheduler(opt, lr=lr)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4)
    for i, (x, y) in enumerate(_batches(6)):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        if i in (1, 4):  # overflow: GradScaler skips optimizer.step()
            model[0].weight.grad.fill_(float("inf"))
        scaler.step(opt)
        scaler.update()
    assert sched.step_count == 4
    assert opt.param_groups[0]["lr"] == lr(4)


def test_gradient_accumulation_counts_updates_not_micro_batches() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = HyperparamScheduler(opt, lr=S.cosine(init=0.1, total=5))
    for i, (x, y) in enumerate(_batches(12)):
        (torch.nn.functional.cross_entropy(model(x), y) / 4).backward()
        if (i + 1) % 4 == 0:
            opt.step()
            opt.zero_grad()
    assert sched.step_count == 3


def _run(n_updates: int, state: bytes | None, batches: list) -> tuple[torch.nn.Module, bytes]:
    model = _model()
    opt = torch.optim.SGD(
        model.parameters(), lr=0.123, momentum=0.9, nesterov=True, weight_decay=1e-4
    )
    lr = S.one_cycle(max_lr=0.3, total=100)
    sched = HyperparamScheduler(opt, lr=lr, momentum=S.cyclical_momentum(lr))
    if state is not None:
        ckpt = torch.load(io.BytesIO(state), weights_only=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
    start = sched.step_count
    for batch in batches[start : start + n_updates]:
        _train_step(model, opt, batch)
    buf = io.BytesIO()
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
        },
        buf,
    )
    return model, buf.getvalue()


def test_resume_is_bit_identical() -> None:
    batches = _batches(100)
    straight, _ = _run(100, None, batches)
    _, half = _run(50, None, batches)
    resumed, _ = _run(50, half, batches)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_load_state_dict_refuses_changed_schedules_unless_told() -> None:
    opt = torch.optim.SGD(_model().parameters(), lr=0.1, momentum=0.9)
    a = HyperparamScheduler(opt, lr=S.one_cycle(max_lr=0.3, total=100))
    a.set_step(40)
    state = a.state_dict()
    a.remove()
    opt2 = torch.optim.SGD(_model().parameters(), lr=0.1, momentum=0.9)
    b = HyperparamScheduler(opt2, lr=S.one_cycle(max_lr=0.4, total=100))
    with pytest.raises(ValueError, match=r"config.schedules.lr.max_lr: checkpoint 0.3, here 0.4"):
        b.load_state_dict(state)
    b.load_state_dict(state, strict=False)
    assert b.step_count == 40 and opt2.param_groups[0]["lr"] == S.one_cycle(max_lr=0.4, total=100)(
        40
    )


def test_tensor_learning_rate_is_filled_in_place() -> None:
    model = _model()
    lr_tensor = torch.tensor(0.01)
    opt = torch.optim.Adam(model.parameters(), lr=lr_tensor, foreach=False)
    HyperparamScheduler(opt, lr=S.linear(init=0.02, end=0.0, total=3))
    assert opt.param_groups[0]["lr"] is lr_tensor and lr_tensor.item() == pytest.approx(0.02)
    _train_step(model, opt, _batches(1)[0])
    assert lr_tensor.item() == pytest.approx(0.01)


def test_torch_lr_scheduler_adapter() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    lr = S.one_cycle(max_lr=0.3, total=12)
    adapter = HyperparamScheduler(opt, lr=lr, momentum=S.cyclical_momentum(lr)).as_torch_scheduler()
    assert isinstance(adapter, LRScheduler)
    seen = []
    for batch in _batches(12):  # the loop Lightning / HF Trainer run: optimizer, then scheduler
        _train_step(model, opt, batch)
        adapter.step()
        seen.append(adapter.get_last_lr()[0])
    assert seen == [lr(t) for t in range(1, 13)]
    assert adapter.last_epoch == 12
    state = adapter.state_dict()
    assert state["step"] == 12

    # manual counting: the framework's scheduler.step() is what advances the driver
    opt2 = torch.optim.SGD(_model().parameters(), lr=0.1, momentum=0.9)
    manual = HyperparamScheduler(opt2, lr=lr, auto=False).as_torch_scheduler()
    for _ in range(5):
        opt2.step()
        manual.step()
    assert manual.driver.step_count == 5 and opt2.param_groups[0]["lr"] == lr(5)
    manual.load_state_dict(
        HyperparamScheduler(
            torch.optim.SGD(_model().parameters(), lr=0.1), lr=lr, auto=False
        ).state_dict()
    )
    assert manual.last_epoch == 0 and opt2.param_groups[0]["lr"] == lr(0)
    with pytest.raises(ValueError, match="step\\(epoch\\) is not supported"):
        manual.step(3)


def test_remove_detaches_from_the_optimizer() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = HyperparamScheduler(opt, lr=S.linear(init=0.1, end=0.0, total=5))
    _train_step(model, opt, _batches(1)[0])
    sched.remove()
    _train_step(model, opt, _batches(1)[0])
    assert sched.step_count == 1 and opt.param_groups[0]["lr"] == S.linear(
        init=0.1, end=0.0, total=5
    )(1)
