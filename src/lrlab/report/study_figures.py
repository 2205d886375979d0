"""The study report's figures (matplotlib Agg): curves, schedules, finals, per-group LRs.

Each arm keeps one colour in every figure (`arm_colours`), so a reader can follow an arm
from the learning curves to its schedule to its final numbers.
"""

from __future__ import annotations

import colorsys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lrlab._figures import save, subplots
from lrlab.report.study_summary import ArmSummary, StudySummary, curve_keys

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_TAB10 = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
_DPI = 110
#: Line styles by arm in the schedules figure, where arms often share a schedule exactly.
_DASHES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 3)))


def arm_colours(names: list[str]) -> dict[str, str]:
    """A colour per arm: matplotlib's tab10, then evenly spread hues past ten arms.

    >>> arm_colours(["a", "b"])
    {'a': '#1f77b4', 'b': '#ff7f0e'}
    """
    out = {}
    for i, name in enumerate(names):
        if i < len(_TAB10):
            out[name] = _TAB10[i]
        else:
            r, g, b = colorsys.hsv_to_rgb(((i - 10) * 0.618034) % 1.0, 0.65, 0.8)
            out[name] = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
    return out


def text(s: str) -> str:
    """A user string as matplotlib text: ``$`` would otherwise start mathtext."""
    return s.replace("$", r"\$")


def _save(fig: Figure, path: Path) -> Path:
    return save(fig, path, dpi=_DPI, bbox_inches="tight")


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, frameon=False, loc="best")


def plot_curves(summary: StudySummary, path: Path) -> Path:
    """The primary metric (and the loss) against updates: mean over seeds, 95% CI band."""
    colours = arm_colours([a.name for a in summary.arms])
    keys = [k for k in curve_keys(summary.metrics) if any(k in a.curves for a in summary.arms)]
    keys = keys or [summary.metrics.primary.name]
    fig, axes = subplots(1, len(keys), figsize=(13 if len(keys) > 1 else 7.5, 4.6))
    axes = np.atleast_1d(axes)
    panels = [(k, _axis_label(summary, k), summary.metrics[k].scale) for k in keys]
    primary = summary.metrics.primary.name
    for ax, (key, ylabel, scale) in zip(axes, panels):
        for arm in summary.arms:
            band = arm.curves.get(key)
            if band is None:
                continue
            c = colours[arm.name]
            mean, half = band.mean * scale, band.half_width * scale
            n = int(band.n.max())
            ax.plot(band.steps, mean, color=c, lw=1.8, label=f"{text(arm.name)} (n={n})")
            ok = np.isfinite(half)
            if ok.any():
                ax.fill_between(
                    band.steps, mean - half, mean + half, where=ok, color=c, alpha=0.2, lw=0
                )
            if key == primary:
                for _seed, div in arm.diverged_curves:
                    y = div.values[0] * scale
                    ax.plot(div.steps, y, color=c, lw=0.9, ls=":", alpha=0.9)
                    ax.plot(div.steps[-1:], y[-1:], "x", color=c, ms=7, mew=2)
        target = summary.targets.get(key)
        if target is not None:
            ax.axhline(target * scale, color="0.4", ls="--", lw=1, label="target")
        ax.set_xlabel("optimizer updates")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.25)
        _legend(ax)
    if any(a.diverged_curves for a in summary.arms):
        axes[0].set_title("dotted, ending in x: a seed that diverged", fontsize=9)
    fig.suptitle(f"{text(summary.name)}: learning curves (mean over seeds, 95% CI band)")
    fig.tight_layout()
    return _save(fig, path)


def plot_applied_schedules(summary: StudySummary, path: Path) -> Path:
    """The LR (and momentum) each arm applied, one thin line per distinct seed schedule."""
    colours = arm_colours([a.name for a in summary.arms])
    has_mom = any(s.momentum for a in summary.arms for s in a.schedules)
    fig, axes = subplots(1, 2 if has_mom else 1, figsize=(13 if has_mom else 7.5, 4.4))
    axes = np.atleast_1d(axes)
    peaks = []
    for index, arm in enumerate(summary.arms):
        c, dashes = colours[arm.name], _DASHES[index % len(_DASHES)]
        seen: set[tuple[tuple[float, ...], tuple[float, ...]]] = set()
        for i, s in enumerate(arm.schedules):
            key = (tuple(s.lr), tuple(s.momentum))
            if key in seen:
                continue  # seeds with the same schedule draw one line
            seen.add(key)
            label = text(arm.name) + (" (recorded)" if s.source == "recorded" else "")
            axes[0].plot(s.steps, s.lr, color=c, lw=1.6, ls=dashes, label=None if i else label)
            if s.lr:
                peaks.append(max(s.lr))
            if has_mom and s.momentum:
                axes[1].plot(
                    s.momentum_steps, s.momentum, color=c, lw=1.6, ls=dashes,
                    label=None if i else label,
                )  # fmt: skip
    positive = [p for p in peaks if p > 0]
    if positive and max(positive) / min(positive) > 20:
        axes[0].set_yscale("log")  # arms on different scales (e.g. SGD vs Adam)
    axes[0].set_ylabel("learning rate")
    axes[0].set_title("learning rate applied", fontsize=10)
    if has_mom:
        axes[1].set_ylabel("momentum (or Adam β1)")
        axes[1].set_title("momentum applied", fontsize=10)
    for ax in axes:
        ax.set_xlabel("optimizer updates")
        ax.grid(alpha=0.25)
        _legend(ax)
    fig.suptitle(f"{text(summary.name)}: schedules per arm")
    fig.tight_layout()
    return _save(fig, path)


