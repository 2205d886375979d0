"""Study files: TOML validated by pydantic, with messages that name the field and the value.

A study asks one question (``question``), runs every arm with every seed, and names a
``baseline`` arm the others are compared with. Schedules are written as in the CLI, as
a spec string (``"one_cycle(max_lr=0.4)"``) or a table (``{kind = "one_cycle", max_lr =
0.4}``), with three conveniences resolved per trial (see `lrlab.study.resolve`):

* a missing ``total`` is the trial's number of updates (``epochs * iters_per_epoch``);
* a count may be written in epochs (``step_size = "4 epochs"``) or as a share of the run
  (``milestones = ["30%", "60%"]``), so small and paper presets share their arms;
* with ``range_test = {...}`` in the arm, missing LR bounds come from a range test run
  at the start of each trial (``max_lr``/``base_lr`` of 1cycle and CLR, ``level`` of a
  constant, ``init`` of decays, ``max_lr`` of SGDR, ``peak`` of WSD).

``[presets.<name>]`` tables override any part of the study (``small`` for a laptop,
``paper`` for the published setting) and are applied with ``load_study(path, preset)``.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from lrlab.study.arm_config import (
    ArmConfig,
    FreezeConfig,
    FreezeEventConfig,
    LarsConfig,
    LayerwiseConfig,
    MomentumRange,
    OptimizerConfig,
    RangeTestConfig,
)
from lrlab.study.config_fields import (
    EPOCHS,
    OPTIMIZERS,
    SHARE,
    Count,
    ScheduleSpec,
    Strict,
)
from lrlab.study.task_config import GroupsConfig, TaskConfig
from lrlab.study.track_config import TrackConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


__all__ = [
    "EPOCHS",
    "OPTIMIZERS",
    "SHARE",
    "AnalysisConfig",
    "ArmConfig",
    "Count",
    "FreezeConfig",
    "FreezeEventConfig",
    "GroupsConfig",
    "LarsConfig",
    "LayerwiseConfig",
    "MomentumRange",
    "OptimizerConfig",
    "RangeTestConfig",
    "ScheduleSpec",
    "SearchConfig",
    "SearchRange",
    "StudyConfig",
    "TaskConfig",
    "TrackConfig",
    "TrialConfig",
    "format_validation_error",
    "load_study",
    "parse_study",
    "presets_of",
]


class AnalysisConfig(Strict):
    """How the study's answer is read and held against the published claim.

    * ``compare`` (default): each arm in ``arms`` (default: all but the baseline) against
      the baseline on ``metric`` (default: the task's primary metric, validation accuracy
      for the bundled tasks; the baseline may be read on ``baseline_metric``, e.g. a
      snapshot ensemble against a single model); ``expect`` is the published claim:
      ``better`` (the arms beat the baseline), ``worse``, or ``same`` (no gain).
    * ``updates_to_reference``: how many updates each arm needs to reach the final
      accuracy of ``reference`` (default: the baseline); the claim is a speed-up,
      ``expect = "faster"``, with ``claimed_speedup`` the published factor.
    * ``early_reading``: do the arms ranked by validation loss at ``early_epoch`` pick the
      same winner as the final accuracy? ``expect = "same"`` is the paper's advice.

    ``arms`` are the arms the question names: the one-line answer is about them. Every
    comparison of the study is read with Holm's correction and at ``resolution``
    (`lrlab.report.verdicts`).
    """

    kind: Literal["compare", "updates_to_reference", "early_reading"] = "compare"
    arms: list[str] | None = None
    metric: str | None = None
    baseline_metric: str | None = None
    expect: Literal["better", "worse", "same", "faster"] = "better"
    reference: str | list[str] | None = None
    claimed_speedup: Annotated[float, Field(gt=0)] | None = None
    early_epoch: Annotated[int, Field(ge=1)] | None = None
    #: The smallest difference the study is asked to tell apart, in the metric's unit
    #: (default: 2 points for a percentage metric). A comparison whose 95% interval is
    #: wider than this either side reads "inconclusive: too noisy", never "no difference".
    resolution: Annotated[float, Field(gt=0)] | None = None


class SearchRange(Strict):
    """One searched parameter: a range (``low``, ``high``, ``log``) or ``choices``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[float] | None = None

    @model_validator(mode="after")
    def _shape(self) -> SearchRange:
        if self.choices is not None:
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("give either choices = [...] or low/high, not both")
        elif self.low is None or self.high is None or not self.high > self.low:
            raise ValueError(f"low={self.low} and high={self.high}: expected low < high")
        elif self.log and self.low <= 0:
            raise ValueError(f"log = true needs low > 0, got low={self.low}")
        return self


