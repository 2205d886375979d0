"""What the user asked a callback for, checked at construction: schedules, spec strings
that may leave ``total`` and the LR bounds open, a range test and how to read it.

`Request.build` turns it into a `Plan` once the run's length (and, with a range test,
its bounds, read by `read_bounds`) are known.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import torch
from torch.optim import Optimizer

from lrlab.integrations._plan import Plan, describe
from lrlab.rangetest import RangeTestResult, range_test
from lrlab.rangetest.result import SCHEDULES
from lrlab.schedules import (
    Constant,
    Schedule,
    bound_fields,
    cyclical_momentum,
    registered_kinds,
    schedule_class,
    spec_to_dict,
)
from lrlab.study.config_fields import EPOCHS
from lrlab.study.resolve import bound_schedule, materialize

#: A schedule, a spec string (``"one_cycle(max_lr=0.4)"``, ``"one_cycle"``), its dict, a number.
ScheduleArg = Union[Schedule, str, Mapping[str, Any], float]  # noqa: UP007 (runtime alias)
GroupsArg = Union[Mapping[Union[int, str], Any], Sequence[Any], None]  # noqa: UP007

#: The `range_test` arguments a callback passes through (the rest it supplies itself).
SWEEP_KEYS = (
    "start_lr",
    "end_lr",
    "num_updates",
    "mode",
    "accumulation",
    "smoothing",
    "diverge_factor",
    "stop_on_divergence",
)
#: How the curve is read: `RangeTestResult.bounds` arguments; ``schedule`` picks the reading
#: (``one_cycle``, ``clr``, ``constant``), by default the one the LR family trains with.
READING_KEYS = ("rule", "schedule", "epochs_per_step")
RANGE_TEST_KEYS = SWEEP_KEYS + READING_KEYS


def _spec(name: str, value: Any) -> Schedule | dict[str, Any] | None:
    """A schedule argument checked now: a Schedule as is, anything else as a spec dict."""
    if value is None or isinstance(value, Schedule):
        return value
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a Schedule, a spec string or a number, got bool")
    if isinstance(value, (int, float)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}={value!r} is invalid; expected a finite number >= 0")
        return Constant(float(value))
    if isinstance(value, str) and value.strip().isidentifier():
        value = f"{value.strip()}()"  # a bare family name: every field still open
    if isinstance(value, (str, Mapping)):
        return spec_to_dict(value if isinstance(value, str) else dict(value))
    raise TypeError(
        f"{name} must be a Schedule, a spec string, a dict or a number, got {type(value).__name__}"
    )


def _missing(d: Mapping[str, Any]) -> list[str]:
    """Required fields of a spec dict that are neither given nor filled by the run (total)."""
    out = []
    for f in dataclasses.fields(schedule_class(d["kind"])):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.init and required and f.name not in d and f.name != "total":
            out.append(f.name)
    return out


def _has_epochs(obj: Any) -> bool:
    if isinstance(obj, str):
        return bool(EPOCHS.match(obj))
    if isinstance(obj, Mapping):
        return any(_has_epochs(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_has_epochs(v) for v in obj)
    return False


@dataclass(frozen=True)
class Request:
    """The user's arguments, checked at construction so mistakes surface before training."""

    lr: Schedule | dict[str, Any] | None
    momentum: Schedule | dict[str, Any] | str | None
    weight_decay: Schedule | dict[str, Any] | None
    groups: GroupsArg
    range_test: dict[str, Any] | None
    total: int | None

    @classmethod
    def make(
        cls,
        lr: ScheduleArg | None,
        momentum: ScheduleArg | None,
        weight_decay: ScheduleArg | None,
        groups: GroupsArg,
        range_test: bool | Mapping[str, Any] | None,
        total: int | None,
    ) -> Request:
        lr_spec = _spec("lr", lr)
        if momentum == "cyclical" or (isinstance(momentum, Mapping) and "kind" not in momentum):
            mom: Schedule | dict[str, Any] | str | None
            if lr_spec is None:
                raise ValueError("momentum='cyclical' mirrors the LR schedule; pass lr= too")
            mom = "cyclical" if isinstance(momentum, str) else _cyclical_bounds(momentum)
        else:
            mom = _spec("momentum", momentum)
        if total is not None and (
            isinstance(total, bool) or not isinstance(total, int) or total < 1
        ):
            raise ValueError(f"total={total!r} is invalid; expected an integer >= 1 or None")
        return cls(
            lr_spec,
            mom,
            _spec("weight_decay", weight_decay),
            groups,
            _range_test_options(range_test, lr_spec),
            total,
        )

    @property
    def empty(self) -> bool:
        return self.lr is None and self.momentum is None and self.weight_decay is None

    def describe(self) -> dict[str, Any]:
        """JSON-ready: what a checkpoint compares against when a run is resumed."""
        return {
            "lr": describe(self.lr),
            "momentum": self.momentum
            if isinstance(self.momentum, str)
            else describe(self.momentum),
            "weight_decay": describe(self.weight_decay),
            "range_test": self.range_test,
            "total": self.total,
        }

    def which_bounds(self) -> str:
        """The range-test reading the LR family trains with (``one_cycle``, ``clr``...)."""
        assert isinstance(self.lr, dict) and self.range_test is not None
        return bound_schedule(self.lr, self.range_test.get("schedule"))

    def build(self, total: int, iters_per_epoch: int | None, found: dict[str, Any] | None) -> Plan:
        """Concrete schedules for a run of ``total`` updates (bounds from a range test)."""

        def make(name: str, spec: Any, bounds: dict[str, Any] | None = None) -> Schedule | None:
            if spec is None or isinstance(spec, Schedule):
                return spec
            if iters_per_epoch is None and _has_epochs(spec):
                raise ValueError(
                    f"{name}: counts in epochs need a train dataloader with a length; "
                    "write them in updates"
                )
            return materialize(
                spec, total=total, iters_per_epoch=iters_per_epoch or 1, bounds=bounds
            )

        lr = make("lr", self.lr, found)
        if self.momentum == "cyclical":
            momentum: Schedule | None = cyclical_momentum(lr)  # type: ignore[arg-type]
        elif isinstance(self.momentum, dict) and "kind" not in self.momentum:
            momentum = cyclical_momentum(lr, **self.momentum)  # type: ignore[arg-type]
        else:
            momentum = make("momentum", self.momentum)
        return Plan(lr, momentum, make("weight_decay", self.weight_decay), total, found)


