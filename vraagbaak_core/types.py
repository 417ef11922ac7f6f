"""Typed domain objects shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SearchMode = Literal["dense", "sparse", "hybrid"]

# Classification labels, lowest to highest. A caller cleared for a level sees that
# level and everything below it.
CLASSIFICATIONS: tuple[str, ...] = ("openbaar", "intern", "vertrouwelijk", "geheim")
PUBLIC_GROUP = "__public__"


def classification_level(label: str) -> int:
    """Numeric level of a classification label; raises ValueError naming the allowed values."""
    try:
        return CLASSIFICATIONS.index(label)
    except ValueError:
        raise ValueError(
            f"unknown classification {label!r}; allowed: {', '.join(CLASSIFICATIONS)}"
        ) from None


@dataclass(frozen=True)
class SparseVector:
    indices: tuple[int, ...]
    values: tuple[float, ...]

    def is_empty(self) -> bool:
        return not self.indices


DOC_STATUSES: tuple[str, ...] = ("concept", "vastgesteld", "vervallen")
# Where a document stands for answering: set by ingest from its status and its family.
LIFECYCLES: tuple[str, ...] = ("current", "superseded", "vervallen")


@dataclass(frozen=True)
class DocControl:
    """Document-control metadata (quality-system fields); dates are ISO ``YYYY-MM-DD`` strings."""

    owner: str | None = None
    version: str | None = None
    status: str | None = None  # one of DOC_STATUSES, or None when the document states none
    valid_from: str | None = None
    review_date: str | None = None
    expires: str | None = None
    family: str | None = None
    supersedes: tuple[str, ...] = ()
    lifecycle: str = "current"  # one of LIFECYCLES
    # the day a newer version of the family takes over (its valid_from): from then on this one no
    # longer answers (set by ingest, enforced at query time, so no re-ingest is needed on that day)
    until: str | None = None

    def is_empty(self) -> bool:
        return self == DocControl(lifecycle=self.lifecycle)

    def to_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner, "version": self.version, "status": self.status,
            "valid_from": self.valid_from, "review_date": self.review_date, "expires": self.expires,
            "family": self.family, "supersedes": list(self.supersedes), "lifecycle": self.lifecycle,
            "until": self.until,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> DocControl:
        if not d:
            return cls()

        def opt(key: str) -> str | None:
            v = d.get(key)
            return None if v is None else str(v)

        return cls(
            owner=opt("owner"), version=opt("version"), status=opt("status"),
            valid_from=opt("valid_from"), review_date=opt("review_date"), expires=opt("expires"),
            family=opt("family"), supersedes=tuple(str(x) for x in d.get("supersedes") or ()),
            lifecycle=str(d.get("lifecycle") or "current"), until=opt("until"),
        )


def day_number(iso: str) -> int:
    """``2026-03-01`` → 20260301: an integer that orders like the date (for range filters)."""
    return int(iso[:10].replace("-", ""))


def control_days(control: DocControl) -> dict[str, int | None]:
    """The payload fields the query-time filter (``retrieval.access.current_filter``) reads: the day a
    document expires, the day a newer version takes over (``until_day``), and its own first day, negated
    (``starts_day_neg``: "starts after today" is then a ``<=`` range, the one range the stores take)."""
    return {
        "expires_day": day_number(control.expires) if control.expires else None,
        "until_day": day_number(control.until) if control.until else None,
        "starts_day_neg": -day_number(control.valid_from) if control.valid_from else None,
    }


@dataclass(frozen=True)
class UnitVectors:
    """The quotable units of a chunk with their vectors, computed at ingest (``retrieval.unit_vectors``).

    ``vectors`` are the L2-normalised embeddings quantised to int8 (row-major, ``len(texts)`` × ``dim``),
    each row scaled by its ``scales`` entry; ``embedder`` names the model that made them."""

    embedder: str
    dim: int
    texts: tuple[str, ...]
    vectors: bytes
    scales: tuple[float, ...]
    kinds: tuple[str, ...] = ()  # "sentence", "row" or "steps" per unit (retrieval.units)
    keys: tuple[str, ...] = ()  # a table row's key cell, else ""

    def to_payload(self) -> dict[str, Any]:
        import base64

        return {"embedder": self.embedder, "dim": self.dim, "texts": list(self.texts),
                "q": base64.b64encode(self.vectors).decode("ascii"), "scales": list(self.scales),
                "kinds": list(self.kinds), "keys": list(self.keys)}

    @classmethod
    def from_payload(cls, d: dict[str, Any]) -> UnitVectors:
        import base64

        return cls(str(d["embedder"]), int(d["dim"]), tuple(str(t) for t in d["texts"]),
                   base64.b64decode(d["q"]), tuple(float(x) for x in d["scales"]),
                   tuple(str(k) for k in d.get("kinds") or ()), tuple(str(k) for k in d.get("keys") or ()))


@dataclass(frozen=True)
class Chunk:
    """One retrievable piece of a document, with everything its citation needs."""

    chunk_id: str
    doc_id: str
    index: int
    text: str
    title: str
    source: str
    page: int | None = None
    section: str | None = None
    groups: tuple[str, ...] = ()
    classification: str = "intern"
    language: str = "nl"
    doc_sha256: str = ""
    ingested_at: str = ""
    control: DocControl = field(default_factory=DocControl)
    # quotable units with vectors made at ingest; several after adjacent chunks were merged into one hit
    units: tuple[UnitVectors, ...] = ()

    def payload(self) -> dict[str, Any]:
        control = self.control.to_dict()
        lifecycle = control.pop("lifecycle")
        extra: dict[str, Any] = {"control": control, "lifecycle": lifecycle}
        extra.update({k: v for k, v in control_days(self.control).items() if v is not None})
        if self.units:
            extra["units"] = [u.to_payload() for u in self.units]
        return extra | {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "index": self.index,
            "text": self.text,
            "title": self.title,
            "source": self.source,
            "page": self.page,
            "section": self.section,
            "groups": list(self.groups),
            "classification": self.classification,
            "classification_level": classification_level(self.classification),
            "language": self.language,
            "doc_sha256": self.doc_sha256,
            "ingested_at": self.ingested_at,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Chunk:
        return cls(
            chunk_id=str(payload["chunk_id"]),
            doc_id=str(payload["doc_id"]),
            index=int(payload["index"]),
            text=str(payload.get("text", "")),
            title=str(payload.get("title", "")),
            source=str(payload.get("source", "")),
            page=payload.get("page"),
            section=payload.get("section"),
            groups=tuple(payload.get("groups") or ()),
            classification=str(payload.get("classification", "intern")),
            language=str(payload.get("language", "nl")),
            doc_sha256=str(payload.get("doc_sha256", "")),
            ingested_at=str(payload.get("ingested_at", "")),
            control=DocControl.from_dict(
                {**(payload.get("control") or {}), "lifecycle": payload.get("lifecycle") or "current"}
            ),
            units=_units_of(payload.get("units")),
        )


def _units_of(raw: Any) -> tuple[UnitVectors, ...]:
    """Stored unit vectors of a payload; a malformed entry is left out (they are recomputed then)."""
    out: list[UnitVectors] = []
    for d in raw if isinstance(raw, list) else []:
        try:
            out.append(UnitVectors.from_payload(d))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(out)


@dataclass(frozen=True)
class StoredPoint:
    """A chunk with its vectors, ready to be written to a vector store."""

    chunk: Chunk
    dense: list[float]
    sparse: SparseVector | None = None


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    merged_chunk_ids: tuple[str, ...] = ()  # adjacent chunks merged into this hit after the first

    @property
    def shown_chunk_ids(self) -> tuple[str, ...]:
        """Every chunk whose text this hit shows (the audit log names each)."""
        return (self.chunk.chunk_id, *self.merged_chunk_ids)


# --- filters: a tiny backend-neutral language, translated by each store adapter ---


@dataclass(frozen=True)
class MatchAny:
    """Payload field ``key`` equals one of ``values`` (for a list field: shares one)."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class RangeLte:
    key: str
    value: float


