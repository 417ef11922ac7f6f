"""Follow-ups made standalone before retrieval (issue 17, serving.staff.chat.followup): the rules, and
three-turn conversations through the chat API over the Lindehoven protocols."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import ROOT, make_settings

from serving.staff.chat.followup import rewrite
from serving.staff.chat.service import standalone_query
from vraagbaak_core.types import ChatMessage

HOSPITAL = ROOT / "benchmarks" / "data" / "hospital" / "docs"
DOCS = ("pijn-paracetamol.pdf", "isolatie-maatregelen.html", "anaphylaxis.html", "valpreventie.md")


@pytest.mark.parametrize(
    ("prev", "follow_up", "standalone"),
    [
        # a qualifier replaces the group of people it stands for
        (
            "Wat is de maximale dagdosis paracetamol voor een volwassene?",
            "en bij kinderen?",
            "Wat is de maximale dagdosis paracetamol bij kinderen?",
        ),
        (
            "How much adrenaline do I give an adult with anaphylaxis?",
            "and for children?",
            "How much adrenaline do I give children with anaphylaxis?",
        ),
        # a number with the same unit takes the new number; a bare number replaces the only one
        (
            "Een kind weegt 20 kilo. Hoeveel paracetamol krijgt het per keer?",
            "en bij 9 kg?",
            "Een kind weegt 9 kg. Hoeveel paracetamol krijgt het per keer?",
        ),
        (
            "Hoe vaak moet iemand met Bradenscore 11 wisselliggen?",
            "en bij 14?",
            "Hoe vaak moet iemand met Bradenscore 14 wisselliggen?",
        ),
        # the same preposition: the same slot, a new value
        ("Welk mondmasker draag ik bij open tbc?", "en bij kinkhoest?", "Welk mondmasker draag ik bij kinkhoest?"),
        (
            "Wat zijn de bezoektijden op de intensive care?",
            "En op de kraamafdeling?",
            "Wat zijn de bezoektijden op de kraamafdeling?",
        ),
        # nothing to replace: the qualifier is added
        (
            "Hoeveel adrenaline geef ik bij anafylaxie?",
            "en bij een kind?",
            "Hoeveel adrenaline geef ik bij anafylaxie bij een kind?",
        ),
        # a bare question word takes the previous question's place, or goes in front of a yes/no question
        (
            "Wanneer doe ik neurologische controles na een val?",
            "hoe vaak dan?",
            "Hoe vaak doe ik neurologische controles na een val?",
        ),
        (
            "Moet ik neurologische controles doen na een val?",
            "En hoe lang?",
            "Hoe lang moet ik neurologische controles doen na een val?",
        ),
        # a condition replaces the previous one, or is added
        (
            "Wat doe ik bij een hypo als de patiënt nog kan slikken?",
            "en wat als hij niet kan slikken?",
            "Wat doe ik bij een hypo als hij niet kan slikken?",
        ),
        (
            "Wat doe ik bij een hypo?",
            "En als de patiënt bewusteloos is?",
            "Wat doe ik bij een hypo als de patiënt bewusteloos is?",
        ),
    ],
)
def test_follow_up_rules(prev: str, follow_up: str, standalone: str) -> None:
    assert rewrite(prev, follow_up) == standalone


def test_follow_ups_with_their_own_question_are_left_to_the_caller() -> None:
    prev = "Welk mondmasker draag ik bij open tbc?"
    for q in ("welke kleur deurkaart hoort daarbij?", "en hoe lang duurt dat?", "wie bel ik?", ""):
        assert rewrite(prev, q) is None, q


def _convo(*users: str) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for u in users:
        out += [ChatMessage("user", u), ChatMessage("assistant", "…")]
    return out[:-1]


def test_a_third_turn_builds_on_the_second_turns_standalone_question() -> None:
    turns = ("Wat is de maximale dagdosis paracetamol voor een volwassene?", "en bij kinderen?", "hoe vaak dan?")
    assert standalone_query(_convo(*turns)) == "Hoe vaak is de maximale dagdosis paracetamol bij kinderen?"
    turns = ("Hoeveel paracetamol krijgt een kind van 20 kilo per keer?", "en bij 9 kilo?", "en bij 30 kilo?")
    assert standalone_query(_convo(*turns)) == "Hoeveel paracetamol krijgt een kind van 30 kilo per keer?"
    # a new, self-contained question ends the chain
    turns = (
        "Welk mondmasker draag ik bij open tbc?",
        "en bij kinkhoest?",
        "Hoe lang mag een siliconen blaaskatheter blijven zitten bij een volwassene?",
    )
    assert standalone_query(_convo(*turns)) == turns[-1]


# --------------------------------------------------------------------------- through the chat API


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[dict[str, Any]]:
    from fastapi.testclient import TestClient

    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components

    tmp = tmp_path_factory.mktemp("followups")
    docs = tmp / "docs"
    docs.mkdir()
    for name in DOCS:
        shutil.copy(HOSPITAL / name, docs / name)
    settings = make_settings(tmp)
    comps = build_components(settings, embedder=embedder)  # the default: extractive answers
    assert comps.ingestor is not None
    report = comps.ingestor.ingest_paths([docs], Labels(groups=("iedereen",)))
    assert not report.failed, report.failed
    with TestClient(create_app(settings, comps), base_url="http://127.0.0.1") as client:
        yield {"client": client, "audit": Path(settings.audit.path)}
    comps.ingestor.close()
    comps.store.close()


def _converse(chat: dict[str, Any], turns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Ask the turns one by one, each with the whole conversation so far (the answers included)."""
    messages: list[dict[str, str]] = []
    replies = []
    for turn in turns:
        messages.append({"role": "user", "content": turn})
        r = chat["client"].post("/v1/chat/completions", json={"model": "vraagbaak", "messages": messages})
        assert r.status_code == 200, r.text
        msg = r.json()["choices"][0]["message"]
        replies.append(msg)
        messages.append({"role": "assistant", "content": msg["content"]})
    return replies


