"""lrlab's way against the methods people would pick instead, on tasks with published targets.

For each task: lrlab auto (range test, then 1cycle with cyclical momentum), PyTorch's own
OneCycleLR at its default arguments with the same max_lr, step decay / cosine / constant
with a grid-tuned LR, Adam at 1e-3, Schedule-Free SGD and AdamW (``schedulefree``) and
Prodigy (``prodigyopt``), each over the same seeds and the same budget of updates.
Grid tuning: 5 LRs (0.01 ... 1) per schedule, one run each on a separate seed, the best
kept; those runs count against the arm's total updates, as lrlab's range test counts
against lrlab's. Everything runs as lrlab studies (resumable, ``--workers`` parallel).

``lrlab auto + confirm`` adds the confirm step to the range test: 30-update 1cycle runs at
1, 2 and 4 times the rule's LR, the lowest validation loss kept (90 more tuning updates).

Measures, mean +- 95% CI over the seeds: updates to reach the task's published target,
final accuracy at the fixed budget, total updates including tuning, and wall-clock time
per run as a ratio to the Adam arm in the same run. ``--doc`` writes docs/benchmarks.md.

    python benchmarks/methods.py [--quick] [--seeds 5] [--workers 2] [--doc]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lrlab.report.stats import mean_ci, welch  # noqa: E402
from lrlab.report.study_report import write_report  # noqa: E402
from lrlab.study import LocalExecutor, StudyStore, parse_study, run_study  # noqa: E402

TASKS: dict[str, dict[str, Any]] = {
    "mnist1d-cnn": {
        "task": {"data": "mnist1d", "model": "cnn1d", "batch_size": 100, "epochs": 30},
        "target": 0.94,
        "published_updates": 6000,
        "source": "Greydanus (2020), MNIST-1D CNN: 94% with Adam 1e-2, batch 100, 6000 updates",
    },
    "mnist1d-mlp": {
        "task": {"data": "mnist1d", "model": "mlp", "batch_size": 100, "epochs": 30},
        "target": 0.68,
        "published_updates": 6000,
        "source": "Greydanus (2020), MNIST-1D MLP: 68% with Adam 1e-2, batch 100, 6000 updates",
    },
    "fmnist-cnn": {
        "task": {
            "data": "fashion-mnist",
            "model": "cnn",
            "batch_size": 128,
            "epochs": 3,
            "eval_every": "0.25 epochs",
        },
        "target": 0.916,
        "published_updates": 6250,
        "source": "Fashion-MNIST benchmark, 2 conv + pooling: 91.6% (TF tutorial: 2,000 steps of "
        "batch 400 = 800k examples = 6,250 updates of batch 128)",
    },
    "digits-mlp": {
        "task": {"data": "digits", "model": "mlp", "batch_size": 64, "epochs": 30},
        "target": 0.97,
        "published_updates": None,
        "source": "scikit-learn's digits example: 97% with an SVC; no update count, so the Adam "
        "1e-3 arm's updates to 97% stand in for the baseline",
    },
}
GRID = [0.01, 0.03, 0.1, 0.3, 1.0]
SGD = {"name": "sgd", "momentum": 0.9, "weight_decay": 5e-4}


def arms(tuned: dict[str, float] | None) -> list[dict[str, Any]]:
    """The compared arms; grid arms need their tuned LR (None: only the untuned arms)."""
    out: list[dict[str, Any]] = [
        {
            "name": "lrlab auto",
            "lr": {"kind": "one_cycle"},
            "momentum": "cyclical",
            "range_test": {"rule": "lrlab"},
        },
        {
            "name": "lrlab auto + confirm",
            "lr": {"kind": "one_cycle"},
            "momentum": "cyclical",
            "range_test": {"rule": "lrlab", "confirm": [1.0, 2.0, 4.0]},
        },
        {
            "name": "PyTorch OneCycleLR",
            "lr": {"kind": "one_cycle_torch"},
            "torch_scheduler": "OneCycleLR",
            "range_test": {"rule": "lrlab", "schedule": "one_cycle"},
        },
        {
            "name": "Adam 1e-3",
            "lr": "constant(level=0.001)",
            "optimizer": {"name": "adam", "lr": 0.001, "weight_decay": 0.0},
        },
        {
            "name": "Schedule-Free SGD",
            "lr": "constant(level=1.0)",
            "optimizer": {
                "name": "schedulefree_sgd",
                "lr": 1.0,
                "momentum": 0.9,
                "weight_decay": 5e-4,
            },
        },
        {
            "name": "Schedule-Free AdamW",
            "lr": "constant(level=0.0025)",
            "optimizer": {"name": "schedulefree_adamw", "lr": 0.0025, "weight_decay": 5e-4},
        },
        {
            "name": "Prodigy",
            "lr": "constant(level=1.0)",
            "optimizer": {"name": "prodigy", "lr": 1.0, "weight_decay": 5e-4},
        },
    ]
    if tuned is not None:
        out += [
            {
                "name": "step decay (grid)",
                "lr": f"multistep(init={tuned['step']}, milestones=['50%', '75%'])",
            },
            {"name": "cosine (grid)", "lr": f"cosine(init={tuned['cosine']})"},
            {"name": "constant (grid)", "lr": f"constant(level={tuned['constant']})"},
        ]
    return out


def grid_study(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    grid_arms = []
    for lr in GRID:
        grid_arms += [
            {"name": f"step@{lr}", "lr": f"multistep(init={lr}, milestones=['50%', '75%'])"},
            {"name": f"cosine@{lr}", "lr": f"cosine(init={lr})"},
            {"name": f"constant@{lr}", "lr": f"constant(level={lr})"},
        ]
    return {
        "name": f"{name}-grid",
        "seeds": [100],
        "task": spec["task"],
        "optimizer": SGD,
        "arms": grid_arms,
    }


def final_study(
    name: str, spec: dict[str, Any], seeds: list[int], tuned: dict[str, float]
) -> dict[str, Any]:
    return {
        "name": f"{name}-methods",
        "seeds": seeds,
        "baseline": "Adam 1e-3",
        "question": f"{name}: which method reaches {100 * spec['target']:.1f}% first, "
        "and which is best at the budget?",
        "claim": spec["source"],
        "task": spec["task"],
        "optimizer": SGD,
        "targets": {"val_top1": spec["target"]},
        "arms": arms(tuned),
        "analysis": {"kind": "compare", "arms": ["lrlab auto"], "expect": "better"},
    }


def tune(root: Path, name: str, spec: dict[str, Any], workers: int) -> tuple[dict[str, float], int]:
    cfg = parse_study(grid_study(name, spec))
    run_study(cfg, root / f"{name}-grid", executor=LocalExecutor(workers))
    store = StudyStore(root / f"{name}-grid" / "study.db")
    acc = {t.arm: (t.final.get("val_top1") or 0.0) for t in store.trials()}
    updates = max((t.updates or 0) for t in store.trials())
    store.close()
    tuned = {k: max(GRID, key=lambda lr: acc[f"{k}@{lr}"]) for k in ("step", "cosine", "constant")}
    return tuned, updates * len(GRID)  # tuning cost of one schedule family


def measure(root: Path, name: str, spec: dict[str, Any], grid_cost: int) -> dict[str, Any]:
    store = StudyStore(root / f"{name}-methods" / "study.db")
    trials = store.trials()
    store.close()
    rows: dict[str, Any] = {}
    accs: dict[str, list[float]] = {}
    budget = max(t.updates or 0 for t in trials)
    adam = [t.seconds for t in trials if t.arm == "Adam 1e-3" and t.seconds]
    adam_s = statistics.mean(adam) if adam else float("nan")
    listed = [a["name"] for a in arms({"step": 0.1, "cosine": 0.1, "constant": 0.1})]
    stored = dict.fromkeys(t.arm for t in trials)  # in the order the arms were added
    for arm in sorted(stored, key=lambda a: listed.index(a) if a in listed else len(listed)):
        mine = [t for t in trials if t.arm == arm and t.status in ("done", "diverged")]
        acc = [100 * (t.final.get("val_top1") or 0.0) for t in mine]
        reach = [t.final.get("updates_to_target", {}).get("val_top1") for t in mine]
        got = [r for r in reach if r is not None]
        tuning = (
            grid_cost if "(grid)" in arm else statistics.mean(t.tuning_updates or 0 for t in mine)
        )
        to_target = statistics.mean(got) if got else None
        accs[arm] = acc
        rows[arm] = {
            "acc": mean_ci(acc),
            "to_target": mean_ci(got) if got else None,
            "reached": f"{len(got)}/{len(mine)}",
            "tuning": tuning,
            "total": tuning
            + (to_target if to_target is not None and len(got) == len(mine) else budget),
            "all_reached": bool(mine) and len(got) == len(mine),
            "time_ratio": statistics.mean(t.seconds for t in mine if t.seconds) / adam_s,
            "diverged": sum(t.status == "diverged" for t in mine),
        }
    return {"rows": rows, "budget": budget, "accs": accs}


def _ci(c: Any, digits: int = 1) -> str:
    if c is None:
        return "-"
    half = f" ± {c.half_width:.{digits}f}" if c.half_width is not None else ""
    return f"{c.mean:.{digits}f}{half}"


def table(name: str, spec: dict[str, Any], m: dict[str, Any]) -> list[str]:
    out = [
        f"### {name}",
        "",
        f"Target {100 * spec['target']:.1f}% validation (test-set) accuracy; "
        f"{spec['source']}. Budget: {m['budget']} updates per run.",
        "",
        "| arm | final acc % (budget) | updates to target | reached | tuning updates | "
        "total updates | time / Adam |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for arm, r in m["rows"].items():
        total = f"{r['total']:.0f}" + (
            "" if r["all_reached"] else " (budget: not all seeds reached)"
        )
        div = f" ({r['diverged']} diverged)" if r["diverged"] else ""
        out.append(
            f"| {arm}{div} | {_ci(r['acc'])} | {_ci(r['to_target'], 0)} | {r['reached']} | "
            f"{r['tuning']:.0f} | {total} | {r['time_ratio']:.2f} |"
        )
    return out


def standing(name: str, m: dict[str, Any], mine: str = "lrlab auto") -> str:
    """Where an lrlab arm wins, ties and loses at the budget: Welch's 95% CI of the difference."""
    me = m["accs"][mine]
    sides: dict[str, list[str]] = {"beats": [], "ties with": [], "loses to": []}
    for arm, values in m["accs"].items():
        if arm.startswith("lrlab auto") or len(values) < 2 or len(me) < 2:
            continue
        d = welch(me, values)
        if d.low is None or d.high is None:  # no interval to read
            sides["ties with"].append(f"{arm} ({d.difference:+.1f}, no interval)")
            continue
        side = "beats" if d.low > 0 else "loses to" if d.high < 0 else "ties with"
        sides[side].append(f"{arm} ({d.difference:+.1f}, {d.low:+.1f} to {d.high:+.1f})")
    parts = [f"{k} {', '.join(v)}" for k, v in sides.items() if v]
    return f"- {name}: {mine} " + "; ".join(parts) + "."


