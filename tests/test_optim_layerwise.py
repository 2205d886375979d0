"""Layer-wise tools: groups, policies, freezing, LARS/LARC, automatic LLR, instrumentation."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from lrlab import schedules as S
from lrlab.optim import (
    LARC,
    LARS,
    AutoLLR,
    FreezePlan,
    HyperparamScheduler,
    Instrument,
    combine,
    cyclical_layers,
    fixed,
    freeze,
    interpolate,
    override,
    param_groups,
    unfreeze,
)


class Blocky(nn.Module):
    """A ResNet-shaped toy: stem, two named blocks with batch norm, a head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(6, 8)
        self.layer1 = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layer2(self.layer1(torch.relu(self.stem(x)))))


BLOCKS = ["stem*", "layer1*", "layer2*", "fc*"]


def _data(n: int = 12, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(n)
    ]


def _train(model: nn.Module, opt: torch.optim.Optimizer, data, hook=None) -> None:
    model.train()
    for t, (x, y) in enumerate(data):
        if hook is not None:
            hook(t)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


# ---------------------------------------------------------------------------- groups


def test_param_groups_by_depth_and_by_blocks() -> None:
    torch.manual_seed(0)
    m = Blocky()
    by_depth = param_groups(m, weight_decay=1e-4)
    assert [(g["name"], g["depth"]) for g in by_depth] == [
        ("stem", 0),
        ("stem.no_decay", 0),
        ("layer1.0", 1),
        ("layer1.0.no_decay", 1),
        ("layer1.1.no_decay", 2),
        ("layer2.0", 3),
        ("layer2.0.no_decay", 3),
        ("layer2.1.no_decay", 4),
        ("fc", 5),
        ("fc.no_decay", 5),
    ]
    assert {g["weight_decay"] for g in by_depth if g["name"].endswith("no_decay")} == {0.0}
    blocks = param_groups(m, by="blocks", blocks=BLOCKS, weight_decay=5e-4)
    assert [(g["name"], g["depth"], len(g["params"])) for g in blocks] == [
        ("stem", 0, 1),
        ("stem.no_decay", 0, 1),
        ("layer1", 1, 1),
        ("layer1.no_decay", 1, 3),
        ("layer2", 2, 1),
        ("layer2.no_decay", 2, 3),
        ("fc", 3, 1),
        ("fc.no_decay", 3, 1),
    ]
    assert sum(len(g["params"]) for g in blocks) == len(list(m.parameters()))
    together = param_groups(m, by="blocks", blocks=BLOCKS, no_decay_bias_norm=False)
    assert [g["name"] for g in together] == ["stem", "layer1", "layer2", "fc"]
    with pytest.raises(
        ValueError, match=r"2 parameter\(s\) match no pattern \(fc.weight, fc.bias\)"
    ):
        param_groups(m, by="blocks", blocks=BLOCKS[:3])
    with pytest.raises(ValueError, match="by='layers'"):
        param_groups(m, by="layers")


# ---------------------------------------------------------------------------- policies