def _searched(chat: dict[str, Any], n: int) -> list[str]:
    """The last ``n`` questions the audit log says were searched (the standalone queries)."""
    from vraagbaak_core.audit import read_records

    recs = [r for r in read_records(chat["audit"]) if r["event_type"] == "chat.question"]
    return [r["question"] for r in recs[-n:]]


def _cites(msg: dict[str, Any], name: str) -> bool:
    return not msg["abstained"] and any(c["source"].endswith(name) for c in msg["citations"])


def test_three_turns_dutch_dose_for_children_then_how_often(chat: dict[str, Any]) -> None:
    turns = ("Wat is de maximale dagdosis paracetamol voor een volwassene?", "en bij kinderen?", "hoe vaak dan?")
    replies = _converse(chat, turns)
    assert _searched(chat, 3) == [
        turns[0],
        "Wat is de maximale dagdosis paracetamol bij kinderen?",
        "Hoe vaak is de maximale dagdosis paracetamol bij kinderen?",
    ]
    for msg in replies:
        assert _cites(msg, "pijn-paracetamol.pdf"), msg["content"]


def test_three_turns_dutch_mask_then_other_disease_then_door_card(chat: dict[str, Any]) -> None:
    turns = ("Welk mondmasker draag ik bij open tbc?", "en bij kinkhoest?", "welke kleur deurkaart hoort daarbij?")
    replies = _converse(chat, turns)
    searched = _searched(chat, 3)
    assert searched[1] == "Welk mondmasker draag ik bij kinkhoest?"
    # a pointer back ("daarbij") keeps the second turn's topic
    assert searched[2] == "Welk mondmasker draag ik bij kinkhoest? welke kleur deurkaart hoort daarbij?"
    for msg in replies:
        assert _cites(msg, "isolatie-maatregelen.html"), msg["content"]


def test_three_turns_english_adult_dose_then_children_then_repeat(chat: dict[str, Any]) -> None:
    turns = ("How much adrenaline do I give an adult with anaphylaxis?", "and for children?", "how often then?")
    replies = _converse(chat, turns)
    assert _searched(chat, 3)[1:] == [
        "How much adrenaline do I give children with anaphylaxis?",
        "How often adrenaline do I give children with anaphylaxis?",
    ]
    for msg in replies:
        assert _cites(msg, "anaphylaxis.html"), msg["content"]


def test_a_follow_up_without_language_evidence_is_answered_in_the_conversations_language(
    chat: dict[str, Any],
) -> None:
    replies = _converse(chat, ("Hoeveel paracetamol krijgt een kind van 20 kilo per keer?", "ok, 9 kg?"))
    assert _searched(chat, 1) == ["Hoeveel paracetamol krijgt een kind van 9 kg per keer?"]
    assert _cites(replies[1], "pijn-paracetamol.pdf")
