"""The catalog in PostgreSQL: one catalog for every API replica and ingest worker (psycopg 3).

The schema is owned by the Alembic migrations in ``ingest/catalog_migrations`` (version table
``catalog_alembic_version``); :class:`PostgresCatalog` applies them when it opens, under a
transaction-level advisory lock so replicas starting together migrate once. ``vraagbaak catalog
upgrade`` applies them without starting anything else (e.g. a Kubernetes Job before a rollout).

Writer claims are session-level advisory locks (``pg_try_advisory_lock`` on a key per document):
the server releases them when the claiming session ends, also when its process is SIGKILLed, so
recovery in another process can tell "being written now" from "left half-done by a dead writer".
The claims of this object are re-taken if its connection had to be re-opened; one that another
process took in between is an error (this process must not go on writing that document).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest.catalog import (
    DOC_COLUMNS,
    JSON_COLUMNS,
    SET_COLUMNS,
    CatalogError,
    CatalogUnavailable,
    check_dump,
    claim_key,
    empty_dump,
    record_from_row,
    record_row,
)
from vraagbaak_core.pg_timeouts import PgTimeouts, timed_out
from vraagbaak_core.types import UPLOAD_SET, DocRecord, SourceSet

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("catalog_migrations")
VERSION_TABLE = "catalog_alembic_version"
_MIGRATE_KEY = claim_key("__migrations__")
T = TypeVar("T")
_BY_SOURCE = 'ORDER BY source COLLATE "C", doc_id'  # byte order, as SQLite sorts


def _rec(r: dict[str, Any]) -> DocRecord:
    return DocRecord(
        doc_id=r["doc_id"], source=r["source"], root=r["root"], sha256=r["sha256"], labels_fp=r["labels_fp"],
        title=r["title"], format=r["format"], groups=tuple(r["groups"]), classification=r["classification"],
        language=r["language"], size=int(r["size"]), chunk_ids=list(r["chunk_ids"]),
        pending_ids=list(r["pending_ids"]) if r["pending_ids"] is not None else None,
        stale_ids=list(r["stale_ids"]) if r["stale_ids"] is not None else None,
        status=r["status"], ingested_at=r["ingested_at"], source_set=r["source_set"], control=dict(r["control"]),
    )


def upgrade(dsn: str, password: str | None = None, connect_timeout_s: int = 5, revision: str = "head") -> str:
    """Apply the catalog's Alembic migrations up to ``revision`` (idempotent, serialised); the revision now."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    kw: dict[str, Any] = {"connect_timeout": connect_timeout_s}
    if password is not None:
        kw["password"] = password
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn, **kw), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_KEY})
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            rev = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
    finally:
        engine.dispose()
    return rev or ""


def head_revision() -> str:
    """The newest migration in ``ingest/catalog_migrations`` (what :func:`upgrade` brings a catalog to)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(cfg).get_current_head())


def _connect_kw(dsn: str, password: str | None, connect_timeout_s: int,
                timeouts: PgTimeouts | None = None) -> tuple[dict[str, Any], str]:
    """psycopg's keyword arguments for the catalog's connections (with the statement and lock timeouts),
    and where it is (no password)."""
    kw: dict[str, Any] = {"connect_timeout": connect_timeout_s, "autocommit": True, "row_factory": dict_row,
                          "options": (timeouts or PgTimeouts()).options}
    if password is not None:
        kw["password"] = password
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    return kw, f"postgresql://{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def _open(dsn: str, password: str | None, connect_timeout_s: int, migrate: bool, where: str,
          connect: Callable[[], object]) -> None:
    """Migrate (when asked) and connect; any database error becomes one clear CatalogError."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        if migrate:
            upgrade(dsn, password, connect_timeout_s)
        connect()
    except (psycopg.Error, SQLAlchemyError) as err:
        msg = str(getattr(err, "orig", None) or err).splitlines()[0]
        raise CatalogError(f"catalog database {where} unavailable: {msg}") from None


