"""``vraagbaak ingest`` and ``vraagbaak documents list/delete``: the IT face of ``ingest``.

Mounted by ``serving.cli.main``: ``app.command("ingest")(ingest_command)`` and
``app.add_typer(documents_app, name="documents")``. Exit codes: 0 all well, 1 some files
failed (the summary says which and why), 2 bad configuration or arguments, 3 an erasure
that could not be verified.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from serving.cli.common import ConfigOpt, boot
from serving.it.ingest_audit import audit_erasure, audit_result, cli_actor, erasure_reason
from vraagbaak_core.audit_factory import build_audit_log

if TYPE_CHECKING:
    from ingest.pipeline import Ingestor
    from ingest.report import DocumentInfo, DocumentResult, IngestReport, ProgressUpdate
    from vraagbaak_core.settings import Settings

documents_app = typer.Typer(help="List and erase stored documents.", no_args_is_help=True)

GroupsOpt = Annotated[
    list[str] | None,
    typer.Option("--groups", "-g", help="access groups (repeat or comma-separate); needed unless --public"),
]


def _build(settings: Settings) -> Ingestor:
    from ingest.pipeline import Ingestor

    return Ingestor.from_settings(settings)


def _split_groups(groups: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for g in groups or []:
        out.extend(x.strip() for x in g.split(",") if x.strip())
    return tuple(dict.fromkeys(out))


def ingest_command(
    paths: Annotated[list[Path], typer.Argument(help="files and folders to ingest")],
    groups: GroupsOpt = None,
    classification: Annotated[
        str | None, typer.Option("--classification", help="openbaar, intern, vertrouwelijk or geheim")
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="world-readable: every user may see these")
    ] = False,
    source: Annotated[
        str | None,
        typer.Option("--source", help="name of the source set (default: the folder's absolute path); "
                     "documents are identified by source set + path inside it"),
    ] = None,
    rebind: Annotated[
        bool, typer.Option("--rebind", help="move the --source set to the folder given now, keeping ids")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="remove stored documents that are gone from the given folders")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="let --prune remove more than ingest.prune_max_fraction of a set")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="change nothing; list what --prune would remove")
    ] = False,
    partition: Annotated[
        str | None,
        typer.Option("--partition", metavar="I/N",
                     help="ingest only hash partition I of N (0-based, as Kubernetes' JOB_COMPLETION_INDEX; "
                     "auto/N reads the index from $JOB_COMPLETION_INDEX); N workers cover every document once. "
                     "Not with --prune: run --prune-only once after all partitions"),
    ] = None,
    prune_only: Annotated[
        bool, typer.Option("--prune-only", help="ingest nothing; remove stored documents gone from the given "
                           "folders (the step after a partitioned run; --dry-run and --force apply)")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Ingest files and folders: new and changed documents are embedded, unchanged ones skipped."""
    from ingest.errors import LabelError
    from ingest.manifest import Labels
    from ingest.partition import check_prune_options, parse_partition

    settings = boot(config)
    try:
        part = parse_partition(partition) if partition is not None else None
        check_prune_options(part, prune=prune, prune_only=prune_only, dry_run=dry_run)
        labels = Labels(groups=_split_groups(groups), classification=classification, public=public)
    except LabelError as err:
        typer.secho(f"ingest: {err}", fg="red", err=True)
        raise typer.Exit(2) from None
    ingestor = _build(settings)
    audit = build_audit_log(settings)
    user, nap = cli_actor()

    def record(result: DocumentResult) -> None:  # each document's record as it commits, not at the end
        audit_result(audit, ingestor, result, user_id=user, network_access_point=nap)

    options = {"prune": prune, "source": source, "rebind": rebind, "force": force, "dry_run": dry_run,
               "on_result": None if dry_run else record, "partition": part, "prune_only": prune_only}
    try:
        if json_out:
            report = ingestor.ingest_paths(paths, labels, **options)  # type: ignore[arg-type]
        else:
            report = _with_progress(ingestor, paths, labels, options)
    except LabelError as err:
        typer.secho(f"ingest: {err}", fg="red", err=True)
        raise typer.Exit(2) from None
    finally:
        ingestor.close()
        ingestor.store.close()
    if json_out:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_summary(report)
    if report.failed or report.prune_refused:
        raise typer.Exit(1)


