"""The ingest state file (SQLite): what was ingested, so reruns are incremental and crash-safe.

One row per document. The order of writes makes a SIGKILL at any point recoverable:

1. ``begin_write``: the row gets ``status='writing'`` and ``pending_ids`` = the new chunk ids
   (the committed ``chunk_ids`` of the previous version stay as they are);
2. the new points are upserted into the store (new ids never collide with other documents');
3. ``commit_write``: one transaction sets the new sha256, labels and ``chunk_ids``,
   ``status='done'`` and ``stale_ids`` = old ids that are not in the new set;
4. the stale points are deleted from the store, then ``clear_stale``.

Search never sees a gap: the old chunks are deleted only after the new ones are written.

A document's identity is its **source set** plus its path inside that set (see ``ingest.pipeline``).
The ``source_sets`` table binds each named set to the absolute root folder it was ingested from,
so two folders holding the same relative path never replace each other. Version 1 files (no source
sets) are migrated in place: each row keeps its ``doc_id`` and joins the source set named after its
recorded root, exactly the name a new ingest of that folder gets by default.
:meth:`IngestState.unfinished` lists rows left in ``writing``/``deleting`` or with stale ids,
and the Ingestor's ``recover()`` finishes or undoes them before a run.

This is the SQLite adapter of the :class:`~vraagbaak_core.ports.Catalog` port (``SqliteCatalog``; the
PostgreSQL one is ``ingest.catalog_pg``); callers get it from ``ingest.catalog.build_catalog``.
Several processes on one host may share the file: a writer claim is a row in ``writers`` naming the
owner (host, pid, the process's start time, and a token per catalog object); a claim whose process
is gone (or whose pid now belongs to a newer process) is dead and may be taken over. A claim made on
another host is never taken over here (its process cannot be checked from this host).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from ingest.catalog import (
    DOC_COLUMNS,
    JSON_COLUMNS,
    SET_COLUMNS,
    CatalogError,
    check_dump,
    empty_dump,
    record_from_row,
    record_row,
)
from vraagbaak_core.types import UPLOAD_SET, DocRecord, SourceSet

SCHEMA_VERSION = 2
__all__ = ["UPLOAD_SET", "DocRecord", "IngestState", "SourceSet", "SqliteCatalog", "StateError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id         TEXT PRIMARY KEY,
    source         TEXT NOT NULL,
    root           TEXT NOT NULL,
    sha256         TEXT NOT NULL DEFAULT '',
    labels_fp      TEXT NOT NULL DEFAULT '',
    title          TEXT NOT NULL DEFAULT '',
    format         TEXT NOT NULL DEFAULT '',
    groups         TEXT NOT NULL DEFAULT '[]',
    classification TEXT NOT NULL DEFAULT '',
    language       TEXT NOT NULL DEFAULT '',
    size           INTEGER NOT NULL DEFAULT 0,
    chunk_ids      TEXT NOT NULL DEFAULT '[]',
    pending_ids    TEXT,
    stale_ids      TEXT,
    status         TEXT NOT NULL CHECK (status IN ('writing', 'done', 'deleting')),
    ingested_at    TEXT NOT NULL DEFAULT '',
    source_set     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS documents_root ON documents (root);
"""
# Columns added after schema 1 was released (added in place when missing).
_ADDED_COLUMNS = {
    "control": "TEXT NOT NULL DEFAULT '{}'",  # document control (ingest.doccontrol), JSON
}

