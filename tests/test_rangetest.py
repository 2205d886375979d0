"""lrlab.rangetest: the sweep's bookkeeping, state safety, divergence, and the rules."""

from __future__ import annotations

import copy
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from lrlab.rangetest import (
    RangeTestResult,
    confirm,
    ladder,
    momentum_test,
    range_test,
    weight_decay_test,
)
from lrlab.rangetest import rules as R


class Probe(torch.nn.Module):
    """One scalar parameter; the 'loss' is a function of it, so every number is hand-checkable."""

    def __init__(self, w: float = 10.0) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(w, dtype=torch.float64))


def test_ladder_is_evenly_spaced_and_reaches_its_endpoints() -> None:
    # exact at the start, to rounding at the end (start * gamma ** (n - 1))
    exp = ladder(1e-7, 10.0, 100, "exp")
    values = [exp(i) for i in range(100)]
    assert values[0] == 1e-7 and values[-1] == pytest.approx(10.0, rel=1e-12)
    assert np.allclose(np.diff(np.log10(values)), 8 / 99)
    lin = ladder(0.0, 1.0, 11, "linear")
    assert [lin(i) for i in range(11)] == pytest.approx([i / 10 for i in range(11)])
    assert lin(10) == 1.0


def test_each_loss_is_paired_with_the_lr_that_produced_it() -> None:
    # loss = w, gradient 1: SGD moves w by -lr, so the loss measured after update i is
    # w0 - (lr_0 + ... + lr_i). fastai/torch-lr-finder would pair it with lr_{i+1}.
    model = Probe(10.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    result = range_test(
        model,
        opt,
        [None] * 7,
        step=lambda _: model.w * 1.0,
        start_lr=0.01,
        end_lr=1.0,
        num_updates=20,
        stop_on_divergence=False,
        refine=False,
    )
    lrs = np.array(result.lrs)
    assert result.initial_loss == 10.0
    assert result.updates == 20 and result.stop_reason == "completed"
    np.testing.assert_allclose(result.losses, 10.0 - np.cumsum(lrs), rtol=0, atol=1e-12)
    assert model.w.item() == 10.0 and opt.param_groups[0]["lr"] == 0.5  # restored


@pytest.mark.parametrize("stop", [True, False])
def test_stop_on_divergence_false_records_the_whole_blow_up(stop: bool) -> None:
    values = iter([1.0] * 10 + [10.0 * 2**k for k in range(30)])
    model = Probe()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = range_test(
        model,
        opt,
        [None],
        step=lambda _: model.w * 0.0 + next(values),
        num_updates=30,
        start_lr=1e-4,
        end_lr=1.0,
        stop_on_divergence=stop,
        refine=False,
    )
    # the first loss is the initial one; the jump is recorded as losses[9]
    if stop:
        assert r.stop_reason == "diverged" and r.updates == 10
    else:
        assert r.stop_reason == "completed" and r.updates == 30 and r.losses[-1] == 10.0 * 2**20


def test_state_and_rng_are_restored_exactly_also_when_the_step_raises() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 3)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = [(torch.randn(16, 5), torch.randint(0, 3, (16,))) for _ in range(4)]
    # give the optimizer some state and the model an eval-mode submodule
    torch.nn.functional.cross_entropy(model(data[0][0]), data[0][1]).backward()
    opt.step()
    model[1].eval()
    before_params = {k: v.clone() for k, v in model.state_dict().items()}
    before_opt = copy.deepcopy(opt.state_dict())  # state_dict() returns the live tensors
    before_grad = [p.grad.clone() for p in model.parameters()]
    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(9)
    expected = (torch.rand(3), np.random.rand(), random.random())
    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(9)

    calls = {"n": 0}

    def exploding_step(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        calls["n"] += 1
        torch.rand(1), np.random.rand(), random.random()  # consume every RNG
        if calls["n"] == 10:
            raise RuntimeError("boom")
        return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])

    with pytest.raises(RuntimeError, match="boom"):
        range_test(model, opt, data, step=exploding_step, num_updates=50)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before_params[k]), k
    after_opt = opt.state_dict()
    assert after_opt["param_groups"] == before_opt["param_groups"]
    for k, st in before_opt["state"].items():
        for name, t in st.items():
            assert torch.equal(after_opt["state"][k][name], t), (k, name)
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), before_grad))
    assert model[0].training and not model[1].training
    got = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:]


def _curve_step(model: Probe, opt: torch.optim.Optimizer, f):
    """A step whose loss is f(current LR) (plus the parameter times zero, for a gradient)."""

    def step(_: object) -> torch.Tensor:
        return model.w * 0.0 + f(opt.param_groups[0]["lr"])

    return step


