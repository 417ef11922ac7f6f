"""The Ingestor: files (or uploaded bytes) to labelled chunks with vectors in the store.

Identity, stable across runs and machines:

- A document is its **source set** plus its path inside that set. A source set is a named root
  folder: ``--source intranet`` names it; without a name it is called after the folder's absolute
  path (``/srv/intranet``). The state records which folder each set was ingested from, so a second
  folder holding the same relative path is a different document, and a set can move to another
  folder (``--rebind``) without changing its documents' ids.
- ``doc_id`` = uuid5(VRAAGBAAK_NS, "doc:" + json([source_set, source])), where ``source`` is the
  file's path relative to the set's root in POSIX form (``beleid/handhygiene.pdf``). The state
  is the authority: a document already recorded at (set, source) keeps the id it has (rows
  migrated from before source sets keep their older ids).
- An upload (``ingest_bytes``) is its own document with a random id in the set ``uploads``, unless
  the caller names the upload it replaces. Re-sending the same bytes under the same name with the
  same labels is answered "unchanged" with the existing id (a retried upload makes no duplicate).
- point id = ``chunk_id`` = uuid5(VRAAGBAAK_NS, "chunk:{doc_id}:{index}:{sha256(text)}"): an
  unchanged chunk keeps its id, a changed one gets a new id.

Flow: files are parsed and chunked in worker processes (``ingest.worker``) while the main
process embeds earlier documents in batches and writes them to the store in batches. The catalog
(the ``Catalog`` port: ``ingest.state`` for SQLite, ``ingest.catalog_pg`` for PostgreSQL, built by
``ingest.catalog.build_catalog``) makes every step restartable; see ``ingest.state`` for the write order.

Several processes may share one catalog. A document is claimed (``Catalog.try_claim``) from the moment
its parse result enters the write queue until its stale points are gone, and for the whole of an
erasure; another process's live claim makes an ingest of that document fail with its reason, an
erasure raise ``DocumentBusy``, and ``recover()`` leave it alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from datetime import UTC, datetime
from pathlib import Path, PurePath

from ingest.chunking import ChunkDraft, Chunker
from ingest.doccontrol import Versioned, resolve_control, standings
from ingest.errors import DocumentBusy, DocumentNotFound, ErasureError, LabelError, ReplaceError, WritesPaused
from ingest.loaders.limits import LoaderLimits
from ingest.manifest import MANIFEST_NAME, DocumentLabels, Labels, Manifest, load_manifest, resolve_labels
from ingest.ocr import OcrConfig
from ingest.originals import OriginalStore
from ingest.partition import Partition, check_prune_options
from ingest.patientdata import GuardConfig
from ingest.quarantine_factory import build_quarantine
from ingest.report import DocumentInfo, DocumentResult, IngestReport, ProgressUpdate, PruneSummary, Status
from ingest.worker import ParseResult, ParserPool, ParseTask, WorkerConfig
from retrieval.unit_vectors import encode_units
from vraagbaak_core.ports import Catalog, Embedder, SparseEncoder, VectorStore
from vraagbaak_core.settings import Settings
from vraagbaak_core.types import (
    UPLOAD_SET,
    Chunk,
    DocControl,
    DocRecord,
    ParsedDocument,
    StoredPoint,
    classification_level,
    day_number,
)

log = logging.getLogger(__name__)

VRAAGBAAK_NS = uuid.UUID("3f0c6f0e-6a1b-5c1e-9a57-7672616167ba")
UPLOAD_ROOT = UPLOAD_SET

# parse results (whole small documents, or parts of ingest.page_batch pages) waiting to be embedded
_MAX_READY = 16

ProgressCallback = Callable[[ProgressUpdate], None]
ResultCallback = Callable[[DocumentResult], None]


def doc_id_for(source_set: str, source: str) -> str:
    """The id of a new document at ``source`` inside ``source_set``."""
    return str(uuid.uuid5(VRAAGBAAK_NS, "doc:" + json.dumps([source_set, source], ensure_ascii=False)))


def default_source_set(root: Path | str) -> str:
    """The name a folder's source set gets when none is given: its absolute path."""
    return str(root)


def check_source_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise LabelError("a source set name must not be empty")
    if name == UPLOAD_SET:
        raise LabelError(f"the source set name {UPLOAD_SET!r} is reserved for uploads through the API")
    if name.startswith("/") or any(ord(c) < 32 for c in name):
        raise LabelError(
            f"source set name {name!r}: must not start with '/' (that form is kept for folders "
            "without a name) nor hold control characters"
        )
    return name


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
    source_set: str = ""
    path: str | None = None
    data: bytes | None = None
    known: DocRecord | None = None


@dataclass
class _DocWrite:
    """One document on its way to the store: its chunks are queued part by part as the parser sends
    them (a long PDF streams in parts of pages) and committed once the last part is written."""

    item: _Item
    result: ParseResult  # its first part: title, format, language, properties, sha256, size
    control: DocControl
    ingested_at: str
    chunk_ids: list[str] = field(default_factory=list)  # every chunk queued so far, in order
    remaining: int = 0  # chunks queued but not yet written
    complete: bool = False  # the final part has arrived
    begun: bool = False  # ``begin_write`` is recorded: points of this version may be in the store
    recorded: int = 0  # how many of ``chunk_ids`` the catalog's pending list holds
    notes: list[str] = field(default_factory=list)


