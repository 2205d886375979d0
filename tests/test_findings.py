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
    *,
    diverged: dict[str, int] | None = None,
    claim: str = "c.",
    split: dict | None = None,
) -> Path:
    """arms: name -> per seed (final val_top1, [(step, val_top1, val_loss), ...]);
    ``diverged``: name -> how many more seeds of that arm diverged (NaN final loss)."""
    store = StudyStore(tmp / "study.db")
    store.set_meta(
        "config",
        {
            "name": "s",
            "question": "q?",
            "claim": claim,
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
                    "final": {"val_top1": acc, "val_loss": 1 - acc}
                    | ({"split": split, "test_top1": acc - 0.01} if split else {}),
                    "history": [
                        {"step": s, "epoch": s / 10, "val_top1": v, "val_loss": ell}
                        for s, v, ell in series
                    ],
                }
            )
    for arm, k in (diverged or {}).items():
        for seed in range(len(arms[arm]), len(arms[arm]) + k):
            tid = f"{arm}@seed{seed}"
            store.add_trials([TrialRow(tid, arm, seed, "h", {}, "pending")])
            final = {"val_top1": 0.1, "val_loss": float("nan"), "diverged_at": 7}
            store.finish({"id": tid, "status": "diverged", "updates": 7, "final": final})
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
    # "same" needs an interval within the resolution: +-4.4 points is too noisy to say so
    assert analyze(_study(tmp_path / "d0", {**COMPARE, "expect": "same"}, {
        "step": [(0.90, []), (0.95, []), (0.92, [])],
        "1cycle": [(0.91, []), (0.94, []), (0.93, [])],
    }, "step")).agreement == "inconclusive"  # fmt: skip
    same = _study(
        tmp_path / "d",
        {**COMPARE, "expect": "same"},
        {
            "step": [(0.900, []), (0.905, []), (0.902, [])],
            "1cycle": [(0.901, []), (0.904, []), (0.903, [])],
        },
        "step",
    )
    assert analyze(same).agreement == "agrees"
    # "same" with one arm far worse: the verdict disagrees and the answer says which arm
    mixed = _study(
        tmp_path / "e",
        {**COMPARE, "expect": "same"},
        {
            "1cycle": [(0.900, []), (0.905, []), (0.902, [])],
            "larc": [(0.901, []), (0.904, []), (0.903, [])],
            "lars": [(0.50, []), (0.52, []), (0.51, [])],
        },
        "1cycle",
    )
    f = analyze(mixed)
    assert f.agreement == "disagrees"
    assert f.answer.startswith(
        "of 2 arms against 1cycle: 0 beat 1cycle, 1 lose to it, 1 no difference, "
        "0 too noisy to tell; 1cycle beats lars by 39.2 points"
    )


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
    # a second arm that reaches 90% only at update 300 on every seed: 1 of 2 arms is faster
    slow = [(0.90, [(100, 0.5, 1.0), (200, 0.8, 0.6), (300, 0.90, 0.3)])] * 3
    two = _study(
        tmp_path / "two",
        {"kind": "updates_to_reference", "expect": "faster"},
        {"fixed": fixed, "triangular2": clr, "exp_range": slow},
        "fixed",
    )
    g = analyze(two)
    assert g.answer.startswith(
        "1 of 2 arms reach it in fewer updates on every seed (95% CI below fixed's); "
        "fastest: triangular2 reaches"
    )


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


def _seeds(*accs: float) -> list[tuple[float, list[tuple[int, float, float]]]]:
    return [(a, []) for a in accs]


BASE5 = _seeds(0.900, 0.905, 0.910, 0.902, 0.908)  # mean 90.50
A5 = _seeds(0.909, 0.914, 0.913, 0.908, 0.915)  # mean 91.18: +0.68, Welch p = 0.0202


def test_holm_correction_over_the_comparisons_of_one_study(tmp_path: Path) -> None:
    alone = analyze(_study(tmp_path / "a", COMPARE, {"base": BASE5, "A": A5}, "base"))
    assert (
        alone.answer
        == "A beats base by 0.7 points of validation accuracy (95% CI 0.1 to 1.2, p=0.02)"
    )
    # with two more arms (raw p 0.70 and 0.81) Holm multiplies A's p by 3: 0.061
    arms = {
        "base": BASE5,
        "A": A5,
        "B": _seeds(0.901, 0.909, 0.904, 0.906, 0.910),
        "C": _seeds(0.903, 0.902, 0.911, 0.907, 0.905),
    }
    three = analyze(_study(tmp_path / "b", COMPARE, arms, "base"))
    assert three.details[0] == (
        "no difference beyond noise between A and base: +0.7 points of validation accuracy "
        "for A (95% CI 0.1 to 1.2, p=0.02, Holm-adjusted over 3 comparisons p=0.06)"
    )
    assert three.agreement == "disagrees"  # expect better; nothing wins after correction


