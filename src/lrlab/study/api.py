"""`run`: a study from Python, with a study dict and your task factory, no TOML needed.

Worker processes are started with ``spawn`` (no forked torch thread pools), which
re-imports the script that started them. A script that calls `run` with several workers
at its top level would start the study again in every worker; `run` sees that before any
worker starts and says what to add (``if __name__ == "__main__":``) instead of failing
deep inside multiprocessing. A factory the workers cannot import (a lambda, a function
defined inside another, one typed into a notebook) is refused the same way.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import multiprocessing as mp
import pickle
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from lrlab.study.config import StudyConfig, parse_study
from lrlab.study.executors import Event, Executor, LocalExecutor
from lrlab.study.resolve import TrialSpec
from lrlab.study.runner import RunSummary, run_study
from lrlab.study.track_config import Tracker
from lrlab.tasks.entry import describe
from lrlab.tasks.task import Task

_GUARD = 'put the call under `if __name__ == "__main__":`'


class _WithTask:
    """An executor that hands each trial the task factory along with its spec."""

    def __init__(self, executor: Executor, factory: Callable[..., Task]) -> None:
        self.executor, self.factory = executor, factory

    def run(
        self, specs: list[TrialSpec], on_event: Callable[[Event], None]
    ) -> Iterator[dict[str, Any]]:
        with_task = [dataclasses.replace(s, task=self.factory) for s in specs]
        return self.executor.run(with_task, on_event)


def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    t = node.test
    sides = [t.left, *t.comparators]
    names = {s.id for s in sides if isinstance(s, ast.Name)}
    consts = {s.value for s in sides if isinstance(s, ast.Constant)}
    return (
        len(t.ops) == 1
        and isinstance(t.ops[0], ast.Eq)
        and names == {"__name__"}
        and (consts == {"__main__"})
    )


def unguarded_call() -> str | None:
    """``file:line`` when this call runs in the top-level code of the ``__main__`` script
    outside ``if __name__ == "__main__":`` (spawned workers would run it again), else None."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or not str(path).endswith(".py"):
        return None  # an interactive session or a frozen program: nothing is re-imported
    frame = inspect.currentframe()
    while frame is not None and not (
        frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>"
    ):
        frame = frame.f_back
    if frame is None:
        return None  # not called from the script's top level (a test runner, a library)
    line = frame.f_lineno
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        end = node.end_lineno or node.lineno
        if _is_main_guard(node) and node.lineno <= line <= end:
            return None
    return f"{Path(path).name}:{line}"


def _check_workers(workers: int, factory: Callable[..., Task] | None) -> None:
    if getattr(mp.current_process(), "_inheriting", False):
        # a worker re-importing the script that started it: say so instead of recursing
        raise RuntimeError(
            f"lrlab.study.run was called again while a worker process started; {_GUARD}"
        )
    where = unguarded_call()
    if where is not None:
        raise ValueError(
            f"{where}: lrlab.study.run(..., workers={workers}) at the top level of a script; "
            f"worker processes re-import the script and would run it again: {_GUARD}"
        )
    if factory is None:
        return
    if getattr(factory, "__module__", None) == "__main__" and not getattr(
        sys.modules.get("__main__"), "__file__", None
    ):
        raise ValueError(
            f"task={describe(factory)} is defined in an interactive session, which worker "
            "processes cannot import; define it in a module file and import it, or use workers=1"
        )
    try:
        pickle.dumps(factory)
    except (pickle.PicklingError, AttributeError, TypeError) as e:
        raise ValueError(
            f"task={describe(factory)} cannot be sent to worker processes ({e}); define it "
            "at the top level of a module (not a lambda or a function inside another), "
            "or use workers=1"
        ) from None


def _label(factory: Callable[..., Task]) -> str:
    """The factory's ``module:qualname`` when it reads as an entry point, else a stand-in."""
    text = describe(factory)
    if re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$", text):
        return text
    return "python:task_factory"


