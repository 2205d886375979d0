"""lrlab inside the trainers people use: thin glue over `lrlab.optim` and `lrlab.rangetest`.

* `lrlab.integrations.lightning` — ``LRLabSchedule``, a Lightning ``Callback``
  (``pip install "lrlab[lightning]"``).
* `lrlab.integrations.hf` — ``LRLabSchedule``, a Hugging Face ``TrainerCallback``, and
  ``build_scheduler`` for ``Trainer(optimizers=(optimizer, scheduler))``
  (``pip install "lrlab[hf]"``).
* `lrlab.integrations.tracking` — TensorBoard and MLflow trackers for studies
  (``lrlab study run --track ...``; ``pip install "lrlab[track]"``).

The two callbacks optionally run lrlab's LR range test on the run's own model and data
before the first update, apply an lrlab schedule (with cyclical momentum if asked) sized
from the framework's count of optimizer updates, keep their state in the framework's
checkpoints, and warn when training ends before the schedule did.

Importing this package imports no framework, no tracker (and not torch); each submodule
imports its own when it is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("lightning", "hf", "tracking")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), *_SUBMODULES]
