"""How `benchmarks/methods.py` reads its stores: outcomes per arm, and comparisons that name
failure instead of averaging it.

* Final accuracy is the test split's (`final_accuracy`): validation is held out of
  training and is what every tuning step reads, so the test split is unseen by all arms.
* An arm's seeds are counted by outcome, in a `verdicts.SeedCount`: done, diverged (the
  trainer stopped it), failed (an error), collapsed (finished within
  ``verdicts.COLLAPSE_POINTS`` of chance accuracy, i.e. training went nowhere). Only done
  seeds enter means and confidence intervals; the others are counted and named wherever
  the arm is read.
* A comparison is Welch's 95% CI of the difference in final accuracy over done seeds. It
  reads "beats" or "loses to" when the CI excludes 0, "no difference larger than R points"
  when it includes 0 and its half-width is at most the resolution R, and "inconclusive"
  when the CI is wider than that (too noisy to tell) or an arm has fewer than 2 done seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lrlab.report.stats import MeanCI, mean_ci, welch
from lrlab.report.verdicts import SeedCount, collapsed

#: the smallest difference (points of accuracy) a comparison claims to resolve
RESOLUTION = 2.0


@dataclass
class Outcome:
    """One arm's seeds by outcome, with the done seeds' accuracies (in %).

    ``seeds`` counts every trial of the arm in the store, finished or not."""

    arm: str
    acc: list[float] = field(default_factory=list)
    seeds: int = 0
    count: SeedCount = field(default_factory=SeedCount)

    @property
    def diverged(self) -> int:
        return self.count.diverged

    @property
    def failed(self) -> int:
        return self.count.failed

    @property
    def collapsed(self) -> int:
        return self.count.collapsed

    @property
    def lost(self) -> int:
        return self.diverged + self.failed + self.collapsed

    @property
    def ci(self) -> MeanCI | None:
        return mean_ci(self.acc) if self.acc else None

    def failures(self) -> str:
        """``"diverged on 2 of 5 seeds"``-style words, or "" when every seed finished."""
        return ", ".join(self.count.losses(of=self.seeds))


def final_accuracy(final: dict[str, Any]) -> float:
    """The test split's accuracy (scored once at the end, never read by any tuning step),
    or the validation split's where the study kept no test split apart."""
    value = final.get("test_top1")
    return float(value if value is not None else final.get("val_top1") or 0.0)


def outcome(arm: str, trials: list[Any], chance: float) -> Outcome:
    """Count ``arm``'s trials (store rows) by outcome; ``chance`` in % (10 for 10 classes)."""
    mine = [t for t in trials if t.arm == arm]
    acc: list[float] = []
    n_collapsed = 0
    for t in mine:
        if t.status == "done":
            score = 100 * final_accuracy(t.final or {})
            if collapsed(score, chance):
                n_collapsed += 1
            else:
                acc.append(score)
    status = [t.status for t in mine]
    count = SeedCount(len(acc), status.count("diverged"), status.count("failed"), n_collapsed)
    return Outcome(arm, acc, len(mine), count)


def compare(
    me: Outcome, other: Outcome, resolution: float = RESOLUTION, name_mine: bool = True
) -> tuple[str, str]:
    """``(side, text)``: side is "beats", "loses to", "no difference" or "inconclusive".

    The text names the seeds either arm lost (``name_mine=False``: only the other's, for
    a line that names ``me``'s once)."""
    notes = [f"{o.arm} {o.failures()}, kept out" for o in (me, other) if o.lost]
    if not name_mine and me.lost:
        notes = notes[1:]
    if len(me.acc) < 2 or len(other.acc) < 2:
        few = min(len(me.acc), len(other.acc))
        return "inconclusive", _with(
            f"{other.arm} (inconclusive: {few} finished seed(s), too few for an interval)", notes
        )
    d = welch(me.acc, other.acc)
    if d.low is None or d.high is None:
        return "inconclusive", _with(f"{other.arm} (inconclusive: no interval)", notes)
    ci = f"{d.difference:+.1f}, 95% CI {d.low:+.1f} to {d.high:+.1f}"
    if d.low > 0:
        return "beats", _with(f"{other.arm} ({ci})", notes)
    if d.high < 0:
        return "loses to", _with(f"{other.arm} ({ci})", notes)
    half = (d.high - d.low) / 2
    if half > resolution:
        return "inconclusive", _with(
            f"{other.arm} (inconclusive, too noisy: {ci}, wider than ±{resolution:g})", notes
        )
    return "no difference", _with(f"{other.arm} ({ci})", notes)


def _with(text: str, notes: list[str]) -> str:
    return text[:-1] + "; " + "; ".join(notes) + ")" if notes else text


SIDES = ("beats", "loses to", "no difference", "inconclusive")
WORDS = {
    "beats": "beats",
    "loses to": "loses to",
    "no difference": f"shows no difference larger than {RESOLUTION:g} points from",
    "inconclusive": "cannot be told apart from",
}


def standing(task: str, me: Outcome, others: list[Outcome]) -> str:
    """One line: where ``me`` wins, loses, ties within the resolution, or cannot tell."""
    head = f"- {task}: {me.arm}" + (f" ({me.failures()})" if me.lost else "")
    if len(me.acc) < 2:
        return f"{head}: {len(me.acc)} finished seed(s), too few to compare with any arm."
    sides: dict[str, list[str]] = {s: [] for s in SIDES}
    for other in others:
        side, text = compare(me, other, name_mine=False)
        sides[side].append(text)
    parts = [f"{WORDS[s]} {', '.join(v)}" for s, v in sides.items() if v]
    return head + " " + "; ".join(parts) + "."
