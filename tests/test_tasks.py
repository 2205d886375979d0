"""The Task contract: validation, entry points, the metric registry, batching and evaluation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, IterableDataset, TensorDataset

import lrlab
from lrlab.data import batches, load_dataset
from lrlab.study import TaskConfig, parse_study
from lrlab.study.taskdata import build_task
from lrlab.tasks import (
    ACCURACY,
    BUNDLED,
    CLASSIFICATION,
    Metric,
    MetricSet,
    Task,
    TaskData,
    call_factory,
    load_entry,
    split_entry,
)


def _xy(n: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, generator=g), torch.randn(n, 1, generator=g)


class Pairs(Dataset):
    """A map-style dataset that is not a TensorDataset: batched by a DataLoader."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def _task(**kw: object) -> Task:
    x, y = _xy()
    args: dict = {
        "model": lambda: torch.nn.Linear(3, 1),
        "train": TensorDataset(x[:16], y[:16]),
        "val": TensorDataset(x[16:], y[16:]),
        "loss": F.mse_loss,
    }
    args.update(kw)
    return Task(**args)


def test_top_level_task_is_the_tasks_task() -> None:
    assert lrlab.Task is Task and lrlab.Metric is Metric


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"loss": None}, "give loss= (loss(outputs, targets)) or step="),
        ({"model": torch.nn.Linear(3, 1)}, None),  # a module is callable: accepted
        ({"model": 3}, "model=3 is not callable"),
        ({"train": [1, 2]}, None),  # any object with __getitem__ and __len__
        ({"train": 5}, "train=int is not a dataset"),
        ({"val": TensorDataset(torch.zeros(0, 3))}, "val is empty"),
        ({"batch_size": 0}, "batch_size=0 is invalid; expected an integer >= 1"),
        ({"num_workers": -1}, "num_workers=-1 is invalid; expected an integer >= 0"),
        ({"metrics": [lambda o, t: o]}, "is not a Metric with a function"),
        (
            {"metrics": [Metric("loss", lambda o, t: o)]},
            "'loss' is reserved for the task's loss",
        ),
        (
            {"metrics": [Metric("m", lambda o, t: o), Metric("m", lambda o, t: o)]},
            "names must be unique; repeated: val_m",
        ),
    ],
)
def test_task_checks_its_fields(kw: dict, message: str | None) -> None:
    if message is None:
        _task(**kw)
        return
    with pytest.raises(
        (ValueError, TypeError), match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        _task(**kw)


def test_an_iterable_train_set_needs_batches_per_epoch() -> None:
    class Stream(IterableDataset):
        def __iter__(self):  # type: ignore[no-untyped-def]
            yield from ((torch.zeros(3), torch.zeros(1)) for _ in range(10))

    with pytest.raises(ValueError, match="IterableDataset; give batches_per_epoch="):
        _task(train=Stream())
    assert _task(train=Stream(), batches_per_epoch=3).iters_per_epoch(4) == 3


def test_metric_registry_for_a_regression_task() -> None:
    mae = Metric("mae", lambda o, t: (o - t).abs().mean(1), higher_is_better=False)
    metrics = MetricSet.of([mae])
    assert [m.name for m in metrics.columns] == ["val_mae", "val_loss", "stability_std"]
    assert metrics.primary.name == "val_mae" and not metrics.primary.higher_is_better
    assert metrics["stability_std"].scale == 1.0 and metrics["stability_std"].unit == ""
    assert metrics["best_val_mae"].reached(0.1, 0.2)  # lower is better: 0.1 meets 0.2
    assert MetricSet.from_dict(metrics.to_dict()) == metrics
    assert MetricSet.from_dict(None) is CLASSIFICATION  # stores from before the registry
    assert MetricSet.of([]).primary.name == "val_loss"
    with pytest.raises(ValueError, match="metric 'val_top1' is not one this study records"):
        metrics["val_top1"]


def test_bundled_tasks_record_the_classification_set() -> None:
    task = BUNDLED["mnist1d"](model="cnn1d")
    assert task.metric_set == CLASSIFICATION
    assert task.batch_size == 100 and task.plain
    assert CLASSIFICATION["stability_std"].label == "stability std (points)"


def test_tensor_fast_path_is_lrlab_data_batches() -> None:
    ds = load_dataset("digits")
    data = TaskData(BUNDLED["digits"](model="mlp"), batch_size=64, seed=3)
    ours = list(data.train_batches(epoch=2))
    theirs = list(batches(ds.x_train, ds.y_train, 64, seed=3, epoch=2))
    assert len(ours) == len(theirs) == data.iters_per_epoch == 23
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(ours, theirs))