def test_policies_through_the_driver() -> None:
    torch.manual_seed(0)
    m = Blocky()
    groups = param_groups(m, by="blocks", blocks=BLOCKS, no_decay_bias_norm=False)
    lr = S.one_cycle(max_lr=0.5, total=30)

    spec = interpolate(groups, first=1.0, last=0.01)  # geometric: 1, 0.215.., 0.0464.., 0.01
    assert [round(s["lr_scale"], 6) for s in spec] == [1.0, 0.215443, 0.046416, 0.01]
    lin = interpolate(groups, first=0.1, last=1.0, geometric=False)
    assert [round(s["lr_scale"], 6) for s in lin] == [0.1, 0.4, 0.7, 1.0]

    opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    wave = cyclical_layers(groups, S.triangular(0.5, 1.5, step_size=4), offset=2)
    decayed = override(groups, "layer1*", lr=S.step(init=0.2, step_size=10, gamma=0.1))
    sched = HyperparamScheduler(opt, lr=S.constant(level=0.1), groups=combine(wave, decayed))
    tri = S.triangular(0.5, 1.5, step_size=4)
    for t in range(20):
        lrs = [g["lr"] for g in opt.param_groups]
        assert lrs[0] == pytest.approx(0.1 * tri(t))
        assert lrs[1] == S.step(init=0.2, step_size=10, gamma=0.1)(t)  # own schedule wins
        assert lrs[2] == pytest.approx(0.1 * tri(max(0, t - 4)))
        assert lrs[3] == pytest.approx(0.1 * tri(max(0, t - 6)))
        sched.set_step(t + 1)
    sched.remove()

    opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    HyperparamScheduler(opt, lr=lr, groups=combine(fixed(groups, {"fc": 3.0, 1: 0.5}), spec))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx(
        [lr(0) * 1.0, lr(0) * 0.5 * 0.215443469, lr(0) * 0.046415888, lr(0) * 3.0 * 0.01]
    )
    with pytest.raises(ValueError, match="two policies both set 'lr'"):
        combine(decayed, decayed)
    with pytest.raises(ValueError, match=r"no param group matches \['head'\]"):
        fixed(groups, {"head": 2.0})


# ---------------------------------------------------------------------------- freezing


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
        lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-2),
    ],
    ids=["sgd", "adamw"],
)
def test_frozen_blocks_stop_changing_bit_for_bit(make_opt) -> None:
    torch.manual_seed(0)
    m = Blocky()
    opt = make_opt(m.parameters())
    plan = FreezePlan([freeze("*", at=5, unit="update", except_blocks="layer2*")])
    data = _data(15)
    snap: dict[str, torch.Tensor] = {}

    def hook(t: int) -> None:
        plan.apply(m, opt, t)
        if t == 5:
            snap.update({k: v.clone() for k, v in m.state_dict().items()})

    _train(m, opt, data, hook)
    for k, v in m.state_dict().items():
        if k.startswith("layer2"):
            if "num_batches" not in k:
                assert not torch.equal(v, snap[k]), k  # the block that trains moved
        else:
            assert torch.equal(v, snap[k]), k  # frozen: weights and BN running stats fixed
    assert not m.layer1[1].training and m.layer2[1].training  # frozen BN forced to eval


def test_batch_norm_stats_follow_the_option_and_state_policy() -> None:
    torch.manual_seed(0)
    m = Blocky()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    plan = FreezePlan(
        [freeze("layer1*", at=2, unit="update")], optimizer_state="drop", freeze_bn_stats=False
    )
    before = {}

    def hook(t: int) -> None:
        plan.apply(m, opt, t)
        if t == 2:
            before["mean"] = m.layer1[1].running_mean.clone()
            before["w"] = m.layer1[0].weight.clone()

    _train(m, opt, _data(6), hook)
    assert not torch.equal(m.layer1[1].running_mean, before["mean"])  # stats still updating
    assert torch.equal(m.layer1[0].weight, before["w"])
    assert m.layer1[0].weight not in opt.state  # momentum buffer dropped
    assert m.layer2[0].weight in opt.state


