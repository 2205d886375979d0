"""CIFAR-10 (Krizhevsky, 2009) from its "python version" files.

Layout of ``cifar-10-batches-py/``: ``data_batch_1`` ... ``data_batch_5`` and
``test_batch`` are pickled dicts with ``b"data"``, a uint8 array of shape (10000, 3072)
whose rows hold the 1024 red, then green, then blue values of a 32x32 image in row-major
order, and ``b"labels"``, a list of ints in 0..9; ``batches.meta`` has ``b"label_names"``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrlab.data._cache import cache_dir, memoized, source_key
from lrlab.data._dataset import Dataset

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
# Per-channel pixel mean and standard deviation (population) of the 50,000 training
# images scaled to [0, 1]: 125.307/255, 122.950/255, 113.865/255 and 62.993/255, ...
MEAN = (0.49139968, 0.48215841, 0.44653091)
STD = (0.24703223, 0.24348513, 0.26158784)
CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# The only globals a CIFAR-10 pickle may name: numpy's array reconstruction (older and
# newer module paths) and the bytes constructor of protocol-2 pickles written by Python 3.
# Anything else is refused, so a planted file cannot run code.
_ALLOWED = {
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR-10 file")


def _unpickle(path: Path) -> dict[Any, Any]:
    with path.open("rb") as fh:
        try:
            data = _CifarUnpickler(fh, encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError) as e:
            raise ValueError(f"cifar10: {path} is not a CIFAR-10 batch file ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"cifar10: {path} does not hold a pickled dict")
    return data


def _batch_dir(root: Path) -> Path | None:
    for directory in (root / "cifar-10-batches-py", root):
        if all((directory / f).is_file() for f in (*TRAIN_FILES, TEST_FILE)):
            return directory
    return None


def _download(root: Path) -> None:
    try:
        from torchvision.datasets import CIFAR10
    except Exception:  # torchvision can fail at import time beside a mismatched torch
        return
    CIFAR10(str(root), train=True, download=True)


def _read_split(files: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for path in files:
        batch = _unpickle(path)
        if b"data" not in batch or b"labels" not in batch:
            raise ValueError(f"cifar10: {path} lacks the b'data' or b'labels' entry")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
            raise ValueError(
                f"cifar10: {path} holds data of shape {data.shape} and {len(labels)} labels; "
                "expected (N, 3072) uint8 and N labels"
            )
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def _class_names(directory: Path) -> tuple[str, ...]:
    meta = directory / META_FILE
    if not meta.is_file():
        return CLASSES
    names = _unpickle(meta).get(b"label_names")
    if not isinstance(names, list) or len(names) != len(CLASSES):
        return CLASSES
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def load_cifar10(
    root: Path | None = None, download: bool = False, *, normalize: bool = True
) -> Dataset:
    """CIFAR-10 as a `Dataset`: (50000, 3, 32, 32) train and (10000, 3, 32, 32) test.

    ``root`` (default ``<cache_dir>/cifar10``) holds ``cifar-10-batches-py/`` or is that
    directory. Pixels are scaled to [0, 1] and, when ``normalize``, standardised per
    channel with the training set's statistics (`MEAN`, `STD`).
    """
    root = root if root is not None else cache_dir() / "cifar10"
    directory = _batch_dir(root)
    if directory is None and download:
        _download(root)
        directory = _batch_dir(root)
    if directory is None:
        raise ValueError(
            f"cifar10: {', '.join((*TRAIN_FILES, TEST_FILE))} not found in {root} or "
            f"{root / 'cifar-10-batches-py'}; pass root= the directory holding the "
            "extracted python version (cifar-10-python.tar.gz from "
            "https://www.cs.toronto.edu/~kriz/cifar.html), or pass download=True with "
            'torchvision installed (pip install "lrlab[vision]")'
        )
    train_files = [directory / f for f in TRAIN_FILES]
    test_files = [directory / TEST_FILE]
    key = source_key("cifar10", [*train_files, *test_files])

    def build() -> Dataset:
        x_train, y_train = _read_split(train_files)
        x_test, y_test = _read_split(test_files)
        return Dataset(
            "cifar10",
            _images(x_train, normalize),
            y_train,
            _images(x_test, normalize),
            y_test,
            num_classes=10,
            classes=_class_names(directory),
        )

    return memoized(("cifar10", key, normalize), build)


def _images(pixels: torch.Tensor, normalize: bool) -> torch.Tensor:
    x = pixels.float().div_(255.0)
    if not normalize:
        return x
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)
