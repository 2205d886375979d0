"""The one registry of metrics: what each stored number is, which way is better, how it is shown.

A `Metric` is declared once, with its direction, its scale (stored value -> shown value),
its unit and the words sentences use, and every reader takes it from here: config
validation (which targets and analyses a study may name), the trainer (which way a target
is reached, which evaluation is "best"), the report's tables and verdicts and the
findings. A task brings its own metrics (a regression task's ``mae``); the set a study
measured is recorded in its store (`MetricSet.to_dict`), so a report needs nothing else.

Stored names: a task metric ``mae`` is recorded on the validation split as ``val_mae``;
``val_loss`` (the task's loss on validation) and ``train_loss`` always exist;
``stability_std`` is the spread of the primary metric over the last evaluations and
``best_<primary>`` its best value. The primary metric is the task's first metric, or
``val_loss`` when it declares none: it is what headlines, searches and stability read.

This module imports no torch: studies are validated and reports written without it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Metric:
    """A number measured on validation batches, with how it is compared and shown.

    Args:
        name: a short identifier (``"mae"``); recorded as ``val_<name>``.
        fn: ``fn(outputs, targets)`` for one batch: a tensor of per-example values
            (shape ``(batch,)``, summed over the split and divided by its size) or a
            scalar batch mean (weighted by the batch size). ``None`` for metrics that only
            describe stored numbers (the registry's own entries).
        higher_is_better: the direction, used by targets, verdicts, searches and "best".
        words: how sentences name it (default: ``"validation <name>"``).
        scale: stored value -> shown value (100 for a share shown in percent).
        unit: ``"points"`` for percentages (differences are "points"), else ``""``.
        decimals: decimals in tables.
        label: the table header (default: ``"val <name>"``, with ``%`` when scaled by 100).

    >>> mae = Metric("mae", lambda out, y: (out - y).abs().mean(dim=1), higher_is_better=False,
    ...              words="mean absolute error")
    >>> mae.stored("val").name, mae.stored("val").label, Metric("r2").stored("val").words
    ('val_mae', 'val mae', 'validation r2')
    """

    name: str
    fn: Callable[[Any, Any], Any] | None = None
    higher_is_better: bool = field(default=True, kw_only=True)
    words: str = field(default="", kw_only=True)
    scale: float = field(default=1.0, kw_only=True)
    unit: str = field(default="", kw_only=True)
    decimals: int = field(default=4, kw_only=True)
    label: str = field(default="", kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"Metric name={self.name!r} is invalid; expected an identifier such as 'mae'"
            )
        if self.fn is not None and not callable(self.fn):
            raise TypeError(f"Metric {self.name!r}: fn={self.fn!r} is not callable")
        if not isinstance(self.higher_is_better, bool):
            raise TypeError(
                f"Metric {self.name!r}: higher_is_better={self.higher_is_better!r}; "
                "expected True or False"
            )
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)):
            raise TypeError(f"Metric {self.name!r}: scale={self.scale!r}; expected a number")
        if not self.scale > 0:
            raise ValueError(f"Metric {self.name!r}: scale={self.scale!r}; expected > 0")
        if isinstance(self.decimals, bool) or not isinstance(self.decimals, int):
            raise TypeError(f"Metric {self.name!r}: decimals={self.decimals!r}; expected an int")

    def stored(self, split: str) -> Metric:
        """This metric as recorded on ``split`` (``val_<name>``), without its function."""
        label = self.label or f"{split} {self.name}" + (" %" if self.scale == 100 else "")
        words = self.words or ("validation " if split == "val" else f"{split} ") + self.name
        return replace(self, name=f"{split}_{self.name}", fn=None, label=label, words=words)

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b

    def reached(self, value: float, target: float) -> bool:
        """Whether ``value`` meets ``target`` (at least it, or at most it for lower-is-better).

        >>> LOSS.reached(0.4, 0.5), TOP1.reached(0.4, 0.5)
        (True, False)
        """
        return value >= target if self.higher_is_better else value <= target

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("fn")
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Metric:
        known = {"name", "higher_is_better", "words", "scale", "unit", "decimals", "label"}
        return cls(**{k: v for k, v in d.items() if k in known})


LOSS = Metric(
    "val_loss", higher_is_better=False, words="validation loss", label="val loss", decimals=4
)
TRAIN_LOSS = Metric(
    "train_loss", higher_is_better=False, words="training loss", label="train loss", decimals=4
)
TOP1 = Metric(
    "val_top1",
    words="validation accuracy",
    scale=100.0,
    unit="points",
    decimals=2,
    label="val top-1 %",
)
TOP5 = Metric(
    "val_top5",
    words="top-5 validation accuracy",
    scale=100.0,
    unit="points",
    decimals=2,
    label="val top-5 %",
)
ENSEMBLE = Metric(
    "ensemble_top1",
    words="snapshot-ensemble accuracy",
    scale=100.0,
    unit="points",
    decimals=2,
    label="ensemble top-1 %",
)


def stability(primary: Metric) -> Metric:
    """``stability_std``: the std of ``primary`` over a trial's last evaluations (lower wins)."""
    return Metric(
        "stability_std",
        higher_is_better=False,
        words=f"stability (std of {primary.words})",
        scale=primary.scale,
        unit=primary.unit,
        decimals=primary.decimals,
        label="stability std" + (" (points)" if primary.unit == "points" else ""),
    )


def best(primary: Metric) -> Metric:
    """``best_<primary>``: the best evaluation of a trial."""
    return replace(primary, name=f"best_{primary.name}", words=f"best {primary.words}")


@dataclass(frozen=True)
class MetricSet:
    """The metrics a study records: the validation metrics in column order, and the primary.

    >>> CLASSIFICATION.primary.name, [m.name for m in CLASSIFICATION.columns]
    ('val_top1', ['val_top1', 'val_top5', 'val_loss', 'stability_std'])
    >>> CLASSIFICATION["stability_std"].scale, CLASSIFICATION["best_val_top1"].higher_is_better
    (100.0, True)
    """

    validation: tuple[Metric, ...]  # val_<metric> for each task metric, then val_loss

    @classmethod
    def of(cls, metrics: Iterable[Metric]) -> MetricSet:
        """The stored set for a task's own metrics (their short names)."""
        own = [m.stored("val") for m in metrics]
        names = [m.name for m in own]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"metrics: names must be unique; repeated: {', '.join(dup)}")
        if "val_loss" in names:
            raise ValueError("metrics: 'loss' is reserved for the task's loss; rename the metric")
        return cls((*own, LOSS))

    @property
    def primary(self) -> Metric:
        """The task's first metric, or the validation loss."""
        return self.validation[0]

    @property
    def columns(self) -> list[Metric]:
        """The final-metric columns of a report: validation metrics, then stability."""
        return [*self.validation, stability(self.primary)]

    @property
    def all(self) -> dict[str, Metric]:
        """Every stored key this set describes."""
        out = {m.name: m for m in (*self.columns, TRAIN_LOSS, ENSEMBLE, best(self.primary))}
        return out

    def __getitem__(self, key: str) -> Metric:
        try:
            return self.all[key]
        except KeyError:
            raise ValueError(
                f"metric {key!r} is not one this study records; known: {', '.join(self.all)}"
            ) from None

    def get(self, key: str) -> Metric | None:
        return self.all.get(key)

    @property
    def targets(self) -> list[str]:
        """Names a target may name: the validation metrics."""
        return [m.name for m in self.validation]

    def to_dict(self) -> dict[str, Any]:
        return {"validation": [m.to_dict() for m in self.validation]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> MetricSet:
        """The set a store recorded; a store from before metrics were recorded: classification."""
        if not d or not d.get("validation"):
            return CLASSIFICATION
        return cls(tuple(Metric.from_dict(m) for m in d["validation"]))


#: What the bundled classification tasks record (top-5 with more than five classes).
CLASSIFICATION = MetricSet((TOP1, TOP5, LOSS))
#: Names a study of a bundled task may use in ``analysis.metric``.
CLASSIFICATION_ANALYSES = (*CLASSIFICATION.targets, "stability_std", "ensemble_top1")
