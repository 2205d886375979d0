"""MNIST-1D (Greydanus, 2020; arXiv:2011.14439), generated offline with numpy only.

This reproduces ``mnist1d.data.make_dataset(get_dataset_args())`` from the ``mnist1d``
package (version 0.0.2) to floating-point round-off: the same templates, the same
transformations and the same sequence of legacy ``np.random`` calls, but drawn from a
private ``np.random.RandomState(seed)`` so the global numpy state is left alone. The two
scipy calls of the reference are replaced by their numpy equivalents:

* ``scipy.interpolate.interp1d(kind="linear")`` on float64 data delegates to
  ``np.interp``, which is used directly;
* ``scipy.ndimage.gaussian_filter(noise, 2)`` on a 1-D signal is a correlation with a
  normalised Gaussian of radius ``int(4 * 2 + 0.5) = 8`` whose border mode ``"reflect"``
  repeats the edge sample (``d c b a | a b c d | d c b a``), i.e. numpy's ``"symmetric"``
  padding.

``tests/test_data.py`` checks equality with the package to 1e-12.
"""

from __future__ import annotations

import numpy as np

# The published defaults of ``mnist1d.data.get_dataset_args()``; only ``num_samples`` and
# ``seed`` are options, the rest define the benchmark.
TRAIN_SPLIT = 0.8
TEMPLATE_LEN = 12
PADDING = (36, 60)
SCALE_COEFF = 0.4
MAX_TRANSLATION = 48
CORR_NOISE_SCALE = 0.25
IID_NOISE_SCALE = 2e-2
SHEAR_SCALE = 0.75
FINAL_SEQ_LENGTH = 40
_EPS = 1e-8  # the reference adds it before padding, so the signal differs from the zero padding
_SIGMA = 2.0
_RADIUS = int(4.0 * _SIGMA + 0.5)


def templates() -> np.ndarray:
    """The ten hand-drawn 1-D digit templates, shape (10, 12), as the reference builds them."""
    x = np.stack(
        [
            np.asarray([5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5]),
            np.asarray([5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5]),
            np.asarray([5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5]),
            np.asarray([5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5]),
            np.asarray([5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5]),
            np.asarray([5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5]),
            np.asarray([5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5]),
            np.asarray([5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5]),
            np.asarray([5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5]),
            np.asarray([5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5]),
        ]
    )
    x -= x.mean(1, keepdims=True)
    x /= x.std(1, keepdims=True)
    x -= x[:, :1]  # every signal starts and ends at 0
    return x / 6.0


def _gaussian_kernel() -> np.ndarray:
    offsets = np.arange(-_RADIUS, _RADIUS + 1)
    phi = np.exp(-0.5 / (_SIGMA * _SIGMA) * offsets**2)
    return phi / phi.sum()


def _smooth(noise: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    padded = np.pad(noise, _RADIUS, mode="symmetric")
    return np.correlate(padded, kernel, mode="valid")


def _interpolate(x: np.ndarray, n: int) -> np.ndarray:
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def _transform(x: np.ndarray, rng: np.random.RandomState, kernel: np.ndarray) -> np.ndarray:
    # The order of the rng calls below is the reference's; changing it changes the data.
    low, high = PADDING
    pad = low + int(rng.rand() * (high - low + 1))
    new_x = np.concatenate([x + _EPS, np.zeros(pad)])
    new_x = _interpolate(new_x, TEMPLATE_LEN + high)
    new_x *= 1 + SCALE_COEFF * (rng.rand() - 0.5)
    k = rng.choice(MAX_TRANSLATION)
    new_x = np.concatenate([new_x[-k:], new_x[:-k]])  # k == 0 keeps the signal, as upstream

    mask = new_x != 0
    corr = _smooth(CORR_NOISE_SCALE * rng.randn(*new_x.shape), kernel)
    new_x = mask * new_x + (1 - mask) * corr
    new_x = new_x + IID_NOISE_SCALE * rng.randn(*new_x.shape)

    coeff = SHEAR_SCALE * (rng.rand() - 0.5)
    new_x = new_x - coeff * np.linspace(-0.5, 0.5, len(new_x))
    return _interpolate(new_x, FINAL_SEQ_LENGTH)


def make_mnist1d(
    num_samples: int = 5000, seed: int = 42
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Generate MNIST-1D as float64/int64 arrays ``(x_train, y_train, x_test, y_test)``.

    The whole set (train and test together) is standardised to mean 0 and std 1, as the
    reference does; the first 80% (after a seeded shuffle) is the training split.

    Args:
        num_samples: total number of examples, a positive multiple of 10 (default 5000:
            4000 train, 1000 test, 500 per class).
        seed: seed of the generator (default 42, the published data set).

    Returns:
        ``x_train`` of shape (0.8 N, 40), ``y_train`` (0.8 N,), ``x_test``, ``y_test``.

    Raises:
        ValueError: if ``num_samples`` is not a positive multiple of 10 or ``seed`` is
            not an integer in [0, 2**32).

    >>> x, y, xt, yt = make_mnist1d(num_samples=20, seed=0)
    >>> x.shape, y.shape, xt.shape, yt.shape
    ((16, 40), (16,), (4, 40), (4,))
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 10:
        raise ValueError(
            f"mnist1d: num_samples={num_samples!r} is invalid; expected a multiple of 10, >= 10"
        )
    if num_samples % 10:
        raise ValueError(
            f"mnist1d: num_samples={num_samples!r} is invalid; expected a multiple of 10 "
            "(the generator makes the same number of examples for each of the 10 digits)"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"mnist1d: seed={seed!r} is invalid; expected an integer in [0, 2**32)")
    rng = np.random.RandomState(seed)
    kernel = _gaussian_kernel()
    digits = templates()
    per_class = num_samples // 10
    xs = [_transform(digits[label], rng, kernel) for label in range(10) for _ in range(per_class)]
    ys = [label for label in range(10) for _ in range(per_class)]
    order = rng.permutation(len(ys))
    x = np.stack(xs)[order]
    y = np.asarray(ys, dtype=np.int64)[order]
    x = (x - x.mean()) / x.std()
    split = int(len(y) * TRAIN_SPLIT)
    return x[:split], y[:split], x[split:], y[split:]
