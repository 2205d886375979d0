"""benchmarks/peers without the peer tools: the spec, the batch order and the stdout protocol,
for bundled and held-out tasks.

The peer runs themselves need torch-lr-finder, Lightning and the fastai venv; they are
checked by ``python -m benchmarks.peers --selftest`` (see benchmarks/peers_env.sh). One
torch-lr-finder run on a held-out task is tested here when that package is installed (it is
in the ``bench`` extra, not ``dev``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # benchmarks/ is a plain folder, not an installed package

from benchmarks.peers import PeerError, normalise_spec, peer_suggestions  # noqa: E402
from benchmarks.peers._task import (  # noqa: E402
    EpochBatches,
    build_task,
    fingerprint,
    finite_or_none,
)

from lrlab.data import batches  # noqa: E402

SGD = {
    "dataset": "digits",
    "model": "mlp",
    "optimizer": "sgd",
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "batch_size": 64,
    "seed": 0,
}


def test_adamw_spec_gets_torch_defaults_and_one_thread():
    spec = {k: v for k, v in SGD.items() if k != "momentum"} | {"optimizer": "adamw"}
    out = normalise_spec(spec)
    assert out["betas"] == [0.9, 0.999]
    assert out["eps"] == 1e-8
    assert out["threads"] == 1
    assert json.loads(json.dumps(out)) == out  # it travels to the runner as JSON
    assert spec == {k: v for k, v in SGD.items() if k != "momentum"} | {"optimizer": "adamw"}


@pytest.mark.parametrize(
    ("change", "word"),
    [
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"momentum": None}, "momentum"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 6.4}, "batch_size"),
        ({"seed": True}, "seed"),
        ({"weight_decay": float("nan")}, "weight_decay"),
        ({"lr": 0.1}, "unknown"),
        ({"betas": [0.9, 0.99]}, "betas"),
    ],
)
def test_bad_spec_names_the_field(change, word):
    spec = {k: v for k, v in (SGD | change).items() if v is not None}
    with pytest.raises((TypeError, ValueError), match=word):
        normalise_spec(spec)


def test_unknown_peer_is_refused_before_anything_runs():
    with pytest.raises(ValueError, match="ignite"):
        peer_suggestions("ignite", SGD)
    assert issubclass(PeerError, RuntimeError)


def test_epoch_batches_are_lrlab_batches_epoch_after_epoch():
    x = torch.arange(50, dtype=torch.float32).reshape(25, 2)
    y = torch.arange(25) % 3
    loader = EpochBatches(x, y, batch_size=10, seed=7)
    assert len(loader) == 3  # the short last batch is kept
    iter(loader)  # a bare probe, as some tools do, must not use up epoch 0
    for epoch in range(3):
        ours = [fingerprint(xb) for xb, _ in loader]
        theirs = [fingerprint(xb) for xb, _ in batches(x, y, 10, seed=7, epoch=epoch)]
        assert ours == theirs
    assert loader.epochs_started == 3


def test_non_finite_values_become_null():
    assert finite_or_none([1.5, float("nan"), float("inf"), torch.tensor(2.0)]) == [
        1.5,
        None,
        None,
        2.0,
    ]


def test_runner_stdout_carries_only_the_result_json():
    # Tools print to stdout (fastprogress, "Suggested LR: ..."); the runner must divert that.
    code = textwrap.dedent(
        """
        import os, sys
        from benchmarks.peers._task import serve
        def run(spec):
            print("noise from a tool")
            os.write(1, b"noise on fd 1\\n")
            return {"echo": spec, "loss": 1.0}
        serve(run)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps({"a": 1}),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert json.loads(proc.stdout) == {"echo": {"a": 1}, "loss": 1.0}
    assert "noise from a tool" in proc.stderr and "noise on fd 1" in proc.stderr


def test_adam_spec_gets_torch_adam_defaults():
    spec = {k: v for k, v in SGD.items() if k != "momentum"} | {"optimizer": "adam"}
    out = normalise_spec(spec)
    assert (out["betas"], out["eps"]) == ([0.9, 0.999], 1e-8)


def test_heldout_spec_is_the_name_and_seed():
    out = normalise_spec({"heldout": "gru-seq", "seed": 2})
    assert out == {"heldout": "gru-seq", "seed": 2, "threads": 1}
    assert json.loads(json.dumps(out)) == out


@pytest.mark.parametrize(
    ("spec", "word"),
    [
        ({"heldout": "gru", "seed": 0}, "gru-seq"),  # the error lists the allowed names
        ({"heldout": 3, "seed": 0}, "heldout"),
        ({"heldout": "gru-seq"}, "seed"),
        ({"heldout": "gru-seq", "seed": -1}, "seed"),
        ({"heldout": "gru-seq", "seed": 0, "optimizer": "sgd"}, "optimizer"),
    ],
)
def test_bad_heldout_spec_names_the_field(spec, word):
    with pytest.raises((TypeError, ValueError), match=word):
        normalise_spec(spec)


def test_heldout_task_is_what_lrlabs_finder_gets():
    from benchmarks.finder_heldout import batches as heldout_batches
    from benchmarks.finder_heldout import start
    from benchmarks.heldout_tasks import TASKS

    task = build_task(normalise_spec({"heldout": "attention-majority", "seed": 1}))
    reference = TASKS["attention-majority"]()
    model, opt = start(reference, 1)
    for a, b in zip(task.model.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert [g["weight_decay"] for g in task.optimizer.param_groups] == [
        g["weight_decay"] for g in opt.param_groups
    ]
    assert task.settings == {
        "optimizer": "adamw",
        "weight_decay": 0.01,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "batch_size": 64,
        "loss": "cross_entropy",
    }
    # biases, the LayerNorms' weights: 1-d parameters only, and not all of them decay
    assert task.no_decay and all(p.ndim == 1 for p in task.no_decay)
    epoch0 = [fingerprint(xb) for xb, _ in heldout_batches(reference, 1, 0)]
    assert [fingerprint(xb) for xb, _ in task.train] == epoch0
    assert [fingerprint(xb) for xb, _ in task.train] == epoch0  # every pass: epoch 0 again
    regression = build_task(normalise_spec({"heldout": "mlp-regression", "seed": 0}))
    assert regression.regression and regression.loss is torch.nn.functional.mse_loss
    assert regression.settings["optimizer"] == "adam" and regression.no_decay == []


@pytest.mark.slow  # a subprocess that imports torch: about 5 s
def test_torch_lr_finder_picks_a_positive_lr_on_a_heldout_task():
    pytest.importorskip("torch_lr_finder")
    r = peer_suggestions("torch-lr-finder", {"heldout": "mlp-regression", "seed": 0})
    lr = r["suggestions"]["steepest"]
    assert isinstance(lr, float) and 1e-7 < lr < 10
    assert 17 <= r["updates"] <= 100  # plot() needs skip_start + skip_end + 2 points
    assert r["settings"]["task_loss"] == "mse_loss"