def test_a_wide_interval_is_too_noisy_never_no_difference(tmp_path: Path) -> None:
    arms = {"base": _seeds(0.93, 0.94, 0.935), "wild": _seeds(0.95, 0.10, 0.90)}
    f = analyze(_study(tmp_path / "a", {**COMPARE, "expect": "same"}, arms, "base"))
    # 65.0 - 93.5 = -28.5 points; Welch df 2.0, half-width 4.303 * 27.53 = 118.5 points
    assert f.answer.startswith(
        "inconclusive: too noisy to tell wild from base: -28.5 points of validation accuracy "
        "for wild (95% CI -147.0 to 90.0, p=0.41; the interval's half-width 118.5 is wider "
        "than the 2 points resolution)"
    )
    assert f.agreement == "inconclusive" and "no difference" not in f.answer
    # a stated resolution of 200 points lets the same numbers read "no difference"
    loose = {**COMPARE, "expect": "same", "resolution": 200.0}
    g = analyze(_study(tmp_path / "b", loose, arms, "base"))
    assert g.answer.startswith("no difference beyond noise between wild and base")


def test_diverged_seeds_are_counted_named_and_left_out(tmp_path: Path) -> None:
    arms = {"base": _seeds(0.90, 0.91, 0.90), "lars": _seeds(0.93, 0.94, 0.935)}
    d = _study(tmp_path, COMPARE, arms, "base", diverged={"lars": 2})
    f = analyze(d)
    # the diverged seeds' 10% is not averaged in: 93.5 - 90.33 = 3.2 points, as without them
    assert f.answer == (
        "lars beats base by 3.2 points of validation accuracy (95% CI 1.9 to 4.4, p=0.002); "
        "lars diverged on 2 of 5 seeds (left out of the means and intervals)"
    )
    from lrlab.report.study_summary import summarize

    s = summarize(d)
    assert s.arm("lars").counts["diverged"] == 2
    assert s.comparisons[0].endswith(
        "lars diverged on 2 of 5 seeds (left out of the means and intervals)"
    )


def test_the_answer_is_about_the_arms_the_question_names(tmp_path: Path) -> None:
    arms = {
        "base": _seeds(0.900, 0.905, 0.902),
        "best": _seeds(0.950, 0.955, 0.952),
        "asked": _seeds(0.901, 0.904, 0.903),
    }
    every = analyze(_study(tmp_path / "a", COMPARE, arms, "base"))
    assert every.answer.startswith("of 2 arms against base: 1 beat base")
    asked = analyze(_study(tmp_path / "b", {**COMPARE, "arms": ["asked"]}, arms, "base"))
    assert asked.answer.startswith("no difference beyond noise between asked and base: +0.0")
    assert asked.agreement == "disagrees" and len(asked.details) == 2  # + the split line
    assert asked.details[1].startswith("Validation split not recorded")


def test_no_claim_no_agreement(tmp_path: Path) -> None:
    arms = {"base": _seeds(0.90, 0.91, 0.90), "x": _seeds(0.93, 0.94, 0.935)}
    d = _study(tmp_path, COMPARE, arms, "base", claim="")
    assert analyze(d).agreement == "no claim"
    from lrlab.report.study_report import write_report

    text = write_report(d)["md"].read_text()
    assert "Against the published claim" not in text and "Published claim" not in text


def test_every_finding_says_which_split_its_numbers_come_from(tmp_path: Path) -> None:
    arms = {"base": _seeds(0.90, 0.91, 0.90), "x": _seeds(0.93, 0.94, 0.935)}
    held = {"holdout": 0.1, "validation": "0.1 of training, seeded, stratified by class",
            "tuning_saw_test": False}  # fmt: skip
    f = analyze(_study(tmp_path / "a", COMPARE, arms, "base", split=held))
    assert f.details[-2] == (
        "Validation (what tuning and every verdict read): 10% of the training set held out "
        "(seeded, stratified by class); the test split is scored once at the end and reported "
        "separately"
    )
    # test accuracy: 1 point below validation on every seed here; base 89.3 +- 4.303*0.577/1.732
    assert f.details[-1] == (
        "test split (scored once at the end, read by no verdict): base: test accuracy 89.3 "
        "± 1.4 (n=3); x: test accuracy 92.5 ± 1.2 (n=3)"
    )
    assert not f.answer.endswith("]")
    opted_out = {"holdout": 0.0, "validation": "the test split", "tuning_saw_test": True}
    g = analyze(_study(tmp_path / "b", COMPARE, arms, "base", split=opted_out))
    assert g.answer.endswith("[tuning read the test split]")
    assert g.details[-2].startswith("holdout = 0: validation is the test split, so tuning")
