"""What experiment tracking adds to a study: wall time per trial and bytes written.

One small study (digits MLP, batch 16, one torch thread; 124 epochs: about 10,000 updates
per trial) runs in one process under each configuration: no tracking, TensorBoard, MLflow
on a SQLite store and MLflow on its file store. The configurations take turns (A B C D,
A B C D, ...), each run on a fresh study directory with its tracking store in a fresh
temporary directory (a new store per study, as lrlab's default store inside the study
directory is). A warm-up pass first runs every configuration on a one-epoch study, so
imports and data caches are not counted.

Printed per configuration: wall seconds per trial (median over repetitions), the seconds
added per trial over the untracked run of the same repetition (median and range; a
difference of two runs, so training-time noise is in it), the seconds spent inside the
tracker (timed around its calls, free of that noise): per trial, and once per study in
its open and close (where a new MLflow store creates its schema), and the bytes written:
the study directory's ``study.db`` and the tracking store. A package that is missing
gives a "not installed" row.

    python benchmarks/tracking_cost.py [--reps 3] [--epochs 124] [--seeds 2] [--doc]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pickle
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
HEADING = "## Tracking cost"
BEGIN = "<!-- tracking-cost: begin (python benchmarks/tracking_cost.py --doc) -->"
END = "<!-- tracking-cost: end -->"
#: methods.py rewrites its section by cutting the file at its heading: a section placed
#: after it would be lost, so a new one goes before it.
BEFORE = "## lrlab's way against the alternatives"

#: configuration name -> (backend, packages it needs, how its uri is made from a temp dir)
CONFIGS: dict[str, tuple[str | None, tuple[str, ...], Callable[[Path], str]]] = {
    "no tracking": (None, (), lambda d: ""),
    "TensorBoard": ("tensorboard", ("tensorboard",), lambda d: str(d / "tb")),
    "MLflow, SQLite": (
        "mlflow",
        ("mlflow", "sqlalchemy", "alembic"),
        lambda d: f"sqlite:///{d / 'mlflow.db'}",
    ),
    "MLflow, file store": ("mlflow", ("mlflow",), lambda d: str(d / "mlruns")),
}


@dataclass
class Run:
    """One run of the study under one configuration."""

    seconds: float  # the whole run_study call
    trial_seconds: float  # inside the tracker's trial calls, all trials
    study_seconds: float  # inside its open and close (a new store's creation, once a study)
    trials: int
    updates: int  # per trial, the most of the study's trials
    db_bytes: int
    track_bytes: int
    empty_bytes: int  # the tracking store before its first trial
    result_bytes: int = 0  # a trial's result pickled (its per-update trace most of it)
    errors: list[str] = field(default_factory=list)


def study(seeds: int, epochs: int) -> dict[str, Any]:
    return {
        "name": "tracking-cost",
        "seeds": list(range(seeds)),
        "task": {"data": "digits", "model": "mlp", "batch_size": 16, "epochs": epochs},
        "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 1e-4},
        "arms": [{"name": "1cycle", "lr": "one_cycle(max_lr=0.1)", "momentum": "cyclical"}],
    }


class Timed:
    """A tracker wrapped so the time spent in it, and what it raised, are recorded."""

    def __init__(self, inner: Any, store: Path) -> None:
        self.inner, self.store = inner, store
        self.seconds = {"open": 0.0, "trial": 0.0, "close": 0.0}
        self.empty_bytes = 0  # the store after open, before any trial
        self.result_bytes: list[int] = []  # each trial's result as a worker sends it
        self.errors: list[str] = []

    def _call(self, name: str, *args: Any) -> None:
        start = time.perf_counter()
        try:
            getattr(self.inner, name)(*args)
        except Exception as e:
            self.errors.append(f"{name}: {type(e).__name__}: {e}".splitlines()[0])
            raise
        finally:
            self.seconds[name] += time.perf_counter() - start

    def open(self, *args: Any) -> None:
        self._call("open", *args)
        self.empty_bytes = size(self.store)

    def trial(self, spec: Any, result: dict[str, Any]) -> None:
        self.result_bytes.append(len(pickle.dumps(result)))  # outside the timed call
        self._call("trial", spec, result)

    def close(self) -> None:
        self._call("close")


def missing(packages: tuple[str, ...]) -> list[str]:
    return [p for p in packages if importlib.util.find_spec(p) is None]


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def run_once(name: str, cfg: dict[str, Any], root: Path) -> Run:
    from lrlab.integrations.tracking import tracker_for
    from lrlab.study import LocalExecutor, StudyStore, parse_study, run_study
    from lrlab.study.track_config import TrackConfig

    backend, _, uri_of = CONFIGS[name]
    work = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    directory, store_dir = work / "study", work / "track"
    store_dir.mkdir()
    tracker = None
    if backend is not None:
        tracker = Timed(tracker_for(TrackConfig(backend=backend, uri=uri_of(store_dir))), store_dir)
    failures: list[str] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("kind") == "tracking_failed":
            failures.append(str(event.get("message")))

    start = time.perf_counter()
    summary = run_study(
        parse_study(cfg), directory, executor=LocalExecutor(1), on_event=on_event, tracker=tracker
    )
    seconds = time.perf_counter() - start
    errors = (list(tracker.errors) if tracker is not None else []) + failures
    if summary.failed or summary.ran != len(cfg["seeds"]):
        errors.append(f"{summary.ran} trials ran, failed: {summary.failed}")
    store = StudyStore(directory / "study.db", read_only=True)
    try:
        updates = [t.updates or 0 for t in store.trials()]
    finally:
        store.close()
    run = Run(
        seconds=seconds,
        trial_seconds=tracker.seconds["trial"] if tracker is not None else 0.0,
        study_seconds=tracker.seconds["open"] + tracker.seconds["close"] if tracker else 0.0,
        trials=summary.ran,
        updates=max(updates, default=0),
        db_bytes=size(directory / "study.db"),
        track_bytes=size(store_dir),
        empty_bytes=tracker.empty_bytes if tracker is not None else 0,
        result_bytes=max(tracker.result_bytes, default=0) if tracker is not None else 0,
        errors=errors,
    )
    shutil.rmtree(work, ignore_errors=True)
    return run


def row(name: str, runs: list[Run], base: list[Run]) -> list[str]:
    """One table row: ``runs`` of a configuration beside ``base`` (the untracked runs of
    the same repetitions, in the same order; ``runs is base`` for the baseline's row)."""
    per_trial = [r.seconds / r.trials for r in runs]
    cells = [name, f"{statistics.median(per_trial):.2f}"]
    if runs is base:
        db = statistics.median(r.db_bytes for r in runs)
        return [*cells, "-", "-", "-", f"{db / 1e3:.0f} kB", "-"]
    added = [r.seconds / r.trials - b.seconds / b.trials for r, b in zip(runs, base)]
    kb = [
        statistics.median(getattr(r, k) for r in runs) / 1e3 for k in ("track_bytes", "empty_bytes")
    ]
    return [
        *cells,
        f"{statistics.median(added):+.2f} ({min(added):+.2f} to {max(added):+.2f})",
        f"{statistics.median(r.trial_seconds / r.trials for r in runs):.2f}",
        f"{statistics.median(r.study_seconds for r in runs):.2f}",
        f"{statistics.median(r.db_bytes for r in runs) / 1e3:.0f} kB",
        f"{kb[0]:.0f} kB ({kb[1]:.0f} kB empty)",
    ]


COLUMNS = [
    "configuration",
    "wall s / trial",
    "added s / trial (range)",
    "tracker s / trial",
    "tracker s / study (open, close)",
    "study.db",
    "tracking store",
]


def table(results: dict[str, list[Run] | str]) -> list[str]:
    """A markdown table of ``results`` (name -> runs, or a note such as "not installed").

    The first entry is the untracked baseline; the other rows' added seconds are
    differences to its runs, repetition by repetition.
    """
    names = list(results)
    base = results[names[0]]
    if isinstance(base, str):
        raise ValueError(f"results[{names[0]!r}] is {base!r}; expected the untracked runs")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name in names:
        runs = results[name]
        if isinstance(runs, str):
            cells = [name, runs] + [""] * (len(COLUMNS) - 2)
        else:
            cells = row(name, runs, base)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def result_size(results: dict[str, list[Run] | str]) -> str:
    """A line on a trial's result as a worker sends it (the median over tracked runs)."""
    sizes = [r.result_bytes for v in results.values() if isinstance(v, list) for r in v]
    sizes = [b for b in sizes if b]
    if not sizes:
        return "A trial's result: not measured (no tracked run)."
    return (
        f"A trial's result, pickled as a worker sends it to the driver (its per-update LR "
        f"and momentum trace most of it): {statistics.median(sizes) / 1e3:.0f} kB."
    )


def write_section(text: str, section: str) -> str:
    """``text`` (docs/benchmarks.md) with its tracking-cost section replaced by ``section``.

    The section sits between ``BEGIN`` and ``END``; without them it is added before the
    methods section (which its own benchmark rewrites by cutting the file at its heading),
    or at the end. Every other section is kept as it was.
    """
    block = f"{BEGIN}\n{section.strip()}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1]
    if BEFORE in text:
        head, tail = text.split(BEFORE, 1)
        return head.rstrip() + "\n\n" + block + "\n\n" + BEFORE + tail
    return text.rstrip() + "\n\n" + block + "\n"


def measure(args: argparse.Namespace) -> tuple[dict[str, list[Run] | str], int]:
    """Every configuration's runs, taking turns; and the updates per trial."""
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses it otherwise
    cfg = study(args.seeds, args.epochs)
    results: dict[str, list[Run] | str] = {}
    for name, (_, packages, _) in CONFIGS.items():
        gone = missing(packages)
        results[name] = f"not installed ({', '.join(gone)})" if gone else []
    root = Path(tempfile.mkdtemp(prefix="lrlab-tracking-cost-"))
    try:
        live = [n for n, r in results.items() if not isinstance(r, str)]
        warm = {**cfg, "seeds": [0], "task": {**cfg["task"], "epochs": 1}}
        for rep in range(-1, args.reps):  # rep -1: the warm-up (imports, data caches)
            for name in list(live):
                try:
                    run = run_once(name, warm if rep < 0 else cfg, root)
                except Exception as e:  # a tracker refusing its store: the row says so
                    run = Run(0.0, 0.0, 0.0, 1, 0, 0, 0, 0, errors=[f"{type(e).__name__}: {e}"])
                if run.errors:
                    results[name] = f"failed: {run.errors[0].splitlines()[0]}"
                    live.remove(name)
                    continue
                if rep < 0:
                    continue
                print(f"  rep {rep + 1} {name:<20} {run.seconds / run.trials:6.2f} s/trial")
                runs = results[name]
                assert not isinstance(runs, str)
                runs.append(run)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = results["no tracking"]
    return results, max((r.updates for r in base), default=0) if isinstance(base, list) else 0


def report(results: dict[str, list[Run] | str], updates: int, args: argparse.Namespace) -> str:
    lines = [
        f"{HEADING}: `python benchmarks/tracking_cost.py --doc`",
        "",
        f"One study of {args.seeds} trials (digits MLP, batch 16, {args.epochs} epochs: "
        f"{updates:,} updates per trial, one torch thread, local executor with 1 worker), "
        f"run {args.reps} times under each configuration, taking turns, each on a fresh "
        "study directory and tracking store. Seconds are medians over the repetitions; "
        "added seconds are each run's time per trial less the untracked run's of the same "
        "repetition (range over repetitions), so training-time noise is in them; the "
        "tracker's own time is timed around its calls: its trial calls per trial, and its "
        "open and close once per study (a new MLflow store's schema is created there; each "
        "study here has a new store, as the default store inside the study directory is). "
        f"Sizes are per study ({args.seeds} trials); the tracking store's size before its "
        "first trial is in brackets. A warm-up pass ran first: importing TensorBoard or "
        "MLflow, paid once per process, is not counted.",
        "",
        *table(results),
        "",
        result_size(results),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=124)
    parser.add_argument("--seeds", type=int, default=2, help="trials per study")
    parser.add_argument("--doc", action="store_true", help=f"write {HEADING!r} in {DOC.name}")
    args = parser.parse_args()
    for key, value in (("--reps", args.reps), ("--epochs", args.epochs), ("--seeds", args.seeds)):
        if value < 1:
            parser.error(f"{key}={value} is invalid; expected an integer >= 1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    results, updates = measure(args)
    text = report(results, updates, args)
    print(text)
    if args.doc:
        DOC.write_text(write_section(DOC.read_text() if DOC.exists() else "# Benchmarks\n", text))


if __name__ == "__main__":
    main()