Condition = MatchAny | RangeLte


@dataclass(frozen=True)
class SearchFilter:
    """A conjunction of conditions. Intersection is concatenation, never replacement."""

    must: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()  # a point matching any of these is excluded

    def intersect(self, other: SearchFilter | None) -> SearchFilter:
        if other is None:
            return self
        return SearchFilter(must=self.must + other.must, must_not=self.must_not + other.must_not)


@dataclass(frozen=True)
class FusionParams:
    method: Literal["rrf", "dbsf"] = "rrf"
    k: int = 60
    weights: tuple[float, float] = (1.0, 1.0)  # (dense, sparse)


@dataclass(frozen=True)
class StoreQuery:
    mode: SearchMode
    limit: int
    dense: list[float] | None = None
    sparse: SparseVector | None = None
    filter: SearchFilter | None = None
    prefetch_limit: int = 50
    fusion: FusionParams = field(default_factory=FusionParams)


# --- identity ---


@dataclass(frozen=True)
class Identity:
    user_id: str
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    clearance: str = "openbaar"
    auth_method: str = "none"
    manages: frozenset[str] = frozenset()  # groups whose documents an ingest identity manages

    def has_role(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles


# --- documents as loaders see them ---


@dataclass(frozen=True)
class Block:
    """A run of text with its place in the document (page and/or section heading)."""

    text: str
    page: int | None = None
    heading: str | None = None


@dataclass
class ParsedDocument:
    title: str
    format: str
    blocks: list[Block]
    # the file's own properties (PDF info, DOCX/ODT metadata, Markdown front matter), raw
    properties: dict[str, Any] = field(default_factory=dict)
    ocr_pages: int = 0  # pages read with OCR (ingest.ocr)
    notes: list[str] = field(default_factory=list)  # what the report should say about it (pages skipped …)
    pages: int | None = None  # the whole document's page count, where the format has pages

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)


