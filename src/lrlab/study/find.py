"""What ``lrlab find`` runs: the range test (and optionally the confirm step and Smith's
momentum and weight-decay tests) on a bundled task or on your own.

It builds the task's model (from the seed), its optimizer and its batches exactly as a
study trial would, so the bounds it prints are the bounds a study would use.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import IterableDataset, Subset, TensorDataset

from lrlab.optim import param_groups
from lrlab.rangetest import ConfirmResult, HyperTestResult, RangeTestResult
from lrlab.rangetest.sweep import Progress
from lrlab.study.config import TaskConfig
from lrlab.study.config_fields import OPTIMIZERS, one_of
from lrlab.study.optimizers import make_optimizer
from lrlab.study.taskdata import build_task
from lrlab.study.tuning import confirm_runs, confirm_task, hyper_tests, sweep, sweep_task
from lrlab.tasks import DEFAULT_BATCH, Task, TaskData

__all__ = [
    "DEFAULT_BATCH",
    "FindResult",
    "FindSettings",
    "confirm_task",
    "find_on_task",
    "sweep_task",
]

#: The confirm step's multiples of the rule's LR, by number of candidates: the rule sits at
#: or below the best 1cycle max_lr (docs/finder_regret.md), so the candidates look up.
CONFIRM_FACTORS = {2: (1.0, 2.0), 3: (1.0, 2.0, 4.0), 4: (1.0, 2.0, 4.0, 8.0)}
_FLAGS = {"num_updates": "--updates", "confirm": "--confirm"}


def _flag(name: str) -> str:
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


@dataclass(frozen=True)
class FindSettings:
    """The range test's settings (each one a ``lrlab find`` flag); checked when built.

    >>> FindSettings(momentum=1.5)
    Traceback (most recent call last):
    ...
    ValueError: --momentum=1.5 is invalid; expected a number in [0, 1)
    """

    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int | None = None
    samples: int | None = None
    start_lr: float = 1e-7
    end_lr: float = 10.0
    num_updates: int = 100
    mode: str = "exp"
    seed: int = 0
    threads: int | None = None
    test_momentum: bool = False
    test_weight_decay: bool = False
    confirm: int = 0
    confirm_updates: int = 30

    def __post_init__(self) -> None:
        one_of("--optimizer", self.optimizer, OPTIMIZERS, "an optimizer")
        one_of("--mode", self.mode, ("exp", "linear"), "a sweep mode")
        self._number("momentum", 0.0, 1.0, "a number in [0, 1)")
        self._number("weight_decay", 0.0, math.inf, "a finite number >= 0")
        for name, low in (("batch_size", 1), ("threads", 1), ("num_updates", 5), ("seed", 0)):
            self._integer(name, low)
        self._integer("confirm_updates", 4)
        n = self.samples
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"--samples={n!r} is invalid: the training data would be empty")
        if self.confirm not in (0, *CONFIRM_FACTORS):
            raise ValueError(
                f"--confirm={self.confirm!r} is invalid; expected 0 (off), 2, 3 or 4 candidates"
            )

    def _number(self, name: str, low: float, high: float, allowed: str) -> None:
        v = getattr(self, name)
        ok = (
            not isinstance(v, bool)
            and isinstance(v, (int, float))
            and math.isfinite(v)
            and low <= v < high
        )
        if not ok:
            raise ValueError(f"{_flag(name)}={v!r} is invalid; expected {allowed}")

    def _integer(self, name: str, low: int) -> None:
        v = getattr(self, name)
        if v is None and name in ("batch_size", "threads"):
            return
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{_flag(name)}={v!r} is invalid; expected an integer >= {low}")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass
class FindResult:
    """The range test, and the momentum / weight-decay tests and confirm step when asked for."""

    range_test: RangeTestResult
    iters_per_epoch: int
    task: str
    momentum: HyperTestResult | None = None
    weight_decay: HyperTestResult | None = None
    confirmed: ConfirmResult | None = None

    @property
    def folder(self) -> str:
        """A directory name for the task: ``digits-mlp``, or the entry point's function."""
        name = self.task.rsplit(":", 1)[-1]
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def find_task(
    *,
    data: str | None = None,
    model: str | None = None,
    width: float = 1.0,
    entry: str | None = None,
    options: dict[str, Any] | None = None,
) -> TaskConfig:
    """The task ``lrlab find`` names: ``--data``/``--model`` or ``--task`` (with ``--option``).

    >>> find_task(data="digits", model="mlp").label
    'digits/mlp'
    >>> find_task(entry="lrlab.tasks.bundled:classification", data="digits")
    Traceback (most recent call last):
    ...
    ValueError: --task names your own task and --data/--model a bundled one; give one
    """
    from pydantic import ValidationError

    from lrlab.data import DATASETS
    from lrlab.models import MODELS
    from lrlab.study.config import format_validation_error
    from lrlab.tasks.entry import absolute

    try:
        if entry is not None:
            if data is not None or model is not None:
                raise ValueError(
                    "--task names your own task and --data/--model a bundled one; give one"
                )
            if width != 1.0:
                raise ValueError(
                    "--width is an option of the bundled models; pass your function's "
                    "options with --option key=value"
                )
            return TaskConfig(entry=absolute(entry, Path.cwd()), options=options or {})
        if options:
            raise ValueError("--option is passed to --task's function; give --task too")
        if data is None or model is None:
            missing = "--model" if data is not None else "--data" if model is not None else ""
            raise ValueError(
                f"lrlab find: missing option {missing or '--data and --model'}: a bundled task "
                "needs --data and --model; your own is --task package.module:function"
            )
        one_of("--data", data, DATASETS, "a dataset")
        one_of("--model", model, MODELS, "a model")
        return TaskConfig(data=data, model=model, width=width)
    except ValidationError as e:
        raise ValueError(format_validation_error(e, "lrlab find")) from None


