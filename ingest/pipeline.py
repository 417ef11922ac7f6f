"""The Ingestor: files (or uploaded bytes) to labelled chunks with vectors in the store.

Identity, stable across runs and machines:

- ``doc_id`` = uuid5(VRAAGBAAK_NS, "doc:" + source), where ``source`` is the file's path relative
  to the ingest root in POSIX form (``beleid/handhygiene.pdf``), or ``uploads/<name>`` for an
  upload. The same relative path is the same document: re-ingesting a changed file replaces it,
  and moving the whole root elsewhere changes nothing.
- point id = ``chunk_id`` = uuid5(VRAAGBAAK_NS, "chunk:{doc_id}:{index}:{sha256(text)}"): an
  unchanged chunk keeps its id, a changed one gets a new id.

Flow: files are parsed and chunked in worker processes (``ingest.worker``) while the main
process embeds earlier documents in batches and writes them to the store in batches. The state
file (``ingest.state``) makes every step restartable; see there for the write order.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath

from ingest.chunking import ChunkDraft, Chunker
from ingest.errors import DocumentNotFound, ErasureError, LabelError
from ingest.loaders.limits import LoaderLimits
from ingest.manifest import MANIFEST_NAME, DocumentLabels, Labels, Manifest, load_manifest, resolve_labels
from ingest.report import DocumentInfo, DocumentResult, IngestReport, ProgressUpdate, Status
from ingest.state import DocRecord, IngestState
from ingest.worker import ParseResult, ParserPool, ParseTask, WorkerConfig
from vraagbaak_core.ports import Embedder, SparseEncoder, VectorStore
from vraagbaak_core.settings import Settings
from vraagbaak_core.types import Chunk, ParsedDocument, StoredPoint

log = logging.getLogger(__name__)

VRAAGBAAK_NS = uuid.UUID("3f0c6f0e-6a1b-5c1e-9a57-7672616167ba")
UPLOAD_ROOT = "uploads"

ProgressCallback = Callable[[ProgressUpdate], None]


def doc_id_for(source: str) -> str:
    return str(uuid.uuid5(VRAAGBAAK_NS, "doc:" + source))


def chunk_id_for(doc_id: str, index: int, text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return str(uuid.uuid5(VRAAGBAAK_NS, f"chunk:{doc_id}:{index}:{digest}"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class _Item:
    key: int
    source: str
    root: str
    name: str
    doc_id: str
    labels: DocumentLabels
    path: str | None = None
    data: bytes | None = None
    known: DocRecord | None = None


@dataclass
class _DocWrite:
    item: _Item
    result: ParseResult
    chunks: list[Chunk]
    remaining: int
    begun: bool = False


@dataclass
class _Run:
    items: dict[int, _Item]
    report: IngestReport
    progress: ProgressCallback | None
    files_done: int = 0
    queue: deque[tuple[_DocWrite, Chunk]] = field(default_factory=deque)

    def done(self, result: DocumentResult) -> None:
        self.report.results.append(result)
        self.files_done += 1
        if self.progress is not None:
            self.progress(
                ProgressUpdate(len(self.items), self.files_done, self.report.chunks_embedded, result.source)
            )


class Ingestor:
    """Ingest, update, list and erase documents. Thread-safe: one operation at a time."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        sparse: SparseEncoder | None,
        store: VectorStore,
        state: IngestState,
        embed_batch: int = 256,
        store_batch: int = 256,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.sparse = sparse
        self.store = store
        self.state = state
        self.embed_batch = embed_batch
        self.store_batch = store_batch
        self.max_bytes = int(settings.ingest.max_file_mb * 1024 * 1024)
        self._lock = threading.RLock()
        self._pool: ParserPool | None = None
        # Test hook: called with a checkpoint name at each step of the write protocol.
        self.on_checkpoint: Callable[[str], None] | None = None
        model_dir = getattr(embedder, "model_dir", None)
        self._tokenizer_dir: str | None = None
        if isinstance(model_dir, Path) and (model_dir / "tokenizer.json").is_file():
            self._tokenizer_dir = str(model_dir)
        self._main_chunker: Chunker | None = None
        store.ensure_collection(embedder.dimension)
        self.recover()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        embedder: Embedder | None = None,
        store: VectorStore | None = None,
    ) -> Ingestor:
        from retrieval.analysis import encoder_from_settings
        from retrieval.embedders import SentenceTransformerEmbedder
        from retrieval.stores import build_store
        from vraagbaak_core.settings import PROJECT_ROOT

        embedder = embedder or SentenceTransformerEmbedder.from_settings(settings.embedder, PROJECT_ROOT)
        store = store or build_store(settings)
        sparse = encoder_from_settings(settings.retrieval.sparse)
        state = IngestState(settings.resolve(settings.ingest.state_path))
        batch = max(256, settings.embedder.batch_size)
        return cls(settings, embedder, sparse, store, state, embed_batch=batch)

    # ------------------------------------------------------------------ public API

    def ingest_paths(
        self,
        paths: Sequence[Path | str],
        labels: Labels,
        prune: bool = False,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Ingest files and folders; ``prune`` removes documents gone from the given folders."""
        with self._lock:
            t0 = time.perf_counter()
            self.recover()
            report = IngestReport()
            items: list[_Item] = []
            prune_roots: list[str] = []
            seen: set[str] = set()
            for raw in paths:
                path = Path(raw)
                if not path.exists():
                    report.results.append(DocumentResult(str(raw), "failed", reason="no such file or folder"))
                    continue
                if path.is_dir():
                    root = path.resolve()
                    prune_roots.append(str(root))
                    files = _discover(root)
                else:
                    root = path.resolve().parent
                    files = [path.resolve()]
                try:
                    manifest = load_manifest(root)
                except LabelError as err:
                    for f in files:
                        report.results.append(DocumentResult(_rel(f, root), "failed", reason=str(err)))
                    continue
                for f in files:
                    source = _rel(f, root)
                    doc_id = doc_id_for(source)
                    if doc_id in seen:  # the same relative path under two roots in one run
                        report.results.append(DocumentResult(
                            source, "failed", doc_id,
                            reason=f"same relative path as another file in this run ({f}); ingest the roots "
                            "separately or rename one",
                        ))
                        continue
                    seen.add(doc_id)
                    item = self._item(len(items), source, str(root), f.name, doc_id, labels, manifest, report)
                    if item is None:
                        continue
                    try:
                        size = f.stat().st_size
                    except OSError as err:
                        reason = f"cannot read: {err.strerror or err}"
                        report.results.append(DocumentResult(source, "failed", doc_id, reason=reason))
                        continue
                    if size > self.max_bytes:
                        report.results.append(DocumentResult(
                            source, "failed", doc_id,
                            reason=f"file too large: {size / 2**20:.1f} MB "
                            f"(limit {self.settings.ingest.max_file_mb:g} MB, ingest.max_file_mb)",
                        ))
                        continue
                    item.path = str(f)
                    items.append(item)
            self._run(items, report, progress)
            if prune:
                for rec in self.state.in_roots(prune_roots):
                    if rec.doc_id not in seen:
                        n = self._erase(rec.doc_id)
                        report.results.append(
                            DocumentResult(rec.source, "deleted", rec.doc_id, n, title=rec.title)
                        )
            report.seconds = time.perf_counter() - t0
            return report

    def ingest_bytes(self, data: bytes, filename: str, labels: Labels) -> DocumentResult:
        """Ingest one uploaded file (bytes only; the name is used for the source and as a hint)."""
        name = PurePath(filename.replace("\\", "/")).name.strip()
        if not name or name in (".", ".."):
            raise LabelError("an upload needs a file name")
        with self._lock:
            self.recover()
            report = IngestReport()
            source = f"{UPLOAD_ROOT}/{name}"
            doc_id = doc_id_for(source)
            if len(data) > self.max_bytes:
                return DocumentResult(
                    source, "failed", doc_id,
                    reason=f"file too large: {len(data) / 2**20:.1f} MB "
                    f"(limit {self.settings.ingest.max_file_mb:g} MB, ingest.max_file_mb)",
                )
            item = self._item(0, source, UPLOAD_ROOT, name, doc_id, labels, None, report)
            if item is None:
                return report.results[0]
            item.data = data
            self._run([item], report, None)
            return report.results[0]

    def delete_document(self, doc_id: str) -> int:
        """Remove every chunk and vector of a document, verify the store holds none; chunks removed."""
        with self._lock:
            return self._erase(doc_id)

    def list_documents(self) -> list[DocumentInfo]:
        return [_info(r) for r in self.state.all() if r.committed]

    def get_document(self, doc_id: str) -> DocumentInfo:
        rec = self.state.get(doc_id)
        if rec is None or not rec.committed:
            raise DocumentNotFound(f"no document with id {doc_id}")
        return _info(rec)

    def recover(self) -> int:
        """Finish or undo what a killed run left half-done; the number of documents repaired."""
        with self._lock:
            unfinished = self.state.unfinished()
            for rec in unfinished:
                if rec.status == "deleting":
                    self._erase(rec.doc_id)
                    continue
                if rec.status == "writing":
                    keep = set(rec.chunk_ids)
                    orphans = [i for i in self.store.point_ids(rec.doc_id) if i not in keep]
                    self.store.delete_points(orphans)
                    self.state.abandon_write(rec.doc_id)
                if rec.stale_ids:
                    self.store.delete_points(rec.stale_ids)
                    self.state.clear_stale(rec.doc_id)
            if unfinished:
                log.info("recovered %d half-written documents", len(unfinished))
            return len(unfinished)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    # ------------------------------------------------------------------ internals

    def _checkpoint(self, name: str) -> None:
        if self.on_checkpoint is not None:
            self.on_checkpoint(name)

    def _item(
        self, key: int, source: str, root: str, name: str, doc_id: str, labels: Labels,
        manifest: Manifest | None, report: IngestReport,
    ) -> _Item | None:
        try:
            resolved = resolve_labels(source, labels, manifest, self.settings.ingest.default_classification)
        except LabelError as err:
            report.results.append(DocumentResult(source, "failed", doc_id, reason=str(err)))
            return None
        return _Item(key, source, root, name, doc_id, resolved, known=self.state.get(doc_id))

    def _pool_get(self) -> ParserPool:
        if self._pool is None:
            ing = self.settings.ingest
            config = WorkerConfig(
                limits=LoaderLimits(max_pages=ing.max_pages),
                memory_mb=ing.worker_memory_mb,
                timeout_s=ing.worker_timeout_s,
                max_bytes=self.max_bytes,
                tokenizer_dir=self._tokenizer_dir,
                max_tokens=self.embedder.max_tokens,
                chunk_tokens=ing.chunk_tokens,
                chunk_overlap=ing.chunk_overlap,
                audit_path=str(self.settings.resolve(self.settings.audit.path)),
                audit_source_id=self.settings.audit.source_id,
            )
            self._pool = ParserPool(config, workers=ing.workers, max_ready=64)
        return self._pool

    def _unchanged_sha(self, item: _Item) -> str | None:
        """The committed sha256 when labels match and the store holds exactly its chunks."""
        rec = item.known
        if rec is None or rec.status != "done" or not rec.committed:
            return None
        if rec.labels_fp != item.labels.fingerprint():
            return None
        if self.store.count(item.doc_id) != len(rec.chunk_ids):
            return None
        return rec.sha256

    def _run(self, items: list[_Item], report: IngestReport, progress: ProgressCallback | None) -> None:
        run = _Run({i.key: i for i in items}, report, progress)
        if not items:
            return
        pool = self._pool_get()
        for item in items:
            pool.submit(ParseTask(item.key, item.name, item.path, item.data, self._unchanged_sha(item)))
        outstanding = len(items)
        while outstanding:
            pending = len(run.queue)
            res = pool.get(timeout=0.0 if pending >= self.embed_batch else (0.02 if pending else 1.0))
            if res is None:
                if pending:
                    self._flush(run, self.embed_batch)
                continue
            outstanding -= 1
            self._handle(run, res)
            while len(run.queue) >= self.embed_batch:
                self._flush(run, self.embed_batch)
        while run.queue:
            self._flush(run, self.embed_batch)

    def _handle(self, run: _Run, res: ParseResult) -> None:
        item = run.items[res.key]
        if res.status == "failed":
            run.done(DocumentResult(item.source, "failed", item.doc_id, reason=res.reason))
            return
        if res.status == "unchanged":
            n = len(item.known.chunk_ids) if item.known else 0
            title = item.known.title if item.known else ""
            run.done(DocumentResult(item.source, "unchanged", item.doc_id, n, title=title))
            return
        drafts = res.drafts
        if drafts is None:
            drafts = self._chunk_in_main(res)
        if not drafts:
            run.done(DocumentResult(item.source, "failed", item.doc_id, reason="no text to index"))
            return
        now = _now()
        chunks = [
            Chunk(
                chunk_id=chunk_id_for(item.doc_id, d.index, d.text), doc_id=item.doc_id, index=d.index,
                text=d.text, title=res.title, source=item.source, page=d.page, section=d.section,
                groups=item.labels.groups, classification=item.labels.classification, language=res.language,
                doc_sha256=res.sha256, ingested_at=now,
            )
            for d in drafts
        ]
        dw = _DocWrite(item, res, chunks, remaining=len(chunks))
        run.queue.extend((dw, c) for c in chunks)

    def _chunk_in_main(self, res: ParseResult) -> list[ChunkDraft]:
        if self._main_chunker is None:
            ing = self.settings.ingest
            self._main_chunker = Chunker(self.embedder, ing.chunk_tokens, ing.chunk_overlap)
        return self._main_chunker.chunk(ParsedDocument(res.title, res.format, res.blocks))

    def _flush(self, run: _Run, n: int) -> None:
        """Embed up to ``n`` queued chunks, write them, and commit the documents they complete."""
        batch = [run.queue.popleft() for _ in range(min(n, len(run.queue)))]
        texts = [c.text for _, c in batch]
        t0 = time.perf_counter()
        vectors = self.embedder.embed_documents(texts)
        run.report.embed_seconds += time.perf_counter() - t0
        points = [
            StoredPoint(
                chunk=c,
                dense=vectors[i].tolist(),
                sparse=self.sparse.encode_document(c.text, c.language) if self.sparse is not None else None,
            )
            for i, (_, c) in enumerate(batch)
        ]
        starting = list({id(dw): dw for dw, _ in batch if not dw.begun}.values())
        if starting:
            with self.state.transaction():
                for dw in starting:
                    self.state.begin_write(
                        dw.item.doc_id, dw.item.source, dw.item.root, [c.chunk_id for c in dw.chunks]
                    )
                    dw.begun = True
        for i in range(0, len(points), self.store_batch):
            self.store.upsert(points[i : i + self.store_batch])
            self._checkpoint("upserted")
        run.report.chunks_embedded += len(batch)
        finished: list[_DocWrite] = []
        for dw, _ in batch:
            dw.remaining -= 1
            if dw.remaining == 0:
                finished.append(dw)
        if finished:
            self._commit(run, finished)

    def _commit(self, run: _Run, finished: list[_DocWrite]) -> None:
        stale: dict[str, list[str]] = {}
        with self.state.transaction():
            for dw in finished:
                item, res = dw.item, dw.result
                new_ids = [c.chunk_id for c in dw.chunks]
                keep = set(new_ids)
                old = item.known.chunk_ids if item.known is not None else []
                stale[item.doc_id] = [i for i in old if i not in keep]
                rec = DocRecord(
                    doc_id=item.doc_id, source=item.source, root=item.root, sha256=res.sha256,
                    labels_fp=item.labels.fingerprint(), title=res.title, format=res.format,
                    groups=item.labels.groups, classification=item.labels.classification,
                    language=res.language, size=res.size, chunk_ids=new_ids,
                    ingested_at=dw.chunks[0].ingested_at,
                )
                self.state.commit_write(rec, stale[item.doc_id])
        self._checkpoint("committed")
        for dw in finished:
            doc_id = dw.item.doc_id
            self.store.delete_points(stale[doc_id])
            expected = len(dw.chunks)
            if self.store.count(doc_id) != expected:  # orphans from a lost state file or an old crash
                keep = {c.chunk_id for c in dw.chunks}
                self.store.delete_points([i for i in self.store.point_ids(doc_id) if i not in keep])
        self._checkpoint("stale_deleted")
        with self.state.transaction():
            for dw in finished:
                if stale[dw.item.doc_id]:
                    self.state.clear_stale(dw.item.doc_id)
        for dw in finished:
            known = dw.item.known
            status: Status = "updated" if known is not None and known.committed else "added"
            run.done(
                DocumentResult(dw.item.source, status, dw.item.doc_id, len(dw.chunks), title=dw.result.title)
            )

    def _erase(self, doc_id: str) -> int:
        rec = self.state.get(doc_id)
        before = self.store.count(doc_id)
        if rec is None and before == 0:
            raise DocumentNotFound(f"no document with id {doc_id}")
        if rec is not None:
            self.state.begin_delete(doc_id)
        self.store.delete_document(doc_id)
        after = self.store.count(doc_id)
        if after != 0:
            raise ErasureError(f"{after} chunks of document {doc_id} remain in the store after deletion")
        self.state.remove(doc_id)
        return before


def _info(r: DocRecord) -> DocumentInfo:
    return DocumentInfo(
        doc_id=r.doc_id, source=r.source, title=r.title, format=r.format, groups=r.groups,
        classification=r.classification, language=r.language, chunks=len(r.chunk_ids),
        sha256=r.sha256, size=r.size, ingested_at=r.ingested_at, status=r.status,
    )


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _discover(root: Path) -> list[Path]:
    """Every regular file under ``root``, sorted; hidden files/folders and the manifest are skipped."""
    out: list[Path] = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if rel.as_posix() == MANIFEST_NAME or not p.is_file():
            continue
        out.append(p)
    return sorted(out)