def test_loader_batches_are_a_function_of_seed_and_epoch_only() -> None:
    x, y = _xy(50)
    task = _task(train=Pairs(x, y))
    rng = torch.get_rng_state()
    first = [b[0] for b in TaskData(task, batch_size=8, seed=1).train_batches(4)]
    torch.manual_seed(123)  # the global generator plays no part
    again = [b[0] for b in TaskData(task, batch_size=8, seed=1).train_batches(4)]
    other = [b[0] for b in TaskData(task, batch_size=8, seed=1).train_batches(5)]
    assert all(torch.equal(a, b) for a, b in zip(first, again)) and len(first) == 7
    assert not torch.equal(torch.cat(first), torch.cat(other))
    assert sorted(torch.cat(first)[:, 0].tolist()) == sorted(x[:, 0].tolist())  # a permutation
    torch.set_rng_state(rng)


def test_an_iterable_dataset_is_told_the_epoch_and_read_for_batches_per_epoch() -> None:
    class Stream(IterableDataset):
        epoch = -1

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __iter__(self):  # type: ignore[no-untyped-def]
            for i in range(7):
                yield torch.tensor([float(self.epoch), float(i)]), torch.zeros(1)

    stream = Stream()
    task = Task(lambda: torch.nn.Linear(2, 1), stream, stream, F.mse_loss, batches_per_epoch=3)
    data = TaskData(task, batch_size=2)
    got = list(data.train_batches(epoch=5))
    assert [b[0][:, 0].tolist() for b in got] == [[5.0, 5.0]] * 3  # 3 batches of epoch 5
    short = Task(lambda: torch.nn.Linear(2, 1), stream, stream, F.mse_loss, batches_per_epoch=9)
    with pytest.raises(ValueError, match="train yielded 4 batches in epoch 0; batches_per_epoch"):
        list(TaskData(short, batch_size=2).train_batches(epoch=0))


def test_evaluate_sums_the_loss_exactly_and_weights_batch_means() -> None:
    x, y = _xy(2500)
    batch_mean = Metric("bias", lambda o, t: (o - t).mean(), higher_is_better=False)
    per_example = Metric("mae", lambda o, t: (o - t).abs().mean(1), higher_is_better=False)
    task = _task(
        train=TensorDataset(x, y), val=TensorDataset(x, y), metrics=[per_example, batch_mean]
    )
    torch.manual_seed(0)
    model = task.model()
    got = TaskData(task).evaluate(model)
    with torch.no_grad():
        out = model(x)
        chunks = [(out[i : i + 1000], y[i : i + 1000]) for i in range(0, 2500, 1000)]
        loss = sum(float(F.mse_loss(o, t, reduction="sum")) for o, t in chunks) / 2500
        mae = sum(float((o - t).abs().mean(1).sum()) for o, t in chunks) / 2500
        bias = sum(float((o - t).mean()) * len(t) for o, t in chunks) / 2500
    assert got == {"val_loss": loss, "val_mae": mae, "val_bias": bias}
    assert math.isclose(got["val_loss"], float(F.mse_loss(out, y)), rel_tol=1e-5)


def test_bundled_evaluation_is_cross_entropy_and_top_k_over_1000_example_chunks() -> None:
    task = BUNDLED["digits"](model="mlp")
    torch.manual_seed(0)
    model = task.model().eval()
    got = TaskData(task).evaluate(model)
    x, y = task.val.tensors
    with torch.no_grad():
        out = model(x)
    ranks = out.topk(5, dim=1).indices
    assert got["val_loss"] == float(F.cross_entropy(out, y, reduction="sum")) / len(y)
    assert got["val_top1"] == float((ranks[:, 0] == y).sum()) / len(y)
    assert got["val_top5"] == float((ranks == y[:, None]).any(dim=1).sum()) / len(y)


