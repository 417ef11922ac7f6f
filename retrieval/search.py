"""The Retriever: access-filtered dense / sparse / hybrid search with result shaping.

Every search carries ``access_filter(identity)``; a request filter is intersected with it.

Relevance gate (so that serving can abstain instead of answering from noise): when the
best hit is not relevant enough, ``search`` returns nothing.

- ``dense``: the best cosine similarity must reach ``min_dense_score``;
- ``sparse``: the best BM25 score must reach ``min_score``;
- ``hybrid``: fused RRF scores are rank-based and say nothing about relevance, so the gate
  is the best dense cosine among the visible chunks (one extra ``limit=1`` dense query with
  the same filter) against ``min_dense_score``, plus ``min_score`` on the fused score, plus
  at least one lexical match among the visible chunks (one ``limit=1`` sparse query). The
  packaged English-centred embedder gives unrelated Dutch texts cosines of 0.4 and more, so
  the lexical condition is what lets an off-topic Dutch question abstain.

Query-adaptive fusion (``fusion.adaptive``, on by default): a hybrid query first asks for the
best sparse hit and measures its lexical coverage, the share of the query's terms it holds.
A paraphrase that BM25 cannot match (coverage below ``coverage_dense_below``) is ranked by dense
alone, so a weak lexical side cannot drag the fusion below dense (an English FAQ set: dense
0.914, fused 0.762 nDCG@10 before this); a partial match (below ``coverage_fuse_from``) gets a
dense-leaning weighted RRF; a good match the configured fusion. Every request stays one query
in Qdrant's API (a plain or a prefetch + fusion query); the relevance gate is unchanged.

Shaping: at most ``max_chunks_per_doc`` chunks per document; adjacent chunks (index i and
i+1, on the same page) of one document merged into one hit that keeps the first chunk's id
(and lists the others in ``merged_chunk_ids``, for the audit log) and page (so a citation's page is always exact), with
the texts joined (their overlap written once) and the better score; then ``top_k``.
An optional reranker reorders the candidates before shaping.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from readerwriterlock.rwlock import RWLockWrite

from retrieval.access import current_filter, restrict
from retrieval.analysis import LANGUAGES, guess_language
from retrieval.fusion import fuse
from vraagbaak_core.ports import Embedder, Reranker, SparseEncoder, VectorStore
from vraagbaak_core.settings import FusionSettings, RetrievalSettings, Settings
from vraagbaak_core.types import (
    FusionParams,
    Hit,
    Identity,
    SearchFilter,
    SearchMode,
    SparseVector,
    StoreQuery,
)


def fusion_params(settings: RetrievalSettings) -> FusionParams:
    f = settings.fusion
    return FusionParams(method=f.method, k=f.k, weights=(f.dense_weight, f.sparse_weight))


def lexical_coverage(
    query: SparseVector, document: SparseVector, translations: Mapping[int, Collection[int]] | None = None
) -> float:
    """Share of the query's full-weight terms (compound pieces weigh less) found in ``document``;
    a term also counts as found when one of its ``translations`` (other-language care terms) is."""
    if query.is_empty():
        return 0.0
    top = max(query.values)
    terms = [i for i, v in zip(query.indices, query.values, strict=True) if v >= top]
    present = set(document.indices)
    tr = translations or {}
    return sum(1 for t in terms if t in present or not present.isdisjoint(tr.get(t, ()))) / len(terms)


def join_overlapping(first: str, second: str, max_overlap: int = 2000) -> str:
    """``first`` + ``second`` with the longest suffix of ``first`` that starts ``second`` written once."""
    limit = min(len(first), len(second), max_overlap)
    for size in range(limit, 0, -1):
        if first.endswith(second[:size]):
            return first + second[size:]
    return f"{first}\n{second}"


def merge_run(hits: Sequence[Hit]) -> Hit:
    """One hit for a run of adjacent chunks of one document (sorted by index)."""
    text = hits[0].chunk.text
    for h in hits[1:]:
        text = join_overlapping(text, h.chunk.text)
    merged = tuple(i for h in hits[1:] for i in h.shown_chunk_ids)
    units = tuple(u for h in hits for u in h.chunk.units)
    return Hit(
        chunk=replace(hits[0].chunk, text=text, units=units), score=max(h.score for h in hits),
        merged_chunk_ids=(*hits[0].merged_chunk_ids, *merged),
    )


def shape(hits: Sequence[Hit], top_k: int, max_per_doc: int, merge_adjacent: bool) -> list[Hit]:
    """Cap chunks per document, merge adjacent ones, keep the ``top_k`` best (hits come best first)."""
    per_doc: dict[str, list[Hit]] = {}
    rank: dict[str, int] = {}
    for i, h in enumerate(hits):
        kept = per_doc.setdefault(h.chunk.doc_id, [])
        if len(kept) < max_per_doc and all(k.chunk.chunk_id != h.chunk.chunk_id for k in kept):
            kept.append(h)
            rank[h.chunk.chunk_id] = i
    shaped: list[tuple[float, int, Hit]] = []
    for kept in per_doc.values():
        if not merge_adjacent:
            shaped.extend((h.score, rank[h.chunk.chunk_id], h) for h in kept)
            continue
        ordered = sorted(kept, key=lambda h: h.chunk.index)
        run = [ordered[0]]
        for h in ordered[1:]:
            if h.chunk.index == run[-1].chunk.index + 1 and h.chunk.page == run[-1].chunk.page:
                run.append(h)
                continue
            shaped.append(
                (max(x.score for x in run), min(rank[x.chunk.chunk_id] for x in run), merge_run(run))
            )
            run = [h]
        shaped.append((max(x.score for x in run), min(rank[x.chunk.chunk_id] for x in run), merge_run(run)))
    shaped.sort(key=lambda t: (-t[0], t[1]))
    return [h for _, _, h in shaped[:top_k]]


class Retriever:
    def __init__(
        self,
        embedder: Embedder,
        sparse_encoder: SparseEncoder,
        store: VectorStore,
        settings: RetrievalSettings,
        reranker: Reranker | None = None,
    ) -> None:
        self.embedder = embedder
        self.sparse_encoder = sparse_encoder
        self.store = store
        self.settings = settings
        self.reranker = reranker
        self.fusion = fusion_params(settings)
        # a search embeds with one embedder and queries the collection it filled: it holds the reader
        # lock from embedding to the store's answer; ``switch`` (a reindex in the API) the writer lock
        self._index = RWLockWrite()

    def switch(self, embedder: Embedder, store: VectorStore) -> None:
        """Search with ``embedder`` in ``store`` from now on (both at once). On return no search is
        still using the old pair, so the caller may close the old store."""
        with self._index.gen_wlock():
            self.embedder, self.store = embedder, store

    def _request(
        self, query: str, flt: SearchFilter, mode: SearchMode, limit: int, prefetch_limit: int | None = None
    ) -> StoreQuery:
        dense = self.embedder.embed_query(query).tolist() if mode in ("dense", "hybrid") else None
        sparse = self.sparse_encoder.encode_query(query) if mode in ("sparse", "hybrid") else None
        return StoreQuery(
            mode=mode,
            limit=limit,
            dense=dense,
            sparse=sparse,
            filter=flt,
            prefetch_limit=max(prefetch_limit or self.settings.prefetch_limit, limit),
            fusion=self.fusion,
        )

    def _run(self, request: StoreQuery, text: str) -> tuple[list[Hit], list[Hit], list[Hit]]:
        """(hits, dense candidates, sparse candidates): one store round trip in every mode.

        A hybrid request fetches both candidate lists in one ``query_batch`` and fuses them
        here (retrieval.fusion), so the relevance gate and the lexical coverage need no query
        of their own."""
        if request.mode != "hybrid":
            hits = self.store.query(request)
            return hits, [], []
        depth = request.prefetch_limit
        dense_req = replace(request, mode="dense", sparse=None, limit=depth)
        if request.sparse is None or request.sparse.is_empty():
            dense = self.store.query(dense_req)
            sparse: list[Hit] = []
        else:
            dense, sparse = self.store.query_batch(
                [dense_req, replace(request, mode="sparse", dense=None, limit=depth)]
            )
        coverage = self._coverage(request.sparse, sparse, text)
        params = choose_fusion(self.settings.fusion, self.fusion, coverage, crosses_language(text, sparse))
        hits = dense[: request.limit] if params is None else fuse(dense, sparse, params, request.limit)
        return hits, dense, sparse

    def retrieve_raw(
        self,
        query: str,
        identity: Identity,
        request_filter: SearchFilter | None = None,
        mode: SearchMode | None = None,
        limit: int = 100,
    ) -> list[Hit]:
        """Chunks best first, access-filtered, without gate or shaping (for evaluation)."""
        flt = self._filter(identity, request_filter)
        with self._index.gen_rlock():
            return self._run(self._request(query, flt, mode or self.settings.mode, limit), query)[0]

    def search(
        self,
        query: str,
        identity: Identity,
        request_filter: SearchFilter | None = None,
        top_k: int | None = None,
        mode: SearchMode | None = None,
    ) -> list[Hit]:
        """Shaped hits for ``query``, or ``[]`` when the best one is below the relevance gate."""
        s = self.settings
        mode = mode or s.mode
        top_k = top_k or s.top_k
        flt = self._filter(identity, request_filter)
        limit = top_k * (s.max_chunks_per_doc + 1)
        if self.reranker is not None:
            limit = max(limit, s.reranker.candidates)
        with self._index.gen_rlock():
            request = self._request(query, flt, mode, limit)
            hits, dense, sparse = self._run(request, query)
        if not hits or not self._passes_gate(request, hits[0].score, dense, sparse):
            return []
        if self.reranker is not None:
            hits = self.reranker.rerank(query, hits, len(hits))
        return shape(hits, top_k, s.max_chunks_per_doc, s.merge_adjacent)

    def _filter(self, identity: Identity, request_filter: SearchFilter | None) -> SearchFilter:
        """The access filter ∩ the request's, and (by default) current documents only."""
        flt = restrict(identity, request_filter)
        if self.settings.current_only:
            flt = flt.intersect(current_filter())
        return flt

    def _coverage(self, query: SparseVector | None, sparse: Sequence[Hit], text: str) -> float:
        """Coverage of the sparse query by its best visible sparse hit (0 without one), a query
        term's other-language care terms standing in for it."""
        if query is None or query.is_empty() or not sparse:
            return 0.0
        chunk = sparse[0].chunk
        document = self.sparse_encoder.encode_document(chunk.text, chunk.language)
        return lexical_coverage(query, document, self.sparse_encoder.query_translations(text))

    def _passes_gate(
        self, request: StoreQuery, best: float, dense: Sequence[Hit], sparse: Sequence[Hit]
    ) -> bool:
        s = self.settings
        if best < s.min_score:
            return False
        if request.mode == "dense":
            return best >= s.min_dense_score
        if request.mode == "hybrid":
            if not dense or dense[0].score < s.min_dense_score:
                return False
            return bool(sparse)  # at least one lexical match among the visible chunks
        return True


