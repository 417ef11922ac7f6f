"""Answer receipts and feedback as tables of the PostgreSQL catalog (migration 0003): every API
replica records to, and ``vraagbaak feedback export`` reads from, one log. Same behaviour as the
SQLite ``FeedbackStore``; ``tests/contract/test_feedback.py`` runs both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from ingest.catalog import empty_dump
from ingest.catalog_pg import PgTables
from serving.staff.feedback.store import (
    ANSWER_COLUMNS,
    FEEDBACK_COLUMNS,
    FeedbackError,
    UnknownAnswer,
    _now,
    docs_from,
    docs_json,
    dump_tables,
)
from vraagbaak_core.types import AnswerReceipt, FeedbackRow, Vote


class PostgresFeedback(PgTables):
    """The answers and feedback tables of the PostgreSQL catalog (the ``FeedbackLog`` port)."""

    _suffix = "feedback"

    def record_answer(self, receipt: AnswerReceipt) -> None:
        self._q(
            "INSERT INTO answers (answer_id, user_id, created_at, question, answer_text, mode, abstained, documents) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (answer_id) DO UPDATE SET "
            "user_id = excluded.user_id, created_at = excluded.created_at, question = excluded.question, "
            "answer_text = excluded.answer_text, mode = excluded.mode, abstained = excluded.abstained, "
            "documents = excluded.documents",
            (receipt.answer_id, receipt.user_id, receipt.created_at, receipt.question, receipt.answer_text,
             receipt.mode, receipt.abstained, Jsonb(docs_json(receipt.documents))),
        )

    def add(self, answer_id: str, user_id: str, vote: Vote, comment: str = "") -> str:
        if vote not in ("up", "down"):
            raise ValueError("vote must be 'up' or 'down'")
        fid = f"fb-{uuid.uuid4().hex}"
        rows = self._q(
            "INSERT INTO feedback (feedback_id, answer_id, user_id, created_at, vote, comment) "
            "SELECT %s, answer_id, user_id, %s, %s, %s FROM answers WHERE answer_id = %s AND user_id = %s "
            "RETURNING feedback_id",
            (fid, _now(), vote, comment, answer_id, user_id),
        )
        if not rows:
            raise UnknownAnswer(answer_id)
        return fid

    def export(self, since: datetime | None = None) -> Iterator[FeedbackRow]:
        q = ("SELECT f.feedback_id, f.created_at, f.answer_id, f.vote, f.comment, a.question, a.documents, a.mode,"
             " a.answer_text FROM feedback f JOIN answers a USING (answer_id)")
        args: tuple[str, ...] = ()
        if since is not None:
            q += " WHERE f.created_at >= %s"
            args = ((since if since.tzinfo else since.replace(tzinfo=UTC)).astimezone(UTC).isoformat(
                timespec="seconds"),)
        for r in self._q(q + ' ORDER BY f.created_at, f.feedback_id COLLATE "C"', args):
            yield FeedbackRow(r["feedback_id"], r["created_at"], r["answer_id"], r["vote"], r["comment"],
                              r["question"], docs_from(r["documents"]), r["mode"], r["answer_text"])

    def counts(self) -> dict[str, int]:
        return {str(r["vote"]): int(r["n"]) for r in self._q("SELECT vote, COUNT(*) AS n FROM feedback GROUP BY vote")}

    def dump(self) -> dict[str, Any]:
        out = empty_dump("postgresql")
        answers = self._q(f'SELECT {",".join(ANSWER_COLUMNS)} FROM answers ORDER BY answer_id COLLATE "C"')
        feedback = self._q(f'SELECT {",".join(FEEDBACK_COLUMNS)} FROM feedback ORDER BY feedback_id COLLATE "C"')
        out["tables"]["answers"] = {"columns": list(ANSWER_COLUMNS),
                                    "rows": [[r[c] for c in ANSWER_COLUMNS] for r in answers]}
        out["tables"]["feedback"] = {"columns": list(FEEDBACK_COLUMNS),
                                     "rows": [[r[c] for c in FEEDBACK_COLUMNS] for r in feedback]}
        return out

    def restore(self, dump: Mapping[str, Any]) -> int:
        answers, feedback = dump_tables(dump)
        with self._lock:
            conn = self._conn_ok()
            with conn.transaction():
                conn.execute("LOCK TABLE answers, feedback IN EXCLUSIVE MODE")
                r = conn.execute("SELECT (SELECT COUNT(*) FROM answers) + (SELECT COUNT(*) FROM feedback) AS n"
                                 ).fetchone()
                if r and r["n"]:
                    raise FeedbackError(f"{self.location} already holds {r['n']} rows; restore into an empty one")
                for a in answers:
                    a = a | {"documents": Jsonb(a["documents"])}
                    conn.execute(f"INSERT INTO answers ({','.join(ANSWER_COLUMNS)}) VALUES "  # type: ignore[arg-type]
                                 f"({','.join('%s' for _ in ANSWER_COLUMNS)})", [a[c] for c in ANSWER_COLUMNS])
                for f in feedback:
                    conn.execute(f"INSERT INTO feedback ({','.join(FEEDBACK_COLUMNS)}) VALUES "  # type: ignore[arg-type]
                                 f"({','.join('%s' for _ in FEEDBACK_COLUMNS)})", [f[c] for c in FEEDBACK_COLUMNS])
        return len(answers) + len(feedback)