@pytest.mark.parametrize("offset", [0.0, -1000.0, 1e6])
@pytest.mark.parametrize("scale", [1.0, 1e-4, 1e3])
def test_divergence_stop_works_for_any_sign_and_scale(offset: float, scale: float) -> None:
    # loss falls from 1 to 0 around 1e-3, then rises steeply after 1e-1
    def f(lr: float) -> float:
        x = math.log10(lr)
        return offset + scale * (1 / (1 + math.exp(3 * (x + 3))) + max(0.0, x + 1) ** 2 * 4)

    model = Probe()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = range_test(
        model,
        opt,
        [None],
        step=_curve_step(model, opt, f),
        num_updates=100,
        start_lr=1e-6,
        end_lr=10.0,
    )
    assert r.stop_reason == "diverged"
    # debiased EMA(0.98) crosses the initial level a few points after the raw curve does
    stop_lr = r.lrs[-1]
    assert 10**-0.5 < stop_lr < 10**0.8, stop_lr


def test_a_flat_noisy_plateau_is_not_divergence() -> None:
    # Regression: these are the first losses of a real MNIST-1D MLP sweep (seed 1) that an
    # earlier test stopped as "diverged" at 2e-6, on noise alone.
    head = [
        2.372,
        2.35,
        2.381,
        2.435,
        2.409,
        2.404,
        2.406,
        2.414,
        2.365,
        2.366,
        2.380,
        2.396,
        2.342,
        2.394,
        2.386,
        2.397,
        2.439,
        2.375,
        2.432,
    ]
    rng = np.random.default_rng(0)
    plateau = list(2.39 + 0.03 * rng.standard_normal(60))
    blow_up = [2.4 * 1.3**k for k in range(1, 30)]
    values = iter(head + plateau + blow_up)
    model = Probe()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = range_test(
        model,
        opt,
        [None],
        step=lambda _: model.w * 0.0 + next(values),
        num_updates=100,
        start_lr=1e-7,
        end_lr=10.0,
        refine=False,
    )
    assert r.stop_reason == "diverged"
    assert len(r.losses) > len(head) + len(plateau) - 1  # only after the real blow-up


def test_non_finite_loss_stops_and_is_reported() -> None:
    model = Probe()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = range_test(
        model,
        opt,
        [None],
        step=_curve_step(model, opt, lambda lr: math.nan if lr > 1e-2 else 1.0),
        num_updates=50,
        start_lr=1e-5,
        end_lr=1.0,
        refine=False,
    )
    assert r.stop_reason == "non-finite loss"
    assert math.isnan(r.losses[-1]) and all(v == 1.0 for v in r.losses[:-1])
    # this artificial loss reads the LR about to be applied, so the first NaN shows in the
    # forward pass of the first update above 1e-2 and is charged to the update before it
    step_ratio = (1.0 / 1e-5) ** (1 / 49)
    assert r.lrs[-1] <= 1e-2 < r.lrs[-1] * step_ratio


def test_param_group_ratios_survive_and_group_with_largest_lr_is_reported() -> None:
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([{"params": [a], "lr": 0.01}, {"params": [b], "lr": 0.1}], lr=0.1)
    seen = []

    def step(_: object) -> torch.Tensor:
        seen.append([g["lr"] for g in opt.param_groups])
        return (a.sum() + b.sum()) * 0.0 + 1.0

    r = range_test(
        torch.nn.ParameterList([a, b]),
        opt,
        [None],
        step=step,
        num_updates=10,
        start_lr=1e-3,
        end_lr=1.0,
        refine=False,
    )
    assert r.group_scales == [pytest.approx(0.1), 1.0]
    for (lo, hi), lr in zip(seen[:10], r.lrs):
        assert hi == pytest.approx(lr) and lo == pytest.approx(lr * 0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.1]


