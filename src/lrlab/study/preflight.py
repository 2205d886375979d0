"""Checks a study must pass before its first trial starts (and before any data loads).

A setting that can only fail makes every trial fail the same way, after the data has
loaded and often after a range test; each is caught here instead, with one message
naming the setting, the value and what is allowed. These checks need no model: patterns
matched against parameter names are checked when the model exists.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

from lrlab.study.config import StudyConfig
from lrlab.study.optimizers import PACKAGES


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
                f"pip install {package}"
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


def preflight(study: StudyConfig, root: Path, checkpoint_root: Path, executor: Any) -> None:
    """Every check `run_study` makes before it takes the study directory."""
    from lrlab.study.executors import LocalExecutor

    check_devices(study, executor is None or isinstance(executor, LocalExecutor))
    check_packages(study)
    directories = [(root, "study directory (--dir)")]
    if checkpoint_root != root / "checkpoints":
        directories.append((checkpoint_root, "--checkpoint-dir"))
    directories += [d for d in check_tracking(study, root) if d[0] != root]
    for path, what in directories:  # nothing is created unless every path can be
        _not_under_a_file(path, what)
    for path, what in directories:
        usable_directory(path, what)
