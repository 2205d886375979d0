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

from lrlab.report.stats import mean_ci
from lrlab.report.study_notes import scores_on_test, split_of_trials, split_sentence
from lrlab.report.verdicts import RESOLUTION_POINTS, Reading, SeedCount, read_all
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


def seed_counts(trials: list[TrialRow], arms: Sequence[str]) -> dict[str, SeedCount]:
    """How each arm's seeds ended (done, diverged, failed)."""
    ended = ("done", "diverged", "failed")
    return {
        arm: SeedCount(*(sum(t.arm == arm and t.status == s for t in trials) for s in ended))
        for arm in arms
    }


def resolution_of(analysis: dict[str, Any], metric: Metric) -> float | None:
    """The study's stated resolution, else 2 points for a percentage metric (else none)."""
    stated = analysis.get("resolution")
    if stated is not None:
        return float(stated)
    return RESOLUTION_POINTS if metric.unit == "points" else None


def _agreement(expect: str, kind: str) -> str:
    """Hold one reading (arm against baseline) against the claim."""
    if kind in ("noisy", "unknown"):
        return "inconclusive"
    if expect == "same":
        return "agrees" if kind == "same" else "disagrees"
    wanted = "better" if expect == "better" else "worse"
    return "agrees" if kind == wanted else "disagrees"


def _overall(expect: str, agreements: list[str]) -> str:
    """``same``: every question arm must agree; ``better``/``worse``: any arm may."""
    found = set(agreements)
    if expect == "same":
        if found == {"agrees"}:
            return "agrees"
        return "disagrees" if "disagrees" in found else "inconclusive"
    if "agrees" in found:
        return "agrees"
    return "inconclusive" if "inconclusive" in found else "disagrees"


def _tally(readings: list[Reading], base: str) -> str:
    kinds = [r.kind for r in readings]
    parts = [
        f"{kinds.count('better')} beat {base}",
        f"{kinds.count('worse')} lose to it",
        f"{kinds.count('same')} no difference",
        f"{kinds.count('noisy') + kinds.count('unknown')} too noisy to tell",
    ]
    return f"of {len(readings)} arms against {base}: {', '.join(parts)}"


def _compare(
    cfg: dict[str, Any], trials: list[TrialRow], metrics: MetricSet
) -> tuple[str, str, list[str]]:
    a = cfg["analysis"]
    base = cfg.get("baseline") or cfg["arms"][0]["name"]
    everyone = [x["name"] for x in cfg["arms"] if x["name"] != base]
    asked = a.get("arms") or everyone
    metric = metrics[a.get("metric") or metrics.primary.name]
    base_metric = metrics[a["baseline_metric"]] if a.get("baseline_metric") else metric
    b_values = _values(trials, base, base_metric)
    pairs = [(arm, _values(trials, arm, metric), base, b_values) for arm in asked]
    readings = read_all(
        pairs,
        higher_is_better=metric.higher_is_better,
        metric=metric.words,
        unit=metric.unit,
        digits=1 if metric.unit else 3,
        resolution=resolution_of(a, metric),
        seeds=seed_counts(trials, [*asked, base]),
    )
    lines = [r.sentence for r in readings]
    if not b_values or not any(r.difference is not None for r in readings):
        return "no finished trials to answer with", "inconclusive", lines
    agreements = [_agreement(a["expect"], r.kind) for r in readings]
    agreement = _overall(a["expect"], agreements)
    if len(readings) == 1:
        return readings[0].sentence, agreement, lines
    # the sentence the verdict rests on: the largest effect among the arms that decide it
    deciding = [r for r, g in zip(readings, agreements) if g == agreement] or readings
    rest = max(deciding, key=lambda r: abs(r.difference.difference) if r.difference else 0.0)
    return f"{_tally(readings, base)}; {rest.sentence}", agreement, lines


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
    lines, best, quicker = [], None, 0
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
        every = len(reached) == len(runs)
        quicker += every and ci.high is not None and ci.high < total
        if best is None or speed > best[0]:
            best = (speed, arm, lines[-1], ci, every)
    if best is None:
        none = f"no arm reached the reference {primary.words}"
        return lines[0] if lines else none, "disagrees", lines
    speed, arm, sentence, ci, all_seeds = best
    claimed = a.get("claimed_speedup")
    published = f" (published: {claimed:g}x)" if claimed else ""
    faster = all_seeds and ci.high is not None and ci.high < total
    agreement = "agrees" if faster else ("inconclusive" if all_seeds else "disagrees")
    if len(arms) > 1:  # the question names every arm: say how many, then the fastest
        sentence = (
            f"{quicker} of {len(arms)} arms reach it in fewer updates on every seed (95% CI "
            f"below {ref}'s); fastest: {sentence}"
        )
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
    reading = None
    if not same:
        unit = primary.unit
        reading = read_all(
            [(by_early[0], final[by_early[0]], by_final[0], final[by_final[0]])],
            higher_is_better=primary.higher_is_better,
            metric=primary.words,
            unit=unit,
            digits=1 if unit else 3,
            resolution=resolution_of(cfg["analysis"], primary),
            seeds=seed_counts(trials, [by_early[0], by_final[0]]),
        )[0]
    tied = reading is not None and reading.kind in ("same", "noisy", "unknown")
    final_words = _final(primary)
    answer = (
        f"validation loss at epoch {epoch} ranks {by_early[0]} first and {final_words} ranks "
        f"{by_final[0]} first (Spearman rho {rho:.2f} over {n} arms)"
    )
    if reading is not None:
        answer += f"; on {final_words}: {reading.sentence}"
    lines = [
        f"{a}: val loss at epoch {epoch} {mean_ci(early[a]).mean:.4f}, {final_words} "
        f"{_shown(primary, mean_ci(final[a]).mean / primary.scale)}"
        for a in by_final
    ]
    # Different winners whose final accuracies cannot be told apart (or are too noisy to):
    # the early reading neither confirmed nor refuted, so the verdict is open.
    agreement = "agrees" if same else ("inconclusive" if tied else "disagrees")
    return answer, agreement, lines


