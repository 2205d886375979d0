"""Study-file models for one arm: its optimizer, LR/momentum/weight-decay schedules,
range test, layer-wise policy, LARS and freezing plan (see `lrlab.study.config`).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from lrlab.schedules import BoundsReading
from lrlab.study.config_fields import (
    OPTIMIZERS,
    Count,
    ScheduleSpec,
    Strict,
    check_count,
    check_schedule,
    one_of,
)


class OptimizerConfig(Strict):
    """The torch optimizer every arm starts from (an arm may override it)."""

    name: str = "sgd"
    lr: Annotated[float, Field(gt=0)] = 0.1
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    no_decay_bias_norm: bool = True
    # Prodigy's multiplier of the step size it estimates (its one knob, as its README says)
    d_coef: Annotated[float, Field(gt=0)] = 1.0

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return one_of("name", v, OPTIMIZERS, "an optimizer")

    @model_validator(mode="after")
    def _d_coef_is_prodigys(self) -> OptimizerConfig:
        if self.d_coef != 1.0 and self.name != "prodigy":
            raise ValueError(
                f"d_coef={self.d_coef!r} is Prodigy's setting; name={self.name!r} takes none "
                "(remove d_coef or use name = 'prodigy')"
            )
        return self


class RangeTestConfig(Strict):
    """Run a range test at the start of each trial and take the LR bounds from it."""

    rule: str = "lrlab"
    schedule: BoundsReading | None = None
    start_lr: Annotated[float, Field(gt=0)] = 1e-7
    end_lr: Annotated[float, Field(gt=0)] = 10.0
    num_updates: Annotated[int, Field(ge=10)] = 100
    mode: Literal["exp", "linear"] = "exp"
    epochs_per_step: Annotated[float, Field(gt=0)] = 4.0
    # the confirm step: short 1cycle runs at these multiples of the rule's LR, the lowest
    # validation loss kept (its updates count as tuning); confirm_updates, the length of
    # each run, defaults to a tenth of the trial's updates, at least 30 (`confirm_horizon`)
    confirm: (
        Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=2, max_length=6)] | None
    ) = None
    confirm_updates: Annotated[int, Field(ge=4)] | None = None
    # a pick flagged as not confident: refine the sweep, stop the arm, or use it anyway
    on_low_confidence: Literal["refine", "error", "use"] = "refine"

    @field_validator("rule")
    @classmethod
    def _rule(cls, v: str) -> str:
        from lrlab.rangetest import RULES

        return one_of("rule", v, RULES, "a range-test rule")

    @model_validator(mode="after")
    def _range(self) -> RangeTestConfig:
        if self.end_lr <= self.start_lr:
            raise ValueError(f"end_lr={self.end_lr} must be > start_lr={self.start_lr}")
        return self


class LayerwiseConfig(Strict):
    """A layer-wise policy (see `lrlab.optim.llr` and `lrlab.optim.AutoLLR`)."""

    policy: Literal["fixed", "interpolate", "cyclical", "override", "auto"]
    multipliers: dict[str, float] | None = None
    first: Annotated[float, Field(gt=0)] | None = None
    last: Annotated[float, Field(gt=0)] | None = None
    geometric: bool = True
    multiplier: ScheduleSpec | None = None
    offset: Count | None = None
    blocks: list[str] | None = None
    lr: ScheduleSpec | None = None
    beta: Annotated[float, Field(ge=0, lt=1)] = 0.9
    warmup: Annotated[int, Field(ge=1)] = 10
    min_scale: Annotated[float, Field(gt=0, le=1)] = 0.1
    max_scale: Annotated[float, Field(ge=1)] = 10.0
    variant: Literal["norm_change", "secant"] = "norm_change"

    @model_validator(mode="after")
    def _needs(self) -> LayerwiseConfig:
        need = {
            "fixed": ("multipliers",),
            "interpolate": ("first", "last"),
            "cyclical": ("multiplier", "offset"),
            "override": ("blocks", "lr"),
            "auto": (),
        }
        missing = [k for k in need[self.policy] if getattr(self, k) is None]
        if missing:
            raise ValueError(f"policy = '{self.policy}' needs {', '.join(missing)}")
        for key in ("multiplier", "lr"):
            if getattr(self, key) is not None:
                check_schedule(getattr(self, key))
        if self.offset is not None:
            check_count(self.offset, "offset")
        return self


class LarsConfig(Strict):
    trust_coefficient: Annotated[float, Field(gt=0)] = 1e-3
    eps: Annotated[float, Field(ge=0)] = 1e-8
    mode: Literal["scale", "clip"] = "scale"
    exclude: Literal["no_decay", "none"] = "no_decay"


class FreezeEventConfig(Strict):
    at: Annotated[int, Field(ge=0)] | str
    action: Literal["freeze", "unfreeze"]
    blocks: list[str]
    except_blocks: list[str] = Field(default_factory=list)
    unit: Literal["epoch", "update"] = "epoch"
    lr_scale: Annotated[float, Field(ge=0)] | None = None

    @field_validator("at")
    @classmethod
    def _at(cls, v: Any) -> Any:
        return check_count(v, "at")


class FreezeConfig(Strict):
    events: list[FreezeEventConfig]
    optimizer_state: Literal["keep", "drop"] = "keep"
    freeze_bn_stats: bool = True


class MomentumRange(Strict):
    """Cyclical momentum mirrored on the LR between these values."""

    low: Annotated[float, Field(ge=0, lt=1)] = 0.85
    high: Annotated[float, Field(ge=0, lt=1)] = 0.95

    @model_validator(mode="after")
    def _order(self) -> MomentumRange:
        if not self.high > self.low:
            raise ValueError(f"low={self.low} and high={self.high}: expected low < high")
        return self


class ArmConfig(Strict):
    """One way of training; every arm runs with every seed."""

    name: Annotated[str, Field(min_length=1, max_length=80)]
    lr: ScheduleSpec
    momentum: float | Literal["cyclical"] | MomentumRange | ScheduleSpec | None = None
    weight_decay: float | ScheduleSpec | None = None
    range_test: RangeTestConfig | None = None
    layerwise: LayerwiseConfig | None = None
    lars: LarsConfig | None = None
    freeze: FreezeConfig | None = None
    optimizer: OptimizerConfig | None = None
    epochs: Annotated[int, Field(ge=1)] | None = None
    batch_size: Annotated[int, Field(ge=1)] | None = None
    snapshots: bool = False
    torch_scheduler: Literal["OneCycleLR"] | None = None

    @field_validator("lr")
    @classmethod
    def _lr(cls, v: Any) -> Any:
        return check_schedule(v)

    @model_validator(mode="after")
    def _torch_scheduler(self) -> ArmConfig:
        if self.torch_scheduler is not None and (self.layerwise or self.momentum is not None):
            raise ValueError(
                "@torch_scheduler: PyTorch's OneCycleLR sets the LR and momentum of every group "
                "itself; it cannot be combined with layerwise or momentum"
            )
        if self.torch_scheduler is not None:
            from lrlab.schedules import spec_to_dict

            kind = spec_to_dict(self.lr).get("kind")
            if kind != "one_cycle_torch":
                raise ValueError(
                    f"@lr: torch_scheduler = 'OneCycleLR' takes its settings from an lr of kind "
                    f"one_cycle_torch; got {kind!r}"
                )
        return self

    @model_validator(mode="after")
    def _buildable(self) -> ArmConfig:
        """Build the schedules once with a stand-in trial, so a bad value fails at load time."""
        from lrlab.study.resolve import materialize

        bounds = {"base_lr": 0.01, "max_lr": 0.1, "step_size": 100} if self.range_test else None
        specs = [("lr", self.lr)] + [
            (k, v)
            for k, v in (("momentum", self.momentum), ("weight_decay", self.weight_decay))
            if (isinstance(v, dict) and "kind" in v) or (isinstance(v, str) and v != "cyclical")
        ]
        for key, spec in specs:
            try:
                built = materialize(
                    spec, total=10_000, iters_per_epoch=100, bounds=bounds if key == "lr" else None
                )
                if key == "lr" and (
                    self.momentum == "cyclical" or isinstance(self.momentum, MomentumRange)
                ):
                    from lrlab.schedules import cyclical_momentum

                    key = "momentum"
                    if isinstance(self.momentum, MomentumRange):
                        cyclical_momentum(built, low=self.momentum.low, high=self.momentum.high)
                    else:
                        cyclical_momentum(built)
            except ValueError as e:
                hint = (
                    " (give it, or add range_test = {} to read it off a range test)"
                    if ("missing required" in str(e) and key == "lr" and not self.range_test)
                    else ""
                )
                raise ValueError(f"@{key}: {e}{hint}") from None
        return self

    @field_validator("momentum", "weight_decay")
    @classmethod
    def _sched_or_number(cls, v: Any, info: Any) -> Any:
        if isinstance(v, dict) or (isinstance(v, str) and v != "cyclical"):
            return check_schedule(v)
        top = 1.0 if info.field_name == "momentum" else math.inf
        if isinstance(v, (int, float)) and not (0 <= v < top):
            allowed = "in [0, 1)" if top == 1.0 else ">= 0 and finite"
            raise ValueError(f"{info.field_name}={v!r} is invalid; expected a number {allowed}")
        return v
