"""The ``[task]`` table of a study file: which task (a bundled one or your own entry point)
and how it is trained and evaluated (see `lrlab.study.config`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from lrlab.study.config_fields import Count, Strict, check_count, one_of


class GroupsConfig(Strict):
    """How parameters are grouped for layer-wise methods and logging."""

    by: Literal["depth", "blocks"] = "depth"
    blocks: list[str] | None = None

    @model_validator(mode="after")
    def _blocks(self) -> GroupsConfig:
        if self.by == "blocks" and not self.blocks:
            raise ValueError(
                "by = 'blocks' needs blocks = [glob patterns], e.g. ['layer1*', 'layer2*']"
            )
        return self


class TaskConfig(Strict):
    """What is trained on what, and how it is evaluated.

    The task is a bundled one (``data`` and ``model``, with ``width``, ``data_options``,
    ``train_subset`` and ``downsample`` as its options) or your own: ``entry`` names a
    function returning an `lrlab.Task` (``"package.module:function"`` or
    ``"path/to/file.py:function"``, a relative path taken from the study file's
    directory), called with ``options`` as keyword arguments. ``batch_size`` defaults to
    the task's own (bundled tasks: the published baseline's, e.g. 64 for digits).
    """

    entry: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    data: str | None = None
    model: str | None = None
    width: Annotated[float, Field(gt=0)] = 1.0
    data_options: dict[str, Any] = Field(default_factory=dict)
    batch_size: Annotated[int, Field(ge=1)] | None = None
    epochs: Annotated[int, Field(ge=1)] = 10
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    threads: Annotated[int, Field(ge=1)] = 1
    amp: bool = False
    #: The fraction of the training set held out as the validation split every tuning
    #: step reads (range test, confirm, search objective, early readings, snapshots):
    #: seeded and stratified by class. The task's test split is scored once, at the end.
    #: Default (None): 0.1 when the task's validation split is its test split (every
    #: bundled task), else the task's own validation split. ``holdout = 0`` opts out (for
    #: the bundled tasks, validation is then the test split and the report says so).
    holdout: Annotated[float, Field(ge=0, lt=0.5)] | None = None
    train_subset: Annotated[int, Field(ge=1)] | None = None
    downsample: Annotated[int, Field(ge=1)] | None = None
    eval_every: Count | None = None
    eval_batches: Annotated[int, Field(ge=1)] | None = None
    stability_window: Annotated[int, Field(ge=2)] = 5
    groups: GroupsConfig = GroupsConfig()
    instrument_every: Count | None = None

    @field_validator("data")
    @classmethod
    def _data(cls, v: str | None) -> str | None:
        from lrlab.data import DATASETS

        return None if v is None else one_of("data", v, DATASETS, "a dataset")

    @field_validator("model")
    @classmethod
    def _model(cls, v: str | None) -> str | None:
        from lrlab.models import MODELS

        return None if v is None else one_of("model", v, MODELS, "a model")

    @field_validator("entry")
    @classmethod
    def _entry(cls, v: str | None) -> str | None:
        from lrlab.tasks.entry import split_entry

        if v is not None:
            split_entry(v)
        return v

    @field_validator("eval_every", "instrument_every")
    @classmethod
    def _counts(cls, v: Any, info: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool) and v == 0:  # every 0 updates
            raise ValueError(f"{info.field_name}=0 is invalid; expected a count of updates >= 1")
        return None if v is None else check_count(v, info.field_name)

    @model_validator(mode="after")
    def _one_task(self) -> TaskConfig:
        if self.entry is None:
            if self.data is None or self.model is None:
                missing = "model" if self.data is not None else "data"
                raise ValueError(
                    f"@{missing}: a task needs data = '<dataset>' and model = '<model>' "
                    "(a bundled task) or entry = 'package.module:function' (your own)"
                )
            if self.options:
                raise ValueError(
                    "@options: task.options are passed to an entry point; a bundled task "
                    "takes width, data_options, train_subset and downsample"
                )
            return self
        if self.data is not None or self.model is not None:
            raise ValueError(
                "@entry: entry names your own task and data/model a bundled one; give one"
            )
        bundled_only = {"width": 1.0, "data_options": {}, "train_subset": None, "downsample": None}
        for key, default in bundled_only.items():
            if getattr(self, key) != default:
                raise ValueError(
                    f"@{key}: task.{key} is an option of the bundled tasks; with entry = "
                    "..., pass your function's options in [task.options]"
                )
        return self

    @property
    def bundled(self) -> bool:
        """Whether this names a bundled task (``data`` and ``model``)."""
        return self.entry is None

    @property
    def label(self) -> str:
        """``data/model``, or the entry point (a file by its name), for messages and names."""
        if self.entry is None:
            return f"{self.data}/{self.model}"
        where, _, attr = self.entry.rpartition(":")
        return f"{Path(where).name}:{attr}" if where.endswith(".py") else self.entry
