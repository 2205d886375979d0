"""``python -m benchmarks.peers --selftest``: the whole chain, on a small real task.

Needs the peer venvs (``bash benchmarks/peers_env.sh``); about half a minute. Checks, for
every peer: the tool trained on lrlab's batches in lrlab's order (CRC of every batch), from
the same initial weights (the first raw loss agrees across peers), counted updates match
the curve it recorded, its LR ladder is the documented one, and its suggestions can be
re-derived from the returned curve with the documented rule (so the JSON carries the curve
the suggestions came from). Plus: spec validation, and fastai's optimizers as set up here
compute what torch's SGD/Adam/AdamW compute (also with lrlab's no-decay groups). And a
held-out task: every peer trains on lrlab's sweep batches from the same initial weights.
"""

from __future__ import annotations

import json
import math
import subprocess
from typing import Any

import numpy as np

from . import FASTAI_PYTHON, REPO, normalise_spec, peer_python, peer_suggestions
from ._task import EpochBatches, build_task, fingerprint

HELDOUT = {"heldout": "attention-majority", "seed": 1}  # AdamW with no-decay groups

SPECS = [
    {
        "dataset": "digits",
        "model": "mlp",
        "optimizer": "sgd",
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "batch_size": 64,
        "seed": 3,
    },
    {
        "dataset": "digits",
        "model": "mlp",
        "optimizer": "adamw",
        "weight_decay": 0.01,
        "batch_size": 64,
        "seed": 3,
    },
]


def _close(a: float | None, b: float | None, rel: float = 1e-6) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=rel)


def _ladder(peer: str, n: int) -> np.ndarray:
    i = np.arange(n, dtype=float)
    if peer == "torch-lr-finder":  # base*(end/base)^(i/(num_iter-1)), base = optimizer lr
        return 1e-7 * (10 / 1e-7) ** (i / 99)
    if peer == "lightning":  # step 0 is min_lr, then min*(max/min)^((i+1)/N)
        return np.where(i == 0, 1e-8, 1e-8 * (1 / 1e-8) ** ((i + 1) / 100))
    return 1e-7 * (10 / 1e-7) ** (i / 100)  # fastai: start*(end/start)^(i/num_it)


def _rederive(peer: str, lrs: list[float], losses: list[float | None]) -> dict[str, float | None]:
    """The documented rules (shared/anchors/lrfinder.md), applied to the returned curve."""
    lr = np.asarray(lrs, dtype=float)
    loss = np.asarray([np.nan if v is None else v for v in losses], dtype=float)
    if peer == "torch-lr-finder":
        w_lr, w_loss = lr[10:-5], loss[10:-5]
        return {"steepest": float(w_lr[np.argmin(np.gradient(w_loss))])}
    if peer == "lightning":
        w_lr, w_loss = lr[10:-1], loss[10:-1]
        keep = np.isfinite(w_loss)
        w_lr, w_loss = w_lr[keep], w_loss[keep]
        return {"steepest": float(w_lr[np.argmin(np.gradient(w_loss, w_lr))])}
    # fastai: float32 tensors over [num_it//10:-5], cut at the first NaN
    w_lr = lr[10:-5].astype(np.float32).astype(float)
    w_loss = loss[10:-5].astype(np.float32).astype(float)
    bad = np.flatnonzero(~np.isfinite(w_loss))
    if len(bad):
        w_lr, w_loss = w_lr[: bad[0]], w_loss[: bad[0]]
    grads = np.diff(w_loss) / np.diff(np.log(w_lr))
    return {
        "valley": float(w_lr[_valley_index(w_loss)]),
        "steep": float(w_lr[np.argmin(grads)]),
        "minimum": float(w_lr[np.argmin(w_loss)] / 10),
    }


def _valley_index(losses: np.ndarray) -> int:
    n = len(losses)
    lds, max_start, max_end = [1] * n, 0, 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end, max_start = i, i - lds[i]
    sections = (max_end - max_start) / 3
    return max_start + int(sections) + int(sections / 2)


def _check_spec_validation(failures: list[str]) -> None:
    bad_specs: list[tuple[dict[str, Any], str]] = [
        ({**SPECS[0], "optimizer": "rmsprop"}, "optimizer"),
        ({"heldout": "no-such-task", "seed": 0}, "heldout"),
        ({"heldout": "gru-seq", "seed": 0, "batch_size": 8}, "batch_size"),
        ({k: v for k, v in SPECS[0].items() if k != "momentum"}, "momentum"),
        ({**SPECS[0], "batch_size": 0}, "batch_size"),
        ({**SPECS[0], "lr": 0.1}, "unknown"),
        ({**SPECS[1], "momentum": 0.9}, "momentum"),
    ]
    for spec, word in bad_specs:
        try:
            normalise_spec(spec)
            failures.append(f"spec accepted but should name {word!r}: {spec}")
        except (TypeError, ValueError) as exc:
            if word not in str(exc):
                failures.append(f"spec error does not name {word!r}: {exc}")


