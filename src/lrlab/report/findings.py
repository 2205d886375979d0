"""Findings: each study's answer in one sentence, held against the published claim.

A study's ``[analysis]`` table says what its question is about (see
`lrlab.study.config.AnalysisConfig`); `analyze` reads the stored results and returns a
`Finding`: the answer with its effect size and 95% CI, and whether it agrees with the
published claim (``agrees``, ``disagrees`` or ``inconclusive`` when the difference is
within noise). `write_findings` gathers the findings of many study directories into one
markdown table (``docs/findings.md``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrlab.report.stats import mean_ci, verdict, welch
from lrlab.study.store import StudyStore, TrialRow
from lrlab.tasks.metrics import Metric, MetricSet


@dataclass(frozen=True)
class Finding:
    """One study's answer."""

    study: str
    question: str
    claim: str
    answer: str
    agreement: str  # "agrees", "disagrees", "inconclusive"
    details: tuple[str, ...] = ()

    def row(self) -> str:
        cells = [self.study, self.question, self.claim or "-", self.answer, self.agreement]
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _values(trials: list[TrialRow], arm: str, metric: Metric) -> list[float]:
    """The shown values (stored times the metric's scale) of an arm's finished trials."""
    out = []
    for t in trials:
        v = t.final.get(metric.name)
        if t.arm == arm and t.status == "done" and isinstance(v, (int, float)) and math.isfinite(v):
            out.append(float(v) * metric.scale)
    return out


def _agreement(expect: str, low: float | None, high: float | None, higher_is_better: bool) -> str:
    """Hold the 95% CI of (arm - baseline) against the claim."""
    if low is None or high is None:
        return "inconclusive"
    better = low > 0 if higher_is_better else high < 0
    worse = high < 0 if higher_is_better else low > 0
    if expect == "better":
        return "agrees" if better else ("disagrees" if worse else "inconclusive")
    if expect == "worse":
        return "agrees" if worse else ("disagrees" if better else "inconclusive")
    return "disagrees" if better or worse else "agrees"  # "same": no difference beyond noise


def _compare(
    cfg: dict[str, Any], trials: list[TrialRow], metrics: MetricSet
) -> tuple[str, str, list[str]]:
    a = cfg["analysis"]
    base = cfg.get("baseline") or cfg["arms"][0]["name"]
    arms = a.get("arms") or [x["name"] for x in cfg["arms"] if x["name"] != base]
    metric = metrics[a.get("metric") or metrics.primary.name]
    base_metric = metrics[a["baseline_metric"]] if a.get("baseline_metric") else metric
    higher = metric.higher_is_better
    sign = 1.0 if higher else -1.0
    unit, words = metric.unit, metric.words
    b_values = _values(trials, base, base_metric)
    lines, results = [], []
    for arm in arms:
        values = _values(trials, arm, metric)
        if not values or not b_values:
            lines.append(f"{arm} vs {base}: no finished trials to compare")
            continue
        d = welch(values, b_values)
        sentence = verdict(
            arm, values, base, b_values, higher, metric=words, unit=unit, digits=1 if unit else 3
        )
        agree = _agreement(a["expect"], d.low, d.high, higher)
        results.append((d.difference * sign, arm, sentence, agree))
        lines.append(sentence)
    if not results:
        return "no finished trials to answer with", "inconclusive", lines
    _, arm, sentence, agreement = max(results)
    if a["expect"] == "same" or len(results) == 1:
        agreements = {r[3] for r in results}
        agreement = (
            "agrees"
            if agreements == {"agrees"}
            else ("disagrees" if "disagrees" in agreements else "inconclusive")
        )
        against = [r for r in results if r[3] == "disagrees"]
        if agreement == "disagrees" and against and max(results)[3] != "disagrees":
            # the headline's best arm shows no difference; say which arm the verdict rests on
            worst = max(against, key=lambda r: abs(r[0]))
            sentence = (
                f"{sentence}; but {worst[2]} "
                f"({len(against)} of {len(results)} arms differ beyond noise)"
            )
    return sentence, agreement, lines


