"""The methods benchmark's reading rules (benchmarks/methods*.py), on hand-made stores.

Failed, diverged and collapsed seeds are counted, named and kept out of means and CIs; a
comparison whose CI includes 0 and is wider than the resolution is "inconclusive", never a
tie; the missing Schedule-Free / Prodigy packages stop the benchmark before any run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import methods
from lrlab.study import StudyStore, TrialRow
from methods_arms import BASELINE, TASKS
from methods_reading import compare, outcome, standing

ARMS: dict[str, list[float | str]] = {
    "lrlab auto": [94.0, 95.0, 96.0, 95.0, 94.0],
    BASELINE: [80.0, 81.0, 82.0, 80.0, 81.0],
    "close": [94.5, 95.0, 95.5, 94.8, 95.2],
    "wide": [60.0, 95.0, 80.0, 70.0, 90.0],
    "Prodigy (defaults)": [93.0, 95.0, 10.0, "diverged", "failed"],
}


def _store(root: Path) -> Path:
    path = root / "t-methods"
    path.mkdir(parents=True)
    store = StudyStore(path / "study.db")
    rows = [
        TrialRow(f"{arm}@seed{s}", arm, s, "h", {}, "pending")
        for arm, values in ARMS.items()
        for s in range(len(values))
    ]
    store.add_trials(rows)
    for arm, values in ARMS.items():
        for s, v in enumerate(values):
            status = v if isinstance(v, str) else "done"
            acc = 0.5 if isinstance(v, str) else v / 100
            store.finish(
                {
                    "id": f"{arm}@seed{s}",
                    "status": status,
                    "seconds": 2.0 if arm == BASELINE else 3.0,
                    "updates": 100,
                    "tuning_updates": 10 if arm == "lrlab auto" else 0,
                    "final": {
                        "val_top1": acc,
                        "updates_to_target": {"val_top1": 50 + s} if acc >= 0.9 else {},
                    },
                    "history": [],
                    "error": "boom" if status == "failed" else None,
                }
            )
    store.close()
    return root


def _welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Welch's 95% interval, from scipy (an independent implementation)."""
    r = stats.ttest_ind(a, b, equal_var=False)
    ci = r.confidence_interval(0.95)
    return sum(a) / len(a) - sum(b) / len(b), ci.low, ci.high


def _trials(tmp_path: Path) -> list[TrialRow]:
    store = StudyStore(_store(tmp_path) / "t-methods" / "study.db")
    try:
        return store.trials()
    finally:
        store.close()


def test_failed_diverged_and_collapsed_seeds_are_counted_and_kept_out(tmp_path: Path) -> None:
    o = outcome("Prodigy (defaults)", _trials(tmp_path), chance=10.0)
    assert (o.seeds, o.diverged, o.failed, o.collapsed) == (5, 1, 1, 1)
    assert o.acc == [93.0, 95.0]  # only the seeds that trained
    assert o.ci is not None and o.ci.mean == 94.0
    assert o.failures() == (
        "diverged on 1 of 5 seeds, failed on 1 of 5 seeds, collapsed to chance on 1 of 5 seeds"
    )


def test_each_reading_rule(tmp_path: Path) -> None:
    trials = _trials(tmp_path)
    me, base, close, wide, prodigy = (outcome(a, trials, 10.0) for a in ARMS)
    d, low, high = _welch(me.acc, base.acc)
    side, text = compare(me, base)
    assert side == "beats" and f"{d:+.1f}, 95% CI {low:+.1f} to {high:+.1f}" in text
    # by hand: both variances 0.7, se = sqrt(0.7/5 + 0.7/5) = 0.529, df 8, t = 2.306
    assert (round(d, 6), round(low, 2), round(high, 2)) == (14.0, 12.78, 15.22)

    side, text = compare(me, close)  # CI includes 0 and is narrower than +-2 points
    d, low, high = _welch(me.acc, close.acc)
    assert side == "no difference" and (high - low) / 2 <= 2.0
    assert f"{d:+.1f}, 95% CI {low:+.1f} to {high:+.1f}" in text

    side, text = compare(me, wide)  # CI includes 0 and is wider: too noisy to call a tie
    _, low, high = _welch(me.acc, wide.acc)
    assert low < 0 < high and (high - low) / 2 > 2.0
    assert side == "inconclusive" and "too noisy" in text and "wider than ±2" in text

    side, text = compare(me, prodigy)  # 2 finished seeds: an interval, its failures named
    assert "Prodigy (defaults) diverged on 1 of 5 seeds" in text and "kept out" in text
    # a line about an arm that lost seeds names them once, at its head
    line = standing("t", prodigy, [me, base])
    assert line.startswith("- t: Prodigy (defaults) (diverged on 1 of 5 seeds, failed on")
    assert line.count("diverged on 1 of 5") == 1

    line = standing("t", me, [base, close, wide, prodigy])
    assert line.startswith("- t: lrlab auto beats Adam 1e-2 (published) (+14.0")
    assert "shows no difference larger than 2 points from close" in line
    assert "cannot be told apart from wide (inconclusive, too noisy" in line


def test_final_accuracy_is_the_test_splits_where_there_is_one() -> None:
    from methods_reading import final_accuracy

    assert final_accuracy({"val_top1": 0.9, "test_top1": 0.8}) == 0.8
    assert final_accuracy({"val_top1": 0.9}) == 0.9  # holdout = 0: no test split apart
    assert final_accuracy({}) == 0.0