def test_unfreeze_with_lr_scale_and_freeze_after_decay() -> None:
    torch.manual_seed(0)
    m = Blocky()
    groups = param_groups(m, by="blocks", blocks=BLOCKS, no_decay_bias_norm=False)
    # experiment D: network-wide step decay at epoch 2, then freeze all but layer2 at epoch 3;
    # layer1 comes back at epoch 4 with a tenth of the rate
    plan = FreezePlan(
        [freeze("*", at=3, except_blocks="layer2*"), unfreeze("layer1*", at=4, lr_scale=0.1)],
        iters_per_epoch=10,
    )
    names = {id(p): n for n, p in m.named_parameters()}
    scales = plan.lr_scales(groups, names)
    assert scales[0] == 1.0 and scales[2] == 1.0 and scales[3] == 1.0
    assert [scales[1](t) for t in (0, 39, 40, 99)] == [1.0, 1.0, 0.1, 0.1]
    opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    lr = S.multistep(init=0.1, milestones=(20,), gamma=0.1)
    HyperparamScheduler(opt, lr=lr, groups=[{"lr_scale": s} for s in scales])
    seen = []
    _train(
        m,
        opt,
        _data(50),
        hook=lambda t: (
            plan.apply(m, opt, t),
            seen.append(
                (
                    t,
                    m.layer1[0].weight.requires_grad,
                    m.stem.weight.requires_grad,
                    opt.param_groups[1]["lr"],
                )
            ),
        ),
    )
    assert seen[29][1:3] == (True, True) and seen[30][1:3] == (False, False)
    assert seen[40][1:] == (True, False, pytest.approx(0.01 * 0.1))
    assert seen[19][3] == 0.1 and seen[20][3] == pytest.approx(0.01)
    back = FreezePlan.from_dict(plan.to_dict())
    assert back.to_dict() == plan.to_dict()
    with pytest.raises(ValueError, match="needs iters_per_epoch"):
        FreezePlan([freeze("*", at=3)]).frozen_at(10, ["a"])
    with pytest.raises(
        ValueError, match=r"\(freeze of \['layer9\*'\]\) matches no parameter; .*fc, layer1"
    ):
        FreezePlan([freeze("layer9*", at=0, unit="update")]).apply(m, opt, 0)
    with pytest.raises(ValueError, match="every parameter is frozen and nothing is left"):
        FreezePlan([freeze("*", at=0, unit="update")]).apply(m, opt, 0)
    with pytest.raises(ValueError, match="optimizer_state='clear'"):
        FreezePlan([], optimizer_state="clear")


# ---------------------------------------------------------------------------- LARS / LARC


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True),
        lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-2),
    ],
    ids=["sgd", "adamw"],
)
def test_lars_with_trust_ratio_disabled_is_the_wrapped_optimizer(make_opt) -> None:
    torch.manual_seed(0)
    a = Blocky()
    b = copy.deepcopy(a)
    opt_a, opt_b = make_opt(a.parameters()), make_opt(b.parameters())
    LARS(opt_b, trust_ratio=False)
    _train(a, opt_a, _data(8))
    _train(b, opt_b, _data(8))
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(x, y)


def test_lars_trust_ratio_by_hand_zero_norms_and_exclusion() -> None:
    w1 = nn.Parameter(torch.tensor([3.0, 4.0]))  # ||w|| 5
    w0 = nn.Parameter(torch.zeros(2))  # zero weights: ratio 1
    b = nn.Parameter(torch.tensor([1.0, 1.0]))  # in a no-decay group: not adapted
    opt = torch.optim.SGD(
        [{"params": [w1, w0], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}], lr=0.5
    )
    lars = LARS(opt, trust_coefficient=0.02)
    g1, g0, gb = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0]), torch.tensor([0.5, -0.5])
    w1.grad, w0.grad, b.grad = g1.clone(), g0.clone(), gb.clone()
    opt.step()
    ratio = 0.02 * 5 / (2 + 0.1 * 5 + 1e-8)
    expected_w1 = torch.tensor([3.0, 4.0]) - 0.5 * ratio * (g1 + 0.1 * torch.tensor([3.0, 4.0]))
    assert torch.allclose(w1, expected_w1, atol=1e-7, rtol=0)
    assert torch.allclose(w0, -0.5 * g0)  # ratio 1, weight decay of a zero weight is zero
    assert torch.allclose(b, torch.tensor([1.0, 1.0]) - 0.5 * gb)
    assert lars.last_ratios[0] == pytest.approx([ratio, 1.0]) and lars.last_ratios[1] == []
    assert torch.equal(w1.grad, g1) and opt.param_groups[0]["weight_decay"] == 0.1  # restored
    # zero gradient: ratio 1 (and the update is weight decay only)
    w1.grad = torch.zeros(2)
    before = w1.detach().clone()
    opt.step()
    assert lars.last_ratios[0][0] == 1.0
    assert torch.allclose(w1, before - 0.5 * 0.1 * before)