class PgTables:
    """Tables of the PostgreSQL catalog behind one autocommit connection guarded by a lock (it
    reconnects once when the connection was lost); the base of the quarantine and feedback adapters."""

    _suffix = ""

    def __init__(self, dsn: str, *, password: str | None = None, connect_timeout_s: int = 5,
                 migrate: bool = True, timeouts: PgTimeouts | None = None) -> None:
        self._dsn = dsn
        self._kw, self._where = _connect_kw(dsn, password, connect_timeout_s, timeouts)
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        _open(dsn, password, connect_timeout_s, migrate, self._where, self._conn_ok)

    @property
    def location(self) -> str:
        return f"{self._where}#{self._suffix}"

    def _conn_ok(self) -> psycopg.Connection[dict[str, Any]]:
        """The live connection (reconnecting when it was closed or broken); call with the lock held."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self._dsn, **self._kw)
        return self._conn

    def _q(self, query: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            for attempt in (0, 1):
                try:
                    cur = self._conn_ok().execute(query, args)  # type: ignore[arg-type]
                    return cur.fetchall() if cur.description is not None else []
                except psycopg.OperationalError as err:
                    if timed_out(err):  # a held lock or a slow statement: the connection is fine, say so now
                        raise CatalogUnavailable(f"catalog database {self._where} busy: {err}") from err
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
                    if attempt == 1:
                        raise CatalogUnavailable(f"catalog database {self._where} unavailable: {err}") from err
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class PostgresCatalog:
    """One connection (autocommit; :meth:`transaction` groups writes) guarded by a lock; thread-safe."""

    def __init__(
        self, dsn: str, *, password: str | None = None, connect_timeout_s: int = 5, migrate: bool = True,
        timeouts: PgTimeouts | None = None,
    ) -> None:
        self._dsn = dsn
        self._kw, self._where = _connect_kw(dsn, password, connect_timeout_s, timeouts)
        self._lock = threading.RLock()
        self._depth = 0
        self._claims: set[str] = set()
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        _open(dsn, password, connect_timeout_s, migrate, self._where, self._connect)

    @property
    def location(self) -> str:
        return self._where

    # --- connection ---

    def _connect(self) -> psycopg.Connection[dict[str, Any]]:
        conn: psycopg.Connection[dict[str, Any]] = psycopg.connect(self._dsn, **self._kw)
        lost = []
        for doc_id in sorted(self._claims):  # a new session holds none of the old one's locks
            row = conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (claim_key(doc_id),)).fetchone()
            if not (row and row["ok"]):
                lost.append(doc_id)
        self._conn = conn
        if lost:
            self._claims.difference_update(lost)
            raise CatalogError(
                f"catalog connection to {self._where} was re-opened and another process now writes {lost}"
            )
        return conn

    def _run(self, fn: Callable[[psycopg.Connection[dict[str, Any]]], T]) -> T:
        with self._lock:
            for attempt in (0, 1):
                conn = self._conn
                try:
                    if conn is None or conn.closed or conn.broken:
                        if self._depth:
                            raise CatalogError(f"catalog connection to {self._where} lost inside a transaction")
                        conn = self._connect()
                    return fn(conn)
                except psycopg.OperationalError as err:
                    if timed_out(err):  # a held lock or a slow statement: the connection is fine, say so now
                        raise CatalogUnavailable(f"catalog database {self._where} busy: {err}") from err
                    if self._depth or attempt == 1:
                        raise CatalogUnavailable(f"catalog database {self._where} unavailable: {err}") from err
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
            raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            conn = self._conn
            if conn is None or conn.closed or conn.broken:
                conn = self._run(lambda c: c)
            with conn.transaction():
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1

    def _one(self, query: str, args: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        return self._run(lambda c: c.execute(query, args).fetchone())  # type: ignore[arg-type]

    def _all(self, query: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return self._run(lambda c: c.execute(query, args).fetchall())  # type: ignore[arg-type]

    def _exec(self, query: str, args: tuple[Any, ...] = ()) -> None:
        self._run(lambda c: c.execute(query, args))  # type: ignore[arg-type]

    # --- reads ---

    def get(self, doc_id: str) -> DocRecord | None:
        r = self._one("SELECT * FROM documents WHERE doc_id = %s", (doc_id,))
        return _rec(r) if r is not None else None

    def all(self) -> list[DocRecord]:
        return [_rec(r) for r in self._all(f"SELECT * FROM documents {_BY_SOURCE}")]

    def in_roots(self, roots: Iterable[str]) -> list[DocRecord]:
        roots = list(roots)
        if not roots:
            return []
        return [_rec(r) for r in self._all(f"SELECT * FROM documents WHERE root = ANY(%s) {_BY_SOURCE}", (roots,))]

    def in_source_set(self, name: str) -> list[DocRecord]:
        return [_rec(r) for r in self._all(f"SELECT * FROM documents WHERE source_set = %s {_BY_SOURCE}", (name,))]

    def find(self, source_set: str, source: str) -> DocRecord | None:
        r = self._one(
            "SELECT * FROM documents WHERE source_set = %s AND source = %s ORDER BY doc_id LIMIT 1",
            (source_set, source),
        )
        return _rec(r) if r is not None else None

    def unfinished(self) -> list[DocRecord]:
        rows = self._all(f"SELECT * FROM documents WHERE status <> 'done' OR stale_ids IS NOT NULL {_BY_SOURCE}")
        return [_rec(r) for r in rows]

    # --- source sets ---

    def source_set(self, name: str) -> SourceSet | None:
        r = self._one("SELECT name, root FROM source_sets WHERE name = %s", (name,))
        return SourceSet(r["name"], r["root"]) if r is not None else None

    def source_set_at(self, root: str) -> SourceSet | None:
        r = self._one("SELECT name, root FROM source_sets WHERE root = %s", (root,))
        return SourceSet(r["name"], r["root"]) if r is not None else None

    def source_sets(self) -> list[SourceSet]:
        return [SourceSet(r["name"], r["root"])
                for r in self._all('SELECT name, root FROM source_sets ORDER BY name COLLATE "C"')]

    def bind_source_set(self, name: str, root: str, created_at: str = "") -> None:
        with self.transaction():
            self._exec(
                "INSERT INTO source_sets (name, root, created_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET root = excluded.root",
                (name, root, created_at),
            )
            self._exec("UPDATE documents SET root = %s WHERE source_set = %s", (root, name))

    # --- the write protocol ---

    def begin_write(
        self, doc_id: str, source: str, root: str, pending_ids: list[str], source_set: str = ""
    ) -> None:
        self._exec(
            "INSERT INTO documents (doc_id, source, root, pending_ids, status, source_set) "
            "VALUES (%s, %s, %s, %s, 'writing', %s) ON CONFLICT (doc_id) "
            "DO UPDATE SET pending_ids = excluded.pending_ids, status = 'writing'",
            (doc_id, source, root, Jsonb(pending_ids), source_set or root),
        )

    def commit_write(self, rec: DocRecord, stale_ids: list[str]) -> None:
        self._exec(
            "UPDATE documents SET source=%s, root=%s, sha256=%s, labels_fp=%s, title=%s, format=%s, groups=%s, "
            "classification=%s, language=%s, size=%s, chunk_ids=%s, pending_ids=NULL, stale_ids=%s, "
            "status='done', ingested_at=%s, source_set=%s, control=%s WHERE doc_id=%s",
            (
                rec.source, rec.root, rec.sha256, rec.labels_fp, rec.title, rec.format, Jsonb(list(rec.groups)),
                rec.classification, rec.language, rec.size, Jsonb(rec.chunk_ids),
                Jsonb(stale_ids) if stale_ids else None, rec.ingested_at, rec.source_set or rec.root,
                Jsonb(rec.control), rec.doc_id,
            ),
        )

    def set_lifecycle(self, doc_id: str, lifecycle: str, until: str | None = None) -> None:
        self._exec(
            "UPDATE documents SET control = control || jsonb_build_object('lifecycle', %s::text, 'until', %s::text)"
            " WHERE doc_id = %s",
            (lifecycle, until, doc_id),
        )

    def clear_stale(self, doc_id: str) -> None:
        self._exec("UPDATE documents SET stale_ids = NULL WHERE doc_id = %s", (doc_id,))

    def abandon_write(self, doc_id: str) -> None:
        with self.transaction():
            self._exec("DELETE FROM documents WHERE doc_id = %s AND sha256 = ''", (doc_id,))
            self._exec(
                "UPDATE documents SET pending_ids = NULL, status = 'done' WHERE doc_id = %s AND status = 'writing'",
                (doc_id,),
            )

    def begin_delete(self, doc_id: str) -> None:
        self._exec("UPDATE documents SET status = 'deleting' WHERE doc_id = %s", (doc_id,))

    def remove(self, doc_id: str) -> None:
        self._exec("DELETE FROM documents WHERE doc_id = %s", (doc_id,))

    # --- writer claims ---

    def try_claim(self, doc_id: str) -> bool:
        with self._lock:
            if doc_id in self._claims:  # advisory locks stack per session: take each once
                return True
            r = self._one("SELECT pg_try_advisory_lock(%s) AS ok", (claim_key(doc_id),))
            if r is None or not r["ok"]:
                return False
            self._claims.add(doc_id)
            return True

    def release(self, doc_id: str) -> None:
        with self._lock:
            if doc_id not in self._claims:
                return
            self._claims.discard(doc_id)
            conn = self._conn
            if conn is not None and not conn.closed and not conn.broken:
                conn.execute("SELECT pg_advisory_unlock(%s)", (claim_key(doc_id),))

    # --- maintenance ---

    def scrub(self) -> None:
        """VACUUM the documents table after an erasure, so dead rows' space is reclaimed and soon reused.

        PostgreSQL has no secure delete: until that space is overwritten, erased titles and sources may
        remain readable in the table files, the WAL and backups (encrypt the volume; see the runbooks).
        """
        with self._lock:
            if self._depth:
                return
            self._exec("VACUUM documents")

    def schema_version(self) -> str:
        row = self._one(f"SELECT version_num FROM {VERSION_TABLE}")
        return str(row["version_num"]) if row else ""

    def dump(self) -> dict[str, Any]:
        out = empty_dump("postgresql")
        out["schema_version"] = self.schema_version()
        sets = self._all('SELECT name, root, created_at FROM source_sets ORDER BY name COLLATE "C"')
        docs = self._all('SELECT * FROM documents ORDER BY doc_id COLLATE "C"')
        out["tables"]["source_sets"] = {
            "columns": list(SET_COLUMNS), "rows": [[r[c] for c in SET_COLUMNS] for r in sets]
        }
        out["tables"]["documents"] = {"columns": list(DOC_COLUMNS), "rows": [record_row(_rec(r)) for r in docs]}
        return out

    def restore(self, dump: Mapping[str, Any]) -> int:
        check_dump(dump)
        tables = dump["tables"]
        n = 0
        with self.transaction():
            self._exec("LOCK TABLE documents, source_sets IN EXCLUSIVE MODE")
            r = self._one("SELECT (SELECT COUNT(*) FROM documents) + (SELECT COUNT(*) FROM source_sets) AS n")
            have = int(r["n"]) if r else 0
            if have:
                raise CatalogError(f"{self._where} already holds {have} rows; restore into an empty catalog")
            ss = tables.get("source_sets") or {"columns": list(SET_COLUMNS), "rows": []}
            for row in ss["rows"]:
                d = dict(zip(ss["columns"], row, strict=True))
                self._exec(
                    "INSERT INTO source_sets (name, root, created_at) VALUES (%s, %s, %s)",
                    (d["name"], d["root"], d.get("created_at", "")),
                )
                n += 1
            docs = tables.get("documents") or {"columns": list(DOC_COLUMNS), "rows": []}
            cols = list(DOC_COLUMNS)
            sql = f"INSERT INTO documents ({','.join(cols)}) VALUES ({','.join('%s' for _ in cols)})"
            for raw in docs["rows"]:
                rec = record_from_row(docs["columns"], raw)
                values = [
                    Jsonb(v) if c in JSON_COLUMNS and v is not None else v
                    for c, v in zip(cols, record_row(rec), strict=True)
                ]
                self._exec(sql, tuple(values))
                n += 1
        return n

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                if self._claims and not conn.closed and not conn.broken:
                    try:  # now, not when the server notices the session ended
                        conn.execute("SELECT pg_advisory_unlock_all()")
                    except psycopg.Error:
                        pass  # the session ends below; its claims go with it
                conn.close()
            self._claims.clear()


__all__ = ["UPLOAD_SET", "PostgresCatalog", "upgrade"]
