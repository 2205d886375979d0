"""The study harness: configs, trials, the trainer, the results store, executors, resume.

`run` runs a study from Python (a dict or a `StudyConfig`, and optionally your task
factory); `run_study` is the same for a validated study and an executor.
"""

from lrlab.study.api import run
from lrlab.study.config import StudyConfig, TaskConfig, load_study, parse_study
from lrlab.study.executors import Executor, LocalExecutor
from lrlab.study.resolve import TrialSpec, expand, materialize
from lrlab.study.runner import RunSummary, run_study
from lrlab.study.store import StudyStore, TrialRow

__all__ = [
    "Executor",
    "LocalExecutor",
    "RunSummary",
    "StudyConfig",
    "StudyStore",
    "TaskConfig",
    "TrialRow",
    "TrialSpec",
    "expand",
    "load_study",
    "materialize",
    "parse_study",
    "run",
    "run_study",
]
