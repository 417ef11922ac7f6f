"""VectorStore contract: every adapter behaves the same (Haystack document-store test pattern).

Runs against Qdrant Edge (a shard in tmp_path), qdrant-client's local mode (``:memory:``)
and a real Qdrant server when ``QDRANT_URL`` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from retrieval_fixtures import DOCS, corpus_points, embedder

from retrieval.access import access_filter, current_filter
from retrieval.analysis import Bm25SparseEncoder
from retrieval.stores.edge import EdgeStore, switch_shard
from retrieval.stores.qdrant import QdrantStore
from vraagbaak_core.errors import EmbedderMismatch
from vraagbaak_core.ports import VectorStore
from vraagbaak_core.types import (
    DocControl,
    FusionParams,
    Identity,
    MatchAny,
    RangeLte,
    SearchFilter,
    SearchMode,
    StoredPoint,
    StoreQuery,
)

BACKENDS = ["edge", "qdrant-memory", "qdrant-server"]
QUERIES = [
    "Hoe laat mag ik op bezoek komen?",
    "handen desinfecteren voor patiëntcontact",
    "dossier inzien",
    "Can visitors get an interpreter?",
    "wachtwoord lengte",
]


def make_store(backend: str, tmp_path: Path) -> VectorStore:
    if backend == "edge":
        return EdgeStore(tmp_path / "shard")
    if backend == "qdrant-memory":
        return QdrantStore(":memory:", "contract")
    url = os.environ.get("QDRANT_URL")
    if not url:
        pytest.skip("QDRANT_URL is not set: the real Qdrant server leg of the contract suite is skipped")
    return QdrantStore(url, f"contract-{uuid.uuid4().hex[:10]}", api_key=os.environ.get("QDRANT_API_KEY"))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    s = make_store(request.param, tmp_path)
    s.ensure_collection(embedder().dimension)
    s.upsert(list(corpus_points()))
    yield s
    drop = getattr(s, "drop_collection", None)
    if request.param == "qdrant-server" and callable(drop):
        drop()
    s.close()


def _request(query: str, mode: SearchMode, flt: SearchFilter | None = None, limit: int = 10) -> StoreQuery:
    return StoreQuery(
        mode=mode,
        limit=limit,
        dense=embedder().embed_query(query).tolist(),
        sparse=Bm25SparseEncoder().encode_query(query),
        filter=flt,
        prefetch_limit=20,
        fusion=FusionParams(method="rrf", k=60, weights=(1.0, 1.0)),
    )


def _ranking(store: VectorStore, request: StoreQuery) -> list[tuple[float, str]]:
    """(score rounded, chunk id) best first; equal scores sorted by id so ties compare equal."""
    hits = store.query(request)
    return sorted(((round(h.score, 4), h.chunk.chunk_id) for h in hits), key=lambda t: (-t[0], t[1]))


@pytest.fixture(scope="module")
def both_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, VectorStore]]:
    """Edge and qdrant-client local mode holding the same corpus (read-only tests)."""
    stores = {}
    for backend in ("edge", "qdrant-memory"):
        s = make_store(backend, tmp_path_factory.mktemp(backend))
        s.ensure_collection(embedder().dimension)
        s.upsert(list(corpus_points()))
        stores[backend] = s
    yield stores
    for s in stores.values():
        s.close()


def _all_backends_rankings(
    stores: dict[str, VectorStore], request: StoreQuery
) -> dict[str, list[tuple[float, str]]]:
    return {name: _ranking(s, request) for name, s in stores.items()}


class TestVectorStoreContract:
    def test_count_and_upsert_payload_round_trip(self, store: VectorStore) -> None:
        total = sum(len(texts) for *_, texts in DOCS.values())
        assert store.count() == total
        assert store.count("hygiene") == 4
        point = corpus_points()[3]
        original = point.chunk
        hit = store.query(_request(original.text, "dense", limit=1))[0]
        assert hit.chunk == original
        # the cosine of the query vector and the stored one (e5: "query: " vs "passage: " of the same text)
        expected = float(np.dot(embedder().embed_query(original.text), np.asarray(point.dense)))
        assert expected > 0.95
        assert hit.score == pytest.approx(expected, abs=1e-3)

    def test_idempotent_upsert(self, store: VectorStore) -> None:
        before = store.count()
        store.upsert(list(corpus_points())[:5])
        store.upsert(list(corpus_points()))
        assert store.count() == before

    def test_upsert_replaces_payload(self, store: VectorStore) -> None:
        p = corpus_points()[0]
        changed = replace(p, chunk=replace(p.chunk, title="Nieuwe titel"))
        store.upsert([changed])
        hits = store.query(_request(p.chunk.text, "dense", limit=1))
        assert hits[0].chunk.chunk_id == p.chunk.chunk_id
        assert hits[0].chunk.title == "Nieuwe titel"

    @pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
    def test_modes_return_relevant_chunk_first(self, store: VectorStore, mode: SearchMode) -> None:
        hits = store.query(_request("handalcohol desinfecteren", mode))
        assert hits, mode
        assert hits[0].chunk.doc_id == "hygiene"
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)

    def test_query_batch_answers_each_request_in_order(self, store: VectorStore) -> None:
        requests = [
            _request("handalcohol desinfecteren", "dense"),
            _request("norovirus", "sparse"),
            _request("de het een", "sparse"),  # nothing to match: an empty answer in its place
            _request("bezoek voor patiënten", "hybrid"),
        ]
        batched = store.query_batch(requests)
        assert len(batched) == len(requests)
        for request, hits in zip(requests, batched, strict=True):
            ours = sorted(((round(h.score, 4), h.chunk.chunk_id) for h in hits), key=lambda t: (-t[0], t[1]))
            assert ours == _ranking(store, request)
        assert batched[2] == []
        assert store.query_batch([]) == []

    def test_sparse_matches_only_chunks_sharing_a_term(self, store: VectorStore) -> None:
        hits = store.query(_request("norovirus", "sparse"))
        assert [h.chunk.doc_id for h in hits] == ["bezoek"]
        assert store.query(_request("de het een", "sparse")) == []  # stopwords only: nothing to match

    def test_filter_match_any_on_list_field(self, store: VectorStore) -> None:
        flt = SearchFilter(must=(MatchAny("groups", ("apotheek",)),))
        for mode in ("dense", "sparse", "hybrid"):
            hits = store.query(_request("medicatie controleren insuline", mode, flt))  # type: ignore[arg-type]
            assert hits and {h.chunk.doc_id for h in hits} == {"medicatie"}

    def test_filter_range_lte(self, store: VectorStore) -> None:
        flt = SearchFilter(must=(RangeLte("classification_level", 0),))
        for mode in ("dense", "sparse", "hybrid"):
            hits = store.query(_request("wachtwoord salaris onderzoek bezoek", mode, flt, limit=50))  # type: ignore[arg-type]
            assert hits
            assert {h.chunk.classification for h in hits} == {"openbaar"}

    def test_access_filter_conjunction(self, store: VectorStore) -> None:
        ident = Identity(user_id="u", groups=frozenset({"verpleging"}), clearance="intern")
        hits = store.query(_request("protocol", "dense", access_filter(ident), limit=50))
        docs = {h.chunk.doc_id for h in hits}
        assert docs == {"bezoek", "hygiene", "dossier", "medicatie", "valpreventie", "visitors"}

    def test_must_not_excludes_matches_and_keeps_points_without_the_field(self, store: VectorStore) -> None:
        def with_control(doc_id: str, control: DocControl) -> list:  # type: ignore[type-arg]
            return [replace(p, chunk=replace(p.chunk, control=control))
                    for p in corpus_points() if p.chunk.doc_id == doc_id]

        store.upsert(with_control("hygiene", DocControl(status="vervallen", lifecycle="vervallen")))
        store.upsert(with_control("bezoek", DocControl(status="vastgesteld", expires="2026-03-01")))
        store.upsert(with_control("dossier", DocControl(status="vastgesteld", expires="2026-03-02")))
        flt = current_filter(date(2026, 3, 1))
        for mode in ("dense", "sparse", "hybrid"):
            hits = store.query(_request("handhygiëne bezoek dossier wachtwoord", mode, flt, limit=50))  # type: ignore[arg-type]
            docs = {h.chunk.doc_id for h in hits}
            assert "hygiene" not in docs and "bezoek" not in docs, mode  # vervallen; expired on its day
            assert "dossier" in docs and "beveiliging" in docs, mode  # valid one more day; no expiry field
        hit = store.query(_request("dossier inzien", "dense", flt, limit=1))[0]
        assert hit.chunk.control == DocControl(status="vastgesteld", expires="2026-03-02")

    def test_set_document_payload_changes_every_chunk_of_one_document(self, store: VectorStore) -> None:
        before = store.count()
        store.set_document_payload("hygiene", {"lifecycle": "superseded"})
        assert store.count() == before and store.count("hygiene") == 4
        hits = store.query(_request("handhygiëne desinfecteren", "hybrid", current_filter(), limit=50))
        assert hits and all(h.chunk.doc_id != "hygiene" for h in hits)
        unfiltered = store.query(_request("handhygiëne desinfecteren", "dense", limit=50))
        lifecycles = {h.chunk.doc_id: h.chunk.control.lifecycle for h in unfiltered}
        assert lifecycles["hygiene"] == "superseded" and lifecycles["bezoek"] == "current"
        store.set_document_payload("no-such-doc", {"lifecycle": "superseded"})  # a no-op, no error

    def test_delete_document_then_count_zero(self, store: VectorStore) -> None:
        ids = store.point_ids("hygiene")
        assert len(ids) == 4 and all(uuid.UUID(i) for i in ids)
        total = store.count()
        store.delete_document("hygiene")
        assert store.count("hygiene") == 0
        assert store.point_ids("hygiene") == []
        assert store.count() == total - 4
        hits = store.query(_request("handhygiëne", "hybrid", limit=50))
        assert all(h.chunk.doc_id != "hygiene" for h in hits)

    def test_delete_points(self, store: VectorStore) -> None:
        ids = store.point_ids("bezoek")
        store.delete_points(ids[:1])
        assert store.count("bezoek") == 2
        assert set(store.point_ids("bezoek")) == set(ids[1:])

    def test_ensure_collection_is_idempotent_and_checks_dimension(self, store: VectorStore) -> None:
        store.ensure_collection(embedder().dimension)
        assert store.count() > 0
        with pytest.raises(ValueError, match="dim"):
            store.ensure_collection(embedder().dimension + 1)

    def test_bad_point_id_is_refused(self, store: VectorStore) -> None:
        p = corpus_points()[0]
        with pytest.raises(ValueError, match="UUID"):
            store.upsert([replace(p, chunk=replace(p.chunk, chunk_id="not-a-uuid"))])


    def test_records_the_embedder_and_refuses_another(self, store: VectorStore, tmp_path: Path,
                                                      request: pytest.FixtureRequest) -> None:
        fresh = make_store(request.node.callspec.params["store"], tmp_path / "fresh")
        dim = embedder().dimension
        fresh.ensure_collection(dim, "model-a")
        assert fresh.collection_record() == {"embedder": "model-a", "dimension": dim, "state": "ready"}
        fresh.ensure_collection(dim, "model-a")
        with pytest.raises(EmbedderMismatch, match=r"filled by embedder 'model-a'.*configured embedder is 'model-b'"):
            fresh.ensure_collection(dim, "model-b")
        with pytest.raises(EmbedderMismatch, match="384-dim.*385-dim"):
            fresh.ensure_collection(dim + 1, "model-a")
        _drop(fresh)

    def test_a_collection_without_record_adopts_the_first_embedder(self, store: VectorStore) -> None:
        assert store.collection_record() is None  # the fixture made it without a name
        store.ensure_collection(embedder().dimension, "model-a")
        assert (store.collection_record() or {})["embedder"] == "model-a"
        with pytest.raises(EmbedderMismatch, match="model-a"):
            store.ensure_collection(embedder().dimension, "model-b")

    def test_scroll_points_gives_every_point_with_its_vectors(self, store: VectorStore) -> None:
        want = {p.chunk.chunk_id: p for p in corpus_points()}
        got: dict[str, StoredPoint] = {}
        offset: str | None = None
        pages = 0
        while True:
            page, offset = store.scroll_points(offset, 3)
            pages += 1
            assert len(page) <= 3
            got.update((p.chunk.chunk_id, p) for p in page)
            if offset is None:
                break
        assert pages >= len(want) // 3 and set(got) == set(want)
        for cid, p in got.items():
            assert p.chunk == want[cid].chunk
            assert np.allclose(p.dense, want[cid].dense, atol=1e-5)
            w = want[cid].sparse
            if w is not None and not w.is_empty():
                assert p.sparse is not None
                assert dict(zip(p.sparse.indices, p.sparse.values, strict=True)) == pytest.approx(
                    dict(zip(w.indices, w.values, strict=True)))

    def test_existing_ids(self, store: VectorStore) -> None:
        ids = store.point_ids("bezoek")
        missing = str(uuid.uuid4())
        assert store.existing_ids([*ids, missing]) == set(ids)
        assert store.existing_ids([]) == set()


def _drop(s: VectorStore) -> None:
    drop = getattr(s, "drop_collection", None)
    if callable(drop) and isinstance(s, QdrantStore) and not s.local:
        drop()
    s.close()


def test_edge_record_survives_reopen_and_follows_the_pointer(tmp_path: Path) -> None:
    base = tmp_path / "qdrant-edge"
    s = EdgeStore(base)
    s.ensure_collection(4, "model-a")
    s.close()
    other = EdgeStore(tmp_path / "qdrant-edge--model-b", resolve=False)
    other.ensure_collection(8, "model-b")
    other.close()
    first = EdgeStore(base)  # one EdgeStore per path at a time in a process, closed before the next
    assert first.collection_record() == {"embedder": "model-a", "dimension": 4, "state": "ready"}
    first.close()
    switch_shard(base, tmp_path / "qdrant-edge--model-b")
    again = EdgeStore(base)
    assert again.path == tmp_path / "qdrant-edge--model-b"
    with pytest.raises(EmbedderMismatch, match="'model-b'.*'model-a'"):
        again.ensure_collection(4, "model-a")
    again.close()


def test_qdrant_collection_is_an_alias_switched_atomically() -> None:
    s = QdrantStore(":memory:", "vb")
    s.ensure_collection(4, "model-a")
    assert s.collection == "vb--model-a" and s.alias_target() == "vb--model-a"
    t = QdrantStore(":memory:", "vb--model-b", client=s.client, resolve=False)
    t.alias = "vb"
    t.ensure_collection(8, "model-b")
    assert t.collection == "vb--model-b"
    s.point_alias_at("vb--model-b")
    reopened = QdrantStore(":memory:", "vb", client=s.client)
    assert reopened.collection == "vb--model-b"
    assert (reopened.collection_record() or {})["embedder"] == "model-b"
    assert s.client.collection_exists("vb--model-a")  # the old one stays


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
@pytest.mark.parametrize("query", QUERIES)
def test_same_top10_on_edge_and_qdrant_client(
    both_stores: dict[str, VectorStore], mode: SearchMode, query: str
) -> None:
    rankings = _all_backends_rankings(both_stores, _request(query, mode))
    assert rankings["edge"], f"no hits for {query!r} ({mode})"
    assert [i for _, i in rankings["edge"]] == [i for _, i in rankings["qdrant-memory"]]
    edge_scores = [s for s, _ in rankings["edge"]]
    local_scores = [s for s, _ in rankings["qdrant-memory"]]
    assert edge_scores == pytest.approx(local_scores, abs=2e-3)


def test_same_top10_with_weighted_rrf_and_dbsf(both_stores: dict[str, VectorStore]) -> None:
    for fusion in (FusionParams("rrf", 10, (1.0, 0.5)), FusionParams("dbsf")):
        request = replace(_request("bezoek voor patiënten", "hybrid"), fusion=fusion)
        rankings = _all_backends_rankings(both_stores, request)
        assert [i for _, i in rankings["edge"]] == [i for _, i in rankings["qdrant-memory"]], fusion


@pytest.mark.parametrize("fusion", [FusionParams("rrf", 60), FusionParams("rrf", 5), FusionParams("dbsf")])
@pytest.mark.parametrize("query", QUERIES)
def test_fusion_next_to_the_store_ranks_like_qdrants(
    both_stores: dict[str, VectorStore], fusion: FusionParams, query: str
) -> None:
    """retrieval.fusion.fuse over one batched (dense, sparse) round trip = Qdrant's own fusion."""
    from retrieval.fusion import fuse

    request = replace(_request(query, "hybrid"), fusion=fusion)
    for store in both_stores.values():
        dense, sparse = store.query_batch(
            [replace(request, mode="dense", limit=request.prefetch_limit),
             replace(request, mode="sparse", limit=request.prefetch_limit)]
        )
        ours = fuse(dense, sparse, fusion, request.limit)
        theirs = store.query(request)
        assert [round(h.score, 4) for h in ours] == pytest.approx([round(h.score, 4) for h in theirs], abs=2e-3)
        assert {h.chunk.chunk_id for h in ours[:3]} == {h.chunk.chunk_id for h in theirs[:3]}


