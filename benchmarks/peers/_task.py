"""What every peer runner shares: the task (data, model, optimizer), the batch order, a tap
that records what the tool actually trained on, and the JSON-over-stdio protocol.

Runs in the dev venv (torch-lr-finder, Lightning) and in the fastai venv alike, so it uses
only torch, numpy and lrlab.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, IterableDataset

from lrlab.data import batches, load_dataset
from lrlab.models import build_model


class EpochBatches(IterableDataset):
    """lrlab's batch order, epoch after epoch: the n-th pass yields ``batches(seed, epoch=n)``.

    Every tool re-iterates its loader at an epoch boundary, so the three tools see the same
    sequence. The epoch number is taken when the first batch of a pass is drawn, not when
    ``iter()`` is called: a tool that calls ``iter()`` only to probe the loader does not
    shift the order.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> None:
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.epochs_started = 0

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)  # batches() keeps the last short one

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self.epochs_started
        self.epochs_started += 1
        yield from batches(self.x, self.y, self.batch_size, seed=self.seed, epoch=epoch)

    def epoch_iter(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return batches(self.x, self.y, self.batch_size, seed=self.seed, epoch=epoch)


def loader(batches_: IterableDataset) -> DataLoader:
    """A plain ``torch.utils.data.DataLoader`` over ready-made batches (``batch_size=None``
    turns off its own batching; every tool accepts a DataLoader)."""
    return DataLoader(batches_, batch_size=None)


def fingerprint(x: torch.Tensor) -> int:
    """CRC-32 of a batch's input bytes: equal sequences mean the same batches in order."""
    plain = x.detach().as_subclass(torch.Tensor).cpu().contiguous()  # fastai casts to TensorBase
    return zlib.crc32(plain.numpy().tobytes())


@dataclass
class Tap:
    """What the tool did, counted outside it: optimizer updates, the training batches the
    model saw (fingerprints) and the raw, unsmoothed loss of each of them."""

    updates: int = 0
    batch_crcs: list[int] = field(default_factory=list)
    raw_losses: list[float] = field(default_factory=list)

    def watch_model(self, model: nn.Module) -> None:
        def pre_forward(module: nn.Module, args: tuple[Any, ...]) -> None:
            if module.training and torch.is_grad_enabled():
                self.batch_crcs.append(fingerprint(args[0]))

        model.register_forward_pre_hook(pre_forward)

    def watch_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        def post_step(*_: Any) -> None:
            self.updates += 1

        optimizer.register_step_post_hook(post_step)

    def record_loss(self, loss: torch.Tensor) -> None:
        self.raw_losses.append(float(loss.detach()))


@dataclass
class Task:
    """What a runner trains. Bundled tasks: cross-entropy, and the optimizer the spec names,
    built by the runner (``torch_optimizer``). Held-out tasks (``_heldout``) bring their own:
    ``optimizer`` is the very torch optimizer lrlab's finder gets, ``settings`` describes it
    in spec terms (for fastai's optimizer), ``no_decay`` lists the parameters it exempts."""

    model: nn.Module
    train: IterableDataset
    test: IterableDataset  # for tools that insist on a validation loader; never iterated
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy
    regression: bool = False
    optimizer: torch.optim.Optimizer | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    no_decay: list[nn.Parameter] = field(default_factory=list)


def build_task(spec: dict[str, Any]) -> Task:
    """Data, then ``torch.manual_seed(seed)`` and the model: the same weights for every tool."""
    if "heldout" in spec:
        from ._heldout import build_heldout

        return build_heldout(spec)
    torch.set_num_threads(spec["threads"])
    data = load_dataset(spec["dataset"])
    width = {"width": spec["width"]} if "width" in spec else {}
    torch.manual_seed(spec["seed"])
    model = build_model(spec["model"], data.input_shape, data.num_classes, **width)
    train = EpochBatches(data.x_train, data.y_train, spec["batch_size"], spec["seed"])
    test = EpochBatches(data.x_test, data.y_test, spec["batch_size"], spec["seed"])
    return Task(model, train, test)


def task_optimizer(task: Task, spec: dict[str, Any], lr: float) -> torch.optim.Optimizer:
    """The torch optimizer a torch-side tool gets, every group at ``lr``: the held-out task's
    own (lrlab's param groups), or the one the bundled spec names over all parameters."""
    if task.optimizer is None:
        return torch_optimizer(spec, task.model.parameters(), lr=lr)
    for group in task.optimizer.param_groups:
        group["lr"] = lr
    return task.optimizer


def torch_optimizer(spec: dict[str, Any], params: Any, lr: float) -> torch.optim.Optimizer:
    """The optimizer lrlab uses: ``SGD(momentum, weight_decay)`` or ``Adam``/``AdamW(betas,
    eps, weight_decay)``, at the tool's start LR."""
    if spec["optimizer"] == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=spec["momentum"], weight_decay=spec["weight_decay"]
        )
    cls = torch.optim.Adam if spec["optimizer"] == "adam" else torch.optim.AdamW
    return cls(
        params,
        lr=lr,
        betas=tuple(spec["betas"]),
        eps=spec["eps"],
        weight_decay=spec["weight_decay"],
    )


def versions(*dists: str) -> dict[str, str]:
    out = {"python": sys.version.split()[0], "torch": torch.__version__}  # shows +cpu / +cu130
    for dist in (*dists, "lrlab"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _finite(value: Any) -> float | None:
    f = None if value is None else float(value)
    return f if f is not None and math.isfinite(f) else None


def finite_or_none(values: Any) -> list[float | None]:
    """JSON has no NaN/inf: a non-finite value becomes null (visible, not dropped)."""
    return [_finite(v) for v in values]


def result(
    peer: str,
    spec: dict[str, Any],
    tap: Tap,
    *,
    suggestions: dict[str, float | None],
    lrs: Any,
    losses: Any,
    seconds: float,
    settings: dict[str, Any],
    dists: tuple[str, ...],
    notes: list[str],
) -> dict[str, Any]:
    return {
        "peer": peer,
        "suggestions": {k: _finite(v) for k, v in suggestions.items()},
        "updates": tap.updates,
        "lrs": finite_or_none(lrs),
        "losses": finite_or_none(losses),
        "raw_losses": finite_or_none(tap.raw_losses),
        "batch_crcs": tap.batch_crcs,
        "seconds": seconds,
        "settings": settings,
        "threads": torch.get_num_threads(),
        "versions": versions(*dists),
        "spec": spec,
        "notes": notes,
    }


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[Any]:
    """Send everything written to fd 1 (tools print, fastprogress, tqdm, logging) to stderr;
    yield a stream on the real stdout, which then carries only the result JSON."""
    sys.stdout.flush()
    real = os.dup(1)
    os.dup2(2, 1)
    try:
        with os.fdopen(os.dup(real), "w") as out:
            yield out
            sys.stdout.flush()
    finally:
        os.dup2(real, 1)
        os.close(real)


def serve(run: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Runner entry point: the spec as JSON on stdin, the result as one JSON line on stdout."""
    spec = json.load(sys.stdin)
    with _stdout_to_stderr() as out:
        payload = run(spec)
        out.write(json.dumps(payload, allow_nan=False) + "\n")
