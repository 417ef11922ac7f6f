"""The Retriever: modes, result shaping and the relevance gate, on a real Edge shard and embedder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from retrieval_fixtures import DOCS, chunk_id, corpus_chunks, corpus_points, embedder

from retrieval.analysis import Bm25SparseEncoder
from retrieval.search import Retriever, build_retriever, join_overlapping, shape
from retrieval.stores.edge import EdgeStore
from vraagbaak_core.settings import RetrievalSettings, load_settings
from vraagbaak_core.types import PUBLIC_GROUP, Hit, Identity

NURSE = Identity("nurse", groups=frozenset({"verpleging"}), clearance="intern")
PUBLIC = Identity("guest", clearance="openbaar")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeStore]:
    s = EdgeStore(tmp_path_factory.mktemp("search") / "shard")
    s.ensure_collection(embedder().dimension)
    s.upsert(list(corpus_points()))
    yield s
    s.close()


def make(store: EdgeStore, **overrides: object) -> Retriever:
    return Retriever(embedder(), Bm25SparseEncoder(), store, RetrievalSettings(**overrides))  # type: ignore[arg-type]


def _hit(doc: str, index: int, score: float, text: str | None = None) -> Hit:
    chunk = next(c for c in corpus_chunks() if c.doc_id == doc and c.index == index)
    return Hit(chunk=replace(chunk, text=text) if text is not None else chunk, score=score)


def test_shape_caps_chunks_per_document() -> None:
    hits = [_hit("hygiene", 0, 0.9), _hit("hygiene", 2, 0.8), _hit("bezoek", 0, 0.7), _hit("hygiene", 3, 0.6)]
    shaped = shape(hits, top_k=10, max_per_doc=2, merge_adjacent=False)
    assert [(h.chunk.doc_id, h.chunk.index) for h in shaped] == [
        ("hygiene", 0),
        ("hygiene", 2),
        ("bezoek", 0),
    ]


def test_shape_merges_adjacent_chunks_keeping_the_first() -> None:
    hits = [_hit("hygiene", 1, 0.7, "b c d"), _hit("bezoek", 0, 0.8), _hit("hygiene", 0, 0.9, "a b c")]
    shaped = shape(hits, top_k=10, max_per_doc=3, merge_adjacent=True)
    assert len(shaped) == 2
    merged = shaped[0]
    assert merged.chunk.chunk_id == chunk_id("hygiene", 0)
    assert merged.chunk.page == 1 and merged.chunk.index == 0
    assert merged.chunk.text == "a b c d"  # the overlap "b c" written once
    assert merged.score == 0.9
    assert shaped[1].chunk.doc_id == "bezoek"


def test_shape_does_not_merge_non_adjacent_and_respects_top_k() -> None:
    hits = [
        _hit("hygiene", 0, 0.9),
        _hit("hygiene", 2, 0.85),
        _hit("bezoek", 0, 0.8),
        _hit("dossier", 0, 0.7),
    ]
    shaped = shape(hits, top_k=2, max_per_doc=3, merge_adjacent=True)
    assert [(h.chunk.doc_id, h.chunk.index) for h in shaped] == [("hygiene", 0), ("hygiene", 2)]


def test_join_overlapping() -> None:
    assert join_overlapping("de handen wassen", "handen wassen met zeep") == "de handen wassen met zeep"
    assert join_overlapping("eerste deel.", "tweede deel.") == "eerste deel.\ntweede deel."


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_search_finds_the_right_document(store: EdgeStore, mode: str) -> None:
    r = make(store, top_k=3)
    hits = r.search("handen desinfecteren met handalcohol", NURSE, mode=mode)  # type: ignore[arg-type]
    assert hits and hits[0].chunk.doc_id == "hygiene"
    assert len(hits) <= 3


def test_the_multilingual_default_ranks_a_dutch_question_right_in_every_mode(store: EdgeStore) -> None:
    """English-only MiniLM ranked this Dutch question wrong in dense mode; multilingual-e5 does not."""
    r = make(store, top_k=3)
    question = "Wanneer moet ik mijn handen desinfecteren?"
    for mode in ("dense", "sparse", "hybrid"):
        assert r.search(question, NURSE, mode=mode)[0].chunk.doc_id == "hygiene", mode  # type: ignore[arg-type]


def test_cross_lingual_match_is_found_by_dense_and_gated_in_hybrid(store: EdgeStore) -> None:
    """An English question over a Dutch protocol, no term in common: multilingual-e5 finds it in
    dense mode, and the hybrid relevance gate, which needs one lexical match, abstains (its
    cosine, 0.82, is where off-topic questions score too)."""
    r = make(store, top_k=3)
    question = "Are nurses allowed to wear jewellery or watches at work?"
    assert r.search(question, NURSE, mode="dense")[0].chunk.doc_id == "hygiene"
    assert r.search(question, NURSE, mode="sparse") == []
    assert r.search(question, NURSE, mode="hybrid") == []
    assert r.retrieve_raw(question, NURSE, mode="hybrid")[0].chunk.doc_id == "hygiene"


def test_search_shapes_real_results(store: EdgeStore) -> None:
    r = make(store, top_k=10, max_chunks_per_doc=2, merge_adjacent=True, min_dense_score=0.0)
    hits = r.search("handhygiëne handalcohol zeep ringen nagels hygiëneploeg", NURSE)
    per_doc: dict[str, int] = {}
    for h in hits:
        per_doc[h.chunk.doc_id] = per_doc.get(h.chunk.doc_id, 0) + 1
    assert all(n <= 2 for n in per_doc.values())
    hygiene = [h for h in hits if h.chunk.doc_id == "hygiene"]
    raw = r.retrieve_raw("handhygiëne handalcohol zeep ringen nagels hygiëneploeg", NURSE, limit=50)
    assert len([h for h in raw if h.chunk.doc_id == "hygiene"]) == 4  # unshaped: every chunk
    # any two kept chunks that were adjacent are now one hit holding both texts
    texts = DOCS["hygiene"][3]
    for h in hygiene:
        assert h.chunk.text.startswith(texts[h.chunk.index])


def test_gate_returns_nothing_below_min_dense_score(store: EdgeStore) -> None:
    question = "Hoe laat mag ik op bezoek komen?"
    assert make(store, min_dense_score=0.2).search(question, PUBLIC, mode="dense")
    assert make(store, min_dense_score=0.99).search(question, PUBLIC, mode="dense") == []
    # hybrid: fused RRF scores say nothing about relevance; the gate uses the best dense cosine
    assert make(store, min_dense_score=0.2).search(question, PUBLIC, mode="hybrid")
    assert make(store, min_dense_score=0.99).search(question, PUBLIC, mode="hybrid") == []


def test_gate_min_score_on_sparse(store: EdgeStore) -> None:
    r = make(store, min_score=0.0)
    hits = r.search("norovirus", PUBLIC, mode="sparse")
    assert hits and hits[0].chunk.doc_id == "bezoek"
    best = hits[0].score
    assert make(store, min_score=best + 0.01).search("norovirus", PUBLIC, mode="sparse") == []


def test_gate_hybrid_counts_only_visible_chunks(store: EdgeStore) -> None:
    """A near-exact match the caller may not see must not open the gate."""
    # multilingual-e5 cosines sit in 0.75-0.97: the secret's own text scores 0.97, the best
    # visible chunk about 0.83
    r = make(store, min_dense_score=0.9)
    secret = DOCS["salaris"][3][0]
    assert r.search(secret, PUBLIC, mode="hybrid") == []
    director = Identity("d", groups=frozenset({"directie"}), clearance="geheim")
    assert r.search(secret, director, mode="hybrid")[0].chunk.doc_id == "salaris"


def test_off_topic_questions_abstain_at_default_settings(store: EdgeStore) -> None:
    r = make(store, min_dense_score=load_settings().retrieval.min_dense_score)
    assert r.search("xq zzv 9931 qqq", PUBLIC, mode="hybrid") == []  # low cosine
    # cosine 0.77 with multilingual-e5 (on-topic questions score 0.82-0.90), but no term in
    # common with any document: the lexical condition of the gate abstains
    assert r.search("Wie won het WK voetbal?", PUBLIC, mode="hybrid") == []
    assert r.search("Hoe laat mag ik op bezoek komen?", PUBLIC, mode="hybrid")


def test_build_retriever_from_settings(tmp_path: object) -> None:
    settings = load_settings(store={"backend": "qdrant", "url": ":memory:"})
    r = build_retriever(settings, embedder=embedder())
    assert r.reranker is None and r.fusion.method == settings.retrieval.fusion.method
    r.store.upsert(list(corpus_points()))
    hits = r.search("bezoektijden", PUBLIC)
    assert hits and all(PUBLIC_GROUP in h.chunk.groups for h in hits)
    r.store.close()


EVERYONE = Identity(
    "auditor", groups=frozenset({"verpleging", "apotheek", "ict", "onderzoek", "directie"}), clearance="geheim"
)


def _ranking(r: Retriever, question: str, mode: str) -> list[tuple[str, int]]:
    hits = r.retrieve_raw(question, EVERYONE, mode=mode, limit=5)  # type: ignore[arg-type]
    return [(h.chunk.doc_id, h.chunk.index) for h in hits]


def test_adaptive_fusion_ranks_a_paraphrase_like_dense(store: EdgeStore) -> None:
    """BM25's only hit for this paraphrase is noise (one common term); the fusion must not promote it."""
    question = "Who may read my medical records?"
    adaptive = make(store)
    static = make(store, fusion={"adaptive": False, "sparse_weight": 1.0})  # equal-weight DBSF, always
    sparse_top = _ranking(adaptive, question, "sparse")[0]
    assert sparse_top[0] == "medicatie"
    assert _ranking(static, question, "hybrid")[0] == sparse_top  # fixed fusion puts the noise first
    assert _ranking(adaptive, question, "hybrid") == _ranking(adaptive, question, "dense")