def _cyclical_bounds(value: Mapping[str, Any]) -> dict[str, Any]:
    if set(value) != {"low", "high"}:
        raise ValueError(
            f"momentum={dict(value)!r} is invalid; a cyclical momentum dict holds 'low' and "
            "'high' (e.g. {'low': 0.85, 'high': 0.95}); a schedule dict holds 'kind'"
        )
    return {"low": float(value["low"]), "high": float(value["high"])}


def _check_reading(options: Mapping[str, Any]) -> None:
    from lrlab.rangetest import RULES

    rule = options.get("rule")
    if rule is not None and rule not in RULES:
        raise ValueError(f"range_test.rule={rule!r} is invalid; expected one of {', '.join(RULES)}")
    which = options.get("schedule")
    if which is not None and which not in SCHEDULES:
        raise ValueError(
            f"range_test.schedule={which!r} is invalid; expected one of {', '.join(SCHEDULES)}"
        )


def _range_test_options(
    value: bool | Mapping[str, Any] | None, lr: Schedule | dict[str, Any] | None
) -> dict[str, Any] | None:
    if value is None or value is False:
        if isinstance(lr, dict) and bound_fields(lr["kind"]):
            open_ = [f for f in _missing(lr) if f in bound_fields(lr["kind"])]
            if open_:
                raise ValueError(
                    f"lr={lr['kind']}(...) leaves {', '.join(open_)} open: give "
                    f"{'it' if len(open_) == 1 else 'them'} or pass range_test=True to read "
                    "the bounds off an LR range test"
                )
        return None
    if value is True:
        options: dict[str, Any] = {}
    elif isinstance(value, Mapping):
        unknown = sorted(set(value) - set(RANGE_TEST_KEYS))
        if unknown:
            raise ValueError(
                f"range_test: unknown option(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(RANGE_TEST_KEYS)}"
            )
        options = dict(value)
        _check_reading(options)
    else:
        raise TypeError(
            f"range_test must be True, False or a dict of range_test() options, "
            f"got {type(value).__name__}"
        )
    if not isinstance(lr, dict) or not bound_fields(lr["kind"]):
        what = "a Schedule object" if isinstance(lr, Schedule) else repr(lr)
        raise ValueError(
            f"range_test needs lr as a spec whose bounds it can fill (e.g. 'one_cycle' or "
            f"'triangular(step_size=\"2 epochs\")'), got {what}; families that take bounds: "
            f"{', '.join(k for k in registered_kinds() if bound_fields(k))}"
        )
    fields = bound_fields(lr["kind"])
    fillable = [f for f in fields if f not in lr]
    if not fillable:
        raise ValueError(
            f"lr={lr['kind']}(...) already fixes {', '.join(fields)}; the "
            "range test would have nothing to set: leave max_lr out or drop range_test"
        )
    return options


def read_bounds(
    request: Request,
    model: torch.nn.Module,
    optimizer: Optimizer,
    data: Iterable[Any],
    step: Callable[[Any], torch.Tensor],
    scaler: Any | None,
    iters_per_epoch: int | None,
) -> tuple[RangeTestResult, dict[str, Any]]:
    """Run the requested range test and read the bounds the LR family needs."""
    assert request.range_test is not None
    sweep = {k: v for k, v in request.range_test.items() if k in SWEEP_KEYS}
    reading = {k: v for k, v in request.range_test.items() if k in ("rule", "epochs_per_step")}
    result = range_test(model, optimizer, data, step=step, scaler=scaler, **sweep)
    which = request.which_bounds()
    b = result.bounds(which, iters_per_epoch=iters_per_epoch, **reading)
    found = {
        "max_lr": b.max_lr,
        "base_lr": b.base_lr,
        "step_size": b.step_size,
        "suggestion": b.suggestion.lr,
        "rule": b.suggestion.rule,
        "schedule": which,
        "updates": result.updates,
        "stop_reason": result.stop_reason,
        "warnings": list(b.suggestion.warnings),
    }
    return result, found