_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS source_sets (
    name       TEXT PRIMARY KEY,
    root       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS documents_set_source ON documents (source_set, source);
"""
# Writer claims (added without a version bump: older readers ignore the table).
_SCHEMA_WRITERS = """
CREATE TABLE IF NOT EXISTS writers (
    doc_id  TEXT PRIMARY KEY,
    host    TEXT NOT NULL,
    pid     INTEGER NOT NULL,
    started REAL NOT NULL,
    token   TEXT NOT NULL
);
"""


def _process_started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None when it is gone or a zombie."""
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(p.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def owner_alive(host: str, pid: int, started: float) -> bool:
    """Whether the process that made a claim still runs (a claim from another host counts as alive)."""
    if host != socket.gethostname():
        return True
    now = _process_started(pid)
    return now is not None and abs(now - started) < 0.01


def _row(r: sqlite3.Row) -> DocRecord:
    return DocRecord(
        doc_id=r["doc_id"],
        source=r["source"],
        root=r["root"],
        sha256=r["sha256"],
        labels_fp=r["labels_fp"],
        title=r["title"],
        format=r["format"],
        groups=tuple(json.loads(r["groups"])),
        classification=r["classification"],
        language=r["language"],
        size=r["size"],
        chunk_ids=json.loads(r["chunk_ids"]),
        pending_ids=json.loads(r["pending_ids"]) if r["pending_ids"] is not None else None,
        stale_ids=json.loads(r["stale_ids"]) if r["stale_ids"] is not None else None,
        status=r["status"],
        ingested_at=r["ingested_at"],
        source_set=r["source_set"],
        control=json.loads(r["control"] or "{}"),
    )


class StateError(CatalogError):
    pass


class SqliteCatalog:
    """SQLite in WAL mode with ``synchronous=FULL``; safe to share between threads of one process,
    and between processes on one host (writer claims in the ``writers`` table)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._depth = 0
        self._token = uuid.uuid4().hex
        self._pid = os.getpid()
        self._started = _process_started(self._pid) or 0.0
        self._host = socket.gethostname()
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        # erased rows (titles, sources) are overwritten with zeros, not left in free pages
        self._db.execute("PRAGMA secure_delete=ON")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, 1, SCHEMA_VERSION):
            raise StateError(
                f"{path}: state schema version {version}, this Vraagbaak reads up to {SCHEMA_VERSION}; "
                "use the Vraagbaak version that wrote it"
            )
        if version == 1:
            self._migrate_v1()
        else:
            self._db.executescript(_SCHEMA)
            self._db.executescript(_SCHEMA_V2)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(documents)")}
        for column, decl in _ADDED_COLUMNS.items():
            if column not in have:
                self._db.execute(f"ALTER TABLE documents ADD COLUMN {column} {decl}")
        self._db.executescript(_SCHEMA_WRITERS)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @property
    def location(self) -> str:
        return str(self.path)

    def _migrate_v1(self) -> None:
        """v1 → v2: every row keeps its doc_id and joins the source set named after its root."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("ALTER TABLE documents ADD COLUMN source_set TEXT NOT NULL DEFAULT ''")
                self._db.execute("UPDATE documents SET source_set = root")
                for stmt in filter(str.strip, _SCHEMA_V2.split(";")):  # executescript would commit
                    self._db.execute(stmt)
                self._db.execute(
                    "INSERT OR IGNORE INTO source_sets (name, root) "
                    "SELECT DISTINCT root, root FROM documents WHERE root != ?",
                    (UPLOAD_SET,),
                )
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several writes into one durable commit (one fsync); nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._db.execute("ROLLBACK")
                raise
            self._depth = 0
            self._db.execute("COMMIT")

    def get(self, doc_id: str) -> DocRecord | None:
        with self._lock:
            r = self._db.execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return _row(r) if r is not None else None

    def all(self) -> list[DocRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM documents ORDER BY source").fetchall()
        return [_row(r) for r in rows]

    def in_roots(self, roots: Iterable[str]) -> list[DocRecord]:
        roots = list(roots)
        if not roots:
            return []
        marks = ",".join("?" for _ in roots)
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM documents WHERE root IN ({marks})", roots).fetchall()
        return [_row(r) for r in rows]

    def in_source_set(self, name: str) -> list[DocRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM documents WHERE source_set = ? ORDER BY source", (name,)
            ).fetchall()
        return [_row(r) for r in rows]

    def find(self, source_set: str, source: str) -> DocRecord | None:
        """The document at ``source`` inside ``source_set`` (folder sets; uploads go by doc_id)."""
        with self._lock:
            r = self._db.execute(
                "SELECT * FROM documents WHERE source_set = ? AND source = ? ORDER BY doc_id LIMIT 1",
                (source_set, source),
            ).fetchone()
        return _row(r) if r is not None else None

    # --- source sets ---

    def source_set(self, name: str) -> SourceSet | None:
        with self._lock:
            r = self._db.execute("SELECT name, root FROM source_sets WHERE name = ?", (name,)).fetchone()
        return SourceSet(r["name"], r["root"]) if r is not None else None

    def source_set_at(self, root: str) -> SourceSet | None:
        with self._lock:
            r = self._db.execute("SELECT name, root FROM source_sets WHERE root = ?", (root,)).fetchone()
        return SourceSet(r["name"], r["root"]) if r is not None else None

    def source_sets(self) -> list[SourceSet]:
        with self._lock:
            rows = self._db.execute("SELECT name, root FROM source_sets ORDER BY name").fetchall()
        return [SourceSet(r["name"], r["root"]) for r in rows]

    def bind_source_set(self, name: str, root: str, created_at: str = "") -> None:
        """Record ``name`` → ``root`` (a new set, or a set moved to another folder)."""
        with self._lock:
            self._db.execute(
                """INSERT INTO source_sets (name, root, created_at) VALUES (?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET root = excluded.root""",
                (name, root, created_at),
            )
            self._db.execute("UPDATE documents SET root = ? WHERE source_set = ?", (root, name))

    def unfinished(self) -> list[DocRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM documents WHERE status != 'done' OR stale_ids IS NOT NULL"
            ).fetchall()
        return [_row(r) for r in rows]

    # --- the write protocol (callers group these in transaction() where they batch) ---

    def begin_write(
        self, doc_id: str, source: str, root: str, pending_ids: list[str], source_set: str = ""
    ) -> None:
        with self._lock:
            self._db.execute(
                """INSERT INTO documents (doc_id, source, root, pending_ids, status, source_set)
                   VALUES (?, ?, ?, ?, 'writing', ?)
                   ON CONFLICT (doc_id)
                   DO UPDATE SET pending_ids = excluded.pending_ids, status = 'writing'""",
                (doc_id, source, root, json.dumps(pending_ids), source_set or root),
            )

    def commit_write(self, rec: DocRecord, stale_ids: list[str]) -> None:
        with self._lock:
            self._db.execute(
                """UPDATE documents SET source=?, root=?, sha256=?, labels_fp=?, title=?, format=?, groups=?,
                   classification=?, language=?, size=?, chunk_ids=?, pending_ids=NULL, stale_ids=?,
                   status='done', ingested_at=?, source_set=?, control=? WHERE doc_id=?""",
                (
                    rec.source, rec.root, rec.sha256, rec.labels_fp, rec.title, rec.format,
                    json.dumps(list(rec.groups)), rec.classification, rec.language, rec.size,
                    json.dumps(rec.chunk_ids), json.dumps(stale_ids) if stale_ids else None,
                    rec.ingested_at, rec.source_set or rec.root, json.dumps(rec.control), rec.doc_id,
                ),
            )

    def set_lifecycle(self, doc_id: str, lifecycle: str, until: str | None = None) -> None:
        """Record where a document stands for answering (current, superseded, vervallen), and the day a
        newer version takes over from it."""
        with self._lock:
            row = self._db.execute("SELECT control FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
            if row is None:
                return
            control = json.loads(row["control"] or "{}")
            control["lifecycle"] = lifecycle
            control["until"] = until
            self._db.execute(
                "UPDATE documents SET control = ? WHERE doc_id = ?", (json.dumps(control), doc_id)
            )

    def clear_stale(self, doc_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE documents SET stale_ids = NULL WHERE doc_id = ?", (doc_id,))

    def abandon_write(self, doc_id: str) -> None:
        """Forget an unfinished write: back to the committed version, or no row if there was none."""
        with self._lock:
            self._db.execute("DELETE FROM documents WHERE doc_id = ? AND sha256 = ''", (doc_id,))
            self._db.execute(
                "UPDATE documents SET pending_ids = NULL, status = 'done' "
                "WHERE doc_id = ? AND status = 'writing'",
                (doc_id,),
            )

    def begin_delete(self, doc_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE documents SET status = 'deleting' WHERE doc_id = ?", (doc_id,))

    def remove(self, doc_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))

    # --- writer claims ---

    def try_claim(self, doc_id: str) -> bool:
        with self.transaction():
            r = self._db.execute("SELECT host, pid, started, token FROM writers WHERE doc_id = ?", (doc_id,)).fetchone()
            if r is not None:
                if r["token"] == self._token:
                    return True
                if owner_alive(r["host"], int(r["pid"]), float(r["started"])):
                    return False
            self._db.execute(
                "INSERT OR REPLACE INTO writers (doc_id, host, pid, started, token) VALUES (?, ?, ?, ?, ?)",
                (doc_id, self._host, self._pid, self._started, self._token),
            )
        return True

    def release(self, doc_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM writers WHERE doc_id = ? AND token = ?", (doc_id, self._token))

    def schema_version(self) -> str:
        with self._lock:
            return str(self._db.execute("PRAGMA user_version").fetchone()[0])

    # --- the exit bundle ---

    def dump(self) -> dict[str, Any]:
        out = empty_dump("sqlite")
        out["schema_version"] = SCHEMA_VERSION
        with self._lock:
            sets = self._db.execute("SELECT name, root, created_at FROM source_sets ORDER BY name").fetchall()
            docs = self._db.execute("SELECT * FROM documents ORDER BY doc_id").fetchall()
        out["tables"]["source_sets"] = {"columns": list(SET_COLUMNS), "rows": [list(r) for r in sets]}
        out["tables"]["documents"] = {"columns": list(DOC_COLUMNS), "rows": [record_row(_row(r)) for r in docs]}
        return out

    def restore(self, dump: Mapping[str, Any]) -> int:
        check_dump(dump)
        tables = dump["tables"]
        n = 0
        with self.transaction():
            have = self._db.execute(
                "SELECT (SELECT COUNT(*) FROM documents) + (SELECT COUNT(*) FROM source_sets)"
            ).fetchone()[0]
            if have:
                raise CatalogError(f"{self.path} already holds {have} rows; restore into an empty catalog")
            ss = tables.get("source_sets") or {"columns": list(SET_COLUMNS), "rows": []}
            for row in ss["rows"]:
                d = dict(zip(ss["columns"], row, strict=True))
                self._db.execute(
                    "INSERT INTO source_sets (name, root, created_at) VALUES (?, ?, ?)",
                    (d["name"], d["root"], d.get("created_at", "")),
                )
                n += 1
            docs = tables.get("documents") or {"columns": list(DOC_COLUMNS), "rows": []}
            for row in docs["rows"]:
                self._insert(record_from_row(docs["columns"], row))
                n += 1
        return n

    def _insert(self, rec: DocRecord) -> None:
        cols = list(DOC_COLUMNS)
        values = [
            json.dumps(list(v) if isinstance(v, tuple) else v) if c in JSON_COLUMNS and v is not None else v
            for c, v in zip(cols, record_row(rec), strict=True)
        ]
        marks = ",".join("?" for _ in cols)
        self._db.execute(f"INSERT INTO documents ({','.join(cols)}) VALUES ({marks})", values)

    def scrub(self) -> None:
        """After an erasure: fold the WAL into the file (where secure_delete zeroed the rows) and empty it."""
        if str(self.path) == ":memory:":
            return
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            try:
                self._db.execute("DELETE FROM writers WHERE token = ?", (self._token,))  # its claims end with it
            except sqlite3.Error:
                pass  # read-only or already closed: the claims die with the process anyway
            self._db.close()


IngestState = SqliteCatalog  # the name callers and tests used before the Catalog port
