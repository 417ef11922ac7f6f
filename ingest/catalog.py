"""The catalog factory and what both catalog adapters share.

``build_catalog(settings)`` is the only way ingest and serving get a :class:`~vraagbaak_core.ports.Catalog`:

- ``catalog.url`` empty: the SQLite file ``ingest.state_path`` (the embedded default; ``ingest.state``);
- ``sqlite:////abs/path.sqlite``: that SQLite file;
- ``postgresql://host/db``: PostgreSQL (``ingest.catalog_pg``), shared by every replica and worker;
  its Alembic migrations (``ingest/catalog_migrations``) are applied when it opens. The password
  comes from the URL in the environment (``VRAAGBAAK_CATALOG__URL``), ``catalog.password_file``
  (a mounted Secret) or libpq's own ``PGPASSWORD``/``PGPASSFILE``; never from a settings file.

The dump format (the exit bundle's ``catalog.json`` → ``databases.state``) is the same for both:
``{"format", "version", "backend", "tables": {name: {"columns": [...], "rows": [[...], ...]}}}``
with JSON values as JSON (lists, objects), not as text.
"""

from __future__ import annotations

import hashlib
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from vraagbaak_core.types import DocRecord

if TYPE_CHECKING:
    from vraagbaak_core.settings import Settings

DUMP_FORMAT = "vraagbaak-catalog"
DUMP_VERSION = 1
DOC_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(DocRecord))
SET_COLUMNS: tuple[str, ...] = ("name", "root", "created_at")
JSON_COLUMNS = frozenset({"groups", "chunk_ids", "pending_ids", "stale_ids", "control"})


class CatalogError(RuntimeError):
    """The catalog cannot be opened or refused an operation; the message says why."""


class CatalogUnavailable(CatalogError):
    """The catalog database cannot answer now (down, or a statement or lock wait timed out): try again
    later (the API answers 503 with Retry-After)."""


def claim_key(doc_id: str) -> int:
    """A stable signed 64-bit key for one document's writer claim (a PostgreSQL advisory lock)."""
    digest = hashlib.sha256(f"vraagbaak.catalog.doc:{doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def record_row(rec: DocRecord) -> list[Any]:
    """A document as one dump row, in :data:`DOC_COLUMNS` order."""
    out: list[Any] = []
    for name in DOC_COLUMNS:
        v = getattr(rec, name)
        out.append(list(v) if name == "groups" else v)
    return out


def record_from_row(columns: list[str], row: list[Any]) -> DocRecord:
    data = dict(zip(columns, row, strict=True))
    unknown = set(data) - set(DOC_COLUMNS)
    if unknown:
        raise CatalogError(f"catalog dump: unknown document columns {sorted(unknown)}")
    if "groups" in data:
        data["groups"] = tuple(data["groups"])
    return DocRecord(**data)


def empty_dump(backend: str) -> dict[str, Any]:
    return {"format": DUMP_FORMAT, "version": DUMP_VERSION, "backend": backend, "tables": {}}


def check_dump(dump: Any) -> None:
    if not isinstance(dump, dict) or dump.get("format") != DUMP_FORMAT or not isinstance(dump.get("tables"), dict):
        raise CatalogError(f"not a catalog dump (format {DUMP_FORMAT!r} expected)")
    if int(dump.get("version", 0)) > DUMP_VERSION:
        raise CatalogError(f"catalog dump version {dump.get('version')}; this Vraagbaak reads up to {DUMP_VERSION}")


def catalog_password(settings: Settings) -> str | None:
    """The password from ``catalog.password_file`` (a mounted Secret), or None (the URL's, or libpq's own)."""
    if settings.catalog.password_file is None:
        return None
    pf = settings.resolve(settings.catalog.password_file)
    try:
        return pf.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise CatalogError(f"catalog.password_file {pf}: {err.strerror or err}") from None