def test_edge_write_survives_reopen(tmp_path: Path) -> None:
    s = EdgeStore(tmp_path / "shard")
    s.ensure_collection(embedder().dimension)
    s.upsert(list(corpus_points()))
    s.delete_document("salaris")
    s.close()
    again = EdgeStore(tmp_path / "shard")
    assert again.count() == len(corpus_points()) - 1
    assert again.count("salaris") == 0
    again.close()


def test_empty_edge_store_before_creation(tmp_path: Path) -> None:
    s = EdgeStore(tmp_path / "none")
    assert s.count() == 0
    assert s.point_ids("x") == []
    assert s.query(_request("bezoek", "dense")) == []


def test_set_payload_overwrites_labels_of_those_points_only(store: VectorStore) -> None:
    ids = store.point_ids("salaris")
    others = [p.chunk.chunk_id for p in corpus_points() if p.chunk.doc_id != "salaris"]
    store.set_payload(ids, {"groups": ["nieuw"], "classification": "geheim", "classification_level": 3})
    everything = store.query(_request("salaris", "dense", limit=100))
    by_id = {h.chunk.chunk_id: h.chunk for h in everything}
    assert ids and all(by_id[i].groups == ("nieuw",) and by_id[i].classification == "geheim" for i in ids)
    assert all(by_id[i].groups != ("nieuw",) for i in others if i in by_id)
    assert all(by_id[i].text for i in ids)  # other payload keys are kept


