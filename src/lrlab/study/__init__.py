"""The study harness: configs, trials, the trainer, the results store, executors, resume."""

from lrlab.study.config import StudyConfig, load_study, parse_study
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
    "TrialRow",
    "TrialSpec",
    "expand",
    "load_study",
    "materialize",
    "parse_study",
    "run_study",
]
