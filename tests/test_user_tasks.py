"""Your own model and data, end to end: a task module written here, run through ``lrlab study
run`` (killed with SIGKILL and resumed), ``lrlab report``, ``lrlab find`` and ``lrlab search``.

Two tasks: (a) a regression MLP with MSE and a mean-absolute-error metric on synthetic
data (a map-style Dataset, so batches come from a seeded DataLoader), and (b) a sequence
classifier (embedding + GRU over token ids) whose variable-length examples are padded by
its own ``collate_fn`` into dict batches that its own ``step`` and ``predict`` read.

The kill is a real SIGKILL of the ``lrlab`` process, sent by the training set itself when
``LRLAB_TEST_KILL_AFTER`` examples have been read (in the second epoch, after the first
epoch's checkpoint): deterministic, and independent of how fast the machine is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lrlab.cli.main import main
from lrlab.study import StudyStore

REGRESSION = '''
import os, signal
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset
import lrlab


class Points(Dataset):
    """Synthetic regression points; the training set may kill its own process (tests)."""

    def __init__(self, x, y, killable=False):
        self.x, self.y, self.reads = x, y, 0
        self.kill_after = int(os.environ.get("LRLAB_TEST_KILL_AFTER", "0")) if killable else 0

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        self.reads += 1
        if self.kill_after and self.reads == self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.x[i], self.y[i]


def make(n: int = 384, noise: float = 0.05, hidden: int = 16, in_memory: bool = False):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    w = torch.tensor([[1.0], [-2.0], [0.5], [0.0]])
    y = torch.sin(x @ w) + noise * torch.randn(n, 1, generator=g)
    cut = n * 3 // 4
    if in_memory:
        train, val = TensorDataset(x[:cut], y[:cut]), TensorDataset(x[cut:], y[cut:])
    else:
        train, val = Points(x[:cut], y[:cut], killable=True), Points(x[cut:], y[cut:])
    mae = lrlab.Metric("mae", lambda out, t: (out - t).abs().mean(dim=1),
                       higher_is_better=False, words="mean absolute error")
    return lrlab.Task(
        model=lambda: nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 1)),
        train=train, val=val, loss=nn.functional.mse_loss, metrics=[mae],
        batch_size=32, name="regression",
    )
'''

SEQUENCE = '''
import os, signal
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence
from torch.utils.data import Dataset
import lrlab
from lrlab.tasks import ACCURACY

VOCAB = 12


class Sequences(Dataset):
    """Token sequences of 3-10 ids in 1..11; the label says whether id 7 occurs."""

    def __init__(self, n, seed, killable=False):
        g = torch.Generator().manual_seed(seed)
        lengths = torch.randint(3, 11, (n,), generator=g)
        self.items = [torch.randint(1, VOCAB, (int(k),), generator=g) for k in lengths]
        self.reads = 0
        self.kill_after = int(os.environ.get("LRLAB_TEST_KILL_AFTER", "0")) if killable else 0

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.reads += 1
        if self.kill_after and self.reads == self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        tokens = self.items[i]
        return tokens, int((tokens == 7).any())


def pad(items):
    tokens = [t for t, _ in items]
    return {
        "tokens": pad_sequence(tokens, batch_first=True, padding_value=0),
        "lengths": torch.tensor([len(t) for t in tokens]),
        "labels": torch.tensor([label for _, label in items]),
    }


class GRUClassifier(nn.Module):
    def __init__(self, dim=16, hidden=24):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, dim, padding_idx=0)
        self.gru = nn.GRU(dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2)

    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(
            self.embed(tokens), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, h = self.gru(packed)
        return self.head(h[-1])


def step(model, batch):
    return F.cross_entropy(model(batch["tokens"], batch["lengths"]), batch["labels"])


def predict(model, batch):
    return model(batch["tokens"], batch["lengths"]), batch["labels"]


def make(n: int = 320):
    return lrlab.Task(
        model=GRUClassifier,
        train=Sequences(n, seed=1, killable=True),
        val=Sequences(n // 4, seed=2),
        step=step,
        predict=predict,
        collate_fn=pad,
        metrics=[ACCURACY],
        batch_size=16,
        name="sequences",
    )
'''


def _study(entry: str, name: str, *, top: str = "", task: str = "", arms: str = "") -> str:
    """A study of ``entry``: 1cycle with range-test bounds first (the trial that is killed),
    a constant LR as the baseline, ``arms`` after them, and a [search] over 1cycle."""
    return f"""