SEARCHABLE = (
    "max_lr",
    "base_lr_ratio",
    "momentum",
    "momentum_low",
    "momentum_high",
    "weight_decay",
    "batch_size",
    "llr_first",
    "llr_last",
)


class SearchConfig(Strict):
    """What ``lrlab search`` explores: ranges over one arm's settings (Optuna TPE + Hyperband)."""

    arm: str
    space: dict[str, SearchRange]
    seed: int = 0
    min_epochs: Annotated[int, Field(ge=1)] = 1
    reduction_factor: Annotated[int, Field(ge=2)] = 3

    @field_validator("space")
    @classmethod
    def _space(cls, v: dict[str, SearchRange]) -> dict[str, SearchRange]:
        bad = sorted(set(v) - set(SEARCHABLE))
        if bad or not v:
            raise ValueError(
                f"unknown parameter(s) {', '.join(bad) or '(none given)'}; "
                f"searchable: {', '.join(SEARCHABLE)}"
            )
        return v


class StudyConfig(Strict):
    """A whole study: the question, the task, the arms, the seeds."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    question: str = ""
    claim: str = ""
    seeds: Annotated[list[int], Field(min_length=1)] = Field(default_factory=lambda: [0, 1, 2])
    task: TaskConfig
    optimizer: OptimizerConfig = OptimizerConfig()
    arms: Annotated[list[ArmConfig], Field(min_length=1)]
    baseline: str | None = None
    targets: dict[str, float] = Field(default_factory=dict)
    analysis: AnalysisConfig = AnalysisConfig()
    search: SearchConfig | None = None
    track: TrackConfig | None = None  # where trials are logged; not part of the study's identity

    @model_validator(mode="after")
    def _consistent(self) -> StudyConfig:
        names = [a.name for a in self.arms]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"arm names must be unique; repeated: {', '.join(dup)}")
        if self.baseline is not None and self.baseline not in names:
            raise ValueError(f"baseline={self.baseline!r} is not an arm; arms: {', '.join(names)}")
        if self.search is not None and self.search.arm not in names:
            raise ValueError(
                f"search.arm={self.search.arm!r} is not an arm; arms: {', '.join(names)}"
            )
        refs = self.analysis.reference
        for ref in [*(self.analysis.arms or []), *(refs if isinstance(refs, list) else [refs])]:
            if ref is not None and ref not in names:
                raise ValueError(
                    f"analysis names arm {ref!r}, which is not an arm; arms: {', '.join(names)}"
                )
        if self.analysis.kind == "early_reading" and self.analysis.early_epoch is None:
            raise ValueError("analysis kind = 'early_reading' needs early_epoch")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        self._metrics_named()
        return self

    def _metrics_named(self) -> None:
        """Targets and analysis name metrics the task records (see `lrlab.tasks.metrics`).

        A bundled task's metrics are known here; your own task's are its own, so any
        ``val_<name>`` is accepted and checked against the task when a trial starts.
        """
        from lrlab.tasks.metrics import CLASSIFICATION, CLASSIFICATION_ANALYSES

        if self.task.bundled:
            targets, analyses = CLASSIFICATION.targets, list(CLASSIFICATION_ANALYSES)
            bad = sorted(set(self.targets) - set(targets))
        else:
            targets = ["val_<metric>"]
            analyses = ["val_<metric>", "stability_std", "ensemble_top1"]
            bad = sorted(k for k in self.targets if not _VALIDATION.match(k))
        if bad:
            raise ValueError(
                f"targets: unknown metric(s) {', '.join(bad)}; allowed: {', '.join(targets)}"
            )
        for key in ("metric", "baseline_metric"):
            name = getattr(self.analysis, key)
            ok = name in analyses if self.task.bundled else _ANALYSIS.match(name or "")
            if name is not None and not ok:
                raise ValueError(
                    f"analysis.{key}={name!r} is not a metric of this task; "
                    f"expected one of {', '.join(analyses)}"
                )

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        bad = [s for s in v if not 0 <= s < 2**63]  # torch seeds and the store's INTEGER
        if bad:
            raise ValueError(f"seed {bad[0]} is invalid; expected integers in [0, 2**63)")
        return v

    @model_validator(mode="after")
    def _within_run(self) -> StudyConfig:
        """Moments given in epochs or as a share of the run must fall inside the run."""
        for i, arm in enumerate(self.arms):
            epochs = arm.epochs or self.task.epochs
            for j, event in enumerate(arm.freeze.events if arm.freeze else []):
                late = _after_the_run(event.at, event.unit, epochs)
                if late:
                    raise ValueError(f"@arms[{i}].freeze.events[{j}].at: {late}")
        early = self.analysis.early_epoch
        if early is not None:
            shortest = min(a.epochs or self.task.epochs for a in self.arms)
            if early > shortest:
                raise ValueError(
                    f"@analysis.early_epoch: early_epoch={early} is after the last epoch of "
                    f"an arm (epochs = {shortest}); expected 1 to {shortest}"
                )
        return self

    @property
    def baseline_arm(self) -> str:
        return self.baseline or self.arms[0].name


def _after_the_run(at: int | str, unit: str, epochs: int) -> str:
    """Why a freeze event at ``at`` never happens in a run of ``epochs``, or ""."""
    if isinstance(at, str):
        epoch, share = EPOCHS.match(at), SHARE.match(at)
        if epoch and float(epoch.group(1)) >= epochs:
            return f"at={at!r} is after the last epoch (epochs = {epochs}); expected < {epochs}"
        if share and float(share.group(1)) >= 100:
            return f"at={at!r} is after the end of the run; expected a share < 100%"
    elif unit == "epoch" and at >= epochs:
        return (
            f"at={at} is after the last epoch (epochs = {epochs}, numbered from 0); "
            f"expected 0 to {epochs - 1}"
        )
    return ""


_VALIDATION = re.compile(r"^val_[A-Za-z][A-Za-z0-9_]*$")
_ANALYSIS = re.compile(r"^(val_[A-Za-z][A-Za-z0-9_]*|stability_std|ensemble_top1)$")


class TrialConfig(Strict):
    """One trial's resolved configuration, as a worker receives it (`lrlab.study.resolve`).

    `TrialSpec` carries it as JSON (picklable for process pools and Ray); the trainer
    validates it once into these models and reads typed fields from then on.
    """

    task: TaskConfig
    optimizer: OptimizerConfig
    arm: ArmConfig
    seed: int
    targets: dict[str, float] = Field(default_factory=dict)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line naming the first problem: ``file: arms[1].lr: ... (got ...)``."""
    first = err.errors()[0]
    where = ""
    for part in first["loc"]:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    got = first.get("input")
    shown = "" if isinstance(got, dict) or got is None else f" (got {got!r})"
    msg = first["msg"].removeprefix("Value error, ")
    if msg.startswith("@"):  # a model validator naming one of the model's fields
        key, _, msg = msg[1:].partition(": ")
        where = f"{where}.{key}" if where else key
    extra = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{source}: {where or 'study'}: {msg}{shown}{extra}"


