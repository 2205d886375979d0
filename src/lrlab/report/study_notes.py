"""What a reader needs to judge an arm: what its range test ran with and warned about,
and which parameter groups it freezes or scales.

Plain strings (user strings unescaped); `lrlab.report.study_pages` escapes them.
"""

from __future__ import annotations

from typing import Any

from lrlab.report.stats import mean_ci
from lrlab.report.study_summary import StudySummary
from lrlab.study.store import TrialRow


def range_test_warnings(summary: StudySummary) -> list[str]:
    """One line per trial whose range-test pick came with warnings (a low-confidence pick)."""
    lines = []
    for arm in summary.arms:
        for t in sorted(arm.trials, key=lambda t: t.seed):
            b = t.final.get("bounds") if isinstance(t.final, dict) else None
            if not isinstance(b, dict):
                continue
            warnings = [str(w) for w in b.get("warnings") or []]
            low = b.get("low_confidence")
            if low:
                warnings.append(f"low-confidence pick: {low}")
            if warnings:
                lines.append(f"{arm.name}, seed {t.seed}: " + "; ".join(warnings))
    return lines


def swept_with(record: dict[str, Any] | None) -> str:
    """The range test's optimizer settings in words (``"-"`` for an older store).

    >>> swept_with({"optimizer": "SGD", "momentum": [0.99, 0.99], "weight_decay": [1e-5, 0],
    ...             "lr_scales": [1.75, 1.75], "lars": None, "frozen": []})
    'SGD, momentum 0.99, weight decay 1e-05, LR multipliers up to 1.75'
    """
    if not isinstance(record, dict):
        return "-"
    parts = [str(record.get("optimizer", "?"))]
    moms = sorted({m for m in record.get("momentum") or [] if m is not None})
    if moms:
        parts.append("momentum " + "/".join(f"{m:g}" for m in moms))
    decays = sorted({d for d in record.get("weight_decay") or [] if d})
    if decays:
        parts.append("weight decay " + "/".join(f"{d:g}" for d in decays))
    scales = record.get("lr_scales") or []
    if scales and any(abs(s - 1.0) > 1e-12 for s in scales):
        parts.append(f"LR multipliers up to {max(scales):g}")
    lars = record.get("lars")
    if isinstance(lars, dict):
        kind = "LARC" if lars.get("mode") == "clip" else "LARS"
        parts.append(f"{kind} (trust coefficient {lars.get('trust_coefficient'):g})")
    frozen = record.get("frozen") or []
    if frozen:
        parts.append(f"{len(frozen)} parameter tensors frozen")
    return ", ".join(parts)


def arm_groups(arm: dict[str, Any]) -> str:
    """Which parameter groups an arm freezes or scales, from its config (``""``: none).

    >>> arm_groups({"freeze": {"events": [{"at": "30%", "action": "freeze",
    ...     "blocks": ["stem*", "layer*", "fc*"], "except_blocks": ["layer1*"]}]}})
    'freezes stem*, layer*, fc* except layer1* at 30%'
    >>> arm_groups({"layerwise": {"policy": "interpolate", "first": 3.0, "last": 0.33}})
    'scales group LRs: interpolate from 3x (first) to 0.33x (last)'
    """
    parts = []
    for e in (arm.get("freeze") or {}).get("events") or []:
        blocks = ", ".join(e.get("blocks") or [])
        unless = f" except {', '.join(e['except_blocks'])}" if e.get("except_blocks") else ""
        unit = "" if isinstance(e.get("at"), str) else f" {e.get('unit', 'epoch')}"
        parts.append(f"{e.get('action', 'freeze')}s {blocks}{unless} at {e.get('at')}{unit}")
    llr = arm.get("layerwise")
    if isinstance(llr, dict):
        policy = llr.get("policy")
        if policy == "fixed":
            how = ", ".join(f"{k} x{v:g}" for k, v in (llr.get("multipliers") or {}).items())
        elif policy == "interpolate":
            how = f"interpolate from {llr.get('first'):g}x (first) to {llr.get('last'):g}x (last)"
        elif policy == "cyclical":
            how = f"cyclical multiplier {llr.get('multiplier')}, offset {llr.get('offset')}"
        elif policy == "override":
            how = f"{', '.join(llr.get('blocks') or [])} on their own LR {llr.get('lr')}"
        else:
            how = "automatic (AutoLLR)"
        parts.append(f"scales group LRs: {how}")
    lars = arm.get("lars")
    if isinstance(lars, dict):
        kind = "LARC" if lars.get("mode") == "clip" else "LARS"
        parts.append(f"{kind} trust ratio on every decaying tensor")
    return "; ".join(parts)


