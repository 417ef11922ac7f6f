"""The ``vraagbaak`` command line: one entry point for staff, IT and auditors, assembled from one module per
command group. Every command takes ``--config PATH`` and installs the egress guard before any heavy import
(``serving.cli.common.boot``)."""

from __future__ import annotations

import typer

from serving.cli import (
    ask,
    audit,
    auth,
    bundle,
    catalog,
    doccontrol,
    feedback,
    ingest,
    models,
    quarantine,
    reindex,
    serve,
)
from serving.cli import (
    eval as evaluation,
)

app = typer.Typer(name="vraagbaak", help="Vraagbaak: answers from your own documents, on your own machines.",
                  no_args_is_help=True, add_completion=False)
# staff
app.command("ask")(ask.ask)
app.command("serve")(serve.serve)
# IT
app.command("ingest")(ingest.ingest_command)
app.add_typer(ingest.documents_app, name="documents")
ingest.documents_app.command("due")(doccontrol.documents_due)
app.add_typer(catalog.app, name="catalog")
app.add_typer(quarantine.app, name="quarantine")
app.command("reindex")(reindex.reindex_command)
app.add_typer(feedback.app, name="feedback")
app.add_typer(models.app, name="models")
app.add_typer(auth.app, name="auth")
app.add_typer(bundle.export_app, name="export")
app.add_typer(bundle.import_app, name="import")
app.add_typer(evaluation.app, name="eval")
# auditors
app.add_typer(audit.app, name="audit")


def main() -> None:
    from vraagbaak_core.errors import StoreLocked

    try:
        app()
    except StoreLocked as err:  # one process per embedded store: say what to do instead
        typer.secho(f"vraagbaak: {err}", fg="red", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
