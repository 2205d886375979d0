"""What a tracker logs for one trial (`TrialLog`), from its spec and its result; pure, so
that both trackers log the same names and steps (described in `lrlab.integrations.tracking`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lrlab.study.resolve import TrialSpec

__all__ = ["TrialLog", "run_key", "trial_log"]

Param = str | int | float | bool
#: The store's per-evaluation copies of what the per-update series hold exactly.
_PER_UPDATE = ("lr", "momentum")


@dataclass
class TrialLog:
    """What one trial's run holds (one value per update in ``updates``: step = index)."""

    name: str
    key: str
    status: str
    params: dict[str, Param] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    updates: dict[str, list[float]] = field(default_factory=dict)
    evaluations: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    last_step: int = 0


def run_key(directory: Path, name: str = "") -> str:
    """The identity of a study's run (``name=""``) or of one trial's, for finding it again.

    >>> run_key(Path("/runs/s"), "1cycle@seed0") == run_key(Path("/runs/s"), "1cycle@seed0")
    True
    """
    return hashlib.sha256(f"{directory}\n{name}".encode()).hexdigest()[:16]


def _flatten(prefix: str, value: Any, out: dict[str, Param]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = json.dumps(value)
    elif value is not None:
        out[prefix] = value


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def trial_log(
    spec: TrialSpec, result: dict[str, Any], directory: Path, provenance: dict[str, str]
) -> TrialLog:
    """The parameters, series and summary a tracker logs for ``result`` (see the module).

    >>> from lrlab.study.resolve import TrialSpec
    >>> spec = TrialSpec("a@seed0", "s", "a", 0, {"seed": 0, "arm": {"lr": "one_cycle()"}},
    ...                  "abc", "/ckpt")
    >>> result = {"id": "a@seed0", "status": "done", "updates": 2, "final": {"val_top1": 0.5},
    ...     "history": [{"step": 2, "epoch": 1.0, "val_top1": 0.5, "lr": 0.1}],
    ...     "trace": {"lr": [0.1, 0.2]}}
    >>> log = trial_log(spec, result, Path("/runs/s"), {})
    >>> log.params["arm.lr"], log.updates["lr"], log.evaluations
    ('one_cycle()', [0.1, 0.2], {'val_top1': [(2, 0.5)], 'epoch': [(2, 1.0)]})
    >>> log.final
    {'val_top1': 0.5, 'updates': 2}
    """
    from lrlab.schedules import Schedule

    final = result.get("final") or {}
    params: dict[str, Param] = {}
    _flatten("", spec.config, params)
    for name, d in (final.get("schedules") or {}).items():
        if d is not None:
            params[f"resolved.{name}"] = Schedule.from_dict(d).to_spec()
    _flatten("bounds", final.get("bounds"), params)
    for key in ("iters_per_epoch", "total_updates"):
        if final.get(key) is not None:
            params[key] = final[key]
    params.update(
        {
            "trial.id": spec.id,
            "trial.arm": spec.arm,
            "trial.seed": spec.seed,
            "trial.config_hash": spec.config_hash,
            "study.name": spec.study,
        }
    )
    evaluations: dict[str, list[tuple[int, float]]] = {}
    epochs: dict[int, float] = {}  # evaluation and instrument rows share steps
    for row in result.get("history") or []:
        step = int(row["step"])
        for name, v in row.items():
            if name == "epoch" and _number(v):
                epochs[step] = float(v)
            elif name != "step" and _number(v) and name.split("/")[0] not in _PER_UPDATE:
                evaluations.setdefault(name, []).append((step, float(v)))
    if epochs:
        evaluations["epoch"] = sorted(epochs.items())
    summary: dict[str, float] = {k: float(v) for k, v in final.items() if _number(v)}
    for k in ("iters_per_epoch", "total_updates"):
        summary.pop(k, None)
    for k, v in (final.get("updates_to_target") or {}).items():
        if _number(v):
            summary[f"updates_to_target/{k}"] = float(v)
    for k in ("updates", "tuning_updates", "seconds"):
        if _number(result.get(k)):
            summary[k] = result[k]
    tags = {
        "lrlab.trial": spec.id,
        "lrlab.arm": spec.arm,
        "lrlab.status": result["status"],
        "lrlab.config_hash": spec.config_hash,
        "lrlab.study_dir": str(directory),
        **{f"lrlab.{k}": v for k, v in provenance.items()},
    }
    if result.get("error"):
        tags["lrlab.error"] = str(result["error"])[:5000]
    return TrialLog(
        name=spec.id,
        key=run_key(directory, spec.id),
        status=result["status"],
        params=params,
        tags=tags,
        updates=dict(result.get("trace") or {}),
        evaluations=evaluations,
        final=summary,
        last_step=int(result.get("updates") or 0),
    )
