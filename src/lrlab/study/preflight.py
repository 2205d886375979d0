"""Checks a study must pass before its first trial starts (and before any data loads).

A setting that can only fail makes every trial fail the same way, after the data has
loaded and often after a range test; each is caught here instead, with one message
naming the setting, the value and what is allowed. Most need no model; `check_models`
then builds each arm's task and model once (where the trials run in this process or its
workers) to check what only the real model can tell: block and freeze patterns against
its parameter names, data options against the loader, and one training batch through the
model and loss.
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lrlab.study.config import StudyConfig
from lrlab.study.optimizers import PACKAGES
from lrlab.study.resolve import TrialSpec


def usable_directory(path: Path, what: str) -> None:
    """Create ``path`` if needed and check that a file can be written in it.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a-file"
    >>> _ = f.write_text("")
    >>> try:
    ...     usable_directory(f, "--checkpoint-dir")
    ... except ValueError as e:
    ...     print(str(e).endswith("is a file; expected a directory lrlab can write"))
    True
    """
    _not_under_a_file(path, what)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(
            f"{what} {str(path)!r} cannot be created ({e.strerror}); "
            "expected a directory lrlab can write"
        ) from None
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ValueError(
            f"{what} {str(path)!r} is not writable ({e.strerror}); "
            "expected a directory lrlab can write"
        ) from None


def _not_under_a_file(path: Path, what: str) -> None:
    """Refuse a path that is, or lies under, a file (checked before anything is created)."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a file; expected a directory lrlab can write")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(
                    f"{what} {str(path)!r} lies under the file {str(parent)!r}; "
                    "expected a directory lrlab can write"
                )
            return


def check_devices(study: StudyConfig, local: bool) -> None:
    """``device = "cuda"`` needs CUDA where the trials run (here, for a local executor)."""
    if not local or study.task.device != "cuda":
        return
    import torch

    if not torch.cuda.is_available():
        raise ValueError(
            "task.device='cuda' but this machine has no usable CUDA device "
            "(torch.cuda.is_available() is False); expected 'cpu' or 'auto', "
            "or run on GPU nodes with --executor ray --gpus-per-trial 1"
        )


def check_packages(study: StudyConfig) -> None:
    """Optimizers from other packages need those packages installed."""
    for i, arm in enumerate(study.arms):
        name = (arm.optimizer or study.optimizer).name
        package = PACKAGES.get(name)
        if package is not None and importlib.util.find_spec(package) is None:
            where = f"arms[{i}].optimizer.name" if arm.optimizer else "optimizer.name"
            raise ValueError(
                f"{where}={name!r} needs the {package!r} package, which is not installed: "
                f'pip install "lrlab[optimizers]" (or pip install {package})'
            )


def check_tracking(study: StudyConfig, root: Path) -> list[tuple[Path, str]]:
    """``[track]`` needs its backend's packages; returns the local directories it writes.

    >>> from lrlab.study.config import parse_study
    >>> study = parse_study({"name": "s", "task": {"data": "digits", "model": "mlp"},
    ...     "arms": [{"name": "a", "lr": "constant(level=0.1)"}],
    ...     "track": {"backend": "mlflow", "uri": "sqlite:////runs/s/m.db"}})
    >>> check_tracking(study, Path("/runs/s"))
    [(PosixPath('/runs/s'), 'track.uri')]
    """
    from lrlab.study.track_config import (
        INSTALL,
        PACKAGES,
        SQL_PACKAGES,
        resolved_uri,
        store_of,
    )

    track = study.track
    if track is None:
        return []
    uri = resolved_uri(track, root)
    kind, directory = store_of(track, uri)
    needed = PACKAGES[track.backend] + (SQL_PACKAGES if kind == "sql" else ())
    missing = [p for p in needed if importlib.util.find_spec(p) is None]
    if missing:
        what = f"track.backend={track.backend!r}" + (f" with uri={uri!r}" if kind == "sql" else "")
        raise ValueError(
            f"{what} needs the {', '.join(repr(p) for p in missing)} package(s), which are not "
            f"installed: {INSTALL}"
        )
    return [] if directory is None else [(directory, "track.uri")]


