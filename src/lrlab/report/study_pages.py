"""The study report as Markdown and as one self-contained HTML file.

Every string a user wrote (study name, question, claim, arm names, error messages) is
escaped for the format it lands in: HTML entities in the HTML, backslash escapes in the
Markdown (whose renderers pass raw HTML through). The HTML carries its CSS inline and
its figures as base64 data URIs, so it can be mailed or attached as one file.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from typing import Any

from lrlab.report.stats import MeanCI
from lrlab.report.study_figures import arm_colours
from lrlab.report.study_notes import (
    arm_groups,
    range_test_warnings,
    split_of_trials,
    split_sentence,
    swept_with,
    test_table,
)
from lrlab.report.study_summary import StudySummary

FIGURES = {
    "curves": "Learning curves on the validation split: mean over seeds, shaded 95% band.",
    "final": "Final validation metrics per arm: each dot a seed, the diamond the mean with "
    "its 95% CI.",
    "schedules": "Learning rate and momentum each arm applied.",
    "llr_heatmap": "Learning rate per parameter group over training (log colour scale).",
}
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|#!])")


def md(s: object) -> str:
    r"""A user string as Markdown text: one line, markup characters escaped.

    >>> md("<script>a|b</script>")
    '\\<script\\>a\\|b\\</script\\>'
    """
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(s).split()))


def esc(s: object) -> str:
    """A user string as HTML text (quotes too, so it is safe in attributes)."""
    return html.escape(str(s), quote=True)


def fmt_ci(ci: MeanCI | None, decimals: int) -> str:
    """``mean ± half-width`` (just the mean when one seed gives no interval).

    >>> from lrlab.report.stats import mean_ci
    >>> fmt_ci(mean_ci([90.0, 91.0, 92.0]), 2)
    '91.00 ± 2.48'
    """
    if ci is None:
        return "—"
    if ci.half_width is None:
        return f"{ci.mean:.{decimals}f}"
    return f"{ci.mean:.{decimals}f} ± {ci.half_width:.{decimals}f}"


def _target_label(summary: StudySummary, key: str, value: float) -> str:
    m = summary.metrics[key]
    shown = f"{value * m.scale:g}" + ("%" if m.unit == "points" else "")
    return f"updates to {m.label.removesuffix(' %')} {'≥' if m.higher_is_better else '≤'} {shown}"


def final_table(summary: StudySummary) -> tuple[list[str], list[list[str]]]:
    """Header and rows (plain text, user strings unescaped) of the final-metrics table."""
    columns = summary.metrics.columns
    header = ["arm", "seeds done"] + [m.label for m in columns]
    header += [_target_label(summary, k, v) for k, v in summary.targets.items()]
    header += ["tuning updates", "seconds / trial", "done / diverged / failed"]
    rows = []
    for arm in summary.arms:
        done = arm.counts["done"]
        row = [arm.name + (" (baseline)" if arm.name == summary.baseline else ""), str(done)]
        for m in columns:
            ci = arm.final.get(m.name)
            cell = fmt_ci(ci, m.decimals)
            if ci is not None and ci.n != done:
                cell += f" (n={ci.n})"
            row.append(cell)
        for key in summary.targets:
            reach = arm.targets[key]
            row.append(f"{fmt_ci(reach.updates, 0)} ({reach.reached}/{reach.of} reached)")
        tuning = arm.tuning_updates
        row.append(fmt_ci(tuning, 0) if tuning is None or tuning.std else f"{tuning.mean:.0f}")
        row.append(fmt_ci(arm.seconds, 1))
        c = arm.counts
        row.append(f"{c['done']} / {c['diverged']} / {c['failed']}")
        rows.append(row)
    return header, rows


def bounds_table(summary: StudySummary) -> tuple[list[str], list[list[str]]] | None:
    """LR bounds the arms' range tests found (None when no arm ran one)."""
    arms = [a for a in summary.arms if a.bounds]
    if not arms:
        return None
    header = ["arm", "rule", "base_lr", "max_lr", "trials", "swept with"]
    rows = []
    for a in arms:
        cells = [f"{fmt_sig(a.bounds.get(k))}" for k in ("base_lr", "max_lr")]
        n = max(ci.n for ci in a.bounds.values())
        records = [t.final["bounds"].get("swept_with") for t in a.trials
                   if isinstance(t.final.get("bounds"), dict)]  # fmt: skip
        how = swept_with(records[0] if records else None)
        rows.append([a.name, ", ".join(a.bound_rules) or "—", *cells, str(n), how])
    return header, rows


def fmt_sig(ci: MeanCI | None) -> str:
    """``mean ± half-width`` to three significant figures, for quantities like LRs.

    >>> from lrlab.report.stats import mean_ci
    >>> fmt_sig(mean_ci([0.1, 0.2, 0.3]))
    '0.2 ± 0.248'
    """
    if ci is None:
        return "—"
    if ci.half_width is None:
        return f"{ci.mean:.3g}"
    return f"{ci.mean:.3g} ± {ci.half_width:.3g}"