def test_larc_clips_the_effective_rate_to_min_of_lr_and_trust_ratio() -> None:
    for lr, expect_clip in ((0.001, True), (10.0, False)):
        w = nn.Parameter(torch.tensor([3.0, 4.0]))
        opt = torch.optim.SGD([w], lr=lr, weight_decay=0.0)
        LARC(opt, trust_coefficient=0.02, exclude="none")
        w.grad = torch.tensor([0.6, 0.8])
        opt.step()
        local = 0.02 * 5 / (1 + 1e-8)  # 0.1
        effective = min(lr, local)
        assert torch.allclose(w, torch.tensor([3.0, 4.0]) - effective * torch.tensor([0.6, 0.8]))
        assert (effective == lr) is expect_clip


def test_lars_on_adam_scales_adams_update_by_the_trust_ratio() -> None:
    """Adam normalises the gradient, so a rescaled gradient would change nothing; LARS
    scales Adam's update instead (LAMB's form)."""
    for wd in (0.0, 0.1):
        w = nn.Parameter(torch.tensor([3.0, 4.0]))  # ||w|| 5
        plain = nn.Parameter(w.detach().clone())
        opt = torch.optim.AdamW([w], lr=0.1, weight_decay=wd)
        ref = torch.optim.AdamW([plain], lr=0.1, weight_decay=wd)
        lars = LARS(opt, trust_coefficient=0.01, exclude="none")
        w.grad, plain.grad = torch.tensor([0.6, 0.8]), torch.tensor([0.6, 0.8])
        opt.step()
        ref.step()
        # Adam's first step is lr * g / |g| = 0.1 * [1, 1]; AdamW first decays w by lr * wd
        adam = torch.tensor([1.0, 1.0]) + wd * torch.tensor([3.0, 4.0])  # update per unit LR
        assert torch.allclose(torch.tensor([3.0, 4.0]) - plain.detach(), 0.1 * adam, atol=1e-6)
        ratio = 0.01 * 5 / float(adam.norm())  # 0.0354 without decay
        assert torch.allclose(w, torch.tensor([3.0, 4.0]) - 0.1 * ratio * adam, atol=1e-7)
        assert lars.last_ratios[0] == pytest.approx([ratio], rel=1e-5)
        assert lars.adaptive and torch.equal(w.grad, torch.tensor([0.6, 0.8]))
    # LARC on Adam: the step is min(lr, ratio) * u; at lr 0.001 the LR is the smaller
    w = nn.Parameter(torch.tensor([3.0, 4.0]))
    opt = torch.optim.Adam([w], lr=0.001)
    LARC(opt, trust_coefficient=0.02, exclude="none")
    w.grad = torch.tensor([0.6, 0.8])
    opt.step()
    assert torch.allclose(w, torch.tensor([3.0, 4.0]) - 0.001 * torch.tensor([1.0, 1.0]), atol=1e-7)


def test_lars_agrees_with_timm_when_installed() -> None:
    lars_mod = pytest.importorskip("timm.optim.lars", reason="timm not importable here")
    torch.manual_seed(0)
    a = Blocky()
    b = copy.deepcopy(a)
    opt_a = lars_mod.Lars(a.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, trust_coeff=1e-3)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    LARS(opt_b, trust_coefficient=1e-3)
    _train(a, opt_a, _data(6))
    _train(b, opt_b, _data(6))
    for x, y in zip(a.parameters(), b.parameters()):
        assert torch.allclose(x, y, atol=1e-6)


# ---------------------------------------------------------------------------- automatic LLR