# --- chat ---


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    title: str
    chunk_id: str
    score: float
    snippet: str
    page: int | None = None
    section: str | None = None
    source: str = ""
    method: str = "marker"  # "marker": the model wrote [n]; "overlap": attributed by shared words
    control: DocControl = field(default_factory=DocControl)


@dataclass(frozen=True)
class Suggestion:
    """A document offered with an abstention as "misschien relevant" (the nearest retrieved ones)."""

    doc_id: str
    title: str
    source: str = ""
    page: int | None = None


ClaimStatus = Literal["supported", "unsupported", "unverifiable"]


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer, checked against the source(s) it cites (serving.staff.answer_check).

    ``kind`` names what did not match (``number``, ``unit``, ``threshold``, ``negation``, ``actor``,
    ``citation``) or why nothing could be checked (``no_marker``, ``nothing_checkable``).
    """

    sentence: str
    status: ClaimStatus
    cites: tuple[int, ...] = ()
    reason: str | None = None
    kind: str | None = None


@dataclass
class Answer:
    text: str
    citations: list[Citation]
    abstained: bool = False
    hits: list[Hit] = field(default_factory=list)
    # "generative": written by a language model; "extractive": sentences of the sources, verbatim.
    mode: Literal["generative", "extractive"] = "generative"
    # Set when the language model was unavailable and the extractive answerer stood in:
    # why ("unreachable" or "busy"), and the line shown to the user.
    fallback: str | None = None
    notice: str | None = None
    # with an abstention because the sources do not answer: the nearest documents, best first
    maybe_relevant: list[Suggestion] = field(default_factory=list)
    # each sentence of the answer checked against its cited sources (serving.staff.answer_check), and what
    # the check did to the answer: None (kept as written), "dropped" (unsupported sentences removed),
    # "fallback" (replaced by the extractive answer; then ``fallback`` is "answer_check")
    claims: list[Claim] = field(default_factory=list)
    check_action: Literal["dropped", "fallback"] | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One stored line of an audit chain, in chain order, as an audit sink holds it.

    ``position`` is the file's 1-based line number or the database's sequence number; ``raw`` the exact
    stored JSON text; ``complete`` is False only for a torn last line of a file.
    """

    position: int
    raw: str
    complete: bool = True


# --- the catalog (everything that is not vectors; see ``ports.Catalog``) ---

UPLOAD_SET = "uploads"  # the source set of documents uploaded through the API
DOC_RECORD_STATUSES: tuple[str, ...] = ("writing", "done", "deleting")


@dataclass(frozen=True)
class SourceSet:
    """A named root folder documents were ingested from."""

    name: str
    root: str


@dataclass
class DocRecord:
    """One document as the catalog knows it: identity, labels, control metadata and write state.

    ``status``: ``writing`` (``pending_ids`` are being upserted), ``done``, or ``deleting``;
    ``stale_ids``: points of the previous version still to delete after a commit.
    """

    doc_id: str
    source: str
    root: str
    sha256: str = ""
    labels_fp: str = ""
    title: str = ""
    format: str = ""
    groups: tuple[str, ...] = ()
    classification: str = ""
    language: str = ""
    size: int = 0
    chunk_ids: list[str] = field(default_factory=list)
    pending_ids: list[str] | None = None
    stale_ids: list[str] | None = None
    status: str = "done"
    ingested_at: str = ""
    source_set: str = ""
    control: dict[str, Any] = field(default_factory=dict)

    @property
    def committed(self) -> bool:
        """A version of this document is fully written (maybe with a newer one in progress)."""
        return bool(self.sha256)


@dataclass
class QuarantineEntry:
    """A document the patient-data guard kept out of the index: counts per kind and the reason, never values."""

    id: str
    doc_id: str
    source_set: str
    source: str
    sha256: str
    reason: str
    counts: dict[str, int] = field(default_factory=dict)
    quarantined_at: str = ""
    released_at: str | None = None
    released_by: str | None = None
    release_reason: str | None = None

    @property
    def released(self) -> bool:
        return self.released_at is not None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self) | {"released": self.released}


# --- answer receipts and staff feedback (see ``ports.FeedbackLog``) ---

Vote = Literal["up", "down"]


def _utc_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class CitedDocument:
    doc_id: str
    version: str
    chunk_id: str = ""


@dataclass(frozen=True)
class AnswerReceipt:
    answer_id: str
    user_id: str
    documents: tuple[CitedDocument, ...]
    question: str | None = None
    answer_text: str | None = None
    mode: str | None = None
    abstained: bool = False
    created_at: str = field(default_factory=lambda: _utc_now())


@dataclass(frozen=True)
class FeedbackRow:
    feedback_id: str
    created_at: str
    answer_id: str
    vote: Vote
    comment: str
    question: str | None
    documents: tuple[CitedDocument, ...]
    mode: str | None
    answer_text: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "feedback_id": self.feedback_id, "created_at": self.created_at, "answer_id": self.answer_id,
            "vote": self.vote, "comment": self.comment, "question": self.question,
            "documents": [{"doc_id": d.doc_id, "version": d.version} for d in self.documents],
            "mode": self.mode, "answer": self.answer_text,
        }
