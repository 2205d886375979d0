"""Does the range test hold on model families it was not calibrated on? Held-out regret.

The default rule's constant (1.4 x the LR at the smoothed loss minimum) was chosen on the
eight task/optimizer combinations of ``benchmarks/finder_regret.py``. This benchmark scores
it on the families in ``benchmarks/heldout_tasks.py`` (a GRU, a transformer block, a deep
MLP without normalisation, an MSE regression, a small/large batch pair): an oracle grid
of 1cycle runs (cyclical momentum) at ``--grid`` log-spaced max_lr values x ``--seeds``
seeds, then each finder's pick, computed per seed, trained the same way. Regret is the
grid's best seed-mean score minus the finder's (accuracy or validation R^2, in points).

Finders: ``lrlab`` (the default: refined sweep and validation reading when the first
sweep has no signal), ``lrlab:no-refine`` (the first sweep read as it is, the behaviour
before refinement), lrlab's ports of fastai's rules on the first sweep, and the real peers
at their defaults: Lightning's ``lr_find``, torch-lr-finder and fastai's ``lr_find``
(``benchmarks/finder_heldout_peers.py``). Leave-one-family-out (LOFO): the rule's multiple
is chosen on the other families (by the seed-mean grid interpolated in log LR) and scored
on the one left out. Every tuning update (sweep and refined sweep) is counted against the
budget max(200, 10% of the run).

    python benchmarks/finder_heldout.py            # about 20 minutes on one core
    python benchmarks/finder_heldout.py --doc      # also rewrites docs/finder_heldout.md
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.finder_heldout_peers import peer_rows  # noqa: E402
from benchmarks.finder_heldout_report import MULTIPLES, reading, tables  # noqa: E402
from benchmarks.heldout_tasks import TASKS, HeldoutTask  # noqa: E402

from lrlab.optim import HyperparamScheduler, param_groups  # noqa: E402
from lrlab.rangetest import RangeTestResult, range_test  # noqa: E402
from lrlab.rangetest import rules as R  # noqa: E402
from lrlab.rangetest.signal import REFINED_MULTIPLE, VAL_MULTIPLE  # noqa: E402
from lrlab.schedules import cyclical_momentum, one_cycle  # noqa: E402
from lrlab.study.optimizers import make_optimizer  # noqa: E402

GRIDS = {"sgd": (-3.0, 0.5), "adam": (-4.5, -0.5), "adamw": (-4.5, -0.5)}
FASTAI = ("valley", "steep", "minimum", "slide")
SWEEP = 100
PEERS = True  # --no-peers: lrlab's finders only


def budget(task: HeldoutTask) -> int:
    return max(200, int(0.1 * task.epochs * task.iters_per_epoch))


def start(task: HeldoutTask, seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = task.model()
    opt = {"lr": 1e-3, "momentum": 0.9, "nesterov": False, **task.optimizer}
    return model, make_optimizer(opt, param_groups(model, weight_decay=opt["weight_decay"]))


def batches(task: HeldoutTask, seed: int, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1000 * seed + epoch)
    order = torch.randperm(len(task.x), generator=g)
    b = task.batch_size
    return [(task.x[order[i : i + b]], task.y[order[i : i + b]]) for i in range(0, len(order), b)]


def train(task: HeldoutTask, seed: int, max_lr: float) -> float:
    """1cycle with cyclical momentum at ``max_lr``; the final validation score."""
    model, opt = start(task, seed)
    total = task.epochs * task.iters_per_epoch
    lr = one_cycle(max_lr=max_lr, total=total)
    momentum = cyclical_momentum(lr)
    driver = HyperparamScheduler(opt, lr=lr, momentum=momentum)
    for epoch in range(task.epochs):
        for x, y in batches(task, seed, epoch):
            loss = task.loss(model(x), y)
            if not torch.isfinite(loss):
                driver.remove()
                return 0.0
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    driver.remove()
    return task.score(model)


def sweep(task: HeldoutTask, seed: int) -> RangeTestResult:
    """lrlab's range test at its defaults, refined within the budget when it has no signal."""
    model, opt = start(task, seed)
    val = [(task.vx[i : i + 500], task.vy[i : i + 500]) for i in range(0, 1000, 500)]
    return range_test(
        model,
        opt,
        batches(task, seed, 0),
        loss_fn=task.loss,
        val_data=val,
        num_updates=SWEEP,
        refine_updates=budget(task) - SWEEP,
    )


def coarse_of(rt: RangeTestResult) -> RangeTestResult:
    return RangeTestResult(**rt.coarse) if rt.coarse else rt


def lrlab_pick(rt: RangeTestResult, multiple: float = 1.4) -> tuple[float | None, bool]:
    """The default rule's pick with ``multiple`` in place of 1.4, and whether it is flagged."""
    try:
        s = rt.suggest()
    except ValueError:
        return None, True
    if "validation" in s.reason:
        return s.lr / VAL_MULTIPLE * multiple, not s.confident
    if "began to rise" in s.reason:  # the no-signal reading: its fraction scales alike
        return s.lr / 1.4 * multiple, not s.confident
    scale = REFINED_MULTIPLE / 1.4 if rt.coarse else 1.0  # the shipped ratio, kept
    out = R.lrlab_rule(np.asarray(rt.lrs), np.asarray(rt.losses), multiple=multiple * scale)
    return out.lr, not s.confident


