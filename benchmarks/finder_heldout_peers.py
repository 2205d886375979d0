"""The real peer LR finders on the held-out tasks, for ``benchmarks/finder_heldout.py``.

Lightning's ``Tuner(trainer).lr_find`` and ``suggestion()`` at their defaults,
torch-lr-finder (``range_test(loader)`` at its defaults: exponential to 10 in 100 steps, its
``plot(suggest_lr=True)`` steepest-gradient suggestion) and fastai's ``Learner.lr_find``
(its four suggest funcs) run through ``benchmarks/peers`` on ``{"heldout": task, "seed": s}``:
the same initial weights, optimizer (lrlab's param groups), loss and batch order as lrlab's
finder (see ``benchmarks/peers/_heldout.py``); fastai in its own venv (another torch).

Each peer's result per seed is cached in the task's JSON under ``"peers"`` (a rerun does not
recompute it). A peer that is not installed is left out, with one printed line; a peer run
that fails is kept as a pick of None (it trains nothing), flagged, with its error.
"""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from benchmarks.peers import PeerError, peer_python, peer_suggestions

FASTAI_RULES = ("valley", "steep", "minimum", "slide")
KEEP = ("suggestions", "updates", "seconds", "process_seconds", "versions", "notes", "settings")
_told: set[str] = set()  # peers whose absence was already printed


def missing(peer: str) -> str | None:
    """Why ``peer`` cannot run here, or None when it can."""
    if peer == "torch-lr-finder" and importlib.util.find_spec("torch_lr_finder") is None:
        return "torch-lr-finder is not installed in this venv (bash benchmarks/peers_env.sh)"
    if peer == "lightning" and importlib.util.find_spec("pytorch_lightning") is None:
        return "pytorch-lightning is not installed in this venv (pip install -e '.[lightning]')"
    if peer == "fastai" and not Path(peer_python("fastai")).exists():
        return f"no fastai venv at {peer_python('fastai')} (bash benchmarks/peers_env.sh)"
    return None


def _run(peer: str, task: str, seed: int) -> dict[str, Any]:
    try:
        r = peer_suggestions(peer, {"heldout": task, "seed": seed})
    except PeerError as exc:
        line = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        print(f"   {peer} on {task} seed {seed} failed: {line}", flush=True)
        return {"error": str(exc)[-2000:]}
    return {k: r[k] for k in KEEP}


def _rows(peer: str, entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Finder rows as ``run_task`` reads them: pick, flag (never, for a tool that cannot
    say it is unsure; a failed run is flagged), updates."""
    failed = "error" in entry
    sug = entry.get("suggestions", {})
    updates = entry.get("updates", 0)
    names = {
        "torch-lr-finder": {"torch-lr-finder": "steepest"},
        "lightning": {"lightning": "steepest"},
    }.get(peer, {f"fastai:{rule}": rule for rule in FASTAI_RULES})
    return {
        row: {"lr": sug.get(name), "flagged": failed, "updates": updates}
        for row, name in names.items()
    }


def peer_rows(
    task: str,
    seeds: list[int],
    cache: dict[str, Any],
    save: Callable[[], None],
    *,
    run: bool = True,
) -> dict[int, dict[str, dict[str, Any]]]:
    """Per seed, the rows of every peer that has a result for all ``seeds``: cached ones
    from ``cache["peers"]``, the rest computed (when ``run``) and cached (``save()``)."""
    store = cache.setdefault("peers", {})
    out: dict[int, dict[str, dict[str, Any]]] = {s: {} for s in seeds}
    for peer in ("lightning", "torch-lr-finder", "fastai"):
        done = store.setdefault(peer, {})
        todo = [s for s in seeds if str(s) not in done]
        why = missing(peer) if todo and run else None
        if why and peer not in _told:
            print(f"   {peer} left out: {why}", flush=True)
            _told.add(peer)
        for s in todo if run and not why else []:
            done[str(s)] = _run(peer, task, s)
            save()
        if all(str(s) in done for s in seeds):
            for s in seeds:
                out[s] |= _rows(peer, done[str(s)])
    return out


def peer_versions() -> dict[str, str]:
    """Versions of the real peers as installed now: the dev venv's (metadata) and the fastai
    venv's (its interpreter asked); "not installed" where absent."""
    out = {}
    for dist in ("torch-lr-finder", "pytorch-lightning", "torch"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    python = peer_python("fastai")
    out["fastai"] = out["fastai torch"] = "not installed"
    if Path(python).exists():
        code = "from importlib.metadata import version as v; print(v('fastai'), v('torch'))"
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
        if proc.returncode == 0 and len(proc.stdout.split()) == 2:
            out["fastai"], out["fastai torch"] = proc.stdout.split()
    return out
