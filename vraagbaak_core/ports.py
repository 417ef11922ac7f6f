"""Ports: the small protocols every adapter implements.

One adapter per backend lives next to the code that uses it (``retrieval.stores.edge``,
``retrieval.stores.qdrant``, ``retrieval.embedders``, ``serving.staff.generators`` ...).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from vraagbaak_core.types import (
    AnswerReceipt,
    AuditEntry,
    ChatMessage,
    DocRecord,
    FeedbackRow,
    GenerationParams,
    Hit,
    ParsedDocument,
    QuarantineEntry,
    SourceSet,
    SparseVector,
    StoredPoint,
    StoreQuery,
    Vote,
)


@runtime_checkable
class Embedder(Protocol):
    """Turns text into dense vectors. Documents and queries may be embedded differently.

    Both embed methods return L2-normalised float32 rows and refuse an empty text
    (``EmbeddingInputError``); a document longer than ``max_tokens`` is refused, a long query is
    truncated. ``name`` identifies the model: a collection records it (see ``VectorStore``).
    """

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Longest input in the model's own tokens, special tokens included."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes as model input, special tokens included."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> NDArray[np.float32]: ...

    def embed_query(self, text: str) -> NDArray[np.float32]: ...


@runtime_checkable
class UnitEmbedder(Protocol):
    """An embedder with a faster, coarser path for the answerer's quotable units (optional).

    ``embed_units(texts)`` returns L2-normalised rows like ``embed_documents``, from the same model,
    within the error the units' stored int8 vectors have anyway (``retrieval.unit_vectors``); the
    chunks' vectors, which the index holds, never take this path.
    """

    def embed_units(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


@runtime_checkable
class SparseEncoder(Protocol):
    """Lexical term weights for the sparse (BM25-style) vector."""

    def encode_document(self, text: str, language: str) -> SparseVector: ...

    def encode_query(self, text: str) -> SparseVector: ...

    def query_translations(self, text: str) -> dict[int, frozenset[int]]:
        """Query term id → ids of terms that stand for it in the other language ({} when none)."""
        ...


@runtime_checkable
class VectorStore(Protocol):
    """One collection of chunks with a named dense and a named sparse vector."""

    def ensure_collection(self, dense_dim: int, embedder: str | None = None) -> None:
        """Create the collection recording ``embedder`` (a name) and ``dense_dim``, or check that
        they are the ones that filled it (``EmbedderMismatch`` naming both)."""
        ...

    def collection_record(self) -> dict[str, object] | None:
        """``{"embedder", "dimension", "state"}`` of the collection, or None (none recorded)."""
        ...

    def set_collection_state(self, state: str) -> None:
        """``building`` while ``vraagbaak reindex`` fills it, ``ready`` once complete."""
        ...

    def upsert(self, points: Sequence[StoredPoint]) -> None: ...

    def query(self, request: StoreQuery) -> list[Hit]: ...

    def query_batch(self, requests: Sequence[StoreQuery]) -> list[list[Hit]]:
        """Each request's hits, in order, in one round trip where the backend allows."""
        ...

    def delete_points(self, point_ids: Sequence[str]) -> None: ...

    def delete_document(self, doc_id: str) -> None: ...

    def set_document_payload(self, doc_id: str, payload: dict[str, Any]) -> None:
        """Set (merge) payload fields on every chunk of a document (its lifecycle, for one)."""
        ...

    def count(self, doc_id: str | None = None) -> int: ...

    def point_ids(self, doc_id: str) -> list[str]: ...

    def scroll_points(self, offset: str | None, limit: int) -> tuple[list[StoredPoint], str | None]:
        """A page of points with payload and vectors, in id order; the next offset or None."""
        ...

    def existing_ids(self, point_ids: Sequence[str]) -> set[str]: ...

    def set_payload(self, point_ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        """Overwrite these payload keys on these points (labels restored after a crash)."""
        ...

    def vacuum(self) -> str:
        """After an erasure: make deleted points' text unrecoverable from the store's files, as far as this
        backend can; returns what it did, exactly (for the audit record and the CLI)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Reranker(Protocol):
    def rerank(self, query: str, hits: Sequence[Hit], top_k: int) -> list[Hit]: ...


@runtime_checkable
class Generator(Protocol):
    """A chat model. Greedy unless the params say otherwise."""

    @property
    def model_name(self) -> str: ...

    @property
    def context_window(self) -> int: ...

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int: ...

    async def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> str: ...

    def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncIterator[str]: ...

    async def ready(self) -> bool: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class SourceAnswerer(Protocol):
    """A generator that answers from the retrieved sources themselves, not from a prompt
    (the extractive backend). It streams text with ``[n]`` markers, n the 1-based source number."""

    def stream_from_sources(
        self, question: str, hits: Sequence[Hit], language: str, params: GenerationParams
    ) -> AsyncIterator[str]: ...


@runtime_checkable
class AnswerabilityJudge(Protocol):
    """Whether the retrieved sources answer the question at all (else the service abstains and
    offers the nearest documents). The extractive answerer is one."""

    def answerable(self, question: str, hits: Sequence[Hit], language: str) -> bool: ...


@runtime_checkable
class Loader(Protocol):
    """Parses the bytes of one file format into text blocks with page/heading."""

    formats: tuple[str, ...]

    def load(self, data: bytes, name: str) -> ParsedDocument: ...


@runtime_checkable
class PagedLoader(Loader, Protocol):
    """A loader that hands a long document over in parts of consecutive pages (ingest streams them).

    ``load_parts`` yields one :class:`ParsedDocument` per ``pages`` pages, in page order: each holds
    its pages' blocks (page numbers are the document's own); the first one also the title,
    properties and ``pages`` (the page count); the last one the notes and ``ocr_pages`` of the whole
    document. It raises ``LoadError`` as ``load`` does, possibly after parts were yielded; ``load``
    is the parts joined.
    """

    def load_parts(self, data: bytes, name: str, pages: int) -> Iterator[ParsedDocument]: ...


@runtime_checkable
class AuditSink(Protocol):
    """Where the audit chain is stored. The sink owns the chain's order: :meth:`append` sets
    ``prev_sha256`` to the current head and ``sha256`` to ``seal(record)`` atomically with storing it,
    so concurrent writers (threads, processes, replicas) never fork the chain."""

    @property
    def location(self) -> str:
        """Where the chain lives, for messages and records (a path or a database, no password)."""
        ...

    def append(self, record: dict[str, Any], seal: Callable[[Mapping[str, Any]], str]) -> dict[str, Any]:
        """Chain, seal and durably store one record; raise ``AuditWriteError`` if it cannot be stored."""
        ...

    def check_writable(self) -> None:
        """Raise ``AuditWriteError`` now if a record could not be stored (read-only, full, unreachable)."""
        ...

    def entries(self, upto: int | None = None) -> Iterator[AuditEntry]:
        """Every stored entry in chain order, as stored (unparsed); ``upto``: a :meth:`mark`."""
        ...

    def mark(self) -> int:
        """A bookmark: :meth:`entries` with it yields only what was stored before this call."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class AuditCheckpointStore(Protocol):
    """Where an audit sink keeps the sealed checkpoint of its verified prefix, beside the chain
    (``vraagbaak_core.audit_checkpoint``): opaque text to the sink, sealed by the reader."""

    def load_checkpoint(self) -> str | None:
        """The stored checkpoint, or None; ``OSError`` when the store cannot be read."""
        ...

    def save_checkpoint(self, text: str) -> None:
        """Replace the stored checkpoint atomically; ``OSError`` when it cannot be stored."""
        ...


