"""``lrlab search STUDY --trials N``: Optuna TPE + Hyperband over a study's [search] ranges."""

from __future__ import annotations

from pathlib import Path

import typer

from lrlab.cli.errors import user_errors


@user_errors
def search_command(
    study: str = typer.Argument(
        ..., help="A study TOML file with a [search] table, or a bundled name."
    ),
    trials: int = typer.Option(
        20, help="Trials to finish (complete or pruned), resumed searches included."
    ),
    preset: str | None = typer.Option(None, help="A [presets.<name>] table to apply."),
    directory: Path | None = typer.Option(
        None, "--dir", help="Study directory (default runs/<name>)."
    ),
    workers: int = typer.Option(1, min=1, help="Worker processes sharing the search."),
    storage: str | None = typer.Option(
        None, help="An Optuna RDB URL (postgresql://...) instead of the journal file."
    ),
) -> None:
    """Search the arm named by the study's [search] table; write best.toml and a report."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ValueError('lrlab search needs Optuna: pip install "lrlab[hpo]"') from None
    from lrlab.study import load_study
    from lrlab.study.bundled import find_study
    from lrlab.study.search import best_text, run_search

    cfg = load_study(find_study(study), preset)
    out = directory or Path("runs") / (cfg.name + (f"-{preset}" if preset else ""))
    summary = run_search(cfg, out, trials, workers, storage)
    params = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in summary["best_params"].items()
    )
    typer.echo(f"best {best_text(summary)} with {params}")
    typer.echo(
        f"{summary['trials']} trials ({summary['complete']} complete, {summary['pruned']} pruned)"
    )
    typer.echo(
        f"ready-to-run study: {summary['best_file']}; report: {out / 'search' / 'report.md'}"
    )
