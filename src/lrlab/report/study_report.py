"""``write_report``: a study's answer with error bars, as Markdown, HTML and PNG figures.

The report reads ``study_dir/study.db`` (see `lrlab.study.store`) and writes beside it:
``report.md``, ``report.html`` (one self-contained file), ``curves.png``,
``schedules.png``, ``final.png`` and, when some arm logs per-group learning rates
(``lr/<group>`` metrics), ``llr_heatmap.png``. Claims are means over seeds with Student t
intervals and Welch tests (`lrlab.report.stats`), as airbench reports its results.
"""

from __future__ import annotations

from pathlib import Path

from lrlab.report import study_figures as figures
from lrlab.report.study_pages import to_html, to_markdown
from lrlab.report.study_summary import StudySummary, summarize

__all__ = ["StudySummary", "summarize", "write_report"]


def write_report(study_dir: Path, summary: StudySummary | None = None) -> dict[str, Path]:
    """Write the report of the study in ``study_dir`` into that directory.

    Args:
        study_dir: a directory holding ``study.db``.
        summary: the result of ``summarize(study_dir)`` when the caller already has it.

    Returns:
        The paths written, by name: ``"html"``, ``"md"``, ``"curves"``, ``"schedules"``,
        ``"final"`` and, when some arm logs ``lr/<group>``, ``"llr_heatmap"``.

    Raises:
        ValueError: no such directory, no ``study.db`` in it, or no finished trial.

    Example::

        paths = write_report(Path("runs/clr-vs-step"))
        print(paths["html"])  # runs/clr-vs-step/report.html
    """
    study_dir = Path(study_dir)
    summary = summary if summary is not None else summarize(study_dir)
    if summary.finding is None and (summary.config.get("analysis") or summary.config.get("claim")):
        from lrlab.report.findings import analyze

        summary.finding = analyze(study_dir)
    written = {
        "curves": figures.plot_curves(summary, study_dir / "curves.png"),
        "final": figures.plot_final(summary, study_dir / "final.png"),
        "schedules": figures.plot_applied_schedules(summary, study_dir / "schedules.png"),
    }
    heatmap = figures.plot_group_rates(summary, study_dir / "llr_heatmap.png")
    if heatmap is not None:
        written["llr_heatmap"] = heatmap
    md_path, html_path = study_dir / "report.md", study_dir / "report.html"
    md_path.write_text(to_markdown(summary, written), encoding="utf-8")
    html_path.write_text(to_html(summary, written), encoding="utf-8")
    return {"html": html_path, "md": md_path, **written}
