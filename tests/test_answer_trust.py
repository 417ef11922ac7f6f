"""Answers a nurse can trust (issue 17): the answering sentence or table row first, across languages,
numbered steps for a procedure, and an abstention with the nearest documents when the sources do not say.

Real components: the packaged embedder, the real Ingestor into a Qdrant Edge store (unit vectors made
at ingest), and the chat service as the API calls it. The protocols are in tests/fixtures/trust/
(fictional, written for these tests); every case below is one the issue reports as failing.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import ask, ingested, nurse

from retrieval.unit_vectors import dequantise, encode_units, stored_vectors
from retrieval.units import quotable_units
from serving.staff.generators.answer_types import key_matches, question_types, unit_types
from vraagbaak_core.types import Answer, Chunk

TRUST = Path(__file__).parent / "fixtures" / "trust"
STAFF = nurse()
MARKER = re.compile(r"\s?\[\d+(?:,\s*\d+)*\]")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Any:
    tmp = tmp_path_factory.mktemp("trust")
    docs = tmp / "docs"
    shutil.copytree(TRUST, docs)
    comps = ingested(tmp, docs, embedder)
    yield comps
    asyncio.run(comps.aclose())


def first_sentence(answer: Answer) -> str:
    return MARKER.split(answer.text, maxsplit=1)[0]


def cited_sources(answer: Answer) -> set[str]:
    return {c.source.rsplit("/", 1)[-1] for c in answer.citations}


# --------------------------------------------------------------------------- units and types (no model)


def test_table_rows_are_units_with_their_column_headers() -> None:
    text = (TRUST / "decubitus.md").read_text(encoding="utf-8")
    rows = [u for u in quotable_units(text, "nl") if u.kind == "row"]
    assert [u.text for u in rows][:2] == [
        "Bradenscore 19–23 — Risico: geen verhoogd risico; Wisselliggen: niet nodig",
        "Bradenscore 15–18 — Risico: licht verhoogd; Wisselliggen: elke 4 uur",
    ]
    assert not any("Bradenscore; Risico" in u.text for u in quotable_units(text, "nl"))  # no header unit
    keys = {u.key: u for u in rows}
    assert key_matches(keys["10–12"].key, [11]) and not key_matches(keys["13–14"].key, [11])
    assert key_matches(keys["9 of lager"].key, [7]) and not key_matches(keys["9 of lager"].key, [10])
    assert key_matches("< 4 mmol/l", [3.5]) and not key_matches("< 4 mmol/l", [4.5])
    assert key_matches("≥ 7", [7]) and key_matches("50–74 kg", [60]) and not key_matches("50–74 kg", [75])


def test_numbered_steps_are_one_unit_with_their_lead_in() -> None:
    text = (TRUST / "valpreventie.md").read_text(encoding="utf-8")
    steps = [u for u in quotable_units(text, "nl") if u.kind == "steps"]
    assert len(steps) == 1
    lines = steps[0].text.split("\n")
    assert lines[0] == "Als een patiënt gevallen is:" and lines[1].startswith("1. Blijf bij de patiënt")
    assert lines[-1] == "5. Meld de val binnen 24 uur in het VIM-systeem."


def test_question_and_unit_answer_types() -> None:
    assert "duration" in question_types("Hoe lang moet ik handalcohol inwrijven?")
    assert "frequency" in question_types("Hoe vaak krijgt een patiënt wisselligging?")
    assert "amount" in question_types("Wat is de maximale dagdosis paracetamol?")
    assert "actor" in question_types("Wie controleert hoogrisicomedicatie?")
    assert "instruction" in question_types("Wat doe ik als een patiënt valt?")
    assert "instruction" in question_types("What do I do when a patient falls?")
    assert "duration" in unit_types("Wrijf minimaal 30 seconden in.")
    assert "frequency" in unit_types("Herhaal de beoordeling elke 48 uur.")
    assert "amount" in unit_types("De maximale dagdosis is 4 gram.")
    assert "amount" not in unit_types("Dit protocol beschrijft de pijnbestrijding.")


def test_unit_vectors_round_trip_through_the_payload(embedder: Any) -> None:
    text = (TRUST / "sepsis-en.md").read_text(encoding="utf-8")
    (units,) = encode_units(embedder, [(text, "en")])
    assert units is not None and len(units.vectors) == len(units.texts) * units.dim
    chunk = Chunk("00000000-0000-0000-0000-000000000001", "d", 0, text, "t", "s.md", units=(units,))
    back = Chunk.from_payload(chunk.payload())
    assert back.units == (units,)
    exact = np.asarray(embedder.embed_documents(list(units.texts)), dtype=np.float32)
    exact /= np.linalg.norm(exact, axis=1, keepdims=True)
    assert float(np.min(np.sum(exact * dequantise(units), axis=1))) > 0.995  # int8 keeps the cosine
    assert set(stored_vectors(back, embedder.name)) == set(units.texts)
    assert stored_vectors(back, "another-model") == {}  # another embedder's vectors are not used


# --------------------------------------------------------------------------- answers through the service


def test_ingest_stores_the_unit_vectors_with_each_chunk(service: Any) -> None:
    hits = service.retriever.search("Welk masker bij open tuberculose?", STAFF)
    assert hits and all(h.chunk.units and h.chunk.units[0].embedder == service.embedder.name for h in hits)


def test_table_question_is_answered_by_its_row(service: Any) -> None:
    answer = ask(service, "Hoe vaak moet een patiënt met een Bradenscore van 11 wisselliggen?")
    assert first_sentence(answer) == "Bradenscore 10–12 — Risico: hoog; Wisselliggen: elke 2 uur"
    assert cited_sources(answer) == {"decubitus.md"}


def test_mask_for_open_tb_comes_from_the_isolation_table_not_the_insulin_protocol(service: Any) -> None:
    """The issue's case: the answer opened with "Heeft de patiënt geen infuus, geef dan glucagon 1 mg"."""
    answer = ask(service, "Welk masker draag ik bij een patiënt met open tbc?")
    assert "FFP2-masker" in first_sentence(answer), answer.text
    assert "glucagon" not in answer.text and cited_sources(answer) == {"isolatie.html"}


