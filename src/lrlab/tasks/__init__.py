"""Tasks: the contract between a model with its data and everything lrlab does with them.

A `Task` holds a model factory, training and validation ``Dataset``s, a loss, optional
metrics (`Metric`) and an optional ``step`` for any batch structure. Studies, resume,
reports, searches and ``lrlab find`` see nothing else, so a user's task (named by an entry
point, ``"package.module:function"`` or ``"path/to/file.py:function"``) and the bundled
benchmarks (`BUNDLED`) take one path. `TaskData` batches a task for one trial.

>>> import torch
>>> from torch.utils.data import TensorDataset
>>> from lrlab.tasks import Metric, Task
>>> x, y = torch.randn(40, 3), torch.randn(40, 1)
>>> mae = Metric("mae", lambda out, t: (out - t).abs().mean(dim=1), higher_is_better=False)
>>> task = Task(lambda: torch.nn.Linear(3, 1), TensorDataset(x[:30], y[:30]),
...             TensorDataset(x[30:], y[30:]), torch.nn.functional.mse_loss, metrics=[mae])
>>> task.metric_set.primary.name
'val_mae'
"""

from lrlab.tasks.bundled import ACCURACY, BUNDLED, DEFAULT_BATCH, TOP5_ACCURACY, classification
from lrlab.tasks.data import TaskData, device_of, holdout
from lrlab.tasks.entry import call_factory, load_entry, split_entry
from lrlab.tasks.metrics import CLASSIFICATION, Metric, MetricSet
from lrlab.tasks.task import Task

__all__ = [
    "ACCURACY",
    "BUNDLED",
    "CLASSIFICATION",
    "DEFAULT_BATCH",
    "TOP5_ACCURACY",
    "Metric",
    "MetricSet",
    "Task",
    "TaskData",
    "call_factory",
    "classification",
    "device_of",
    "holdout",
    "load_entry",
    "split_entry",
]
