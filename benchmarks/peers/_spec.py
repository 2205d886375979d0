"""The task spec every peer runner receives: validated and completed once, in the caller.

A spec is a JSON-serialisable dict naming either a bundled task or a held-out one.

Bundled: required ``dataset``, ``model``, ``optimizer`` (``"sgd"`` | ``"adam"`` |
``"adamw"``), ``weight_decay``, ``batch_size``, ``seed``; ``momentum`` too for SGD. Optional:
``width`` (passed to ``build_model`` only when given), ``betas`` and ``eps`` for Adam/AdamW
(when absent, the defaults of the installed ``torch.optim.Adam``/``AdamW`` are written into
the spec, so the fastai venv's Adam gets the very numbers the torch side uses), ``threads``
(torch intra-op threads in the runner; 1 when absent).

Held-out: ``{"heldout": NAME, "seed": int}`` (optional ``threads``), NAME a key of
``benchmarks.heldout_tasks.TASKS``. The task fixes model, data, batch size, loss and
optimizer, so a held-out spec takes no other field (see ``_heldout``).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

OPTIMIZERS = ("sgd", "adam", "adamw")
DEFAULT_THREADS = 1  # one thread: runs are comparable whatever else the machine is doing
_KNOWN = {
    "dataset",
    "model",
    "width",
    "optimizer",
    "momentum",
    "weight_decay",
    "betas",
    "eps",
    "batch_size",
    "seed",
    "threads",
}
_HELDOUT_KNOWN = {"heldout", "seed", "threads"}


def _number(spec: dict[str, Any], name: str, *, low: float, integer: bool = False) -> None:
    value = spec[name]
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        what = "an integer" if integer else "a finite number"
        raise TypeError(f"spec[{name!r}] = {value!r}: must be {what}")
    if value < low:
        raise ValueError(f"spec[{name!r}] = {value!r}: must be >= {low}")


def normalise_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Check a spec and return a completed copy (the one every runner and result carries).

    Raises:
        TypeError / ValueError: naming the field, its value and what is allowed.

    Example:
        >>> s = normalise_spec({"dataset": "digits", "model": "mlp", "optimizer": "adamw",
        ...                     "weight_decay": 0.01, "batch_size": 64, "seed": 0})
        >>> s["betas"], s["eps"], s["threads"]
        ([0.9, 0.999], 1e-08, 1)
    """
    if not isinstance(spec, dict):
        raise TypeError(f"spec must be a dict (JSON object), got {type(spec).__name__}")
    if "heldout" in spec:
        return _normalise_heldout(spec)
    unknown = sorted(set(spec) - _KNOWN)
    if unknown:
        raise ValueError(f"spec has unknown fields {unknown}; allowed: {sorted(_KNOWN)}")
    out = dict(spec)
    required = ["dataset", "model", "optimizer", "weight_decay", "batch_size", "seed"]
    if out.get("optimizer") == "sgd":
        required.append("momentum")
    missing = [name for name in required if name not in out]
    if missing:
        raise ValueError(f"spec lacks {missing}; required: {required}")
    for name in ("dataset", "model"):
        if not isinstance(out[name], str) or not out[name]:
            raise TypeError(f"spec[{name!r}] = {out[name]!r}: must be a non-empty string")
    if out["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"spec['optimizer'] = {out['optimizer']!r}: allowed {list(OPTIMIZERS)}")
    _number(out, "weight_decay", low=0.0)
    _number(out, "batch_size", low=1, integer=True)
    _number(out, "seed", low=0, integer=True)
    out.setdefault("threads", DEFAULT_THREADS)
    _number(out, "threads", low=1, integer=True)
    if "width" in out:
        _number(out, "width", low=0.0)
    if out["optimizer"] == "sgd":
        _number(out, "momentum", low=0.0)
        for name in ("betas", "eps"):
            if name in out:
                raise ValueError(f"spec[{name!r}] is for Adam/AdamW; optimizer is 'sgd'")
    else:
        if "momentum" in out:
            raise ValueError(f"spec['momentum'] is for SGD; {out['optimizer']!r} takes 'betas'")
        torch_defaults = _adam_defaults(out["optimizer"])
        out["betas"] = [float(b) for b in out.get("betas", torch_defaults["betas"])]
        out.setdefault("eps", torch_defaults["eps"])
        if len(out["betas"]) != 2 or not all(0.0 <= b < 1.0 for b in out["betas"]):
            raise ValueError(f"spec['betas'] = {out['betas']!r}: two numbers in [0, 1)")
        _number(out, "eps", low=0.0)
    return out


def _normalise_heldout(spec: dict[str, Any]) -> dict[str, Any]:
    """``{"heldout", "seed", "threads"}`` only: the held-out task fixes everything else."""
    from benchmarks.heldout_tasks import TASKS  # here: it imports torch

    extra = sorted(set(spec) - _HELDOUT_KNOWN)
    if extra:
        raise ValueError(
            f"spec has fields {extra} that a heldout spec does not take (the task fixes "
            f"them); allowed: {sorted(_HELDOUT_KNOWN)}"
        )
    if "seed" not in spec:
        raise ValueError("spec lacks ['seed']; required: ['heldout', 'seed']")
    out = dict(spec)
    if not isinstance(out["heldout"], str) or out["heldout"] not in TASKS:
        raise ValueError(f"spec['heldout'] = {out['heldout']!r}: allowed {sorted(TASKS)}")
    _number(out, "seed", low=0, integer=True)
    out.setdefault("threads", DEFAULT_THREADS)
    _number(out, "threads", low=1, integer=True)
    return out


def _adam_defaults(name: str) -> dict[str, Any]:
    import torch  # here, so importing the package stays cheap

    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    params = inspect.signature(cls).parameters
    return {"betas": list(params["betas"].default), "eps": params["eps"].default}
