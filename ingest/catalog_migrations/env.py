"""Alembic environment of the PostgreSQL catalog (``ingest.catalog_pg.upgrade`` runs it).

The caller hands over an open SQLAlchemy connection (``config.attributes["connection"]``) inside its
own transaction, already holding the migration advisory lock; there is no ``alembic.ini``.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the catalog migrations through ingest.catalog_pg.upgrade (or `vraagbaak catalog upgrade`)")
context.configure(connection=connection, target_metadata=None, version_table="catalog_alembic_version")
with context.begin_transaction():
    context.run_migrations()
