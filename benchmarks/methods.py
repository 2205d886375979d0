"""lrlab's way against the methods people would pick instead, on tasks with published targets.

For each task: lrlab auto (range test, then 1cycle with cyclical momentum), PyTorch's own
OneCycleLR at its default arguments with the same max_lr, the published baseline (Adam at
1e-2, the setting the MNIST-1D targets were reached with), and what a user would pick
instead, each at its best honest use over the same seeds and the same budget of updates:

* grid-tuned: step decay / cosine / constant SGD (5 LRs, 0.01 ... 1) and Adam (5 LRs,
  1e-3 ... 0.1), one run per grid point on a separate seed, the best kept;
* Schedule-Free SGD and AdamW (``schedulefree``) and Prodigy (``prodigyopt``) at their
  package defaults ("no tuning", as their authors present them), and tuned: Schedule-Free's
  LR from lrlab's range test (its README says the LR still needs tuning), Prodigy's
  ``d_coef`` over a 3-point grid.

Every tuning update (grid runs, range tests, confirm runs) is charged to the arm's total.
Everything runs as lrlab studies (resumable, ``--workers`` parallel); the reading rules
(failed, diverged and collapsed seeds named and kept out, "inconclusive" when a CI is
wider than the resolution) are in ``benchmarks/methods_reading.py``.

``lrlab auto + confirm`` adds the confirm step to the range test: 1cycle runs at 1, 2 and 4
times the rule's LR, the lowest validation loss kept, each a tenth of the trial's updates
(3 x 108 more tuning updates on the MNIST-1D tasks).

Measures, mean +- 95% CI over the seeds: updates to reach the task's published target,
final accuracy at the fixed budget, total updates including tuning, and wall-clock time
per run as a ratio to the baseline arm in the same run. ``--doc`` writes docs/benchmarks.md.
The Schedule-Free and Prodigy packages are checked before anything runs (``.[bench]``).

    python benchmarks/methods.py [--quick] [--seeds 5] [--workers 2] [--doc]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(REPO / "benchmarks"))

from lrlab.report.stats import mean_ci  # noqa: E402
from lrlab.report.study_report import write_report  # noqa: E402
from lrlab.study import LocalExecutor, StudyStore, parse_study, run_study  # noqa: E402
from methods_arms import (  # noqa: E402
    ADAM_GRID,
    BASELINE,
    CHANCE,
    D_COEF_GRID,
    GRID,
    GRID_ARMS,
    PACKAGES,
    TASKS,
    arms,
    final_study,
    grid_runs,
    grid_study,
)
from methods_reading import RESOLUTION, Outcome, outcome, standing  # noqa: E402


def tune(
    root: Path, name: str, spec: dict[str, Any], workers: int
) -> tuple[dict[str, float], dict[str, int]]:
    """Each family's best grid value (by the grid seed's final accuracy) and its cost."""
    cfg = parse_study(grid_study(name, spec))
    run_study(cfg, root / f"{name}-grid", executor=LocalExecutor(workers))
    store = StudyStore(root / f"{name}-grid" / "study.db")
    trials = {t.arm: t for t in store.trials()}
    store.close()
    tuned: dict[str, float] = {}
    cost: dict[str, int] = {}
    for family, runs in grid_runs().items():

        def acc(run: tuple[float, dict[str, Any]]) -> float:
            t = trials[run[1]["name"]]
            return float((t.final or {}).get("val_top1") or 0.0) if t.status == "done" else -1.0

        tuned[family] = max(runs, key=acc)[0]
        cost[family] = sum(trials[arm["name"]].updates or 0 for _, arm in runs)
    return tuned, cost


def measure(
    root: Path, name: str, spec: dict[str, Any], grid_cost: dict[str, int]
) -> dict[str, Any]:
    store = StudyStore(root / f"{name}-methods" / "study.db")
    trials = store.trials()
    store.close()
    rows: dict[str, Any] = {}
    outcomes: dict[str, Outcome] = {}
    budget = max((t.updates or 0 for t in trials), default=0)
    base = [t.seconds for t in trials if t.arm == BASELINE and t.status == "done" and t.seconds]
    base_s = statistics.mean(base) if base else float("nan")
    listed = [a["name"] for a in arms({k: 0.1 for k in GRID_ARMS.values()})]
    stored = dict.fromkeys(t.arm for t in trials)  # in the order the arms were added
    for arm in sorted(stored, key=lambda a: listed.index(a) if a in listed else len(listed)):
        o = outcome(arm, trials, CHANCE)
        done = [t for t in trials if t.arm == arm and t.status == "done"]
        got = [
            r
            for t in done
            if (r := (t.final or {}).get("updates_to_target", {}).get("val_top1")) is not None
        ]
        family = GRID_ARMS.get(arm)
        tuned_updates = [t.tuning_updates or 0 for t in done]
        tuning = (
            grid_cost[family]
            if family is not None
            else (statistics.mean(tuned_updates) if tuned_updates else 0.0)
        )
        everyone = bool(done) and len(got) == o.seeds
        to_target = statistics.mean(got) if got else None
        seconds = [t.seconds for t in done if t.seconds]
        outcomes[arm] = o
        rows[arm] = {
            "acc": o.ci,
            "to_target": mean_ci(got) if got else None,
            "reached": f"{len(got)}/{o.seeds}",
            "tuning": tuning,
            "total": tuning + (to_target if to_target is not None and everyone else budget),
            "all_reached": everyone,
            "time_ratio": statistics.mean(seconds) / base_s if seconds else float("nan"),
            "failures": o.failures(),
        }
    return {"rows": rows, "budget": budget, "outcomes": outcomes}


def _ci(c: Any, digits: int = 1) -> str:
    if c is None:
        return "-"
    half = f" ± {c.half_width:.{digits}f}" if c.half_width is not None else ""
    return f"{c.mean:.{digits}f}{half}"


def table(name: str, spec: dict[str, Any], m: dict[str, Any]) -> list[str]:
    out = [
        f"### {name}",
        "",
        f"Target {100 * spec['target']:.1f}% accuracy; {spec['source']}. Budget: "
        f"{m['budget']} updates per run. Updates to target are read on the validation split "
        "(10% held out of training, what every tuning step reads); final accuracy is the test "
        "split's, scored once at the end, over the seeds that finished (failed, diverged and "
        "collapsed seeds are named and kept out).",
        "",
        "| arm | final test acc % (budget) | updates to target | reached | tuning updates | "
        "total updates | time / baseline |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for arm, r in m["rows"].items():
        total = f"{r['total']:.0f}" + (
            "" if r["all_reached"] else " (budget: not all seeds reached)"
        )
        lost = f" ({r['failures']})" if r["failures"] else ""
        out.append(
            f"| {arm}{lost} | {_ci(r['acc'])} | {_ci(r['to_target'], 0)} | {r['reached']} | "
            f"{r['tuning']:.0f} | {total} | {r['time_ratio']:.2f} |"
        )
    return out


def standings(name: str, m: dict[str, Any]) -> list[str]:
    """Each lrlab arm against every other arm (lrlab's own excluded)."""
    outcomes: dict[str, Outcome] = m["outcomes"]
    mine = [a for a in outcomes if a.startswith("lrlab auto")]
    others = [o for a, o in outcomes.items() if not a.startswith("lrlab auto")]
    return [standing(name, outcomes[a], others) for a in mine]


def verdicts(
    name: str, spec: dict[str, Any], m: dict[str, Any], mine: str = "lrlab auto"
) -> list[str]:
    rows = m["rows"]
    me = rows[mine]
    lines = []
    baseline = rows.get(BASELINE, {}).get("to_target")
    base = spec["published_updates"] or (baseline.mean if baseline is not None else None)
    if me["to_target"] is not None and base:
        ratio = me["to_target"].mean / base
        ok = me["all_reached"] and ratio <= 0.2
        lines.append(
            f"- {name}: {mine} reaches the target in {me['to_target'].mean:.0f} updates, "
            f"{ratio:.2f} of the baseline's {base:.0f} "
            f"({'meets' if ok else 'misses'} the 1/5 target; {me['reached']} seeds)."
        )
    else:
        reached = [a for a, r in rows.items() if r["to_target"] is not None]
        scored = [a for a in rows if rows[a]["acc"] is not None]
        best = max(scored, key=lambda a: rows[a]["acc"].mean) if scored else None
        best_text = f"{best}, {rows[best]['acc'].mean:.1f}%" if best else "none finished"
        lines.append(
            f"- {name}: {mine} did not reach the target on every seed ({me['reached']}); "
            + (
                f"arms that reached it on some seed: {', '.join(reached)}."
                if reached
                else f"no arm reached it within the {m['budget']} updates (best at the budget: "
                f"{best_text})."
            )
        )
    grid = [a for a in rows if a in GRID_ARMS]
    fewer = all(me["total"] < rows[a]["total"] for a in grid)
    lines.append(
        f"- {name}: total updates incl. tuning, {mine} {me['total']:.0f} vs grid-tuned "
        + ", ".join(f"{a} {rows[a]['total']:.0f}" for a in grid)
        + (" (fewer than all)." if fewer else " (not fewer than all).")
    )
    return lines


def check_packages() -> None:
    """The Schedule-Free and Prodigy arms need their packages: refuse before any run."""
    missing = [p for p in PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        print(
            f"error: benchmarks/methods.py: the Schedule-Free and Prodigy arms need "
            f"{', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed: "
            'pip install -e ".[bench]"',
            file=sys.stderr,
        )
        raise SystemExit(2)


def _doc_header(names: list[str]) -> list[str]:
    """The methods section's opening: how to run it, what each arm is, what was left out."""
    doc = [
        "## lrlab's way against the alternatives: `python benchmarks/methods.py --doc`",
        "",
        'From a fresh checkout: `pip install "torch==2.13.0" -e ".[dev,bench]"` (plus '
        "`apt-get install dataset-fashion-mnist` for Fashion-MNIST), then "
        "`python benchmarks/methods.py --doc` (`--tasks` to choose tasks; `--quick`: "
        "MNIST-1D CNN, 2 seeds). It resumes where it stopped.",
        "",
        "Each task is a pair of lrlab studies under `benchmarks/results/methods/` (the grid "
        "tuning, then the comparison); their `report.html` files hold the curves with 95% bands.",
        f"The baseline is `{BASELINE}`, the setting the MNIST-1D targets were published with. "
        "`lrlab auto` is the range test (default rule) then 1cycle with cyclical momentum; "
        "`lrlab auto + confirm` adds the confirm step (`range_test.confirm = [1, 2, 4]`: "
        "1cycle runs at 1, 2 and 4 times the rule's LR, each a tenth of the trial's updates, "
        "the lowest validation loss kept). Grid arms: SGD with 5 LRs per schedule "
        f"({GRID}), Adam with 5 LRs ({ADAM_GRID}), Prodigy with 3 `d_coef` values "
        f"({D_COEF_GRID}), one run per grid point on a separate seed, all charged to the "
        "arm's total. Schedule-Free and Prodigy "
        "also run at their package defaults; Schedule-Free (range test) takes a constant LR "
        "from lrlab's range test run with the Schedule-Free optimizer itself (a third of the "
        "rule's LR, lrlab's reading for a constant schedule), its sweep charged to it.",
        "",
    ]
    skipped = [n for n in TASKS if n not in names]
    if skipped:
        doc += [
            f"Not in this run: {', '.join(skipped)} (`--tasks {','.join(skipped)}`); the "
            "tables below are the tasks that were.",
            "",
        ]
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="mnist1d-cnn only, 2 seeds")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "methods")
    parser.add_argument(
        "--doc", action="store_true", help="write docs/benchmarks.md (methods section)"
    )
    args = parser.parse_args()
    names = ["mnist1d-cnn"] if args.quick else args.tasks.split(",")
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        parser.error(f"--tasks: unknown task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}")
    check_packages()
    seeds = list(range(2 if args.quick else args.seeds))
    doc = _doc_header(names)
    readings: list[str] = []
    lines_standing: list[str] = []
    figures = REPO / "docs" / "benchmarks"
    for name in names:
        spec = TASKS[name]
        print(f"== {name}", flush=True)
        tuned, grid_cost = tune(args.out, name, spec, args.workers)
        cfg = parse_study(final_study(name, spec, seeds, tuned))
        run_study(cfg, args.out / f"{name}-methods", executor=LocalExecutor(args.workers))
        write_report(args.out / f"{name}-methods")
        m = measure(args.out, name, spec, grid_cost)
        lines = table(name, spec, m)
        tuned_text = ", ".join(f"{k} {v:g}" for k, v in tuned.items())
        lines += ["", f"Grid-tuned values (LR; Prodigy's d_coef): {tuned_text}.", ""]
        if args.doc:
            figures.mkdir(parents=True, exist_ok=True)
            shutil.copy(args.out / f"{name}-methods" / "curves.png", figures / f"{name}.png")
            lines += [
                f"![{name}: validation accuracy against updates, mean and 95% band over seeds]"
                f"(benchmarks/{name}.png)",
                "",
            ]
        print("\n".join(lines), flush=True)
        doc += lines
        readings += [
            line
            for arm in m["outcomes"]
            if arm.startswith("lrlab auto")
            for line in verdicts(name, spec, m, arm)
        ]
        lines_standing += standings(name, m)
    doc += [
        "### Where lrlab wins, ties and loses",
        "",
        "Final test accuracy at the budget, lrlab auto minus each other arm, in points with "
        "Welch's 95% CI over the seeds that finished (failed, diverged and collapsed seeds "
        f"named and kept out); a CI wider than ±{RESOLUTION:g} points that includes 0 is "
        "inconclusive, not a tie:",
        "",
        *lines_standing,
        "",
        "### Against the targets",
        "",
        *readings,
    ]
    print("\n".join(lines_standing + readings))
    if args.doc:
        path = REPO / "docs" / "benchmarks.md"
        text = path.read_text() if path.exists() else "# Benchmarks\n"
        marker = "## lrlab's way against the alternatives"
        text = text.split(marker)[0].rstrip() + "\n\n" + "\n".join(doc) + "\n"
        path.write_text(text)


if __name__ == "__main__":
    main()