def test_adaptive_fusion_still_fuses_a_term_heavy_query(store: EdgeStore) -> None:
    question = "interpreters patient service desk"
    adaptive, static = make(store), make(store, fusion={"adaptive": False})
    fused = _ranking(adaptive, question, "hybrid")
    assert fused == _ranking(static, question, "hybrid")
    assert fused[0] == ("visitors", 0)
    # the fused scores (DBSF), not dense's cosines: the query was fused, not sent to dense alone
    scores = [h.score for h in adaptive.retrieve_raw(question, EVERYONE, mode="hybrid", limit=5)]
    assert scores == [h.score for h in static.retrieve_raw(question, EVERYONE, mode="hybrid", limit=5)]
    assert scores != [h.score for h in adaptive.retrieve_raw(question, EVERYONE, mode="dense", limit=5)]


class _Counting:
    """A real store that counts the calls the Retriever makes (each is one round trip on a server)."""

    def __init__(self, inner: EdgeStore) -> None:
        self.inner, self.calls = inner, 0

    def query(self, request: object) -> list[Hit]:
        self.calls += 1
        return self.inner.query(request)  # type: ignore[arg-type]

    def query_batch(self, requests: list[object]) -> list[list[Hit]]:
        self.calls += 1
        return self.inner.query_batch(requests)  # type: ignore[arg-type]


@pytest.mark.parametrize("adaptive", [True, False])
@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_a_search_is_one_store_round_trip(store: EdgeStore, mode: str, adaptive: bool) -> None:
    """Fusion, lexical coverage and the relevance gate all come from one (batched) store call."""
    counting = _Counting(store)
    r = Retriever(embedder(), Bm25SparseEncoder(), counting, RetrievalSettings(fusion={"adaptive": adaptive}))  # type: ignore[arg-type]
    hits = r.search("handalcohol desinfecteren handen", NURSE, mode=mode)  # type: ignore[arg-type]
    assert hits and hits[0].chunk.doc_id == "hygiene"
    assert counting.calls == 1
    r.search("Wie won het WK voetbal in 1974?", NURSE, mode=mode)  # type: ignore[arg-type]
    assert counting.calls == 2
