"""The quarantine: documents the patient-data guard kept out of the index, until a privacy officer
releases them. Holds counts per kind and the reason, never the values or the text.

The :class:`~vraagbaak_core.ports.Quarantine` port: ``QuarantineStore`` here (one SQLite file, the
embedded default) and ``ingest.quarantine_pg.PostgresQuarantine`` (a table in the PostgreSQL catalog,
so the ingest workers' quarantine is the one the API lists and releases); :func:`build_quarantine`
picks one from the settings. A release applies to the exact content (sha256) that was quarantined:
the next ingest of that file indexes it without the guard; a changed file is scanned again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vraagbaak_core.types import QuarantineEntry

if TYPE_CHECKING:
    from vraagbaak_core.settings import Settings

__all__ = ["QUARANTINE_COLUMNS", "QuarantineEntry", "QuarantineError", "QuarantineStore"]
QUARANTINE_COLUMNS: tuple[str, ...] = (
    "id", "doc_id", "source_set", "source", "sha256", "reason", "counts", "quarantined_at", "released_at",
    "released_by", "release_reason",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine (
    id             TEXT PRIMARY KEY,
    doc_id         TEXT NOT NULL,
    source_set     TEXT NOT NULL DEFAULT '',
    source         TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    reason         TEXT NOT NULL,
    counts         TEXT NOT NULL DEFAULT '{}',
    quarantined_at TEXT NOT NULL,
    released_at    TEXT,
    released_by    TEXT,
    release_reason TEXT,
    UNIQUE (doc_id, sha256)
);
"""


class QuarantineError(RuntimeError):
    """A release was refused (no reason, unknown id, already released) or a restore target is not empty."""

    pass


def quarantine_path(settings: Settings) -> Path:
    """``ingest.patient_data.quarantine_path``, or ``quarantine.sqlite`` next to the SQLite state file."""
    pd = settings.ingest.patient_data
    if pd.quarantine_path is not None:
        return settings.resolve(pd.quarantine_path)
    return settings.resolve(settings.ingest.state_path).with_name("quarantine.sqlite")


def entry_row(e: QuarantineEntry) -> list[Any]:
    return [getattr(e, c) for c in QUARANTINE_COLUMNS]


def check_empty_dump(dump: Mapping[str, Any]) -> list[QuarantineEntry]:
    """The entries of a quarantine dump (the catalog dump format, table ``quarantine``)."""
    from ingest.catalog import check_dump

    check_dump(dump)
    t = dump["tables"].get("quarantine") or {"columns": list(QUARANTINE_COLUMNS), "rows": []}
    return [QuarantineEntry(**dict(zip(t["columns"], row, strict=True))) for row in t["rows"]]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class QuarantineStore:
    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    def add(self, *, doc_id: str, source_set: str, source: str, sha256: str, reason: str,
            counts: dict[str, int]) -> QuarantineEntry:
        """Record a quarantined document (the same content again updates its entry, not a new one)."""
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM quarantine WHERE doc_id = ? AND sha256 = ?", (doc_id, sha256)
            ).fetchone()
            if row is not None:
                self._db.execute(
                    "UPDATE quarantine SET reason = ?, counts = ?, source = ?, quarantined_at = ? WHERE id = ?",
                    (reason, json.dumps(counts), source, _now(), row["id"]),
                )
                entry_id = str(row["id"])
            else:
                entry_id = uuid.uuid4().hex[:12]
                self._db.execute(
                    "INSERT INTO quarantine (id, doc_id, source_set, source, sha256, reason, counts, quarantined_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (entry_id, doc_id, source_set, source, sha256, reason, json.dumps(counts), _now()),
                )
        entry = self.get(entry_id)
        assert entry is not None
        return entry

    def get(self, entry_id: str) -> QuarantineEntry | None:
        with self._lock:
            r = self._db.execute("SELECT * FROM quarantine WHERE id = ?", (entry_id,)).fetchone()
        return _entry(r) if r is not None else None

    def list(self, include_released: bool = False) -> list[QuarantineEntry]:
        sql = "SELECT * FROM quarantine" + ("" if include_released else " WHERE released_at IS NULL")
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY quarantined_at, source, id").fetchall()
        return [_entry(r) for r in rows]

    def release(self, entry_id: str, *, by: str, reason: str) -> QuarantineEntry:
        if not reason.strip():
            raise QuarantineError("a release needs a reason")
        entry = self.get(entry_id)
        if entry is None:
            raise QuarantineError(f"no quarantined document with id {entry_id}")
        if entry.released:
            raise QuarantineError(f"{entry_id} was already released on {entry.released_at} by {entry.released_by}")
        with self._lock:
            self._db.execute(
                "UPDATE quarantine SET released_at = ?, released_by = ?, release_reason = ? WHERE id = ?",
                (_now(), by, reason.strip(), entry_id),
            )
        out = self.get(entry_id)
        assert out is not None
        return out

    def released_sha256(self, doc_id: str) -> tuple[str, ...]:
        """Contents of this document a privacy officer released (indexed without the guard)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT sha256 FROM quarantine WHERE doc_id = ? AND released_at IS NOT NULL", (doc_id,)
            ).fetchall()
        return tuple(str(r["sha256"]) for r in rows)

    def resolve(self, doc_id: str) -> None:
        """The document was indexed in a clean version (or erased): its open entries are moot."""
        with self._lock:
            self._db.execute("DELETE FROM quarantine WHERE doc_id = ? AND released_at IS NULL", (doc_id,))

    @property
    def location(self) -> str:
        return str(self._path)

    def dump(self) -> dict[str, Any]:
        from ingest.catalog import empty_dump

        out = empty_dump("sqlite")
        with self._lock:
            rows = self._db.execute("SELECT * FROM quarantine ORDER BY id").fetchall()
        out["tables"]["quarantine"] = {
            "columns": list(QUARANTINE_COLUMNS), "rows": [entry_row(_entry(r)) for r in rows]
        }
        return out

    def restore(self, dump: Mapping[str, Any]) -> int:
        entries = check_empty_dump(dump)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                have = self._db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]
                if have:
                    raise QuarantineError(f"{self._path} already holds {have} entries; restore into an empty one")
                for e in entries:
                    row = entry_row(e)
                    row[QUARANTINE_COLUMNS.index("counts")] = json.dumps(e.counts)
                    self._db.execute(
                        f"INSERT INTO quarantine ({','.join(QUARANTINE_COLUMNS)}) "
                        f"VALUES ({','.join('?' for _ in QUARANTINE_COLUMNS)})", row,
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return len(entries)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _entry(r: sqlite3.Row) -> QuarantineEntry:
    return QuarantineEntry(
        id=r["id"], doc_id=r["doc_id"], source_set=r["source_set"], source=r["source"], sha256=r["sha256"],
        reason=r["reason"], counts=json.loads(r["counts"]), quarantined_at=r["quarantined_at"],
        released_at=r["released_at"], released_by=r["released_by"], release_reason=r["release_reason"],
    )
