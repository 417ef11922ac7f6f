"""The catalog factory: ``build_catalog(settings)`` is the only way ingest and serving get a
:class:`~vraagbaak_core.ports.Catalog` (see ``ingest.catalog`` for what the URL forms mean).

In a module of its own so that the shared base (``ingest.catalog``) and the adapters never import each other."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ingest.catalog import catalog_password

if TYPE_CHECKING:
    from vraagbaak_core.ports import Catalog
    from vraagbaak_core.settings import Settings


def build_catalog(settings: Settings) -> Catalog:
    """The catalog the settings name (see the module docstring)."""
    url = settings.catalog.url.get_secret_value().strip() if settings.catalog.url is not None else ""
    if not url:
        from ingest.state import SqliteCatalog

        return SqliteCatalog(settings.resolve(settings.ingest.state_path))
    if url.startswith("sqlite:///"):
        from ingest.state import SqliteCatalog

        return SqliteCatalog(settings.resolve(Path(url.removeprefix("sqlite://"))))
    from ingest.catalog_pg import PostgresCatalog

    return PostgresCatalog(
        url, password=catalog_password(settings), connect_timeout_s=settings.catalog.connect_timeout_s,
        timeouts=settings.catalog.timeouts(),
    )
