"""The study-level commands end to end: lrlab find, lrlab demo, lrlab report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lrlab.cli.main import main
from lrlab.study import StudyStore


def test_find_prints_rules_and_writes_plot_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "find"
    code = main(["find", "--data", "digits", "--model", "mlp", "--updates", "40", "-o", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert (
        "lrlab (default)" in text
        and "valley" in text
        and "one_cycle" in text
        and "step_size=" in text
    )
    assert (out / "range_test.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((out / "range_test.json").read_text())
    assert data["optimizer"] == "SGD" and 0 < data["updates"] <= 40


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["find", "--data", "mnist", "--model", "cnn"], "--data='mnist' is not a dataset"),
        (["find", "--data", "digits", "--model", "vgg"], "--model='vgg' is not a model"),
        (
            ["find", "--data", "digits", "--model", "mlp", "--start-lr", "1", "--end-lr", "0.5"],
            "end_lr=0.5 is invalid; expected a finite number > start_lr=1.0",
        ),
        (
            ["find", "--data", "digits", "--model", "mlp", "--samples", "0"],
            "training data would be empty",
        ),
        (
            ["find", "--data", "digits", "--model", "mlp", "--batch-size", "0"],
            "--batch-size=0 is invalid; expected an integer >= 1",
        ),
        (
            ["find", "--data", "digits", "--model", "mlp", "--momentum", "1.5"],
            "--momentum=1.5 is invalid; expected a number in [0, 1)",
        ),
        (
            ["find", "--data", "digits", "--model", "mlp", "--weight-decay", "-1"],
            "--weight-decay=-1.0 is invalid; expected a finite number >= 0",
        ),
        (
            ["find", "--data", "digits", "--model", "mlp", "--confirm", "5"],
            "--confirm=5 is invalid; expected 0 (off), 2, 3 or 4 candidates",
        ),
        (["find"], "missing option --data and --model: a bundled task needs --data and --model"),
        (  # --momentum is the optimizer's value: 0 reaches the momentum test and is refused
            ["find", "--data", "digits", "--model", "mlp", "--momentum", "0", "--test-momentum"],
            "param group 0 was built with momentum=0",
        ),
        (
            ["find", "--task", "lrlab.tasks.bundled:classification", "--data", "digits"],
            "--task names your own task and --data/--model a bundled one",
        ),
        (["find", "--task", "nope"], "task.entry='nope' is invalid"),
        (
            ["find", "--task", "lrlab.tasks.bundled:classification", "--option", "model"],
            "--option 'model' is invalid; expected key=value",
        ),
        (["report", "does-not-exist"], "does-not-exist"),
    ],
)
def test_find_and_report_errors_are_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.slow
def test_demo_quick_runs_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--dir", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"open {out / 'report.html'}" in printed
    html = (out / "report.html").read_text()
    assert "1cycle" in html and "step decay" in html and "data:image/png;base64," in html
    assert main(["report", str(out)]) == 0
    assert "answer:" in capsys.readouterr().out


def test_restart_deletes_only_a_study_and_only_after_the_arguments_check_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "tiny.toml"
    toml.write_text(
        'name = "tiny"\nseeds = [0]\n'
        '[task]\ndata = "digits"\nmodel = "mlp"\nbatch_size = 256\nepochs = 1\n'
        '[optimizer]\nname = "sgd"\n'
        '[[arms]]\nname = "c"\nlr = "constant(level=0.1)"\n'
    )
    # a directory that is not a study is never deleted
    other = tmp_path / "photos"
    other.mkdir()
    (other / "keep.jpg").write_bytes(b"x")
    argv = ["study", "run", str(toml), "--quiet", "--no-report", "--restart", "--dir"]
    assert main([*argv, str(other)]) == 2
    assert "refuses to delete" in capsys.readouterr().err and (other / "keep.jpg").exists()
    # a real study: a bad --executor is refused before anything is deleted
    study_dir = tmp_path / "study"
    assert main(["study", "run", str(toml), "--quiet", "--no-report", "--dir", str(study_dir)]) == 0
    assert main([*argv, str(study_dir), "--executor", "slurm"]) == 2
    assert "--executor='slurm' is invalid" in capsys.readouterr().err
    assert (study_dir / "study.db").exists()
    # and with good arguments the study starts over, checkpoints kept elsewhere included
    ckpt = tmp_path / "ckpt"
    from lrlab.study import load_study
    from lrlab.study.resolve import expand

    (spec,) = expand(load_study(toml), str(ckpt))
    Path(spec.checkpoint_dir).mkdir(parents=True)
    torch.save({"format": -1}, Path(spec.checkpoint_dir) / "last.pt")  # resuming it would fail
    (study_dir / "marker").write_text("old")
    assert main([*argv, str(study_dir), "--checkpoint-dir", str(ckpt)]) == 0
    assert not (study_dir / "marker").exists()
    store = StudyStore(study_dir / "study.db")
    assert [t.status for t in store.trials()] == ["done"]
    store.close()


def test_find_writes_the_curve_even_when_no_rule_can_read_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "flat"
    argv = ["find", "--data", "digits", "--model", "mlp", "--out", str(out), "--updates", "20"]
    # at these LRs the curve is batch noise; seed 0's never falls, so no rule can read it
    assert main([*argv, "--start-lr", "1e-9", "--end-lr", "1e-8", "--seed", "0"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "one_cycle no bounds:" in text and "end_lr too low" in text
    assert json.loads((out / "range_test.json").read_text())["updates"] == 20
    assert (out / "range_test.png").read_bytes()[:4] == b"\x89PNG"


def test_progress_lines_show_each_tasks_headline_metric(capsys: pytest.CaptureFixture) -> None:
    from lrlab.cli.progress import StudyProgress

    progress = StudyProgress(quiet=False)  # not a terminal here: plain lines on stderr
    assert not progress.live
    with progress:
        progress({"kind": "plan", "total": 2, "skipped": 0, "trials": ["a", "b"]})
        progress({"kind": "done", "trial": "a", "status": "done", "final": {"val_top1": 0.9712}})
        progress(
            {
                "kind": "done",
                "trial": "b [x]",
                "status": "done",
                "final": {"val_mae": 0.123456, "val_top1": None},
                "metric": "val_mae",
            }
        )
        progress({"kind": "done", "trial": "c", "status": "diverged", "final": {}})
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "2 trial(s) to run, 0 already finished",
        "a: done, val 97.1%",
        "b [x]: done, val_mae 0.1235",
        "c: diverged",
    ]
