"""The quarantine as a table of the PostgreSQL catalog (schema: ``ingest/catalog_migrations``, 0002).

Ingest workers add to it and the API (any replica) lists and releases from it, so a release made
through one process is seen by the next ingest anywhere. Same behaviour as ``ingest.quarantine``'s
SQLite store; the contract suite ``tests/contract/test_quarantine.py`` runs both.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from psycopg.types.json import Jsonb

from ingest.catalog import empty_dump
from ingest.catalog_pg import PgTables
from ingest.quarantine import QUARANTINE_COLUMNS, QuarantineError, _now, check_empty_dump, entry_row
from vraagbaak_core.types import QuarantineEntry

_ORDER = 'ORDER BY quarantined_at, source COLLATE "C", id'


def _entry(r: dict[str, Any]) -> QuarantineEntry:
    return QuarantineEntry(**{c: r[c] for c in QUARANTINE_COLUMNS} | {"counts": dict(r["counts"])})


class PostgresQuarantine(PgTables):
    """The quarantine table of the PostgreSQL catalog (the ``Quarantine`` port)."""

    _suffix = "quarantine"

    def add(self, *, doc_id: str, source_set: str, source: str, sha256: str, reason: str,
            counts: dict[str, int]) -> QuarantineEntry:
        rows = self._q(
            "INSERT INTO quarantine (id, doc_id, source_set, source, sha256, reason, counts, quarantined_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (doc_id, sha256) DO UPDATE SET "
            "reason = excluded.reason, counts = excluded.counts, source = excluded.source, "
            "quarantined_at = excluded.quarantined_at RETURNING *",
            (uuid.uuid4().hex[:12], doc_id, source_set, source, sha256, reason, Jsonb(counts), _now()),
        )
        return _entry(rows[0])

    def get(self, entry_id: str) -> QuarantineEntry | None:
        rows = self._q("SELECT * FROM quarantine WHERE id = %s", (entry_id,))
        return _entry(rows[0]) if rows else None

    def list(self, include_released: bool = False) -> list[QuarantineEntry]:
        where = "" if include_released else " WHERE released_at IS NULL"
        return [_entry(r) for r in self._q(f"SELECT * FROM quarantine{where} {_ORDER}")]

    def release(self, entry_id: str, *, by: str, reason: str) -> QuarantineEntry:
        if not reason.strip():
            raise QuarantineError("a release needs a reason")
        rows = self._q(
            "UPDATE quarantine SET released_at = %s, released_by = %s, release_reason = %s "
            "WHERE id = %s AND released_at IS NULL RETURNING *",
            (_now(), by, reason.strip(), entry_id),
        )
        if rows:
            return _entry(rows[0])
        entry = self.get(entry_id)
        if entry is None:
            raise QuarantineError(f"no quarantined document with id {entry_id}")
        raise QuarantineError(f"{entry_id} was already released on {entry.released_at} by {entry.released_by}")

    def released_sha256(self, doc_id: str) -> tuple[str, ...]:
        rows = self._q("SELECT sha256 FROM quarantine WHERE doc_id = %s AND released_at IS NOT NULL ORDER BY sha256",
                       (doc_id,))
        return tuple(str(r["sha256"]) for r in rows)

    def resolve(self, doc_id: str) -> None:
        self._q("DELETE FROM quarantine WHERE doc_id = %s AND released_at IS NULL", (doc_id,))

    def dump(self) -> dict[str, Any]:
        out = empty_dump("postgresql")
        rows = self._q('SELECT * FROM quarantine ORDER BY id COLLATE "C"')
        out["tables"]["quarantine"] = {
            "columns": list(QUARANTINE_COLUMNS), "rows": [entry_row(_entry(r)) for r in rows]
        }
        return out

    def restore(self, dump: Mapping[str, Any]) -> int:
        entries = check_empty_dump(dump)
        with self._lock:
            conn = self._conn_ok()
            with conn.transaction():
                conn.execute("LOCK TABLE quarantine IN EXCLUSIVE MODE")
                have = conn.execute("SELECT COUNT(*) AS n FROM quarantine").fetchone()
                if have and have["n"]:
                    raise QuarantineError(
                        f"{self.location} already holds {have['n']} entries; restore into an empty one"
                    )
                cols = ",".join(QUARANTINE_COLUMNS)
                marks = ",".join("%s" for _ in QUARANTINE_COLUMNS)
                for e in entries:
                    row = entry_row(e)
                    row[QUARANTINE_COLUMNS.index("counts")] = Jsonb(e.counts)
                    conn.execute(f"INSERT INTO quarantine ({cols}) VALUES ({marks})", row)  # type: ignore[arg-type]
        return len(entries)

