"""Feedback and answer receipts in SQLite, behind a narrow interface (to move behind a Catalog port).

An *answer receipt* is written for every answer the chat API gives: its id, the user, the cited
document ids with their versions, the mode, and the question only where
``audit.store_question_text`` allows it. The answer text is kept only with
``feedback.store_answers: true`` (off by default). Feedback refers to a receipt by answer id.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

Vote = Literal["up", "down"]

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


@dataclass(frozen=True)
class CitedDocument:
    doc_id: str
    version: str
    chunk_id: str = ""


@dataclass(frozen=True)
class AnswerReceipt:
    answer_id: str
    user_id: str
    documents: tuple[CitedDocument, ...]
    question: str | None = None
    answer_text: str | None = None
    mode: str | None = None
    abstained: bool = False
    created_at: str = field(default_factory=lambda: _now())


@dataclass(frozen=True)
class FeedbackRow:
    feedback_id: str
    created_at: str
    answer_id: str
    vote: Vote
    comment: str
    question: str | None
    documents: tuple[CitedDocument, ...]
    mode: str | None
    answer_text: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "feedback_id": self.feedback_id, "created_at": self.created_at, "answer_id": self.answer_id,
            "vote": self.vote, "comment": self.comment, "question": self.question,
            "documents": [{"doc_id": d.doc_id, "version": d.version} for d in self.documents],
            "mode": self.mode, "answer": self.answer_text,
        }


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
        docs = json.dumps([{"doc_id": d.doc_id, "version": d.version, "chunk_id": d.chunk_id}
                           for d in receipt.documents])
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
            documents = tuple(CitedDocument(d["doc_id"], d["version"], d.get("chunk_id", ""))
                              for d in json.loads(docs))
            yield FeedbackRow(fid, created, aid, vote, comment, question, documents, mode, text)

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT vote, COUNT(*) FROM feedback GROUP BY vote").fetchall()
        return {str(v): int(n) for v, n in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
