"""The concrete schedules of one run (`Plan`), what a checkpoint holds of them, and the
checks a callback makes against the run's length.

The plan, not the user's request, goes into checkpoints, so a resumed run uses exactly
the schedules of the run it continues and never repeats the range test.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lrlab.optim import HyperparamScheduler
from lrlab.schedules import Schedule

_STATE_FORMAT = 1


class ScheduleNotFinishedWarning(UserWarning):
    """Training ended (or will end) before the schedule reached its last update."""


def describe(value: Schedule | dict[str, Any] | str | None) -> Any:
    """A schedule argument as JSON-ready data (a Schedule as its ``to_dict()``)."""
    return value.to_dict() if isinstance(value, Schedule) else value


@dataclass(frozen=True)
class Plan:
    """The schedules of one run, its length, and the range-test bounds they came from."""

    lr: Schedule | None
    momentum: Schedule | None
    weight_decay: Schedule | None
    total: int
    found: dict[str, Any] | None = None

    @property
    def length(self) -> int | None:
        """Updates until every schedule reached its last value (None: some run forever)."""
        lengths = [s.length for s in (self.lr, self.momentum, self.weight_decay) if s is not None]
        return None if not lengths or None in lengths else max(lengths)  # type: ignore[type-var]

    def driver(self, optimizer: Any, groups: Any) -> HyperparamScheduler:
        return HyperparamScheduler(
            optimizer,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            groups=groups,
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "format": _STATE_FORMAT,
            "lr": describe(self.lr),
            "momentum": describe(self.momentum),
            "weight_decay": describe(self.weight_decay),
            "total": self.total,
            "found": self.found,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Plan:
        if state.get("format") != _STATE_FORMAT:
            raise ValueError(
                f"unsupported lrlab plan format {state.get('format')!r}; expected {_STATE_FORMAT}"
            )

        def load(d: Any) -> Schedule | None:
            return None if d is None else Schedule.from_dict(d)

        return cls(
            load(state["lr"]),
            load(state["momentum"]),
            load(state["weight_decay"]),
            int(state["total"]),
            state.get("found"),
        )

    def length_warning(self, framework_total: int | float, where: str) -> str | None:
        """A message when a fixed-length schedule and the run's length disagree."""
        n = self.length
        if n is None or not math.isfinite(framework_total) or n == framework_total:
            return None
        if n > framework_total:
            return (
                f"the schedule lasts {n} updates but {where} allows at most "
                f"{int(framework_total)}: its last {n - int(framework_total)} updates "
                "(the annihilation phase of 1cycle, the end of a decay) will never run"
            )
        return (
            f"the schedule lasts {n} updates but {where} runs {int(framework_total)}: "
            f"the last {int(framework_total) - n} updates hold its final values"
        )

    def end_message(self, updates: int, reasons: Sequence[str]) -> str | None:
        """A message when training ended before the schedule's last update, else None."""
        n = self.length
        if n is None or updates >= n:
            return None
        now = f" (LR now {self.lr(updates):.4g}, final {self.lr(n - 1):.4g})" if self.lr else ""
        why = "; ".join(reasons) if reasons else "training was stopped"
        return (
            f"training ended after {updates} optimizer updates, but the schedule lasts {n}: "
            f"its last {n - updates} updates never ran{now}. Cause: {why}"
        )


def loss_of(output: Any, where: str) -> torch.Tensor:
    """The loss tensor in what a training step returned (a tensor, or a mapping with 'loss')."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and isinstance(output.get("loss"), torch.Tensor):
        return output["loss"]
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ValueError(
        f"{where} returned {type(output).__name__}; the range test needs a loss tensor "
        "(or a dict with 'loss'): pass loss=... to say how to compute it"
    )


def warn(message: str, category: type[Warning] = ScheduleNotFinishedWarning) -> None:
    warnings.warn(message, category, stacklevel=3)
