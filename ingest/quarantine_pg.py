"""The quarantine as a table of the PostgreSQL catalog (schema: ``ingest/catalog_migrations``, 0002).

Ingest workers add to it and the API (any replica) lists and releases from it, so a release made
through one process is seen by the next ingest anywhere. Same behaviour as ``ingest.quarantine``'s
SQLite store; the contract suite ``tests/contract/test_quarantine.py`` runs both.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest.catalog import CatalogError, empty_dump
from ingest.catalog_pg import upgrade
from ingest.quarantine import QUARANTINE_COLUMNS, QuarantineError, _now, check_empty_dump, entry_row
from vraagbaak_core.types import QuarantineEntry

_ORDER = 'ORDER BY quarantined_at, source COLLATE "C", id'


def _entry(r: dict[str, Any]) -> QuarantineEntry:
    return QuarantineEntry(**{c: r[c] for c in QUARANTINE_COLUMNS} | {"counts": dict(r["counts"])})


class PostgresQuarantine:
    """One autocommit connection guarded by a lock (reconnects once when it was lost)."""

    def __init__(self, dsn: str, *, password: str | None = None, connect_timeout_s: int = 5,
                 migrate: bool = True) -> None:
        self._dsn = dsn
        self._kw: dict[str, Any] = {"connect_timeout": connect_timeout_s, "autocommit": True, "row_factory": dict_row}
        if password is not None:
            self._kw["password"] = password
        info = psycopg.conninfo.conninfo_to_dict(dsn)
        self._where = f"postgresql://{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        from sqlalchemy.exc import SQLAlchemyError

        try:
            if migrate:
                upgrade(dsn, password, connect_timeout_s)
            self._conn = psycopg.connect(dsn, **self._kw)
        except (psycopg.Error, SQLAlchemyError) as err:
            msg = str(getattr(err, "orig", None) or err).splitlines()[0]
            raise CatalogError(f"catalog database {self._where} unavailable: {msg}") from None

    @property
    def location(self) -> str:
        return f"{self._where}#quarantine"

    def _q(self, query: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            for attempt in (0, 1):
                try:
                    if self._conn is None or self._conn.closed or self._conn.broken:
                        self._conn = psycopg.connect(self._dsn, **self._kw)
                    cur = self._conn.execute(query, args)  # type: ignore[arg-type]
                    return cur.fetchall() if cur.description is not None else []
                except psycopg.OperationalError as err:
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
                    if attempt == 1:
                        raise CatalogError(f"catalog database {self._where} unavailable: {err}") from err
        raise AssertionError("unreachable")

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
            conn = self._conn
            if conn is None or conn.closed or conn.broken:
                conn = self._conn = psycopg.connect(self._dsn, **self._kw)
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

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