def _expected_crcs(spec: dict[str, Any], n: int) -> list[int]:
    task = build_task(normalise_spec(spec))
    out: list[int] = []
    epoch = 0
    while len(out) < n:
        out += [fingerprint(xb) for xb, _ in task.train.epoch_iter(epoch)]
        epoch += 1
    # and the loader yields the same, while a bare iter() does not use up an epoch
    probe = EpochBatches(task.train.x, task.train.y, task.train.batch_size, task.train.seed)
    iter(probe)
    if [fingerprint(xb) for xb, _ in probe][:3] != out[:3]:
        raise AssertionError("EpochBatches: iter() without next() shifted the epoch order")
    return out[:n]


def _check_heldout(failures: list[str]) -> None:
    """Each peer on a held-out task: lrlab's epoch-0 batches cycled, the same first loss."""
    task = build_task(normalise_spec(HELDOUT))
    epoch0 = [fingerprint(xb) for xb, _ in task.train]
    first = {}
    for peer in ("torch-lr-finder", "lightning", "fastai"):
        r = peer_suggestions(peer, HELDOUT)
        n, tag = r["updates"], f"{peer}/{HELDOUT['heldout']}"
        print(f"{tag:32s} updates={n:3d} seconds={r['seconds']:.2f} "
              f"suggestions={ {k: f'{v:.3g}' for k, v in r['suggestions'].items()} }")  # fmt: skip
        if r["batch_crcs"] != [epoch0[i % len(epoch0)] for i in range(n)]:
            failures.append(f"{tag}: batches are not lrlab's sweep batches (epoch 0, cycled)")
        if not all(v is None or v > 0 for v in r["suggestions"].values()):
            failures.append(f"{tag}: suggestions {r['suggestions']}")
        first[peer] = r["raw_losses"][0]
    if not all(_close(v, first["torch-lr-finder"], rel=1e-5) for v in first.values()):
        failures.append(f"{HELDOUT['heldout']}: first losses differ {first}: other init?")


def selftest() -> int:
    failures: list[str] = []
    _check_spec_validation(failures)

    fastai_ok = subprocess.run(
        [peer_python("fastai"), "-m", "benchmarks.peers.fastai_runner", "--check-optimizers"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if fastai_ok.returncode != 0:
        failures.append(
            f"fastai optimizer check failed ({FASTAI_PYTHON}): {fastai_ok.stderr[-800:]}"
        )
    else:
        diffs = json.loads(fastai_ok.stdout.splitlines()[-1])
        print(f"fastai optimizers vs torch, max |param diff| after 5 steps: {diffs}")
        failures += [f"fastai {k} differs from torch by {v}" for k, v in diffs.items() if v > 1e-6]

    for spec in SPECS:
        expected = _expected_crcs(spec, 100)
        first_losses = {}
        for peer in ("torch-lr-finder", "lightning", "fastai"):
            r = peer_suggestions(peer, spec)
            tag = f"{peer}/{spec['optimizer']}"
            n = r["updates"]
            print(
                f"{tag:24s} updates={n:3d} seconds={r['seconds']:.2f} "
                f"suggestions={ {k: f'{v:.3g}' for k, v in r['suggestions'].items()} }"
            )
            if not 0 < n <= 100:
                failures.append(f"{tag}: {n} updates")
            if not (len(r["lrs"]) == len(r["losses"]) == len(r["raw_losses"]) == n):
                failures.append(f"{tag}: curve lengths differ from updates ({n})")
            if r["batch_crcs"] != expected[: len(r["batch_crcs"])] or len(r["batch_crcs"]) != n:
                failures.append(f"{tag}: batches are not lrlab's order")
            if not np.allclose(r["lrs"], _ladder(peer, len(r["lrs"])), rtol=1e-5):
                failures.append(f"{tag}: LR ladder differs from the documented one")
            for name, value in _rederive(peer, r["lrs"], r["losses"]).items():
                if not _close(r["suggestions"][name], value, rel=1e-5):
                    failures.append(f"{tag}: {name} {r['suggestions'][name]} != re-derived {value}")
            first_losses[peer] = r["raw_losses"][0]
        ref = first_losses["torch-lr-finder"]
        for peer, loss in first_losses.items():
            if not _close(loss, ref, rel=1e-5):  # fastai runs another torch: bits may differ
                failures.append(f"first loss {peer}={loss} vs torch-lr-finder={ref}: other init?")

    _check_heldout(failures)
    for f in failures:
        print("FAIL", f)
    print(f"{'FAILED' if failures else 'ok'}: {len(failures)} failure(s)")
    return 1 if failures else 0
