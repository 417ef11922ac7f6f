"""``vraagbaak catalog upgrade`` and ``vraagbaak catalog status``: the catalog named by ``catalog.url``.

A PostgreSQL catalog applies its Alembic migrations whenever a process opens it (serialised by an
advisory lock, so replicas starting together migrate once); ``upgrade`` does only that, e.g. as a
Job before a rollout. A SQLite catalog is migrated in place when opened. Exit codes: 0 done,
1 the catalog could not be opened or migrated, 2 bad configuration.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from serving.cli.common import ConfigOpt, boot

app = typer.Typer(help="The catalog: documents, source sets and the ingest journal.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@app.command("upgrade")
def upgrade_command(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Apply the catalog's schema migrations (idempotent) and print the schema version."""
    from ingest.catalog import CatalogError
    from ingest.catalog_factory import build_catalog

    settings = boot(config)
    try:
        catalog = build_catalog(settings)  # opening migrates
        version = catalog.schema_version()
        catalog.close()
    except CatalogError as err:
        typer.secho(f"catalog upgrade: {err}", fg="red", err=True)
        raise typer.Exit(1) from None
    backend = "postgresql" if catalog.location.startswith("postgresql://") else "sqlite"
    out = {"location": catalog.location, "backend": backend, "schema_version": version}
    typer.echo(json.dumps(out) if as_json else f"{out['location']}: {out['backend']} schema {out['schema_version']}")


@app.command("status")
def status_command(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Where the catalog is, its schema version, and how many documents are stored or unfinished."""
    from ingest.catalog import CatalogError
    from ingest.catalog_factory import build_catalog

    settings = boot(config)
    try:
        catalog = build_catalog(settings)
        out = {
            "location": catalog.location,
            "backend": "postgresql" if catalog.location.startswith("postgresql://") else "sqlite",
            "schema_version": catalog.schema_version(), "documents": len(catalog.all()),
            "source_sets": len(catalog.source_sets()), "unfinished": len(catalog.unfinished()),
        }
        catalog.close()
    except CatalogError as err:
        typer.secho(f"catalog status: {err}", fg="red", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(out))
        return
    for k, v in out.items():
        typer.echo(f"{k:>14}: {v}")
