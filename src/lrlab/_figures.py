"""Figures without pyplot, so lrlab never switches the user's matplotlib backend.

A notebook keeps its inline backend and a GUI session its windows: lrlab draws on a bare
``matplotlib.figure.Figure`` and writes it to a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def subplots(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], dpi: int = 120, **kw: Any
) -> tuple[Figure, Any]:
    """``pyplot.subplots`` on a figure that no pyplot state manager knows about."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(nrows, ncols, **kw)


def save(fig: Figure, path: str | Path, **kw: Any) -> Path:
    """Write ``fig`` to ``path`` (its folder made if missing); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, **kw)
    return out
