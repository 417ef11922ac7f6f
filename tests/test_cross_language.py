"""Questions across languages (issue 17 item 4): a Dutch question finds the English protocol, an English
question the Dutch one, and the answer quotes the source's language with a note in the question's.

How: the care terms (configs/care_terms.yaml) give a question's terms their other-language equivalents
at ``retrieval.sparse.translation_weight``; those count towards lexical coverage; and when the best
sparse hit is in the other language, the fusion lets the sparse side lead
(``retrieval.fusion.cross_language_sparse_weight``): the embedder scores every document in the
question's own language above the right one in the other.

The service tests use real components: protocols of the Lindehoven set (benchmarks/data/hospital), the
real Ingestor into Qdrant Edge, the packaged e5 weights run by the torch fast path, the chat service.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from support import ask, ingested, make_settings, nurse

from retrieval.analysis import Analyzer, AnalyzerConfig, Bm25SparseEncoder, term_id, to_sparse
from retrieval.care_terms import CareTerms, care_terms_from_settings
from retrieval.search import choose_fusion, lexical_coverage
from vraagbaak_core.settings import FusionSettings, SparseSettings
from vraagbaak_core.types import FusionParams

ROOT = Path(__file__).resolve().parents[1]
HOSPITAL = ROOT / "benchmarks" / "data" / "hospital" / "docs"
E5_DIR = ROOT / ".models" / "multilingual-e5-small-q4-fp32"
# two English protocols, and Dutch ones on neighbouring topics (feeding, flushing, oxygen, masks)
DOCS = ("anaphylaxis.html", "nasogastric-tube.docx", "isolatie-maatregelen.html", "ondervoeding-snaq.docx",
        "perifeer-infuus.md", "vroegsignalering-ews.html")
STAFF = nurse()


@pytest.fixture(scope="module")
def care() -> CareTerms:
    terms = care_terms_from_settings(SparseSettings())
    assert terms is not None
    return terms


# --------------------------------------------------------------------------- the sparse query (no model)


def test_a_dutch_question_gets_its_english_terms_at_the_translation_weight(care: CareTerms) -> None:
    analyzer = Analyzer(AnalyzerConfig(care_terms=care, care_weight=0.5, translation_weight=1.0))
    weights, translations = analyzer.query_terms("Hoeveel zuurstof geef ik bij een allergische shock?")
    assert weights["zuurstof"] == 1.0 and weights["oxygen"] == 1.0  # the English term, stemmed in English
    assert weights["anafylaxie"] == 0.5  # a Dutch synonym keeps the care-term weight
    assert "oxygen" in translations["zuurstof"] and "anaphylaxi" in translations["allergisch"]
    assert "oxygen" in translations["zuur"]  # a compound's pieces stand for the compound


def test_a_word_spelled_alike_in_both_languages_gets_the_other_languages_stem(care: CareTerms) -> None:
    """Replays a defect: "adrenaline" is a term in both languages, so the expansion left it out as
    "already in the question", and the English stem ("adrenalin") never reached the English protocol."""
    weights = Analyzer(AnalyzerConfig(care_terms=care)).query_weights("Hoeveel adrenaline spuit ik?", "nl")
    assert weights["adrenaline"] == 1.0 and weights["adrenalin"] > 0.0


def test_an_english_question_gets_dutch_terms(care: CareTerms) -> None:
    encoder = Bm25SparseEncoder(AnalyzerConfig(care_terms=care, translation_weight=1.0))
    translations = encoder.query_translations("Which mask should I wear for a patient with measles?")
    assert term_id("mazel") in translations[term_id("measl")]  # Dutch "mazelen", stemmed in Dutch
    assert encoder.query_translations("Wat zijn de bezoektijden?") != {}  # bezoektijden ↔ visiting hours
    assert Bm25SparseEncoder().query_translations("Hoeveel zuurstof?") == {}  # no list, no translations


def test_translations_count_towards_lexical_coverage() -> None:
    query = to_sparse({"zuurstof": 1.0, "geef": 1.0, "oxygen": 1.0})
    english = to_sparse({"oxygen": 0.8, "give": 0.7})
    assert lexical_coverage(query, english) == pytest.approx(1 / 3)
    both = {term_id("zuurstof"): {term_id("oxygen")}, term_id("geef"): {term_id("give")}}
    assert lexical_coverage(query, english, both) == 1.0
    assert lexical_coverage(query, to_sparse({"water": 1.0}), both) == 0.0


def test_the_fusion_lets_the_sparse_side_lead_only_across_languages() -> None:
    s = FusionSettings(cross_language_sparse_weight=10.0)
    fixed = FusionParams("dbsf", 60, (1.0, 0.3))
    assert choose_fusion(s, fixed, 0.6) == fixed
    assert choose_fusion(s, fixed, 0.6, cross=True) == FusionParams("dbsf", 60, (1.0, 10.0))
    assert choose_fusion(s, fixed, 0.2, cross=True) is None  # a poor lexical match stays dense only
    assert choose_fusion(FusionSettings(cross_language_sparse_weight=None), fixed, 0.6, cross=True) == fixed
    with pytest.raises(ValueError):
        FusionSettings(cross_language_sparse_weight=0.0)
    with pytest.raises(ValueError):
        SparseSettings(translation_weight=1.5)


# --------------------------------------------------------------------------- the real retriever and service


@pytest.fixture(scope="module")
def fast_embedder() -> Any:
    if not (E5_DIR / "vraagbaak-prepare.json").is_file():
        pytest.fail(f"{E5_DIR} is missing: run `make models` (make test does this first)")
    from retrieval.embedders import build_embedder
    from vraagbaak_core.settings import EmbedderSettings

    return build_embedder(EmbedderSettings(backend="torch", model=str(E5_DIR)))


@pytest.fixture(scope="module")
def comps(tmp_path_factory: pytest.TempPathFactory, fast_embedder: Any) -> Any:
    tmp = tmp_path_factory.mktemp("cross")
    docs = tmp / "docs"
    docs.mkdir()
    for name in DOCS:
        shutil.copy(HOSPITAL / name, docs / name)
    settings = make_settings(tmp, embedder={"backend": "torch", "model": str(E5_DIR)})
    built = ingested(tmp, docs, fast_embedder, settings)
    yield built
    asyncio.run(built.aclose())


def first_source(comps: Any, question: str) -> str:
    hits = comps.retriever.search(question, STAFF)
    assert hits, question
    return str(hits[0].chunk.source).rsplit("/", 1)[-1]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Met hoeveel water spoel ik de maagsonde door voor en na de voeding?", "nasogastric-tube.docx"),
        ("Hoeveel zuurstof geef ik bij een allergische shock?", "anaphylaxis.html"),
        ("Which mask should I wear when caring for a patient with measles?", "isolatie-maatregelen.html"),
    ],
)
def test_the_retriever_ranks_the_other_languages_protocol_first(comps: Any, question: str, expected: str) -> None:
    assert first_source(comps, question) == expected


def test_without_translations_and_the_cross_language_rule_a_dutch_protocol_wins(comps: Any) -> None:
    """Replays the defect the issue reports: the Dutch question's own words and the embedder both
    favour a Dutch protocol on a neighbouring topic (feeding, flushing a cannula)."""
    from retrieval.analysis import encoder_from_settings
    from retrieval.search import Retriever

    old = comps.retriever.settings.model_copy(deep=True)
    old.fusion.cross_language_sparse_weight = None
    old.sparse.translation_weight = 0.5
    before = Retriever(comps.retriever.embedder, encoder_from_settings(old.sparse), comps.retriever.store, old)
    question = "Met hoeveel water spoel ik de maagsonde door voor en na de voeding?"
    hits = before.search(question, STAFF)
    assert hits and str(hits[0].chunk.source).rsplit("/", 1)[-1] != "nasogastric-tube.docx"


def test_a_dutch_question_is_answered_from_the_english_protocol_with_a_dutch_note(comps: Any) -> None:
    answer = ask(comps, "Met hoeveel water spoel ik de maagsonde door voor en na de voeding?")
    assert answer.text.startswith("(Uit een Engelstalig protocol:) "), answer.text
    assert {c.source.rsplit("/", 1)[-1] for c in answer.citations} == {"nasogastric-tube.docx"}
    assert "30 ml" in answer.text


def test_an_english_question_is_answered_from_the_dutch_protocol_with_an_english_note(comps: Any) -> None:
    answer = ask(comps, "Which mask should I wear when caring for a patient with measles?")
    assert answer.text.startswith("(From a Dutch protocol:) "), answer.text
    assert {c.source.rsplit("/", 1)[-1] for c in answer.citations} == {"isolatie-maatregelen.html"}
    assert "FFP2" in answer.text


def test_up_to_which_value_is_answered_by_the_rows_range(comps: Any) -> None:
    """Replays Lindehoven dev d007: "tot welke" asks for a limit, which the row "1 to 5.5" states; the
    row "6 or higher" (a bound too, and a "do not") was quoted alone."""
    answer = ask(comps, "Tot welke pH van het maagsap mag ik via de maagsonde voeding geven?")
    assert {c.source.rsplit("/", 1)[-1] for c in answer.citations} == {"nasogastric-tube.docx"}, answer.text
    assert "1 to 5.5" in answer.text, answer.text