def test_a_step_task_evaluates_its_step_and_its_metrics_from_predict() -> None:
    x = torch.randn(30, 4)
    y = (x[:, 0] > 0).long()
    data = [{"x": x[i], "y": y[i]} for i in range(30)]

    def collate(items: list[dict]) -> dict:
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}

    task = Task(
        lambda: torch.nn.Linear(4, 2),
        data,
        data,
        step=lambda m, b: F.cross_entropy(m(b["x"]), b["y"]),
        predict=lambda m, b: (m(b["x"]), b["y"]),
        metrics=[ACCURACY],
        collate_fn=collate,
    )
    torch.manual_seed(0)
    model = task.model()
    got = TaskData(task, batch_size=8).evaluate(model)
    with torch.no_grad():
        out = model(x)
    assert got["val_top1"] == float((out.argmax(1) == y).sum()) / 30
    assert math.isclose(got["val_loss"], float(F.cross_entropy(out, y)), rel_tol=1e-6)


MODULE = """
import torch
from torch.utils.data import TensorDataset
import lrlab

def make(n: int = 12, *, scale: float = 1.0) -> lrlab.Task:
    x = torch.randn(n, 2)  # seeded to 0 by lrlab: the same data in every process
    data = TensorDataset(x, scale * x.sum(1, keepdim=True))
    return lrlab.Task(lambda: torch.nn.Linear(2, 1), data, data, torch.nn.functional.mse_loss)

class Factory:
    @staticmethod
    def build() -> lrlab.Task:
        return make(4)

def not_a_task():
    return 42
"""


def test_entry_points_by_module_by_file_and_dotted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "user_tasks_mod.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    by_module = call_factory(load_entry("user_tasks_mod:make"), {"n": 5}, "m")
    by_file = call_factory(load_entry(f"{tmp_path / 'user_tasks_mod.py'}:make"), {}, "f")
    dotted = call_factory(load_entry("user_tasks_mod:Factory.build"), {}, "d")
    assert len(by_module.train) == 5 and len(by_file.train) == 12 and len(dotted.train) == 4
    again = call_factory(load_entry("user_tasks_mod:make"), {"n": 5}, "m")
    assert torch.equal(by_module.train.tensors[0], again.train.tensors[0])  # seeded: same data
    with pytest.raises(ValueError, match=r"does not take|unexpected keyword.*it takes: n, scale"):
        call_factory(load_entry("user_tasks_mod:make"), {"size": 3}, "user_tasks_mod:make")
    with pytest.raises(TypeError, match=r"returned int; expected an lrlab\.Task"):
        call_factory(load_entry("user_tasks_mod:not_a_task"), {}, "user_tasks_mod:not_a_task")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("nocolon", "expected 'package.module:function' or 'path/to/file.py:function'"),
        ("mod:", "expected 'package.module:function'"),
        ("bad name:f", "is neither a module name nor a .py file"),
        ("no_such_module_xyz:f", "no module named 'no_such_module_xyz' on sys.path"),
        ("/nowhere/t.py:f", "no file '/nowhere/t.py'"),
        ("lrlab.tasks:nothing_here", "has no attribute 'nothing_here'"),
    ],
)
def test_bad_entry_points_say_which_forms_work(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_entry(entry)
    assert split_entry("a.b:c") == ("a.b", "c")


def test_a_study_file_entry_is_taken_from_the_study_files_directory(tmp_path: Path) -> None:
    from lrlab.study import load_study

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "t.py").write_text(MODULE)
    (tmp_path / "sub" / "s.toml").write_text(
        'name = "s"\n[task]\nentry = "t.py:make"\nepochs = 1\n[task.options]\nn = 8\n'
        '[[arms]]\nname = "a"\nlr = "constant(level=0.1)"\n'
    )
    study = load_study(tmp_path / "sub" / "s.toml")
    assert study.task.entry == f"{tmp_path / 'sub' / 't.py'}:make"
    assert len(build_task(study.task).train) == 8


BASE = {"name": "t", "arms": [{"name": "a", "lr": "constant(level=0.1)"}]}


