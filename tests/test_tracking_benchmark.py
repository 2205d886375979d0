"""The tracking-cost benchmark's table and docs section (benchmarks/tracking_cost.py), on
hand-made runs: nothing is trained."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import tracking_cost as tc


def _run(seconds: float, trial_s: float = 0.0, study_s: float = 0.0, track: int = 0) -> tc.Run:
    return tc.Run(
        seconds=seconds,
        trial_seconds=trial_s,
        study_seconds=study_s,
        trials=2,
        updates=10_044,
        db_bytes=180_000,
        track_bytes=track,
        empty_bytes=track // 4,
    )


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip("|").split("|")]


def test_table_differences_repetition_by_repetition() -> None:
    base = [_run(10.0), _run(12.0), _run(11.0)]  # 5.0, 6.0, 5.5 s per trial
    mlflow = [
        _run(20.0, trial_s=8.0, study_s=1.5, track=2_000_000),  # +5.0 s per trial
        _run(16.0, trial_s=6.0, study_s=1.0, track=2_400_000),  # +2.0
        _run(17.0, trial_s=7.0, study_s=2.0, track=1_600_000),  # +3.0
    ]
    lines = tc.table(
        {"no tracking": base, "MLflow, SQLite": mlflow, "TensorBoard": "not installed"}
    )
    assert _cells(lines[0]) == tc.COLUMNS
    assert _cells(lines[2]) == ["no tracking", "5.50", "-", "-", "-", "180 kB", "-"]
    assert _cells(lines[3]) == [
        "MLflow, SQLite",
        "8.50",  # median of 10.0, 8.0, 8.5
        "+3.00 (+2.00 to +5.00)",
        "3.50",  # median of 4.0, 3.0, 3.5
        "1.50",
        "180 kB",
        "2000 kB (500 kB empty)",
    ]
    assert _cells(lines[4]) == ["TensorBoard", "not installed", "", "", "", "", ""]


def test_result_size_is_the_median_over_tracked_runs() -> None:
    tracked = [_run(1.0), _run(1.0), _run(1.0)]
    for run, size in zip(tracked, (181_000, 179_000, 250_000)):
        run.result_bytes = size
    line = tc.result_size({"no tracking": [_run(1.0)], "TensorBoard": tracked, "x": "failed"})
    assert line.endswith(": 181 kB.")
    assert "not measured" in tc.result_size({"no tracking": [_run(1.0)], "x": "not installed"})


def test_table_needs_the_untracked_runs_first() -> None:
    with pytest.raises(ValueError, match="no tracking"):
        tc.table({"no tracking": "not installed", "TensorBoard": [_run(1.0)]})


def test_write_section_goes_before_the_methods_section_and_replaces_itself() -> None:
    doc = (
        "# Benchmarks\n\n## Study throughput\n\nrows\n\n"
        "## lrlab's way against the alternatives\n\nm\n"
    )
    first = tc.write_section(doc, "## Tracking cost\n\nold figures\n")
    assert first.index("## Study throughput") < first.index("old figures")
    assert first.index("old figures") < first.index("## lrlab's way against the alternatives")
    assert first.endswith("\n\nm\n")
    second = tc.write_section(first, "## Tracking cost\n\nnew figures\n")
    assert "old figures" not in second and second.count(tc.BEGIN) == 1
    assert second.replace("new figures", "old figures") == first
    # a doc without the methods section: appended at the end
    assert tc.write_section("# Benchmarks\n", "x").endswith(f"{tc.BEGIN}\nx\n{tc.END}\n")
