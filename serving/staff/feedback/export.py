"""Staff feedback as CSV or JSON lines, for ``vraagbaak feedback export`` and ``GET /api/feedback/export``.

Each row: the vote and comment, the answer id, the cited document ids with their versions, the answer's
mode, and the question only where ``audit.question_text`` allows it (redacted as stored)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from typing import TextIO

from vraagbaak_core.types import FeedbackRow

CSV_FIELDS = ("feedback_id", "created_at", "answer_id", "vote", "comment", "question", "documents", "mode", "answer")


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO date or time: {value!r} (e.g. 2026-11-01 or 2026-11-01T08:00)") from None
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