@pytest.mark.parametrize(
    ("task", "extra", "message"),
    [
        ({}, {}, "task.data: a task needs data = '<dataset>' and model = '<model>'"),
        ({"data": "digits"}, {}, "task.model: a task needs"),
        (
            {"entry": "m:f", "data": "digits", "model": "mlp"},
            {},
            "task.entry: entry names your own task and data/model a bundled one",
        ),
        ({"entry": "m:f", "width": 2.0}, {}, "task.width: task.width is an option of the bundled"),
        ({"data": "digits", "model": "mlp", "options": {"n": 1}}, {}, "task.options: task.options"),
        ({"entry": "m:f"}, {"targets": {"accuracy": 0.9}}, "targets: unknown metric(s) accuracy"),
        (
            {"entry": "m:f"},
            {"analysis": {"metric": "mae"}},
            "analysis.metric='mae' is not a metric of this task",
        ),
        (
            {"data": "digits", "model": "mlp"},
            {"analysis": {"metric": "val_mae"}},
            "expected one of val_top1, val_top5, val_loss, stability_std, ensemble_top1",
        ),
    ],
)
def test_task_tables_name_exactly_one_task(task: dict, extra: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_study({**BASE, "task": task, **extra}, source="s.toml")
    assert message in str(info.value), str(info.value)


def test_user_task_targets_and_analysis_name_its_validation_metrics() -> None:
    study = parse_study(
        {
            **BASE,
            "task": {"entry": "m:f"},
            "targets": {"val_mae": 0.1},
            "analysis": {"metric": "val_mae"},
        }
    )
    assert study.task.entry == "m:f" and study.task.batch_size is None
    assert TaskConfig(data="digits", model="mlp").label == "digits/mlp"


def test_a_module_entry_is_also_looked_up_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    (tmp_path / "cwd_only_task.py").write_text(MODULE)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.chdir(tmp_path)
    task = call_factory(load_entry("cwd_only_task:make"), {"n": 3}, "cwd_only_task:make")
    assert len(task.train) == 3 and str(tmp_path) in sys.path


def test_holdout_splits_any_map_style_training_set_as_the_bundled_data_do() -> None:
    from lrlab.tasks import holdout

    ds = load_dataset("digits")
    _, val = ds.holdout(0.1, seed=0)
    tensors = holdout(BUNDLED["digits"](model="mlp"), 0.1)
    x, y = ds.x_train, ds.y_train
    pairs = holdout(
        Task(lambda: torch.nn.Linear(64, 10), Pairs(x, y), Pairs(x, y), F.mse_loss), 0.1
    )
    # any map-style set: the same permutation as the bundled data's own holdout
    assert torch.equal(torch.stack([pairs.val[i][0] for i in range(len(pairs.val))]), val.x_test)
    # labelled tensors: stratified, 144 = round(0.1 * 1438) shared by largest remainders
    # (classes of 142 to 146 examples give 14 or 15 each)
    counts = torch.bincount(ds.y_train, minlength=10)
    held = torch.bincount(tensors.val.tensors[1], minlength=10)
    assert sum(held.tolist()) == 144 == len(val.y_test)
    assert all(abs(int(h) - 0.1 * int(c)) < 1 for h, c in zip(held, counts))
    assert len(tensors.train) + len(tensors.val) == len(x)
    assert len(pairs.train) + len(pairs.val) == len(x) and tensors.test is not None
    with pytest.raises(ValueError, match="leaves an empty part"):
        holdout(_task(), 0.01)


def test_sweep_task_on_tensors_is_the_range_test_on_the_first_epochs_batches() -> None:
    from lrlab.optim import param_groups
    from lrlab.rangetest import range_test
    from lrlab.study.find import sweep_task

    ds = load_dataset("digits")

    def start() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = BUNDLED["digits"](model="mlp").model()
        return model, torch.optim.SGD(param_groups(model), lr=0.1, momentum=0.9)

    model, opt = start()
    ours = sweep_task(model, opt, ds.x_train, ds.y_train, ds.x_test, ds.y_test, 64, 0,
                      num_updates=20)  # fmt: skip
    model, opt = start()
    val = [(ds.x_test[i : i + 500], ds.y_test[i : i + 500]) for i in range(0, 359, 500)]
    train = list(batches(ds.x_train, ds.y_train, 64, seed=0, epoch=0))
    theirs = range_test(model, opt, train, loss_fn=F.cross_entropy, val_data=val, num_updates=20)
    assert ours.losses == theirs.losses and ours.val_losses == theirs.val_losses


def test_holdout_keeps_a_round_training_set_round() -> None:
    """MNIST-1D's 4,000 training examples hold out exactly 400 (rounding each class on its
    own held out 399, and 3,601 examples in batches of 100 ended every epoch on a
    one-example update: 1cycle and step decay at LR 0.3 then lost 8-60 points)."""
    from lrlab.tasks import holdout

    task = BUNDLED["mnist1d"](model="mlp")
    split = holdout(task, 0.1)
    assert (len(split.train), len(split.val)) == (3600, 400)
    data = TaskData(split, batch_size=100, seed=0)
    assert {len(b[0]) for b in data.train_batches(epoch=0)} == {100}