@dataclass
class _Run:
    items: dict[int, _Item]
    report: IngestReport
    progress: ProgressCallback | None
    on_result: ResultCallback | None = None
    files_done: int = 0
    queue: deque[tuple[_DocWrite, Chunk]] = field(default_factory=deque)
    claimed: set[str] = field(default_factory=set)
    writing: dict[int, _DocWrite] = field(default_factory=dict)  # streamed documents awaiting more parts
    dropped: set[int] = field(default_factory=set)  # documents already failed whose later parts are ignored

    def update(self, current: str | None = None, page: int = 0, pages: int = 0) -> None:
        if self.progress is not None:
            self.progress(
                ProgressUpdate(
                    len(self.items), self.files_done, self.report.chunks_embedded, current,
                    ocr_pages=self.report.ocr_pages, page=page, pages=pages,
                )
            )

    def done(self, result: DocumentResult) -> None:
        self.report.results.append(result)
        if self.on_result is not None:
            self.on_result(result)
        self.files_done += 1
        self.update(result.source)


class Ingestor:
    """Ingest, update, list and erase documents. Thread-safe: one operation at a time."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        sparse: SparseEncoder | None,
        store: VectorStore,
        state: Catalog,
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
        self._paused: Callable[[], int] | None = None  # during a reindex: seconds until a retry may succeed
        self._pool: ParserPool | None = None
        # Test hook: called with a checkpoint name at each step of the write protocol.
        self.on_checkpoint: Callable[[str], None] | None = None
        self._tokenizer_dir = _tokenizer_dir(embedder)
        self._main_chunker: Chunker | None = None
        ing = settings.ingest
        self.originals = OriginalStore(settings.resolve(ing.originals_dir or settings.data_dir / "originals"))
        self.quarantine = build_quarantine(settings)
        store.ensure_collection(embedder.dimension, embedder.name)
        self.recover()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        embedder: Embedder | None = None,
        store: VectorStore | None = None,
    ) -> Ingestor:
        from retrieval.analysis import encoder_from_settings
        from retrieval.embedders import build_embedder
        from retrieval.stores import build_store
        from vraagbaak_core.settings import PROJECT_ROOT

        store = store or build_store(settings)  # first: a locked store fails before a model loads
        embedder = embedder or build_embedder(settings.embedder, PROJECT_ROOT)
        sparse = encoder_from_settings(settings.retrieval.sparse)
        from ingest.catalog_factory import build_catalog

        state = build_catalog(settings)
        batch = max(256, settings.embedder.batch_size)
        return cls(settings, embedder, sparse, store, state, embed_batch=batch)

    # ------------------------------------------------------------------ public API

    @contextmanager
    def writes_paused(self, retry_after: Callable[[], int]) -> Iterator[None]:
        """Refuse new writes (``WritesPaused``, with ``retry_after()`` seconds), wait for the one under
        way, and hold the write lock for the block: the store does not change under a reindex."""
        self._paused = retry_after
        try:
            with self._lock:
                yield
        finally:
            self._paused = None

    def _check_writable(self) -> None:
        paused = self._paused
        if paused is not None:
            raise WritesPaused("the document store is being reindexed; writes are paused until it has switched",
                               paused())

    def switch_index(self, embedder: Embedder, store: VectorStore) -> None:
        """Write with ``embedder`` into ``store`` from now on (a reindex in the API switched to it)."""
        with self._lock:
            self.embedder, self.store = embedder, store
            self._main_chunker = None
            self._tokenizer_dir = _tokenizer_dir(embedder)
            if self._pool is not None:  # its workers count tokens with the old embedder's tokenizer
                self._pool.close()
                self._pool = None

    def ingest_paths(
        self,
        paths: Sequence[Path | str],
        labels: Labels,
        prune: bool = False,
        progress: ProgressCallback | None = None,
        *,
        source: str | None = None,
        rebind: bool = False,
        force: bool = False,
        dry_run: bool = False,
        on_result: ResultCallback | None = None,
        partition: Partition | None = None,
        prune_only: bool = False,
    ) -> IngestReport:
        """Ingest files and folders; ``prune`` removes documents gone from the given folders.

        ``source`` names the source set of every path given (default: the folder's absolute path,
        or for a file the recorded set whose folder holds it); ``rebind`` moves a named set to the
        folder given now. A prune never touches a folder whose manifest failed or that could not be
        listed, and refuses to remove more than ``ingest.prune_max_fraction`` of a set's documents
        unless ``force``. ``dry_run`` writes nothing: the report says what a prune would remove.
        ``on_result`` is called with each document's result the moment it is final (committed,
        failed or erased), e.g. to write its audit record.

        ``partition`` ingests only the documents of that hash partition (``ingest.partition``), so
        N workers share a run; a prune needs the whole listing, so it is refused with a partition
        and runs once afterwards, as ``prune_only``: list the folders, ingest nothing, prune with
        the same safety rules (and ``dry_run`` and ``force``).
        """
        check_prune_options(partition, prune=prune, prune_only=prune_only, dry_run=dry_run)
        if source is not None:
            source = check_source_name(source)
        if rebind and source is None:
            raise LabelError("--rebind needs --source NAME: the set to move to the folder given")
        if not dry_run:
            self._check_writable()
        with self._lock:
            t0 = time.perf_counter()
            if not dry_run:
                self.recover()
            report = IngestReport(partition=str(partition) if partition is not None else None)

            def emit(result: DocumentResult) -> None:
                report.results.append(result)
                if on_result is not None:
                    on_result(result)

            def mine(rel: str, set_name: str) -> bool:
                if partition is None or partition.holds(set_name, rel):
                    return True
                report.outside_partition += 1
                return False

            items: list[_Item] = []
            plans: list[_PrunePlan] = []
            seen: set[str] = set()
            for raw in paths:
                path = Path(raw)
                if not path.exists() and not path.is_symlink():
                    emit(DocumentResult(str(raw), "failed", reason="no such file or folder"))
                    continue
                found: list[_Found]
                listing_errors: list[str] = []
                if path.is_dir():
                    root = path.resolve()
                    found, listing_errors = _discover(root)
                    is_folder = True
                else:
                    file_path = Path(os.path.abspath(path))
                    file_path = file_path.parent.resolve() / file_path.name
                    root = self._root_for_file(file_path, source)
                    found = [_check_link(file_path, root)]
                    is_folder = False
                try:
                    set_name = self._source_set(root, source, rebind, write=not (dry_run or prune_only))
                except LabelError as err:
                    for f in found:
                        emit(DocumentResult(f.rel, "failed", reason=str(err)))
                    continue
                plan = _PrunePlan(set_name, str(root)) if is_folder else None
                if plan is not None:
                    plans.append(plan)
                    if listing_errors:
                        plan.refused = (
                            f"not pruned: {len(listing_errors)} folder(s) under {root} could not be listed "
                            f"({listing_errors[0]})"
                        )
                try:
                    manifest = load_manifest(root)
                except LabelError as err:
                    if plan is not None:
                        plan.refused = f"not pruned: {err}"
                    for f in found:
                        if not mine(f.rel, set_name):
                            continue
                        known = self.state.find(set_name, f.rel)
                        emit(DocumentResult(f.rel, "failed", known.doc_id if known else None, reason=str(err)))
                        if known is not None:
                            seen.add(known.doc_id)
                    continue
                for f in found:
                    if not mine(f.rel, set_name):
                        continue
                    known = self.state.find(set_name, f.rel)
                    doc_id = known.doc_id if known is not None else doc_id_for(set_name, f.rel)
                    if doc_id in seen:  # the same file named twice in one run
                        continue
                    seen.add(doc_id)
                    if f.refused:
                        emit(DocumentResult(f.rel, "failed", doc_id, reason=f.refused))
                        continue
                    if plan is not None:
                        plan.files += 1
                    if dry_run or prune_only:
                        continue
                    item = self._item(len(items), f.rel, str(root), f.path.name, doc_id, labels, manifest, emit)
                    if item is None:
                        continue
                    item.source_set = set_name
                    try:
                        size = f.target.stat().st_size
                    except OSError as err:
                        emit(DocumentResult(f.rel, "failed", doc_id, reason=f"cannot read: {err.strerror or err}"))
                        continue
                    if size > self.max_bytes:
                        emit(DocumentResult(
                            f.rel, "failed", doc_id,
                            reason=f"file too large: {size / 2**20:.1f} MB "
                            f"(limit {self.settings.ingest.max_file_mb:g} MB, ingest.max_file_mb)",
                        ))
                        continue
                    item.path = str(f.target)
                    items.append(item)
            self._run(items, report, progress, on_result)
            erased = False
            if prune or dry_run or prune_only:
                for plan in plans:
                    self._plan_prune(plan, seen, force)
                    report.prune.append(plan.summary(dry_run))
                    if dry_run or plan.refused:
                        continue
                    for rec in plan.remove:
                        try:
                            n = self._erase(rec.doc_id).removed
                        except DocumentBusy as err:  # another process writes it now: left for the next run
                            emit(DocumentResult(rec.source, "failed", rec.doc_id, reason=f"not pruned: {err}"))
                            continue
                        emit(DocumentResult(rec.source, "deleted", rec.doc_id, n, title=rec.title))
                        erased = True
            if erased:  # the erased documents' text leaves the store's files too (as far as the backend can)
                report.storage = self.store.vacuum()
                self.state.scrub()
            self.refresh_lifecycles()
            report.seconds = time.perf_counter() - t0
            return report

    def _root_for_file(self, file_path: Path, source: str | None) -> Path:
        """The source-set folder of a single file: the named or deepest recorded set holding it."""
        sets = self.state.source_sets()
        if source is not None:
            sets = [s for s in sets if s.name == source]
        best: Path | None = None
        for s in sets:
            root = Path(s.root)
            if file_path.is_relative_to(root) and (best is None or len(root.parts) > len(best.parts)):
                best = root
        return best if best is not None else file_path.parent

    def _source_set(self, root: Path, name: str | None, rebind: bool, write: bool) -> str:
        """The source set of ``root``; records a new one (or a moved one with ``rebind``)."""
        at_root = self.state.source_set_at(str(root))
        if name is None:
            chosen = at_root.name if at_root is not None else default_source_set(root)
            if at_root is None and write:
                self.state.bind_source_set(chosen, str(root), _now())
            return chosen
        if at_root is not None and at_root.name != name:
            raise LabelError(
                f"{root} is already ingested as source set {at_root.name!r}; give --source "
                f"{at_root.name!r} (or leave --source out), or erase those documents first"
            )
        bound = self.state.source_set(name)
        if bound is not None and bound.root != str(root):
            if not rebind:
                raise LabelError(
                    f"source set {name!r} was ingested from {bound.root}, not {root}; to move the set "
                    "here keeping its documents' ids, add --rebind; for another set, give another --source"
                )
        if write and (bound is None or bound.root != str(root)):
            self.state.bind_source_set(name, str(root), _now())
        return name

    def _plan_prune(self, plan: _PrunePlan, seen: set[str], force: bool) -> None:
        committed = [r for r in self.state.in_source_set(plan.source_set) if r.committed]
        plan.documents = len(committed)
        plan.remove = [r for r in committed if r.doc_id not in seen]
        if plan.refused or not plan.remove:  # a failed manifest or listing: never pruned, even with --force
            return
        limit = self.settings.ingest.prune_max_fraction
        share = len(plan.remove) / len(committed)
        if plan.files == 0:
            plan.refused = (
                f"not pruned: no documents found in {plan.root}, which holds {len(committed)} stored "
                "documents; is the share mounted? If the folder is meant to be empty, add --force"
            )
        elif share > limit:
            plan.refused = (
                f"not pruned: would remove {len(plan.remove)} of {len(committed)} documents "
                f"({share:.0%}), more than ingest.prune_max_fraction ({limit:.0%}); check the folder, "
                "list them with --dry-run, then add --force"
            )
        if force:
            plan.refused = None

    def ingest_bytes(
        self,
        data: bytes,
        filename: str,
        labels: Labels,
        *,
        replace: str | None = None,
        on_result: ResultCallback | None = None,
    ) -> DocumentResult:
        """Ingest one uploaded file (bytes only; the name is used for the source and as a hint).

        Without ``replace`` the upload is a new document (a retry of the same bytes, name and
        labels answers "unchanged" with the existing id); with it, the upload replaces the upload
        with that doc_id.
        """
        name = PurePath(filename.replace("\\", "/")).name.strip()
        if not name or name in (".", ".."):
            raise LabelError("an upload needs a file name")
        self._check_writable()
        with self._lock:
            self.recover()
            report = IngestReport()

            def emit(result: DocumentResult) -> None:
                report.results.append(result)
                if on_result is not None:
                    on_result(result)

            source = f"{UPLOAD_ROOT}/{name}"
            known: DocRecord | None = None
            if replace is not None:
                known = self.state.get(replace)
                if known is None or not known.committed:
                    raise DocumentNotFound(f"no document with id {replace} to replace")
                if known.source_set != UPLOAD_SET:
                    raise ReplaceError(
                        f"document {replace} was ingested from the folder set {known.source_set!r}; "
                        "change the file there and run `vraagbaak ingest` again"
                    )
                doc_id = replace
            else:
                doc_id = str(uuid.uuid4())
            if len(data) > self.max_bytes:
                result = DocumentResult(
                    source, "failed", doc_id,
                    reason=f"file too large: {len(data) / 2**20:.1f} MB "
                    f"(limit {self.settings.ingest.max_file_mb:g} MB, ingest.max_file_mb)",
                )
                emit(result)
                return result
            item = self._item(0, source, UPLOAD_ROOT, name, doc_id, labels, None, emit)
            if item is None:
                return report.results[0]
            item.source_set = UPLOAD_SET
            if replace is None:
                retry = self._same_upload(source, hashlib.sha256(data).hexdigest(), item.labels)
                if retry is not None:
                    result = DocumentResult(
                        source, "unchanged", retry.doc_id, len(retry.chunk_ids), title=retry.title
                    )
                    report.results.append(result)  # no change: nothing to audit
                    return result
            item.data = data
            self._run([item], report, None, on_result)
            self.refresh_lifecycles()
            return report.results[0]

    def _same_upload(self, source: str, sha256: str, labels: DocumentLabels) -> DocRecord | None:
        for rec in self.state.in_source_set(UPLOAD_SET):
            if (
                rec.source == source and rec.committed and rec.status == "done" and rec.sha256 == sha256
                and rec.labels_fp == labels.fingerprint()
            ):
                return rec
        return None

    def delete_document(self, doc_id: str) -> int:
        """Remove every chunk and vector of a document, verify the store holds none; chunks removed."""
        return self.erase_document(doc_id).removed

    def erase_document(self, doc_id: str) -> Erasure:
        """Erase by ``doc_id`` in the store whatever the state says, count, and vacuum the store.

        Raises DocumentNotFound only when neither the state nor the store knows the id, and
        ErasureError when chunks remain after the delete; WritesPaused during a reindex in the API.
        """
        self._check_writable()
        with self._lock:
            erasure = self._erase(doc_id)
            erasure.storage = self.store.vacuum()
            self.state.scrub()
            erasure.vacuumed = True
            self.refresh_lifecycles()
            return erasure

    def classification_of(self, doc_id: str) -> str | None:
        """The recorded classification of a document, if the state knows it (for audit records)."""
        rec = self.state.get(doc_id)
        return rec.classification if rec is not None and rec.classification else None

    def list_documents(self) -> list[DocumentInfo]:
        return [_info(r) for r in self.state.all() if r.committed]

    def get_document(self, doc_id: str) -> DocumentInfo:
        rec = self.state.get(doc_id)
        if rec is None or not rec.committed:
            raise DocumentNotFound(f"no document with id {doc_id}")
        return _info(rec)

    def recover(self) -> int:
        """Finish or undo what a killed run left half-done; the number of documents repaired."""
        self._check_writable()
        with self._lock:
            unfinished = self.state.unfinished()
            repaired = 0
            for rec in unfinished:
                if not self.state.try_claim(rec.doc_id):
                    log.info("not recovering %s (%s): another live process is writing it", rec.doc_id, rec.source)
                    continue
                try:
                    now = self.state.get(rec.doc_id)  # read again under the claim: it may be done by now
                    if now is None or (now.status == "done" and not now.stale_ids):
                        continue
                    self._repair(now)
                finally:
                    self.state.release(rec.doc_id)
                repaired += 1
            if repaired:
                log.info("recovered %d half-written documents", repaired)
            return repaired

    def _repair(self, rec: DocRecord) -> None:
        """Finish or undo one document's unfinished write or erasure (the caller holds its claim)."""
        if rec.status == "deleting":
            self._erase(rec.doc_id, held=True)
            self.store.vacuum()
            self.state.scrub()
            return
        if rec.status == "writing":
            keep = set(rec.chunk_ids)
            orphans = [i for i in self.store.point_ids(rec.doc_id) if i not in keep]
            self.store.delete_points(orphans)
            if rec.committed and rec.chunk_ids:
                # chunk ids depend on text, not labels: an unchanged chunk of a killed relabel
                # already carries the new labels under its committed id. Put the committed ones back.
                self.store.set_payload(rec.chunk_ids, _committed_payload(rec))
            self.state.abandon_write(rec.doc_id)
        if rec.stale_ids:
            self.store.delete_points(rec.stale_ids)
            self.state.clear_stale(rec.doc_id)

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
        manifest: Manifest | None, emit: Callable[[DocumentResult], None],
    ) -> _Item | None:
        try:
            resolved = resolve_labels(source, labels, manifest, self.settings.ingest.default_classification)
        except LabelError as err:
            emit(DocumentResult(source, "failed", doc_id, reason=str(err)))
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
                guard=self._guard_config(),
                ocr=OcrConfig(ing.ocr.enabled, ing.ocr.languages, ing.ocr.dpi, ing.ocr.page_timeout_s),
                page_batch=ing.page_batch,
            )
            self._pool = ParserPool(config, workers=ing.workers, max_ready=_MAX_READY, idle_s=ing.worker_idle_s)
        return self._pool

    def _guard_config(self) -> GuardConfig | None:
        pd = self.settings.ingest.patient_data
        if not pd.enabled:
            return None
        if pd.names and importlib.util.find_spec("deduce") is None:
            raise LabelError(
                "the patient-data guard needs deduce for names and addresses: run scripts/install-deduce "
                "(or set ingest.patient_data.names: false); nothing was indexed"
            )
        return GuardConfig(pd.threshold, tuple(pd.patient_number_patterns), pd.names)

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

    def _run(
        self, items: list[_Item], report: IngestReport, progress: ProgressCallback | None,
        on_result: ResultCallback | None = None,
    ) -> None:
        run = _Run({i.key: i for i in items}, report, progress, on_result)
        if not items:
            return
        pool = self._pool_get()
        for item in items:
            pool.submit(ParseTask(
                item.key, item.name, item.path, item.data, self._unchanged_sha(item),
                guard=not item.labels.patient_data_allowed,
                released_sha256=self.quarantine.released_sha256(item.doc_id),
            ))
        try:
            self._write_all(run, pool, len(items))
        finally:
            for doc_id in run.claimed:  # documents a failure left unfinished: recovery may repair them
                self.state.release(doc_id)
            run.claimed.clear()

    def _write_all(self, run: _Run, pool: ParserPool, outstanding: int) -> None:
        while outstanding:
            pending = len(run.queue)
            res = pool.get(timeout=0.0 if pending >= self.embed_batch else (0.02 if pending else 1.0))
            if res is None:
                if pending:
                    self._flush(run, self.embed_batch)
                continue
            if res.final:
                outstanding -= 1
            self._handle(run, res)
            while len(run.queue) >= self.embed_batch:
                self._flush(run, self.embed_batch)
        while run.queue:
            self._flush(run, self.embed_batch)

    def _handle(self, run: _Run, res: ParseResult) -> None:
        item = run.items[res.key]
        run.report.ocr_pages += res.ocr_pages
        if res.key in run.dropped:  # a later part of a document that already failed
            if res.final:
                run.dropped.discard(res.key)
            return
        dw = run.writing.get(res.key)
        if dw is not None:  # the next part of a streamed document
            if res.status != "parsed":  # a later page failed, or the worker died: undo what was written
                self._abort(run, dw, res.reason or f"parsing ended: {res.status}")
                return
            self._queue(run, dw, res, self._drafts(res, len(dw.chunk_ids)))
            return
        if res.status == "failed":
            run.done(DocumentResult(item.source, "failed", item.doc_id, reason=res.reason))
            return
        if res.status == "quarantined":
            entry = self.quarantine.add(
                doc_id=item.doc_id, source_set=item.source_set, source=item.source, sha256=res.sha256,
                reason=res.reason, counts=res.findings,
            )
            kept = " (the indexed earlier version stays)" if item.known is not None and item.known.committed else ""
            run.done(DocumentResult(
                item.source, "quarantined", item.doc_id, reason=f"{res.reason}{kept}; quarantine id {entry.id}",
                title=res.title,
            ))
            return
        if res.status == "unchanged":
            if item.known is not None and not self.originals.exists(item.doc_id):
                self._keep_original(item, item.known.sha256)  # kept from before originals were stored
            n = len(item.known.chunk_ids) if item.known else 0
            title = item.known.title if item.known else ""
            run.done(DocumentResult(item.source, "unchanged", item.doc_id, n, title=title))
            return

        def fail(reason: str) -> None:
            if not res.final:
                run.dropped.add(res.key)
            run.done(DocumentResult(item.source, "failed", item.doc_id, reason=reason))

        try:
            control = self._control(item, res)
        except LabelError as err:
            fail(str(err))
            return
        drafts = self._drafts(res, 0)
        if not drafts and res.final:
            fail("no text to index")
            return
        if not self.state.try_claim(item.doc_id):
            fail("another process is writing or erasing this document now; run the ingest again later")
            return
        run.claimed.add(item.doc_id)
        dw = _DocWrite(item, res, control, _now())
        run.writing[res.key] = dw
        self._queue(run, dw, res, drafts)

    def _drafts(self, res: ParseResult, start: int) -> list[ChunkDraft]:
        """The chunks of one part: the worker's, or chunked here (numbered on from ``start``)."""
        if res.drafts is not None:
            return res.drafts
        return self._chunk_in_main(res, start)

    def _queue(self, run: _Run, dw: _DocWrite, res: ParseResult, drafts: list[ChunkDraft]) -> None:
        """Queue one part's chunks for embedding; the final part completes the document."""
        item, first = dw.item, dw.result
        chunks = [
            Chunk(
                chunk_id=chunk_id_for(item.doc_id, d.index, d.text), doc_id=item.doc_id, index=d.index,
                text=d.text, title=first.title, source=item.source, page=d.page, section=d.section,
                groups=item.labels.groups, classification=item.labels.classification, language=first.language,
                doc_sha256=first.sha256, ingested_at=dw.ingested_at, control=dw.control,
            )
            for d in drafts
        ]
        dw.chunk_ids.extend(c.chunk_id for c in chunks)
        dw.remaining += len(chunks)
        run.queue.extend((dw, c) for c in chunks)
        if not res.final:
            return
        del run.writing[item.key]
        dw.complete = True
        dw.notes = list(res.notes)
        if not dw.chunk_ids:
            self._abort(run, dw, "no text to index")
        elif dw.remaining == 0:  # every earlier part is written already
            self._commit(run, [dw])

    def _abort(self, run: _Run, dw: _DocWrite, reason: str) -> None:
        """A document failed after some of its parts were queued or written: take every new point of
        it out of the store and go back to the committed version (or to nothing)."""
        item = dw.item
        run.writing.pop(item.key, None)
        if dw.remaining:
            run.queue = deque(entry for entry in run.queue if entry[0] is not dw)
        if dw.begun:
            rec = self.state.get(item.doc_id)
            if rec is not None:
                self._repair(rec)
            self._checkpoint("rolled_back")
        self.state.release(item.doc_id)
        run.claimed.discard(item.doc_id)
        kept = " (the indexed earlier version stays)" if item.known is not None and item.known.committed else ""
        run.done(DocumentResult(item.source, "failed", item.doc_id, reason=f"{reason}{kept}"))

    def _control(self, item: _Item, res: ParseResult) -> DocControl:
        """Document control from vraagbaak.yaml and the file's properties, with its lifecycle as of now."""
        labels = item.labels
        control = resolve_control([dict(labels.control_defaults), res.properties, dict(labels.control_rules)])
        if control.is_empty() or control.lifecycle != "current":
            return control
        others = [v for v in self._versioned() if v.doc_id != item.doc_id]
        mine = Versioned(item.doc_id, item.source, control, _now(), item.source_set, tuple(labels.groups))
        st = standings([*others, mine])[item.doc_id]
        return dc_replace(control, lifecycle=st.lifecycle, until=st.until)

    def _versioned(self) -> list[Versioned]:
        return [
            Versioned(r.doc_id, r.source, DocControl.from_dict(r.control), r.ingested_at, r.source_set,
                      tuple(r.groups))
            for r in self.state.all() if r.committed and r.control
        ]

    def refresh_lifecycles(self) -> int:
        """Re-derive which version of each family answers; update the store first, then the state.

        Run after every ingest and erasure: a new version supersedes the old one, erasing the
        current one lets the previous answer again. Returns the number of documents changed.
        """
        self._check_writable()
        with self._lock:
            docs = self._versioned()
            changed = 0
            for doc_id, st in standings(docs).items():
                have = next(d.control for d in docs if d.doc_id == doc_id)
                if (have.lifecycle, have.until) != (st.lifecycle, st.until):
                    self.store.set_document_payload(doc_id, {
                        "lifecycle": st.lifecycle, "until_day": day_number(st.until) if st.until else None,
                    })
                    self.state.set_lifecycle(doc_id, st.lifecycle, st.until)
                    changed += 1
            return changed

    def _chunk_in_main(self, res: ParseResult, start: int = 0) -> list[ChunkDraft]:
        if self._main_chunker is None:
            ing = self.settings.ingest
            self._main_chunker = Chunker(self.embedder, ing.chunk_tokens, ing.chunk_overlap)
        return self._main_chunker.chunk(ParsedDocument(res.title, res.format, res.blocks), start)

    def _flush(self, run: _Run, n: int) -> None:
        """Embed up to ``n`` queued chunks, write them, and commit the documents they complete."""
        batch = [run.queue.popleft() for _ in range(min(n, len(run.queue)))]
        texts = [c.text for _, c in batch]
        t0 = time.perf_counter()
        vectors = self.embedder.embed_documents(texts)
        if self.settings.ingest.unit_vectors:
            units = encode_units(self.embedder, [(c.text, c.language) for _, c in batch])
            batch = [(dw, dc_replace(c, units=(u,)) if u is not None else c)
                     for (dw, c), u in zip(batch, units, strict=True)]
        run.report.embed_seconds += time.perf_counter() - t0
        points = [
            StoredPoint(
                chunk=c,
                dense=vectors[i].tolist(),
                sparse=self.sparse.encode_document(c.text, c.language) if self.sparse is not None else None,
            )
            for i, (_, c) in enumerate(batch)
        ]
        # documents whose points are written for the first time, or that have more chunks now (streamed)
        growing = list({id(dw): dw for dw, _ in batch if dw.recorded < len(dw.chunk_ids)}.values())
        if growing:
            with self.state.transaction():
                for dw in growing:
                    self.state.begin_write(
                        dw.item.doc_id, dw.item.source, dw.item.root, list(dw.chunk_ids), dw.item.source_set,
                    )
                    dw.begun = True
                    dw.recorded = len(dw.chunk_ids)
        for i in range(0, len(points), self.store_batch):
            self.store.upsert(points[i : i + self.store_batch])
            self._checkpoint("upserted")
        run.report.chunks_embedded += len(batch)
        last_dw, last = batch[-1]
        run.update(last.source, page=last.page or 0, pages=last_dw.result.pages)
        finished: list[_DocWrite] = []
        for dw, _ in batch:
            dw.remaining -= 1
            if dw.remaining == 0 and dw.complete:
                finished.append(dw)
        if finished:
            self._commit(run, finished)

    def _commit(self, run: _Run, finished: list[_DocWrite]) -> None:
        stale: dict[str, list[str]] = {}
        with self.state.transaction():
            for dw in finished:
                item, res = dw.item, dw.result
                new_ids = list(dw.chunk_ids)
                keep = set(new_ids)
                old = item.known.chunk_ids if item.known is not None else []
                stale[item.doc_id] = [i for i in old if i not in keep]
                rec = DocRecord(
                    doc_id=item.doc_id, source=item.source, root=item.root, sha256=res.sha256,
                    labels_fp=item.labels.fingerprint(), title=res.title, format=res.format,
                    groups=item.labels.groups, classification=item.labels.classification,
                    language=res.language, size=res.size, chunk_ids=new_ids,
                    ingested_at=dw.ingested_at, source_set=item.source_set,
                    control={} if dw.control.is_empty() else dw.control.to_dict(),
                )
                self.state.commit_write(rec, stale[item.doc_id])
        for dw in finished:  # final now: report it (and let the caller audit it) before anything else
            known = dw.item.known
            status: Status = "updated" if known is not None and known.committed else "added"
            run.done(
                DocumentResult(
                    dw.item.source, status, dw.item.doc_id, len(dw.chunk_ids), title=dw.result.title,
                    notes=tuple(dw.notes),
                )
            )
        self._checkpoint("committed")
        for dw in finished:
            self._keep_original(dw.item, dw.result.sha256)
        for dw in finished:
            doc_id = dw.item.doc_id
            self.store.delete_points(stale[doc_id])
            expected = len(dw.chunk_ids)
            if self.store.count(doc_id) != expected:  # orphans from a lost state file or an old crash
                keep = set(dw.chunk_ids)
                self.store.delete_points([i for i in self.store.point_ids(doc_id) if i not in keep])
        self._checkpoint("stale_deleted")
        with self.state.transaction():
            for dw in finished:
                if stale[dw.item.doc_id]:
                    self.state.clear_stale(dw.item.doc_id)
        for dw in finished:
            self.state.release(dw.item.doc_id)
            run.claimed.discard(dw.item.doc_id)

    def _erase(self, doc_id: str, held: bool = False) -> Erasure:
        """Erase one document; ``held``: the caller already holds its claim (and keeps it)."""
        if not held and not self.state.try_claim(doc_id):
            raise DocumentBusy(f"document {doc_id} is being written or erased by another process; try again")
        try:
            return self._erase_claimed(doc_id)
        finally:
            if not held:
                self.state.release(doc_id)

    def _erase_claimed(self, doc_id: str) -> Erasure:
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
        self.originals.delete(doc_id)
        if self.originals.exists(doc_id):
            raise ErasureError(f"the stored original of document {doc_id} could not be removed")
        self.state.remove(doc_id)
        return Erasure(doc_id, removed=before, remaining=after, had_state=rec is not None,
                       classification=rec.classification if rec is not None else None)


    def _keep_original(self, item: _Item, sha256: str) -> None:
        """Keep the original bytes; a file that changed since it was parsed is not kept (logged)."""
        try:
            if item.data is not None:
                ok = self.originals.put_bytes(item.doc_id, item.data, sha256)
            elif item.path is not None:
                ok = self.originals.put_file(item.doc_id, item.path, sha256)
            else:
                return
        except OSError as err:
            log.warning("original of %s not kept: %s", item.source, err.strerror or err)
            return
        if not ok:
            log.warning("original of %s not kept: the file changed while it was ingested", item.source)

