"""lrlab.schedules: hand-computed values, validation, serialisation and properties."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lrlab import schedules as S

# ---------------------------------------------------------------- hand-computed values


def test_one_cycle_smith_phases_by_hand() -> None:
    # total=20, annihilation=0.1: cycle = round(18) = 18 -> up 9, down 9, annihilation 2.
    s = S.one_cycle(max_lr=1.0, total=20, base_lr=0.1, final_lr=0.001, annihilation=0.1)
    assert [p[:3] for p in s.phases()] == [("up", 0, 9), ("down", 9, 18), ("annihilation", 18, 20)]
    assert s(0) == 0.1
    assert s(3) == pytest.approx(0.1 + 0.9 * 3 / 9)
    assert s(9) == 1.0
    assert s(12) == pytest.approx(1.0 - 0.9 * 3 / 9)
    assert s(18) == 0.1  # annihilation starts at base ...
    assert s(19) == 0.001  # ... and the last update uses final_lr
    assert s(10**9) == 0.001  # held afterwards
    m = S.cyclical_momentum(s)
    assert [m(t) for t in (0, 9, 18, 19)] == [0.95, 0.85, 0.95, 0.95]
    assert m(12) == pytest.approx(0.85 + 0.1 * 3 / 9)


def test_one_cycle_defaults_follow_smith() -> None:
    s = S.one_cycle(max_lr=0.8, total=1000)
    assert s.base_lr == pytest.approx(0.08)
    assert s.final_lr == pytest.approx(0.08 / 1000)
    assert [p.stop for p in s.phases()] == [430, 860, 1000]


def test_triangular_matches_clr_paper_formula() -> None:
    # Smith 2017, eq: cycle = floor(1 + t/(2s)); x = |t/s - 2 cycle + 1|;
    # lr = base + (max - base) * max(0, 1 - x) * scale
    base, top, s_ = 0.001, 0.006, 2000
    tri, tri2 = S.triangular(base, top, s_), S.triangular2(base, top, s_)
    exr = S.exp_range(base, top, s_, gamma=0.99994)
    for t in [*range(0, 20000, 137), 0, 2000, 4000, 6000, 8000]:
        cycle = math.floor(1 + t / (2 * s_))
        x = abs(t / s_ - 2 * cycle + 1)
        wave = (top - base) * max(0.0, 1 - x)
        assert tri(t) == pytest.approx(base + wave, abs=1e-12)
        assert tri2(t) == pytest.approx(base + wave / 2 ** (cycle - 1), abs=1e-12)
        assert exr(t) == pytest.approx(base + wave * 0.99994**t, abs=1e-12)


def test_clr_step_size_helper() -> None:
    assert S.clr_step_size(500, 4) == 2000
    assert S.clr_step_size(469, 2.5) == 1172
    with pytest.warns(UserWarning, match="2-10"):
        assert S.clr_step_size(100, 1) == 100
    with pytest.raises(ValueError, match="iters_per_epoch=0"):
        S.clr_step_size(0)


def test_sgdr_decay_and_cycle_ends() -> None:
    s = S.sgdr(max_lr=1.0, t_0=4, t_mult=2, eta_min=0.0, decay=0.5, cycles=3)
    assert s.length == 4 + 8 + 16
    assert [s(t) for t in (0, 4, 12)] == [1.0, 0.5, 0.25]  # restart peaks decay by half
    assert s(2) == pytest.approx(0.5)  # halfway through cycle 1
    assert s.cycle_ends() == [3, 11, 27]


def test_warmup_and_wsd() -> None:
    w = S.warmup(S.cosine(init=0.4, total=5), steps=4, init=0.0)
    assert [w(t) for t in range(4)] == [0.0, 0.1, 0.2, pytest.approx(0.3)]
    assert w(4) == 0.4 and w(8) == 0.0 and w.length == 9
    d = S.warmup_stable_decay(peak=1.0, total=20, fractions=(0.1, 0.5, 0.4), decay_shape="sqrt")
    assert d(1) == 0.5 and d(2) == 1.0 and d(11) == 1.0
    assert d(12) == 1.0 and d(19) == 0.0  # decay phase 12..19, ends at `end`
    assert d(16) == pytest.approx(1 - math.sqrt(4 / 7))


def test_combinators() -> None:
    a = S.linear(init=1.0, end=0.0, total=3)
    j = S.join((a, S.constant(level=2.0)), boundaries=(5,))
    assert [j(t) for t in range(7)] == [1.0, 0.5, 0.0, 0.0, 0.0, 2.0, 2.0]
    assert j.length is None
    assert (a * 2.0)(1) == 1.0 and (2.0 * a)(1) == 1.0
    assert (a * a)(1) == 0.25
    c = S.clip(S.linear(init=0.0, end=1.0, total=11), low=0.3, high=0.5)
    assert [c(t) for t in (0, 4, 10)] == [0.3, 0.4, 0.5]
    r = S.repeat(a, times=3)
    assert r.length == 9 and r(4) == 0.5 and r(100) == 0.0
    # mirror of a decay: momentum rises as the LR falls
    m = S.mirror(S.cosine(init=1.0, total=3), low=0.8, high=0.9)
    assert [round(m(t), 12) for t in range(3)] == [0.8, 0.85, 0.9]


def test_after_end_policies() -> None:
    s = S.linear(init=1.0, end=0.0, total=5)
    assert s(7) == 0.0
    c = S.linear(init=1.0, end=0.0, total=5, after_end="cycle")
    assert c(5) == 1.0 and c(7) == 0.5
    e = S.linear(init=1.0, end=0.0, total=5, after_end="error")
    assert e(4) == 0.0
    with pytest.raises(ValueError, match=r"step 5 is past the end .*length 5"):
        e(5)


def test_wrappers_run_on_their_childs_clock() -> None:
    # scale, clip and mirror follow the wrapped schedule's past-the-end policy
    cyc = S.cosine(init=1.0, end=0.0, total=3, after_end="cycle")
    assert [(cyc * 0.5)(t) for t in range(6)] == [0.5, 0.25, 0.0, 0.5, 0.25, 0.0]
    assert S.clip(cyc, high=0.6)(3) == 0.6
    tri = S.triangular(0.1, 0.5, step_size=2, cycles=1, after_end="cycle")
    m = S.cyclical_momentum(tri)
    assert [round(m(t), 6) for t in range(6)] == [0.95, 0.9, 0.85, 0.9, 0.95, 0.9]
    err = S.cosine(init=1.0, total=3, after_end="error") * 0.5
    with pytest.raises(ValueError, match="past the end"):
        err(10)
    with pytest.raises(ValueError, match="follows the wrapped schedule's after_end"):
        S.scale(cyc, factor=2.0, after_end="hold")
    assert S.Schedule.from_dict((cyc * 0.5).to_dict()) == cyc * 0.5


def test_mirror_refuses_a_join_with_a_part_that_cannot_be_mirrored() -> None:
    ok = S.join((S.linear(init=0.0, end=1.0, total=3), S.cosine(init=1.0, total=3)))
    S.mirror(ok, low=0.85, high=0.95)
    bad = S.join((S.linear(init=0.0, end=1.0, total=3), S.constant(level=1.0, total=3)))
    with pytest.raises(ValueError, match=r"cannot be mirrored .*constant has no low/high anchors"):
        S.mirror(bad, low=0.85, high=0.95)


def test_steps_must_be_non_negative_integers() -> None:
    s = S.constant(level=0.1)
    with pytest.raises(ValueError, match="step=-1"):
        s(-1)
    with pytest.raises(TypeError, match="integer count"):
        s(1.5)  # type: ignore[arg-type]


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: S.triangular(base_lr=0.5, max_lr=0.1, step_size=10),
            r"max_lr=0.1 .* > base_lr=0.5",
        ),
        (lambda: S.triangular(base_lr=0.0, max_lr=0.1, step_size=10), r"base_lr=0.0 .* > 0"),
        (lambda: S.triangular(base_lr=0.1, max_lr=1, step_size=0), r"step_size=0 .*integer >= 1"),
        (lambda: S.triangular(base_lr=0.1, max_lr=1, step_size=2.5), r"step_size=2.5"),
        (
            lambda: S.triangular2(base_lr=0.1, max_lr=1, step_size=5, cycles=12),
            r"cycles=12 .*collapses",
        ),
        (
            lambda: S.exp_range(base_lr=0.1, max_lr=1, step_size=50, cycles=100, gamma=0.999),
            r"gamma=0.999 .*collapses",
        ),
        (lambda: S.exp_range(base_lr=0.1, max_lr=1, step_size=5, gamma=1.5), r"gamma=1.5 .*<= 1"),
        (lambda: S.one_cycle(max_lr=float("nan"), total=100), r"max_lr=nan .*finite"),
        (lambda: S.one_cycle(max_lr=1.0, total=100, base_lr=2.0), r"base_lr=2.0 .*< 1"),
        (
            lambda: S.one_cycle(max_lr=1.0, total=100, annihilation=0.001),
            r"annihilation=0.001 .*rounds to 0",
        ),
        (lambda: S.one_cycle(max_lr=1.0, total=2), r"total=2 .*>= 3"),
        (
            lambda: S.one_cycle_torch(max_lr=1.0, total=10, pct_start=0.05),
            r"pct_start=0.05 .*phase 1",
        ),
        (
            lambda: S.one_cycle_torch(max_lr=1.0, total=100, three_phase=True, pct_start=0.6),
            r"phase 3",
        ),
        (
            lambda: S.one_cycle_torch(max_lr=1.0, total=100, anneal="cosine"),
            r"anneal='cosine' .*'cos', 'linear'",
        ),
        (lambda: S.one_cycle_fastai(max_lr=1.0, total=3, pct_start=0.999), r"pct_start"),
        (lambda: S.cosine(init=float("inf"), total=10), r"init=inf"),
        (lambda: S.cosine(init=0.1, total=1), r"total=1 .*>= 2"),
        (lambda: S.step(init=0.1, step_size=10, gamma=2.0), r"gamma=2.0 .*grow without bound"),
        (lambda: S.exponential(init=1.0, gamma=10.0, total=10_000), r"overflows"),
        (lambda: S.multistep(init=0.1, milestones=(30, 20)), r"milestones=\(30, 20\) .*increasing"),
        (lambda: S.sgdr(max_lr=0.1, t_0=10, eta_min=0.2), r"eta_min=0.2 .*< 0.1"),
        (lambda: S.sgdr(max_lr=0.1, t_0=10, t_mult=0), r"t_mult=0"),
        (lambda: S.sgdr(max_lr=0.1, t_0=10, decay=0.1, cycles=5), r"decay=0.1 .*collapses"),
        (
            lambda: S.warmup_stable_decay(peak=1, total=100, fractions=(0.1, 0.5, 0.3)),
            r"sum to 0.9",
        ),
        (
            lambda: S.warmup_stable_decay(peak=1, total=10, fractions=(0.01, 0.79, 0.2)),
            r"warmup phase rounds to 0",
        ),
        (lambda: S.linear(init=-1.0, end=0.0, total=5), r"init=-1.0 .*>= 0"),
        (lambda: S.triangular(0.1, 1.0, step_size=True), r"step_size=True .*integer"),
        (
            lambda: S.warmup_stable_decay(peak=1, total=7, fractions=(0.5, 0.0, 0.5)),
            r"round to 8 > total=7",
        ),
        (lambda: S.constant(level=0.1, after_end="wrap"), r"after_end='wrap' .*hold, error, cycle"),
        (lambda: S.join(()), r"parts=\(\)"),
        (lambda: S.join((S.constant(level=1.0), S.constant(level=2.0))), r"part 1 runs forever"),
        (lambda: S.mirror(S.constant(level=0.1), low=0.85, high=0.95), r"cannot be mirrored"),
        (lambda: S.mirror(S.triangular(0.1, 1.0, 5), low=0.95, high=0.85), r"high=0.85 .*> 0.95"),
    ],
)
def test_invalid_parameters_name_field_value_and_range(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


# ---------------------------------------------------------------- serialisation and specs


ALL_EXAMPLES = [
    S.constant(level=0.1),
    S.step(init=0.1, step_size=30, total=90),
    S.multistep(init=0.35, milestones=(50_000, 70_000), total=80_000),
    S.exponential(init=1e-7, gamma=1.2, total=50),
    S.linear(init=0.0, end=0.1, total=10),
    S.polynomial(init=0.1, total=100, power=0.5),
    S.cosine(init=0.1, total=100, end=1e-4),
    S.warmup(S.cosine(init=0.1, total=90), steps=10),
    S.warmup_stable_decay(peak=0.1, total=100),
    S.triangular(base_lr=0.001, max_lr=0.006, step_size=2000, cycles=3),
    S.triangular2(base_lr=0.001, max_lr=0.006, step_size=2000),
    S.exp_range(base_lr=0.001, max_lr=0.006, step_size=2000, gamma=0.99994),
    S.one_cycle(max_lr=3.0, total=10_000),
    S.one_cycle_torch(max_lr=0.4, total=1000, three_phase=True),
    S.one_cycle_fastai(max_lr=0.01, total=500),
    S.sgdr(max_lr=0.1, t_0=10, t_mult=2, cycles=4),
    S.join((S.linear(init=0.0, end=0.1, total=5), S.cosine(init=0.1, total=20))),
    S.repeat(S.cosine(init=0.1, total=20), times=3),
    S.clip(S.exponential(init=1e-3, gamma=1.1, total=100), high=0.5),
    S.cyclical_momentum(S.one_cycle(max_lr=1.0, total=100)),
    S.one_cycle(max_lr=1.0, total=100) * S.constant(level=0.5),
    S.scale(S.sgdr(max_lr=0.1, t_0=5, cycles=3, after_end="error"), factor=0.5),
]


@pytest.mark.parametrize("s", ALL_EXAMPLES, ids=lambda s: s.kind)
def test_dict_json_and_spec_round_trips(s: S.Schedule) -> None:
    d = s.to_dict()
    back = S.Schedule.from_dict(json.loads(json.dumps(d)))
    assert back == s
    assert S.parse(json.dumps(d)) == s
    assert S.parse(s.to_spec()) == s
    horizon = s.length or 300
    assert [back(t) for t in range(0, horizon, max(1, horizon // 50))] == [
        s(t) for t in range(0, horizon, max(1, horizon // 50))
    ]


def test_parse_short_form_and_errors() -> None:
    s = S.parse("warmup(cosine(init=0.1, total=900), steps=100)")
    assert s.length == 1000 and s(100) == 0.1
    assert S.parse("one_cycle(max_lr=0.4,total=1000)") == S.one_cycle(max_lr=0.4, total=1000)
    assert S.parse("multistep(init=0.1, milestones=[3, 6])").milestones == (3, 6)
    assert S.parse("one_cycle_torch(max_lr=1, total=100, three_phase=true)").three_phase is True
    for bad, message in [
        (
            "onecycle(max_lr=1, total=10)",
            r"unknown schedule 'onecycle' \(did you mean 'one_cycle'\?\)",
        ),
        ("one_cycle(max_lr=1, totl=10)", r"unknown parameter 'totl' \(did you mean 'total'\?\)"),
        ("one_cycle(max_lr=1)", r"missing required parameter\(s\): total"),
        ("one_cycle(max_lr=1, total=", r"not a call"),
        ("one_cycle(max_lr=__import__('os'), total=10)", r"unknown schedule '__import__'"),
        ("one_cycle(max_lr=x, total=10)", r"'x' is not a literal"),
        ("constant(level={[1]})", r"'\{\[1\]\}' is not a literal"),
        ("constant(level={1: 2})", r"is not a number, string or list"),
        ('{"kind": "cosine", ', r"not valid JSON"),
        ("", r"empty schedule spec"),
        ("0.1", r"expected a call"),
    ]:
        with pytest.raises(ValueError, match=message):
            S.parse(bad)


def test_describe_and_sample() -> None:
    s = S.triangular(base_lr=0.1, max_lr=0.5, step_size=2, cycles=2)
    text = s.describe()
    assert text.splitlines()[0] == "triangular(base_lr=0.1, max_lr=0.5, step_size=2, cycles=2)"
    assert "up 2" in text and "down 2" in text
    steps, values = s.sample(5)
    assert steps == [0, 2, 4, 5, 7] and values[1] == 0.5  # round(i * 7 / 4)
    with pytest.raises(ValueError, match="horizon"):
        S.constant(level=1.0).sample()
    with pytest.raises(ValueError, match="n=1 is invalid"):
        s.sample(1)
    assert S.constant(level=1.0).sample(3, horizon=100) == ([0, 50, 99], [1.0, 1.0, 1.0])


def test_span_is_the_horizon_or_the_length() -> None:
    assert S.cosine(init=0.1, total=90).span() == 90
    assert S.cosine(init=0.1, total=90).span(horizon=30) == 30
    assert S.triangular(0.1, 0.5, step_size=2).span(horizon=7) == 7
    with pytest.raises(ValueError, match="triangular runs forever; give horizon="):
        S.triangular(0.1, 0.5, step_size=2).span()
    with pytest.raises(ValueError, match="horizon=0 is invalid; expected at least 1 update"):
        S.cosine(init=0.1, total=90).span(horizon=0)


def test_an_unvarying_schedule_cannot_be_mirrored_nor_give_heights() -> None:
    flat = S.linear(init=0.5, end=0.5, total=4)
    message = r"^linear does not vary \(low == high\), so it cannot be mirrored$"
    with pytest.raises(TypeError, match=message):
        flat.check_mirrorable()
    with pytest.raises(TypeError, match=message):
        flat.height(2)
    with pytest.raises(ValueError, match="cannot be mirrored"):
        S.mirror(flat, low=0.85, high=0.95)


def test_schedules_package_does_not_import_torch() -> None:
    code = "import sys, lrlab.schedules; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_schedule_plot_module_imports_neither_torch_nor_matplotlib_until_it_draws() -> None:
    code = (
        "import sys, lrlab.schedules.plot; "
        "print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


# ---------------------------------------------------------------- family facts

# What each family declares for the layers above, written out by hand: the range-test
# fields it takes (and from which bound), the range-test reading it trains with, whether a
# trial leaves a missing total out, and whether its default momentum is cyclical.
FAMILY_FACTS: dict[str, tuple[dict[str, str], str, bool, bool]] = {
    "constant": ({"level": "max_lr"}, "constant", True, False),
    "step": ({"init": "max_lr"}, "constant", True, False),
    "multistep": ({"init": "max_lr"}, "constant", True, False),
    "exponential": ({"init": "max_lr"}, "constant", True, False),
    "linear": ({"init": "max_lr"}, "constant", False, False),
    "polynomial": ({"init": "max_lr"}, "constant", False, False),
    "cosine": ({"init": "max_lr"}, "constant", False, False),
    "triangular": (
        {"max_lr": "max_lr", "base_lr": "base_lr", "step_size": "step_size"},
        "clr",
        False,
        True,
    ),
    "triangular2": (
        {"max_lr": "max_lr", "base_lr": "base_lr", "step_size": "step_size"},
        "clr",
        False,
        True,
    ),
    "exp_range": (
        {"max_lr": "max_lr", "base_lr": "base_lr", "step_size": "step_size"},
        "clr",
        False,
        True,
    ),
    "sgdr": ({"max_lr": "max_lr"}, "one_cycle", False, False),
    "one_cycle": ({"max_lr": "max_lr", "base_lr": "base_lr"}, "one_cycle", False, True),
    "one_cycle_torch": ({"max_lr": "max_lr"}, "one_cycle", False, True),
    "one_cycle_fastai": ({"max_lr": "max_lr"}, "one_cycle", False, True),
    "warmup_stable_decay": ({"peak": "max_lr"}, "one_cycle", False, False),
    "warmup": ({}, "constant", False, False),
    "join": ({}, "constant", False, False),
    "repeat": ({}, "constant", False, False),
    "scale": ({}, "constant", False, False),
    "multiply": ({}, "constant", False, False),
    "clip": ({}, "constant", False, False),
    "mirror": ({}, "constant", False, False),
    "shift": ({}, "constant", False, False),
}


def test_every_registered_family_has_its_facts_written_out_here() -> None:
    assert sorted(FAMILY_FACTS) == S.registered_kinds()


@pytest.mark.parametrize("kind", sorted(FAMILY_FACTS))
def test_family_facts_are_declared_on_the_class_and_answered_by_kind(kind: str) -> None:
    fields, reading, optional, cyclical = FAMILY_FACTS[kind]
    cls = S.schedule_class(kind)
    assert dict(cls.bound_fields) == fields and S.bound_fields(kind) == fields
    assert cls.bounds_reading == reading and S.bounds_reading(kind) == reading
    assert cls.total_optional is optional and S.total_optional(kind) is optional
    assert cls.cyclical is cyclical and S.is_cyclical(kind) is cyclical
    names = {f.name: f for f in dataclasses.fields(cls)}
    assert set(fields) <= set(names)  # a range test fills real parameters only
    if "total" in names:  # an optional total is one that may be left out of the spec
        assert optional is (names["total"].default is None)


def test_family_facts_cannot_be_changed_through_the_answers() -> None:
    S.bound_fields("one_cycle")["final_lr"] = "max_lr"
    assert S.bound_fields("one_cycle") == {"max_lr": "max_lr", "base_lr": "base_lr"}
    with pytest.raises(TypeError):
        S.OneCycle.bound_fields["final_lr"] = "max_lr"  # type: ignore[index]
    with pytest.raises(ValueError, match="unknown schedule 'one_cycel' \\(did you mean"):
        S.bound_fields("one_cycel")


@pytest.mark.parametrize(
    ("spec", "filled"),
    [
        ({"kind": "cosine", "init": 0.1}, {"kind": "cosine", "init": 0.1, "total": 1000}),
        ({"kind": "cosine", "init": 0.1, "total": 9}, {"kind": "cosine", "init": 0.1, "total": 9}),
        ({"kind": "constant", "level": 0.1}, {"kind": "constant", "level": 0.1}),
        ({"kind": "exponential", "init": 0.1}, {"kind": "exponential", "init": 0.1}),
        ({"kind": "triangular", "step_size": 5}, {"kind": "triangular", "step_size": 5}),
        (
            {"kind": "warmup", "schedule": {"kind": "constant", "level": 0.1}, "steps": 100},
            {
                "kind": "warmup",
                "schedule": {"kind": "constant", "level": 0.1, "total": 900},
                "steps": 100,
            },
        ),
        (
            {"kind": "warmup", "schedule": {"kind": "sgdr", "t_0": 10}, "steps": 100},
            {"kind": "warmup", "schedule": {"kind": "sgdr", "t_0": 10}, "steps": 100},
        ),
        (
            {"kind": "join", "parts": [{"kind": "cosine", "init": 0.1}]},
            {"kind": "join", "parts": [{"kind": "cosine", "init": 0.1}]},
        ),
    ],
)
def test_with_total_fills_what_a_run_of_1000_updates_decides(
    spec: dict[str, object], filled: dict[str, object]
) -> None:
    before = json.dumps(spec)
    assert S.with_total(spec, 1000) == filled
    assert json.dumps(spec) == before  # the spec given is left as it was


# ---------------------------------------------------------------- properties

pos = st.floats(min_value=1e-6, max_value=10.0, allow_nan=False)
frac = st.floats(min_value=0.01, max_value=0.99)
n_updates = st.integers(min_value=3, max_value=5000)


@st.composite
def schedules(draw: st.DrawFn) -> S.Schedule:
    family = draw(
        st.sampled_from(
            [
                "constant",
                "step",
                "multistep",
                "exponential",
                "linear",
                "polynomial",
                "cosine",
                "warmup",
                "wsd",
                "triangular",
                "triangular2",
                "exp_range",
                "one_cycle",
                "one_cycle_torch",
                "one_cycle_fastai",
                "sgdr",
                "join",
                "mirror",
            ]
        )
    )
    a, b = sorted([draw(pos), draw(pos)])
    total = draw(n_updates)
    after = draw(st.sampled_from(["hold", "cycle"]))
    try:
        if family == "constant":
            return S.constant(level=a, after_end=after)
        if family == "step":
            return S.step(init=b, step_size=draw(st.integers(1, 100)), gamma=draw(frac))
        if family == "multistep":
            ms = sorted(set(draw(st.lists(st.integers(1, 10_000), max_size=5))))
            return S.multistep(init=b, milestones=tuple(ms), gamma=draw(frac))
        if family == "exponential":
            return S.exponential(init=b, gamma=draw(st.floats(0.5, 1.5)), total=total)
        if family == "linear":
            return S.linear(init=b, end=a, total=total, after_end=after)
        if family == "polynomial":
            return S.polynomial(init=b, end=a, power=draw(st.floats(0.1, 4.0)), total=total)
        if family == "cosine":
            return S.cosine(init=b, end=a, total=total)
        if family == "warmup":
            return S.warmup(S.cosine(init=b, total=total), steps=draw(st.integers(1, 100)))
        if family == "wsd":
            w, d = draw(frac) / 3, draw(frac) / 3
            return S.warmup_stable_decay(peak=b, total=total, fractions=(w, 1 - w - d, d))
        if family in ("triangular", "triangular2"):
            assume(b > a)
            return S.schedule_class(family)(
                a, b, draw(st.integers(1, 500)), cycles=draw(st.none() | st.integers(1, 8))
            )
        if family == "exp_range":
            assume(b > a)
            return S.exp_range(a, b, draw(st.integers(1, 500)), gamma=draw(st.floats(0.99, 1.0)))
        if family == "one_cycle":
            return S.one_cycle(max_lr=b, total=total, annihilation=draw(st.floats(0.05, 0.5)))
        if family == "one_cycle_torch":
            return S.one_cycle_torch(
                max_lr=b,
                total=total,
                pct_start=draw(st.floats(0.1, 0.45)),
                anneal=draw(st.sampled_from(["cos", "linear"])),
                three_phase=draw(st.booleans()),
            )
        if family == "one_cycle_fastai":
            return S.one_cycle_fastai(max_lr=b, total=total, pct_start=draw(frac))
        if family == "sgdr":
            return S.sgdr(
                max_lr=b,
                t_0=draw(st.integers(1, 200)),
                t_mult=draw(st.integers(1, 3)),
                eta_min=a if a < b else 0.0,
                decay=draw(st.floats(0.5, 1.0)),
            )
        if family == "join":
            return S.join(
                (S.linear(init=0.0, end=b, total=total), S.one_cycle(max_lr=b, total=total))
            )
        return S.cyclical_momentum(S.one_cycle(max_lr=b, total=total))
    except ValueError:
        assume(False)
        raise


@settings(max_examples=300, deadline=None)
@given(s=schedules(), steps=st.lists(st.integers(0, 10**7), min_size=1, max_size=20))
def test_no_schedule_returns_negative_nan_or_infinite(s: S.Schedule, steps: list[int]) -> None:
    horizon = s.length or 10_000
    probe = [*steps, 0, 1, horizon - 1, horizon, horizon + 1, 3 * horizon]
    for t in probe:
        v = s(t)
        assert math.isfinite(v) and v >= 0, (s.to_spec(), t, v)


@settings(max_examples=150, deadline=None)
@given(s=schedules())
def test_round_trip_preserves_every_value(s: S.Schedule) -> None:
    back = S.Schedule.from_dict(json.loads(json.dumps(s.to_dict())))
    horizon = s.length or 2_000
    ts = range(0, 2 * horizon, max(1, horizon // 97))
    assert back == s and [back(t) for t in ts] == [s(t) for t in ts]


@settings(max_examples=150, deadline=None)
@given(s=schedules())
def test_hold_repeats_last_value_and_cycle_is_periodic(s: S.Schedule) -> None:
    n = s.length
    assume(n is not None)
    assert n is not None
    if s.after_end == "hold":
        assert s(n) == s(n - 1) == s(10 * n + 3)
    else:
        assert s(n + 5 % n) == s(5 % n)


@settings(max_examples=100, deadline=None)
@given(
    base=st.floats(1e-4, 0.5),
    ratio=st.floats(1.5, 100.0),
    step_size=st.integers(1, 300),
    t=st.integers(0, 10**5),
)
def test_cyclical_momentum_is_the_affine_mirror_of_the_lr(
    base: float, ratio: float, step_size: int, t: int
) -> None:
    # For CLR, momentum = 0.95 - 0.1 * (lr - base) / (max - base): 0.85 exactly at the peaks,
    # 0.95 at the troughs, and linear in the LR in between.
    lr = S.triangular(base, base * ratio, step_size)
    m = S.cyclical_momentum(lr)
    expected = 0.95 - 0.1 * (lr(t) - base) / (base * ratio - base)
    assert m(t) == pytest.approx(expected, abs=1e-9)
    assert m(step_size) == pytest.approx(0.85, abs=1e-12) and m(2 * step_size) == pytest.approx(
        0.95, abs=1e-12
    )
