"""``vraagbaak feedback export``: staff votes for the quality officer (CSV or JSON lines).

Each row: the vote and comment, the answer id, the cited document ids with their versions, the
answer's mode, and the question only where ``audit.store_question_text`` allows it (checked at
answer time, when the receipt was written, and again at export).
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from typing import Annotated, TextIO

import typer

from serving.cli_boot import ConfigOpt, boot
from serving.feedback.factory import build_feedback
from serving.feedback.store import FeedbackRow

app = typer.Typer(help="Staff feedback on answers.", no_args_is_help=True)

CSV_FIELDS = ("feedback_id", "created_at", "answer_id", "vote", "comment", "question", "documents", "mode", "answer")


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO date or time: {value!r} (e.g. 2026-11-01 or 2026-11-01T08:00)") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def write_export(rows: list[FeedbackRow], fmt: str, out: TextIO, include_question: bool) -> int:
    n = 0
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    for row in rows:
        d = row.to_dict()
        if not include_question:
            d["question"] = None
        if writer is not None:
            docs = d["documents"]
            assert isinstance(docs, list)
            d["documents"] = ";".join(f"{x['doc_id']}@{x['version']}" for x in docs)
            writer.writerow({k: "" if d[k] is None else d[k] for k in CSV_FIELDS})
        else:
            out.write(json.dumps(d, ensure_ascii=False) + "\n")
        n += 1
    return n


@app.command("export")
def export(
    since: Annotated[str | None, typer.Option("--since", help="only feedback from this date/time (ISO 8601)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "csv",
    config: ConfigOpt = None,
) -> None:
    """Write every feedback entry (optionally since a date) to stdout."""
    if fmt not in ("csv", "jsonl"):
        raise typer.BadParameter("--format must be csv or jsonl")
    start = parse_since(since)
    settings = boot(config)
    store = build_feedback(settings)
    try:
        rows = list(store.export(start))
    finally:
        store.close()
    n = write_export(rows, fmt, sys.stdout, settings.audit.store_question_text)
    typer.echo(f"{n} feedback entries", err=True)
