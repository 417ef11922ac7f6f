"""The quarantine factory: a PostgreSQL table next to the catalog when ``catalog.url`` is PostgreSQL,
else the SQLite file. In a module of its own so that the SQLite and PostgreSQL adapters never import each other."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.quarantine import QuarantineStore, quarantine_path

if TYPE_CHECKING:
    from vraagbaak_core.ports import Quarantine
    from vraagbaak_core.settings import Settings


def build_quarantine(settings: Settings) -> Quarantine:
    """The quarantine next to the catalog: a PostgreSQL table when ``catalog.url`` is PostgreSQL,
    else the SQLite file :func:`quarantine_path`."""
    url = settings.catalog.url.get_secret_value().strip() if settings.catalog.url is not None else ""
    if url.startswith(("postgresql://", "postgres://")):
        from ingest.catalog import catalog_password
        from ingest.quarantine_pg import PostgresQuarantine

        return PostgresQuarantine(url, password=catalog_password(settings),
                                  connect_timeout_s=settings.catalog.connect_timeout_s,
                                  timeouts=settings.catalog.timeouts())
    return QuarantineStore(quarantine_path(settings))
