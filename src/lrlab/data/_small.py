"""The two tasks that need no files: MNIST-1D (generated) and scikit-learn's 8x8 digits."""

from __future__ import annotations

import numpy as np
import torch

from lrlab.data._cache import memoized
from lrlab.data._dataset import Dataset
from lrlab.data._mnist1d import make_mnist1d

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


def load_mnist1d(*, num_samples: int = 5000, seed: int = 42) -> Dataset:
    """MNIST-1D as a `Dataset` of shape (N, 1, 40); see `make_mnist1d` for the options.

    The generator already standardises the whole set to mean 0 and std 1, so no further
    scaling is applied (that keeps the values identical to the published data set).
    """

    def build() -> Dataset:
        x, y, xt, yt = make_mnist1d(num_samples=num_samples, seed=seed)
        return Dataset(
            "mnist1d",
            torch.from_numpy(x).float().unsqueeze(1),
            torch.from_numpy(y),
            torch.from_numpy(xt).float().unsqueeze(1),
            torch.from_numpy(yt),
            num_classes=10,
            classes=tuple(str(d) for d in range(10)),
        )

    return memoized(("mnist1d", num_samples, seed), build)


def load_digits(*, normalize: bool = True) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images) as a `Dataset` of shape (N, 1, 8, 8).

    Split: a ``np.random.RandomState(0)`` permutation, then the last 359 images
    (``round(0.2 * 1797)``) are the test set and the first 1438 the training set; the
    legacy RandomState stream is frozen by numpy, so the split never changes. Pixels
    (0..16) are divided by 16 and, when ``normalize``, standardised with the mean and
    standard deviation of the training pixels (0.3054 and 0.3759).
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ValueError(
            "digits: needs scikit-learn, a dependency of lrlab that is missing here; "
            "install it with pip install scikit-learn"
        ) from None

    def build() -> Dataset:
        bunch = sklearn_digits()
        images = np.asarray(bunch.images, dtype=np.float64) / 16.0
        labels = np.asarray(bunch.target, dtype=np.int64)
        order = np.random.RandomState(DIGITS_SPLIT_SEED).permutation(len(labels))
        n_test = round(DIGITS_TEST_FRACTION * len(labels))
        train, test = order[:-n_test], order[-n_test:]
        x_train, x_test = images[train], images[test]
        if normalize:
            mean, std = x_train.mean(), x_train.std()
            x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
        return Dataset(
            "digits",
            torch.from_numpy(x_train).float().unsqueeze(1),
            torch.from_numpy(labels[train]),
            torch.from_numpy(x_test).float().unsqueeze(1),
            torch.from_numpy(labels[test]),
            num_classes=10,
            classes=tuple(str(d) for d in range(10)),
        )

    return memoized(("digits", normalize), build)
