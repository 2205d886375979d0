"""lrlab's schedules against PyTorch's own schedulers, over whole runs, to 1e-9.

Each reference sequence is produced by running the real ``torch.optim.lr_scheduler``
class: entry ``t`` is the value in the optimizer when update ``t`` happens.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.optim import lr_scheduler as tls

from lrlab import schedules as S

TOL = 1e-9


def _optimizer(kind: str = "sgd", lr: float = 0.1) -> torch.optim.Optimizer:
    p = torch.nn.Parameter(torch.zeros(1))
    if kind == "adam":
        return torch.optim.Adam([p], lr=lr, betas=(0.9, 0.999))
    return torch.optim.SGD([p], lr=lr, momentum=0.9)


def _torch_run(
    opt: torch.optim.Optimizer, sched: tls.LRScheduler, n: int
) -> tuple[list[float], list[float]]:
    """(lr, momentum) used by updates 0..n-1 under a PyTorch scheduler."""
    lrs, moms = [], []
    g = opt.param_groups[0]
    for _ in range(n):
        lrs.append(float(g["lr"]))
        moms.append(float(g["betas"][0] if "betas" in g else g["momentum"]))
        opt.step()
        sched.step()
    return lrs, moms


def _assert_close(ours: list[float], ref: list[float]) -> None:
    assert len(ours) == len(ref)
    worst = max(abs(a - b) for a, b in zip(ours, ref))
    assert worst <= TOL, f"max abs difference {worst:g}"


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
@pytest.mark.parametrize("down", [None, 7])
def test_cyclic_lr_all_modes_with_momentum(mode: str, down: int | None) -> None:
    opt = _optimizer()
    ref = tls.CyclicLR(
        opt,
        base_lr=0.01,
        max_lr=0.4,
        step_size_up=5,
        step_size_down=down,
        mode=mode,
        gamma=0.99,
        cycle_momentum=True,
        base_momentum=0.85,
        max_momentum=0.95,
    )
    n = 60
    ref_lr, ref_mom = _torch_run(opt, ref, n)
    kwargs = {"base_lr": 0.01, "max_lr": 0.4, "step_size": 5, "step_size_down": down}
    ours = (
        S.exp_range(**kwargs, gamma=0.99)
        if mode == "exp_range"
        else S.schedule_class(mode)(**kwargs)
    )
    _assert_close([ours(t) for t in range(n)], ref_lr)
    mom = S.cyclical_momentum(ours, low=0.85, high=0.95)
    _assert_close([mom(t) for t in range(n)], ref_mom)


@pytest.mark.parametrize(
    ("anneal", "three_phase", "total", "pct"),
    [
        ("cos", False, 100, 0.3),
        ("linear", False, 100, 0.3),
        ("cos", True, 100, 0.3),
        ("linear", True, 97, 0.25),
        ("cos", False, 37, 0.45),
    ],
)
@pytest.mark.parametrize("opt_kind", ["sgd", "adam"])
def test_one_cycle_lr(
    anneal: str, three_phase: bool, total: int, pct: float, opt_kind: str
) -> None:
    opt = _optimizer(opt_kind)
    ref = tls.OneCycleLR(
        opt,
        max_lr=0.8,
        total_steps=total,
        pct_start=pct,
        anneal_strategy=anneal,
        div_factor=20.0,
        final_div_factor=1e3,
        three_phase=three_phase,
    )
    ref_lr, ref_mom = _torch_run(opt, ref, total)
    ours = S.one_cycle_torch(
        max_lr=0.8,
        total=total,
        pct_start=pct,
        anneal=anneal,
        div_factor=20.0,
        final_div_factor=1e3,
        three_phase=three_phase,
    )
    _assert_close([ours(t) for t in range(total)], ref_lr)
    _assert_close([S.cyclical_momentum(ours)(t) for t in range(total)], ref_mom)


def test_one_cycle_past_the_end_holds_where_pytorch_extrapolates() -> None:
    # PyTorch's last allowed step evaluates the final phase at pct > 1: a negative LR
    # with anneal_strategy='linear' (and a rebound with 'cos'); one more step raises.
    opt = _optimizer()
    ref = tls.OneCycleLR(opt, max_lr=1.0, total_steps=10, anneal_strategy="linear")
    ref_lr, _ = _torch_run(opt, ref, 10)  # its last scheduler.step() reached step 10
    assert opt.param_groups[0]["lr"] < 0  # written into the optimizer for an 11th update
    with pytest.raises(ValueError, match="Tried to step"):
        opt.step()
        ref.step()
    ours = S.one_cycle_torch(max_lr=1.0, total=10, anneal="linear")
    _assert_close([ours(t) for t in range(10)], ref_lr)
    assert ours(10) == ours(9) == ours(10_000) == pytest.approx(1.0 / 25 / 1e4)
    with pytest.raises(ValueError, match="past the end"):
        S.one_cycle_torch(max_lr=1.0, total=10, after_end="error")(10)


@pytest.mark.parametrize(("t_0", "t_mult"), [(7, 1), (3, 2), (2, 3)])
def test_cosine_annealing_warm_restarts(t_0: int, t_mult: int) -> None:
    opt = _optimizer(lr=0.3)
    ref = tls.CosineAnnealingWarmRestarts(opt, T_0=t_0, T_mult=t_mult, eta_min=0.001)
    n = 80
    ref_lr, _ = _torch_run(opt, ref, n)
    ours = S.sgdr(max_lr=0.3, t_0=t_0, t_mult=t_mult, eta_min=0.001)
    _assert_close([ours(t) for t in range(n)], ref_lr)


def test_step_multistep_exponential() -> None:
    n = 50
    opt = _optimizer(lr=0.5)
    ref_lr, _ = _torch_run(opt, tls.StepLR(opt, step_size=7, gamma=0.3), n)
    _assert_close([S.step(init=0.5, step_size=7, gamma=0.3)(t) for t in range(n)], ref_lr)

    opt = _optimizer(lr=0.5)
    ref_lr, _ = _torch_run(opt, tls.MultiStepLR(opt, milestones=[5, 6, 30], gamma=0.1), n)
    ours = S.multistep(init=0.5, milestones=(5, 6, 30), gamma=0.1)
    _assert_close([ours(t) for t in range(n)], ref_lr)

    opt = _optimizer(lr=0.5)
    ref_lr, _ = _torch_run(opt, tls.ExponentialLR(opt, gamma=0.93), n)
    _assert_close([S.exponential(init=0.5, gamma=0.93)(t) for t in range(n)], ref_lr)


def test_cosine_linear_polynomial_endpoint_convention() -> None:
    # lrlab reaches the end value at the last update it covers: PyTorch's T_max / total_iters
    # is lrlab's total - 1.
    n = 25
    opt = _optimizer(lr=0.2)
    ref_lr, _ = _torch_run(opt, tls.CosineAnnealingLR(opt, T_max=n - 1, eta_min=0.01), n)
    _assert_close([S.cosine(init=0.2, end=0.01, total=n)(t) for t in range(n)], ref_lr)

    opt = _optimizer(lr=0.2)
    ref_lr, _ = _torch_run(opt, tls.PolynomialLR(opt, total_iters=n - 1, power=2.0), n)
    _assert_close([S.polynomial(init=0.2, power=2.0, total=n)(t) for t in range(n)], ref_lr)

    opt = _optimizer(lr=0.2)
    ref = tls.LinearLR(opt, start_factor=0.25, end_factor=1.0, total_iters=n - 1)
    ref_lr, _ = _torch_run(opt, ref, n)
    _assert_close([S.linear(init=0.05, end=0.2, total=n)(t) for t in range(n)], ref_lr)


def test_cosine_annealing_lr_rises_after_t_max_but_lrlab_holds() -> None:
    opt = _optimizer(lr=1.0)
    ref_lr, _ = _torch_run(opt, tls.CosineAnnealingLR(opt, T_max=10), 21)
    assert ref_lr[20] == pytest.approx(1.0)  # PyTorch: back at the top after 2 * T_max
    ours = S.cosine(init=1.0, total=11)
    assert ours(20) == ours(10) == 0.0


def test_fastai_one_cycle_matches_fastai_formula() -> None:
    # fastai is not installable beside this torch; its combined_cos is transcribed here
    # from fastai/callback/schedule.py (SchedCos + combine_scheds) as the reference.
    def sched_cos(start: float, end: float, pos: float) -> float:
        return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2

    def combined_cos(pct: float, start: float, middle: float, end: float, pos: float) -> float:
        if pos < pct:
            return sched_cos(start, middle, pos / pct)
        return sched_cos(middle, end, (pos - pct) / (1 - pct))

    total, lr_max = 40, 0.3
    ours = S.one_cycle_fastai(max_lr=lr_max, total=total)
    mom = S.cyclical_momentum(ours)
    for t in range(total):
        pos = t / total
        assert ours(t) == pytest.approx(
            combined_cos(0.25, lr_max / 25, lr_max, lr_max / 1e5, pos), abs=TOL
        )
        assert mom(t) == pytest.approx(combined_cos(0.25, 0.95, 0.85, 0.95, pos), abs=TOL)
