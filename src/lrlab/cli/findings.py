"""``lrlab findings DIR... -o docs/findings.md``: every study's answer in one table."""

from __future__ import annotations

from pathlib import Path

import typer

from lrlab.cli.errors import user_errors


@user_errors
def findings_command(
    study_dirs: list[Path] = typer.Argument(..., help="Study directories (each holds study.db)."),
    output: Path = typer.Option(
        Path("docs/findings.md"), "-o", "--output", help="Markdown file to write."
    ),
) -> None:
    """Gather the findings of finished studies into one markdown table."""
    from lrlab.report.findings import write_findings

    missing = [str(d) for d in study_dirs if not (d / "study.db").exists()]
    if missing:
        raise ValueError(f"no study.db in {', '.join(missing)}; run the studies first")
    try:
        findings = write_findings(study_dirs, output)
    except OSError as e:
        where = f" ({e.filename})" if e.filename and str(e.filename) != str(output) else ""
        raise ValueError(
            f"--output={str(output)!r} cannot be written: {e.strerror}{where}; "
            "expected a file path in a writable directory"
        ) from None
    for f in findings:
        typer.echo(f"{f.study}: {f.agreement}: {f.answer}")
    typer.echo(f"wrote {output}")
