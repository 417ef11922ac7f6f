"""What an ingest run did: per document, and the summary (added, updated, unchanged, deleted, failed)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from vraagbaak_core.types import DocControl

Status = Literal["added", "updated", "unchanged", "deleted", "failed", "quarantined"]
STATUSES: tuple[Status, ...] = ("added", "updated", "unchanged", "deleted", "failed", "quarantined")


@dataclass
class DocumentResult:
    source: str
    status: Status
    doc_id: str | None = None
    chunks: int = 0
    reason: str = ""
    title: str = ""
    notes: tuple[str, ...] = ()  # e.g. OCR pages read, failed, or skipped and why

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d


@dataclass
class PruneSummary:
    """What a prune of one source set removed, or would remove (dry run), or why it refused to."""

    source_set: str
    root: str
    documents: int
    remove: list[str]
    refused: str | None = None
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IngestReport:
    results: list[DocumentResult] = field(default_factory=list)
    prune: list[PruneSummary] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0
    chunks_embedded: int = 0
    ocr_pages: int = 0  # pages read with OCR in the parser workers
    ocr_seconds: float = 0.0
    partition: str | None = None  # "I/N" when only one hash partition was ingested
    outside_partition: int = 0  # files listed but left to the other partitions
    storage: str = ""  # after a prune erased documents: exactly what the store did to their bytes

    def with_status(self, status: Status) -> list[DocumentResult]:
        return [r for r in self.results if r.status == status]

    @property
    def added(self) -> list[DocumentResult]:
        return self.with_status("added")

    @property
    def updated(self) -> list[DocumentResult]:
        return self.with_status("updated")

    @property
    def unchanged(self) -> list[DocumentResult]:
        return self.with_status("unchanged")

    @property
    def deleted(self) -> list[DocumentResult]:
        return self.with_status("deleted")

    @property
    def failed(self) -> list[DocumentResult]:
        return self.with_status("failed")

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def prune_refused(self) -> list[PruneSummary]:
        return [p for p in self.prune if p.refused]

    def counts(self) -> dict[str, int]:
        return {s: len(self.with_status(s)) for s in STATUSES}

    def summary(self) -> str:
        c = self.counts()
        return (
            f"{c['added']} added, {c['updated']} updated, {c['unchanged']} unchanged, "
            f"{c['deleted']} deleted, {c['failed']} failed"
            + (f", {c['quarantined']} quarantined" if c["quarantined"] else "") + "; "
            f"{self.chunks_embedded} chunks embedded in {self.seconds:.1f} s"
            + (f"; {self.ocr_pages} page(s) read with OCR" if self.ocr_pages else "")
            + (f"; partition {self.partition}: {self.outside_partition} file(s) left to the other partitions"
               if self.partition is not None else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts(),
            "chunks_embedded": self.chunks_embedded,
            "seconds": round(self.seconds, 3),
            "embed_seconds": round(self.embed_seconds, 3),
            "ocr_pages": self.ocr_pages,
            "partition": self.partition,
            "outside_partition": self.outside_partition,
            "documents": [r.to_dict() for r in self.results],
            "failed": [{"source": r.source, "reason": r.reason} for r in self.failed],
            "quarantined": [{"source": r.source, "reason": r.reason} for r in self.with_status("quarantined")],
            "prune": [p.to_dict() for p in self.prune],
        }


@dataclass(frozen=True)
class ProgressUpdate:
    files_total: int
    files_done: int
    chunks_embedded: int
    current: str | None = None
    ocr_pages: int = 0
    page: int = 0  # the page of ``current`` its embedded chunks have reached (a long document streams)
    pages: int = 0  # the page count of ``current`` (0: not known, or no pages)


@dataclass(frozen=True)
class DocumentInfo:
    """A stored document as ``documents list`` / ``GET /api/documents`` show it."""

    doc_id: str
    source: str
    title: str
    format: str
    groups: tuple[str, ...]
    classification: str
    language: str
    chunks: int
    sha256: str
    size: int
    ingested_at: str
    status: str
    source_set: str = ""
    control: DocControl = field(default_factory=DocControl)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["groups"] = list(self.groups)
        d["control"] = self.control.to_dict()
        return d
