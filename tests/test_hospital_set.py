"""The Lindehoven hospital set (benchmarks/data/hospital): its rules, its documents, its judging."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.data import make_hospital
from benchmarks.hospital_set import (
    ANSWERABLE_KINDS,
    DOCS_DIR,
    SRC_DIR,
    SetError,
    doc_names,
    fact_found,
    load_questions,
    normalise,
    split_rule,
    states_facts,
)
from ingest.loaders import parse


def test_the_set_has_what_the_issue_asks() -> None:
    qs = load_questions()
    kinds = Counter(q.kind for q in qs)
    assert sum(kinds[k] for k in ANSWERABLE_KINDS) >= 60
    assert kinds["unanswerable"] >= 12
    cross = [q for q in qs if q.kind == "cross-language"]
    assert len(cross) >= 7
    english_docs = {"anaphylaxis.html", "nasogastric-tube.docx"}
    # both directions: Dutch questions about English protocols and English ones about Dutch protocols
    assert any(q.language == "nl" and set(q.expected_docs) <= english_docs for q in cross)
    assert any(q.language == "en" and not set(q.expected_docs) & english_docs for q in cross)
    names = doc_names()
    assert len(names) >= 12
    assert {Path(n).suffix for n in names} == {".md", ".html", ".pdf", ".docx"}


def test_every_protocol_is_400_to_900_words() -> None:
    for src in SRC_DIR.glob("*.md"):
        words = len(src.read_text(encoding="utf-8").split())
        assert 400 <= words <= 900, (src.name, words)


def test_split_follows_the_stated_rule_and_halves_each_kind() -> None:
    qs = load_questions()
    rule = split_rule(qs)
    assert {q.id: q.split for q in qs} == rule
    first = [q for q in qs if q.id.startswith("q")]  # the set as first split; d… are dev additions
    for kind in {q.kind for q in qs}:
        dev = sum(q.split == "dev" and q.kind == kind for q in first)
        test = sum(q.split == "test" and q.kind == kind for q in first)
        assert abs(dev - test) <= 1, kind
    assert len(load_questions(split="test")) == 52  # the test split did not change


def test_every_expected_fact_is_in_the_published_document_as_the_loaders_read_it() -> None:
    """Each answerable question is answerable from its document after ingest's own parsing (PDF and DOCX included)."""
    texts = {n: parse((DOCS_DIR / n).read_bytes(), n).text for n in doc_names()}
    for q in load_questions():
        for d in q.expected_docs:
            assert d in texts, (q.id, d)
        if q.answerable:
            joined = "\n".join(texts[d] for d in q.expected_docs)
            assert states_facts(joined, q.answer_facts), (q.id, q.answer_facts)


def test_the_published_documents_are_what_the_script_builds() -> None:
    built = make_hospital.build()
    assert sorted(built) == doc_names()
    for name, data in built.items():
        assert (DOCS_DIR / name).read_bytes() == data, f"{name} is stale: run benchmarks/data/make_hospital.py"


def test_normalise_and_fact_matching() -> None:
    assert normalise("Geef 0,5 mg – 1 mg  **nu**") == "geef 0.5 mg - 1 mg nu"
    assert fact_found("| 12,1–15,0 | 6 eenheden |", "6 eenheden")
    assert fact_found("Bloedglucose lager dan 4,0 mmol/l", "4.0 mmol/l")
    assert not fact_found("na 16 eenheden", "6 eenheden")  # whole words only
    assert fact_found("draag een FFP2-masker", "ffp2")
    assert fact_found("elke week", ("eenmaal per week", "elke week"))
    assert states_facts("meld via toestel 2180 en stop de transfusie", ["stop de transfusie", "2180"])
    assert not states_facts("stop de transfusie", ["stop de transfusie", "2180"])
    assert not states_facts("anything", [])  # no facts: nothing stated (unanswerable questions)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda q: q[0].update(kind="trivia"), "unknown kind"),
        (lambda q: q[0].update(split="train"), "split"),
        (lambda q: q[0].update(answer_facts=[]), "answer_facts"),
        (lambda q: q.append(dict(q[0])), "duplicate"),
    ],
)
def test_a_broken_questions_file_is_refused(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    from benchmarks.hospital_set import QUESTIONS

    raw = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    change(raw["questions"])
    bad = tmp_path / "questions.json"
    bad.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(SetError, match=message):
        load_questions(bad)
