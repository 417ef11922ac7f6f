"""The audit chain in PostgreSQL: every API replica appends to one chain.

Each append is one transaction: ``pg_advisory_xact_lock`` on a key derived from the table name
serialises the writers of this chain (the lock is released by the commit, also if the process dies),
the current head is read, the record is chained and sealed, and inserted with the next sequence number.
A unique constraint on ``prev_sha256`` makes a forked chain impossible even for a writer that skipped
the lock. The stored ``line`` is the exact JSON text that was sealed, so verification is byte-for-byte
the same as for the file sink.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import psycopg
from psycopg import sql

from vraagbaak_core.audit import AuditWriteError
from vraagbaak_core.pg_timeouts import PgTimeouts, timed_out
from vraagbaak_core.types import AuditEntry


def lock_key(table: str) -> int:
    """A stable signed 64-bit advisory-lock key for one chain table."""
    digest = hashlib.sha256(f"vraagbaak.audit:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresAuditSink:
    """One chain in one table; safe across threads (one connection, one lock) and processes."""

    def __init__(self, dsn: str, table: str = "audit_log", connect_timeout_s: int = 5,
                 timeouts: PgTimeouts | None = None) -> None:
        self._dsn = dsn
        self.timeouts = timeouts or PgTimeouts()
        self.table = table
        self.connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._key = lock_key(table)
        self._ready = False
        info = psycopg.conninfo.conninfo_to_dict(dsn)
        self._where = f"postgresql://{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"

    @property
    def location(self) -> str:
        return f"{self._where}#{self.table}"

    # --- connection ---

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self._dsn, connect_timeout=self.connect_timeout_s, autocommit=False,
                                         options=self.timeouts.options)
            self._ready = False
        if not self._ready:
            self._create(self._conn)
            self._ready = True
        return self._conn

    def _create(self, conn: psycopg.Connection[Any]) -> None:
        t = sql.Identifier(self.table)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._key,))  # CREATE IF NOT EXISTS races
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    " seq bigint PRIMARY KEY,"
                    " event_id text NOT NULL UNIQUE,"
                    " event_type text NOT NULL,"
                    " ts timestamptz NOT NULL,"
                    " user_id text,"
                    " prev_sha256 text NOT NULL UNIQUE,"
                    " sha256 text NOT NULL UNIQUE,"
                    " line text NOT NULL)"
                ).format(t)
            )
            conn.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (user_id, ts)").format(
                    sql.Identifier(f"{self.table}_user_ts"), t
                )
            )

    def _run(self, fn: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        """Run ``fn`` with a live connection; one reconnect if the old connection had died."""
        with self._lock:
            for attempt in (0, 1):
                try:
                    return fn(self._connection())
                except psycopg.OperationalError as err:
                    if timed_out(err):  # another session holds the chain's lock (or a statement ran too long)
                        if self._conn is not None and not self._conn.closed:
                            self._conn.rollback()
                        raise AuditWriteError(
                            5, f"audit database {self.location} busy ({self.timeouts.describe()}): {err}"
                        ) from err
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
                    if attempt == 1:
                        raise AuditWriteError(5, f"audit database {self.location} unavailable: {err}") from err
                except psycopg.Error as err:
                    if self._conn is not None and not self._conn.closed:
                        self._conn.rollback()
                    raise AuditWriteError(5, f"audit database {self.location} refused the record: {err}") from err
        raise AssertionError("unreachable")

    # --- the port ---

    def append(self, record: dict[str, Any], seal: Callable[[Mapping[str, Any]], str]) -> dict[str, Any]:
        t = sql.Identifier(self.table)

        def work(conn: psycopg.Connection[Any]) -> dict[str, Any]:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._key,))
                row = conn.execute(sql.SQL("SELECT seq, sha256 FROM {} ORDER BY seq DESC LIMIT 1").format(t)).fetchone()
                seq, prev = (int(row[0]) + 1, str(row[1])) if row else (1, "0" * 64)
                rec = dict(record)
                rec["prev_sha256"] = prev
                rec["sha256"] = seal(rec)
                line = json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (seq, event_id, event_type, ts, user_id, prev_sha256, sha256, line)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    ).format(t),
                    (seq, rec["event_id"], rec["event_type"], rec["timestamp"], rec.get("user_id"), prev,
                     rec["sha256"], line),
                )
            return rec

        rec: dict[str, Any] = self._run(work)
        record.update(prev_sha256=rec["prev_sha256"], sha256=rec["sha256"])
        return record

    def check_writable(self) -> None:
        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                ok = conn.execute(
                    "SELECT has_table_privilege(%s, 'INSERT') AND NOT pg_is_in_recovery()", (self.table,)
                ).fetchone()
            if not ok or not ok[0]:
                raise psycopg.errors.InsufficientPrivilege(f"cannot insert into {self.table}")

        self._run(work)

    def entries(self, upto: int | None = None) -> Iterator[AuditEntry]:
        # a connection of its own, so a long read does not hold up appends in this process
        t = sql.Identifier(self.table)
        try:
            conn = psycopg.connect(self._dsn, connect_timeout=self.connect_timeout_s, options=self.timeouts.options)
        except psycopg.OperationalError as err:
            raise AuditWriteError(5, f"audit database {self.location} unavailable: {err}") from err
        with conn:
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (self.table,)).fetchone()
            if not exists or not exists[0]:
                return
            with conn.cursor(name="vraagbaak_audit_read") as cur:
                cur.itersize = 5000  # rows per round trip (psycopg's default is 100)
                if upto is None:
                    cur.execute(sql.SQL("SELECT seq, line FROM {} ORDER BY seq").format(t))
                else:
                    cur.execute(sql.SQL("SELECT seq, line FROM {} WHERE seq <= %s ORDER BY seq").format(t), (upto,))
                for seq, line in cur:
                    yield AuditEntry(int(seq), str(line))

    def restore(self, lines: Iterable[str]) -> int:
        """Load a chain exactly as another sink stored it (an exit bundle's ``audit/audit.jsonl``).

        Only into an empty table, in one transaction under the chain's lock: each line is stored
        byte for byte with its own seal, in order, and must link to the one before it (``prev_sha256``
        = the previous ``sha256``), so a reordered or spliced chain is refused and nothing is kept.
        Returns the number of records; the next :meth:`append` continues the restored chain.
        """
        t = sql.Identifier(self.table)

        def work(conn: psycopg.Connection[Any]) -> int:
            n = 0
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._key,))
                if conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(t)).fetchone():
                    raise psycopg.errors.UniqueViolation(f"{self.table} is not empty; restore only into an empty chain")
                prev: str | None = None
                insert = sql.SQL(
                    "INSERT INTO {} (seq, event_id, event_type, ts, user_id, prev_sha256, sha256, line)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                ).format(t)
                for raw in lines:
                    line = raw.rstrip("\n")
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                        fields = (rec["event_id"], rec["event_type"], rec["timestamp"], rec.get("user_id"),
                                  str(rec["prev_sha256"]), str(rec["sha256"]))
                    except (ValueError, KeyError, TypeError) as err:
                        raise psycopg.errors.DataException(f"record {n + 1} is not an audit record: {err!r}") from err
                    if prev is not None and fields[4] != prev:
                        raise psycopg.errors.DataException(f"record {n + 1} does not link to record {n}")
                    n += 1
                    conn.execute(insert, (n, *fields, line))
                    prev = fields[5]
            return n

        count: int = self._run(work)
        return count

    def _checkpoint_table(self) -> sql.Identifier:
        return sql.Identifier(f"{self.table}_checkpoint")

    def load_checkpoint(self) -> str | None:
        """The access report's sealed checkpoint (``audit_checkpoint``), in a one-row table beside the chain."""
        def work(conn: psycopg.Connection[Any]) -> str | None:
            with conn.transaction():
                found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{self.table}_checkpoint",)).fetchone()
                if not found or not found[0]:
                    return None
                row = conn.execute(sql.SQL("SELECT body FROM {} WHERE id = 1").format(self._checkpoint_table())
                                   ).fetchone()
            return None if row is None else str(row[0])

        text: str | None = self._run(work)
        return text

    def save_checkpoint(self, text: str) -> None:
        t = self._checkpoint_table()

        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute(sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY CHECK (id = 1), body text NOT NULL)").format(t))
                conn.execute(sql.SQL("INSERT INTO {} (id, body) VALUES (1, %s)"
                                     " ON CONFLICT (id) DO UPDATE SET body = excluded.body").format(t), (text,))

        self._run(work)

    def mark(self) -> int:
        def work(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction():
                q = sql.SQL("SELECT coalesce(max(seq), 0) FROM {}").format(sql.Identifier(self.table))
                row = conn.execute(q).fetchone()
            return int(row[0]) if row else 0

        n: int = self._run(work)
        return n

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