def _axis_label(summary: StudySummary, key: str) -> str:
    """``validation top-1 accuracy (%)``, ``validation loss (cross-entropy)``, ``val mae``."""
    if key == "val_top1":
        return "validation top-1 accuracy (%)"
    if key == "val_loss":
        loss = "cross-entropy" if summary.metrics.primary.name == "val_top1" else "the task's loss"
        return f"validation loss ({loss})"
    m = summary.metrics[key]
    return m.words + (" (%)" if m.unit == "points" else "")


def _final_panel(ax: Axes, summary: StudySummary, key: str, colours: dict[str, str]) -> None:
    base = summary.arm(summary.baseline)
    rng = np.random.default_rng(0)  # fixed jitter: the same figure every time
    labels = []
    for x, arm in enumerate(summary.arms):
        c = colours[arm.name]
        values = arm.values.get(key, [])
        if values:
            ax.scatter(x + rng.uniform(-0.12, 0.12, len(values)), values, color=c, s=22, alpha=0.7)
            ci = arm.final[key]
            yerr = None if ci.half_width is None else [[ci.half_width], [ci.half_width]]
            ax.errorbar(x + 0.25, ci.mean, yerr=yerr, fmt="D", color=c, ms=6, capsize=4, lw=1.6)
        k = len(arm.with_status("diverged"))
        label = text(arm.name) + ("\n(baseline)" if arm is base else "")
        labels.append(label + (f"\n{k} diverged" if k else ""))
    if base is not None and key in base.final:
        ax.axhline(base.final[key].mean, color="0.5", ls="--", lw=1)
    ax.set_xticks(range(len(summary.arms)), labels, fontsize=8)
    ax.set_xlim(-0.6, len(summary.arms) - 0.4)
    m = summary.metrics[key]
    ax.set_ylabel(("validation " + m.label.removeprefix("val ")).replace(" %", " (%)"))
    ax.grid(alpha=0.25, axis="y")


def plot_final(summary: StudySummary, path: Path) -> Path:
    """The final primary metric (and loss) per arm: seeds as dots, mean ± 95% CI as a bar."""
    colours = arm_colours([a.name for a in summary.arms])
    keys = [k for k in curve_keys(summary.metrics) if any(k in a.final for a in summary.arms)]
    width = max(6.0, 1.1 * len(summary.arms) + 2.0)
    fig, axes = subplots(1, max(1, len(keys)), figsize=(width * max(1, len(keys)), 4.4))
    for ax, key in zip(np.atleast_1d(axes), keys):
        _final_panel(ax, summary, key, colours)
    fig.suptitle(
        f"{text(summary.name)}: final metrics (dots: seeds; diamond: mean ± 95% CI; "
        "dashed: baseline mean)",
        fontsize=10,
    )
    fig.tight_layout()
    return _save(fig, path)


def plot_group_rates(summary: StudySummary, path: Path) -> Path | None:
    """Heatmap of per-group LR (groups x updates, log colour) for arms that log ``lr/<group>``."""
    arms: list[ArmSummary] = [a for a in summary.arms if a.group_rates is not None]
    if not arms:
        return None
    from matplotlib.colors import LogNorm

    heights = [
        max(1.8, min(6.0, 0.28 * len(a.group_rates.groups) + 1.0)) for a in arms if a.group_rates
    ]
    fig, axes = subplots(
        len(arms), 1, figsize=(10, sum(heights) + 0.6), squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    for ax, arm in zip(axes[:, 0], arms):
        rates = arm.group_rates
        assert rates is not None
        data = np.ma.masked_invalid(np.where(rates.rates > 0, rates.rates, np.nan))
        if data.count() == 0:
            ax.set_axis_off()
            continue
        steps = rates.steps.astype(float)
        # each cell is centred on its evaluation step
        mids = (steps[1:] + steps[:-1]) / 2
        first = steps[0] - (mids[0] - steps[0] if len(mids) else 0.5)
        last = steps[-1] + (steps[-1] - mids[-1] if len(mids) else 0.5)
        edges = np.concatenate([[first], mids, [last]])
        mesh = ax.pcolormesh(
            edges,
            np.arange(len(rates.groups) + 1),
            data,
            norm=LogNorm(
                vmin=float(data.min()), vmax=max(float(data.max()), float(data.min()) * 1.01)
            ),
            cmap="viridis",
            shading="flat",
        )
        every = max(1, len(rates.groups) // 25)
        ticks = list(range(0, len(rates.groups), every))
        ax.set_yticks([t + 0.5 for t in ticks], [text(rates.groups[t]) for t in ticks], fontsize=7)
        ax.invert_yaxis()  # first (input-side) group on top
        ax.set_xlim(steps[0], steps[-1]) if len(steps) > 1 else None
        ax.set_xlabel("optimizer updates")
        ax.set_ylabel("parameter group")
        seeds = f"geometric mean over {rates.seeds} seeds" if rates.seeds > 1 else "one seed"
        ax.set_title(f"{text(arm.name)}: learning rate per group ({seeds})", fontsize=10)
        fig.colorbar(mesh, ax=ax, label="learning rate (log scale)", pad=0.01)
    fig.tight_layout()
    return _save(fig, path)