def _tokenizer_dir(embedder: Embedder) -> str | None:
    """Parser workers count with the model's tokenizer.json; a model with a document prefix (e5:
    "passage: ") is counted in the main process, where the prefix is included."""
    model_dir = getattr(embedder, "model_dir", None)
    if (
        isinstance(model_dir, Path)
        and (model_dir / "tokenizer.json").is_file()
        and not getattr(embedder, "document_prefix", "")
    ):
        return str(model_dir)
    return None


@dataclass
class Erasure:
    """What an erasure did, counted in the store afterwards (``verified``: nothing left)."""

    doc_id: str
    removed: int
    remaining: int
    had_state: bool
    classification: str | None = None
    vacuumed: bool = False  # the store's vacuum step ran; what it did is ``storage``
    storage: str = ""  # exactly what the backend did to the erased points' bytes (audit and CLI say this)

    @property
    def verified(self) -> bool:
        return self.remaining == 0


def _committed_payload(rec: DocRecord) -> dict[str, object]:
    """The document-level payload fields of a committed version, as its chunks carry them."""
    return {
        "groups": list(rec.groups), "classification": rec.classification,
        "classification_level": classification_level(rec.classification), "title": rec.title,
        "source": rec.source, "language": rec.language, "doc_sha256": rec.sha256, "ingested_at": rec.ingested_at,
    }




