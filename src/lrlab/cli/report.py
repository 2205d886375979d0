"""``lrlab report STUDY_DIR``: write a study's report and print its answer."""

from __future__ import annotations

from pathlib import Path

import typer

from lrlab.cli.errors import UsageError, user_errors


@user_errors
def report_command(
    study_dir: Path = typer.Argument(
        ..., help="A study directory holding study.db (what 'lrlab study run' wrote)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Write report.html (one self-contained file), report.md and figures into STUDY_DIR."""
    from lrlab.report.study_report import summarize, write_report

    summary = summarize(study_dir)
    try:
        paths = write_report(study_dir, summary)
    except OSError as e:
        raise UsageError(f"cannot write the report into {str(study_dir)!r}: {e.strerror}") from None
    if not quiet:
        typer.echo(f"wrote {paths['html']} and {paths['md']}")
        typer.echo(f"answer: {summary.headline}")
