"""Benchmark tasks held in memory, and fast, resumable mini-batching.

>>> from lrlab.data import load_dataset, batches
>>> ds = load_dataset("mnist1d")
>>> xb, yb = next(batches(ds.x_train, ds.y_train, 128, seed=0, epoch=0))
>>> tuple(xb.shape), yb.dtype
((128, 1, 40), torch.int64)
"""

from lrlab.data._batching import batches, epoch_order, num_batches, seeded_permutation
from lrlab.data._cache import cache_dir, clear_memory_cache
from lrlab.data._dataset import Dataset
from lrlab.data._load import DATASETS, load_dataset
from lrlab.data._mnist1d import make_mnist1d
from lrlab.data.idx import read_idx

__all__ = [
    "DATASETS",
    "Dataset",
    "batches",
    "cache_dir",
    "clear_memory_cache",
    "epoch_order",
    "load_dataset",
    "make_mnist1d",
    "num_batches",
    "read_idx",
    "seeded_permutation",
]
