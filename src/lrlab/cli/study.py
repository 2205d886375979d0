"""``lrlab study run|list`` and ``lrlab demo``: run studies with progress, then report."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer

from lrlab.cli.errors import user_errors
from lrlab.cli.progress import StudyProgress

app = typer.Typer(help="Run studies: arms x seeds with error bars.", no_args_is_help=True)


def run_and_report(
    study_ref: str,
    *,
    preset: str | None = None,
    directory: Path | None = None,
    workers: int = 1,
    restart: bool = False,
    quiet: bool = False,
    report: bool = True,
    executor: str = "local",
    address: str = "auto",
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    checkpoint_dir: Path | None = None,
    track: str | None = None,
    track_uri: str | None = None,
    track_experiment: str | None = None,
) -> Path:
    from lrlab.study import LocalExecutor, load_study, run_study
    from lrlab.study.bundled import find_study
    from lrlab.study.runner import describe
    from lrlab.study.track_config import with_overrides

    path = find_study(study_ref)
    study = load_study(path, preset)
    study = study.model_copy(
        update={"track": with_overrides(study.track, track, track_uri, track_experiment)}
    )
    tracker = None
    if study.track is not None:
        from lrlab.integrations.tracking import tracker_for

        tracker = tracker_for(study.track)
    out = directory or Path("runs") / (study.name + (f"-{preset}" if preset else ""))
    # Build the executor first: a bad --executor must not cost the user their results.
    if executor == "ray":
        from lrlab.study.ray_executor import RayExecutor

        runner: Any = RayExecutor(address, cpus_per_trial, gpus_per_trial)
    elif executor == "local":
        runner = LocalExecutor(workers)
    else:
        raise ValueError(f"--executor={executor!r} is invalid; expected 'local' or 'ray'")
    if restart and out.exists():
        _remove_study(out, study, checkpoint_dir)
    # the banner waits for the run's plan: a study refused before it starts prints one line
    banner = f"study {study.name!r}: {len(study.arms)} arm(s) x {len(study.seeds)} seed(s) -> {out}"
    console = StudyProgress(quiet, banner=banner)
    with console:
        summary = run_study(
            study,
            out,
            preset=preset,
            executor=runner,
            on_event=console,
            checkpoint_root=checkpoint_dir,
            tracker=tracker,
        )
    if not quiet:
        console.console.print(describe(summary))
    for line in summary.failed:  # also with --quiet: the reason is what the user needs
        console.console.print(f"  failed: {line}")
    if report:
        from lrlab.report.study_report import write_report

        files = write_report(out)
        typer.echo(f"report: {files.get('html', out / 'report.html')}")
    if summary.failed:
        typer.echo(
            f"{len(summary.failed)} trial(s) failed; run the same command again to retry them",
            err=True,
        )
        raise typer.Exit(1)
    return out


def _remove_study(out: Path, study: Any, checkpoint_dir: Path | None) -> None:
    """``--restart``: delete a study directory, and its trials' checkpoints kept elsewhere.

    Only a directory that holds a study (``study.db``) is deleted, so a mistyped ``--dir``
    cannot remove anything else.
    """
    from lrlab.study.lock import LOCK_NAME, StudyLock
    from lrlab.study.resolve import expand

    if not (out / "study.db").is_file():
        raise ValueError(
            f"--restart refuses to delete {out}: it holds no study (no study.db); "
            "pick the study's directory with --dir"
        )
    with StudyLock(out):  # never delete a study another run is using
        if checkpoint_dir is not None:
            for spec in expand(study, str(checkpoint_dir)):
                shutil.rmtree(spec.checkpoint_dir, ignore_errors=True)
        for child in out.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            elif child.name != LOCK_NAME:
                child.unlink()


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
    executor: str = typer.Option("local", help="local (this machine) or ray (a Ray cluster)."),
    address: str = typer.Option("auto", help="Ray cluster address: HOST:PORT, auto or local."),
    cpus_per_trial: float = typer.Option(1.0, help="CPUs each trial declares (ray)."),
    gpus_per_trial: float = typer.Option(0.0, help="GPUs each trial declares (ray)."),
    checkpoint_dir: Path | None = typer.Option(
        None, help="Where trial checkpoints go; on a cluster, a path every node can reach."
    ),
    track: str | None = typer.Option(
        None,
        help="Log each trial to tensorboard or mlflow; none ignores the study file's track table.",
    ),
    track_uri: str | None = typer.Option(
        None, help="TensorBoard log dir, or MLflow tracking URI (default: in the study dir)."
    ),
    track_experiment: str | None = typer.Option(
        None, help="Experiment name (MLflow) or sub-directory (TensorBoard); default: study name."
    ),
) -> None:
    """Run (or resume) a study: finished trials are skipped, unfinished ones resume."""
    run_and_report(
        study,
        preset=preset,
        directory=directory,
        workers=workers,
        restart=restart,
        quiet=quiet,
        report=report,
        executor=executor,
        address=address,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        checkpoint_dir=checkpoint_dir,
        track=track,
        track_uri=track_uri,
        track_experiment=track_experiment,
    )


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
    out = run_and_report(
        "demo", preset="quick" if quick else None, directory=directory, workers=workers, quiet=quiet
    )
    typer.echo(f"demo finished: open {out / 'report.html'}")
