"""``lrlab find``: the LR range test on a bundled task or your own, with suggestions, plot
and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from lrlab.cli.errors import user_errors

if TYPE_CHECKING:
    from lrlab.rangetest.hyper import HyperTestResult
    from lrlab.rangetest.result import RangeTestResult
    from lrlab.study.config import TaskConfig
    from lrlab.study.find import FindResult, FindSettings


@user_errors
def find(
    data: str | None = typer.Option(
        None, help="Bundled task data: fashion-mnist, mnist1d, digits, cifar10."
    ),
    model: str | None = typer.Option(
        None, help="Bundled model: mlp, cnn1d, cnn, cifar_quick, resnet18."
    ),
    task: str | None = typer.Option(
        None,
        "--task",
        help="Your own task: package.module:function or path/to/file.py:function "
        "returning an lrlab.Task (instead of --data/--model).",
    ),
    option: list[str] = typer.Option(
        [], "--option", help="key=value passed to --task's function (repeatable)."
    ),
    optimizer: str = typer.Option("sgd", help="sgd, adam, adamw, ..."),
    momentum: float = typer.Option(0.9, help="Optimizer momentum (Adam: beta1) during the sweep."),
    weight_decay: float = typer.Option(5e-4, help="Optimizer weight decay during the sweep."),
    batch_size: int | None = typer.Option(None, help="Batch size (default: the task's own)."),
    width: float = typer.Option(1.0, help="Width multiplier of a bundled model."),
    samples: int | None = typer.Option(None, help="Use only the first N training examples."),
    start_lr: float = typer.Option(1e-7, help="First LR of the sweep."),
    end_lr: float = typer.Option(10.0, help="Last LR of the sweep."),
    updates: int = typer.Option(100, help="Optimizer updates in the sweep."),
    mode: str = typer.Option("exp", help="exp (geometric ladder) or linear."),
    seed: int = typer.Option(0, help="Seed of the model and the data order."),
    test_momentum: bool = typer.Option(
        False, "--test-momentum", help="Also run Smith's momentum test."
    ),
    test_weight_decay: bool = typer.Option(
        False, "--test-weight-decay", help="Also run the weight-decay test."
    ),
    confirm: int = typer.Option(
        0,
        help="Confirm step: short 1cycle runs at 1, 2 (2 candidates), 4 (3), 8 (4) times "
        "the suggestion; the lowest validation loss is kept.",
    ),
    confirm_updates: int = typer.Option(30, help="Updates of each confirm run."),
    refine: bool = typer.Option(
        True,
        "--refine/--no-refine",
        help="A sweep without signal gets a second, denser sweep where the loss moved.",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output directory (default lrlab-find/<task>)."
    ),
) -> None:
    """Run the LR range test on a task: print suggestions, write the plot and the JSON."""
    from lrlab.study.find import FindSettings, find_task, parse_options

    settings = FindSettings(
        optimizer=optimizer,
        momentum=momentum,
        weight_decay=weight_decay,
        batch_size=batch_size,
        samples=samples,
        start_lr=start_lr,
        end_lr=end_lr,
        num_updates=updates,
        mode=mode,
        seed=seed,
        test_momentum=test_momentum,
        test_weight_decay=test_weight_decay,
        confirm=confirm,
        confirm_updates=confirm_updates,
        refine=refine,
    )
    cfg = find_task(data=data, model=model, width=width, entry=task, options=parse_options(option))
    console = Console(markup=False, highlight=False, soft_wrap=True)
    result = _sweep(cfg, settings, updates, start_lr)
    _report(console, result, optimizer, out)


def _sweep(cfg: TaskConfig, settings: FindSettings, updates: int, start_lr: float) -> FindResult:
    """Run the tests, with a progress bar on stderr when it is a terminal."""
    from lrlab.study.find import find_on_task

    err = Console(stderr=True)
    bar = Progress(
        TextColumn("range test"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("lr {task.fields[lr]:.2e}  loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    with bar:
        tid = bar.add_task("sweep", total=updates, lr=start_lr, loss=float("nan"))
        return find_on_task(
            cfg,
            settings,
            progress=lambda i, n, lr, loss: bar.update(tid, completed=i, lr=lr, loss=loss),
        )


def _report(console: Console, result: FindResult, optimizer: str, out: Path | None) -> None:
    """Write the curve, its plot and the hyperparameter tests; print what they suggest."""
    rt = result.range_test
    # The curve is written first: when no rule can read it, the plot is what to look at.
    folder = out or Path("lrlab-find") / result.folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "range_test.json").write_text(rt.to_json())
    rt.plot(folder / "range_test.png")
    console.print(confidence_line(rt))
    console.print(_sweep_line(result, optimizer))
    console.print(_suggestions(rt))
    _print_bounds(console, rt, result.iters_per_epoch)
    if result.confirmed is not None:
        c = result.confirmed
        rows = ", ".join(f"{lr:.3g}: {v:.4f}" for lr, v in zip(c.candidates, c.val_losses))
        console.print(
            f"  confirm ({c.updates} updates; validation loss): {rows} -> max_lr {c.best:.4g}"
        )
    for name, ht in (("momentum", result.momentum), ("weight_decay", result.weight_decay)):
        if ht is not None:
            _report_hyper_test(console, name, ht, folder)
    console.print(f"wrote {folder / 'range_test.png'} and {folder / 'range_test.json'}")


def _sweep_line(result: FindResult, optimizer: str) -> str:
    """What was swept: task, optimizer, updates (and the coarse sweep a refined one came from)."""
    rt = result.range_test
    refined = (
        f" (refined from a {rt.coarse['updates']}-update sweep over "
        f"{rt.coarse['start_lr']:.3g}..{rt.coarse['end_lr']:.3g})"
        if rt.coarse
        else ""
    )
    return (
        f"{result.task} / {optimizer}: {rt.updates} updates{refined}, "
        f"{rt.tuning_updates} in all, stopped: {rt.stop_reason}"
    )


def _suggestions(rt: RangeTestResult) -> Table:
    """Each rule's suggestion with its resampled spread, or why the rule cannot read the curve."""
    from lrlab.rangetest import RULES

    table = Table(header_style="bold", show_edge=False)
    for col in ("rule", "suggested lr", "10%-90% of resamples", "note"):
        table.add_column(col)
    for rule in RULES:
        try:
            s = rt.suggest(rule)
        except ValueError as e:
            table.add_row(rule, "-", "-", Text(str(e).split(": ", 1)[-1]))
            continue
        spread = f"{s.interval[0]:.3g} .. {s.interval[1]:.3g}" if s.interval else "-"
        table.add_row(
            rule + (" (default)" if rule == "lrlab" else ""),
            f"{s.lr:.4g}",
            spread,
            Text("; ".join(s.warnings) or s.reason),
        )
    return table


