"""`load_dataset`: one entry point for the benchmark tasks, with clear errors."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from lrlab.data._cifar10 import load_cifar10
from lrlab.data._dataset import Dataset
from lrlab.data._fashion_mnist import load_fashion_mnist
from lrlab.data._small import load_digits, load_mnist1d

DATASETS: tuple[str, ...] = ("fashion-mnist", "mnist1d", "digits", "cifar10")

# The keyword options each data set accepts; root and download matter only for files.
_OPTIONS: dict[str, tuple[str, ...]] = {
    "fashion-mnist": ("normalize",),
    "mnist1d": ("num_samples", "seed"),
    "digits": ("normalize",),
    "cifar10": ("normalize",),
}


def load_dataset(
    name: str, *, root: str | Path | None = None, download: bool = False, **options: Any
) -> Dataset:
    """Load a benchmark task into memory as a `Dataset` of standardised float32 tensors.

    * ``fashion-mnist``: (60000 | 10000, 1, 28, 28), from IDX files in ``root`` if given,
      else Debian's ``dataset-fashion-mnist`` package (/usr/share/datasets/fashion-mnist),
      else lrlab's cache dir (where ``download=True`` puts torchvision's copy).
    * ``mnist1d``: (4000 | 1000, 1, 40), generated offline (Greydanus, 2020).
    * ``digits``: (1438 | 359, 1, 8, 8), scikit-learn's bundled copy.
    * ``cifar10``: (50000 | 10000, 3, 32, 32), the python-version pickles under ``root``.

    Decoding happens once: a second call in the same process returns the same tensors
    (treat them as read-only), and Fashion-MNIST's decoded pixels are also kept as a
    ``.pt`` file under ``$LRLAB_CACHE`` (default ``~/.cache/lrlab``).

    Args:
        name: one of `DATASETS` (``_`` may stand for ``-``; case is ignored).
        root: directory of the data files (fashion-mnist, cifar10); ignored otherwise.
        download: fetch missing files with torchvision when it is installed.
        **options: ``normalize=False`` keeps pixels in [0, 1] (fashion-mnist, digits,
            cifar10); ``num_samples`` (5000) and ``seed`` (42) for mnist1d.

    Returns:
        The `Dataset`.

    Raises:
        ValueError: for an unknown name or option, or data that cannot be found (the
            message says how to get it).

    >>> ds = load_dataset("mnist1d")
    >>> ds.x_train.shape, ds.y_test.shape, ds.num_classes
    (torch.Size([4000, 1, 40]), torch.Size([1000]), 10)
    """
    if not isinstance(name, str):
        raise ValueError(f"dataset name={name!r} is invalid; expected one of {', '.join(DATASETS)}")
    key = name.strip().lower().replace("_", "-")
    if key not in DATASETS:
        close = difflib.get_close_matches(key, DATASETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown dataset {name!r}{hint}; expected one of {', '.join(DATASETS)}")
    allowed = _OPTIONS[key]
    for option in options:
        if option not in allowed:
            raise ValueError(
                f"{key}: unknown option {option!r}; allowed: {', '.join(allowed)}, root, download"
            )
    if "normalize" in options and not isinstance(options["normalize"], bool):
        raise ValueError(f"{key}: normalize={options['normalize']!r} is invalid; expected a bool")
    path = None if root is None else Path(root).expanduser()
    if key == "fashion-mnist":
        return load_fashion_mnist(path, download, **options)
    if key == "cifar10":
        return load_cifar10(path, download, **options)
    if key == "mnist1d":
        return load_mnist1d(**options)
    return load_digits(**options)
