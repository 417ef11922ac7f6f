"""The access filter: built from the identity on the server side, intersected with any request filter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from retrieval_fixtures import DOCS, corpus_points, embedder

from retrieval.access import access_filter, restrict
from retrieval.analysis import Bm25SparseEncoder
from retrieval.search import Retriever
from retrieval.stores.edge import EdgeStore
from vraagbaak_core.settings import RetrievalSettings
from vraagbaak_core.types import (
    CLASSIFICATIONS,
    PUBLIC_GROUP,
    Identity,
    MatchAny,
    RangeLte,
    SearchFilter,
    classification_level,
)

QUERIES = [
    "salarisschalen raad van bestuur",
    "wachtwoord multifactorauthenticatie research data export",
    "handhygiëne protocol medicatie",
]
# Request filters a caller might send, including ones that try to widen access.
REQUEST_FILTERS: list[SearchFilter | None] = [
    None,
    SearchFilter(must=(MatchAny("groups", ("directie", "ict", "onderzoek", "verpleging", "apotheek")),)),
    SearchFilter(must=(RangeLte("classification_level", 99),)),
    SearchFilter(must=(MatchAny("doc_id", ("salaris", "beveiliging", "research")),)),
    SearchFilter(must=(MatchAny("classification", ("geheim", "vertrouwelijk")),)),
]


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Retriever]:
    store = EdgeStore(tmp_path_factory.mktemp("access") / "shard")
    store.ensure_collection(embedder().dimension)
    store.upsert(list(corpus_points()))
    settings = RetrievalSettings(min_dense_score=-1.0, top_k=50, max_chunks_per_doc=10)
    yield Retriever(embedder(), Bm25SparseEncoder(), store, settings)
    store.close()


def test_access_filter_shape() -> None:
    f = access_filter(Identity("u", groups=frozenset({"b", "a"}), clearance="intern"))
    assert f.must == (
        MatchAny("groups", ("__public__", "a", "b")),
        RangeLte("classification_level", classification_level("intern")),
    )
    request = SearchFilter(must=(MatchAny("groups", ("x",)),))
    combined = restrict(Identity("u", clearance="openbaar"), request)
    assert combined.must[:2] == access_filter(Identity("u", clearance="openbaar")).must
    assert combined.must[2:] == request.must  # intersected, not replaced


def test_unknown_clearance_is_refused() -> None:
    with pytest.raises(ValueError, match="allowed"):
        access_filter(Identity("u", clearance="topsecret"))


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_group_a_never_sees_group_b(retriever: Retriever, mode: str) -> None:
    nurse = Identity("nurse", groups=frozenset({"verpleging"}), clearance="geheim")
    own = {PUBLIC_GROUP, "verpleging"}
    seen = set()
    for query in QUERIES:
        for flt in REQUEST_FILTERS:
            for hits in (
                retriever.search(query, nurse, flt, mode=mode),  # type: ignore[arg-type]
                retriever.retrieve_raw(query, nurse, flt, mode=mode),  # type: ignore[arg-type]
            ):
                for h in hits:
                    assert own.intersection(h.chunk.groups), (query, flt, h.chunk.doc_id)
                    seen.add(h.chunk.doc_id)
    assert {"hygiene", "medicatie"} <= seen  # the filter lets the nurse's own documents through
    assert not seen & {"salaris", "beveiliging", "research"}


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_intern_clearance_never_sees_vertrouwelijk(retriever: Retriever, mode: str) -> None:
    everyone = frozenset({"directie", "ict", "onderzoek", "verpleging", "apotheek"})
    user = Identity("u", groups=everyone, clearance="intern")
    for query in QUERIES:
        for flt in REQUEST_FILTERS:
            for h in retriever.retrieve_raw(query, user, flt, mode=mode):  # type: ignore[arg-type]
                assert classification_level(h.chunk.classification) <= classification_level("intern")
                assert h.chunk.classification not in ("vertrouwelijk", "geheim")


def test_clearance_levels_are_cumulative(retriever: Retriever) -> None:
    everyone = frozenset({"directie", "ict", "onderzoek", "verpleging", "apotheek"})
    all_docs = set(DOCS)
    for label in CLASSIFICATIONS:
        user = Identity("u", groups=everyone, clearance=label)
        docs = {h.chunk.doc_id for h in retriever.retrieve_raw("bezoek beleid data", user, mode="dense")}
        expected = {d for d in all_docs if classification_level(DOCS[d][2]) <= classification_level(label)}
        assert docs == expected, label


def test_request_filter_narrows_within_access(retriever: Retriever) -> None:
    nurse = Identity("nurse", groups=frozenset({"verpleging"}), clearance="intern")
    flt = SearchFilter(must=(MatchAny("doc_id", ("medicatie", "salaris")),))
    docs = {h.chunk.doc_id for h in retriever.retrieve_raw("medicatie salaris", nurse, flt, mode="hybrid")}
    assert docs == {"medicatie"}
