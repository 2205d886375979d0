"""The real peer LR finders, at their defaults, on lrlab's tasks: for the regret benchmark.

``peer_suggestions(peer, spec)`` runs one tool's range test on the task the spec names and
returns what it suggests. Every tool gets the same initial weights (``torch.manual_seed(seed)``
then ``lrlab.models.build_model``), the same batch order (``lrlab.data.batches(seed=seed,
epoch=e)`` for the e-th pass over the training set) and the same optimizer (torch's SGD with
momentum, Adam or AdamW; fastai's own optimizer set to the same arithmetic), with
cross-entropy. A spec may name a held-out task of ``benchmarks/heldout_tasks.py`` instead
(``{"heldout": "gru-seq", "seed": 0}``): then every tool gets what
``benchmarks/finder_heldout.py`` gives lrlab's finder (its ``start()`` and ``batches()``; see
``_heldout``), with the task's loss.

Each call runs in a fresh interpreter: the dev venv's (``sys.executable``) for
torch-lr-finder and Lightning, the fastai venv's for fastai (it needs another torch).
That keeps the caller's RNG, threads and logging untouched and gives each tool the same
conditions. Install the tools with ``bash benchmarks/peers_env.sh``.

CLI: ``python -m benchmarks.peers PEER 'SPEC_JSON'`` prints the result;
``python -m benchmarks.peers --selftest`` checks the whole chain.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._spec import normalise_spec

__all__ = ["PEERS", "PeerError", "normalise_spec", "peer_python", "peer_suggestions"]

REPO = Path(__file__).resolve().parents[2]
FASTAI_PYTHON = "/work/peer-venvs/fastai/bin/python"  # where peers_env.sh puts it
# peer -> runner module; its suggestion names
PEERS: dict[str, str] = {
    "torch-lr-finder": "benchmarks.peers.torch_lr_finder_runner",
    "lightning": "benchmarks.peers.lightning_runner",
    "fastai": "benchmarks.peers.fastai_runner",
}
SUGGESTIONS: dict[str, tuple[str, ...]] = {
    "torch-lr-finder": ("steepest",),
    "lightning": ("steepest",),
    "fastai": ("valley", "slide", "steep", "minimum"),
}


class PeerError(RuntimeError):
    """A peer run failed; the message carries the end of the runner's stderr."""


def peer_python(peer: str) -> str:
    """The interpreter that runs ``peer``: ``$LRLAB_FASTAI_PYTHON`` or the peers_env.sh venv
    for fastai, the current interpreter for the others."""
    if peer == "fastai":
        return os.environ.get("LRLAB_FASTAI_PYTHON", FASTAI_PYTHON)
    return sys.executable


def peer_suggestions(peer: str, spec: dict[str, Any], *, timeout: float = 1800) -> dict[str, Any]:
    """Run ``peer``'s LR finder with its default settings on the task ``spec`` describes.

    Args:
        peer: ``"torch-lr-finder"``, ``"lightning"`` or ``"fastai"``.
        spec: ``{"dataset", "model", "optimizer": "sgd"|"adam"|"adamw", "weight_decay",
            "batch_size", "seed"}`` plus ``"momentum"`` for SGD; optional ``"width"``,
            ``"betas"``/``"eps"`` (Adam/AdamW; torch's defaults when absent), ``"threads"``
            (1). Or ``{"heldout": NAME, "seed"}`` (optional ``"threads"``) for a task of
            ``benchmarks.heldout_tasks.TASKS``.
        timeout: seconds before the runner is killed.

    Returns:
        ``{"peer", "suggestions": {name: lr or None}, "updates": optimizer steps taken,
        "lrs", "losses": the tool's own recorded (smoothed) curve, "raw_losses": the
        unsmoothed loss of every update, "batch_crcs": CRC-32 of every training batch the
        model saw, in order, "seconds": the tool's range test + suggestion, wall clock,
        "process_seconds": the whole runner incl. imports and data, "settings": the tool
        defaults in force (read from its signatures), "threads", "versions", "spec": the
        completed spec, "notes": early stops and such}``. Non-finite losses are ``null``.

    Raises:
        ValueError / TypeError: bad peer or spec (names the field and what is allowed).
        PeerError: the runner failed or its venv is missing.

    Example (takes a few seconds, needs benchmarks/peers_env.sh):
        >>> r = peer_suggestions("torch-lr-finder", {"dataset": "digits", "model": "mlp",
        ...     "optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4,
        ...     "batch_size": 64, "seed": 0})  # doctest: +SKIP
        >>> sorted(r["suggestions"])  # doctest: +SKIP
        ['steepest']
    """
    if peer not in PEERS:
        raise ValueError(f"peer = {peer!r}: allowed {sorted(PEERS)}")
    spec = normalise_spec(spec)
    python = peer_python(peer)
    if not Path(python).exists():
        raise PeerError(f"{peer}: no interpreter at {python}; run: bash benchmarks/peers_env.sh")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["MPLBACKEND"] = "Agg"
    threads = str(spec["threads"])
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    start = time.perf_counter()
    proc = subprocess.run(
        [python, "-m", PEERS[peer]],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=timeout,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
        hint = ""
        if "ModuleNotFoundError" in proc.stderr:
            hint = "\n(missing package? run: bash benchmarks/peers_env.sh)"
        raise PeerError(f"{peer} runner exited {proc.returncode}:\n{tail}{hint}")
    try:
        payload: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise PeerError(f"{peer} runner printed no result JSON: {proc.stdout[-500:]!r}") from exc
    payload["process_seconds"] = elapsed
    return payload
