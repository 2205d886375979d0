"""Verdicts that noise cannot fool: a resolution, Holm's correction, diverged seeds named.

`stats.welch` gives one comparison's interval; a study makes several (each arm against
the baseline), reads them at one resolution and states what was left out. The rules:

* a win needs the Holm-adjusted p-value (Holm 1979) below ``1 - confidence``: with five
  arms against one baseline at 95%, each unadjusted test alone would make a false win in
  one study of four;
* a comparison that is not a win reads "no difference beyond noise" only when its
  interval is narrow: a half-width above ``resolution`` (in the metric's unit: 2 points of
  accuracy by default) reads "inconclusive: too noisy", since such an interval holds
  differences far larger than any the study could call equal;
* diverged and failed seeds (and collapsed ones, where the reader knows chance) are kept
  out of the means and intervals and named in the sentence ("diverged on 2 of 5 seeds").

>>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
[0.03, 0.06, 0.06]
>>> r = read_all([("a", [80.0, 95.0, 60.0], "b", [90.0, 91.0, 89.0])], resolution=2.0)[0]
>>> r.kind, r.sentence.startswith("inconclusive: too noisy to tell a from b")
('noisy', True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lrlab.report.stats import Difference, _decimals, _num, _p, welch

#: The default resolution: differences of accuracy smaller than this many points are
#: below what a small study is asked to tell apart.
RESOLUTION_POINTS = 2.0
#: A finished seed whose final score is within this many points of chance went nowhere.
COLLAPSE_POINTS = 10.0

__all__ = [
    "COLLAPSE_POINTS",
    "RESOLUTION_POINTS",
    "Reading",
    "SeedCount",
    "collapsed",
    "holm",
    "read_all",
]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (Holm 1979).

    The i-th smallest of m p-values is multiplied by ``m - i + 1`` (i from 1), made
    non-decreasing along the sorted order and capped at 1.

    >>> holm([0.04])
    [0.04]
    >>> [round(p, 3) for p in holm([0.001, 0.02, 0.03, 0.5])]
    [0.004, 0.06, 0.06, 0.5]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        out[i] = running
    return out


@dataclass(frozen=True)
class SeedCount:
    """How an arm's seeds ended: ``done`` ones are averaged, the rest are named.

    ``collapsed`` seeds finished, but at a final score at or below chance plus
    :data:`COLLAPSE_POINTS` (see :func:`collapsed`): training went nowhere, so a reader
    that knows chance counts them here instead of in ``done``.

    >>> SeedCount(done=2, diverged=1, collapsed=1).losses()
    ['diverged on 1 of 4 seeds', 'collapsed to chance on 1 of 4 seeds']
    """

    done: int = 0
    diverged: int = 0
    failed: int = 0
    collapsed: int = 0

    @property
    def total(self) -> int:
        return self.done + self.diverged + self.failed + self.collapsed

    def losses(self, of: int | None = None) -> list[str]:
        """Each way seeds were lost, in words, out of ``of`` seeds (default: the total)."""
        n = self.total if of is None else of
        return [
            f"{what} on {k} of {n} seeds"
            for what, k in (
                ("diverged", self.diverged),
                ("failed", self.failed),
                ("collapsed to chance", self.collapsed),
            )
            if k
        ]

    def note(self, arm: str) -> str:
        """``"LARS diverged on 2 of 5 seeds"`` (empty when every seed finished)."""
        parts = self.losses()
        return f"{arm} {' and '.join(parts)}" if parts else ""


def collapsed(score: float, chance: float) -> bool:
    """Whether a finished seed's final ``score`` (in points, as ``chance``) went nowhere:
    at or below ``chance + COLLAPSE_POINTS``.

    >>> collapsed(20.0, chance=10.0), collapsed(20.5, chance=10.0)
    (True, False)
    """
    return score <= chance + COLLAPSE_POINTS


@dataclass(frozen=True)
class Reading:
    """One comparison read at the study's resolution, after Holm's correction.

    ``kind``: ``better`` / ``worse`` (arm ``a`` against ``b``, a win beyond noise),
    ``same`` (no difference, interval within the resolution), ``noisy`` (interval too
    wide to tell), ``unknown`` (too few seeds for an interval).
    """

    a: str
    b: str
    difference: Difference | None
    p_adjusted: float | None
    kind: str
    sentence: str

    @property
    def half_width(self) -> float | None:
        d = self.difference
        if d is None or d.low is None or d.high is None:
            return None
        return (d.high - d.low) / 2.0


Pair = tuple[str, Sequence[float], str, Sequence[float]]


def read_all(
    pairs: Sequence[Pair],
    *,
    higher_is_better: bool = True,
    metric: str = "validation accuracy",
    unit: str = "points",
    digits: int = 1,
    confidence: float = 0.95,
    resolution: float | None = RESOLUTION_POINTS,
    seeds: dict[str, SeedCount] | None = None,
) -> list[Reading]:
    """Read each ``(a, a_values, b, b_values)`` comparison; Holm's correction runs over all
    of them (the comparisons of one study on one metric). ``resolution`` None: no width
    rule (a metric without a stated resolution)."""
    diffs = [welch(a, b, confidence) if a and b else None for _, a, _, b in pairs]
    tested = [i for i, d in enumerate(diffs) if d is not None and d.p_value is not None]
    adjusted: list[float | None] = [None] * len(pairs)
    for i, p in zip(tested, holm([diffs[i].p_value for i in tested])):  # type: ignore[union-attr,misc]
        adjusted[i] = p
    counts = seeds or {}
    out = []
    for (a, _, b, _), d, p_adj in zip(pairs, diffs, adjusted):
        kind, sentence = _sentence(
            (a, b), d, p_adj, len(tested), higher_is_better, (metric, unit, digits),
            confidence, resolution,
        )  # fmt: skip
        notes = [n for n in (counts.get(x, SeedCount()).note(x) for x in (a, b)) if n]
        if notes:
            sentence += f"; {' and '.join(notes)} (left out of the means and intervals)"
        out.append(Reading(a, b, d, p_adj, kind, sentence))
    return out


def _sentence(
    names: tuple[str, str],
    d: Difference | None,
    p_adj: float | None,
    m: int,
    higher: bool,
    shown: tuple[str, str, int],
    confidence: float,
    resolution: float | None,
) -> tuple[str, str]:
    (a, b), (metric, unit, digits) = names, shown
    level = f"{round(confidence * 100):g}% CI"
    of_metric = f" {unit} of {metric}" if unit else f" {metric}"
    on_metric = "" if unit else f" on {metric}"
    if d is None:
        return "unknown", f"{a} vs {b}: no finished seeds to compare"
    if d.low is None or d.high is None or d.p_value is None:
        dec = _decimals(abs(d.difference), digits)
        return "unknown", (
            f"{a} vs {b}: {_num(d.difference, dec, True)}{of_metric} for {a} from {d.n_a} and "
            f"{d.n_b} seeds; no {level} (needs at least 2 seeds per arm), so it cannot be "
            "told from noise"
        )
    a_better = (d.difference > 0) == higher
    win, lose = (a, b) if a_better else (b, a)
    mag = abs(d.difference)
    if d.exact:
        dec = _decimals(mag, digits)
        if d.difference == 0:
            return "same", f"{a} and {b} gave the same value on every seed (zero spread)"
        kind = "better" if a_better else "worse"
        return kind, f"{win} beats {lose} by {_num(mag, dec)}{of_metric} in every seed"
    half = (d.high - d.low) / 2.0
    dec = _decimals(max(half, 1e-300), digits)
    shown_unit = of_metric if unit else ""
    ci = f"{level} {_num(d.low, dec)} to {_num(d.high, dec)}"
    assert p_adj is not None
    holm_note = f", Holm-adjusted over {m} comparisons {_p(p_adj)}" if m > 1 else ""
    if p_adj < 1.0 - confidence:
        lo, hi = sorted((abs(d.low), abs(d.high)))
        kind = "better" if a_better else "worse"
        return kind, (
            f"{win} beats {lose}{on_metric} by {_num(mag, dec)}{shown_unit} ({level} "
            f"{_num(lo, dec)} to {_num(hi, dec)}, {_p(d.p_value)}{holm_note})"
        )
    signed = f"{_num(d.difference, dec, True)}{shown_unit} for {a}"
    if resolution is not None and half > resolution:
        res = f"{resolution:g}{' ' + unit if unit else ''}"
        return "noisy", (
            f"inconclusive: too noisy to tell {a} from {b}{on_metric}: {signed} ({ci}, "
            f"{_p(d.p_value)}{holm_note}; the interval's half-width {_num(half, dec)} is "
            f"wider than the {res} resolution)"
        )
    return "same", (
        f"no difference beyond noise between {a} and {b}{on_metric}: {signed} ({ci}, "
        f"{_p(d.p_value)}{holm_note})"
    )
