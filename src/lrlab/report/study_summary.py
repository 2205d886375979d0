"""What a study found: per-arm statistics, verdicts against the baseline, provenance.

Which metrics a study has, which way each is better and how it is shown come from the
metric registry the store recorded (`lrlab.tasks.metrics.MetricSet`): a regression task's
report has no accuracy columns, and its verdicts read its own primary metric.

Final metrics are summarised over the trials that finished (``done``). Diverged trials
are not averaged in (their last numbers describe a blow-up, not the method) but they are
counted, listed with the update they diverged at, and named in the verdicts.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrlab.report.stats import MeanCI, mean_ci
from lrlab.report.study_series import AppliedSchedule, Band, GroupRates
from lrlab.report.verdicts import RESOLUTION_POINTS, Reading, SeedCount, read_all
from lrlab.study.store import STATUSES, StudyStore, TrialRow
from lrlab.tasks.metrics import CLASSIFICATION, Metric, MetricSet

__all__ = ["ArmSummary", "Metric", "MetricSet", "StudySummary", "compare", "summarize"]


@dataclass(frozen=True)
class TargetReach:
    """Updates to reach a target over the finished seeds that reached it."""

    updates: MeanCI | None
    reached: int
    of: int


@dataclass
class ArmSummary:
    """One arm: its trials by status, final statistics and series."""

    name: str
    trials: list[TrialRow]
    values: dict[str, list[float]]  # metric key -> shown values over done trials
    final: dict[str, MeanCI]
    targets: dict[str, TargetReach]
    tuning_updates: MeanCI | None
    seconds: MeanCI | None
    bounds: dict[str, MeanCI]  # "base_lr"/"max_lr" found by range tests, over finished trials
    bound_rules: list[str]
    curves: dict[str, Band] = field(default_factory=dict)
    diverged_curves: list[tuple[int, Band]] = field(default_factory=list)
    schedules: list[AppliedSchedule] = field(default_factory=list)
    group_rates: GroupRates | None = None

    def with_status(self, *statuses: str) -> list[TrialRow]:
        return [t for t in self.trials if t.status in statuses]

    @property
    def counts(self) -> dict[str, int]:
        return {s: len(self.with_status(s)) for s in STATUSES}


@dataclass
class StudySummary:
    """Everything the report shows, computed once from the store."""

    study_dir: Path
    config: dict[str, Any]
    preset: str | None
    baseline: str
    arms: list[ArmSummary]
    headline: str
    comparisons: list[str]
    provenance: dict[str, list[str]]
    metrics: MetricSet = CLASSIFICATION
    finding: Any = None  # lrlab.report.findings.Finding when the study states an analysis

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.study_dir.name)

    @property
    def targets(self) -> dict[str, float]:
        t = self.config.get("targets") or {}
        return {k: float(v) for k, v in t.items() if k in self.metrics.targets}

    def arm(self, name: str) -> ArmSummary | None:
        return next((a for a in self.arms if a.name == name), None)


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _numbers(values: Iterable[Any]) -> list[float]:
    """The finite numbers among ``values`` (None, NaN and non-numbers left out)."""
    out = []
    for v in values:
        x = _number(v)
        if x is not None:
            out.append(x)
    return out


def _ci(values: list[float]) -> MeanCI | None:
    return mean_ci(values) if values else None


def _arm(
    name: str, trials: list[TrialRow], targets: dict[str, float], metrics: MetricSet
) -> ArmSummary:
    done = [t for t in trials if t.status == "done"]
    values: dict[str, list[float]] = {}
    for m in metrics.columns:
        values[m.name] = [v * m.scale for v in _numbers(t.final.get(m.name) for t in done)]
    final = {k: mean_ci(v) for k, v in values.items() if v}
    finished = [t for t in trials if t.status in ("done", "diverged")]
    reach = {}
    for key in targets:
        got = []
        for t in finished:
            to_target = t.final.get("updates_to_target")
            u = _number(to_target.get(key)) if isinstance(to_target, dict) else None
            if u is not None:
                got.append(u)
        reach[key] = TargetReach(_ci(got), len(got), len(finished))
    tuning = [float(t.tuning_updates or 0) for t in finished]
    seconds = _numbers(t.seconds for t in finished)
    found = [t.final["bounds"] for t in finished if isinstance(t.final.get("bounds"), dict)]
    bounds = {}
    for key in ("base_lr", "max_lr"):
        lrs = _numbers(b.get(key) for b in found)
        if lrs:
            bounds[key] = mean_ci(lrs)
    rules = sorted({str(b["rule"]) for b in found if b.get("rule")})
    return ArmSummary(name, trials, values, final, reach, _ci(tuning), _ci(seconds), bounds, rules)


def _seeds(arms: list[ArmSummary]) -> dict[str, SeedCount]:
    return {
        a.name: SeedCount(a.counts["done"], a.counts["diverged"], a.counts["failed"]) for a in arms
    }


def compare_all(
    arms: list[ArmSummary], base: ArmSummary, metric: Metric, resolution: float | None
) -> list[Reading]:
    """Each arm against ``base`` on one metric, Holm-corrected over these comparisons
    (arms without the metric are left out)."""
    b = base.values.get(metric.name)
    if not b:
        return []
    pairs = [
        (a.name, a.values[metric.name], base.name, b)
        for a in arms
        if a is not base and a.values.get(metric.name)
    ]
    return read_all(
        pairs,
        higher_is_better=metric.higher_is_better,
        metric=metric.words,
        unit=metric.unit,
        digits=1 if metric.unit == "points" else 3,
        resolution=resolution,
        seeds=_seeds([*arms, base]),
    )


def compare(arm: ArmSummary, base: ArmSummary, metric: Metric) -> str | None:
    """The verdict of ``arm`` against ``base`` alone on one metric (None if either lacks
    it), at the default resolution for the metric's unit."""
    if not arm.values.get(metric.name) or not base.values.get(metric.name):
        return None
    resolution = RESOLUTION_POINTS if metric.unit == "points" else None
    return compare_all([arm], base, metric, resolution)[0].sentence


