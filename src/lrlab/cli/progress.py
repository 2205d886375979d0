"""Progress display for long work: rich bars on a terminal, plain lines otherwise, or nothing."""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from lrlab.cli.output import plain_console


class StudyProgress:
    """Turns study events into bars (trials; epochs of each running trial) or log lines."""

    def __init__(self, quiet: bool = False, banner: str | None = None) -> None:
        self.console = plain_console(stderr=True)
        self.quiet = quiet
        self.banner = banner  # printed when the run starts, after its checks passed
        self.live = not quiet and self.console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}", markup=False),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._trials: TaskID | None = None
        self._running: dict[str, TaskID] = {}

    def __enter__(self) -> StudyProgress:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live:
            self.progress.stop()

    def __call__(self, e: dict[str, Any]) -> None:
        kind = e.get("kind")
        if kind == "plan":
            if self.banner and not self.quiet:
                self.console.print(self.banner)
            if self.live:
                self._trials = self.progress.add_task("trials", total=e["total"], info="")
            elif not self.quiet:
                self.console.print(f"{e['total']} trial(s) to run, {e['skipped']} already finished")
        elif kind in ("checkpoint_corrupt", "tracking_failed"):  # shown even with --quiet
            self.console.print(f"{e.get('trial')}: {e.get('message')}")
        elif kind == "start" and self.live:
            self._running[e["trial"]] = self.progress.add_task(
                f"  {e['trial']}", total=None, info=""
            )
        elif kind == "epoch":
            info = f"{e['updates_per_s']:.0f} upd/s"
            shown = _metric(e.get("metric", "val_top1"), e.get("value", e.get("val_top1")))
            if shown:
                info += f"  {shown}"
            if self.live and e["trial"] in self._running:
                self.progress.update(
                    self._running[e["trial"]], completed=e["epoch"], total=e["epochs"], info=info
                )
        elif kind == "done":
            name = e.get("metric", "val_top1")
            shown = _metric(name, e.get("final", {}).get(name))
            note = f"{e['status']}" + (f", {shown}" if shown else "")
            if self.live:
                task = self._running.pop(e["trial"], None)
                if task is not None:
                    self.progress.remove_task(task)
                if self._trials is not None:
                    self.progress.advance(self._trials)
                self.progress.console.print(f"  {e['trial']}: {note}")
            elif not self.quiet:
                self.console.print(f"{e['trial']}: {note}")


def _metric(name: str, value: Any) -> str:
    """A trial's headline metric for a progress line: accuracy as a percentage, any other
    metric (a regression task's loss or error) as its value."""
    if not isinstance(value, (int, float)) or value != value:
        return ""
    if name == "val_top1":
        return f"val {100 * value:.1f}%"
    return f"{name} {value:.4g}"
