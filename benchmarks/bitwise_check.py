"""Do bundled studies store the same numbers, bit for bit, before and after a code change?

Runs a fixed set of small bundled studies (each a bundled study file, shrunk to a few seeds
and epochs so the set runs in a few minutes on 2 cores) into a directory, and compares two
such directories: every stored metric series (steps, epochs, values) and every final value
of every trial, with ``==`` on the floats (NaN equal to NaN). Only the wall-clock fields
(``seconds``, start and finish times, versions and git commit) are left out.

    python benchmarks/bitwise_check.py run /tmp/before     # with the old code on PYTHONPATH
    python benchmarks/bitwise_check.py run /tmp/after      # with the new code
    python benchmarks/bitwise_check.py compare /tmp/before /tmp/after

The script uses only ``parse_study``, ``run_study`` and ``StudyStore``, which both sides of
a change have, so the same file drives both runs.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]

#: (directory name, bundled study file, preset, overrides merged into the study dict)
CASES: list[tuple[str, str, str | None, dict[str, Any]]] = [
    ("example", "example.toml", None, {}),
    ("demo-quick", "demo.toml", "quick", {}),
    ("layerwise", "layerwise.toml", None, {"seeds": [0], "task": {"epochs": 3}}),
    (
        "stability_b",
        "stability_b.toml",
        None,
        {"seeds": [0], "task": {"epochs": 3}, "arms": slice(0, 3)},
    ),
    ("sgdr_snapshot", "sgdr_snapshot.toml", None, {"seeds": [0], "task": {"epochs": 12}}),
    (
        "confirm-mix",
        "example.toml",
        None,
        {
            "seeds": [0, 1],
            "task": {"epochs": 4, "eval_every": 10, "instrument_every": 7, "holdout": 0.1},
            "arms": [
                {
                    "name": "confirmed 1cycle",
                    "lr": {"kind": "one_cycle"},
                    "momentum": "cyclical",
                    "range_test": {"rule": "lrlab", "confirm": [1, 2, 4], "confirm_updates": 8},
                },
                {
                    "name": "torch OneCycleLR",
                    "lr": "one_cycle_torch(max_lr=0.1)",
                    "torch_scheduler": "OneCycleLR",
                },
                {
                    "name": "adamw lars",
                    "lr": "cosine(init=0.003)",
                    "optimizer": {"name": "adamw", "lr": 0.001, "weight_decay": 0.01},
                    "lars": {"trust_coefficient": 0.02, "mode": "clip"},
                },
            ],
            "baseline": "confirmed 1cycle",
            "targets": {"val_top1": 0.5, "val_loss": 1.0},
        },
    ),
]

#: Trial fields that are not results (times, machine, versions).
_NOT_RESULTS = {"seconds", "started", "finished", "lrlab_version", "git_commit", "torch_version"}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, slice):
            out[k] = out[k][v]
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def run(out: Path) -> None:
    from lrlab.study import LocalExecutor, parse_study, run_study

    torch.set_num_threads(1)
    for name, file, preset, over in CASES:
        data = tomllib.loads((REPO / "studies" / file).read_text())
        presets = data.pop("presets", {}) or {}
        if preset is not None:
            data = _merge(data, presets[preset])
        study = parse_study(_merge(data, over), source=file)
        t0 = time.perf_counter()
        summary = run_study(study, out / name, executor=LocalExecutor(1))
        took = time.perf_counter() - t0
        print(f"{name}: {summary.ran} trial(s), {len(summary.failed)} failed, {took:.0f} s")
        for line in summary.failed:
            print("  failed:", line)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b) and type(a) is type(b)


def _trials(directory: Path) -> dict[str, dict[str, Any]]:
    from lrlab.study import StudyStore

    store = StudyStore(directory / "study.db")
    out = {}
    for t in store.trials():
        row = {k: v for k, v in vars(t).items() if k not in _NOT_RESULTS}
        row.pop("config", None)  # the resolved config may gain fields with defaults
        final = dict(row.pop("final"))
        final.pop("seconds", None)
        series = {n: store.series(t.id, n) for n in store.metric_names(t.id)}
        out[t.id] = {"row": row, "final": final, "series": series}
    store.close()
    return out


def compare(a_dir: Path, b_dir: Path) -> int:
    """Print the differences; the number of differing items is the exit status (capped)."""
    bad = series_n = final_n = trials_n = 0
    for name, *_ in CASES:
        a, b = _trials(a_dir / name), _trials(b_dir / name)
        if a.keys() != b.keys():
            print(f"{name}: trials differ: {sorted(a.keys() ^ b.keys())}")
            bad += 1
            continue
        for tid in a:
            trials_n += 1
            ta, tb = a[tid], b[tid]
            for key in sorted(ta["row"].keys() | tb["row"].keys()):
                if not _same(ta["row"].get(key), tb["row"].get(key)):
                    print(f"{name}/{tid}: {key}: {ta['row'].get(key)} != {tb['row'].get(key)}")
                    bad += 1
            for key in sorted(ta["final"].keys() | tb["final"].keys()):
                final_n += 1
                if not _same(ta["final"].get(key), tb["final"].get(key)):
                    print(f"{name}/{tid}: final.{key} differs")
                    bad += 1
            for key in sorted(ta["series"].keys() | tb["series"].keys()):
                series_n += 1
                if not _same(ta["series"].get(key), tb["series"].get(key)):
                    print(f"{name}/{tid}: series {key} differs")
                    bad += 1
    print(
        f"{trials_n} trials, {series_n} metric series, {final_n} final values compared: "
        + ("all identical" if not bad else f"{bad} difference(s)")
    )
    return min(bad, 100)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = p.parse_args()
    if args.cmd == "run":
        run(args.out)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    raise SystemExit(main())
