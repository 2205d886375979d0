"""The ``lrlab`` command line: output, PNG content, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lrlab.cli.main import main


def _pixels_near(img: np.ndarray, rgb: tuple[float, float, float], tol: float = 0.08) -> int:
    return int((np.abs(img[..., :3] - np.array(rgb)).max(axis=-1) < tol).sum())


def test_schedule_plot_draws_lr_and_momentum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import matplotlib.image as mpimg

    out = tmp_path / "oc.png"
    assert main(["schedule", "plot", "one_cycle(max_lr=0.4,total=1000)", "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(out)
    blue, orange = (0.122, 0.467, 0.706), (1.0, 0.498, 0.055)  # matplotlib tab:blue, tab:orange
    assert _pixels_near(img, blue) > 500  # the LR curve (and its axis labels)
    assert _pixels_near(img, orange) > 300  # the momentum curve

    lr_only = tmp_path / "cos.png"
    assert main(["schedule", "plot", "cosine(init=0.1,total=100)", "-o", str(lr_only)]) == 0
    assert _pixels_near(mpimg.imread(lr_only), orange) == 0


def test_schedule_show_prints_phase_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "show", "one_cycle(max_lr=0.4,total=1000)"]) == 0
    out = capsys.readouterr().out
    assert "annihilation" in out and "860-999" in out and "4e-05" in out
    assert "0.85" in out and "0.95" in out
    assert (
        main(
            ["schedule", "show", "triangular2(base_lr=0.1,max_lr=1,step_size=5)", "--horizon", "30"]
        )
        == 0
    )
    assert "up 3" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["schedule", "show", "onecycle(max_lr=1,total=10)"], "unknown schedule 'onecycle'"),
        (["schedule", "show", "one_cycle(max_lr=-1,total=10)"], "max_lr=-1.0 is invalid"),
        (["schedule", "plot", "one_cycle(max_lr=1,total="], "not a call"),
        (
            ["schedule", "plot", "triangular(base_lr=0.1,max_lr=1,step_size=5)", "-o", "x.png"],
            "runs forever",
        ),
        (["schedule", "plot", "cosine(init=0.1,total=10)", "-o", "x.jpg"], "expected a .png file"),
        (["schedule", "show", "cosine(init=0.1,total=10)", "--horizon", "0"], "--horizon=0"),
        # an output path that cannot be written: one line, not a traceback
        (["schedule", "plot", "cosine(init=0.1,total=10)", "-o", "/proc/x.png"], "/proc/x.png"),
        (
            ["schedule", "show", "cosine(init=0.1,total=10)", "--momentum", "bogus"],
            "expected a call",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err
    assert len(err.splitlines()) == 1
    assert not list(tmp_path.iterdir())  # nothing written


def test_installed_command_exits_2_without_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lrlab", "schedule", "show", "sgdr(max_lr=0.1, t_0=0)"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: sgdr: t_0=0 is invalid; expected an integer >= 1"
    assert "Traceback" not in proc.stderr


def test_version_and_missing_argument() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lrlab", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("lrlab ")
    proc = subprocess.run(
        [sys.executable, "-m", "lrlab", "schedule", "show"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # one line naming the command and the argument, not the parser's usage block
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error: lrlab schedule show: missing argument SPEC")


def test_plotting_leaves_the_users_matplotlib_backend_alone(tmp_path: Path) -> None:
    import matplotlib

    from lrlab.schedules import one_cycle
    from lrlab.schedules.plot import plot_schedules

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # stands in for a notebook's inline backend
    try:
        out = plot_schedules(one_cycle(max_lr=1.0, total=50), tmp_path / "a" / "s.png")
        assert out.read_bytes()[:4] == b"\x89PNG"
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
