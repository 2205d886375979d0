"""From a study config to trials (arms x seeds), and from an arm to concrete schedules.

Schedules in study files may leave out what only the trial knows: the number of
updates (``total``), counts in epochs (``"4 epochs"``) and, with a range test, the LR
bounds. `materialize` fills those in and builds the `Schedule`; the result is stored
with the trial, so every stored number can be traced to an exact schedule.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from lrlab.schedules import Schedule, bound_fields, bounds_reading, spec_to_dict, with_total
from lrlab.study.config import EPOCHS, SHARE, StudyConfig


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to run one arm with one seed (picklable, JSON-ready).

    ``task`` is a task factory handed over from Python (`lrlab.study.run(..., task=f)`);
    it travels with the spec (pickled by reference to worker processes, by value to Ray)
    instead of being imported from the config's ``task.entry``.
    """

    id: str
    study: str
    arm: str
    seed: int
    config: dict[str, Any]
    config_hash: str
    checkpoint_dir: str
    task: Any = field(default=None, compare=False)


def config_hash(obj: Any) -> str:
    """A short stable hash of a JSON-ready object."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def trial_config(study: StudyConfig, arm_name: str, seed: int) -> dict[str, Any]:
    """The resolved configuration of one trial: task (with the arm's overrides), optimizer, arm."""
    arm = next(a for a in study.arms if a.name == arm_name)
    task = study.task.model_dump(mode="json")
    if arm.epochs is not None:
        task["epochs"] = arm.epochs
    if arm.batch_size is not None:
        task["batch_size"] = arm.batch_size
    optimizer = (arm.optimizer or study.optimizer).model_dump(mode="json")
    return {
        "task": task,
        "optimizer": optimizer,
        "arm": arm.model_dump(mode="json", exclude={"optimizer", "epochs", "batch_size"}),
        "seed": seed,
        "targets": dict(study.targets),
    }


def trial_hash(cfg: dict[str, Any]) -> str:
    """The identity of a trial: a hash of the settings that differ from their defaults.

    Hashing only non-default settings keeps a study resumable when a later lrlab adds a
    setting with a default: trials that do not use it keep their identity.
    """
    from lrlab.study.config import ArmConfig, OptimizerConfig, TaskConfig

    task = TaskConfig.model_validate(cfg["task"])
    minimal = {
        "task": _hashed_task(task),
        "optimizer": OptimizerConfig.model_validate(cfg["optimizer"]).model_dump(
            mode="json", exclude_defaults=True
        ),
        "arm": ArmConfig.model_validate(cfg["arm"]).model_dump(mode="json", exclude_defaults=True),
        "seed": cfg["seed"],
        "targets": cfg.get("targets") or {},
    }
    return config_hash(minimal)


#: The batch size every bundled task had before each took its own default: trial hashes
#: made then left it out, so it is still left out and old studies keep resuming.
_OLD_DEFAULT_BATCH = 100


def _hashed_task(task: Any) -> dict[str, Any]:
    """The task's non-default settings, with a bundled task's batch size as resolved."""
    out: dict[str, Any] = task.model_dump(mode="json", exclude_defaults=True)
    if task.bundled:
        from lrlab.tasks.bundled import DEFAULT_BATCH

        size = task.batch_size or DEFAULT_BATCH[task.data]
        out.pop("batch_size", None)
        if size != _OLD_DEFAULT_BATCH:
            out["batch_size"] = size
    return out


def expand(study: StudyConfig, checkpoint_root: str) -> list[TrialSpec]:
    """Arms x seeds, in arm-major order, each with its checkpoint directory."""
    out = []
    for arm in study.arms:
        for seed in study.seeds:
            cfg = trial_config(study, arm.name, seed)
            tid = f"{arm.name}@seed{seed}"
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in tid)
            out.append(
                TrialSpec(
                    tid,
                    study.name,
                    arm.name,
                    seed,
                    cfg,
                    trial_hash(cfg),
                    f"{checkpoint_root}/{safe}-{trial_hash(cfg)[:8]}",
                )
            )
    return out


# ---------------------------------------------------------------------- schedules


def count(value: int | str, iters_per_epoch: int, total: int | None = None) -> int:
    """An update count from an int or a string: ``"4 epochs"``, or ``"30%"`` of ``total``."""
    if isinstance(value, str):
        m = EPOCHS.match(value)
        if m:
            return max(1, round(float(m.group(1)) * iters_per_epoch))
        share = SHARE.match(value)
        if share and total is not None:
            return max(1, round(float(share.group(1)) / 100 * total))
        raise ValueError(f"{value!r} is not a count; expected an integer, 'N epochs' or 'N%'")
    return int(value)


def _epochs_to_updates(obj: Any, iters_per_epoch: int, total: int) -> Any:
    if isinstance(obj, str) and (EPOCHS.match(obj) or SHARE.match(obj)):
        return count(obj, iters_per_epoch, total)
    if isinstance(obj, list):
        return [_epochs_to_updates(v, iters_per_epoch, total) for v in obj]
    if isinstance(obj, dict):
        return {k: _epochs_to_updates(v, iters_per_epoch, total) for k, v in obj.items()}
    return obj


def materialize(
    spec: str | dict[str, Any],
    *,
    total: int,
    iters_per_epoch: int,
    bounds: dict[str, float] | None = None,
) -> Schedule:
    """Build a schedule for a trial: fill ``total``, epoch counts and range-test bounds."""
    d = _epochs_to_updates(spec_to_dict(spec), iters_per_epoch, total)
    if bounds is not None:
        for field, key in bound_fields(d["kind"]).items():
            if field not in d and bounds.get(key) is not None:
                d[field] = int(bounds[key]) if key == "step_size" else float(bounds[key])
    return Schedule.from_dict(with_total(d, total))


def bound_schedule(lr_spec: str | dict[str, Any], explicit: str | None) -> str:
    """Which range-test reading ('one_cycle', 'clr', 'constant') an LR schedule needs."""
    if explicit is not None:
        return explicit
    return bounds_reading(spec_to_dict(lr_spec)["kind"])