def test_vacuum_keeps_live_points_and_their_search(store: VectorStore) -> None:
    request = _request("Hoe laat mag ik op bezoek komen?", "hybrid")
    store.delete_document("salaris")
    before = _ranking(store, request)
    total = store.count()
    store.vacuum()
    assert store.count() == total and store.count("salaris") == 0
    assert _ranking(store, request) == before


def test_edge_vacuum_leaves_no_trace_of_erased_text(tmp_path: Path) -> None:
    s = EdgeStore(tmp_path / "shard")
    s.ensure_collection(embedder().dimension)
    points = list(corpus_points())
    canary = "kanarie-7f3a9c-" + uuid.uuid4().hex
    victim = replace(points[0], chunk=replace(points[0].chunk, text=points[0].chunk.text + " " + canary))
    s.upsert([victim, *points[1:]])
    s.delete_document(victim.chunk.doc_id)
    s.vacuum()
    try:
        assert not [p for p in tmp_path.rglob("*") if p.is_file() and canary.encode() in p.read_bytes()]
        assert s.count() == len([p for p in points if p.chunk.doc_id != victim.chunk.doc_id])
    finally:
        s.close()
    again = EdgeStore(tmp_path / "shard")  # the rebuilt shard opens as any other
    assert again.count(victim.chunk.doc_id) == 0 and again.count() > 0
    again.close()