def _with_progress(ingestor: Ingestor, paths: list[Path], labels: object, options: dict[str, Any]) -> IngestReport:
    from ingest.manifest import Labels

    assert isinstance(labels, Labels)
    console = Console(stderr=True)
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files · {task.fields[chunks]} chunks · {task.fields[rate]} chunks/s"),
        TextColumn("{task.fields[ocr]}{task.fields[page]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("ingest", total=None, chunks=0, rate="0.0", ocr="", page="")

        def update(u: ProgressUpdate) -> None:
            elapsed = max(1e-6, time.perf_counter() - t0)
            progress.update(
                task, total=u.files_total, completed=u.files_done, chunks=u.chunks_embedded,
                rate=f"{u.chunks_embedded / elapsed:.1f}",
                ocr=f"· OCR {u.ocr_pages} pages · {u.ocr_pages / elapsed:.2f} pages/s" if u.ocr_pages else "",
                page=f"· {u.current}: page {u.page} of {u.pages}" if u.pages > 1 and u.page else "",
            )

        return ingestor.ingest_paths(paths, labels, progress=update, **options)


def _print_summary(report: IngestReport) -> None:
    console = Console()
    table = Table(title="Ingest summary")
    table.add_column("status")
    table.add_column("documents", justify="right")
    table.add_column("chunks", justify="right")
    for status in ("added", "updated", "unchanged", "deleted", "failed", "quarantined"):
        rows = report.with_status(status)  # type: ignore[arg-type]
        table.add_row(status, str(len(rows)), str(sum(r.chunks for r in rows)))
    console.print(table)
    quarantined = report.with_status("quarantined")
    if quarantined:
        q = Table(title="Quarantined (patient data; see `vraagbaak quarantine list`)", show_lines=False)
        q.add_column("file", overflow="fold")
        q.add_column("reason", overflow="fold")
        for r in quarantined:
            q.add_row(r.source, r.reason)
        console.print(q)
    noted = [r for r in report.results if r.notes]
    if noted:
        n = Table(title="Notes (OCR)", show_lines=False)
        n.add_column("file", overflow="fold")
        n.add_column("note", overflow="fold")
        for r in noted:
            n.add_row(r.source, "; ".join(r.notes))
        console.print(n)
    if report.failed:
        failed = Table(title="Failed files", show_lines=False)
        failed.add_column("file", overflow="fold")
        failed.add_column("reason", overflow="fold")
        for r in report.failed:
            failed.add_row(r.source, r.reason)
        console.print(failed)
    for p in report.prune:
        if p.refused:
            console.print(f"[red]{p.source_set}: {p.refused}[/red]")
        elif p.dry_run:
            console.print(f"{p.source_set}: --prune would remove {len(p.remove)} of {p.documents} documents"
                          + "".join(f"\n  - {s}" for s in p.remove))
    if report.storage:
        console.print(f"pruned documents: {report.storage}")
    rate = report.chunks_embedded / report.seconds if report.seconds else 0.0
    console.print(f"{report.summary()} ({rate:.1f} chunks/s)")


@documents_app.command("list")
def documents_list(
    json_out: Annotated[bool, typer.Option("--json", help="print JSON (every field)")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="every column, full ids and titles")] = False,
    config: ConfigOpt = None,
) -> None:
    """Show stored documents: short id, title, labels and chunk count (fits 80 columns)."""
    settings = boot(config)
    ingestor = _build(settings)
    try:
        docs = ingestor.list_documents()
    finally:
        ingestor.close()
        ingestor.store.close()
    if json_out:
        typer.echo(json.dumps([d.to_dict() for d in docs], ensure_ascii=False, indent=2))
        return
    if not wide:
        for line in narrow_table(docs, shutil.get_terminal_size((80, 24)).columns):
            typer.echo(line)
        return
    table = Table(title=f"{len(docs)} documents")
    for col in ("id", "source", "title", "groups", "classification", "lang", "chunks", "ingested"):
        table.add_column(col, overflow="fold")
    for d in docs:
        table.add_row(
            d.doc_id, d.source, d.title, ", ".join(d.groups), d.classification, d.language, str(d.chunks),
            d.ingested_at,
        )
    Console(width=max(160, shutil.get_terminal_size((160, 24)).columns)).print(table)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def narrow_table(docs: list[DocumentInfo], columns: int = 80) -> list[str]:
    """One line per document within ``columns`` (at least 60): short id, title, labels, chunks."""
    columns = max(60, columns)
    id_w, chunks_w, labels_w = 8, 6, 24
    title_w = columns - id_w - chunks_w - labels_w - 3
    lines = [f"{'ID':<{id_w}} {'TITLE':<{title_w}} {'LABELS':<{labels_w}} {'CHUNKS':>{chunks_w}}"]
    for d in docs:
        labels = f"{d.classification}: {','.join(d.groups)}"
        lines.append(f"{d.doc_id[:id_w]:<{id_w}} {_cut(d.title or d.source, title_w):<{title_w}} "
                     f"{_cut(labels, labels_w):<{labels_w}} {d.chunks:>{chunks_w}}")
    lines.append(f"{len(docs)} documents (--wide or --json for every field)")
    return lines


@documents_app.command("delete")
def documents_delete(
    doc_id: Annotated[str, typer.Argument(help="document id (see `vraagbaak documents list`)")],
    config: ConfigOpt = None,
) -> None:
    """Erase every chunk and vector of a document, then verify that none is left."""
    from ingest.errors import DocumentBusy, DocumentNotFound, ErasureError

    settings = boot(config)
    ingestor = _build(settings)
    audit = build_audit_log(settings)
    user, nap = cli_actor()
    # erase by doc_id in the store whatever the state says (vectors may exist without a state row)
    classification = ingestor.classification_of(doc_id)
    try:
        erasure = ingestor.erase_document(doc_id)
    except (DocumentNotFound, DocumentBusy) as err:
        typer.secho(f"documents delete: {err}", fg="red", err=True)
        raise typer.Exit(1) from None
    except ErasureError as err:
        audit_erasure(audit, doc_id, classification, user_id=user, network_access_point=nap, ok=False,
                      reason=f"erasure not verified: {err}")
        typer.secho(f"documents delete: NOT VERIFIED: {err}", fg="red", err=True)
        raise typer.Exit(3) from None
    else:
        audit_erasure(audit, doc_id, erasure.classification or classification, user_id=user,
                      network_access_point=nap, ok=erasure.verified, reason=erasure_reason(erasure))
    finally:
        ingestor.close()
        ingestor.store.close()
    typer.echo(f"deleted {doc_id}: {erasure.removed} chunks removed; verified: {erasure.remaining} left in the "
               f"store; {erasure.storage}")