def picks(rt: RangeTestResult) -> dict[str, dict[str, Any]]:
    first = coarse_of(rt)
    out: dict[str, dict[str, Any]] = {}
    lr, flagged = lrlab_pick(rt)
    out["lrlab"] = {"lr": lr, "flagged": flagged, "updates": rt.tuning_updates}
    lr, flagged = lrlab_pick(first)
    out["lrlab:no-refine"] = {"lr": lr, "flagged": flagged, "updates": first.updates}
    for rule in FASTAI:
        try:
            s = first.suggest(rule)
            out[f"fastai-port:{rule}"] = {
                "lr": s.lr,
                "flagged": not s.confident,
                "updates": first.updates,
            }
        except ValueError:
            out[f"fastai-port:{rule}"] = {"lr": None, "flagged": True, "updates": first.updates}
    return out


def interpolate(grid: dict[float, float], lr: float | None) -> float:
    """The seed-mean grid score at ``lr`` (linear in log LR; outside the grid: the edge)."""
    if lr is None or not lr > 0:
        return 0.0
    xs = sorted(grid)
    return float(np.interp(math.log10(lr), [math.log10(x) for x in xs], [grid[x] for x in xs]))


def run_task(name: str, seeds: list[int], grid_n: int, out: Path) -> dict[str, Any]:
    path = out / f"{name}.json"
    cache: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    task = TASKS[name]()
    lo, hi = GRIDS[task.optimizer["name"]]
    grid = [float(f"{v:.4g}") for v in np.logspace(lo, hi, grid_n)]
    runs = cache.setdefault("runs", {})

    def trained(seed: int, lr: float) -> float:
        key = f"{seed}:{lr:.4g}"
        if key not in runs:
            runs[key] = train(task, seed, float(f"{lr:.4g}"))
            path.write_text(json.dumps(cache, indent=1))
        return float(runs[key])

    curves = cache.setdefault("curves", {})
    for seed in seeds:
        if str(seed) not in curves:
            t0 = time.perf_counter()
            rt = sweep(task, seed)
            curves[str(seed)] = {"curve": json.loads(rt.to_json()), "s": time.perf_counter() - t0}
            path.write_text(json.dumps(cache, indent=1))
    per_seed = {
        s: picks(RangeTestResult.from_json(json.dumps(curves[str(s)]["curve"]))) for s in seeds
    }
    save = lambda: path.write_text(json.dumps(cache, indent=1))  # noqa: E731
    for s, rows in peer_rows(name, seeds, cache, save, run=PEERS).items():
        per_seed[s] |= rows  # the real peers, cached under "peers"
    means = {lr: statistics.mean(trained(s, lr) for s in seeds) for lr in grid}
    best = max(means, key=lambda k: means[k])
    finders: dict[str, Any] = {}
    for fname in per_seed[seeds[0]]:
        scores, lrs, flags, updates = [], [], [], []
        for s in seeds:
            p = per_seed[s][fname]
            scores.append(trained(s, p["lr"]) if p["lr"] else 0.0)
            lrs.append(p["lr"])
            flags.append(p["flagged"])
            updates.append(p["updates"])
        regrets = [100 * (means[best] - v) for v in scores]
        finders[fname] = {
            "lrs": lrs,
            "scores": scores,
            "regret_pp": 100 * (means[best] - statistics.mean(scores)),
            "seed_regrets": regrets,
            "flagged": flags,
            "updates": max(updates),
        }
    curves_by_seed = {
        s: RangeTestResult.from_json(json.dumps(curves[str(s)]["curve"])) for s in seeds
    }
    by_multiple = {
        m: 100 * (means[best] - statistics.mean(
            interpolate(means, lrlab_pick(curves_by_seed[s], m)[0]) for s in seeds
        ))
        for m in MULTIPLES
    }  # fmt: skip
    # the noise floor: the grid's best LR chosen on the other seeds, scored on the one left out
    floor = [
        trained(s, max(grid, key=lambda g: statistics.mean(trained(o, g) for o in seeds if o != s)))
        for s in seeds
    ]
    result = {
        "task": name,
        "oracle_other_seeds_pp": 100 * (means[best] - statistics.mean(floor)),
        "family": task.family,
        "optimizer": task.optimizer["name"],
        "seeds": seeds,
        "grid": {f"{k:.4g}": v for k, v in means.items()},
        "best_lr": best,
        "best": means[best],
        "finders": finders,
        "by_multiple": {f"{m:g}": v for m, v in by_multiple.items()},
        "budget": budget(task),
        "run_updates": task.epochs * task.iters_per_epoch,
        "refined": [bool(curves_by_seed[s].coarse) for s in seeds],
    }
    cache["result"] = result
    path.write_text(json.dumps(cache, indent=1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--grid", type=int, default=12)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "finder_heldout"
    )
    parser.add_argument("--doc", action="store_true", help="also write docs/finder_heldout.md")
    parser.add_argument("--no-peers", action="store_true", help="skip the peers' finders")
    args = parser.parse_args()
    global PEERS
    PEERS = not args.no_peers
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.tasks.split(","):
        t0 = time.perf_counter()
        results.append(run_task(name, list(range(args.seeds)), args.grid, args.out))
        print(f"== {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    text = tables(results)
    print(text)
    (args.out / "table.md").write_text(text)
    if args.doc:
        (REPO / "docs" / "finder_heldout.md").write_text(
            "# LR finder regret on held-out model families\n\n"
            "Generated by `python benchmarks/finder_heldout.py --doc`.\n\n" + reading() + text
        )


if __name__ == "__main__":
    main()