def test_one_finished_seed_is_inconclusive(tmp_path: Path) -> None:
    trials = _trials(tmp_path)
    me = outcome("lrlab auto", trials, 10.0)
    prodigy = outcome("Prodigy (defaults)", trials, 10.0)
    prodigy.acc = prodigy.acc[:1]
    side, text = compare(me, prodigy)
    assert side == "inconclusive" and "1 finished seed(s), too few for an interval" in text
    assert standing("t", prodigy, [me]) == (
        "- t: Prodigy (defaults) (diverged on 1 of 5 seeds, failed on 1 of 5 seeds, collapsed "
        "to chance on 1 of 5 seeds): 1 finished seed(s), too few to compare with any arm."
    )


def test_the_benchmark_table_names_failures_and_times_against_the_baseline(
    tmp_path: Path,
) -> None:
    root = _store(tmp_path)
    m = methods.measure(root, "t", TASKS["digits-mlp"], {})
    rows = m["rows"]
    assert next(iter(rows)) == "lrlab auto"  # in the benchmark's arm order
    assert rows["Prodigy (defaults)"]["reached"] == "2/5"  # done seeds that reached it, of 5
    assert rows["Prodigy (defaults)"]["acc"].mean == 94.0
    assert rows["lrlab auto"]["time_ratio"] == 1.5  # 3 s against the baseline's 2 s
    assert rows["lrlab auto"]["total"] == 10 + 52  # tuning + mean updates to target
    table = "\n".join(methods.table("t", TASKS["digits-mlp"], m))
    assert "| Prodigy (defaults) (diverged on 1 of 5 seeds, failed on 1 of 5 seeds" in table


def test_missing_packages_stop_the_benchmark_before_any_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "schedulefree" else real(name, *a),
    )
    monkeypatch.setattr(methods, "tune", lambda *a, **k: pytest.fail("a run started"))
    monkeypatch.setattr(sys, "argv", ["methods.py", "--quick"])
    with pytest.raises(SystemExit) as e:
        methods.main()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "schedulefree" in err[0] and ".[bench]" in err[0]


# the hand-made store of the earlier reading: three seeds per arm, hand-computed answers
SPEC = {"target": 0.9, "published_updates": 1000, "source": "a paper"}
# arm -> per seed (final accuracy, updates to the target or None, seconds, tuning updates)
SMALL = {
    "lrlab auto": [(0.95, 150, 2.0, 50), (0.96, 200, 2.0, 50), (0.97, 250, 2.0, 50)],
    BASELINE: [(0.80, None, 1.0, 0), (0.81, None, 1.0, 0), (0.82, None, 1.0, 0)],
    "Schedule-Free AdamW (defaults)": [
        (0.95, 300, 1.0, 0),
        (0.97, 300, 1.0, 0),
        (0.96, 300, 1.0, 0),
    ],
    "step decay (grid)": [(0.99, 100, 1.5, 0), (0.995, 100, 1.5, 0), (1.0, 100, 1.5, 0)],
}


def _small_store(root: Path) -> None:
    (root / "t-methods").mkdir(parents=True)
    store = StudyStore(root / "t-methods" / "study.db")
    for arm, seeds in SMALL.items():
        for seed, (acc, reach, seconds, tuning) in enumerate(seeds):
            tid = f"{arm}@seed{seed}"
            store.add_trials([TrialRow(tid, arm, seed, "h", {}, "pending")])
            store.finish(
                {
                    "id": tid,
                    "status": "done",
                    "seconds": seconds,
                    "updates": 500,
                    "tuning_updates": tuning,
                    "final": {
                        "val_top1": acc,
                        "updates_to_target": {"val_top1": reach} if reach else {},
                    },
                    "history": [],
                }
            )
    store.close()


def test_measures_standings_and_verdicts_by_hand(tmp_path: Path) -> None:
    _small_store(tmp_path)
    m = methods.measure(tmp_path, "t", SPEC, {"step": 2500})
    rows = m["rows"]
    assert m["budget"] == 500
    # rows follow the order arms() lists them in, not the order they were stored in
    assert list(rows) == [
        "lrlab auto",
        BASELINE,
        "Schedule-Free AdamW (defaults)",
        "step decay (grid)",
    ]
    me = rows["lrlab auto"]
    assert me["to_target"].mean == 200 and me["reached"] == "3/3"
    assert me["total"] == 50 + 200  # tuning plus updates to the target
    assert me["time_ratio"] == pytest.approx(2.0)  # 2 s against the baseline's 1 s
    assert rows[BASELINE]["total"] == 500  # never reached: charged the whole budget
    assert rows["step decay (grid)"]["total"] == 2500 + 100  # the grid's cost
    (line,) = methods.standings("t", m)
    # lrlab 95/96/97 vs the baseline 80/81/82: +15 exactly; vs step 99/99.5/100: -3.5,
    # Welch CI -3.5 -+ t(0.975, 2.94) * sqrt(1/3 + 0.25/3) = -5.6 to -1.4
    assert "beats Adam 1e-2 (published) (+15.0, " in line
    assert "loses to step decay (grid) (-3.5, 95% CI -5.6 to -1.4)" in line
    # vs Schedule-Free 95/97/96: +0.0, CI +-2.5 (wider than 2 points): no tie is claimed
    assert "cannot be told apart from Schedule-Free AdamW (defaults) (inconclusive" in line
    text = "\n".join(methods.verdicts("t", SPEC, m))
    assert "reaches the target in 200 updates, 0.20 of the baseline's 1000" in text
    assert "(meets the 1/5 target; 3/3 seeds)" in text
    assert "lrlab auto 250 vs grid-tuned step decay (grid) 2600 (fewer than all)" in text