name = "{name}"
seeds = [0]
baseline = "constant"
{top}
[task]
entry = "{entry}"
epochs = 3
{task}

[optimizer]
name = "sgd"
momentum = 0.9

[[arms]]
name = "1cycle"
lr = {{ kind = "one_cycle" }}
momentum = "cyclical"
range_test = {{ rule = "lrlab", num_updates = 40, start_lr = 1e-3 }}

[[arms]]
name = "constant"
lr = "constant(level=0.05)"
{arms}
[search]
arm = "1cycle"
space = {{ max_lr = {{ low = 0.01, high = 0.5, log = true }} }}
"""


def _snapshot(directory: Path) -> dict[str, tuple]:
    store = StudyStore(directory / "study.db")
    out = {}
    for t in store.trials():
        series = {n: store.series(t.id, n) for n in store.metric_names(t.id)}
        final = {k: v for k, v in t.final.items() if k != "seconds"}
        out[t.id] = (t.status, final, series)
    store.close()
    return out


def _lrlab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lrlab", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


def _kill_resume_compare(toml: Path, tmp: Path, kill_after: int) -> dict[str, tuple]:
    """Run killed (SIGKILL in epoch 2), resume, and an uninterrupted run: the same numbers."""
    killed, clean = tmp / "killed", tmp / "clean"
    run = ["study", "run", str(toml), "--quiet", "--no-report", "--dir"]
    first = _lrlab(*run, str(killed), env={"LRLAB_TEST_KILL_AFTER": str(kill_after)})
    assert first.returncode == -9, first.stderr[-2000:]  # killed by SIGKILL
    store = StudyStore(killed / "study.db")
    assert next(t.status for t in store.trials()) == "running"
    assert list((killed / "checkpoints").glob("*/last.pt"))  # epoch 1 was checkpointed
    store.close()
    resumed = _lrlab(*run, str(killed))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _lrlab(*run, str(clean)).returncode == 0
    a, b = _snapshot(killed), _snapshot(clean)
    assert all(status == "done" for status, _, _ in a.values())
    assert a == b  # every stored number identical, bit for bit
    return a


@pytest.mark.slow
def test_regression_task_resumes_after_sigkill_and_reports_its_own_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "reg_task.py").write_text(REGRESSION)
    toml = tmp_path / "reg.toml"
    toml.write_text(
        _study(
            "reg_task.py:make",  # relative: taken from the study file's directory
            "reg",
            top="targets = { val_mae = 0.5 }",
            task='groups = { by = "blocks", blocks = ["0.*", "2.*"] }\n[task.options]\nhidden = 12',
            arms=(
                '\n[[arms]]\nname = "layer-wise"\nlr = "one_cycle(max_lr=0.1)"\n'
                'layerwise = { policy = "interpolate", first = 2.0, last = 0.5 }\n'
                '\n[[arms]]\nname = "frozen body"\nlr = "constant(level=0.05)"\n'
                'freeze = { events = [{ at = "50%", action = "freeze", blocks = ["0.*"] }] }\n'
            ),
        )
    )
    # 288 training examples, 9 batches: the range test reads one epoch, training epoch 1
    # another (then the checkpoint); the kill comes 100 examples into epoch 2
    trials = _kill_resume_compare(toml, tmp_path, kill_after=2 * 288 + 100)
    _, final, series = trials["constant@seed0"]
    assert "val_mae" in series and "val_top1" not in series
    assert final["best_val_mae"] == min(series["val_mae"][2])
    assert 0 < final["val_mae"] < 2 and final["updates_to_target"].keys() == {"val_mae"}
    assert any(k.startswith("lr/0") for k in trials["layer-wise@seed0"][2])  # named groups

    assert main(["report", str(tmp_path / "killed")]) == 0
    md = (tmp_path / "killed" / "report.md").read_text()
    assert "val mae" in md and "top-1" not in md and "accuracy" not in md
    assert "mean absolute error" in md  # verdicts on the task's own metric
    store = StudyStore(tmp_path / "killed" / "study.db")
    assert store.meta("metrics")["validation"][0]["name"] == "val_mae"
    store.close()

    capsys.readouterr()
    out = tmp_path / "find"
    entry = f"{tmp_path / 'reg_task.py'}:make"
    argv = ["find", "--task", entry, "--option", "hidden=12", "--start-lr", "1e-3"]
    code = main([*argv, "--updates", "40", "--test-momentum", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "one_cycle" in text and "momentum test (mean validation loss)" in text
    assert json.loads((out / "range_test.json").read_text())["updates"] <= 40
    assert (out / "momentum_test.json").exists()

    code = main(["search", str(toml), "--trials", "2", "--dir", str(tmp_path / "s")])
    assert code == 0
    assert "best mean absolute error" in capsys.readouterr().out
    summary = json.loads((tmp_path / "s" / "search" / "summary.json").read_text())
    assert summary["metric"] == "val_mae" and summary["complete"] >= 1
    import optuna

    opt = optuna.load_study(
        study_name="reg",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(
                str(tmp_path / "s" / "search" / "journal.log")
            )
        ),
    )
    assert opt.direction.name == "MINIMIZE"
    done = [t.value for t in opt.trials if t.state.name == "COMPLETE"]
    assert summary["best_value"] == min(done)


@pytest.mark.slow
def test_sequence_classifier_with_collate_and_step_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "seq_task.py").write_text(SEQUENCE)
    toml = tmp_path / "seq.toml"
    toml.write_text(_study(str(tmp_path / "seq_task.py") + ":make", "seq"))
    # 320 sequences, 20 batches: the range test reads one epoch, training epoch 1 another
    trials = _kill_resume_compare(toml, tmp_path, kill_after=2 * 320 + 80)
    _, final, series = trials["1cycle@seed0"]
    assert {"val_top1", "val_loss", "train_loss", "lr", "momentum"} <= series.keys()
    assert 0 <= final["val_top1"] <= 1 and final["bounds"]["max_lr"] > 0
    assert main(["report", str(tmp_path / "killed")]) == 0
    md = (tmp_path / "killed" / "report.md").read_text()
    assert "val top-1 %" in md and "validation accuracy" in md

    capsys.readouterr()
    out = tmp_path / "find"
    entry = f"{tmp_path / 'seq_task.py'}:make"
    argv = ["find", "--task", entry, "--start-lr", "1e-3", "--updates", "40", "--confirm", "2"]
    code = main([*argv, "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "confirm (60 updates" in capsys.readouterr().out

    code = main(["search", str(toml), "--trials", "2", "--dir", str(tmp_path / "s")])
    assert code == 0
    assert "best validation accuracy" in capsys.readouterr().out
    summary = json.loads((tmp_path / "s" / "search" / "summary.json").read_text())
    assert summary["metric"] == "val_top1" and summary["complete"] + summary["pruned"] >= 2


def test_the_example_task_file_runs_as_its_study(tmp_path: Path) -> None:
    from lrlab.study import load_study, parse_study, run_study

    root = Path(__file__).resolve().parent.parent
    study = load_study(root / "examples" / "my_task.toml")
    assert study.task.entry == f"{root / 'examples' / 'my_task.py'}:friedman"
    data = study.model_dump(mode="json")
    small = parse_study({**data, "seeds": [0], "task": {**data["task"], "epochs": 2}})
    summary = run_study(small, tmp_path / "ex")
    assert (summary.ran, summary.failed) == (2, [])
    store = StudyStore(tmp_path / "ex" / "study.db")
    t = store.trial("1cycle@seed0")
    assert t is not None and t.updates == 2 * 50 and 0 < t.final["val_mae"] < 1
    store.close()
