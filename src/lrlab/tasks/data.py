"""`TaskData`: a task's batches and evaluations for one trial, on the trial's device.

Two ways to batch, one contract. Data held as a ``TensorDataset`` (without a
``collate_fn``) are batched by indexing (`lrlab.data.batches`): one gather per batch
instead of a DataLoader's per-example collation, in an order fixed by ``(seed, epoch)``.
Any other ``Dataset`` goes through ``torch.utils.data.DataLoader`` with a generator
seeded from ``(seed, epoch)`` (its shuffle and its workers' seeds both come from it), so
the batches of epoch ``e`` are the same whether a trial runs straight through or resumes
at ``e`` after a kill; an ``IterableDataset`` is told the epoch (``set_epoch``) and read
for ``batches_per_epoch`` batches. Neither way touches torch's global random state.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from lrlab.data import batches, epoch_order, seeded_permutation
from lrlab.tasks.task import Task, is_iterable

#: Validation batch size for tensors held in memory: large batches, few Python round trips.
EVAL_CHUNK = 1000


def derived_seed(*key: object) -> int:
    """A 63-bit seed that depends only on ``key`` (BLAKE2b, stable across platforms).

    >>> derived_seed("train", 0, 3) == derived_seed("train", 0, 3) != derived_seed("train", 0, 4)
    True
    """
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Tensors in ``batch`` (nested tuples, lists, dicts) moved to ``device``; the rest as is."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(to_device(b, device, non_blocking) for b in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device, non_blocking) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    return batch


def batch_len(batch: Any) -> int:
    """Examples in a batch: the first dimension of the first tensor found in it."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    items = batch.values() if isinstance(batch, dict) else batch
    if isinstance(items, (list, tuple)) or isinstance(batch, dict):
        for b in items:
            n = batch_len(b)
            if n:
                return n
        return 0
    return 0


def device_of(name: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available) as a torch device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "task.device = 'cuda' but no CUDA device is available; use 'cpu' or 'auto'"
        )
    return torch.device(name)


def _tensors(dataset: Any, collate_fn: Any) -> tuple[torch.Tensor, ...] | None:
    if isinstance(dataset, TensorDataset) and collate_fn is None:
        return tuple(dataset.tensors)
    return None


@functools.cache
def _takes_reduction(loss: Callable[..., Any]) -> bool:
    try:
        return "reduction" in inspect.signature(loss).parameters
    except (TypeError, ValueError):
        return False


def holdout(task: Task, fraction: float, seed: int = 0) -> Task:
    """The task with ``fraction`` of its training set, chosen by a seeded permutation, as
    validation (the same permutation `lrlab.data.Dataset.holdout` uses); test is kept.

    Stratified when the training set is a `TensorDataset` whose last tensor holds integer
    class labels: each class gives its share of the ``round(fraction * n)`` held out
    (largest remainders), so the validation split has the training set's class balance.
    """
    if is_iterable(task.train):
        raise ValueError("task.holdout needs a map-style training set; this one is iterable")
    n = len(task.train)
    n_val = round(fraction * n)
    if not 0 < n_val < n:
        raise ValueError(
            f"task.holdout={fraction!r} of {n} training examples leaves an empty part; "
            "expected both parts to be non-empty"
        )
    order = seeded_permutation(n, "holdout", seed)
    labels = _class_labels(task.train)
    if labels is None:
        keep, held = order[: n - n_val], order[n - n_val :]
    else:
        ranked = labels[order]
        held_mask = torch.zeros(n, dtype=torch.bool)
        classes = torch.unique(ranked)
        for c, k in zip(
            classes.tolist(), _quotas([int((ranked == c).sum()) for c in classes], n_val)
        ):
            at = (ranked == c).nonzero().flatten()
            if k:
                held_mask[at[len(at) - k :]] = True
        keep, held = order[~held_mask], order[held_mask]
        if len(keep) == 0 or len(held) == 0:
            raise ValueError(
                f"task.holdout={fraction!r} of {n} training examples leaves an empty part; "
                "expected both parts to be non-empty"
            )
    if isinstance(task.train, TensorDataset):
        tensors = task.train.tensors
        train: Any = TensorDataset(*(t[keep] for t in tensors))
        val: Any = TensorDataset(*(t[held] for t in tensors))
    else:
        train, val = Subset(task.train, keep.tolist()), Subset(task.train, held.tolist())
    return replace(task, train=train, val=val)


