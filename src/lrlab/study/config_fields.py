"""Field types and checks shared by the study-file models (`lrlab.study.config` and
`lrlab.study.arm_config`): counts written in updates, epochs or a share of the run, and
schedule specs checked for family and parameter names at load time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict

OPTIMIZERS = ("sgd", "adam", "adamw", "schedulefree_sgd", "schedulefree_adamw", "prodigy")
EPOCHS = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*epochs?\s*$")
SHARE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*%\s*$")  # a share of the run's updates

ScheduleSpec = str | dict[str, Any]
Count = int | str  # updates, "N epochs", or "N%" of the run


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_count(value: Any, name: str) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer number of updates or 'N epochs'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{name} must be >= 0")
        return value
    if isinstance(value, str) and (EPOCHS.match(value) or SHARE.match(value)):
        return value
    raise ValueError(
        f"{name}={value!r}: expected an integer number of updates, 'N epochs' or 'N%' of the run"
    )


def check_schedule(value: Any) -> Any:
    """Check a schedule spec's syntax, family and parameter names (values come per trial)."""
    import dataclasses

    from lrlab.schedules import schedule_class, spec_to_dict

    if isinstance(value, dict) and "kind" not in value:
        raise ValueError("a schedule table needs kind = '<family>', e.g. kind = 'one_cycle'")
    if not isinstance(value, (str, dict)):
        raise ValueError(f"expected a schedule spec string or table, got {type(value).__name__}")

    def names(d: dict[str, Any]) -> None:
        allowed = {f.name for f in dataclasses.fields(schedule_class(str(d["kind"])))}
        unknown = sorted(set(d) - allowed - {"kind"})
        if unknown:
            raise ValueError(
                f"{d['kind']}: unknown parameter(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        for v in d.values():
            if isinstance(v, dict) and "kind" in v:
                names(v)

    names(spec_to_dict(value))
    return value


def one_of(field: str, value: str, options: Iterable[str], what: str) -> str:
    """``value`` if it is among ``options``; otherwise a message naming field, value and choices."""
    choices = list(options)
    if value not in choices:
        raise ValueError(f"{field}={value!r} is not {what}; expected one of {', '.join(choices)}")
    return value