def split_of_trials(trials: list[TrialRow]) -> dict[str, Any] | None:
    """The split record the trials stored (None: a store from before it was kept)."""
    for t in trials:
        split = t.final.get("split") if isinstance(t.final, dict) else None
        if isinstance(split, dict):
            return split
    return None


def split_sentence(split: dict[str, Any] | None) -> str:
    """Which split the numbers come from, in one sentence.

    >>> split_sentence({"holdout": 0.1, "tuning_saw_test": False})  # doctest: +ELLIPSIS
    'Validation (what tuning and every verdict read): 10% of the training set held out (seeded...'
    """
    if split is None:
        return (
            "Validation split not recorded (a store from before held-out validation): "
            "tuning may have read the test split"
        )
    if split.get("tuning_saw_test"):
        return (
            "holdout = 0: validation is the test split, so tuning (range tests, confirm runs, "
            "searches, early readings, snapshot selection) saw the test set"
        )
    held = split.get("holdout") or 0
    what = (
        f"{held:.0%} of the training set held out (seeded, stratified by class)"
        if held
        else str(split.get("validation"))
    )
    return (
        f"Validation (what tuning and every verdict read): {what}; the test split is scored "
        "once at the end and reported separately"
    )


def scores_on_test(
    arms: list[tuple[str, list[TrialRow]]], key: str, scale: float, words: str
) -> list[str]:
    """Per arm, the test metric ``key`` over its finished seeds (mean ± 95% CI)."""
    out = []
    for name, trials in arms:
        values = [
            float(t.final[key]) * scale
            for t in trials
            if t.status == "done" and isinstance(t.final.get(key), (int, float))
        ]
        if not values:
            continue
        ci = mean_ci(values)
        half = f" ± {ci.half_width:.1f}" if ci.half_width is not None else ""
        out.append(f"{name}: {words} {ci.mean:.1f}{half} (n={ci.n})")
    return out


def test_table(summary: StudySummary) -> tuple[list[str], list[list[str]]] | None:
    """Per arm, the test split's numbers (scored once at the end; None when none were)."""
    keys = []
    for m in summary.metrics.columns:
        if m.name.startswith("val_") and m.name != "val_loss":
            keys.append(("test_" + m.name[4:], m.scale, m.label.replace("val", "test")))
    keys.append(("test_loss", 1.0, "test loss"))
    header = ["arm", "seeds"] + [label for _, _, label in keys]
    rows = []
    for arm in summary.arms:
        done = [t for t in arm.trials if t.status == "done"]
        cells, any_value = [], False
        for key, scale, _ in keys:
            values = [float(t.final[key]) * scale for t in done
                      if isinstance(t.final.get(key), (int, float))]  # fmt: skip
            any_value |= bool(values)
            ci = mean_ci(values) if values else None
            digits = 4 if key == "test_loss" else 2
            if ci is None:
                cells.append("—")
            elif ci.half_width is None:
                cells.append(f"{ci.mean:.{digits}f}")
            else:
                cells.append(f"{ci.mean:.{digits}f} ± {ci.half_width:.{digits}f}")
        if any_value:
            rows.append([arm.name, str(len(done)), *cells])
    return (header, rows) if rows else None