def test_the_purpose_sentence_does_not_answer(service: Any) -> None:
    answer = ask(service, "Binnen hoeveel uur na opname beoordeel ik het risico op decubitus?")
    assert first_sentence(answer).startswith("Beoordeel het risico op decubitus binnen 6 uur na opname")
    assert "Dit protocol beschrijft" not in answer.text


def test_lay_word_finds_the_professional_term(service: Any) -> None:
    answer = ask(service, "Hoe vaak moet ik de huid controleren om doorligwonden te voorkomen?")
    assert "Inspecteer de huid ten minste eenmaal per dienst" in first_sentence(answer), answer.text


def test_what_do_i_do_gets_the_numbered_steps(service: Any) -> None:
    answer = ask(service, "Wat moet ik doen als een patiënt gevallen is?")
    lines = answer.text.split("\n")
    assert lines[0] == "Als een patiënt gevallen is:", answer.text
    assert [ln[:2] for ln in lines[1:6]] == ["1.", "2.", "3.", "4.", "5."]
    assert cited_sources(answer) == {"valpreventie.md"}


def test_dutch_question_answered_from_the_english_protocol_and_says_so(service: Any) -> None:
    answer = ask(service, "Binnen welke tijd moet ik bij sepsis de eerste antibiotica geven?")
    assert answer.text.startswith("(Uit een Engelstalig protocol:) Give the first dose of intravenous antibiotics"), \
        answer.text
    assert cited_sources(answer) == {"sepsis-en.md"}


def test_english_question_answered_from_a_dutch_protocol_and_says_so(service: Any) -> None:
    answer = ask(service, "What is the maximum daily dose of paracetamol for adults?")
    assert answer.text.startswith("(From a Dutch protocol:) De maximale dagdosis paracetamol"), answer.text


def test_unanswerable_question_abstains_and_offers_the_nearest_documents(service: Any) -> None:
    """The issue's most dangerous case: oxycodone is in no protocol; the paracetamol sentence is no answer."""
    answer = ask(service, "Wat is de maximale dagdosis oxycodon?")
    assert answer.abstained and "paracetamol" not in answer.text.split("\n\n")[0]
    assert answer.text.startswith("Ik kan dit niet beantwoorden op basis van de beschikbare documenten.")
    assert answer.maybe_relevant and "Misschien relevant: " in answer.text
    assert answer.maybe_relevant[0].title in answer.text
