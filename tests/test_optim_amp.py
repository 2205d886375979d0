"""Steps a real ``torch.amp.GradScaler`` skips are never updates, fused or not.

A non-fused optimizer's overflowing step is skipped by GradScaler not calling
``step()``; a fused one (``fused=True`` AdamW, SGD) is always called, with ``found_inf``
set, and skips inside the kernel while its step hooks still run. Every test here counts
the real updates independently of lrlab (the weights changed bit for bit, or the scaler
backed off its scale) and checks lrlab's count and the values written at each real
update against that truth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pytest
import torch
import torch.nn.functional as F

from lrlab import schedules as S
from lrlab.optim import LARS, AutoLLR, HyperparamScheduler, Instrument, param_groups
from lrlab.rangetest import range_test

LR = S.triangular(base_lr=0.01, max_lr=0.1, step_size=7)  # a new value at every update
MOM = S.cyclical_momentum(LR, low=0.8, high=0.9)
INF_AT = (3, 7, 8, 20, 33)
# Also the first step: update 0 must still get LR(0). Not for fused SGD with momentum:
# torch allocates its momentum buffers with empty_like on the first step and a skipped
# first step leaves them uninitialised, so the next real update reads garbage (a torch
# bug, independent of lrlab).
INF_AT_FIRST = (0, *INF_AT)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # identical float results run to run
    yield
    torch.set_num_threads(threads)


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


def _optimizer(kind: str, fused: bool, params: object, **kw: float) -> torch.optim.Optimizer:
    if kind == "SGD":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9, fused=fused, **kw)  # type: ignore[arg-type]
    return torch.optim.AdamW(params, lr=0.1, fused=fused, **kw)  # type: ignore[arg-type]


class CountingScaler(torch.amp.GradScaler):
    """A real GradScaler that also counts the updates where it backed off (found inf/NaN)."""

    def __init__(self, **kw: float) -> None:
        super().__init__("cpu", **kw)
        self.backoffs: list[bool] = []

    def update(self, new_scale: float | torch.Tensor | None = None) -> None:
        before = self.get_scale()
        super().update(new_scale)
        self.backoffs.append(self.get_scale() < before)


def _train(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    scaler: CountingScaler,
    steps: int,
    *,
    dtype: torch.dtype,
    inf_at: Sequence[int] = (),
    data_scale: float = 1.0,
    unscale: bool = False,
) -> tuple[list[bool], list[tuple[float, float]]]:
    """Per step: did the weights change; per real update: the (lr, momentum) it used."""
    g = torch.Generator().manual_seed(1)
    real, used = [], []
    key = "betas" if "betas" in opt.param_groups[0] else "momentum"
    for i in range(steps):
        x, y = torch.randn(8, 6, generator=g) * data_scale, torch.randint(0, 3, (8,), generator=g)
        with torch.autocast("cpu", dtype=dtype):
            loss = F.cross_entropy(model(x).float(), y)
        scaler.scale(loss).backward()
        if i in inf_at:
            model[0].weight.grad[0, 0] = math.inf
        if unscale:  # the gradient-clipping recipe: unscale_, clip, then step
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        group = opt.param_groups[0]
        values = (group["lr"], group[key][0] if key == "betas" else group[key])
        before = [p.detach().clone() for p in model.parameters()]
        scaler.step(opt)
        scaler.update()
        changed = any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
        real.append(changed)
        if changed:
            used.append(values)
        opt.zero_grad(set_to_none=True)
    return real, used


def _check_driver(
    driver: HyperparamScheduler, opt: torch.optim.Optimizer, used: list[tuple[float, float]]
) -> None:
    k = len(used)
    assert driver.step_count == k
    assert used == [(LR(t), MOM(t)) for t in range(k)]  # exact: the schedule's own floats
    assert opt.param_groups[0]["lr"] == LR(k)  # the next real update's value is in place
    if isinstance(opt, torch.optim.AdamW):  # torch's own update count agrees
        assert {float(s["step"]) for s in opt.state.values()} == {float(k)}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "plain"])
@pytest.mark.parametrize("kind", ["AdamW", "SGD"])
def test_injected_inf_steps_are_not_updates(kind: str, fused: bool, dtype: torch.dtype) -> None:
    inf_at = INF_AT if kind == "SGD" and fused else INF_AT_FIRST
    model = _model()
    opt = _optimizer(kind, fused, model.parameters())
    driver = HyperparamScheduler(opt, lr=LR, momentum=MOM)
    scaler = CountingScaler(init_scale=2.0**10)
    real, used = _train(model, opt, scaler, 40, dtype=dtype, inf_at=inf_at)
    assert real == [i not in inf_at for i in range(40)]
    assert scaler.backoffs == [i in inf_at for i in range(40)]
    assert len(used) == 40 - len(inf_at)
    _check_driver(driver, opt, used)


@pytest.mark.parametrize(
    ("kind", "fused", "init_scale", "growth_interval"),
    [
        # a loss scale far above what fp16 gradients hold: the first 7 steps overflow
        # until the scaler has backed off, then growth makes it overflow now and then
        ("AdamW", True, 2.0**24, 3),
        ("AdamW", False, 2.0**24, 3),
        # a clean start, then a scale doubling every 2 clean steps up to overflow
        ("AdamW", True, 2.0**10, 2),
        ("AdamW", False, 2.0**10, 2),
        ("SGD", True, 2.0**10, 2),  # not a skipped first step: see INF_AT_FIRST
        ("SGD", False, 2.0**10, 2),
        ("SGD", False, 2.0**24, 3),
    ],
)
def test_natural_fp16_overflows_are_not_updates(
    kind: str, fused: bool, init_scale: float, growth_interval: int
) -> None:
    model = _model()
    opt = _optimizer(kind, fused, model.parameters())
    driver = HyperparamScheduler(opt, lr=LR, momentum=MOM)
    scaler = CountingScaler(init_scale=init_scale, growth_interval=growth_interval)
    real, used = _train(model, opt, scaler, 60, dtype=torch.float16)
    skipped = real.count(False)
    assert [not r for r in real] == scaler.backoffs  # the weights and the scaler agree
    assert skipped >= 10 and any(not r for r in real[30:])
    assert all(real[:16]) if init_scale < 2**16 else not any(real[:7])
    assert len(used) == 60 - skipped
    _check_driver(driver, opt, used)


def test_unscale_then_step_fused() -> None:
    # After scaler.unscale_ (to clip), a fused step gets grad_scale=None and found_inf still.
    model = _model()
    opt = _optimizer("AdamW", True, model.parameters())
    driver = HyperparamScheduler(opt, lr=LR, momentum=MOM)
    scaler = CountingScaler(init_scale=2.0**10)
    real, used = _train(
        model, opt, scaler, 40, dtype=torch.bfloat16, inf_at=INF_AT_FIRST, unscale=True
    )
    assert real == [i not in INF_AT_FIRST for i in range(40)]
    _check_driver(driver, opt, used)


def _paired(
    kind: str, build: Callable[[torch.optim.Optimizer], object], steps: int = 30, **opt_kw: float
) -> tuple[list[object], list[torch.nn.Module], list[list[bool]]]:
    """The same run with the fused and the plain optimizer; injected inf steps."""
    attached, models, reals = [], [], []
    for fused in (True, False):
        model = _model()
        opt = _optimizer(kind, fused, param_groups(model, no_decay_bias_norm=False), **opt_kw)
        attached.append(build(opt))
        scaler = CountingScaler(init_scale=2.0**12)
        real, _ = _train(model, opt, scaler, steps, dtype=torch.bfloat16, inf_at=INF_AT)
        models.append(model)
        reals.append(real)
    return attached, models, reals


def test_instrument_counts_real_updates_and_unscaled_gradients() -> None:
    (fused, plain), _, reals = _paired("AdamW", lambda opt: Instrument(opt, every=2))
    assert reals[0] == reals[1] == [i not in INF_AT for i in range(30)]
    for inst in (fused, plain):
        assert isinstance(inst, Instrument)
        # 26 real updates, sampled at 0, 2, ..., 24 in each of the 2 param groups
        assert [r.step for r in inst.records] == [s for s in range(0, 26, 2) for _ in range(2)]
        assert all(math.isfinite(r.grad_norm) and r.grad_norm > 0 for r in inst.records)
    assert isinstance(fused, Instrument) and isinstance(plain, Instrument)
    for a, b in zip(fused.records, plain.records):  # the fused kernel's grads carry the scale
        assert a.grad_norm == pytest.approx(b.grad_norm, rel=1e-4)
        assert a.effective_lr == pytest.approx(b.effective_lr, rel=1e-3)


@pytest.mark.parametrize("variant", ["norm_change", "secant"])
def test_auto_llr_skips_overflow_steps_and_unscales(variant: str) -> None:
    def build(opt: torch.optim.Optimizer) -> AutoLLR:
        auto = AutoLLR(opt, warmup=3, variant=variant)
        HyperparamScheduler(opt, lr=LR, groups=auto.groups())
        return auto

    (fused, plain), _, _ = _paired("AdamW", build)
    assert isinstance(fused, AutoLLR) and isinstance(plain, AutoLLR)
    assert fused._seen == plain._seen == 25  # 26 real updates; the first only records norms
    assert all(math.isfinite(r) for r in fused.ratios)
    assert fused.multipliers == pytest.approx(plain.multipliers, rel=1e-3)
    assert fused.multipliers != [1.0, 1.0]


def test_lars_fused_matches_plain_under_grad_scaler() -> None:
    # LARS rescales the gradients in a pre-hook; the fused kernel then divides by the loss
    # scale, so the rescaled gradients must be in scaled units and the norms unscaled.
    (fused, plain), (mf, mp), _ = _paired(
        "SGD", lambda opt: LARS(opt, trust_coefficient=0.02), weight_decay=1e-3
    )
    assert isinstance(fused, LARS) and isinstance(plain, LARS)
    for a, b in zip(mf.parameters(), mp.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    ratios = [r for rs in fused.last_ratios for r in rs]
    assert ratios == pytest.approx([r for rs in plain.last_ratios for r in rs], rel=1e-5)
    assert len(ratios) == 4 and all(math.isfinite(r) and 0 < r < 1 for r in ratios)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "plain"])
def test_range_test_counts_fp16_skips(fused: bool) -> None:
    model = _model()
    opt = _optimizer("AdamW", fused, model.parameters())
    g = torch.Generator().manual_seed(2)
    data = [(torch.randn(8, 6, generator=g) * 10, torch.randint(0, 3, (8,), generator=g))]

    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.float16):
            return F.cross_entropy(model(batch[0]).float(), batch[1])

    scaler = CountingScaler(init_scale=2.0**24, growth_interval=4)
    result = range_test(
        model,
        opt,
        data * 8,
        step=step,
        start_lr=1e-5,
        end_lr=1e-2,
        num_updates=30,
        scaler=scaler,
        stop_on_divergence=False,
        refine=False,
    )
    assert result.stop_reason == "completed" and result.updates == 30
    assert result.skipped_steps == sum(scaler.backoffs) >= 10
    assert len(scaler.backoffs) == 30 + result.skipped_steps
