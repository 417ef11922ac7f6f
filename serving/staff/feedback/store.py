"""Feedback and answer receipts: the :class:`~vraagbaak_core.ports.FeedbackLog` port's SQLite adapter
(the embedded default) and :func:`build_feedback`, which puts them in the PostgreSQL catalog
(``serving.staff.feedback.store_pg``) when ``catalog.url`` is PostgreSQL, so every API replica writes to
and exports from one log.

An *answer receipt* is written for every answer the chat API gives: its id, the user, the cited
document ids with their versions, the mode, and the question only where
``audit.question_text`` allows it (redacted: patient identifiers replaced). The answer text is kept only with
``feedback.store_answers: true`` (off by default). Feedback refers to a receipt by answer id.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vraagbaak_core.types import AnswerReceipt, CitedDocument, FeedbackRow, Vote

if TYPE_CHECKING:
    pass

__all__ = ["AnswerReceipt", "CitedDocument", "FeedbackRow", "FeedbackStore", "UnknownAnswer", "Vote"]
ANSWER_COLUMNS = ("answer_id", "user_id", "created_at", "question", "answer_text", "mode", "abstained", "documents")
FEEDBACK_COLUMNS = ("feedback_id", "answer_id", "user_id", "created_at", "vote", "comment")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    answer_id   TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    question    TEXT,
    answer_text TEXT,
    mode        TEXT,
    abstained   INTEGER NOT NULL,
    documents   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    feedback_id TEXT PRIMARY KEY,
    answer_id   TEXT NOT NULL REFERENCES answers(answer_id),
    user_id     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    vote        TEXT NOT NULL CHECK (vote IN ('up', 'down')),
    comment     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS feedback_created ON feedback(created_at);
"""


class UnknownAnswer(LookupError):
    """No answer with that id was given to this user."""


class FeedbackError(RuntimeError):
    """A restore target is not empty, or a dump is not a feedback dump."""


def docs_json(documents: tuple[CitedDocument, ...]) -> list[dict[str, str]]:
    return [{"doc_id": d.doc_id, "version": d.version, "chunk_id": d.chunk_id} for d in documents]


def docs_from(raw: Any) -> tuple[CitedDocument, ...]:
    items = json.loads(raw) if isinstance(raw, str) else raw
    return tuple(CitedDocument(d["doc_id"], d["version"], d.get("chunk_id", "")) for d in items)


def dump_tables(dump: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(answers, feedback) rows of a feedback dump as dicts (``documents`` as a list, ``abstained`` a bool)."""
    from ingest.catalog import check_dump

    check_dump(dump)
    out = []
    for name, cols in (("answers", ANSWER_COLUMNS), ("feedback", FEEDBACK_COLUMNS)):
        t = dump["tables"].get(name) or {"columns": list(cols), "rows": []}
        out.append([dict(zip(t["columns"], r, strict=True)) for r in t["rows"]])
    for a in out[0]:
        a["documents"] = json.loads(a["documents"]) if isinstance(a["documents"], str) else a["documents"]
        a["abstained"] = bool(a["abstained"])
    return out[0], out[1]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class FeedbackStore:
    """Thread-safe; one connection guarded by a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def record_answer(self, receipt: AnswerReceipt) -> None:
        docs = json.dumps(docs_json(receipt.documents))
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (receipt.answer_id, receipt.user_id, receipt.created_at, receipt.question, receipt.answer_text,
                 receipt.mode, int(receipt.abstained), docs),
            )

    def add(self, answer_id: str, user_id: str, vote: Vote, comment: str = "") -> str:
        """Store one vote on an answer this user was given; the new feedback id."""
        if vote not in ("up", "down"):
            raise ValueError("vote must be 'up' or 'down'")
        with self._lock:
            row = self._db.execute("SELECT user_id FROM answers WHERE answer_id = ?", (answer_id,)).fetchone()
            if row is None or row[0] != user_id:
                raise UnknownAnswer(answer_id)
            fid = f"fb-{uuid.uuid4().hex}"
            self._db.execute(
                "INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?)", (fid, answer_id, user_id, _now(), vote, comment)
            )
        return fid

    def export(self, since: datetime | None = None) -> Iterator[FeedbackRow]:
        q = ("SELECT f.feedback_id, f.created_at, f.answer_id, f.vote, f.comment, a.question, a.documents, a.mode,"
             " a.answer_text FROM feedback f JOIN answers a USING (answer_id)")
        args: tuple[str, ...] = ()
        if since is not None:
            q += " WHERE f.created_at >= ?"
            args = ((since if since.tzinfo else since.replace(tzinfo=UTC)).astimezone(UTC).isoformat(
                timespec="seconds"),)
        with self._lock:
            rows = self._db.execute(q + " ORDER BY f.created_at, f.feedback_id", args).fetchall()
        for fid, created, aid, vote, comment, question, docs, mode, text in rows:
            yield FeedbackRow(fid, created, aid, vote, comment, question, docs_from(docs), mode, text)

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT vote, COUNT(*) FROM feedback GROUP BY vote").fetchall()
        return {str(v): int(n) for v, n in rows}

    @property
    def location(self) -> str:
        return str(self.path)

    def dump(self) -> dict[str, Any]:
        from ingest.catalog import empty_dump

        out = empty_dump("sqlite")
        with self._lock:
            answers = self._db.execute(
                f"SELECT {','.join(ANSWER_COLUMNS)} FROM answers ORDER BY answer_id").fetchall()
            feedback = self._db.execute(
                f"SELECT {','.join(FEEDBACK_COLUMNS)} FROM feedback ORDER BY feedback_id").fetchall()
        i, j = ANSWER_COLUMNS.index("abstained"), ANSWER_COLUMNS.index("documents")
        rows = []
        for r in answers:
            row = list(r)
            row[i], row[j] = bool(row[i]), json.loads(row[j])
            rows.append(row)
        out["tables"]["answers"] = {"columns": list(ANSWER_COLUMNS), "rows": rows}
        out["tables"]["feedback"] = {"columns": list(FEEDBACK_COLUMNS), "rows": [list(r) for r in feedback]}
        return out

    def restore(self, dump: Mapping[str, Any]) -> int:
        answers, feedback = dump_tables(dump)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                have = self._db.execute("SELECT (SELECT COUNT(*) FROM answers) + (SELECT COUNT(*) FROM feedback)"
                                        ).fetchone()[0]
                if have:
                    raise FeedbackError(f"{self.path} already holds {have} rows; restore into an empty one")
                for a in answers:
                    a = a | {"abstained": int(a["abstained"]), "documents": json.dumps(a["documents"])}
                    self._db.execute(f"INSERT INTO answers ({','.join(ANSWER_COLUMNS)}) VALUES "
                                     f"({','.join('?' for _ in ANSWER_COLUMNS)})", [a[c] for c in ANSWER_COLUMNS])
                for f in feedback:
                    self._db.execute(f"INSERT INTO feedback ({','.join(FEEDBACK_COLUMNS)}) VALUES "
                                     f"({','.join('?' for _ in FEEDBACK_COLUMNS)})", [f[c] for c in FEEDBACK_COLUMNS])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return len(answers) + len(feedback)

    def close(self) -> None:
        with self._lock:
            self._db.close()
