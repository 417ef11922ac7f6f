"""``vraagbaak documents due``: what the quality officer must review (issue 13, document control).

Reads the ingest state only (no models are loaded). Exit code 0; 2 for a bad ``--within``.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from serving.cli.common import ConfigOpt, boot


def documents_due(
    within: Annotated[
        str, typer.Option("--within", help="window ahead: 30d, 6w, 3m (overdue documents are always listed)")
    ] = "30d",
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Documents whose review date or expiry date is past or falls within the window."""
    from ingest.catalog_factory import build_catalog
    from ingest.doccontrol import due, parse_window
    from vraagbaak_core.types import DocControl

    try:
        days = parse_window(within)
    except ValueError as err:
        typer.secho(f"documents due: {err}", fg="red", err=True)
        raise typer.Exit(2) from None
    settings = boot(config)
    state = build_catalog(settings)
    try:
        records = [r for r in state.all() if r.committed and r.control]
    finally:
        state.close()
    items = due(((r.doc_id, r.source, r.title, DocControl.from_dict(r.control)) for r in records), days)
    if json_out:
        typer.echo(json.dumps([i.to_dict() for i in items], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{len(items)} due within {days} days (overdue included)")
    for col in ("due", "what", "days", "source", "title", "version", "owner", "id"):
        table.add_column(col, overflow="fold")
    for i in items:
        days_txt = f"[red]{i.days} (overdue)[/red]" if i.days < 0 else str(i.days)
        table.add_row(i.due, i.what, days_txt, i.source, i.title, i.version or "", i.owner or "", i.doc_id)
    Console().print(table)