def _series_reach(store: StudyStore, trial: TrialRow, metric: Metric, target: float) -> int | None:
    steps, _, values = store.series(trial.id, metric.name)
    return next((s for s, v in zip(steps, values) if metric.reached(v, target)), None)


def _updates_to_reference(
    cfg: dict[str, Any], trials: list[TrialRow], store: StudyStore, metrics: MetricSet
) -> tuple[str, str, list[str]]:
    a = cfg["analysis"]
    primary = metrics.primary
    ref = a.get("reference") or cfg.get("baseline") or cfg["arms"][0]["name"]
    candidates = ref if isinstance(ref, list) else [ref]
    sign = 1.0 if primary.higher_is_better else -1.0

    def score(r: str) -> float:
        values = _values(trials, r, primary)
        return sign * mean_ci(values).mean if values else -math.inf

    # "the best fixed LR": of several references, the one with the best final value
    ref = max(candidates, key=score)
    arms = a.get("arms") or [x["name"] for x in cfg["arms"] if x["name"] not in candidates]
    ref_acc = _values(trials, ref, primary)
    ref_updates = [
        float(t.updates) for t in trials if t.arm == ref and t.status == "done" and t.updates
    ]
    if not ref_acc or not ref_updates:
        return f"no finished trials of the reference {ref}", "inconclusive", []
    target = mean_ci(ref_acc).mean / primary.scale
    total = mean_ci(ref_updates).mean
    what = f"{_final(primary)} of {_shown(primary, target)}"
    lines, best = [], None
    for arm in arms:
        runs = [t for t in trials if t.arm == arm and t.status in ("done", "diverged")]
        reached = [
            u for u in (_series_reach(store, t, primary, target) for t in runs) if u is not None
        ]
        if not reached:
            lines.append(f"{arm} never reached {ref}'s {what} (0 of {len(runs)} seeds)")
            continue
        ci = mean_ci(reached)
        speed = total / ci.mean
        interval = f" (95% CI {ci.low:.0f} to {ci.high:.0f})" if ci.low is not None else ""
        lines.append(
            f"{arm} reaches {ref}'s {what} in "
            f"{ci.mean:.0f} updates{interval}, {len(reached)} of {len(runs)} seeds: "
            f"{speed:.1f}x fewer than {ref}'s {total:.0f}"
        )
        if best is None or speed > best[0]:
            best = (speed, arm, lines[-1], ci, len(reached) == len(runs))
    if best is None:
        none = f"no arm reached the reference {primary.words}"
        return lines[0] if lines else none, "disagrees", lines
    speed, arm, sentence, ci, all_seeds = best
    claimed = a.get("claimed_speedup")
    published = f" (published: {claimed:g}x)" if claimed else ""
    faster = all_seeds and ci.high is not None and ci.high < total
    agreement = "agrees" if faster else ("inconclusive" if all_seeds else "disagrees")
    return sentence + published, agreement, lines


def _final(metric: Metric) -> str:
    """``final accuracy`` (the bundled tasks' words), ``final validation mae``."""
    return "final accuracy" if metric.name == "val_top1" else f"final {metric.words}"


def _shown(metric: Metric, stored: float) -> str:
    """A stored value as text: ``91.2%`` for a percentage, ``0.0312`` otherwise."""
    if metric.unit == "points":
        return f"{stored * metric.scale:.1f}%"
    return f"{stored * metric.scale:.4g}"