@runtime_checkable
class Catalog(Protocol):
    """Everything about documents that is not vectors: identity, labels, control metadata, source
    sets, and the write journal that makes ingest crash-safe (``ingest.state`` has the write order).

    One catalog may be shared by several processes (API replicas, ingest workers). A process that
    writes or erases a document first :meth:`try_claim`s it; a claim lasts until :meth:`release` or
    until the claiming process (PostgreSQL: its session) dies, and recovery never repairs a document
    another live process has claimed. Single statements are atomic; :meth:`transaction` groups several
    into one durable commit.
    """

    @property
    def location(self) -> str:
        """Where the catalog lives, for messages (a path or a database, never a password)."""
        ...

    def transaction(self) -> AbstractContextManager[None]: ...

    # --- reads ---

    def get(self, doc_id: str) -> DocRecord | None: ...

    def all(self) -> list[DocRecord]:
        """Every document, ordered by source."""
        ...

    def in_roots(self, roots: Iterable[str]) -> list[DocRecord]: ...

    def in_source_set(self, name: str) -> list[DocRecord]:
        """The documents of one source set, ordered by source."""
        ...

    def find(self, source_set: str, source: str) -> DocRecord | None:
        """The document at ``source`` inside ``source_set``."""
        ...

    def unfinished(self) -> list[DocRecord]:
        """Documents left ``writing`` or ``deleting``, or with stale ids (what recovery repairs)."""
        ...

    # --- source sets ---

    def source_set(self, name: str) -> SourceSet | None: ...

    def source_set_at(self, root: str) -> SourceSet | None: ...

    def source_sets(self) -> list[SourceSet]: ...

    def bind_source_set(self, name: str, root: str, created_at: str = "") -> None:
        """Record ``name`` → ``root`` (a new set, or a set moved to another folder)."""
        ...

    # --- the write protocol ---

    def begin_write(
        self, doc_id: str, source: str, root: str, pending_ids: list[str], source_set: str = ""
    ) -> None: ...

    def commit_write(self, rec: DocRecord, stale_ids: list[str]) -> None: ...

    def set_lifecycle(self, doc_id: str, lifecycle: str, until: str | None = None) -> None: ...

    def clear_stale(self, doc_id: str) -> None: ...

    def abandon_write(self, doc_id: str) -> None:
        """Forget an unfinished write: back to the committed version, or no row if there was none."""
        ...

    def begin_delete(self, doc_id: str) -> None: ...

    def remove(self, doc_id: str) -> None: ...

    # --- writer claims (cross-process) ---

    def try_claim(self, doc_id: str) -> bool:
        """Become the writer of ``doc_id``; False when another live process holds it (never waits)."""
        ...

    def release(self, doc_id: str) -> None:
        """Give up this process's claim on ``doc_id`` (no-op when it holds none)."""
        ...

    # --- maintenance ---

    def schema_version(self) -> str:
        """The schema the catalog is at (SQLite: ``user_version``; PostgreSQL: the Alembic revision)."""
        ...

    def scrub(self) -> None:
        """After an erasure: make erased rows unrecoverable from the catalog's files where it can."""
        ...

    def dump(self) -> dict[str, Any]:
        """Every source set and document as JSON-ready data (the exit bundle's catalog)."""
        ...

    def restore(self, dump: Mapping[str, Any]) -> int:
        """Load a :meth:`dump` into this empty catalog (``CatalogError`` if it holds any); rows loaded."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Quarantine(Protocol):
    """Documents the patient-data guard kept out of the index, until a privacy officer releases them.

    Lives next to the :class:`Catalog` (same backend), so every process sees one quarantine.
    """

    @property
    def location(self) -> str: ...

    def add(self, *, doc_id: str, source_set: str, source: str, sha256: str, reason: str,
            counts: dict[str, int]) -> QuarantineEntry:
        """Record a quarantined document (the same content again updates its entry, not a new one)."""
        ...

    def get(self, entry_id: str) -> QuarantineEntry | None: ...

    def list(self, include_released: bool = False) -> list[QuarantineEntry]:
        """Ordered by when they were quarantined, then source."""
        ...

    def release(self, entry_id: str, *, by: str, reason: str) -> QuarantineEntry:
        """Release one entry (``QuarantineError``: no reason, unknown id, already released)."""
        ...

    def released_sha256(self, doc_id: str) -> tuple[str, ...]:
        """Contents of this document a privacy officer released (indexed without the guard)."""
        ...

    def resolve(self, doc_id: str) -> None:
        """The document was indexed in a clean version (or erased): its open entries are moot."""
        ...

    def dump(self) -> dict[str, Any]:
        """Every entry as JSON-ready data (the catalog dump format, table ``quarantine``)."""
        ...

    def restore(self, dump: Mapping[str, Any]) -> int:
        """Load a :meth:`dump` into this empty quarantine; entries loaded."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class FeedbackLog(Protocol):
    """Answer receipts (ids and versions; texts only as the settings allow) and staff votes on them.

    Lives next to the :class:`Catalog` (same backend), so every API replica records to one log.
    """

    @property
    def location(self) -> str: ...

    def record_answer(self, receipt: AnswerReceipt) -> None: ...

    def add(self, answer_id: str, user_id: str, vote: Vote, comment: str = "") -> str:
        """Store one vote on an answer this user was given (``UnknownAnswer`` otherwise); the feedback id."""
        ...

    def export(self, since: datetime | None = None) -> Iterator[FeedbackRow]:
        """Votes with their answer's receipt, oldest first."""
        ...

    def counts(self) -> dict[str, int]: ...

    def dump(self) -> dict[str, Any]:
        """Every receipt and vote (the catalog dump format, tables ``answers`` and ``feedback``)."""
        ...

    def restore(self, dump: Mapping[str, Any]) -> int:
        """Load a :meth:`dump` into this empty log; rows loaded."""
        ...

    def close(self) -> None: ...