def test_gradient_accumulation_and_amp_skipped_steps() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    used = {"n": 0}

    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        used["n"] += 1
        return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])

    data = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(5)]
    r = range_test(
        model,
        opt,
        data,
        step=step,
        num_updates=12,
        accumulation=3,
        start_lr=1e-4,
        end_lr=1e-2,
        refine=False,
    )
    assert r.updates == 12 and used["n"] == 3 * 13  # 12 updates + the final measurement

    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    calls = {"n": 0}

    def overflowing(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        calls["n"] += 1
        loss = torch.nn.functional.cross_entropy(model(batch[0]), batch[1])
        return loss * (torch.inf if calls["n"] in (3, 4, 9) else 1.0)

    calls["n"] = 0
    r = range_test(
        model,
        opt,
        data,
        step=overflowing,
        num_updates=12,
        scaler=scaler,
        start_lr=1e-4,
        end_lr=1e-2,
        refine=False,
    )
    assert r.stop_reason == "non-finite loss"  # an infinite *loss* ends the sweep

    # infinite *gradients* with a finite loss: GradScaler skips the step, the sweep repeats the LR
    calls["n"] = 0
    handle = model.weight.register_hook(lambda g: g * torch.inf if calls["n"] in (3, 4, 9) else g)
    r = range_test(
        model,
        opt,
        data,
        step=step_counting(calls, model),
        num_updates=12,
        scaler=scaler,
        start_lr=1e-4,
        end_lr=1e-2,
        refine=False,
    )
    handle.remove()
    assert r.skipped_steps == 3 and r.updates == 12 and r.stop_reason == "completed"
    assert calls["n"] == 13 + 3


def step_counting(calls: dict[str, int], model: torch.nn.Module):
    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        calls["n"] += 1
        return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])

    return step


def test_bad_arguments_are_clear_errors() -> None:
    model = Probe()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step = _curve_step(model, opt, lambda lr: 1.0)
    for kwargs, message in [
        ({"start_lr": 1.0, "end_lr": 0.1}, r"end_lr=0.1 .*> start_lr=1.0"),
        ({"start_lr": 0.0}, r"start_lr=0.0 .*cannot start at 0"),
        ({"mode": "log"}, r"mode='log'"),
        ({"num_updates": 3}, r"num_updates=3 .*>= 5"),
        ({"smoothing": 1.0}, r"smoothing=1.0"),
    ]:
        with pytest.raises(ValueError, match=message):
            range_test(model, opt, [None], step=step, **kwargs)
    with pytest.raises(ValueError, match="no batches"):
        range_test(model, opt, [], step=step)
    with pytest.raises(ValueError, match="exactly one of loss_fn"):
        range_test(model, opt, [None])


# ------------------------------------------------------------------------------ rules