def provenance_value(values: list[str]) -> str:
    """One provenance line; several distinct values mean trials ran on different setups."""
    if not values:
        return "unknown"
    return ", ".join(values) + (" (mixed: trials differ)" if len(values) > 1 else "")


def _incomplete(summary: StudySummary) -> str:
    waiting = sum(a.counts["pending"] + a.counts["running"] for a in summary.arms)
    total = sum(len(a.trials) for a in summary.arms)
    return f"Study incomplete: {waiting} of {total} trials have not finished." if waiting else ""


def _splits(summary: StudySummary) -> str:
    return split_sentence(split_of_trials([t for a in summary.arms for t in a.trials]))


def problem_trials(summary: StudySummary) -> list[str]:
    """One plain line per diverged or failed trial (user strings unescaped)."""
    lines = []
    for arm in summary.arms:
        for t in arm.with_status("diverged"):
            at = t.final.get("diverged_at")
            lines.append(
                f"{arm.name}, seed {t.seed}: diverged" + (f" at update {at}" if at else "")
            )
        for t in arm.with_status("failed"):
            err = " ".join(str(t.error or "no error message").split())[:300]
            lines.append(f"{arm.name}, seed {t.seed}: failed: {err}")
    return lines


def setup_lines(summary: StudySummary) -> list[tuple[str, str]]:
    """(label, value) pairs describing the task, optimizer, seeds and arms' LR specs."""
    cfg = summary.config

    def compact(v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v, sort_keys=True)

    out = [("seeds", ", ".join(str(s) for s in cfg.get("seeds", [])))]
    if summary.preset:
        out.append(("preset", summary.preset))
    out.append(("task", compact(cfg.get("task", {}))))
    out.append(("optimizer", compact(cfg.get("optimizer", {}))))
    for a in cfg.get("arms", []):
        if isinstance(a, dict):
            rest = {k: v for k, v in a.items() if k != "name" and v is not None}
            out.append((f"arm {a.get('name')}", compact(rest)))
            groups = arm_groups(a)
            if groups:
                out.append((f"arm {a.get('name')}: groups", groups))
    return out


