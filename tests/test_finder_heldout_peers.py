"""benchmarks/finder_heldout_peers.py without running a peer: cached results become finder
rows, a missing peer is left out with one line, and the reading names the peers' versions."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # benchmarks/ is a plain folder, not an installed package

from benchmarks import finder_heldout_peers as fhp  # noqa: E402
from benchmarks.finder_heldout_report import peers_line, reading  # noqa: E402

ROWS = {
    "lightning",
    "torch-lr-finder",
    "fastai:valley",
    "fastai:steep",
    "fastai:minimum",
    "fastai:slide",
}


def _no_run(*args):
    raise AssertionError(f"a cached peer was run again: {args}")


def test_cached_results_become_rows_without_running(monkeypatch):
    monkeypatch.setattr(fhp, "_run", _no_run)
    fastai = {"valley": 0.01, "steep": 1e-5, "minimum": 0.003, "slide": None}
    cache = {
        "peers": {
            "lightning": {
                "0": {"suggestions": {"steepest": 7.6e-4}, "updates": 100},
                "1": {"suggestions": {"steepest": None}, "updates": 41},
            },
            "torch-lr-finder": {
                "0": {"suggestions": {"steepest": 0.02}, "updates": 98},
                "1": {"error": "fastai runner exited 1"},
            },
            "fastai": {
                "0": {"suggestions": fastai, "updates": 95},
                "1": {"suggestions": fastai, "updates": 100},
            },
        }
    }
    rows = fhp.peer_rows("gru-seq", [0, 1], cache, save=lambda: None)
    assert set(rows[0]) == set(rows[1]) == ROWS
    assert rows[0]["torch-lr-finder"] == {"lr": 0.02, "flagged": False, "updates": 98}
    assert rows[1]["torch-lr-finder"] == {"lr": None, "flagged": True, "updates": 0}
    assert rows[0]["fastai:valley"] == {"lr": 0.01, "flagged": False, "updates": 95}
    assert rows[1]["fastai:slide"] == {"lr": None, "flagged": False, "updates": 100}
    assert rows[0]["lightning"] == {"lr": 7.6e-4, "flagged": False, "updates": 100}
    assert rows[1]["lightning"] == {"lr": None, "flagged": False, "updates": 41}


def test_a_missing_peer_is_left_out_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(fhp, "_run", _no_run)
    monkeypatch.setattr(fhp, "missing", lambda peer: f"{peer} is not here")
    monkeypatch.setattr(fhp, "_told", set())
    saved = []
    # seed 0 cached for torch-lr-finder, seed 1 not: the peer has no row for either seed
    cache = {"peers": {"torch-lr-finder": {"0": {"suggestions": {"steepest": 0.1}, "updates": 9}}}}
    for task in ("gru-seq", "mlp-regression"):
        assert fhp.peer_rows(task, [0, 1], cache, save=lambda: saved.append(1)) == {0: {}, 1: {}}
    out = capsys.readouterr().out
    assert out.count("torch-lr-finder left out: torch-lr-finder is not here") == 1
    assert out.count("fastai left out: fastai is not here") == 1
    assert out.count("lightning left out: lightning is not here") == 1
    assert saved == []


def test_reading_names_each_peer_and_its_version():
    versions = {
        "torch-lr-finder": "0.2.2",
        "pytorch-lightning": "2.6.6",
        "torch": "2.13.0+cpu",
        "fastai": "2.8.12",
        "fastai torch": "2.14.1",
    }
    line = peers_line(versions)
    assert "`torch-lr-finder` 0.2.2" in line and "`fastai` 2.8.12" in line
    assert "torch 2.14.1" in line and "`pytorch-lightning` 2.6.6" in line
    assert "not installed" not in line
    text = reading(versions | {"fastai": "not installed"})
    assert "{peers}" not in text
    assert "their rows are missing: fastai" in text
