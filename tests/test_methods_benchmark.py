"""benchmarks/methods.py's readings, on a hand-made study store with hand-computed answers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))  # benchmarks/ is a plain folder

import methods  # noqa: E402
from lrlab.study.store import StudyStore, TrialRow  # noqa: E402

SPEC = {"target": 0.9, "published_updates": 1000, "source": "a paper"}
# arm -> per seed (final accuracy, updates to the target or None, seconds, tuning updates)
ARMS = {
    "lrlab auto": [(0.95, 150, 2.0, 50), (0.96, 200, 2.0, 50), (0.97, 250, 2.0, 50)],
    "Adam 1e-3": [(0.80, None, 1.0, 0), (0.81, None, 1.0, 0), (0.82, None, 1.0, 0)],
    "Schedule-Free AdamW": [(0.95, 300, 1.0, 0), (0.97, 300, 1.0, 0), (0.96, 300, 1.0, 0)],
    "step decay (grid)": [(0.99, 100, 1.5, 0), (0.995, 100, 1.5, 0), (1.0, 100, 1.5, 0)],
}


def _store(root: Path) -> None:
    store = StudyStore(root / "t-methods" / "study.db")
    for arm, seeds in ARMS.items():
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
                    "final": {"val_top1": acc, "updates_to_target": {"val_top1": reach}},
                    "history": [],
                }
            )
    store.close()


def test_measures_standing_and_verdicts(tmp_path: Path) -> None:
    _store(tmp_path)
    m = methods.measure(tmp_path, "t", SPEC, grid_cost=2500)
    rows = m["rows"]
    assert m["budget"] == 500
    # rows follow the order arms() lists them in, not the order they were stored in
    assert list(rows) == ["lrlab auto", "Adam 1e-3", "Schedule-Free AdamW", "step decay (grid)"]
    me = rows["lrlab auto"]
    assert me["to_target"].mean == 200 and me["reached"] == "3/3"
    assert me["total"] == 50 + 200  # tuning plus updates to the target
    assert me["time_ratio"] == pytest.approx(2.0)
    assert rows["Adam 1e-3"]["total"] == 500  # never reached: charged the whole budget
    assert rows["step decay (grid)"]["total"] == 2500 + 100  # the grid's cost
    line = methods.standing("t", m)
    # lrlab 95/96/97 vs Adam 80/81/82: +15 exactly; vs step 99/99.5/100: -3.5, Welch CI
    # -3.5 -+ t(0.975, 2.94) * sqrt(1/3 + 0.25/3) = -5.6 to -1.4
    assert "beats Adam 1e-3 (+15.0, " in line
    assert "ties with Schedule-Free AdamW (+0.0, " in line
    assert "loses to step decay (grid) (-3.5, -5.6 to -1.4)" in line
    text = "\n".join(methods.verdicts("t", SPEC, m))
    assert "reaches the target in 200 updates, 0.20 of the baseline's 1000" in text
    assert "(meets the 1/5 target; 3/3 seeds)" in text
    assert "lrlab auto 250 vs grid-tuned step decay (grid) 2600 (fewer than all)" in text
    assert "vs Schedule-Free AdamW at the budget: 96.0% vs 96.0% (not worse beyond" in text
