"""Text analysis and the BM25-style sparse encoder, on a small Dutch corpus in a real Qdrant Edge shard."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from retrieval.analysis import (
    Analyzer,
    AnalyzerConfig,
    Bm25SparseEncoder,
    detect_language,
    fold,
    guess_language,
    term_id,
    tokenize,
)
from retrieval.stores.edge import EdgeStore
from vraagbaak_core.types import PUBLIC_GROUP, Chunk, FusionParams, StoredPoint, StoreQuery

DUTCH_CORPUS = {
    "infectie": "Ziekenhuisinfecties voorkomen begint bij goede handhygiëne van alle medewerkers.",
    "hygiene": "Hygiëne op de afdeling wordt wekelijks gecontroleerd door de deskundige infectiepreventie.",
    "dossier": "Het patiëntendossier bevat de medische gegevens en wordt alleen door behandelaars ingezien.",
    "bezoek": "Bezoekers melden zich bij de balie. Het bezoekuur duurt van twee tot vier.",
    "verpleging": "De verpleegkundigen controleren de medicatie voordat zij die toedienen.",
    "voeding": "Patiënten kunnen hun maaltijden kiezen uit een wisselend menu met dieetopties.",
    "ontslag": "Bij ontslag krijgt de patiënt een overdrachtsbrief voor de huisarts mee.",
    "vallen": "Valincidenten worden gemeld in het incidentensysteem en besproken in het teamoverleg.",
}


def test_fold_strips_diacritics_and_lowercases() -> None:
    assert fold("Patiëntendossier") == "patientendossier"
    assert fold("Café Crème") == "cafe creme"
    assert tokenize("Het patiëntendossier, ge-update in 2024!") == [
        "het",
        "patientendossier",
        "ge",
        "update",
        "in",
        "2024",
    ]


def test_diacritics_do_not_change_terms() -> None:
    enc = Bm25SparseEncoder()
    assert enc.encode_document("patiëntendossier", "nl") == enc.encode_document("patientendossier", "nl")
    assert enc.encode_query("patiëntendossier") == enc.encode_query("patientendossier")


def test_stopwords_removed_per_language() -> None:
    a = Analyzer()
    words, _ = a.terms("de patiënt en het bezoek", "nl")
    assert words == ["patient", "bezoek"]
    words, _ = a.terms("the patient and the visit", "en")
    assert words == ["patient", "visit"]


def test_dutch_snowball_stemming_conflates_inflections() -> None:
    a = Analyzer()
    stems = {a.terms(w, "nl")[0][0] for w in ("verpleegkundige", "verpleegkundigen")}
    assert len(stems) == 1
    assert a.terms("infecties", "nl")[0] == a.terms("infectie", "nl")[0]
    assert a.terms("maaltijden", "nl")[0] == a.terms("maaltijd", "nl")[0]


def test_compound_pieces_of_long_dutch_tokens() -> None:
    a = Analyzer()
    _, pieces = a.terms("patiëntendossier", "nl")
    assert "dossier" in pieces and "patient" in pieces
    _, pieces = a.terms("handhygiëne", "nl")
    assert "hygiene" in pieces
    _, en_pieces = a.terms("inflammation", "en")
    assert not en_pieces  # English words are not split


def test_term_ids_are_stable_31_bit() -> None:
    assert term_id("dossier") == 1608981512
    assert all(0 <= term_id(t) < 2**31 for t in ("a", "patient", "ziekenhuis"))
    code = "from retrieval.analysis import term_id; print(term_id('dossier'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == term_id("dossier")  # same in another process (no hash seed)


def test_bm25_document_weights_saturate_and_normalise_length() -> None:
    a = Analyzer(AnalyzerConfig(k1=1.2, b=0.75, avg_len=10))
    one = a.document_weights("bloed", "nl")["bloed"]
    three = a.document_weights("bloed bloed bloed", "nl")["bloed"]
    assert one < three < 1.2 + 1.0
    long_doc = a.document_weights("bloed " + " ".join(f"woord{i}" for i in range(40)), "nl")["bloed"]
    assert long_doc < one
    # With b = 0 and tf = 1 the weight is exactly 1: BM25's TF part is neutral.
    assert Analyzer(AnalyzerConfig(b=0.0)).document_weights("bloed", "nl")["bloed"] == pytest.approx(1.0)


def test_query_vector_unique_terms_weight_one() -> None:
    enc = Bm25SparseEncoder()
    q = enc.encode_query("What does a patient with a patient record need?", "en")
    assert all(v == 1.0 for v in q.values)
    assert len(q.indices) == len(set(q.indices)) == 3  # patient, record, need


def test_unknown_query_language_unites_both_analyses() -> None:
    a = Analyzer()
    assert guess_language("handhygiëne") is None
    terms = a.query_weights("handhygiëne")
    assert terms["handhygiene"] == 1.0  # Dutch stem
    assert terms["handhygien"] == 1.0  # English stem
    assert terms["hygiene"] == pytest.approx(0.3)  # Dutch compound piece
    assert "de" not in a.query_weights("de protocol")  # both stopword lists apply


def test_detect_language() -> None:
    assert detect_language("Wat zijn de bezoektijden van de afdeling?") == "nl"
    assert detect_language("What are the visiting hours of the ward?") == "en"
    assert detect_language("MRSA") == "nl"  # no evidence: the default
    assert detect_language("MRSA", default="en") == "en"


@pytest.fixture(scope="module")
def dutch_store(tmp_path_factory: pytest.TempPathFactory) -> EdgeStore:
    """Sparse-only search over a Dutch corpus in a real Edge shard (dense vectors are constant)."""
    store = EdgeStore(tmp_path_factory.mktemp("nl") / "shard")
    store.ensure_collection(4)
    enc = Bm25SparseEncoder()
    points = []
    for i, (doc_id, text) in enumerate(DUTCH_CORPUS.items()):
        chunk = Chunk(
            chunk_id=str(uuid.uuid5(uuid.NAMESPACE_URL, doc_id)),
            doc_id=doc_id,
            index=0,
            text=text,
            title=doc_id,
            source=f"{doc_id}.md",
            groups=(PUBLIC_GROUP,),
            language="nl",
        )
        points.append(
            StoredPoint(chunk=chunk, dense=[1.0, 0.0, 0.0, float(i)], sparse=enc.encode_document(text, "nl"))
        )
    store.upsert(points)
    return store


def _sparse_docs(store: EdgeStore, query: str) -> list[str]:
    req = StoreQuery(
        mode="sparse", limit=5, sparse=Bm25SparseEncoder().encode_query(query), fusion=FusionParams()
    )
    return [h.chunk.doc_id for h in store.query(req)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("infectie voorkomen", "infectie"),  # ziekenhuisinfecties -> compound piece "infectie"
        ("dossier", "dossier"),  # patiëntendossier
        ("patientendossier inzien", "dossier"),  # no diacritics in the query
        ("handhygiëne", "infectie"),  # exact compound
        ("bezoeker", "bezoek"),  # bezoekers (plural), stemmed
        ("verpleegkundige medicatie toediening", "verpleging"),  # verpleegkundigen ... toedienen
        ("incident gemeld", "vallen"),  # valincidenten / incidentensysteem
    ],
)
def test_dutch_sparse_search(dutch_store: EdgeStore, query: str, expected: str) -> None:
    docs = _sparse_docs(dutch_store, query)
    assert docs and docs[0] == expected, docs


def test_compound_query_reaches_its_head_word(dutch_store: EdgeStore) -> None:
    """``handhygiëne`` also finds the document that only says ``hygiëne``."""
    assert "hygiene" in _sparse_docs(dutch_store, "handhygiëne")


def test_compounds_split_into_listed_dutch_words() -> None:
    """With the wdutch word list (scripts/install-wdutch) a compound yields its listed parts only."""
    from pathlib import Path

    from retrieval.analysis import encoder_from_settings, lexicon_split, load_lexicon
    from vraagbaak_core.settings import ConfigError, SparseSettings

    lexicon = load_lexicon(Path("/usr/share/dict/dutch"))
    assert lexicon_split("patientendossier", lexicon, 4) == ["patienten", "dossier"]
    assert lexicon_split("afdrukvoorbeeld", lexicon, 4) == ["afdruk", "voorbeeld"]
    assert lexicon_split("ziekenhuisinfecties", lexicon, 4)[-1] == "infecties"
    assert lexicon_split("xqzvwrtplk", lexicon, 4) == []
    enc = encoder_from_settings(SparseSettings())  # the product default uses the list
    _, pieces = enc.analyzer.terms("handhygiëne", "nl")
    assert set(pieces) == {"hand", "hygiene"}  # stemmed parts, no affix fragments like "andh"
    doc = enc.encode_document("Het patiëntendossier wordt bewaard.", "nl")
    assert set(enc.encode_query("dossier", "nl").indices) <= set(doc.indices)
    with pytest.raises(ConfigError, match="install-wdutch"):
        encoder_from_settings(SparseSettings(compound_lexicon=Path("/nonexistent/dutch")))
