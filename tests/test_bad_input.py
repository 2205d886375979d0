"""Bad input, as a new user types it: every case exits 2 with one line naming the field.

Each case runs the CLI in-process and asserts the whole promise: exit code 2, exactly one
non-empty line on stderr, starting ``error:``, no traceback, and the words that name the
field (and where it matters the value). Classes: schedule specs, study files, CLI flags,
outputs, stores, and settings refused before training.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lrlab.cli.main import app
from lrlab.study import StudyStore, TrialRow
from lrlab.study.lock import StudyLock


def _invoke(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.stdout, result.stderr


def _assert_one_line_error(code: int, out: str, err: str, names: tuple[str, ...]) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, out, err)
    assert len(lines) == 1, err
    assert "Traceback" not in out + err
    assert lines[0].startswith("error: "), lines[0]
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _study(
    *, name: str = "tiny", top: str = "", task: str = "", arm: str = "", more: str = ""
) -> str:
    return (
        f'name = "{name}"\nseeds = [0]\n{top}\n'
        '[task]\ndata = "mnist1d"\nmodel = "mlp"\nepochs = 2\nbatch_size = 100\n'
        f"train_subset = 200\n{task}\n"
        f'[[arms]]\nname = "c"\nlr = "constant(level=0.1)"\n{arm}\n{more}'
    )


# ----------------------------------------------------------------------------- schedule specs
SPECS: list[tuple[list[str], tuple[str, ...]]] = [
    (["show", "onecycle(max_lr=1,total=10)"], ("unknown schedule 'onecycle'", "one_cycle")),
    (["show", "one_cycle(max_lr=-1,total=10)"], ("max_lr=-1",)),
    (["show", "one_cycle(max_lr=1,total="], ("not a call",)),
    (["show", "one_cycle(total=10)"], ("max_lr",)),
    (["show", "step(init=0.1,step_size=1.5)"], ("step_size=1.5", "integer")),
    (["show", "cosine(init=0.1,total=10,bogus=1)"], ("bogus",)),
    (["show", "constant(level=nan)"], ("level=nan",)),
    (["show", "cosine(init=0.1,total=10,after_end='loop')"], ("after_end",)),
    (["show", "cosine(init=0.1,total=10)", "--momentum", "bogus"], ("bogus",)),
    (["show", "cosine(init=0.1,total=10)", "--horizon", "0"], ("--horizon=0",)),
    (["show", "sgdr(max_lr=0.1,t_0=1,t_mult=2,cycles=100)"], ("cycles=100", "2**63")),
    (["show", '{"kind": "cosine", "init": 0.1'], ("spec",)),
    (["show", "sgdr(max_lr=0.1,t_0=0)"], ("t_0=0",)),
    (["plot", "triangular(base_lr=0.1,max_lr=1,step_size=5)", "-o", "x.png"], ("runs forever",)),
    (["plot", "constant(level=0.1,total=1000000000000000000000000)", "-o", "x.png"], ("1e+12",)),
    (["plot", "cosine(init=0.1,total=10)", "--horizon", "10000000000000000000000"], ("--horizon",)),
    (["plot", "sgdr(max_lr=0.1,t_0=1,cycles=100000000)", "-o", "x.png"], ("phases",)),
]


@pytest.mark.parametrize(("args", "names"), SPECS, ids=[" ".join(a)[:60] for a, _ in SPECS])
def test_schedule_specs(
    args: list[str], names: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _assert_one_line_error(*_invoke(["schedule", *args]), names)
    assert not list(tmp_path.iterdir())  # nothing written


# ----------------------------------------------------------------------------- study files
STUDIES: list[tuple[str, str, tuple[str, ...]]] = [
    ("seed-negative", _study().replace("seeds = [0]", "seeds = [-1]"), ("seeds", "-1")),
    ("seed-not-integer", _study().replace("seeds = [0]", "seeds = [0, 1.5]"), ("seeds", "1.5")),
    ("seeds-repeated", _study().replace("seeds = [0]", "seeds = [0, 0]"), ("seeds",)),
    ("seeds-empty", _study().replace("seeds = [0]", "seeds = []"), ("seeds",)),
    ("name-spaces", _study(name="my study"), ("name", "my study")),
    ("epochs-0", _study().replace("epochs = 2", "epochs = 0"), ("task.epochs",)),
    ("batch-0", _study().replace("batch_size = 100", "batch_size = 0"), ("task.batch_size",)),
    ("data-unknown", _study().replace('"mnist1d"', '"imagenet"'), ("task.data", "imagenet")),
    ("model-unknown", _study().replace('"mlp"', '"vgg"'), ("task.model", "vgg")),
    ("device-unknown", _study(task='device = "tpu"'), ("task.device", "tpu")),
    ("eval-every-0", _study(task="eval_every = 0"), ("task.eval_every", "eval_every=0")),
    ("instrument-0", _study(task="instrument_every = 0"), ("task.instrument_every",)),
    ("holdout-big", _study(task="holdout = 0.7"), ("task.holdout", "0.7")),
    ("task-extra-key", _study(task="bogus = 1"), ("task.bogus",)),
    (
        "lr-unknown",
        _study().replace("constant(level=0.1)", "onecycle(max_lr=0.1)"),
        ("arms[0].lr",),
    ),
    ("lr-negative", _study().replace("level=0.1", "level=-0.1"), ("arms[0].lr", "level=-0.1")),
    ("momentum-1.5", _study(arm="momentum = 1.5"), ("arms[0].momentum", "1.5")),
    (
        "freeze-after-end",
        _study(arm='freeze = { events = [{ at = 5, action = "freeze", blocks = ["*"] }] }'),
        ("arms[0].freeze.events[0].at", "at=5", "epochs = 2"),
    ),
    (
        "freeze-after-end-epochs",
        _study(
            arm='freeze = { events = [{ at = "3 epochs", action = "freeze", blocks = ["*"] }] }'
        ),
        ("arms[0].freeze.events[0].at", "3 epochs"),
    ),
    (
        "torch-scheduler-kind",
        _study(arm='torch_scheduler = "OneCycleLR"'),
        ("arms[0].lr", "one_cycle_torch", "'constant'"),
    ),
    (
        "arm-names-repeated",
        _study(more='[[arms]]\nname = "c"\nlr = "constant(level=0.2)"\n'),
        ("arm names", "c"),
    ),
    ("baseline-unknown", _study(top='baseline = "nope"'), ("baseline", "nope")),
    ("optimizer-unknown", _study(more='[optimizer]\nname = "sgdd"\n'), ("optimizer.name", "sgdd")),
    (
        "early-epoch-late",
        _study(more='[analysis]\nkind = "early_reading"\nearly_epoch = 5\n'),
        ("analysis.early_epoch", "5"),
    ),
    ("targets-unknown", _study(more="[targets]\nval_top9 = 0.5\n"), ("targets", "val_top9")),
    (
        "range-test-bounds",
        _study(arm="range_test = { start_lr = 1.0, end_lr = 0.1 }"),
        ("end_lr=0.1", "start_lr=1.0"),
    ),
    ("not-toml", "name = \n[task", ("s.toml", "not valid TOML")),
    ("empty-file", "", ("s.toml", "name")),
]


@pytest.mark.parametrize(("text", "names"), [c[1:] for c in STUDIES], ids=[c[0] for c in STUDIES])
def test_study_files(
    text: str, names: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(text, encoding="utf-8")
    _assert_one_line_error(*_invoke(["study", "run", "s.toml", "--dir", "out"]), names)
    assert not (tmp_path / "out").exists()  # refused before the study directory is made


def test_a_study_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes(_study(name="caf\xe9").encode("latin-1"))
    _assert_one_line_error(
        *_invoke(["study", "run", str(path)]), ("latin.toml", "not UTF-8", "0xe9")
    )


@pytest.mark.parametrize(
    ("make", "names"),
    [
        (lambda d: (d / "adir.toml").mkdir() or "adir.toml", ("adir.toml",)),
        (lambda d: "missing.toml", ("missing.toml", "does not exist")),
        (lambda d: "no_such_bundled_study", ("no_such_bundled_study", "bundled")),
    ],
    ids=["directory", "missing-file", "unknown-bundled-name"],
)
def test_study_file_paths(
    make: Callable[[Path], str],
    names: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    _assert_one_line_error(*_invoke(["study", "run", make(tmp_path)]), names)


def test_unknown_preset_is_named(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(_study(more="[presets.small]\nseeds = [1]\n"))
    _assert_one_line_error(
        *_invoke(["study", "run", str(tmp_path / "s.toml"), "--preset", "big"]),
        ("preset 'big'", "small"),
    )


# ----------------------------------------------------------------------------- CLI flags
FLAGS: list[tuple[list[str], tuple[str, ...]]] = [
    (["study", "run", "--workers", "0", "x"], ("lrlab study run", "--workers=0", ">= 1")),
    (["study", "run", "--workers", "abc", "x"], ("--workers=abc", "integer")),
    (["study", "run"], ("lrlab study run", "missing argument STUDY")),
    (["study", "run", "x", "--bogus"], ("no such option --bogus", "--workers")),
    (["study", "run", "x", "--worker", "2"], ("--worker", "did you mean", "--workers")),
    (["study", "run", "x", "y"], ("unexpected extra argument", "y")),
    (["study", "run", "x", "--preset"], ("--preset needs a value",)),
    (["study", "run", "x", "--restart=3"], ("--restart", "does not take a value")),
    (["study", "run", "x", "--cpus-per-trial", "many"], ("--cpus-per-trial=many",)),
    (["study", "sprint"], ("no such command 'sprint'", "run")),
    (["bogus"], ("no such command 'bogus'", "schedule")),
    (["schedule", "shw", "x"], ("did you mean 'show'", "plot")),
    (["schedule", "show", "cosine(init=0.1,total=9)", "--horizon", "ten"], ("--horizon=ten",)),
    (["report"], ("lrlab report", "missing argument STUDY_DIR")),
    (["findings"], ("lrlab findings", "missing argument STUDY_DIRS")),
    (["search", "x", "--trials", "abc"], ("lrlab search", "--trials=abc")),
    (["search", "x", "--workers", "0"], ("--workers=0",)),
    (["find", "--data", "mnist1d"], ("lrlab find", "missing option --model")),
    (["demo", "--workers", "-1"], ("lrlab demo", "--workers=-1")),
]


@pytest.mark.parametrize(("args", "names"), FLAGS, ids=[" ".join(a) for a, _ in FLAGS])
def test_cli_flags(
    args: list[str], names: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _assert_one_line_error(*_invoke(args), names)
    assert not list(tmp_path.iterdir())


def test_bad_executor_is_named(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(_study())
    _assert_one_line_error(
        *_invoke(["study", "run", str(tmp_path / "s.toml"), "--executor", "slurm"]),
        ("--executor='slurm'", "'local' or 'ray'"),
    )


# ----------------------------------------------------------------------------- outputs
def test_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths lrlab writes to that cannot be written: each named, nothing half-made."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    (tmp_path / "adir.png").mkdir()
    (tmp_path / "s.toml").write_text(_study())
    spec = "cosine(init=0.1,total=10)"
    cases: list[tuple[list[str], tuple[str, ...]]] = [
        (["schedule", "plot", spec, "-o", "x.jpg"], ("--output='x.jpg'", ".png")),
        (["schedule", "plot", spec, "-o", "/proc/x.png"], ("--output='/proc/x.png'",)),
        (["schedule", "plot", spec, "-o", "afile/x.png"], ("--output='afile/x.png'",)),
        (["schedule", "plot", spec, "-o", "adir.png"], ("--output='adir.png'",)),
        (["study", "run", "s.toml", "--checkpoint-dir", "afile"], ("--checkpoint-dir", "afile")),
        (["study", "run", "s.toml", "--checkpoint-dir", "afile/ck"], ("--checkpoint-dir",)),
        (["study", "run", "s.toml", "--dir", "afile"], ("--dir", "afile", "is a file")),
        (["study", "run", "s.toml", "--dir", "afile/out"], ("--dir", "afile/out")),
        (["findings", "good", "-o", "afile/f.md"], ("--output='afile/f.md'", "writable")),
        (["findings", "good", "-o", "/proc/f.md"], ("--output='/proc/f.md'",)),
    ]
    _real_store(tmp_path / "good" / "study.db")
    for args, names in cases:
        _assert_one_line_error(*_invoke(args), names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.png", "afile", "good", "s.toml"]


# ----------------------------------------------------------------------------- stores
def _real_store(path: Path) -> None:
    """A store as a run leaves it: config, one finished trial with a few thousand metrics."""
    store = StudyStore(path)
    store.set_meta("config", {"name": "t", "arms": [{"name": "a"}]})
    store.add_trials([TrialRow("a@seed0", "a", 0, "h", {}, "pending")])
    history = [{"step": i, "epoch": i / 10, "val_top1": 0.5, "lr": 0.1} for i in range(3000)]
    store.finish({"id": "a@seed0", "status": "done", "history": history, "final": {}})
    store.close()


def _make_store(kind: str, directory: Path) -> None:
    directory.mkdir(parents=True)
    db = directory / "study.db"
    if kind == "zero-bytes":
        db.write_bytes(b"")
    elif kind == "garbage":
        db.write_bytes(os.urandom(8192))
    elif kind == "truncated":
        _real_store(db)
        size = db.stat().st_size
        with open(db, "r+b") as f:
            f.truncate(size // 3)
    elif kind == "foreign":
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE users (name TEXT)")
        con.commit()
        con.close()
    elif kind == "no-study-db":
        pass


STORE_KINDS = ["zero-bytes", "garbage", "truncated", "foreign"]


@pytest.mark.parametrize("kind", STORE_KINDS)
@pytest.mark.parametrize("command", ["report", "findings", "study run"])
def test_stores(kind: str, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _make_store(kind, tmp_path / "runs")
    before = (tmp_path / "runs" / "study.db").read_bytes()
    (tmp_path / "s.toml").write_text(_study())
    args = {
        "report": ["report", "runs"],
        "findings": ["findings", "runs", "-o", "f.md"],
        "study run": ["study", "run", "s.toml", "--dir", "runs", "--no-report"],
    }[command]
    line = _assert_one_line_error(*_invoke(args), ("study.db",))
    assert "--restart" in line or "point lrlab at a study directory" in line  # what to do
    assert (tmp_path / "runs" / "study.db").read_bytes() == before  # never written into
    assert not (tmp_path / "f.md").exists()


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["report", "nowhere"], ("'nowhere'", "does not exist")),
        (["report", "empty"], ("no study.db", "lrlab study run")),
        (["findings", "empty", "-o", "f.md"], ("no study.db", "empty")),
        (["study", "run", "s.toml", "--dir", "empty", "--restart"], ("--restart", "no study.db")),
    ],
    ids=["report-missing-dir", "report-no-store", "findings-no-store", "restart-not-a-study"],
)
def test_missing_stores(
    args: list[str], names: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "keep.txt").write_text("mine")
    (tmp_path / "s.toml").write_text(_study())
    _assert_one_line_error(*_invoke(args), names)
    assert [p.name for p in (tmp_path / "empty").iterdir()] == ["keep.txt"]


def test_a_study_directory_in_use_is_refused_naming_the_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(_study())
    _real_store(tmp_path / "busy" / "study.db")
    with StudyLock(tmp_path / "busy"):  # another open file description: flock refuses it
        for extra in ([], ["--restart"]):
            args = ["study", "run", "s.toml", "--dir", "busy", *extra]
            _assert_one_line_error(*_invoke(args), ("in use", f"pid {os.getpid()}", "host "))
    assert (tmp_path / "busy" / "study.db").exists()  # --restart deleted nothing


# ----------------------------------------------------------------------------- before training
def test_cuda_without_a_gpu_is_refused_before_any_data_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import lrlab.tasks.bundled as bundled

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(bundled, "load_dataset", _must_not_load)
    (tmp_path / "s.toml").write_text(_study(task='device = "cuda"'))
    args = ["study", "run", str(tmp_path / "s.toml"), "--dir", str(tmp_path / "out")]
    _assert_one_line_error(*_invoke(args), ("task.device='cuda'", "'cpu' or 'auto'"))
    assert not (tmp_path / "out" / "study.db").exists()


def test_a_missing_optimizer_package_is_refused_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    import lrlab.tasks.bundled as bundled

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "prodigyopt" else real(name)
    )
    monkeypatch.setattr(bundled, "load_dataset", _must_not_load)
    (tmp_path / "s.toml").write_text(_study(more='[optimizer]\nname = "prodigy"\n'))
    args = ["study", "run", str(tmp_path / "s.toml"), "--dir", str(tmp_path / "out")]
    _assert_one_line_error(
        *_invoke(args), ("optimizer.name='prodigy'", "lrlab[optimizers]", "pip install prodigyopt")
    )


def _must_not_load(*args: object, **kwargs: object) -> None:
    raise AssertionError("data loaded before the study's settings were checked")


# ------------------------------------------------- checked on the real model, before training
_WRONG_SHAPE_TASK = """
import torch
from torch import nn
from torch.utils.data import TensorDataset

