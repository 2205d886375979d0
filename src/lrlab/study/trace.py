"""The learning rate and momentum of every optimizer update of a trial, for experiment trackers.

A trial returns them with its result (``result["trace"]``), so the driver process logs
them (`lrlab.integrations.tracking`) and no worker ever writes to a tracker. Most values
are pure functions of the update count: they are computed once at the trial's end from
its schedules and its driver (`HyperparamScheduler.values`), which costs nothing during
training. Values only known while the run happens are recorded as they happen by an
`UpdateRecorder`: the per-group LRs of automatic layer-wise rates (`AutoLLR` multipliers
follow the gradients) and everything PyTorch's own ``OneCycleLR`` sets. The recorder is
part of the trial's checkpoint, so a resumed trial keeps its whole curve.

The trace maps a series name to one value per update ``t = 0 .. updates - 1`` (the ``t``
lrlab's schedules take): ``"lr"`` and ``"momentum"`` (the global schedules, or what
OneCycleLR set in the first param group) and, for layer-wise, LARS and freezing arms,
``"lr/<group>"`` (and ``"momentum/<group>"`` where a group's momentum differs from the
global one). Python floats, 9 bytes each once pickled: a 10,000-update trial with LR and
momentum sends about 180 kB, plus 90 kB per param group of a layer-wise arm.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from lrlab.optim._steps import inner_step, step_was_skipped

if TYPE_CHECKING:
    from lrlab.study.trial import Trial

__all__ = ["UpdateRecorder", "update_trace"]


def _momentum(group: dict[str, Any]) -> float:
    return float(group["betas"][0] if "betas" in group else group.get("momentum", math.nan))


class UpdateRecorder:
    """Appends the param groups' ``keys`` (``"lr"``, ``"momentum"``) at every real update.

    Attach it before the driver: its post-step hook then runs before the driver writes the
    next update's values, so it reads the ones this update used. A step a GradScaler
    skipped is no update and is not recorded (the driver does not count it either).

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1, momentum=0.9)
    >>> rec = UpdateRecorder(opt, ("lr", "momentum"))
    >>> opt.step(); opt.param_groups[0]["lr"] = 0.05; opt.step()
    >>> rec.rows
    [[0.1, 0.9], [0.05, 0.9]]
    """

    def __init__(self, optimizer: torch.optim.Optimizer, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.rows: list[list[float]] = []
        self._handle: Any = optimizer.register_step_post_hook(self._after)

    def _after(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if "found_inf" in optimizer.__dict__ and step_was_skipped(optimizer):
            return
        if inner_step(optimizer):
            return
        row = []
        for g in optimizer.param_groups:
            for key in self.keys:
                row.append(float(g["lr"]) if key == "lr" else _momentum(g))
        self.rows.append(row)

    def column(self, group: int, key: str) -> list[float]:
        """One group's recorded values of ``key``, one per update."""
        i = group * len(self.keys) + self.keys.index(key)
        return [r[i] for r in self.rows]

    def state_dict(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "rows": self.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["keys"]) != self.keys:
            raise ValueError(f"recorded keys {state['keys']} differ from {list(self.keys)}")
        self.rows = [list(r) for r in state["rows"]]

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def recorder_for(t: Trial) -> UpdateRecorder | None:
    """A recorder for the values this trial's schedules cannot give after the fact."""
    if t.torch_scheduler is not None:
        return UpdateRecorder(t.optimizer, ("lr", "momentum"))
    if t.auto_llr is not None:
        return UpdateRecorder(t.optimizer, ("lr",))
    return None


def update_trace(t: Trial) -> dict[str, list[float]]:
    """Every update's LR and momentum, globally and per param group (see the module)."""
    n = t.steps
    rec = t.trace
    if rec is not None and len(rec.rows) != n:
        rec = None  # resumed from a checkpoint that did not record: only the pure series
    names = [str(g.get("name", i)) for i, g in enumerate(t.optimizer.param_groups)]
    out: dict[str, list[float]] = {}
    if t.torch_scheduler is not None:
        if rec is None:
            return out
        out["lr"], out["momentum"] = rec.column(0, "lr"), rec.column(0, "momentum")
        if t.per_group:
            for i, name in enumerate(names):
                out[f"lr/{name}"] = rec.column(i, "lr")
        return out
    steps = range(n)
    out["lr"] = [t.lr(s) for s in steps]
    if t.momentum is not None:
        out["momentum"] = [t.momentum(s) for s in steps]
    if not t.per_group or t.driver is None:
        return out
    values = [t.driver.values(s) for s in steps]
    for i, name in enumerate(names):
        if t.auto_llr is not None:
            if rec is not None:
                out[f"lr/{name}"] = rec.column(i, "lr")
        elif values and "lr" in values[0][i]:
            out[f"lr/{name}"] = [v[i]["lr"] for v in values]
        own = [v[i].get("momentum", math.nan) for v in values]
        if "momentum" in out and own != out["momentum"]:
            out[f"momentum/{name}"] = own
    return out
