"""``lrlab study run|list`` and ``lrlab demo``: run studies with progress, then report."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from lrlab.cli.errors import user_errors
from lrlab.cli.progress import StudyProgress

app = typer.Typer(help="Run studies: arms x seeds with error bars.", no_args_is_help=True)


def run_and_report(
    study_ref: str,
    preset: str | None,
    directory: Path | None,
    workers: int,
    restart: bool,
    quiet: bool,
    report: bool,
) -> Path:
    from lrlab.study import LocalExecutor, load_study, run_study
    from lrlab.study.bundled import find_study
    from lrlab.study.runner import describe

    path = find_study(study_ref)
    study = load_study(path, preset)
    out = directory or Path("runs") / (study.name + (f"-{preset}" if preset else ""))
    if restart and out.exists():
        shutil.rmtree(out)
    console = StudyProgress(quiet)
    if not quiet:
        console.console.print(
            f"study {study.name!r}: {len(study.arms)} arm(s) x {len(study.seeds)} seed(s) -> {out}"
        )
    with console:
        summary = run_study(
            study, out, preset=preset, executor=LocalExecutor(workers), on_event=console
        )
    if not quiet:
        console.console.print(describe(summary))
        for line in summary.failed:
            console.console.print(f"  failed: {line}")
    if report:
        from lrlab.report.study_report import write_report

        files = write_report(out)
        typer.echo(f"report: {files.get('html', out / 'report.html')}")
    return out


@app.command("run")
@user_errors
def run(
    study: str = typer.Argument(..., help="A study TOML file, or the name of a bundled study."),
    preset: str | None = typer.Option(None, help="A [presets.<name>] table to apply, e.g. small."),
    directory: Path | None = typer.Option(
        None, "--dir", help="Study directory (default runs/<name>)."
    ),
    workers: int = typer.Option(1, min=1, help="Worker processes for trials."),
    restart: bool = typer.Option(False, help="Delete the directory's results and start over."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    report: bool = typer.Option(True, help="Write report.html/report.md when done."),
) -> None:
    """Run (or resume) a study: finished trials are skipped, unfinished ones resume."""
    run_and_report(study, preset, directory, workers, restart, quiet, report)


@app.command("list")
@user_errors
def list_studies() -> None:
    """List the bundled studies and their presets."""
    from lrlab.study.bundled import bundled_dir, bundled_studies
    from lrlab.study.config import presets_of

    d = bundled_dir()
    for name in bundled_studies():
        presets = presets_of(d / f"{name}.toml") if d else []
        typer.echo(f"{name}" + (f"  (presets: {', '.join(presets)})" if presets else ""))


@user_errors
def demo(
    directory: Path = typer.Option(
        Path("lrlab-demo"), "--dir", help="Where the study and report go."
    ),
    quick: bool = typer.Option(False, help="One seed, a few epochs (a smoke test)."),
    workers: int = typer.Option(1, min=1, help="Worker processes for trials."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """The main job: range test, then 1cycle vs step decay vs constant LR on MNIST-1D, 3 seeds."""
    out = run_and_report("demo", "quick" if quick else None, directory, workers, False, quiet, True)
    typer.echo(f"demo finished: open {out / 'report.html'}")