def _print_bounds(console: Console, rt: RangeTestResult, iters_per_epoch: int) -> None:
    """The cyclical schedules' bounds read off the curve, one line each."""
    from lrlab.schedules import BOUNDS_READINGS

    for schedule in BOUNDS_READINGS:
        try:
            b = rt.bounds(schedule, iters_per_epoch=iters_per_epoch)
        except ValueError as e:
            console.print(f"  {schedule:<9} no bounds: {e}")
            continue
        step = f", step_size={b.step_size}" if b.step_size else ""
        console.print(f"  {schedule:<9} base_lr={b.base_lr:.4g} max_lr={b.max_lr:.4g}{step}")


def _report_hyper_test(console: Console, name: str, ht: HyperTestResult, folder: Path) -> None:
    """Print a momentum or weight-decay test's scores; write its plot and JSON."""
    scores = ", ".join(f"{v:g}: {s:.4f}" for v, s in zip(ht.values, ht.scores))
    console.print(f"  {name} test (mean validation loss): {scores} -> {ht.summary()}")
    ht.plot(folder / f"{name}_test.png")
    (folder / f"{name}_test.json").write_text(
        json.dumps(
            {
                "values": ht.values,
                "scores": ht.scores,
                "best": ht.best,
                "lead": ht.lead(),
                "decisive": ht.decisive,
            },
            indent=1,
        )
    )


def confidence_line(rt: RangeTestResult) -> str:
    """The first line ``lrlab find`` prints: the default pick, and whether to trust it."""
    try:
        s = rt.suggest()
    except ValueError as e:
        return f"NO PICK: {e}; look at the plot"
    if not s.confident:
        return f"LOW CONFIDENCE: max_lr {s.lr:.4g} is not to be trusted: {'; '.join(s.warnings)}"
    return f"max_lr {s.lr:.4g} ({s.reason})"