def test_auto_llr_matches_the_documented_definition_by_hand() -> None:
    wa = nn.Parameter(torch.tensor([1.0, 2.0]))
    wb = nn.Parameter(torch.tensor([3.0]))
    opt = torch.optim.SGD([{"params": [wa]}, {"params": [wb]}], lr=0.1)
    auto = AutoLLR(opt, beta=0.5, warmup=2, min_scale=0.1, max_scale=10.0)
    grads = [([1.0, 0.0], [2.0]), ([0.5, 0.5], [1.0]), ([2.0, 1.0], [0.5]), ([1.0, 1.0], [3.0])]
    # the definition, step by step, in plain Python
    w = [[1.0, 2.0], [3.0]]
    prev: list = [None, None]
    avg = [[0.0, 0.0], [0.0, 0.0]]
    seen, mult = 0, [1.0, 1.0]
    norm = lambda v: math.sqrt(sum(x * x for x in v))  # noqa: E731
    for ga, gb in grads:
        wa.grad, wb.grad = torch.tensor(ga), torch.tensor(gb)
        changes = []
        for i, (wi, gi) in enumerate(zip(w, (ga, gb))):
            now = (norm(wi), norm(gi))
            changes.append(
                None if prev[i] is None else (abs(now[0] - prev[i][0]), abs(now[1] - prev[i][1]))
            )
            prev[i] = now
        if changes[0] is not None:
            seen += 1
            ratios = []
            for i, c in enumerate(changes):
                avg[i] = [0.5 * avg[i][0] + 0.5 * c[0], 0.5 * avg[i][1] + 0.5 * c[1]]
                d = 1 - 0.5**seen
                ratios.append((avg[i][0] / d) / (avg[i][1] / d))
            if seen >= 2:
                center = math.exp((math.log(ratios[0]) + math.log(ratios[1])) / 2)
                mult = [min(10.0, max(0.1, r / center)) for r in ratios]
        opt.step()
        w = [[x - 0.1 * g for x, g in zip(w[0], ga)], [w[1][0] - 0.1 * gb[0]]]
        assert auto.multipliers == pytest.approx(mult, rel=1e-6)
    assert auto.multipliers != [1.0, 1.0]
    state = auto.state_dict()
    fresh = AutoLLR(
        torch.optim.SGD(
            [
                {"params": [nn.Parameter(torch.zeros(2))]},
                {"params": [nn.Parameter(torch.zeros(1))]},
            ],
            lr=0.1,
        ),
        beta=0.5,
        warmup=2,
    )
    fresh.load_state_dict(state)
    assert fresh.multipliers == auto.multipliers


def test_auto_llr_feeds_the_driver_and_guards_division() -> None:
    torch.manual_seed(0)
    m = Blocky()
    groups = param_groups(m, by="blocks", blocks=BLOCKS, no_decay_bias_norm=False)
    opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    auto = AutoLLR(opt, warmup=3)
    lr = S.constant(level=0.05)
    sched = HyperparamScheduler(opt, lr=lr, groups=auto.groups())
    _train(m, opt, _data(10))
    assert len(set(auto.multipliers)) > 1
    assert [g["lr"] for g in opt.param_groups] == pytest.approx(
        [0.05 * x for x in auto.multipliers]
    )
    assert sched.config()["groups"][0]["lr_scale"]["kind"] == "auto_llr"
    # a group whose gradient norm never changes: no division by zero, it gets the cap
    w = nn.Parameter(torch.ones(2))
    v = nn.Parameter(torch.ones(2))
    opt2 = torch.optim.SGD([{"params": [w]}, {"params": [v]}], lr=0.1)
    auto2 = AutoLLR(opt2, warmup=1)
    for k in range(4):
        w.grad, v.grad = torch.ones(2), torch.full((2,), float(k + 1))
        opt2.step()
    assert all(math.isfinite(x) for x in auto2.multipliers)
    assert auto2.multipliers[0] >= auto2.multipliers[1]


