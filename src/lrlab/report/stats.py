"""Statistics for many-seed studies: means with t intervals and Welch's test.

The plain-language verdicts built on them are in :mod:`lrlab.report.verdicts`.

Pure ``math`` (no scipy): the Student t distribution comes from the regularised
incomplete beta function, evaluated with the Lentz continued fraction (Numerical Recipes,
3rd ed., section 6.4), and its quantile by bisection. Seeds per arm are few (3 to 10),
so the t quantile matters: with 3 seeds the 95% half-width is 4.3 standard errors, not
1.96.

>>> round(t_quantile(0.975, 4), 3)
2.776
>>> ci = mean_ci([90.0, 91.0, 92.0])
>>> round(ci.mean, 3), round(ci.half_width, 3)
(91.0, 2.484)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

_EPS = 1e-15
_TINY = 1e-300
#: Above this many degrees of freedom t is normal to 1e-7 relative, while lgamma of df/2
#: starts losing digits to cancellation.
_NORMAL_DF = 1e7


def _check_finite(values: Sequence[float], name: str) -> list[float]:
    out = [float(v) for v in values]
    if not out:
        raise ValueError(f"{name} is empty; expected at least one value")
    bad = [v for v in out if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{name} contains {bad[0]!r}; expected finite numbers")
    return out


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    # converges in O(sqrt(max(a, b))) terms; the cap covers df up to ~1e8
    for m in range(1, 100_000):
        m2 = 2 * m
        even = m * (b - m) * x / ((qam + m2) * (a + m2))
        odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        for aa in (even, odd):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function ``I_x(a, b)``.

    >>> round(incomplete_beta(2.0, 3.0, 0.4), 6)  # 1 - (1-x)^4 - 4x(1-x)^3
    0.5248
    """
    if a <= 0 or b <= 0:
        raise ValueError(f"a={a}, b={b} are invalid; expected both > 0")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x={x} is invalid; expected 0 <= x <= 1")
    if x in (0.0, 1.0):
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # the fraction converges fast on this side of the mean; use symmetry on the other
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def _check_df(df: float) -> None:
    if not df > 0:  # also rejects NaN
        raise ValueError(f"df={df} is invalid; expected degrees of freedom > 0")


def t_tail(t: float, df: float) -> float:
    """Upper tail ``P(T > t)`` of Student's t with ``df`` degrees of freedom (any real df > 0).

    Above 1e7 degrees of freedom (and for ``df=math.inf``) the normal tail is used.

    >>> round(t_tail(1.0, 1), 6)  # Cauchy: 1/2 - atan(1)/pi
    0.25
    """
    _check_df(df)
    if df > _NORMAL_DF:
        return 0.5 * math.erfc(t / math.sqrt(2.0))
    # P(|T| > |t|) = I_{df/(df+t^2)}(df/2, 1/2)
    two_sided = incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 0.5 * two_sided if t >= 0 else 1.0 - 0.5 * two_sided


def t_cdf(t: float, df: float) -> float:
    """``P(T <= t)`` for Student's t with ``df`` degrees of freedom.

    >>> round(t_cdf(2.776, 4), 4)
    0.975
    """
    return 1.0 - t_tail(t, df)


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``inf``: normal).

    Found by bisection on the upper tail, which keeps full relative precision far out.

    >>> [round(t_quantile(0.975, df), 3) for df in (1, 2, 4, 9, 29, math.inf)]
    [12.706, 4.303, 2.776, 2.262, 2.045, 1.96]
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p={p} is invalid; expected a probability strictly between 0 and 1")
    _check_df(df)
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    tail = 1.0 - p
    lo, hi = 0.0, 2.0
    while t_tail(hi, df) > tail:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_tail(mid, df) > tail:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class MeanCI:
    """A sample mean with its t confidence interval (``half_width`` None when n < 2)."""

    n: int
    mean: float
    std: float | None
    half_width: float | None
    confidence: float = 0.95

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> MeanCI:
    """Mean and ``confidence`` interval ``mean ± t_{(1+c)/2, n-1} · s/√n`` (Student, 1908).

    With one value there is no spread to estimate: ``std`` and ``half_width`` are None.

    >>> mean_ci([2.0, 4.0, 6.0]).half_width  # doctest: +ELLIPSIS
    4.968...
    >>> mean_ci([5.0]).half_width is None
    True
    """
    xs = _check_finite(values, "values")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} is invalid; expected 0 < confidence < 1")
    n = len(xs)
    mean = math.fsum(xs) / n
    if n < 2:
        return MeanCI(n, mean, None, None, confidence)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
    return MeanCI(n, mean, std, half, confidence)


@dataclass(frozen=True)
class Difference:
    """``mean(a) - mean(b)`` with Welch's interval and two-sided p-value.

    ``low``/``high``/``p_value``/``df`` are None when either sample has one value.
    When both samples have zero spread the difference is exact: the interval is the
    point itself, ``df`` is None and ``p_value`` is 0 (different means) or 1 (equal).
    """

    difference: float
    low: float | None
    high: float | None
    p_value: float | None
    df: float | None
    n_a: int
    n_b: int
    confidence: float = 0.95

    @property
    def exact(self) -> bool:
        """Both samples had zero spread, so there is no noise to test against."""
        return self.df is None and self.low is not None


def welch(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Difference:
    """Welch's unequal-variance t test for ``mean(a) - mean(b)`` (Welch, 1947).

    Degrees of freedom by Welch-Satterthwaite:
    ``(va/na + vb/nb)^2 / ((va/na)^2/(na-1) + (vb/nb)^2/(nb-1))``.

    >>> d = welch([1.0, 3.0], [4.0, 6.0])  # df = 2: p = 1 - 3/sqrt(13)
    >>> d.difference, round(d.df, 6), round(d.p_value, 6)
    (-3.0, 2.0, 0.16795)
    """
    xa, xb = _check_finite(a, "a"), _check_finite(b, "b")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} is invalid; expected 0 < confidence < 1")
    ca, cb = mean_ci(xa, confidence), mean_ci(xb, confidence)
    diff = ca.mean - cb.mean
    if ca.std is None or cb.std is None:
        return Difference(diff, None, None, None, None, ca.n, cb.n, confidence)
    sa, sb = ca.std**2 / ca.n, cb.std**2 / cb.n
    se2 = sa + sb
    if se2 == 0.0:
        return Difference(diff, diff, diff, 1.0 if diff == 0 else 0.0, None, ca.n, cb.n, confidence)
    df = se2**2 / (sa**2 / (ca.n - 1) + sb**2 / (cb.n - 1))
    se = math.sqrt(se2)
    half = t_quantile(0.5 + confidence / 2.0, df) * se
    p = min(1.0, 2.0 * t_tail(abs(diff) / se, df))
    return Difference(diff, diff - half, diff + half, p, df, ca.n, cb.n, confidence)


def _decimals(scale: float, digits: int) -> int:
    """Enough decimals to show ``scale`` (a half-width) to one significant figure."""
    if scale <= 0 or not math.isfinite(scale):
        return digits
    return min(6, max(digits, -math.floor(math.log10(scale))))


def _num(x: float, decimals: int, signed: bool = False) -> str:
    x = 0.0 if round(x, decimals) == 0 else x  # no "-0.0"
    return f"{x:+.{decimals}f}" if signed else f"{x:.{decimals}f}"


def _p(p: float) -> str:
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.3f}" if p < 0.01 else f"p={p:.2f}"
