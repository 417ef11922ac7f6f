"""``vraagbaak feedback export``: staff votes for the quality officer (CSV or JSON lines).

Each row: the vote and comment, the answer id, the cited document ids with their versions, the
answer's mode, and the question only where ``audit.question_text`` allows it, redacted as stored (checked at
answer time, when the receipt was written, and again at export).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from serving.cli.common import ConfigOpt, boot
from serving.staff.feedback.export import parse_since, write_export
from serving.staff.feedback.factory import build_feedback

app = typer.Typer(help="Staff feedback on answers.", no_args_is_help=True)



@app.command("export")
def export(
    since: Annotated[str | None, typer.Option("--since", help="only feedback from this date/time (ISO 8601)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "csv",
    config: ConfigOpt = None,
) -> None:
    """Write every feedback entry (optionally since a date) to stdout."""
    if fmt not in ("csv", "jsonl"):
        raise typer.BadParameter("--format must be csv or jsonl")
    try:
        start = parse_since(since)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    settings = boot(config)
    store = build_feedback(settings)
    try:
        rows = list(store.export(start))
    finally:
        store.close()
    n = write_export(rows, fmt, sys.stdout, settings.audit.question_text != "none")
    typer.echo(f"{n} feedback entries", err=True)
