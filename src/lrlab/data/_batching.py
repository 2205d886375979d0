"""In-memory mini-batches whose order is a pure function of ``(seed, epoch)``.

A DataLoader over tensors that already sit in memory spends most of its time in Python
per-example indexing and collation; slicing a shuffled index tensor costs one gather per
batch. Deriving each epoch's permutation from ``(seed, epoch)`` alone, instead of from a
generator that advances through training, is what lets a run resume mid-training with
exactly the data order it would have seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch


def _non_negative_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}={value!r} is invalid; expected an integer >= 0")
    return value


def seeded_permutation(n: int, *key: object) -> torch.Tensor:
    """A permutation of ``range(n)`` determined only by ``n`` and ``key``.

    The key is hashed (BLAKE2b, stable across Python versions and platforms, unlike
    ``hash()``) into the 63-bit seed of a fresh CPU ``torch.Generator``, so neighbouring
    keys such as epochs 3 and 4 give unrelated orders. The permutation itself comes from
    ``torch.randperm``, so it is reproducible for a given torch version.
    """
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
    return torch.randperm(n, generator=generator)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order in which epoch ``epoch`` visits ``n`` examples under ``seed``.

    Args:
        n: number of examples.
        seed: the run's data seed (an integer >= 0).
        epoch: the 0-indexed epoch.

    Returns:
        An int64 permutation of ``range(n)``; the same arguments always give the same one.

    >>> order = epoch_order(5, seed=0, epoch=3)
    >>> sorted(order.tolist())
    [0, 1, 2, 3, 4]
    >>> bool((order == epoch_order(5, seed=0, epoch=3)).all())
    True
    """
    _non_negative_int("n", n)
    _non_negative_int("seed", seed)
    _non_negative_int("epoch", epoch)
    return seeded_permutation(n, "epoch", seed, epoch)


def batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    drop_last: bool = False,
    start_batch: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield the mini-batches ``(x[idx], y[idx])`` of one epoch by tensor indexing.

    Args:
        x: inputs, first dimension the examples.
        y: targets with the same first dimension.
        batch_size: examples per batch (the last batch may be smaller).
        seed: the run's data seed; with ``epoch`` it fixes the order (see `epoch_order`).
        epoch: the 0-indexed epoch.
        shuffle: visit examples in `epoch_order` (True) or in their stored order.
        drop_last: skip a final batch smaller than ``batch_size``, so every update sees
            the same number of examples.
        start_batch: index of the first batch to yield; resuming a run in the middle of
            an epoch gives exactly the batches an uninterrupted run would have seen.

    Yields:
        ``(x_batch, y_batch)`` views gathered on ``x``'s device.

    Raises:
        ValueError: if the lengths of ``x`` and ``y`` differ or an argument is out of range.

    >>> import torch
    >>> x, y = torch.arange(10.0).unsqueeze(1), torch.arange(10)
    >>> [len(b) for b, _ in batches(x, y, 4, seed=0, epoch=0)]
    [4, 4, 2]
    >>> [len(b) for b, _ in batches(x, y, 4, seed=0, epoch=0, drop_last=True)]
    [4, 4]
    """
    if len(x) != len(y):
        raise ValueError(f"batches: x has {len(x)} examples but y has {len(y)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batches: batch_size={batch_size!r} is invalid; expected an integer >= 1")
    _non_negative_int("start_batch", start_batch)
    n = len(x)
    order = epoch_order(n, seed, epoch) if shuffle else torch.arange(n)
    order = order.to(x.device)
    stop = n - n % batch_size if drop_last else n
    for start in range(start_batch * batch_size, stop, batch_size):
        idx = order[start : min(start + batch_size, stop)]
        yield x[idx], y[idx]


def num_batches(n: int, batch_size: int, *, drop_last: bool = False) -> int:
    """Number of batches `batches` yields for ``n`` examples.

    >>> num_batches(10, 4), num_batches(10, 4, drop_last=True)
    (3, 2)
    """
    return n // batch_size if drop_last else -(-n // batch_size)