def crosses_language(query: str, sparse: Sequence[Hit]) -> bool:
    """Whether the best sparse hit is in another language than the query (known from stopwords)."""
    if not sparse:
        return False
    language = guess_language(query)
    return language is not None and sparse[0].chunk.language in LANGUAGES and sparse[0].chunk.language != language


def choose_fusion(
    settings: FusionSettings, fixed: FusionParams, coverage: float, cross: bool = False
) -> FusionParams | None:
    """The fusion for a hybrid query whose best sparse hit covers ``coverage`` of its terms
    (None: rank by dense alone). Without ``adaptive``, always ``fixed``. ``cross``: that hit is
    in the other language (it matched through care-term translations), where the embedder
    scores every document in the query's own language higher, so the sparse side weighs
    ``cross_language_sparse_weight``."""
    if not settings.adaptive:
        return fixed
    if coverage < settings.coverage_dense_below:
        return None
    if cross and settings.cross_language_sparse_weight is not None:
        return FusionParams(fixed.method, fixed.k, (fixed.weights[0], settings.cross_language_sparse_weight))
    if coverage < settings.coverage_fuse_from:
        return FusionParams("rrf", settings.band_k, (1.0, settings.band_sparse_weight))
    return fixed


def build_retriever(
    settings: Settings, embedder: Embedder | None = None, store: VectorStore | None = None
) -> Retriever:
    """Wire embedder, sparse encoder, store and (if enabled) reranker from the settings."""
    from retrieval.analysis import encoder_from_settings
    from retrieval.stores import build_store

    if embedder is None:
        from retrieval.embedders import build_embedder

        embedder = build_embedder(settings.embedder)
    if store is None:
        store = build_store(settings)
    store.ensure_collection(embedder.dimension, embedder.name)
    reranker: Reranker | None = None
    if settings.retrieval.reranker.enabled:
        from retrieval.rerank import CrossEncoderReranker

        reranker = CrossEncoderReranker.from_settings(settings)
    return Retriever(
        embedder, encoder_from_settings(settings.retrieval.sparse), store, settings.retrieval, reranker
    )