def _split_lines(cfg: dict[str, Any], trials: list[TrialRow], metrics: MetricSet) -> list[str]:
    """Which split the numbers above come from, and the test split's own numbers."""
    primary = metrics.primary
    out = [split_sentence(split_of_trials(trials))]
    warned: dict[str, int] = {}
    for t in trials:
        b = t.final.get("bounds")
        if isinstance(b, dict) and b.get("warnings"):
            warned[t.arm] = warned.get(t.arm, 0) + 1
    if warned:
        each = ", ".join(f"{arm} {k} of {sum(t.arm == arm for t in trials)}"
                         for arm, k in warned.items())  # fmt: skip
        out.append(f"range-test picks with warnings (low confidence; see the report): {each}")
    if primary.name.startswith("val_"):
        key = "test_" + primary.name[len("val_") :]
        words = primary.words.replace("validation", "test")
        names = [str(a["name"]) for a in cfg.get("arms", [])]
        tests = scores_on_test([(n, [t for t in trials if t.arm == n]) for n in names], key,
                           primary.scale, words)  # fmt: skip
        if tests:
            out.append(
                "test split (scored once at the end, read by no verdict): " + "; ".join(tests)
            )
    return out


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
    lines = [*lines, *_split_lines(cfg, trials, metrics)]
    split = split_of_trials(trials)
    if split is not None and split.get("tuning_saw_test"):
        answer = f"{answer} [tuning read the test split]"
    if not cfg.get("claim"):
        agreement = "no claim"  # nothing published to hold the answer against
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
        "the seeds that finished, with 95% confidence intervals (Student t / Welch). Diverged",
        "and failed seeds are named, never averaged in. Wins are Holm-corrected over each",
        "study's comparisons; a comparison reads \"no difference\" only when its interval's",
        "half-width is within the study's resolution (2 points of accuracy unless stated), and",
        '"inconclusive: too noisy" otherwise. Tuning and verdicts read a validation split held',
        "out of training; the test split is scored once at the end and listed apart. Regenerate",
        "with `lrlab findings runs/* -o docs/findings.md` after "
        "`lrlab study run <study> --preset small --dir runs/<study>-small`.",
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