def _info(r: DocRecord) -> DocumentInfo:
    return DocumentInfo(
        doc_id=r.doc_id, source=r.source, title=r.title, format=r.format, groups=r.groups,
        classification=r.classification, language=r.language, chunks=len(r.chunk_ids),
        sha256=r.sha256, size=r.size, ingested_at=r.ingested_at, status=r.status, source_set=r.source_set,
        control=DocControl.from_dict(r.control),
    )


@dataclass
class _Found:
    """A file found under a root: ``path`` as listed, ``target`` to read, ``refused`` if it may not be."""

    path: Path
    rel: str
    target: Path
    refused: str = ""


@dataclass
class _PrunePlan:
    source_set: str
    root: str
    files: int = 0
    documents: int = 0
    remove: list[DocRecord] = field(default_factory=list)
    refused: str | None = None

    def summary(self, dry_run: bool) -> PruneSummary:
        return PruneSummary(
            source_set=self.source_set, root=self.root, documents=self.documents,
            remove=[r.source for r in self.remove], refused=self.refused, dry_run=dry_run,
        )


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _check_link(path: Path, root: Path) -> _Found:
    """A symbolic link is read only when it resolves to a file inside the root."""
    rel = _rel(path, root)
    if not path.is_symlink():
        return _Found(path, rel, path)
    target = path.resolve()
    if not target.is_relative_to(root):
        return _Found(path, rel, target, f"symbolic link to {target}, outside {root}; not followed")
    if not target.is_file():
        return _Found(path, rel, target, f"symbolic link to {target}, which is not a file; not followed")
    return _Found(path, rel, target)


def _discover(root: Path) -> tuple[list[_Found], list[str]]:
    """Every file under ``root``, sorted, and the folders that could not be listed.

    Hidden files and folders and the manifest are skipped. Links are never followed out of the
    root: a linked file outside it is refused with its reason, linked folders are not entered
    (one inside the root is listed under its real path; one outside it is refused).
    """
    out: list[_Found] = []
    errors: list[str] = []

    def failed(err: OSError) -> None:
        errors.append(f"{err.filename}: {err.strerror or err}")

    for dirpath, dirnames, filenames in os.walk(root, onerror=failed, followlinks=False):
        here = Path(dirpath)
        keep: list[str] = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            p = here / d
            if p.is_symlink():
                target = p.resolve()
                if not target.is_relative_to(root):
                    out.append(_Found(p, _rel(p, root), target,
                                      f"symbolic link to the folder {target}, outside {root}; not followed"))
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in filenames:
            if name.startswith("."):
                continue
            p = here / name
            rel = _rel(p, root)
            if rel == MANIFEST_NAME:
                continue
            if not p.is_symlink() and not p.is_file():
                continue  # sockets, fifos, devices
            out.append(_check_link(p, root))
    return sorted(out, key=lambda f: f.rel), errors
