"""Abstention when the documents do not say (issue 17 item 5), rule by rule, each beside an answerable
neighbour that must still be answered: an abstention never hides an answer.

Real components: the packaged embedder, the real Ingestor into a Qdrant Edge store, the extractive
answerer and the chat service as the API calls it, with the default settings (Debian's Dutch and
British word lists, scripts/install-wdutch). The protocols are in tests/fixtures/abstain/ (fictional,
written for these tests).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from support import make_settings

from vraagbaak_core.types import Answer, ChatMessage, GenerationParams, Identity

FIXTURES = Path(__file__).parent / "fixtures" / "abstain"
STAFF = Identity("nurse", frozenset({"staff"}), frozenset({"zorg"}), "intern", "test")
PARAMS = GenerationParams(max_tokens=200)
ABSTAIN_NL = "Ik kan dit niet beantwoorden op basis van de beschikbare documenten."


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Any:
    from ingest.manifest import Labels
    from serving.components import build_components

    tmp = tmp_path_factory.mktemp("abstain")
    docs = tmp / "docs"
    shutil.copytree(FIXTURES, docs)
    settings = make_settings(tmp)
    for path in (settings.generator.extractive.lexicon_nl, settings.generator.extractive.lexicon_en):
        if path is None or not path.is_file():
            pytest.fail(f"{path}: the word list is missing; run scripts/install-wdutch")
    comps = build_components(settings, embedder=embedder)
    assert comps.ingestor is not None
    report = comps.ingestor.ingest_paths([docs], Labels(groups=("zorg",)))
    assert not report.failed, report.failed
    yield comps
    asyncio.run(comps.aclose())


def ask(comps: Any, question: str) -> Answer:
    prep = comps.chat.prepare([ChatMessage("user", question)], STAFF, PARAMS)
    if prep.abstain:
        return comps.chat.abstention(prep)  # type: ignore[no-any-return]
    return asyncio.run(comps.chat.answer(prep, PARAMS))  # type: ignore[no-any-return]


def cited_sources(answer: Answer) -> set[str]:
    return {c.source.rsplit("/", 1)[-1] for c in answer.citations}


# ------------------------------------------------------- a name only another retrieved document holds


def test_a_drug_the_answering_document_does_not_name_abstains(service: Any) -> None:
    """Enoxaparine for a child: the children's dose table is paracetamol's, and the enoxaparine protocol
    (which names the drug) is for adults; quoting the paracetamol row would be a wrong dose."""
    answer = ask(service, "Wat is de dosis enoxaparine voor een kind van 30 kilo?")
    assert answer.abstained, answer.text
    assert answer.text.startswith(ABSTAIN_NL) and "Misschien relevant: " in answer.text
    assert "500 mg" not in answer.text


def test_the_same_questions_about_the_document_that_names_the_drug_are_answered(service: Any) -> None:
    adult = ask(service, "Hoeveel enoxaparine geef ik iemand van 80 kg met een eGFR van 45?")
    assert not adult.abstained and "40 mg eenmaal daags" in adult.text, adult.text
    assert cited_sources(adult) == {"enoxaparine.md"}
    child = ask(service, "Hoeveel paracetamol krijgt een kind van 30 kilo per keer?")
    assert not child.abstained and "500 mg" in child.text, child.text
    assert "paracetamol-kinderen.md" in cited_sources(child)


# ------------------------------------------------------- English questions: the British word list


def test_an_english_question_about_a_drug_no_document_names_abstains(service: Any) -> None:
    answer = ask(service, "What dose of hydrocortisone should be given in anaphylaxis?")
    assert answer.abstained, answer.text
    assert answer.text.startswith("I cannot answer this based on the available documents.")
    assert answer.maybe_relevant and answer.maybe_relevant[0].title.startswith("Anaphylaxis")


def test_the_english_question_about_the_named_drug_is_answered(service: Any) -> None:
    answer = ask(service, "What dose of adrenaline should be given in anaphylaxis?")
    assert not answer.abstained and "0.5 mg" in answer.text, answer.text
    assert cited_sources(answer) == {"anaphylaxis-en.md"}