def _analytic(n: int = 100, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logistic drop from 2.3 to 0.3 centred at 1e-3, blow-up above 1e-1; exp ladder."""
    lrs = np.logspace(-7, 1, n)
    x = np.log10(lrs)
    y = 0.3 + 2.0 / (1 + np.exp(4 * (x + 3))) + 3.0 * np.clip(x + 1, 0, None) ** 2
    return lrs, y + noise * np.random.default_rng(seed).standard_normal(n)


def test_rules_on_an_analytic_curve() -> None:
    lrs, y = _analytic()
    steep = R.steepest(lrs, y)
    assert abs(math.log10(steep.lr) + 3) <= 0.1  # the logistic's steepest point, 1e-3
    sm = R.smith_loss(lrs, y)
    assert -2.0 < math.log10(sm.lr) < -0.5  # the minimum sits between the drop and the blow-up
    assert sm.low is not None and -4.0 < math.log10(sm.low) < -3.2  # 10% of the drop
    out = R.lrlab_rule(lrs, y)
    assert out.lr == pytest.approx(1.4 * sm.lr) and out.low == sm.low
    assert lrs[out.position - 1] < out.lr <= lrs[out.position]  # the first ladder LR >= it
    assert R.lrlab_rule(lrs, y, multiple=0.5).lr == pytest.approx(0.5 * sm.lr)
    # floored at the onset: a tiny multiple cannot push the suggestion below the descent
    assert R.lrlab_rule(lrs, y, multiple=1e-6).lr == pytest.approx(sm.low)
    fa_min = R.fastai_minimum(lrs, y)
    assert fa_min.lr == pytest.approx(lrs[10 + np.argmin(R.ema(y)[10:-5])] / 10)


def test_divergence_test_by_hand() -> None:
    # flat at 1.0 (no noise: spread is the 1e-12 floor), then a jump to 1000: the debiased
    # EMA after 31 points is 1 + 999 x 0.02 / (1 - 0.98**31) = 38.1, far above best + spread
    t = R.DivergenceTest(num_updates=30)
    for _ in range(30):
        assert t.update(1.0) == pytest.approx(1.0) and not t.fired
    assert t.update(1000.0) == pytest.approx(1 + 999 * 0.02 / (1 - 0.98**31))
    assert t.fired
    # not judged before the warm-th point, max(5, n // 10): the jump at point 7 fires at once
    # with n = 30, only at point 10 with n = 100
    for n, expected in ((30, 7), (100, 10)):
        t = R.DivergenceTest(num_updates=n)
        fired = [(t.update(1.0 if i < 7 else 1000.0), t.fired)[1] for i in range(1, 15)]
        assert fired.index(True) + 1 == expected
    # the spread: start (median of the first points, initial loss included) minus best;
    # a rise to best + 0.9 x spread does not fire, with factor=0.5 it does
    for factor, fires in ((1.0, False), (0.5, True)):
        t = R.DivergenceTest(num_updates=100, beta=0.0, factor=factor, initial=2.0)
        for v in [2.0] * 20 + [1.0] * 20 + [1.9]:
            t.update(v)
        assert t.fired is fires


def test_fastai_steep_and_valley_by_hand() -> None:
    lrs = np.logspace(-4, 0, 30)
    # after fastai's trimming ([3:-5]) and EMA the steepest forward difference is at the cliff
    y = np.where(lrs < 1e-2, 2.0, 0.5)
    out = R.fastai_steep(lrs, y, num_it=30)
    view = lrs[3:-5]
    ema = R.ema(y)[3:-5]
    g = (ema[1:] - ema[:-1]) / np.diff(np.log(view))
    assert out.lr == view[int(np.argmin(g))]
    # A strictly decreasing curve: after trimming [4:-5] (31 points) the longest descent ends
    # at 30 with length 31, so fastai's max_start = 30 - 31 = -1 (its off-by-one);
    # sections = 31 / 3 and idx = -1 + int(10.33) + int(5.17) = 14.
    grid = np.logspace(-5, 0, 40)
    v = R.fastai_valley(grid, np.linspace(3, 1, 40), num_it=40)
    assert v.position == 14 and v.lr == grid[4:-5][14]


def test_suggestion_spread_grows_with_noise_and_flags_a_noisy_curve() -> None:
    lrs, clean = _analytic()
    quiet = RangeTestResult(
        "exp", 1e-7, 10.0, 100, list(lrs), list(clean), list(clean), "diverged", 100
    )
    _, noisy_y = _analytic(noise=0.6, seed=3)
    noisy = RangeTestResult(
        "exp", 1e-7, 10.0, 100, list(lrs), list(noisy_y), list(noisy_y), "diverged", 100
    )
    a, b = quiet.suggest(), noisy.suggest()
    assert a.spread_decades <= 8 / 99 and a.confident  # at most one ladder step on a clean curve
    assert b.spread_decades > 2 * a.spread_decades
    narrow = RangeTestResult(
        "exp", 1e-7, 1e-3, 60, list(lrs[:60]), list(clean[:60]), list(clean[:60]), "completed", 60
    )
    assert any("still falling" in w for w in narrow.suggest().warnings)


def test_bounds_per_schedule_and_json_round_trip(tmp_path: Path) -> None:
    lrs, y = _analytic(noise=0.02)
    acc = list(np.clip(1 - y / 2.5, 0, 1))
    r = RangeTestResult(
        "exp",
        1e-7,
        10.0,
        100,
        list(lrs),
        list(y),
        list(y),
        "diverged",
        100,
        initial_loss=2.3,
        train_accuracy=acc,
    )
    s = r.suggest()
    oc = r.bounds("one_cycle")
    assert (oc.max_lr, oc.base_lr) == (s.lr, s.lr / 10)
    clr = r.bounds("clr", iters_per_epoch=50)
    assert (clr.base_lr, clr.max_lr, clr.step_size) == (s.lr / 4, s.lr, 200)
    assert r.bounds("constant").max_lr == pytest.approx(s.lr / 3)
    with pytest.raises(ValueError, match="schedule='cosine'"):
        r.bounds("cosine")
    with pytest.raises(ValueError, match="rule='best'"):
        r.suggest("best")
    assert r.suggest("smith_accuracy").lr > 0
    r.losses[-1] = math.nan
    back = RangeTestResult.from_json(r.to_json())
    assert (
        math.isnan(back.losses[-1])
        and back.lrs == r.lrs
        and back.train_accuracy == r.train_accuracy
    )
    out = r.plot(tmp_path / "rt.png")
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_momentum_and_weight_decay_tests_pick_by_validation_loss(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(600, 10)
    y = (x @ torch.randn(10, 3)).argmax(1)
    data = [(x[i : i + 50], y[i : i + 50]) for i in range(0, 400, 50)]
    val = [(x[400:], y[400:])]
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    m = momentum_test(
        model,
        opt,
        data,
        val_data=val,
        base_lr=0.01,
        max_lr=0.5,
        loss_fn=torch.nn.functional.cross_entropy,
        num_updates=40,
    )
    assert m.values == [0.8, 0.85, 0.9, 0.95, 0.99] and len(m.runs) == 5
    assert m.best == m.values[int(np.argmin(m.scores))]
    w = weight_decay_test(
        model,
        opt,
        data,
        val_data=val,
        base_lr=0.01,
        max_lr=0.5,
        loss_fn=torch.nn.functional.cross_entropy,
        num_updates=40,
        values=(1e-3, 0.0),
    )
    assert w.best in (1e-3, 0.0)
    assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["weight_decay"] == 1e-4
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert m.plot(tmp_path / "m.png").exists()
    with pytest.raises(ValueError, match="momentum=0"):
        momentum_test(
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            data,
            val_data=val,
            base_lr=0.01,
            max_lr=0.1,
            loss_fn=torch.nn.functional.cross_entropy,
        )


def test_confirm_step_keeps_the_lowest_validation_loss_and_restores_state() -> None:
    torch.manual_seed(0)
    x = torch.randn(512, 10)
    y = (x @ torch.randn(10, 3)).argmax(1)
    data = [(x[i : i + 64], y[i : i + 64]) for i in range(0, 384, 64)]
    val = [(x[384:], y[384:])]
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    r = confirm(
        model,
        opt,
        data,
        [1e-4, 0.1, 1e4],
        loss_fn=torch.nn.functional.cross_entropy,
        val_data=val,
        updates_each=30,
    )
    assert r.updates == 90 and r.val_losses[2] == math.inf  # 1e4 diverges
    assert r.val_losses[1] < r.val_losses[0]  # 1e-4 barely moves in 30 updates
    assert r.best == 0.1
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert opt.param_groups[0]["lr"] == 0.05 and opt.param_groups[0]["momentum"] == 0.9
    with pytest.raises(ValueError, match="candidates"):
        confirm(model, opt, data, [], loss_fn=torch.nn.functional.cross_entropy, val_data=val)


def test_the_users_own_step_hooks_are_off_during_a_sweep_and_a_confirm_run() -> None:
    # A scheduler already attached to the optimizer must not count the sweep's updates
    # (its position would silently advance) nor write its LR into the sweep.
    from lrlab.optim import HyperparamScheduler
    from lrlab.schedules import Linear

    torch.manual_seed(0)
    x = torch.randn(256, 6)
    y = (x[:, 0] > 0).long()
    data = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)]
    model = torch.nn.Linear(6, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    schedule = Linear(init=0.3, end=0.0, total=100)
    users = HyperparamScheduler(opt, lr=schedule)
    seen: list[int] = []
    opt.register_step_post_hook(lambda *_: seen.append(1))
    loss = torch.nn.functional.cross_entropy
    result = range_test(
        model,
        opt,
        data,
        loss_fn=loss,
        start_lr=1e-4,
        end_lr=1.0,
        num_updates=30,
        stop_on_divergence=False,
        refine=False,
    )
    # the sweep's ladder, not the user's schedule (0.3 falling), set each update's LR
    np.testing.assert_allclose(result.lrs, [ladder(1e-4, 1.0, 30, "exp")(i) for i in range(30)])
    confirm(model, opt, data, [0.01, 0.1], loss_fn=loss, val_data=data[:1], updates_each=5)
    assert users.step_count == 0 and seen == []
    assert opt.param_groups[0]["lr"] == 0.3
    # and the hooks are back: a real update counts once
    loss(model(x[:32]), y[:32]).backward()
    opt.step()
    assert users.step_count == 1 and seen == [1]
    assert opt.param_groups[0]["lr"] == schedule(1) == pytest.approx(0.3 * 98 / 99)


def test_a_value_whose_sweep_blew_up_never_wins_the_hyper_test() -> None:
    # loss = w; weight decay 1e5 multiplies w by about -1000 an update until it overflows.
    # The evaluation rewards large |w|, so the evaluations made before the blow-up look
    # best of all: only a completed sweep may be scored.
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(10.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.0, weight_decay=0.0)
    data = [(torch.ones(1, 1), torch.zeros(1))]

    def evaluate() -> dict[str, float]:
        return {"loss": 1.0 / (1.0 + float(model.weight) ** 2)}

    w = weight_decay_test(
        model,
        opt,
        data,
        val_data=data,
        base_lr=0.01,
        max_lr=0.5,
        loss_fn=lambda out, _: out.sum(),
        num_updates=40,
        values=(1e5, 0.0),
        evaluate=evaluate,
    )
    blown, kept = w.runs
    assert blown.stop_reason == "non-finite loss" and kept.stop_reason == "completed"
    assert blown.val_losses and min(blown.val_losses[1:]) < min(kept.val_losses[1:])
    assert w.scores[0] == math.inf and math.isfinite(w.scores[1]) and w.best == 0.0