def _early_reading(
    cfg: dict[str, Any], trials: list[TrialRow], store: StudyStore, metrics: MetricSet
) -> tuple[str, str, list[str]]:
    epoch = cfg["analysis"]["early_epoch"]
    primary = metrics.primary
    early: dict[str, list[float]] = {}
    final: dict[str, list[float]] = {}
    for t in trials:
        if t.status != "done":
            continue
        _, epochs, values = store.series(t.id, "val_loss")
        at = [v for e, v in zip(epochs, values) if abs(e - epoch) < 1e-9]
        if at and math.isfinite(at[0]):
            early.setdefault(t.arm, []).append(at[0])
        if isinstance(t.final.get(primary.name), (int, float)):
            final.setdefault(t.arm, []).append(primary.scale * float(t.final[primary.name]))
    arms = [a for a in early if a in final]
    if len(arms) < 2:
        return "fewer than two arms have both readings", "inconclusive", []
    by_early = sorted(arms, key=lambda a: mean_ci(early[a]).mean)
    sign = -1.0 if primary.higher_is_better else 1.0
    by_final = sorted(arms, key=lambda a: sign * mean_ci(final[a]).mean)
    rank_e = {a: i for i, a in enumerate(by_early)}
    rank_f = {a: i for i, a in enumerate(by_final)}
    n = len(arms)
    rho = 1 - 6 * sum((rank_e[a] - rank_f[a]) ** 2 for a in arms) / (n * (n * n - 1))
    same = by_early[0] == by_final[0]
    d = welch(final[by_early[0]], final[by_final[0]]) if not same else None
    tied = d is not None and d.low is not None and d.high is not None and d.low <= 0 <= d.high
    final_words = _final(primary)
    answer = (
        f"validation loss at epoch {epoch} ranks {by_early[0]} first and {final_words} ranks "
        f"{by_final[0]} first (Spearman rho {rho:.2f} over {n} arms)"
    )
    if tied and d is not None:
        unit, digits = (" points", 1) if primary.unit == "points" else ("", 3)
        plural = "final accuracies" if primary.name == "val_top1" else f"{final_words} values"
        answer += (
            f"; their {plural} differ by {d.difference:+.{digits}f}{unit} "
            f"(95% CI {d.low:.{digits}f} to {d.high:.{digits}f}), within noise"
        )
    lines = [
        f"{a}: val loss at epoch {epoch} {mean_ci(early[a]).mean:.4f}, {final_words} "
        f"{_shown(primary, mean_ci(final[a]).mean / primary.scale)}"
        for a in by_final
    ]
    # Different winners whose final accuracies cannot be told apart: the early reading
    # neither confirmed nor refuted, so the verdict is open rather than "agrees".
    agreement = "agrees" if same else ("inconclusive" if tied else "disagrees")
    return answer, agreement, lines


def analyze(study_dir: str | Path) -> Finding:
    """Read a study's stored results and answer its question against its claim."""
    store = StudyStore(Path(study_dir) / "study.db", read_only=True)
    cfg = store.meta("config") or {}
    if not cfg:
        store.close()
        raise ValueError(f"{study_dir}: no study results (no stored configuration)")
    trials = store.trials()
    metrics = MetricSet.from_dict(store.meta("metrics"))
    kind = (cfg.get("analysis") or {}).get("kind", "compare")
    cfg.setdefault("analysis", {"kind": "compare", "metric": None, "expect": "better"})
    if kind == "updates_to_reference":
        answer, agreement, lines = _updates_to_reference(cfg, trials, store, metrics)
    elif kind == "early_reading":
        answer, agreement, lines = _early_reading(cfg, trials, store, metrics)
    else:
        answer, agreement, lines = _compare(cfg, trials, metrics)
    preset = store.meta("preset")
    store.close()
    name = cfg.get("name", "?") + (f" ({preset})" if preset else "")
    return Finding(
        name, cfg.get("question", ""), cfg.get("claim", ""), answer, agreement, tuple(lines)
    )


def write_findings(study_dirs: Sequence[str | Path], path: str | Path) -> list[Finding]:
    """One markdown table of every study's finding, with each study's details below it."""
    findings = [analyze(d) for d in study_dirs]
    out = [
        "# Findings",
        "",
        "Each row is one bundled study run at its small preset on CPU; numbers are means over",
        "seeds with 95% confidence intervals (Student t / Welch). Regenerate with",
        "`lrlab findings runs/* -o docs/findings.md` after "
        "`lrlab study run <study> --preset small`.",
        "",
        "| study | question | published claim | lrlab's small-scale result | agreement |",
        "|---|---|---|---|---|",
    ]
    out += [f.row() for f in findings]
    for f, d in zip(findings, study_dirs):
        out += ["", f"## {f.study}", "", f"Results: `{Path(d)}` (see its report.html).", ""]
        out += [f"- {line}" for line in f.details]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(out) + "\n", encoding="utf-8")
    return findings
