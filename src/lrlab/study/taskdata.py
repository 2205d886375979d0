"""From a study's ``[task]`` to a `Task`: the one path bundled and user tasks share.

A bundled task (``data`` and ``model``) is the entry point ``BUNDLED[data]`` with the
bundled options; an ``entry`` is imported; a factory handed over from Python is used as
it is. Each is called once per process (its data reused by the trials of that process;
the model is built fresh per trial), then ``holdout`` carves validation out of training:
by default 10% when the task's validation split is its test split (every bundled task),
so that tuning never reads the test set; a task with a validation split of its own keeps
it unless ``holdout`` is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lrlab.study.config import TaskConfig
from lrlab.tasks import BUNDLED, Task, call_factory, holdout, load_entry
from lrlab.tasks.entry import describe
from lrlab.tasks.metrics import CLASSIFICATION, MetricSet

_TASKS: dict[str, Task] = {}
_SPLITS: dict[str, dict[str, Any]] = {}
#: The fraction held out when ``holdout`` is not given and validation is the test split.
DEFAULT_HOLDOUT = 0.1


def factory_of(
    cfg: TaskConfig, factory: Callable[..., Task] | None = None
) -> tuple[Callable[..., Task], dict[str, Any], str]:
    """``(factory, options, where)``: what builds the task, its keyword options, its name."""
    if factory is not None:
        return factory, dict(cfg.options), describe(factory)
    if cfg.entry is not None:
        return load_entry(cfg.entry), dict(cfg.options), cfg.entry
    assert cfg.data is not None and cfg.model is not None
    options = {
        "model": cfg.model,
        "width": cfg.width,
        "data_options": dict(cfg.data_options),
        "train_subset": cfg.train_subset,
        "downsample": cfg.downsample,
    }
    return BUNDLED[cfg.data], options, f"data={cfg.data!r}"


def _key(cfg: TaskConfig, factory: Callable[..., Task] | None) -> str:
    _, options, where = factory_of(cfg, factory)
    return json.dumps(
        [where, id(factory) if factory is not None else None, options, cfg.holdout],
        sort_keys=True,
        default=repr,
    )


def build_task(cfg: TaskConfig, factory: Callable[..., Task] | None = None) -> Task:
    """The task a study's ``[task]`` names (cached per process)."""
    key = _key(cfg, factory)
    if key not in _TASKS:
        fn, options, where = factory_of(cfg, factory)
        task = call_factory(fn, options, where)
        val_is_test = task.test is not None and task.test is task.val
        fraction = cfg.holdout
        if fraction is None:
            fraction = DEFAULT_HOLDOUT if val_is_test else 0.0
        if fraction > 0:
            task = holdout(task, fraction, seed=0)
        _TASKS[key] = task
        _SPLITS[key] = {
            "holdout": fraction,
            "seed": 0,
            "validation": f"{fraction:g} of training, seeded, stratified by class"
            if fraction > 0
            else ("the test split" if val_is_test else "the task's own validation split"),
            "tuning_saw_test": fraction == 0 and val_is_test,
            "val_examples": len(task.val) if hasattr(task.val, "__len__") else None,
        }
    return _TASKS[key]


def split_of(cfg: TaskConfig, factory: Callable[..., Task] | None = None) -> dict[str, Any]:
    """Which split validation is for this ``[task]``: the fraction held out of training,
    whether tuning read the test split, how many validation examples."""
    build_task(cfg, factory)
    return dict(_SPLITS[_key(cfg, factory)])


def metric_set(cfg: TaskConfig, factory: Callable[..., Task] | None = None) -> MetricSet:
    """The metrics a study of this task records; a bundled task's without loading its data."""
    if cfg.bundled and factory is None:
        return CLASSIFICATION
    return build_task(cfg, factory).metric_set


def check_targets(metrics: MetricSet, targets: dict[str, float], task: str) -> None:
    """Targets must name metrics the task records (checked when its metrics are known)."""
    bad = sorted(set(targets) - set(metrics.targets))
    if bad:
        raise ValueError(
            f"targets: unknown metric(s) {', '.join(bad)} for task {task}; "
            f"it records: {', '.join(metrics.targets)}"
        )