def _headline(
    arms: list[ArmSummary],
    base: ArmSummary | None,
    primary: Metric,
    readings: list[Reading],
    asked: list[str] | None,
) -> str:
    key, words = primary.name, primary.words
    if base is None or not base.values.get(key):
        name = base.name if base is not None else "the baseline"
        return f"no answer yet: the baseline {name} has no finished trial with {words}"
    others = [a for a in arms if a is not base and a.values.get(key)]
    if not others:
        ci = base.final[key]

        def shown(v: float) -> str:
            return f"{v:.1f}" if primary.unit == "points" else f"{v:.4g}"

        interval = (
            f"95% CI {shown(ci.low)} to {shown(ci.high)}, "
            if ci.low is not None and ci.high is not None
            else ""
        )
        mean = shown(ci.mean) + ("%" if primary.unit == "points" else "")
        return (
            f"{base.name} is the only arm with {words} from finished trials: "
            f"{mean} ({interval}n={ci.n}); nothing to compare it with"
        )
    by_arm = {r.a: r for r in readings}
    if asked:  # the arm the study's question names comes first
        named = [by_arm[n] for n in asked if n in by_arm]
        if named:
            return named[0].sentence
    pick = max if primary.higher_is_better else min
    best = pick(others, key=lambda a: a.final[key].mean)
    return by_arm[best.name].sentence if best.name in by_arm else ""


