"""Entry point of the ``lrlab`` command."""

from __future__ import annotations

import sys

import typer

from lrlab import __version__
from lrlab.cli.errors import OneLineGroup, run_app
from lrlab.cli.find import find
from lrlab.cli.findings import findings_command
from lrlab.cli.report import report_command
from lrlab.cli.schedule import app as schedule_app
from lrlab.cli.search import search_command
from lrlab.cli.study import app as study_app
from lrlab.cli.study import demo

app = typer.Typer(
    name="lrlab",
    cls=OneLineGroup,
    help="Disciplined learning-rate work: schedules, range tests, layer-wise rates, studies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(schedule_app, name="schedule")
app.add_typer(study_app, name="study")
app.command("demo")(demo)
app.command("find")(find)
app.command("report")(report_command)
app.command("findings")(findings_command)
app.command("search")(search_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lrlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """lrlab: learning rates chosen by method rather than by guess."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line and return exit code 2."""
    return run_app(app, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
