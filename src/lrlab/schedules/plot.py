"""Plot of a schedule: the learning rate and its momentum over the updates.

matplotlib is imported when a plot is drawn, not with this module, so that
``lrlab.schedules`` stays importable without it (and never imports torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lrlab.schedules._base import Schedule

#: Below this many updates every update is plotted; above it, evenly spaced samples.
_EVERY_UPDATE_UP_TO = 20_000


def plot_schedules(
    lr: Schedule,
    path: str | Path,
    momentum: Schedule | None = None,
    horizon: int | None = None,
    title: str | None = None,
) -> Path:
    """Write a PNG of the learning rate (left axis) and, if given, momentum (right axis).

    Phase boundaries are drawn as faint vertical lines. Unbounded schedules need a
    ``horizon`` (a number of updates). This is what ``lrlab schedule plot`` draws.

    Returns:
        The path written.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from lrlab.schedules import cyclical_momentum, one_cycle
    >>> lr = one_cycle(max_lr=0.4, total=1000)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = plot_schedules(lr, Path(tmp) / "lr.png", momentum=cyclical_momentum(lr))
    ...     out.name, out.read_bytes()[:4]
    ('lr.png', b'\x89PNG')
    """
    from lrlab._figures import save, subplots

    span = lr.span(horizon)
    steps, lrs = lr.sample(n=min(span, _EVERY_UPDATE_UP_TO), horizon=span)
    fig, ax = subplots(figsize=(8, 4.2))
    ax.plot(steps, lrs, color="tab:blue", lw=1.6, label="learning rate")
    ax.set_xlabel("optimizer update")
    ax.set_ylabel("learning rate", color="tab:blue")
    ax.tick_params(axis="y", colors="tab:blue")
    ax.set_xlim(0, max(1, span - 1))
    ax.set_ylim(bottom=0)
    for p in lr.phases(span)[1:]:
        if p.start < span:
            ax.axvline(p.start, color="0.8", lw=0.8, zorder=0)
    handles = ax.get_lines()[:1]
    if momentum is not None:
        ax2 = ax.twinx()
        m_steps, moms = momentum.sample(n=min(span, _EVERY_UPDATE_UP_TO), horizon=span)
        (line,) = ax2.plot(m_steps, moms, color="tab:orange", lw=1.4, ls="--", label="momentum")
        ax2.set_ylabel("momentum", color="tab:orange")
        ax2.tick_params(axis="y", colors="tab:orange")
        low, high = min(moms), max(moms)
        pad = max(0.01, (high - low) * 0.15)
        ax2.set_ylim(low - pad, high + pad)
        handles.append(line)
    ax.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False
    )
    ax.set_title(title if title is not None else _wrap(lr.to_spec()), fontsize=9)
    ax.grid(alpha=0.25)
    fig.tight_layout()
    return save(fig, path)


def _wrap(text: str, width: int = 100) -> str:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines)
