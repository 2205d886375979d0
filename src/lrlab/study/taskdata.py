"""A task's data and device: the data set with its CPU-preset reductions (fixed training
subset, average-pooled images) and validation split, loaded once per process.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F

from lrlab.data import Dataset, load_dataset

_DATA: dict[str, tuple[Dataset, torch.Tensor, torch.Tensor]] = {}


def task_data(task: dict[str, Any]) -> tuple[Dataset, torch.Tensor, torch.Tensor]:
    """The data set and its validation split (the test set, or a fixed holdout of train)."""
    subset, down = task.get("train_subset"), task.get("downsample")
    key = repr((task["data"], sorted(task["data_options"].items()), task["holdout"], subset, down))
    if key not in _DATA:
        ds = load_dataset(task["data"], **task["data_options"])
        if subset is not None and subset < ds.n_train:
            # a fixed random subset (the same for every trial), for CPU-sized presets
            keep = torch.randperm(ds.n_train, generator=torch.Generator().manual_seed(20_201_017))
            keep = keep[:subset].sort().values
            ds = dataclasses.replace(ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep])
        if down is not None and down > 1:  # average-pool images once: CPU presets
            if ds.x_train.dim() != 4:
                raise ValueError(f"task.downsample needs image data; {task['data']} is not")
            ds = dataclasses.replace(
                ds, x_train=F.avg_pool2d(ds.x_train, down), x_test=F.avg_pool2d(ds.x_test, down)
            )
        if task["holdout"] > 0:
            ds, val = ds.holdout(task["holdout"], seed=0)
            _DATA[key] = (ds, val.x_test, val.y_test)
        else:
            _DATA[key] = (ds, ds.x_test, ds.y_test)
    return _DATA[key]


def task_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "task.device = 'cuda' but no CUDA device is available; use 'cpu' or 'auto'"
        )
    return torch.device(name)
