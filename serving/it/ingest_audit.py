"""NEN 7513 records for IT's changes: every ingest (C), update (U) and erasure (D), successful or not.

Written where the actor is known (the documents API and the CLI); ``ingest`` itself stays free of
who-did-it concerns.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterable
from typing import Literal

from ingest.errors import DocumentNotFound
from ingest.pipeline import Erasure, Ingestor
from ingest.report import DocumentResult
from vraagbaak_core.audit import AuditLog

EventType = Literal["document.ingest", "document.update", "document.delete"]
_EVENTS: dict[str, EventType] = {
    "added": "document.ingest",
    "updated": "document.update",
    "deleted": "document.delete",
    "failed": "document.ingest",
}


def cli_actor() -> tuple[str, str]:
    """The operating-system user and host, for changes made on the command line."""
    return f"os:{getpass.getuser()}", f"local:{socket.gethostname()}"


def audit_results(
    audit: AuditLog, ingestor: Ingestor, results: Iterable[DocumentResult], *, user_id: str,
    network_access_point: str, role: str = "ingest",
) -> None:
    """One record per document that changed (or failed to); unchanged documents are not a change."""
    for r in results:
        audit_result(audit, ingestor, r, user_id=user_id, network_access_point=network_access_point, role=role)


def audit_result(
    audit: AuditLog, ingestor: Ingestor, r: DocumentResult, *, user_id: str, network_access_point: str,
    role: str = "ingest",
) -> None:
    """The record of one document's change; called as each document commits (``on_result``)."""
    if r.status == "quarantined" and r.doc_id is not None:  # a refusal: patient data, not indexed
        audit.document_change(
            "document.ingest", document_id=r.doc_id, classification=None, user_id=user_id, role=role,
            network_access_point=network_access_point, outcome="refused", reason=f"{r.source}: {r.reason}",
        )
        return
    event = _EVENTS.get(r.status)
    if event is None or r.doc_id is None:
        return
    try:
        classification: str | None = ingestor.get_document(r.doc_id).classification
    except DocumentNotFound:  # erased by --prune, or never stored because it failed
        classification = None
    audit.document_change(
        event, document_id=r.doc_id, classification=classification, user_id=user_id, role=role,
        network_access_point=network_access_point,
        outcome="failure" if r.status == "failed" else "success",
        reason=f"{r.source}: {r.reason}" if r.status == "failed" else r.source,
    )


def audit_erasure(
    audit: AuditLog, doc_id: str, classification: str | None, *, user_id: str, network_access_point: str,
    ok: bool, reason: str | None = None, role: str = "ingest",
) -> None:
    audit.document_change(
        "document.delete", document_id=doc_id, classification=classification, user_id=user_id, role=role,
        network_access_point=network_access_point, outcome="success" if ok else "failure", reason=reason,
    )


def erasure_reason(erasure: Erasure) -> str:
    reason = f"{erasure.removed} chunks removed, {erasure.remaining} left"
    if erasure.vacuumed:
        reason += f"; {erasure.storage}"
    if not erasure.had_state:
        reason += "; no state row (erased by doc_id in the store)"
    return reason
