"""``lrlab schedule show|plot SPEC``: look at a schedule before training with it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from lrlab.cli.errors import UsageError, user_errors
from lrlab.cli.output import plain_console
from lrlab.schedules import Schedule, cyclical_momentum, parse

app = typer.Typer(help="Show or plot a schedule given as a spec.", no_args_is_help=True)

SPEC_HELP = (
    "Schedule spec, e.g. 'one_cycle(max_lr=0.4,total=1000)' or "
    "'warmup(cosine(init=0.1,total=900),steps=100)', or the JSON of Schedule.to_dict()."
)
MOMENTUM_HELP = (
    "Momentum to show beside the LR: 'auto' (cyclical for CLR and 1cycle, else none), "
    "'none', 'cyclical' (mirror of the LR between --momentum-low and --momentum-high), "
    "or a schedule spec."
)


def _momentum(lr: Schedule, choice: str, low: float, high: float) -> Schedule | None:
    if choice == "none" or (choice == "auto" and not lr.cyclical):
        return None
    if choice in ("auto", "cyclical"):
        return cyclical_momentum(lr, low=low, high=high)
    return parse(choice)


#: ``show`` prints at most this many phases (an SGDR with 10^8 cycles has 10^8 of them).
SHOW_PHASES = 200
#: ``plot`` draws at most this many updates (beyond, axis limits overflow) and phases.
PLOT_UPDATES = 10**12
PLOT_PHASES = 2000


def _checked_horizon(horizon: int | None) -> int | None:
    if horizon is not None and horizon < 1:
        raise UsageError(f"--horizon={horizon} is invalid; expected a number of updates >= 1")
    return horizon


def _plottable(lr: Schedule, horizon: int | None) -> None:
    span = horizon if horizon is not None else lr.length
    if span is not None and span > PLOT_UPDATES:
        what = f"--horizon={horizon} is" if horizon is not None else f"{lr.kind} runs {span}"
        raise UsageError(
            f"{what} updates, too many to plot; expected at most {PLOT_UPDATES:.0e} "
            "(give --horizon N to plot the first N)"
        )
    if len(lr.phases(horizon, limit=PLOT_PHASES + 1)) > PLOT_PHASES:
        raise UsageError(
            f"{lr.kind} has more than {PLOT_PHASES} phases, too many to draw; "
            "expected a schedule with fewer cycles or steps ('lrlab schedule show' lists them)"
        )


def _horizon(lr: Schedule, horizon: int | None) -> int | None:
    _checked_horizon(horizon)
    if horizon is None and lr.length is None:
        raise UsageError(
            f"{lr.kind} runs forever; give --horizon (updates to show) "
            "or a total/cycles in the spec"
        )
    return horizon


@app.command("show")
@user_errors
def show(
    spec: str = typer.Argument(..., help=SPEC_HELP),
    momentum: str = typer.Option("auto", help=MOMENTUM_HELP),
    momentum_low: float = typer.Option(0.85, help="Momentum at the LR peak."),
    momentum_high: float = typer.Option(0.95, help="Momentum at the LR base."),
    horizon: int | None = typer.Option(None, help="Updates to show for unbounded schedules."),
) -> None:
    """Print the phase table of a schedule (and its momentum)."""
    lr = parse(spec)
    mom = _momentum(lr, momentum, momentum_low, momentum_high)
    phases = lr.phases(_checked_horizon(horizon), limit=SHOW_PHASES + 1)
    console = plain_console()
    length = "unbounded" if lr.length is None else f"{lr.length} updates"
    console.print(
        Text.assemble((lr.to_spec(), "bold"), f"  ({length}; after the end: {lr.after_end})")
    )
    table = Table(show_edge=False, header_style="bold")
    for col in ("phase", "updates", "lr start", "lr end"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    if mom is not None:
        table.add_column("momentum start", justify="right")
        table.add_column("momentum end", justify="right")
    for p in phases[:SHOW_PHASES]:
        span = f"{p.start}-" + ("..." if p.stop is None else str(p.stop - 1))
        row = [p.name, span, f"{p.start_value:.6g}", f"{p.end_value:.6g}"]
        if mom is not None:
            last = p.start if p.stop is None else p.stop - 1
            row += [f"{mom(p.start):.4g}", f"{mom(last):.4g}"]
        table.add_row(*row)
    console.print(table)
    if len(phases) > SHOW_PHASES:
        console.print(f"(the first {SHOW_PHASES} phases; the schedule has more)")


@app.command("plot")
@user_errors
def plot(
    spec: str = typer.Argument(..., help=SPEC_HELP),
    output: Path = typer.Option(Path("schedule.png"), "-o", "--output", help="PNG file to write."),
    momentum: str = typer.Option("auto", help=MOMENTUM_HELP),
    momentum_low: float = typer.Option(0.85, help="Momentum at the LR peak."),
    momentum_high: float = typer.Option(0.95, help="Momentum at the LR base."),
    horizon: int | None = typer.Option(None, help="Updates to plot for unbounded schedules."),
) -> None:
    """Write a PNG of the learning rate and momentum over the updates."""
    from lrlab.schedules.plot import plot_schedules

    lr = parse(spec)
    if output.suffix.lower() != ".png":
        raise UsageError(f"--output={str(output)!r} is invalid; expected a .png file")
    mom = _momentum(lr, momentum, momentum_low, momentum_high)
    _plottable(lr, _horizon(lr, horizon))
    try:
        path = plot_schedules(lr, output, momentum=mom, horizon=_horizon(lr, horizon))
    except OSError as e:
        raise UsageError(_unwritable("--output", output, e)) from None
    typer.echo(f"wrote {path}")


def _unwritable(flag: str, path: Path, e: OSError) -> str:
    where = f" ({e.filename})" if e.filename and str(e.filename) != str(path) else ""
    return (
        f"{flag}={str(path)!r} cannot be written: {e.strerror}{where}; "
        "expected a file path in a writable directory"
    )
