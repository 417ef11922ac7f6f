"""``vraagbaak quarantine list|release``: the privacy officer's view of what the patient-data guard
kept out of the index (issue 13). A release needs the privacy-officer role
(``ingest.patient_data.release_users``: the operating-system user as ``os:NAME``); it is recorded in the
audit log with the caller's identity and reason *before* it takes effect (no record, no release); a
refused release is audited too. The released content is indexed on the next ingest of its folder (or
re-upload).

Exit codes: 0 well, 1 no such entry or already released, 2 bad arguments.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from serving.cli.common import ConfigOpt, boot
from serving.it.ingest_audit import cli_actor
from vraagbaak_core.audit_factory import build_audit_log

PRIVACY_OFFICER = "privacy-officer"
app = typer.Typer(help="Documents kept out of the index because they hold patient data.", no_args_is_help=True)


@app.command("list")
def quarantine_list(
    all_entries: Annotated[bool, typer.Option("--all", help="released entries too")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Quarantined documents with the reason and the count per kind (never the values)."""
    from ingest.quarantine_factory import build_quarantine

    settings = boot(config)
    store = build_quarantine(settings)
    try:
        entries = store.list(include_released=all_entries)
    finally:
        store.close()
    if json_out:
        typer.echo(json.dumps([e.to_dict() for e in entries], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{len(entries)} quarantined documents")
    for col in ("id", "source", "found", "quarantined", "released"):
        table.add_column(col, overflow="fold")
    for e in entries:
        found = ", ".join(f"{k}: {n}" for k, n in e.counts.items())
        released = f"{e.released_at} by {e.released_by}: {e.release_reason}" if e.released else ""
        table.add_row(e.id, e.source, found, e.quarantined_at, released)
    Console().print(table)


@app.command("release")
def quarantine_release(
    entry_id: Annotated[str, typer.Argument(help="quarantine id (see `vraagbaak quarantine list`)")],
    reason: Annotated[str, typer.Option("--reason", help="why this document may be indexed (audited)")],
    config: ConfigOpt = None,
) -> None:
    """Release a document: its exact content is indexed on the next ingest, without the guard."""
    from ingest.quarantine import QuarantineError
    from ingest.quarantine_factory import build_quarantine

    if not reason.strip():
        typer.secho("quarantine release: --reason must not be empty", fg="red", err=True)
        raise typer.Exit(2)
    settings = boot(config)
    user, nap = cli_actor()
    audit = build_audit_log(settings)
    store = build_quarantine(settings)
    try:
        entry = store.get(entry_id)
        if entry is None:
            typer.secho(f"quarantine release: no quarantined document with id {entry_id}", fg="red", err=True)
            raise typer.Exit(1)
        what = f"quarantine {entry.id} release ({entry.source}): {reason.strip()}"
        if user not in settings.ingest.patient_data.release_users:
            audit.document_change("document.update", document_id=entry.doc_id, classification=None, user_id=user,
                                  role=None, network_access_point=nap, outcome="refused",
                                  reason=f"{what}; {user} does not hold the privacy-officer role")
            typer.secho(f"quarantine release: {user} does not hold the privacy-officer role "
                        "(ingest.patient_data.release_users)", fg="red", err=True)
            raise typer.Exit(1)
        # the record first: a release that cannot be audited does not happen (AuditWriteError stops here)
        audit.document_change("document.update", document_id=entry.doc_id, classification=None, user_id=user,
                              role=PRIVACY_OFFICER, network_access_point=nap, outcome="success", reason=what)
        try:
            entry = store.release(entry_id, by=user, reason=reason)
        except QuarantineError as err:
            audit.document_change("document.update", document_id=entry.doc_id, classification=None, user_id=user,
                                  role=PRIVACY_OFFICER, network_access_point=nap, outcome="failure",
                                  reason=f"{what}; not released: {err}")
            typer.secho(f"quarantine release: {err}", fg="red", err=True)
            raise typer.Exit(1) from None
    finally:
        store.close()
        audit.close()
    typer.echo(f"released {entry.id} ({entry.source}); it is indexed on the next ingest of its folder or upload")
