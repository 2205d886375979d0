"""lrlab.report.stats: t quantiles against tables, closed forms, hand-computed Welch tests."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lrlab.report.stats import (
    incomplete_beta,
    mean_ci,
    t_cdf,
    t_quantile,
    t_tail,
    welch,
)


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045), (1e9, 1.960), (math.inf, 1.960)],
)
def test_t_quantile_matches_the_table(df: float, expected: float) -> None:
    assert round(t_quantile(0.975, df), 3) == expected
    assert round(t_quantile(0.025, df), 3) == -expected


def test_t_quantile_closed_forms() -> None:
    # df = 1 is Cauchy: q(p) = tan(pi (p - 1/2)); df = 2: q(p) = (2p-1) sqrt(2 / (4p(1-p)))
    for p in (0.6, 0.9, 0.975, 0.999):
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-10)
        assert t_quantile(p, 2) == pytest.approx(
            (2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p))), rel=1e-10
        )
    assert t_quantile(0.5, 7) == 0.0


def test_t_cdf_closed_forms() -> None:
    for t in (-40.0, -2.0, -0.3, 0.0, 0.7, 3.0, 100.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-13)
        assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-13)
    # far tails keep their relative precision (the tail is never 1 - cdf)
    assert t_tail(1e6, 1) == pytest.approx(math.atan(1e-6) / math.pi, rel=1e-9)


def test_incomplete_beta_closed_forms() -> None:
    for x in (0.0, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0):
        assert incomplete_beta(1.0, 3.5, x) == pytest.approx(1 - (1 - x) ** 3.5, abs=1e-13)
        assert incomplete_beta(2.5, 1.0, x) == pytest.approx(x**2.5, abs=1e-13)
        assert incomplete_beta(0.5, 0.5, x) == pytest.approx(
            2 / math.pi * math.asin(math.sqrt(x)), abs=1e-12
        )


@given(
    p=st.floats(0.001, 0.999),
    df=st.one_of(st.floats(0.3, 200.0), st.integers(1, 10_000).map(float)),
)
@example(p=0.50390625, df=2495.0)  # the cdf is least exact just off p = 0.5 at large df
@example(p=0.4997298282416681, df=7260.0)
def test_t_quantile_inverts_the_cdf(p: float, df: float) -> None:
    q = t_quantile(p, df)
    # t_cdf's series is good to ~5e-10 near the centre for thousands of degrees of freedom
    # (20,000 random draws: worst 4.4e-10); a CI needs 1e-6
    assert t_cdf(q, df) == pytest.approx(p, abs=1e-9)
    assert t_quantile(1 - p, df) == pytest.approx(-q, abs=1e-9 * max(1.0, abs(q)))


@given(df=st.floats(1.0, 1000.0))
def test_more_degrees_of_freedom_narrow_the_interval(df: float) -> None:
    assert t_quantile(0.975, df) >= t_quantile(0.975, df + 1) >= t_quantile(0.975, math.inf)


def test_mean_ci_hand_computed() -> None:
    ci = mean_ci([90.0, 91.0, 92.0])  # s = 1, half-width = 4.303 / sqrt(3)
    assert (ci.n, ci.mean, ci.std) == (3, 91.0, 1.0)
    assert ci.half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert (ci.low, ci.high) == pytest.approx((88.515862, 93.484138), abs=1e-6)
    one = mean_ci([0.7])
    assert (one.mean, one.std, one.half_width, one.low) == (0.7, None, None, None)
    flat = mean_ci([0.5, 0.5, 0.5, 0.5])
    assert (flat.std, flat.half_width) == (0.0, 0.0)
    assert mean_ci([1.0, 3.0], confidence=0.9).half_width == pytest.approx(6.313752, rel=1e-6)


def test_welch_hand_computed_equal_df() -> None:
    # means 2 and 5, variances 2 and 2, n = 2: se = sqrt(2), df = 4 / (1 + 1) = 2,
    # t = -3/sqrt(2); for df = 2 the two-sided p is 1 - |t|/sqrt(2 + t^2) = 1 - 3/sqrt(13)
    d = welch([1.0, 3.0], [4.0, 6.0])
    assert d.difference == -3.0 and d.df == pytest.approx(2.0)
    assert d.p_value == pytest.approx(1 - 3 / math.sqrt(13), rel=1e-9)
    half = 4.302653 * math.sqrt(2)
    assert (d.low, d.high) == pytest.approx((-3 - half, -3 + half), rel=1e-6)


def test_welch_unequal_variances_satterthwaite() -> None:
    # va/na = 4/3, vb/nb = 1/3: df = (5/3)^2 / ((4/3)^2/2 + (1/3)^2/2) = 50/17
    d = welch([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert d.df == pytest.approx(50 / 17)
    # p and CI as scipy.stats.ttest_ind(equal_var=False) reports them
    assert d.p_value == pytest.approx(0.22088084049409593, rel=1e-9)
    assert (d.low, d.high) == pytest.approx((-2.1553995031825, 6.1553995031825), rel=1e-9)


def test_welch_one_arm_without_spread() -> None:
    # only a varies: se^2 = 1/3, df = na - 1 = 2, t = sqrt(3): p = 1 - sqrt(3)/sqrt(5)
    d = welch([90.0, 91.0, 92.0], [90.0, 90.0, 90.0])
    assert d.df == pytest.approx(2.0)
    assert d.p_value == pytest.approx(1 - math.sqrt(3 / 5), rel=1e-9)


def test_welch_degenerate_cases() -> None:
    single = welch([1.0], [2.0, 3.0])
    assert single.difference == -1.5 and single.low is None and single.p_value is None
    exact = welch([2.0, 2.0], [1.0, 1.0, 1.0])
    assert exact.exact and (exact.low, exact.high, exact.p_value) == (1.0, 1.0, 0.0)
    same = welch([2.0, 2.0], [2.0, 2.0])
    assert same.exact and same.p_value == 1.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mean_ci([]), "values is empty"),
        (lambda: mean_ci([1.0, math.nan]), "values contains nan"),
        (lambda: welch([1.0, 2.0], [math.inf]), "b contains inf"),
        (lambda: mean_ci([1.0, 2.0], confidence=1.0), "confidence=1.0 is invalid"),
        (lambda: t_quantile(1.0, 3), "p=1.0 is invalid"),
        (lambda: t_quantile(0.9, 0), "df=0 is invalid"),
        (lambda: t_tail(1.0, math.nan), "df=nan is invalid"),
    ],
)
def test_invalid_input_names_the_value(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call()  # type: ignore[operator]


def test_holm_adjusts_in_step_down_order() -> None:
    from lrlab.report.verdicts import holm

    # sorted: 0.01*3 = 0.03, 0.03*2 = 0.06, then 0.04*1 = 0.04 raised to 0.06 (monotone)
    assert [round(p, 12) for p in holm([0.01, 0.04, 0.03])] == [0.03, 0.06, 0.06]
    assert holm([0.6, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == []


def test_seed_count_names_collapsed_seeds_with_the_others() -> None:
    from lrlab.report.verdicts import SeedCount, collapsed

    count = SeedCount(done=3, diverged=1, collapsed=1)
    assert count.total == 5
    assert count.note("LARS") == (
        "LARS diverged on 1 of 5 seeds and collapsed to chance on 1 of 5 seeds"
    )
    assert count.losses(of=6) == ["diverged on 1 of 6 seeds", "collapsed to chance on 1 of 6 seeds"]
    assert SeedCount(done=5).note("LARS") == ""
    assert collapsed(20.0, chance=10.0) and not collapsed(20.01, chance=10.0)
