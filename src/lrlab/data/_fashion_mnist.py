"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017; arXiv:1708.07747) from its IDX files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lrlab.data._cache import cache_dir, disk_cached, memoized, source_key
from lrlab.data._dataset import Dataset
from lrlab.data.idx import read_idx

# Where Debian's ``dataset-fashion-mnist`` package installs the four .gz files.
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# Pixel mean and standard deviation (population) of the 60,000 training images scaled to
# [0, 1], computed in float64 over all 47,040,000 pixels.
MEAN = 0.2860405969887955
STD = 0.35302424451492254
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _find_files(directory: Path) -> dict[str, Path] | None:
    found = {}
    for split, name in FILES.items():
        for candidate in (directory / f"{name}.gz", directory / name):
            if candidate.is_file():
                found[split] = candidate
                break
        else:
            return None
    return found


def _search_dirs(root: Path | None) -> list[Path]:
    # An explicit root wins; torchvision's downloads land in <root>/FashionMNIST/raw.
    if root is not None:
        return [root, root / "FashionMNIST" / "raw"]
    default = cache_dir() / "fashion-mnist"
    return [DEBIAN_DIR, default, default / "FashionMNIST" / "raw"]


def _download(target: Path) -> None:
    try:
        from torchvision.datasets import FashionMNIST
    except Exception:  # torchvision can fail at import time beside a mismatched torch
        return
    FashionMNIST(str(target), train=True, download=True)
    FashionMNIST(str(target), train=False, download=True)


def locate(root: Path | None, download: bool) -> dict[str, Path]:
    """The four IDX files: in ``root`` if given, else Debian's directory or lrlab's cache."""
    dirs = _search_dirs(root)
    for directory in dirs:
        files = _find_files(directory)
        if files is not None:
            return files
    if download:
        _download(root if root is not None else dirs[1])
        for directory in dirs:
            files = _find_files(directory)
            if files is not None:
                return files
    names = ", ".join(f"{n}[.gz]" for n in FILES.values())
    raise ValueError(
        f"fashion-mnist: IDX files not found in {', '.join(map(str, dirs))}; "
        "install them with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), "
        f"or pass root= a directory holding {names}, "
        'or pass download=True with torchvision installed (pip install "lrlab[vision]")'
    )


def _decode(files: dict[str, Path]) -> dict[str, torch.Tensor]:
    arrays = {split: read_idx(path) for split, path in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y) or x.dtype != np.uint8:
            raise ValueError(
                f"fashion-mnist: {files[f'x_{split}']} and {files[f'y_{split}']} do not hold "
                f"uint8 images (N, H, W) and N labels; got {x.dtype} {x.shape} and {y.shape}"
            )
    return {split: torch.from_numpy(a) for split, a in arrays.items()}


def load_fashion_mnist(
    root: Path | None = None, download: bool = False, *, normalize: bool = True
) -> Dataset:
    """Fashion-MNIST as a `Dataset`: (60000, 1, 28, 28) train and (10000, 1, 28, 28) test.

    Pixels are scaled to [0, 1] and, when ``normalize``, standardised with the training
    set's statistics (``MEAN = 0.28604``, ``STD = 0.35302``).
    """
    files = locate(root, download)
    key = source_key("fashion-mnist", list(files.values()))

    def build() -> Dataset:
        raw = disk_cached(key, lambda: _decode(files))
        return Dataset(
            "fashion-mnist",
            _images(raw["x_train"], normalize),
            raw["y_train"].long(),
            _images(raw["x_test"], normalize),
            raw["y_test"].long(),
            num_classes=10,
            classes=CLASSES,
        )

    return memoized(("fashion-mnist", key, normalize), build)


def _images(pixels: torch.Tensor, normalize: bool) -> torch.Tensor:
    x = pixels.unsqueeze(1).float().div_(255.0)
    return x.sub_(MEAN).div_(STD) if normalize else x