import lrlab


def task(hidden: int = 8) -> lrlab.Task:
    x, y = torch.randn(64, 5), torch.randint(0, 2, (64,))
    return lrlab.Task(
        model=lambda: nn.Sequential(nn.Linear(7, hidden), nn.Linear(hidden, 2)),
        train=TensorDataset(x, y), val=TensorDataset(x, y),
        loss=nn.functional.cross_entropy, batch_size=16,
    )
"""

MODEL_CHECKS: list[tuple[str, str, tuple[str, ...]]] = [
    (
        "freeze-matches-nothing",
        _study(arm='freeze = { events = [{ at = 1, action = "freeze", blocks = ["head*"] }] }'),
        ("arm 'c'", "freeze", "['head*']", "matches no parameter", "top-level blocks are"),
    ),
    (
        "block-patterns-leave-parameters-out",
        _study(task='groups = { by = "blocks", blocks = ["nothing*"] }'),
        ("task.groups", "match no pattern"),
    ),
    (
        "unknown-data-option",
        _study(task="data_options = { bogus = 1 }"),
        ("task.data_options", "'bogus'", "allowed"),
    ),
]


@pytest.mark.parametrize(
    ("text", "names"), [c[1:] for c in MODEL_CHECKS], ids=[c[0] for c in MODEL_CHECKS]
)
def test_what_only_the_model_can_tell_is_refused_before_any_trial(
    text: str, names: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lrlab.study.trainer as trainer

    monkeypatch.setattr(trainer, "run_trial", _must_not_train)
    (tmp_path / "s.toml").write_text(text)
    args = ["study", "run", str(tmp_path / "s.toml"), "--dir", str(tmp_path / "out")]
    _assert_one_line_error(*_invoke(args), names)
    assert not (tmp_path / "out" / "study.db").exists()


def test_a_user_model_that_does_not_fit_its_data_is_refused_before_any_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lrlab.study.trainer as trainer

    monkeypatch.setattr(trainer, "run_trial", _must_not_train)
    (tmp_path / "wrong.py").write_text(_WRONG_SHAPE_TASK)
    (tmp_path / "s.toml").write_text(
        'name = "w"\nseeds = [0, 1]\n[task]\nentry = "wrong.py:task"\nepochs = 1\n'
        '[[arms]]\nname = "c"\nlr = "constant(level=0.1)"\n'
    )
    args = ["study", "run", str(tmp_path / "s.toml"), "--dir", str(tmp_path / "out")]
    line = _assert_one_line_error(
        *_invoke(args), ("task: the first training batch fails", "RuntimeError", "mat1")
    )
    assert "(16x5 and 7x8)" in line  # the shapes, as PyTorch names them
    assert not (tmp_path / "out" / "study.db").exists()


def test_the_model_check_moves_no_random_stream(tmp_path: Path) -> None:
    """The check builds the task's model once under a forked RNG: a study run with it
    gives the same weights as the trial's own seed gives (bit-identical results)."""
    import torch

    from lrlab.study.config import parse_study
    from lrlab.study.preflight import check_models
    from lrlab.study.resolve import expand

    study = parse_study(tomllib_loads(_study()))
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    check_models(expand(study, str(tmp_path)))
    assert torch.equal(torch.rand(3), before)


def tomllib_loads(text: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads(text)


def _must_not_train(*args: object, **kwargs: object) -> None:
    raise AssertionError("a trial started before the study's model was checked")