def parse_study(
    data: dict[str, Any],
    preset: str | None = None,
    source: str = "study",
    base: str | Path | None = None,
) -> StudyConfig:
    """Validate a study dict (TOML already parsed), applying ``[presets.<preset>]`` first.

    A relative ``task.entry`` file (``"my_task.py:make"``) is made absolute against
    ``base`` (the study file's directory; default: the current directory), so worker
    processes and cluster nodes find it whatever their working directory.
    """
    data = dict(data)
    presets = data.pop("presets", {}) or {}
    if preset is not None:
        if preset not in presets:
            known = ", ".join(sorted(presets)) or "none"
            raise ValueError(f"{source}: preset {preset!r} not found; presets: {known}")
        data = _merge(data, presets[preset])
    task = data.get("task")
    if isinstance(task, dict) and isinstance(task.get("entry"), str):
        from lrlab.tasks.entry import absolute

        try:
            data["task"] = {**task, "entry": absolute(task["entry"], base or Path.cwd())}
        except ValueError as e:
            raise ValueError(f"{source}: task.entry: {e}") from None
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as e:
        raise ValueError(format_validation_error(e, source)) from None


def load_study(path: str | Path, preset: str | None = None) -> StudyConfig:
    """Read and validate a study TOML file; a ValueError names the file, the field and the value."""
    p = Path(path)
    text = _read_text(p)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{p.name}: not valid TOML: {e}") from None
    return parse_study(data, preset, p.name, base=p.resolve().parent)


def presets_of(path: str | Path) -> list[str]:
    """Names of the presets a study file declares."""
    p = Path(path)
    try:
        data = tomllib.loads(_read_text(p))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{p.name}: not valid TOML: {e}") from None
    return sorted(data.get("presets", {}) or {})


def _read_text(p: Path) -> str:
    """A study file's text (TOML is UTF-8); a ValueError names the file."""
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read study file {str(p)!r}: {e.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"study file {str(p)!r} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset "
            f"{e.start}); TOML files are UTF-8: save it as UTF-8"
        ) from None