def first_examples(task: Task, n: int) -> Task:
    """The task trained on its first ``n`` training examples only (``--samples``)."""
    if isinstance(task.train, IterableDataset):
        raise ValueError("--samples needs a map-style training set; this one is iterable")
    if isinstance(task.train, TensorDataset):
        return replace(task, train=TensorDataset(*(t[:n] for t in task.train.tensors)))
    return replace(task, train=Subset(task.train, range(min(n, len(task.train)))))


def find_on_task(
    task: TaskConfig,
    settings: FindSettings | None = None,
    *,
    progress: Progress | None = None,
    factory: Callable[..., Task] | None = None,
) -> FindResult:
    """Run the range test (and the tests ``settings`` ask for) on the task ``task`` names.

    >>> r = find_on_task(TaskConfig(data="digits", model="mlp"), FindSettings(num_updates=20))
    >>> r.task, r.iters_per_epoch, 0 < r.range_test.updates <= 20
    ('digits/mlp', 21, True)
    """
    s = settings or FindSettings()
    if s.threads is not None:
        torch.set_num_threads(s.threads)
    built = build_task(task, factory)
    if s.samples is not None:
        built = first_examples(built, s.samples)
    data = TaskData(built, batch_size=s.batch_size or task.batch_size, seed=s.seed)
    torch.manual_seed(s.seed)
    net = built.model()
    opt = make_optimizer(
        {
            "name": s.optimizer,
            "lr": 0.1,
            "momentum": s.momentum,
            "nesterov": False,
            "betas": (s.momentum, 0.999),
            "weight_decay": s.weight_decay,
        },
        param_groups(net, weight_decay=s.weight_decay),
    )
    result = sweep(
        net,
        opt,
        data,
        start_lr=s.start_lr,
        end_lr=s.end_lr,
        num_updates=s.num_updates,
        mode=s.mode,
        progress=progress,
    )
    out = FindResult(result, data.iters_per_epoch, task.label)
    if s.confirm:
        lr = result.suggest().lr
        candidates = [lr * f for f in CONFIRM_FACTORS[s.confirm]]
        out.confirmed = confirm_runs(net, opt, data, candidates, s.confirm_updates)
    if s.test_momentum or s.test_weight_decay:
        b = result.bounds("one_cycle")
        out.momentum, out.weight_decay = hyper_tests(
            net,
            opt,
            data,
            (b.base_lr, b.max_lr),
            s.num_updates,
            momentum=s.test_momentum,
            weight_decay=s.test_weight_decay,
        )
    return out


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``["n=512", "noise=0.1", "name=x"]`` as keyword options (TOML literals, else strings).

    >>> parse_options(["n=512", "noise=0.1", "kind=sine", "clean=true"])
    {'n': 512, 'noise': 0.1, 'kind': 'sine', 'clean': True}
    """
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"--option {pair!r} is invalid; expected key=value, e.g. n=512")
        try:
            out[key] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = text
    return out
