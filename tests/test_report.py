"""The study report: files written, escaping, hand-computed table cells, heatmap rule, CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from lrlab.cli.errors import run_app
from lrlab.cli.report import report_command
from lrlab.report.study_report import summarize, write_report
from lrlab.report.study_series import align
from lrlab.schedules import cyclical_momentum, one_cycle, step
from lrlab.study.store import StudyStore, TrialRow

EVERY = 50
TOTAL = 500
STEPS = list(range(0, TOTAL + 1, EVERY))
FAILURE = "RuntimeError: <img src=x onerror=alert(2)> out of memory"
PROVENANCE = {"lrlab_version": "0.1.0", "git_commit": "abc1234", "torch_version": "2.13.0"}

# Final val_top1 per arm and seed (fractions): the step arm's mean is 90.50% with a
# sample std of 0.5 points, so its 95% CI half-width is 4.303 * 0.5 / sqrt(3) = 1.24.
FINAL_TOP1 = {
    "step": [0.900, 0.905, 0.910],
    "1cycle": [0.920, 0.926, 0.930],
    "llr": [0.910, 0.915, 0.912],
}


def _history(arm: str, seed: int, final: float, groups: bool, until: int = TOTAL) -> list[dict]:
    lr = one_cycle(max_lr=0.4, total=TOTAL) if arm != "step" else step(0.1, 200, 0.1)
    rows = []
    for s in STEPS:
        if s > until:
            break
        frac = s / TOTAL
        row: dict[str, Any] = {
            "step": s,
            "epoch": s / 100,
            "val_top1": 0.1 + (final - 0.1) * frac,
            "val_top5": 0.5 + (min(1.0, final + 0.07) - 0.5) * frac,
            "val_loss": 2.3 - 2.0 * frac + 0.01 * seed,
            "train_loss": 2.3 - 2.1 * frac,
            "lr": lr(min(s, TOTAL - 1)),
            "momentum": 0.9,
        }
        if groups:
            for i, g in enumerate(["0.conv", "1.block", "2.head"]):
                row[f"lr/{g}"] = lr(min(s, TOTAL - 1)) * (0.5 + 0.25 * i)
        rows.append(row)
    return rows


def _final(arm: str, top1: float, seed: int) -> dict[str, Any]:
    lr = one_cycle(max_lr=0.4, total=TOTAL) if arm != "step" else step(0.1, 200, 0.1)
    mom = cyclical_momentum(lr) if arm != "step" else None
    return {
        "val_top1": top1,
        "val_top5": min(1.0, top1 + 0.07),
        "val_loss": 0.30 + 0.01 * seed,
        "test_top1": top1 - 0.01,
        "train_loss": 0.2,
        "best_val_top1": top1,
        "stability_std": 0.002,
        "stability_change": 0.001,
        "updates_to_target": {"val_top1": 300 + 10 * seed if top1 >= 0.905 else None},
        "diverged_at": None,
        "bounds": None
        if arm == "step"
        else {
            "base_lr": 0.04,
            "max_lr": 0.4 + 0.01 * seed,
            "rule": "lrlab",
            "interval": [0.3, 0.5],
            "warnings": ["only 20 points; run a longer sweep"] if seed == 1 else [],
            "swept_with": {
                "optimizer": "SGD",
                "momentum": [0.85, 0.85],
                "weight_decay": [5e-4, 0.0],
                "lr_scales": [1.75, 1.0],
                "lars": None,
                "frozen": [],
            },
        },
        "schedules": {"lr": lr.to_dict(), "momentum": None if mom is None else mom.to_dict()},
        "iters_per_epoch": 100,
        "total_updates": TOTAL,
    }


def make_study(root: Path, arms: dict[str, list[float]] | None = None, groups: bool = True) -> Path:
    """A study of 3 arms x 3 seeds (plus one diverged seed of 1cycle), written via the store."""
    arms = arms or FINAL_TOP1
    names = list(arms)
    store = StudyStore(root / "study.db")
    config = {
        "name": "synthetic",
        "question": "Does 1cycle beat step decay?",
        "claim": "1cycle reaches the same accuracy in fewer updates (Smith 2018).",
        "seeds": [0, 1, 2],
        "task": {"data": "digits", "model": "mlp", "batch_size": 32, "epochs": 5},
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "arms": [{"name": n, "lr": "one_cycle(max_lr=0.4)"} for n in names],
        "baseline": names[0],
        "targets": {"val_top1": 0.905},
    }
    store.set_meta("config", config)
    store.set_meta("preset", "small")
    rows = [
        TrialRow(f"{n}-{s}", n, s, "h", {"arm": n, "seed": s}, "pending")
        for n in names
        for s in (0, 1, 2)
    ]
    rows.append(TrialRow(f"{names[1]}-3", names[1], 3, "h", {}, "pending"))
    rows.append(TrialRow(f"{names[-1]}-4", names[-1], 4, "h", {}, "pending"))
    store.add_trials(rows)
    for n in names:
        for s, top1 in enumerate(arms[n]):
            tid = f"{n}-{s}"
            store.mark_running(tid, PROVENANCE)
            layerwise = groups and n == names[-1]  # the last arm logs lr/<group>
            store.finish(
                {
                    "id": tid,
                    "status": "done",
                    "seconds": 10.0 + s,
                    "updates": TOTAL,
                    "tuning_updates": 100 if n != "step" else None,
                    "final": _final(n, top1, s),
                    "history": _history(n, s, top1, layerwise),
                }
            )
    tid = f"{names[1]}-3"
    store.mark_running(tid, PROVENANCE)
    final = _final(names[1], 0.1, 3) | {"diverged_at": 212, "val_loss": None}
    store.finish(
        {
            "id": tid,
            "status": "diverged",
            "seconds": 4.0,
            "updates": 212,
            "tuning_updates": 100,
            "final": final,
            "history": _history(names[1], 3, 0.5, False, until=200),
        }
    )
    store.mark_running(f"{names[-1]}-4", PROVENANCE)
    store.finish({"id": f"{names[-1]}-4", "status": "failed", "error": FAILURE, "history": []})
    store.close()
    return root


def test_align_stacks_equal_steps_and_interpolates_only_inside() -> None:
    band = align([([0, 10, 20], [1.0, 2.0, 3.0]), ([0, 10, 20], [3.0, 4.0, 5.0])])
    assert band is not None
    assert band.steps.tolist() == [0, 10, 20]
    assert band.mean.tolist() == [2.0, 3.0, 4.0]
    # two seeds, sample std sqrt(2): half-width 12.706 * sqrt(2) / sqrt(2)
    assert band.half_width == pytest.approx([12.7062047] * 3)
    band = align([([0, 10], [0.0, 1.0]), ([0, 5, 20], [0.0, 1.0, 4.0])])
    assert band is not None
    assert band.steps.tolist() == [0, 5, 10, 20]
    assert band.values[0].tolist()[:3] == [0.0, 0.5, 1.0]  # interpolated at 5
    assert band.n.tolist() == [2, 2, 2, 1]  # not extrapolated past its last step


def test_summary_numbers(tmp_path: Path) -> None:
    s = summarize(make_study(tmp_path))
    assert [a.name for a in s.arms] == ["step", "1cycle", "llr"]
    step_arm = s.arm("step")
    assert step_arm is not None
    ci = step_arm.final["val_top1"]
    assert ci.mean == pytest.approx(90.5) and ci.half_width == pytest.approx(1.2421, abs=1e-4)
    cyc = s.arm("1cycle")
    assert cyc is not None
    assert cyc.counts["done"] == 3 and cyc.counts["diverged"] == 1
    assert cyc.final["val_top1"].n == 3  # the diverged seed is counted, not averaged
    # target 90.5%: step reached it on seeds 1, 2 (310, 320); the diverged seed did not
    assert (step_arm.targets["val_top1"].reached, step_arm.targets["val_top1"].of) == (2, 3)
    assert step_arm.targets["val_top1"].updates.mean == pytest.approx(315.0)  # type: ignore[union-attr]
    assert (cyc.targets["val_top1"].reached, cyc.targets["val_top1"].of) == (3, 4)
    # the headline compares the best arm (1cycle) with the baseline (step)
    assert s.headline.startswith("1cycle beats step by 2.0 points of validation accuracy (95% CI")
    assert s.headline.endswith(
        "; 1cycle diverged on 1 of 4 seeds (left out of the means and intervals)"
    )
    assert s.provenance["git commit"] == ["abc1234"]


def test_report_files_and_markdown_table(tmp_path: Path) -> None:
    paths = write_report(make_study(tmp_path))
    expected = {"html", "md", "curves", "schedules", "final", "llr_heatmap"}
    assert set(paths) == expected
    for key in expected - {"html", "md"}:
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = paths["md"].read_text()
    # step: 90.50 ± 4.303*0.5/sqrt(3) = 1.24; top-5 97.50 ± 1.24; loss 0.31 ± 4.303*0.01/sqrt(3)
    assert "| step (baseline) | 3 | 90.50 ± 1.24 | 97.50 ± 1.24 | 0.3100 ± 0.0248 |" in text
    # seeds 1, 2 reached the target at 310, 320: 315 ± 12.706 * 7.071 / sqrt(2) = 63.5
    assert "| 315 ± 64 (2/3 reached) |" in text
    assert "1cycle, seed 3: diverged at update 212" in text
    assert (
        r"llr, seed 4: failed: RuntimeError: \<img src=x onerror=alert(2)\> out of memory" in text
    )
    assert "| 3 / 1 / 0 |" in text and "| 3 / 0 / 1 |" in text  # counted, not dropped
    # range-test bounds over finished seeds: llr max_lr 0.40, 0.41, 0.42 -> 0.41 ± 0.0248
    assert (
        "| llr | lrlab | 0.04 ± 0 | 0.41 ± 0.0248 | 3 | SGD, momentum 0.85, weight decay 0.0005, "
        "LR multipliers up to 1.75 |" in text
    )
    # the test split apart: step's 90.5 - 1 point = 89.50 ± 1.24 (no test_loss stored here)
    assert "## Test split (scored once at the end; no verdict reads it)" in text
    assert "| step | 3 | 89.50 ± 1.24 | — | — |" in text
    assert "## Final metrics (validation split)" in text
    # every trial's range-test warnings, by arm and seed
    assert "## Range-test warnings" in text
    assert "- llr, seed 1: only 20 points; run a longer sweep" in text
    assert "- 1cycle, seed 1: only 20 points; run a longer sweep" in text
    assert "**Question.** Does 1cycle beat step decay?" in text
    assert "abc1234" in text and "2.13.0" in text


def test_heatmap_only_with_group_metrics(tmp_path: Path) -> None:
    paths = write_report(make_study(tmp_path, groups=False))
    assert "llr_heatmap" not in paths
    assert not (tmp_path / "llr_heatmap.png").exists()
    assert "llr_heatmap" not in paths["html"].read_text()


def test_html_is_self_contained_and_escapes_user_strings(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    arms = {"step": FINAL_TOP1["step"], evil: FINAL_TOP1["1cycle"], "a|b$c": FINAL_TOP1["llr"]}
    paths = write_report(make_study(tmp_path, arms=arms))
    page = paths["html"].read_text()
    assert "<script" not in page.lower() and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count('src="data:image/png;base64,') == 4
    assert not re.search(r'(src|href)="(?!data:)', page)  # no external assets
    assert "<link" not in page
    md_text = paths["md"].read_text()
    assert "<script>" not in md_text and r"\<script\>" in md_text
    assert r"a\|b$c" in md_text  # a pipe in a name does not split the table


def test_study_with_only_diverged_trials_still_reports(tmp_path: Path) -> None:
    store = StudyStore(tmp_path / "study.db")
    store.set_meta("config", {"name": "boom", "arms": [{"name": "a"}, {"name": "b"}]})
    store.add_trials([TrialRow(f"{a}-0", a, 0, "h", {}, "pending") for a in "ab"])
    for a in "ab":
        store.mark_running(f"{a}-0", PROVENANCE)
        history = [{"step": s, "epoch": s / 100, "val_top1": 0.1, "lr": 10.0} for s in (0, 50)]
        final = {"diverged_at": 60, "val_top1": None}
        store.finish({"id": f"{a}-0", "status": "diverged", "final": final, "history": history})
    store.close()
    paths = write_report(tmp_path)
    summary = summarize(tmp_path)
    assert summary.headline == (
        "no answer yet: the baseline a has no finished trial with validation accuracy"
    )
    # no final.schedules: the schedule figure falls back to the recorded lr metric
    arm = summary.arm("a")
    assert arm is not None and arm.schedules[0].source == "recorded"
    assert (arm.schedules[0].steps, arm.schedules[0].lr) == ([0, 50], [10.0, 10.0])
    text = paths["md"].read_text()
    assert "a, seed 0: diverged at update 60" in text and "| a (baseline) | 0 | — |" in text


def test_single_arm_study_headline(tmp_path: Path) -> None:
    make_study(tmp_path, arms={"solo": [0.90, 0.91, 0.92], "x": []})  # x: diverged, failed
    assert summarize(tmp_path).headline == (
        "solo is the only arm with validation accuracy from finished trials: 91.0% "
        "(95% CI 88.5 to 93.5, n=3); nothing to compare it with"
    )


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("report")(report_command)
    app.callback()(lambda: None)
    return app


def test_cli_writes_report_and_prints_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = make_study(tmp_path)
    assert run_app(_cli(), ["report", str(study)]) == 0
    out = capsys.readouterr().out
    assert str(study / "report.html") in out and str(study / "report.md") in out
    assert "1cycle beats step by 2.0 points" in out
    assert run_app(_cli(), ["report", str(study), "--quiet"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "does not exist"),
        ("no_db", "has no study.db"),
        ("unfinished", "has no finished trials yet (3 pending)"),
    ],
)
def test_cli_user_errors_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, message: str
) -> None:
    study = tmp_path / "study"
    if setup != "missing":
        study.mkdir()
    if setup == "unfinished":
        store = StudyStore(study / "study.db")
        store.set_meta("config", {"name": "x", "arms": [{"name": "a", "lr": "x"}]})
        store.add_trials([TrialRow(f"a-{s}", "a", s, "h", {}, "pending") for s in range(3)])
        store.close()
    assert run_app(_cli(), ["report", str(study)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (study / "study.db").exists() or setup == "unfinished"  # nothing created
