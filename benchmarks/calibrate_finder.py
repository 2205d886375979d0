"""Choose lrlab's range-test design and default rule against the oracle grids, honestly.

Reads the oracle grids that ``finder_regret.py`` trained (final accuracy of 1cycle at each
max_lr, per task, optimizer and seed), runs candidate sweep designs on the same model,
optimizer and batches (cheap: one sweep each, cached), reads candidate rules off them,
and estimates each suggestion's accuracy by interpolating that seed's grid in log-LR.
The choice is made leave-one-task-out: for each task, the design and rule are picked on
the other tasks and scored on the held-out one, so the reported regret is not the
regret of a rule tuned on the task it is scored on. ``--extra-seeds`` sweeps more seeds
than the grids were trained on and scores them on the seed-mean grid: a rule that only fits
the three grid seeds shows up there (count of seeds losing more than 5 pp). The winner
still has to be trained for real by ``finder_regret.py``; this only narrows the search.

    python benchmarks/calibrate_finder.py [--results DIR] [--seeds 3] [--extra-seeds 5]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.finder_regret import OPTIMIZERS, TASKS, sweep  # noqa: E402

from lrlab.rangetest import RangeTestResult  # noqa: E402
from lrlab.rangetest import rules as R  # noqa: E402
from lrlab.study import StudyStore  # noqa: E402

DESIGNS: dict[str, dict[str, Any]] = {
    "fast 1e-7..10": {"start_lr": 1e-7, "end_lr": 10.0},
    "from 1e-5": {"start_lr": 1e-5, "end_lr": 10.0},
    "from 1e-4": {"start_lr": 1e-4, "end_lr": 10.0},
}


def grid_curves(root: Path, seeds: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per seed: (log10 max_lr, final accuracy) of every trained LR, sorted."""
    out = {}
    for seed in seeds:
        store = StudyStore(root / f"seed{seed}" / "study.db")
        pts = sorted(
            (math.log10(float(t.arm[3:])), t.final.get("val_top1") or 0.1)
            for t in store.trials()
            if t.status in ("done", "diverged")
        )
        store.close()
        out[seed] = (np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
    return out


def accuracy_at(curve: tuple[np.ndarray, np.ndarray], lr: float | None) -> float:
    if lr is None or not lr > 0:
        return 0.1
    x, y = curve
    return float(np.interp(math.log10(lr), x, y, left=y[0], right=min(y[-1], 0.1)))


def candidates(rt: RangeTestResult) -> dict[str, float | None]:
    lrs, losses = np.asarray(rt.lrs), np.asarray(rt.losses, dtype=float)
    out: dict[str, float | None] = {}
    try:
        curve = R.prepare(lrs, losses)
        onset, i_min, _ = R._descent(curve)
        lr_min = float(curve.lrs[i_min])
        for c in (0.25, 0.33, 0.5, 0.7, 1.0, 1.4, 2.0):
            out[f"min x{c:g}"] = lr_min * c
        stop = float(lrs[np.isfinite(losses)][-1])
        for c in (0.1, 0.15, 0.2, 0.25, 0.33, 0.5, 0.7, 1.0):
            out[f"stop x{c:g}"] = stop * c
        for c in (3.0, 5.0, 10.0):
            out[f"min(stop x0.2, min x{c:g})"] = min(stop * 0.2, lr_min * c)
        # where the smoothed loss has climbed back by a fraction of its drop: unlike the
        # sweep's stop, it does not wait for an explosion when the loss only returns to chance
        drop = float(np.max(curve.fit[: i_min + 1]) - curve.fit[i_min])
        for f in (0.25, 0.5):
            up = np.flatnonzero(curve.fit[i_min:] >= curve.fit[i_min] + f * drop)
            rise = float(curve.lrs[i_min + int(up[0])] if up.size else curve.lrs[-1])
            for c in (0.2, 0.33, 0.5):
                out[f"rise{f:g} x{c:g}"] = rise * c
            for c in (3.0, 10.0):
                out[f"min(rise{f:g} x0.33, min x{c:g})"] = min(rise * 0.33, lr_min * c)
        out["geo(onset,min)"] = math.sqrt(lr_min * float(curve.lrs[onset]))
        out["geo(min,stop)"] = math.sqrt(lr_min * stop)
    except R.CurveError:
        pass
    for name, fn in (
        ("steep", R.fastai_steep),
        ("valley", R.fastai_valley),
        ("slide", R.fastai_slide),
        ("steepest", R.steepest),
    ):
        try:
            out[name] = (
                fn(lrs, losses).lr if name == "steepest" else fn(lrs, losses, rt.num_updates).lr
            )
        except (R.CurveError, ValueError):
            out[name] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results", type=Path, default=REPO / "benchmarks" / "results" / "finder_regret"
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds with trained grids")
    parser.add_argument(
        "--extra-seeds",
        type=int,
        default=5,
        help="more sweeps (default design) scored on the seed-mean grid: how rules fare on "
        "seeds they were not tuned on",
    )
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    extra = list(range(args.seeds, args.seeds + args.extra_seeds))
    # per (combo, rule) on the default design: regret of every seed, grid and extra
    per_seed: dict[str, dict[str, list[float]]] = {}
    cache_path = args.results / "calibration_sweeps.json"
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    # scores[combo][design][rule] = mean regret (pp) over seeds, from interpolated grids
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for tname, task in TASKS.items():
        for oname, opt in OPTIMIZERS.items():
            root = args.results / f"{tname}-{oname}"
            if not (root / "result.json").exists():
                continue
            combo = f"{tname}/{oname}"
            grids = grid_curves(root, seeds)
            best = max(
                statistics.mean(np.interp(x, grids[s][0], grids[s][1]) for s in seeds)
                for x in grids[seeds[0]][0]
            )
            mean_grid = (
                grids[seeds[0]][0],
                np.mean([np.interp(grids[seeds[0]][0], *grids[s]) for s in seeds], axis=0),
            )
            scores[combo] = {}
            per_seed[combo] = {}
            for dname, design in DESIGNS.items():
                per_rule: dict[str, list[float]] = {}
                default = dname == next(iter(DESIGNS))
                for s in seeds + (extra if default else []):
                    key = f"{combo}/{dname}/{s}"
                    if key not in cache:
                        cache[key] = json.loads(sweep(task, opt, s, **design).to_json())
                        cache_path.write_text(json.dumps(cache))
                    rt = RangeTestResult.from_json(json.dumps(cache[key]))
                    for rule, lr in candidates(rt).items():
                        if s in grids:
                            per_rule.setdefault(rule, []).append(accuracy_at(grids[s], lr))
                        if default:
                            per_seed[combo].setdefault(rule, []).append(
                                100 * (best - accuracy_at(mean_grid, lr))
                            )
                scores[combo][dname] = {
                    r: 100 * (best - statistics.mean(a))
                    for r, a in per_rule.items()
                    if len(a) == len(seeds)
                }
    combos = sorted(scores)
    pairs = sorted({(d, r) for c in combos for d in scores[c] for r in scores[c][d]})
    print(f"{len(combos)} task/optimizer combinations: {', '.join(combos)}\n")
    print("mean regret (pp, interpolated) over all combinations, best 15:")
    mean_all = {p: statistics.mean(scores[c][p[0]].get(p[1], 100.0) for c in combos) for p in pairs}
    for p, v in sorted(mean_all.items(), key=lambda kv: kv[1])[:15]:
        worst = max(scores[c][p[0]].get(p[1], 100.0) for c in combos)
        print(f"  {p[0]:<16} {p[1]:<16} mean {v:6.2f}  worst {worst:6.2f}")
    print("\nleave-one-out: pick on the other combinations, score on the held-out one")
    held = []
    for c in combos:
        others = [o for o in combos if o != c]
        pick = min(
            pairs, key=lambda p: statistics.mean(scores[o][p[0]].get(p[1], 100.0) for o in others)
        )
        held.append(scores[c][pick[0]].get(pick[1], 100.0))
        print(f"  {c:<22} picked {pick[0]} / {pick[1]:<14} held-out regret {held[-1]:6.2f}")
    print(f"  mean held-out regret {statistics.mean(held):.2f} pp")

    top = [p for p, _ in sorted(mean_all.items(), key=lambda kv: kv[1])[:6]]
    print("\nper combination, the six best overall (regret pp):")
    print(" " * 22 + "".join(f"{p[0][:9] + ' ' + p[1]:>22}" for p in top))
    for c in combos:
        print(f"  {c:<20}" + "".join(f"{scores[c][p[0]].get(p[1], 100.0):22.2f}" for p in top))

    # Does the optimizer family call for its own rule? Pick a rule per family, leave-one-out
    # again (needs at least two combinations per family).
    print("\nper optimizer family, the default sweep, leave-one-out:")
    default = [p for p in pairs if p[0] == next(iter(DESIGNS))]
    held = []
    for c in combos:
        family = c.split("/")[1]
        others = [o for o in combos if o != c and o.split("/")[1] == family]
        pick = min(
            default,
            key=lambda p: statistics.mean(scores[o][p[0]].get(p[1], 100.0) for o in others),
        )
        held.append(scores[c][pick[0]].get(pick[1], 100.0))
        print(f"  {c:<22} picked {pick[0]} / {pick[1]:<14} held-out regret {held[-1]:6.2f}")
    print(f"  mean held-out regret {statistics.mean(held):.2f} pp")
    for family in sorted({c.split("/")[1] for c in combos}):
        fam = [c for c in combos if c.split("/")[1] == family]
        ranked = sorted(
            default, key=lambda p: statistics.mean(scores[c][p[0]].get(p[1], 100.0) for c in fam)
        )
        for p in ranked[:5]:
            vals = [scores[c][p[0]].get(p[1], 100.0) for c in fam]
            print(
                f"  {family:<6} {p[1]:<26} mean {statistics.mean(vals):5.2f} worst "
                f"{max(vals):5.2f}  " + " ".join(f"{v:5.2f}" for v in vals)
            )

    print(
        f"\nper optimizer family, {len(seeds) + len(extra)} seeds per combination scored on the "
        "seed-mean grid: mean regret, and how many (combination, seed) runs lose > 5 pp"
    )
    for family in sorted({c.split("/")[1] for c in combos}):
        fam = [c for c in combos if c.split("/")[1] == family]
        rules = set.intersection(*(set(per_seed[c]) for c in fam))
        n = len(seeds) + len(extra)
        full = [r for r in rules if all(len(per_seed[c][r]) == n for c in fam)]
        ranked = sorted(full, key=lambda r: statistics.mean(v for c in fam for v in per_seed[c][r]))
        for r in ranked[:40]:
            vals = [v for c in fam for v in per_seed[c][r]]
            fails = sum(v > 5 for v in vals)
            print(
                f"  {family:<6} {r:<28} mean {statistics.mean(vals):5.2f} worst {max(vals):6.2f} "
                f"fails {fails}/{len(vals)}  per combo "
                + " ".join(f"{statistics.mean(per_seed[c][r]):5.2f}" for c in fam)
            )


if __name__ == "__main__":
    main()