def verdicts(
    name: str, spec: dict[str, Any], m: dict[str, Any], mine: str = "lrlab auto"
) -> list[str]:
    rows = m["rows"]
    me = rows[mine]
    lines = []
    base = spec["published_updates"] or (
        rows["Adam 1e-3"]["to_target"].mean if rows["Adam 1e-3"]["to_target"] else None
    )
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
        best = max(rows, key=lambda a: rows[a]["acc"].mean)
        lines.append(
            f"- {name}: {mine} did not reach the target on every seed ({me['reached']}); "
            + (
                f"arms that reached it on some seed: {', '.join(reached)}."
                if reached
                else f"no arm reached it within the {m['budget']} updates (best at the budget: "
                f"{best}, {rows[best]['acc'].mean:.1f}%)."
            )
        )
    grid = [a for a in rows if "(grid)" in a]
    fewer = all(me["total"] < rows[a]["total"] for a in grid)
    lines.append(
        f"- {name}: total updates incl. tuning, {mine} {me['total']:.0f} vs grid-tuned "
        + ", ".join(f"{a} {rows[a]['total']:.0f}" for a in grid)
        + (" (fewer than all)." if fewer else " (not fewer than all).")
    )
    for other in ("Schedule-Free SGD", "Schedule-Free AdamW", "Prodigy"):
        o = rows.get(other)
        if o is None:
            continue
        gap = o["acc"].mean - me["acc"].mean
        band = (o["acc"].half_width or 0) + (me["acc"].half_width or 0)
        worse = gap > band
        lines.append(
            f"- {name}: {mine} vs {other} at the budget: {me['acc'].mean:.1f}% vs "
            f"{o['acc'].mean:.1f}%"
            f" ({'worse by more than the CI' if worse else 'not worse beyond the CI'})."
        )
    return lines


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
    seeds = list(range(2 if args.quick else args.seeds))
    doc = [
        "## lrlab's way against the alternatives: `python benchmarks/methods.py --doc`",
        "",
        'From a fresh checkout: `pip install "torch==2.13.0" -e ".[dev,bench]"` (plus '
        "`apt-get install dataset-fashion-mnist` for Fashion-MNIST), then "
        "`python benchmarks/methods.py --doc` (about 1.5 hours on 2 cores, mostly "
        "Fashion-MNIST; `--quick`: MNIST-1D CNN, 2 seeds). It resumes where it stopped.",
        "",
        "Each task is a pair of lrlab studies under `benchmarks/results/methods/` (the grid "
        "tuning, then the comparison); their `report.html` files hold the curves with 95% bands.",
        "`lrlab auto` is the range test (default rule) then 1cycle with cyclical momentum; "
        "`lrlab auto + confirm` adds the confirm step (`range_test.confirm = [1, 2, 4]`: "
        "30-update 1cycle runs at 1, 2 and 4 times the rule's LR, the lowest validation loss "
        "kept). Grid arms: 5 LRs per schedule, one run each on a separate seed, charged to "
        "their total; the range test and confirm runs are charged to lrlab's.",
        "",
    ]
    readings: list[str] = []
    standings: list[str] = []
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
        lines += ["", f"Grid-tuned LRs (from {GRID}): {tuned_text}.", ""]
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
            for arm in m["accs"]
            if arm.startswith("lrlab auto")
            for line in verdicts(name, spec, m, arm)
        ]
        standings += [standing(name, m, arm) for arm in m["accs"] if arm.startswith("lrlab auto")]
    doc += [
        "### Where lrlab wins, ties and loses",
        "",
        "Final accuracy at the budget, lrlab auto minus each other arm, in points with "
        "Welch's 95% CI over the seeds:",
        "",
        *standings,
        "",
        "### Against the targets",
        "",
        *readings,
    ]
    print("\n".join(standings + readings))
    if args.doc:
        path = REPO / "docs" / "benchmarks.md"
        text = path.read_text() if path.exists() else "# Benchmarks\n"
        marker = "## lrlab's way against the alternatives"
        text = text.split(marker)[0].rstrip() + "\n\n" + "\n".join(doc) + "\n"
        path.write_text(text)


if __name__ == "__main__":
    main()
