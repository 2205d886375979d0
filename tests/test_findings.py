"""Findings: answers against published claims, computed from stored results."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrlab.cli.main import main
from lrlab.report.findings import analyze, write_findings
from lrlab.study.store import StudyStore, TrialRow


def _study(
    tmp: Path,
    analysis: dict,
    arms: dict[str, list[tuple[float, list[tuple[int, float, float]]]]],
    baseline: str,
) -> Path:
    """arms: name -> per seed (final val_top1, [(step, val_top1, val_loss), ...])."""
    store = StudyStore(tmp / "study.db")
    store.set_meta(
        "config",
        {
            "name": "s",
            "question": "q?",
            "claim": "c.",
            "baseline": baseline,
            "arms": [{"name": a} for a in arms],
            "analysis": analysis,
        },
    )
    for arm, seeds in arms.items():
        for seed, (acc, series) in enumerate(seeds):
            tid = f"{arm}@seed{seed}"
            store.add_trials([TrialRow(tid, arm, seed, "h", {}, "pending")])
            store.finish(
                {
                    "id": tid,
                    "status": "done",
                    "updates": series[-1][0] if series else 100,
                    "final": {"val_top1": acc, "val_loss": 1 - acc},
                    "history": [
                        {"step": s, "epoch": s / 10, "val_top1": v, "val_loss": ell}
                        for s, v, ell in series
                    ],
                }
            )
    store.close()
    return tmp


COMPARE = {"kind": "compare", "metric": "val_top1", "expect": "better"}


def test_compare_agrees_disagrees_and_is_inconclusive(tmp_path: Path) -> None:
    win = _study(
        tmp_path / "a",
        COMPARE,
        {
            "step": [(0.90, []), (0.91, []), (0.90, [])],
            "1cycle": [(0.93, []), (0.94, []), (0.935, [])],
        },
        "step",
    )
    f = analyze(win)
    assert f.agreement == "agrees" and f.answer.startswith("1cycle beats step by 3.2 points")
    lose = _study(
        tmp_path / "b",
        COMPARE,
        {
            "step": [(0.93, []), (0.94, []), (0.935, [])],
            "1cycle": [(0.90, []), (0.91, []), (0.90, [])],
        },
        "step",
    )
    assert analyze(lose).agreement == "disagrees"
    noise = _study(
        tmp_path / "c",
        COMPARE,
        {
            "step": [(0.90, []), (0.95, []), (0.92, [])],
            "1cycle": [(0.91, []), (0.94, []), (0.93, [])],
        },
        "step",
    )
    assert analyze(noise).agreement == "inconclusive"
    same = _study(
        tmp_path / "d",
        {**COMPARE, "expect": "same"},
        {
            "step": [(0.90, []), (0.95, []), (0.92, [])],
            "1cycle": [(0.91, []), (0.94, []), (0.93, [])],
        },
        "step",
    )
    assert analyze(same).agreement == "agrees"
    # "same" with one arm far worse: the verdict disagrees and the headline says why
    mixed = _study(
        tmp_path / "e",
        {**COMPARE, "expect": "same"},
        {
            "1cycle": [(0.90, []), (0.95, []), (0.92, [])],
            "larc": [(0.91, []), (0.94, []), (0.93, [])],
            "lars": [(0.50, []), (0.52, []), (0.51, [])],
        },
        "1cycle",
    )
    f = analyze(mixed)
    assert f.agreement == "disagrees"
    assert f.answer.startswith("no difference beyond noise between larc and 1cycle: +0.3 points")
    assert "; but 1cycle beats lars by 41.3 points" in f.answer
    assert f.answer.endswith("(1 of 2 arms differ beyond noise)")


def test_updates_to_reference_counts_updates_to_the_reference_accuracy(tmp_path: Path) -> None:
    fixed = [(0.90, [(100, 0.5, 1.0), (200, 0.8, 0.6), (300, 0.90, 0.3)])] * 3
    clr = [(0.93, [(100, 0.91, 0.3), (200, 0.93, 0.2), (300, 0.93, 0.2)])] * 2 + [
        (0.93, [(100, 0.85, 0.4), (200, 0.92, 0.2), (300, 0.93, 0.2)])
    ]
    d = _study(
        tmp_path,
        {"kind": "updates_to_reference", "expect": "faster", "claimed_speedup": 2.8},
        {"fixed": fixed, "triangular2": clr},
        "fixed",
    )
    f = analyze(d)
    # reached 90% at 100, 100, 200 updates: mean 133, CI 133 +- 4.303 * 33.3; 300 / 133 = 2.2x
    assert (
        "in 133 updates (95% CI -10 to 277)" in f.answer
        and "2.2x fewer than fixed's 300" in f.answer
    )
    assert "(published: 2.8x)" in f.answer
    assert f.agreement == "agrees"


def test_early_reading_and_the_findings_table(tmp_path: Path) -> None:
    arms = {
        "m=0.9": [
            (0.92, [(10, 0.5, 0.80), (20, 0.92, 0.3)]),
            (0.93, [(10, 0.5, 0.82), (20, 0.93, 0.3)]),
        ],
        "m=0.99": [
            (0.85, [(10, 0.4, 0.95), (20, 0.85, 0.5)]),
            (0.86, [(10, 0.4, 0.97), (20, 0.86, 0.5)]),
        ],
    }
    early = {"kind": "early_reading", "early_epoch": 1, "expect": "same"}
    d = _study(tmp_path / "e", early, arms, "m=0.9")
    f = analyze(d)
    assert (
        f.agreement == "agrees"
        and "ranks m=0.9 first and final accuracy ranks m=0.9 first" in f.answer
    )
    # The early reading picks m=0.99 (lower val loss at epoch 1); it ends far worse, then
    # with final accuracies that overlap m=0.9's, where the verdict stays open.
    for name, finals, agreement in (
        ("w", (0.85, 0.86), "disagrees"),
        ("t", (0.80, 0.99), "inconclusive"),
    ):
        arms["m=0.99"] = [(v, [(10, 0.4, 0.70), (20, v, 0.5)]) for v in finals]
        other = analyze(_study(tmp_path / name, early, arms, "m=0.9"))
        assert other.agreement == agreement and "ranks m=0.99 first" in other.answer
    out = tmp_path / "findings.md"
    write_findings([d], out)
    text = out.read_text()
    assert "| s | q? | c. |" in text and "agrees |" in text
    assert main(["findings", str(d), "-o", str(tmp_path / "f2.md")]) == 0
    assert main(["findings", str(tmp_path / "nothing")]) == 2


@pytest.mark.parametrize("bad", [{"kind": "early_reading"}, {"kind": "compare", "arms": ["zzz"]}])
def test_analysis_config_errors(bad: dict) -> None:
    from lrlab.study import parse_study

    with pytest.raises(ValueError, match="analysis"):
        parse_study(
            {
                "name": "t",
                "task": {"data": "digits", "model": "mlp"},
                "arms": [{"name": "a", "lr": "constant(level=0.1)"}],
                "analysis": bad,
            }
        )