def _quotas(counts: list[int], total: int) -> list[int]:
    """Per class, how many to hold out: ``total`` shared in proportion to ``counts`` by
    largest remainders (Hamilton), so the split has exactly ``round(fraction * n)``.

    >>> _quotas([358 + 40, 356 + 40, 370 + 41], 121)
    [40, 40, 41]
    """
    n = sum(counts)
    exact = [total * c / n for c in counts]
    out = [int(e) for e in exact]
    by_remainder = sorted(range(len(counts)), key=lambda i: (out[i] - exact[i], i))
    for i in by_remainder[: total - sum(out)]:
        out[i] += 1
    return out


def _class_labels(dataset: Any) -> torch.Tensor | None:
    if not isinstance(dataset, TensorDataset) or len(dataset.tensors) < 2:
        return None
    y = dataset.tensors[-1]
    if y.dim() != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
        return None
    return y.cpu()


class TaskData:
    """Batches and evaluations of ``task`` for one trial (``batch_size``, ``seed``, ``device``).

    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> x, y = torch.randn(10, 2), torch.randint(0, 2, (10,))
    >>> task = Task(lambda: torch.nn.Linear(2, 2), TensorDataset(x, y), TensorDataset(x, y),
    ...             torch.nn.functional.cross_entropy)
    >>> data = TaskData(task, batch_size=4, seed=0)
    >>> [len(b[0]) for b in data.train_batches(epoch=0)], data.iters_per_epoch
    ([4, 4, 2], 3)
    """

    def __init__(
        self,
        task: Task,
        *,
        batch_size: int | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.task = task
        self.batch_size = batch_size or task.batch_size
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise ValueError(f"batch_size={self.batch_size!r} is invalid; expected an integer")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size!r} is invalid; expected >= 1")
        self.seed = seed
        self.device = torch.device(device)
        self.iters_per_epoch = task.iters_per_epoch(self.batch_size)
        train = _tensors(task.train, task.collate_fn)
        val = _tensors(task.val, task.collate_fn)
        # moved once: the fast path indexes tensors that already sit on the device
        self._train = None if train is None else tuple(t.to(self.device) for t in train)
        self._val = None if val is None else tuple(t.to(self.device) for t in val)

    # ------------------------------------------------------------------ training
    def train_batches(self, epoch: int) -> Iterator[Any]:
        """The batches of ``epoch``, on the device; a pure function of ``(seed, epoch)``."""
        cap = self.task.batches_per_epoch
        if self._train is not None:
            it = self._tensor_batches(self._train, epoch)
            return itertools.islice(it, cap) if cap else it
        return self._loader_batches(epoch)

    def _tensor_batches(self, tensors: tuple[torch.Tensor, ...], epoch: int) -> Iterator[Any]:
        if len(tensors) == 2:
            yield from batches(tensors[0], tensors[1], self.batch_size, seed=self.seed, epoch=epoch)
            return
        n = len(tensors[0])
        order = epoch_order(n, self.seed, epoch).to(tensors[0].device)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield tuple(t[idx] for t in tensors)

    def _loader(self, dataset: Any, batch_size: int, shuffle: bool, *key: object) -> DataLoader:
        generator = torch.Generator()
        generator.manual_seed(derived_seed(*key))
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            num_workers=self.task.num_workers,
            pin_memory=self.task.pin_memory and self.device.type == "cuda",
            collate_fn=self.task.collate_fn,
        )

    def _loader_batches(self, epoch: int) -> Iterator[Any]:
        train = self.task.train
        iterable = is_iterable(train)
        if callable(getattr(train, "set_epoch", None)):
            train.set_epoch(epoch)
        loader = self._loader(train, self.batch_size, not iterable, "train", self.seed, epoch)
        count = 0
        blocking = not (self.task.pin_memory and self.device.type == "cuda")
        for batch in loader:
            if count == self.iters_per_epoch:
                break
            count += 1
            yield to_device(batch, self.device, non_blocking=not blocking)
        if iterable and count < self.iters_per_epoch:
            raise ValueError(
                f"task {self.task.name!r}: train yielded {count} batches in epoch {epoch}; "
                f"batches_per_epoch says {self.iters_per_epoch}"
            )

    def first_batches(self, updates: int) -> list[Any]:
        """What a range test or a confirm run trains on: the first epoch's batches, kept.

        A sweep longer than an epoch goes round them again (as the range test does with
        any list of batches); only as many as ``updates`` needs are read from a loader.
        """
        if self._train is not None:
            return list(self._tensor_batches(self._train, 0))
        return list(itertools.islice(self._loader_batches(0), min(updates, self.iters_per_epoch)))

    def training_loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The loss of one update (the task's ``step``, or its loss of ``outputs``)."""
        return self.task.training_loss(model, batch)

    # ------------------------------------------------------------------ validation
    def _split(self, split: str) -> tuple[Any, tuple[torch.Tensor, ...] | None]:
        if split == "val":
            return self.task.val, self._val
        if split == "test":
            if self.task.test is None:
                raise ValueError(f"task {self.task.name!r} has no test set")
            t = _tensors(self.task.test, self.task.collate_fn)
            return self.task.test, None if t is None else tuple(x.to(self.device) for x in t)
        raise ValueError(f"split={split!r} is invalid; expected 'val' or 'test'")

    @property
    def eval_batch_size(self) -> int:
        if self.task.eval_batch_size is not None:
            return self.task.eval_batch_size
        return EVAL_CHUNK if self._val is not None else self.batch_size

    def val_batches(
        self,
        *,
        examples: int | None = None,
        batches: int | None = None,
        chunk: int | None = None,
        split: str = "val",
    ) -> Iterator[Any]:
        """Validation batches of ``chunk`` examples in stored order: the first ``examples``
        examples (rounded up to a whole chunk), or the first ``batches`` chunks, or all."""
        size = chunk or self.eval_batch_size
        dataset, tensors = self._split(split)
        if batches is not None:
            examples = batches * size
        if tensors is not None:
            n = len(tensors[0]) if examples is None else min(len(tensors[0]), examples)
            for i in range(0, n, size):
                yield tuple(t[i : i + size] for t in tensors)
            return
        if examples is not None and not is_iterable(dataset):
            dataset = Subset(dataset, range(min(examples, len(dataset))))
        seen = 0
        for batch in self._loader(dataset, size, False, split):
            if examples is not None and seen >= examples:
                break
            seen += batch_len(batch)
            yield to_device(batch, self.device)

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, *, batches: int | None = None, split: str = "val"
    ) -> dict[str, float]:
        """The loss and every metric of the task on ``split``, averaged over its examples.

        Keys are ``<split>_loss`` and ``<split>_<metric>``. A loss that takes
        ``reduction=`` is summed exactly; metrics returning per-example values are
        summed, batch means are weighted by the batch size.
        """
        task = self.task
        was = model.training
        model.eval()
        total, n = 0.0, 0
        sums = [0.0] * len(task.metrics)
        for batch in self.val_batches(batches=batches, split=split):
            outputs = targets = None
            if task.step is not None:
                k = batch_len(batch)
                total += float(task.step(model, batch)) * k
            if task.step is None or task.metrics:
                outputs, targets = task.outputs(model, batch)
                if isinstance(outputs, torch.Tensor) and outputs.is_floating_point():
                    outputs = outputs.float()
                k = batch_len(targets) or batch_len(batch)
            if task.step is None:
                assert task.loss is not None
                if _takes_reduction(task.loss):
                    total += float(task.loss(outputs, targets, reduction="sum"))
                else:
                    total += float(task.loss(outputs, targets)) * k
            for i, m in enumerate(task.metrics):
                assert m.fn is not None
                v = m.fn(outputs, targets)
                if isinstance(v, torch.Tensor) and v.dim() > 0:
                    sums[i] += float(v.sum())
                else:
                    sums[i] += float(v) * k
            n += k
        model.train(was)
        if n == 0:
            raise ValueError(f"task {task.name!r}: the {split} split yielded no examples")
        out = {f"{split}_loss": total / n}
        out.update({f"{split}_{m.name}": s / n for m, s in zip(task.metrics, sums)})
        return out

    @torch.no_grad()
    def probabilities(
        self, model: nn.Module, *, batches: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmax of the outputs and the targets on validation, on the CPU (snapshot ensembles).

        Needs a classification task: outputs ``(batch, classes)`` and integer targets.
        """
        was = model.training
        model.eval()
        probs, targets = [], []
        for batch in self.val_batches(batches=batches):
            outputs, y = self.task.outputs(model, batch)
            if not (isinstance(outputs, torch.Tensor) and outputs.dim() == 2):
                raise ValueError(
                    "snapshots = true needs a classification task: outputs of shape "
                    f"(batch, classes); task {self.task.name!r} gives {type(outputs).__name__}"
                )
            probs.append(F.softmax(outputs.float(), dim=1))
            targets.append(y)
        model.train(was)
        return torch.cat(probs).cpu(), torch.cat(targets).cpu()