# ---------------------------------------------------------------------------- instrumentation


def test_instrument_samples_every_n_updates() -> None:
    torch.manual_seed(0)
    m = Blocky()
    groups = param_groups(m, by="blocks", blocks=BLOCKS, no_decay_bias_norm=False)
    opt = torch.optim.SGD(groups, lr=0.1)
    got = []
    inst = Instrument(opt, every=4, callback=got.append)
    _train(m, opt, _data(10))
    assert [r.step for r in inst.records] == [0] * 4 + [4] * 4 + [8] * 4
    assert [r.name for r in inst.records[:4]] == ["stem", "layer1", "layer2", "fc"]
    r = inst.records[0]
    assert r.effective_lr == pytest.approx(0.1, rel=1e-5)  # plain SGD: ||dw|| / ||g|| = lr
    assert r.update_ratio == pytest.approx(r.update_norm / r.weight_norm)
    assert len(got) == 3
    inst.remove()
    _train(m, opt, _data(4))
    assert len(inst.records) == 12


def test_lars_keeps_a_scheduled_weight_decay_and_instrument_reads_what_each_update_used() -> None:
    w = nn.Parameter(torch.tensor([3.0, 4.0]))
    opt = torch.optim.SGD([w], lr=0.1, weight_decay=1e-3)
    wd = S.linear(init=1e-3, end=0.0, total=5)
    lr = S.linear(init=0.1, end=0.0, total=5)
    HyperparamScheduler(opt, lr=lr, weight_decay=wd)  # the driver's hooks come first
    inst = Instrument(opt, every=1)
    LARS(opt, trust_coefficient=0.02)
    used = []
    for _ in range(4):
        w.grad = torch.tensor([0.6, 0.8])
        used.append(opt.param_groups[0]["weight_decay"])
        opt.step()
    assert used == [wd(t) for t in range(4)]  # LARS no longer restores a stale value
    assert [r.lr for r in inst.records] == [lr(t) for t in range(4)]
    # the instrument is attached before LARS: it saw the raw gradient, so its effective LR
    # is the trust-ratio-scaled step per unit of raw gradient, lr * ratio (norm of g is 1)
    r0 = inst.records[0]
    ratio = 0.02 * 5 / (1 + 1e-3 * 5 + 1e-8)
    assert r0.grad_norm == pytest.approx(1.0)
    assert r0.effective_lr == pytest.approx(
        0.1 * ratio * torch.tensor([0.6 + 3e-3, 0.8 + 4e-3]).norm().item(), rel=1e-5
    )


def test_multipliers_of_any_kind_combine() -> None:
    torch.manual_seed(0)
    m = Blocky()
    groups = param_groups(m, by="blocks", blocks=BLOCKS, no_decay_bias_norm=False)
    opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    auto = AutoLLR(opt)
    plan = FreezePlan(
        [
            unfreeze("layer1*", at=2, unit="update", lr_scale=0.5),
            unfreeze("layer1*", at=2, unit="update", lr_scale=0.1),
        ]
    )  # same update: last wins
    names = {id(p): n for n, p in m.named_parameters()}
    spec = combine(
        auto.groups(),
        [{"lr_scale": s} for s in plan.lr_scales(groups, names)],
        fixed(groups, {"fc": 0.0}),
    )
    sched = HyperparamScheduler(opt, lr=S.constant(level=0.2), groups=spec)
    assert spec[3]["lr_scale"] == 0.0 and spec[1]["lr_scale"](5) == pytest.approx(0.1)
    assert sched.config()["groups"][1]["lr_scale"]["kind"] == "product"
    sched.set_step(3)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.2, 0.02, 0.2, 0.0])


def test_a_group_multiplier_without_a_global_schedule_is_an_error() -> None:
    m = Blocky()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"groups\[0\].lr_scale multiplies the global lr schedule"):
        HyperparamScheduler(opt, momentum=None, groups=[{"lr_scale": 2.0}])