def check_models(specs: Sequence[TrialSpec]) -> None:
    """What only the real task and model can tell, checked once per distinct task and arm.

    The task is built as a trial builds it (and stays cached for this process's trials);
    the model is built under a forked RNG, so no trial's random stream moves.
    """
    from lrlab.study.arm import freeze_plan
    from lrlab.study.config import TrialConfig

    seen_tasks: dict[str, tuple[list[str], int]] = {}
    seen_arms: set[str] = set()
    for spec in specs:
        if spec.arm in seen_arms:
            continue
        seen_arms.add(spec.arm)
        cfg = TrialConfig.model_validate(spec.config)
        key = json.dumps([cfg.task.model_dump(mode="json"), repr(spec.task)], sort_keys=True)
        if key not in seen_tasks:
            seen_tasks[key] = _probe(cfg, spec)
        names, ipe = seen_tasks[key]
        plan = freeze_plan(cfg.arm.freeze, ipe, ipe * cfg.task.epochs)
        if plan is not None:
            try:
                plan.check(names)
            except ValueError as e:
                raise ValueError(f"arm {cfg.arm.name!r}: freeze: {e}") from None


def _probe(cfg: Any, spec: TrialSpec) -> tuple[list[str], int]:
    """Build the trial's task and model as a trial would, and push one batch through them;
    returns the model's parameter names and the task's updates per epoch."""
    import torch

    from lrlab.optim import param_groups
    from lrlab.study.taskdata import build_task
    from lrlab.tasks import TaskData
    from lrlab.tasks.data import device_of

    try:
        task = build_task(cfg.task, spec.task)
        data = TaskData(
            task, batch_size=cfg.task.batch_size, seed=spec.seed, device=device_of(cfg.task.device)
        )
    except ValueError:
        raise
    except Exception as e:  # the user's code: an import, a file, a shape
        raise ValueError(f"task could not be built: {_first_line(e)}") from None
    with torch.random.fork_rng(devices=[]):  # no trial's random stream moves
        torch.manual_seed(spec.seed)
        try:
            model = task.model().to(data.device)
        except Exception as e:
            raise ValueError(f"task: its model could not be built: {_first_line(e)}") from None
        _one_batch(model, data)
    try:
        param_groups(model, cfg.task.groups.by, cfg.task.groups.blocks)
    except ValueError as e:
        raise ValueError(f"task.groups: {e}") from None
    return [n for n, _ in model.named_parameters()], data.iters_per_epoch


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"


def _one_batch(model: Any, data: Any) -> None:
    """One training batch through the model and the task's loss, without a backward pass."""
    import torch

    batch = data.first_batches(1)[0]
    try:
        with torch.no_grad():
            loss = data.training_loss(model, batch)
    except Exception as e:
        raise ValueError(
            f"task: the first training batch fails in the model or loss: {_first_line(e)}"
        ) from None
    if loss.numel() != 1:
        raise ValueError(
            f"task: the loss of a training batch has shape {tuple(loss.shape)}; expected "
            "a single number (reduce it, e.g. with reduction='mean')"
        )


def preflight(
    study: StudyConfig,
    root: Path,
    checkpoint_root: Path,
    executor: Any,
    specs: Sequence[TrialSpec] | None = None,
) -> None:
    """Every check `run_study` makes before it takes the study directory.

    ``specs`` (the trials to run) adds `check_models` where the trials run here or in
    this machine's workers; on a cluster the data may live only on its nodes.
    """
    from lrlab.study.executors import LocalExecutor

    local = executor is None or isinstance(executor, LocalExecutor)
    check_devices(study, local)
    check_packages(study)
    directories = [(root, "study directory (--dir)")]
    if checkpoint_root != root / "checkpoints":
        directories.append((checkpoint_root, "--checkpoint-dir"))
    directories += [d for d in check_tracking(study, root) if d[0] != root]
    for path, what in directories:  # nothing is created unless every path can be
        _not_under_a_file(path, what)
    for path, what in directories:
        usable_directory(path, what)
    if specs is not None and local:
        check_models(specs)