def to_markdown(summary: StudySummary, figures: dict[str, Path]) -> str:
    """The report as Markdown; figures are linked by file name (they sit beside it)."""
    cfg = summary.config
    out = [f"# Study: {md(summary.name)}", ""]
    if cfg.get("question"):
        out += [f"**Question.** {md(cfg['question'])}", ""]
    if cfg.get("claim"):
        out += [f"**Published claim.** {md(cfg['claim'])}", ""]
    f = summary.finding
    out += [f"**Answer:** {md(f.answer if f else summary.headline)}.", ""]
    if f is not None:
        if cfg.get("claim"):
            out += [f"**Against the published claim:** {f.agreement}.", ""]
        out += [f"- {md(line)}" for line in f.details] + [""]
    out += [f"**Splits.** {md(_splits(summary))}.", ""]
    if _incomplete(summary):
        out += [f"*{_incomplete(summary)}*", ""]
    out += [f"## Each arm against the baseline ({md(summary.baseline)})", ""]
    out += [f"- {md(s)}." for s in summary.comparisons] or ["- (no other arm to compare)"]
    header, rows = final_table(summary)
    out += ["", "## Final metrics (validation split)", ""]
    out += ["Mean ± 95% CI half-width (Student t) over the seeds that finished; diverged "
            "seeds are counted, not averaged.", ""]  # fmt: skip
    out += ["| " + " | ".join(md(h) for h in header) + " |"]
    out += ["|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
    test = test_table(summary)
    if test is not None:
        out += ["", "## Test split (scored once at the end; no verdict reads it)", ""]
        out += ["| " + " | ".join(md(h) for h in test[0]) + " |"]
        out += ["|" + "|".join(["---"] + ["---:"] * (len(test[0]) - 1)) + "|"]
        out += ["| " + " | ".join(md(c) for c in row) + " |" for row in test[1]]
    bounds = bounds_table(summary)
    if bounds is not None:
        out += ["", "## Learning-rate bounds found by range tests", ""]
        out += ["| " + " | ".join(bounds[0]) + " |", "|---|---|---:|---:|---:|---|"]
        out += ["| " + " | ".join(md(c) for c in row) + " |" for row in bounds[1]]
    warned = range_test_warnings(summary)
    if warned:
        out += ["", "## Range-test warnings", ""] + [f"- {md(w)}" for w in warned]
    problems = problem_trials(summary)
    if problems:
        out += ["", "## Diverged and failed trials", ""] + [f"- {md(p)}" for p in problems]
    out += ["", "## Figures", ""]
    for key, path in figures.items():
        out += [f"![{FIGURES[key]}]({path.name})", "", f"*{FIGURES[key]}*", ""]
    out += ["## Setup", ""] + [f"- **{md(k)}**: {md(v)}" for k, v in setup_lines(summary)]
    out += ["", "## Provenance", ""]
    out += [f"- **{k}**: {md(provenance_value(v))}" for k, v in summary.provenance.items()]
    return "\n".join(out) + "\n"


CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1180px; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: .2em; }
.answer { background: #f3f7fb; border-left: 4px solid #1f77b4; padding: .7em 1em; }
.note { color: #8a5a00; } .muted { color: #666; font-size: .9em; }
table { border-collapse: collapse; font-size: .88em; margin: .6em 0; }
th, td { border-bottom: 1px solid #e2e2e2; padding: .35em .6em; text-align: right; }
th { background: #fafafa; } td:first-child, th:first-child { text-align: left; }
.swatch { display: inline-block; width: .8em; height: .8em; border-radius: 2px;
          margin-right: .4em; vertical-align: baseline; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
.setup td { text-align: left; }
figcaption { color: #555; font-size: .9em; } code { font-size: .85em; word-break: break-all; }
"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _arm_cell(label: str, colour: str) -> str:
    return f'<span class="swatch" style="background:{colour}"></span>{esc(label)}'


def to_html(summary: StudySummary, figures: dict[str, Path]) -> str:
    """The report as one HTML page with inline CSS and embedded PNGs."""
    cfg = summary.config
    colours = arm_colours([a.name for a in summary.arms])
    h = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>lrlab study: {esc(summary.name)}</title><style>{CSS}</style></head><body>",
        f"<h1>Study: {esc(summary.name)}</h1>",
    ]
    if cfg.get("question"):
        h.append(f"<p><strong>Question.</strong> {esc(cfg['question'])}</p>")
    if cfg.get("claim"):
        h.append(f"<p><strong>Published claim.</strong> {esc(cfg['claim'])}</p>")
    f = summary.finding
    answer = f.answer if f else summary.headline
    h.append(f'<p class="answer"><strong>Answer:</strong> {esc(answer)}.</p>')
    if f is not None:
        if cfg.get("claim"):
            h.append(f"<p><strong>Against the published claim:</strong> {esc(f.agreement)}.</p>")
        h.append("<ul>")
        h += [f"<li>{esc(line)}</li>" for line in f.details]
        h.append("</ul>")
    h.append(f"<p><strong>Splits.</strong> {esc(_splits(summary))}.</p>")
    if _incomplete(summary):
        h.append(f'<p class="note">{esc(_incomplete(summary))}</p>')
    h.append(f"<h2>Each arm against the baseline ({esc(summary.baseline)})</h2><ul>")
    h += [f"<li>{esc(s)}.</li>" for s in summary.comparisons] or ["<li>no other arm</li>"]
    h.append("</ul><h2>Final metrics (validation split)</h2>")
    h.append(
        '<p class="muted">Mean ± 95% CI half-width (Student t) over the seeds that finished; '
        "diverged seeds are counted, not averaged.</p>"
    )
    header, rows = final_table(summary)
    h.append("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in header) + "</tr>")
    for arm, row in zip(summary.arms, rows):
        cells = [_arm_cell(row[0], colours[arm.name])] + [esc(c) for c in row[1:]]
        h.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    h.append("</table>")
    test = test_table(summary)
    if test is not None:
        h.append("<h2>Test split (scored once at the end; no verdict reads it)</h2><table>")
        h.append("<tr>" + "".join(f"<th>{esc(c)}</th>" for c in test[0]) + "</tr>")
        h += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in test[1]]
        h.append("</table>")
    bounds = bounds_table(summary)
    if bounds is not None:
        h.append("<h2>Learning-rate bounds found by range tests</h2><table>")
        h.append("<tr>" + "".join(f"<th>{esc(c)}</th>" for c in bounds[0]) + "</tr>")
        h += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in bounds[1]]
        h.append("</table>")
    warned = range_test_warnings(summary)
    if warned:
        h.append("<h2>Range-test warnings</h2><ul>")
        h += [f"<li>{esc(w)}</li>" for w in warned] + ["</ul>"]
    problems = problem_trials(summary)
    if problems:
        h.append("<h2>Diverged and failed trials</h2><ul>")
        h += [f"<li>{esc(p)}</li>" for p in problems] + ["</ul>"]
    h.append("<h2>Figures</h2>")
    for key, path in figures.items():
        h.append(
            f'<figure><img src="{_data_uri(path)}" alt="{esc(FIGURES[key])}">'
            f"<figcaption>{esc(FIGURES[key])}</figcaption></figure>"
        )
    h.append('<h2>Setup</h2><table class="setup">')
    h += [
        f"<tr><th>{esc(k)}</th><td><code>{esc(v)}</code></td></tr>" for k, v in setup_lines(summary)
    ]
    h.append("</table><h2>Provenance</h2><table>")
    for k, v in summary.provenance.items():
        h.append(f"<tr><th>{esc(k)}</th><td>{esc(provenance_value(v))}</td></tr>")
    h.append("</table></body></html>")
    return "\n".join(h) + "\n"