def _study_of(
    study: StudyConfig | Mapping[str, Any],
    factory: Callable[..., Task] | None,
    preset: str | None,
) -> StudyConfig:
    if isinstance(study, StudyConfig):
        if preset is not None:
            raise ValueError("preset= applies to a study given as a dict (or a file)")
        if factory is None:
            return study
        if study.task.bundled:
            raise ValueError(
                "task= and the study's task.data/model name two tasks; give one of them"
            )
        data: dict[str, Any] = study.model_dump(mode="json")
    elif isinstance(study, Mapping):
        data = dict(study)
    else:
        raise TypeError(
            f"study={type(study).__name__} is invalid; expected a dict or a StudyConfig"
        )
    if factory is not None:
        task = dict(data.get("task") or {})
        if isinstance(study, Mapping) and any(task.get(k) for k in ("data", "model", "entry")):
            raise ValueError(
                "task= and the study's task.data/model/entry name two tasks; give one of them"
            )
        task.update(entry=_label(factory), data=None, model=None)
        data["task"] = task
    return parse_study(data, preset)


def run(
    study: StudyConfig | Mapping[str, Any],
    directory: str | Path | None = None,
    *,
    task: Callable[..., Task] | None = None,
    workers: int = 1,
    executor: Executor | None = None,
    preset: str | None = None,
    on_event: Callable[[Event], None] | None = None,
    checkpoint_root: str | Path | None = None,
    tracker: Tracker | None = None,
) -> RunSummary:
    """Run (or resume) a study from Python: the same trials, store and resume as the CLI.

    Args:
        study: the study as a dict (a parsed study TOML) or a `StudyConfig`.
        directory: where ``study.db`` and checkpoints go (default ``runs/<name>``).
        task: your task factory, called with the study's ``task.options``; it returns an
            `lrlab.Task`. Instead of naming the task in the study (``data``/``model`` or
            ``entry``). With ``workers > 1`` it must be importable by worker processes:
            define it at the top level of a module or of the script.
        workers: trials at once: this process and ``workers - 1`` new processes (call `run` under
            ``if __name__ == "__main__":`` in a script).
        executor: another executor (e.g. `lrlab.study.ray_executor.RayExecutor`) instead
            of local workers.
        preset: a ``presets`` table of the study dict to apply.
        on_event: called with progress events (plan, start, epoch, done).
        checkpoint_root: where trial checkpoints go (default ``directory/checkpoints``).
        tracker: an experiment tracker for a study with a ``track`` table
            (``lrlab.integrations.tracking.tracker_for(config.track)``).

    Returns:
        The `RunSummary`; ``lrlab.report.study_report.write_report(summary.directory)``
        writes the report.

    Example:
        >>> import tempfile, torch
        >>> from torch.utils.data import TensorDataset
        >>> from lrlab import Task
        >>> def line(n: int = 64) -> Task:
        ...     x = torch.linspace(-1, 1, n).unsqueeze(1)
        ...     data = TensorDataset(x, 3 * x)
        ...     return Task(lambda: torch.nn.Linear(1, 1), data, data,
        ...                 torch.nn.functional.mse_loss, batch_size=16)
        >>> summary = run({"name": "line", "seeds": [0], "task": {"epochs": 2},
        ...                "arms": [{"name": "sgd", "lr": "constant(level=0.1)"}]},
        ...               tempfile.mkdtemp(), task=line)
        >>> summary.ran, summary.failed
        (1, [])
    """
    if task is not None and not callable(task):
        raise TypeError(f"task={task!r} is not callable; expected a function returning a Task")
    if executor is not None and workers != 1:
        raise ValueError("give workers= (local processes) or executor=, not both")
    if executor is None:
        executor = LocalExecutor(workers)
        if workers > 1:
            _check_workers(workers, task)
    cfg = _study_of(study, task, preset)
    if task is not None:
        executor = _WithTask(executor, task)
    out = Path(directory) if directory is not None else Path("runs") / cfg.name
    return run_study(
        cfg,
        out,
        preset=preset,
        executor=executor,
        on_event=on_event,
        checkpoint_root=checkpoint_root,
        tracker=tracker,
    )