def _when(ts: list[float]) -> str:
    return dt.datetime.fromtimestamp(min(ts), dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _provenance(trials: list[TrialRow]) -> dict[str, list[str]]:
    from lrlab import __version__

    def distinct(attr: str) -> list[str]:
        return sorted({str(getattr(t, attr)) for t in trials if getattr(t, attr)})

    started = [t.started for t in trials if t.started]
    finished = [t.finished for t in trials if t.finished]
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return {
        "lrlab version": distinct("lrlab_version"),
        "git commit": distinct("git_commit"),
        "torch version": distinct("torch_version"),
        "first trial started": [_when(started)] if started else [],
        "last trial finished": [_when([max(finished)])] if finished else [],
        "report written": [f"{now} by lrlab {__version__}"],
    }


def curve_keys(metrics: MetricSet) -> list[str]:
    """What curves, verdicts and final figures show: the primary metric and the loss.

    >>> curve_keys(CLASSIFICATION)
    ['val_top1', 'val_loss']
    """
    return list(dict.fromkeys([metrics.primary.name, "val_loss"]))


def open_store(study_dir: Path) -> StudyStore:
    """The study's store, read-only, or a ValueError naming what is missing or damaged
    (nothing is created or written)."""
    if not study_dir.is_dir():
        raise ValueError(f"study directory {str(study_dir)!r} does not exist")
    db = study_dir / "study.db"
    if not db.is_file():
        raise ValueError(
            f"{str(study_dir)!r} has no study.db; run 'lrlab study run STUDY' to make one"
        )
    return StudyStore(db, read_only=True)


def _require_finished(study_dir: Path, config: dict[str, Any], trials: list[TrialRow]) -> None:
    """A ValueError saying how the trials stand when none has finished (done or diverged)."""
    if any(t.status in ("done", "diverged") for t in trials):
        return
    counts = ", ".join(
        f"{sum(t.status == s for t in trials)} {s}"
        for s in STATUSES
        if any(t.status == s for t in trials)
    )
    failed = any(t.status == "failed" for t in trials)
    raise ValueError(
        f"study {config.get('name', study_dir.name)!r} has no finished trials yet "
        f"({counts or 'no trials'}); "
        + ("fix what failed and run it again" if failed else "run it first")
    )


def _arm_names(config: dict[str, Any], trials: list[TrialRow]) -> list[str]:
    """The configured arms in their order, then any other arm the store holds."""
    names = [str(a["name"]) for a in config.get("arms", []) if isinstance(a, dict)]
    return names + [n for n in dict.fromkeys(t.arm for t in trials) if n not in names]


def _add_series(store: StudyStore, arm: ArmSummary, metrics: MetricSet) -> None:
    """Fill ``arm``'s curves, diverged seeds' curves, applied schedules and group rates."""
    from lrlab.report import study_series as series

    done = arm.with_status("done")
    for key in curve_keys(metrics):
        band = series.curve(store, done, key)
        if band is not None:
            arm.curves[key] = band
    for t in arm.with_status("diverged"):
        band = series.curve(store, [t], metrics.primary.name)
        if band is not None:
            arm.diverged_curves.append((t.seed, band))
    for t in done or arm.with_status("diverged"):
        applied = series.applied_schedule(store, t)
        if applied is not None:
            arm.schedules.append(applied)
    arm.group_rates = series.group_rates(store, done)


def _read_metrics(
    arms: list[ArmSummary], base: ArmSummary | None, metrics: MetricSet, analysis: dict[str, Any]
) -> dict[str, list[Reading]]:
    """Each shown metric's comparisons against ``base`` (none without a baseline)."""
    if base is None:
        return {}
    from lrlab.report.findings import resolution_of

    return {
        key: compare_all(arms, base, metrics[key], resolution_of(analysis, metrics[key]))
        for key in curve_keys(metrics)
    }


def summarize(study_dir: Path) -> StudySummary:
    """Read ``study_dir/study.db`` and compute everything the report shows.

    Raises:
        ValueError: the directory or its ``study.db`` is missing, it has no study config,
            or no trial has finished (done or diverged) yet.
    """
    study_dir = Path(study_dir)
    store = open_store(study_dir)
    try:
        config = store.meta("config")
        if not isinstance(config, dict):
            raise ValueError(f"{str(study_dir / 'study.db')!r} holds no study config")
        trials = store.trials()
        _require_finished(study_dir, config, trials)
        metrics = MetricSet.from_dict(store.meta("metrics"))
        names = _arm_names(config, trials)
        targets = {
            k: float(v) for k, v in (config.get("targets") or {}).items() if k in metrics.targets
        }
        arms = [_arm(n, [t for t in trials if t.arm == n], targets, metrics) for n in names]
        for a in arms:
            _add_series(store, a, metrics)
        preset = store.meta("preset")
    finally:
        store.close()
    baseline = str(config.get("baseline") or (names[0] if names else ""))
    base = next((a for a in arms if a.name == baseline), None)
    analysis = config.get("analysis") or {}
    by_metric = _read_metrics(arms, base, metrics, analysis)
    # arm by arm, each metric's sentence (the order the report always had)
    comparisons = [
        r.sentence
        for a in arms
        for key in curve_keys(metrics)
        for r in by_metric.get(key, [])
        if r.a == a.name
    ]
    return StudySummary(
        study_dir=study_dir,
        config=config,
        preset=None if preset is None else str(preset),
        baseline=baseline,
        arms=arms,
        headline=_headline(
            arms,
            base,
            metrics.primary,
            by_metric.get(metrics.primary.name, []),
            analysis.get("arms"),
        ),
        comparisons=comparisons,
        provenance=_provenance(trials),
        metrics=metrics,
    )
