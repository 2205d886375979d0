"""``lrlab find``: the LR range test on a named task, with suggestions, plot and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from lrlab.cli.errors import user_errors


@user_errors
def find(
    data: str = typer.Option(..., help="Task data: fashion-mnist, mnist1d, digits, cifar10."),
    model: str = typer.Option(..., help="Model: mlp, cnn1d, cnn, cifar_quick, resnet18."),
    optimizer: str = typer.Option("sgd", help="sgd, adam, adamw, ..."),
    base_momentum: float = typer.Option(
        0.9, help="Optimizer momentum (Adam: beta1) during the sweep."
    ),
    wd: float = typer.Option(5e-4, help="Optimizer weight decay during the sweep."),
    batch_size: int | None = typer.Option(None, help="Batch size (default: the task's usual one)."),
    width: float = typer.Option(1.0, help="Model width multiplier."),
    samples: int | None = typer.Option(None, help="Use only the first N training examples."),
    start_lr: float = typer.Option(1e-7, help="First LR of the sweep."),
    end_lr: float = typer.Option(10.0, help="Last LR of the sweep."),
    updates: int = typer.Option(100, help="Optimizer updates in the sweep."),
    mode: str = typer.Option("exp", help="exp (geometric ladder) or linear."),
    seed: int = typer.Option(0, help="Seed of the model and the data order."),
    momentum: bool = typer.Option(False, "--momentum", help="Also run Smith's momentum test."),
    weight_decay: bool = typer.Option(
        False, "--weight-decay", help="Also run the weight-decay test."
    ),
    confirm: int = typer.Option(
        0,
        help="Confirm step: short 1cycle runs at 1, 2 (2 candidates), 4 (3), 8 (4) times "
        "the suggestion; the lowest validation loss is kept.",
    ),
    confirm_updates: int = typer.Option(30, help="Updates of each confirm run."),
    out: Path | None = typer.Option(
        None, help="Output directory (default lrlab-find/<data>-<model>)."
    ),
) -> None:
    """Run the LR range test on a task: print suggestions, write the plot and the JSON."""
    from lrlab.rangetest import RULES
    from lrlab.study.find import find_on_task

    console = Console()
    bar = Progress(
        TextColumn("range test"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("lr {task.fields[lr]:.2e}  loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not Console(stderr=True).is_terminal,
    )
    with bar:
        task = bar.add_task("sweep", total=updates, lr=start_lr, loss=float("nan"))
        result = find_on_task(
            data,
            model,
            optimizer=optimizer,
            momentum=base_momentum,
            weight_decay=wd,
            batch_size=batch_size,
            width=width,
            samples=samples,
            start_lr=start_lr,
            end_lr=end_lr,
            num_updates=updates,
            mode=mode,
            seed=seed,
            test_momentum=momentum,
            test_weight_decay=weight_decay,
            confirm_candidates=confirm,
            confirm_updates=confirm_updates,
            progress=lambda i, n, lr, loss: bar.update(task, completed=i, lr=lr, loss=loss),
        )
    rt = result.range_test
    # The curve is written first: when no rule can read it, the plot is what to look at.
    folder = out or Path("lrlab-find") / f"{data}-{model}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "range_test.json").write_text(rt.to_json())
    rt.plot(folder / "range_test.png")
    console.print(
        f"{data} / {model} / {optimizer}: {rt.updates} updates, stopped: {rt.stop_reason}"
    )
    table = Table(header_style="bold", show_edge=False)
    for col in ("rule", "suggested lr", "10%-90% of resamples", "note"):
        table.add_column(col)
    for rule in RULES:
        try:
            s = rt.suggest(rule)
        except ValueError as e:
            table.add_row(rule, "-", "-", str(e).split(": ", 1)[-1])
            continue
        spread = f"{s.interval[0]:.3g} .. {s.interval[1]:.3g}" if s.interval else "-"
        table.add_row(
            rule + (" (default)" if rule == "lrlab" else ""),
            f"{s.lr:.4g}",
            spread,
            "; ".join(s.warnings) or s.reason,
        )
    console.print(table)
    for schedule in ("one_cycle", "clr", "constant"):
        try:
            b = rt.bounds(schedule, iters_per_epoch=result.iters_per_epoch)
        except ValueError as e:
            console.print(f"  {schedule:<9} no bounds: {e}")
            continue
        step = f", step_size={b.step_size}" if b.step_size else ""
        console.print(f"  {schedule:<9} base_lr={b.base_lr:.4g} max_lr={b.max_lr:.4g}{step}")
    if result.confirmed is not None:
        c = result.confirmed
        rows = ", ".join(f"{lr:.3g}: {v:.4f}" for lr, v in zip(c.candidates, c.val_losses))
        console.print(
            f"  confirm ({c.updates} updates; validation loss): {rows} -> max_lr {c.best:.4g}"
        )
    for name, ht in (("momentum", result.momentum), ("weight_decay", result.weight_decay)):
        if ht is not None:
            scores = ", ".join(f"{v:g}: {s:.4f}" for v, s in zip(ht.values, ht.scores))
            console.print(f"  {name} test (mean validation loss): {scores} -> best {ht.best:g}")
            ht.plot(folder / f"{name}_test.png")
            (folder / f"{name}_test.json").write_text(
                json.dumps({"values": ht.values, "scores": ht.scores, "best": ht.best}, indent=1)
            )
    console.print(f"wrote {folder / 'range_test.png'} and {folder / 'range_test.json'}")
