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
from support import ask, ingested, make_settings, nurse

from vraagbaak_core.types import Answer

FIXTURES = Path(__file__).parent / "fixtures" / "abstain"
STAFF = nurse()
ABSTAIN_NL = "Ik kan dit niet beantwoorden op basis van de beschikbare documenten."


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Any:
    tmp = tmp_path_factory.mktemp("abstain")
    docs = tmp / "docs"
    shutil.copytree(FIXTURES, docs)
    settings = make_settings(tmp)
    for path in (settings.generator.extractive.lexicon_nl, settings.generator.extractive.lexicon_en):
        if path is None or not path.is_file():
            pytest.fail(f"{path}: the word list is missing; run scripts/install-wdutch")
    comps = ingested(tmp, docs, embedder, settings)
    yield comps
    asyncio.run(comps.aclose())


def cited_sources(answer: Answer) -> set[str]:
    return {c.source.rsplit("/", 1)[-1] for c in answer.citations}


# ------------------------------------------------------- the rules' shapes (no model)


def test_preference_questions_and_units_and_range_keys() -> None:
    from serving.staff.generators.answer_types import is_range_key, question_types, unit_types

    assert "preference" in question_types("Welk slaapmiddel is het veiligst bij een patiënt met valrisico?")
    assert "preference" in question_types("Which dressing is best for a pressure ulcer?")
    assert "preference" not in question_types("Wat doe ik het eerst als een patiënt valt?")
    assert "preference" in unit_types("Spuit enoxaparine bij voorkeur subcutaan in de buikhuid.")
    assert "preference" not in unit_types("Vraag of de patiënt slaapmiddelen of plaspillen gebruikt.")
    assert is_range_key("Bloedglucose (mmol/l) 10,1–12,0") and is_range_key("SNAQ-score 3 of hoger")
    assert is_range_key("< 4 mmol/l")
    assert not is_range_key("VIP-score 5") and not is_range_key("Moment 15 minuten na de start")
    assert not is_range_key("Druppelisolatie")


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
    # the enoxaparine row "minder dan 50 kg" fits 30 kilo too, but that protocol never names paracetamol
    assert cited_sources(child) == {"paracetamol-kinderen.md"}, child.text
    assert all(c.status == "supported" for c in child.claims or []), child.claims


def test_the_weight_not_the_kidney_function_picks_the_row(service: Any) -> None:
    """'80 kg met een eGFR van 45': the row 'minder dan 50 kg' holds 45, but 45 is no weight."""
    adult = ask(service, "Hoeveel enoxaparine geef ik iemand van 80 kg met een eGFR van 45?")
    assert "minder dan 50 kg" not in adult.text, adult.text


def test_quantities_and_key_units() -> None:
    from serving.staff.generators.answer_types import key_unit, numbers_for_key, question_quantities

    q = question_quantities("Hoeveel enoxaparine geef ik iemand van 80 kg met een eGFR van 45?")
    assert q == [(80.0, "kg"), (45.0, "")]
    assert question_quantities("een kind van 30 kilo") == [(30.0, "kg")]
    assert key_unit("minder dan 50 kg") == "kg" and key_unit("< 4 mmol/l") == "mmol" and key_unit("4,0–8,0") == ""
    assert numbers_for_key("minder dan 50 kg", q) == [80.0]
    assert numbers_for_key("4,0–8,0", q) == [80.0, 45.0]
    assert numbers_for_key("18 jaar of ouder", [(30.0, "kg"), (12.0, "")]) == [12.0]


def test_a_population_the_answering_protocol_is_not_for() -> None:
    from serving.staff.generators.extractive import population_mismatch

    adults = ["Tromboseprofylaxe met enoxaparine bij volwassenen"]
    assert population_mismatch("Wat is de dosis enoxaparine voor een kind van 30 kilo?", adults) == ["kind"]
    assert population_mismatch("Hoeveel enoxaparine geef ik iemand van 80 kg?", adults) == []
    assert population_mismatch("What is the dose for a child?", ["Paracetamol bij kinderen"]) == []
    children = ["Paracetamol bij kinderen"]
    assert population_mismatch("Hoeveel paracetamol mag een volwassene?", children) == ["volwassene"]


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


# ------------------------------------------------------- a preference asked, none stated


def test_asking_which_is_safest_when_the_protocol_names_no_preference_abstains(service: Any) -> None:
    """The fall protocol names sleeping pills only as a risk factor; it says nothing of which is safest."""
    answer = ask(service, "Welk slaapmiddel is het veiligst bij een patiënt met valrisico?")
    assert answer.abstained, answer.text
    assert answer.text.startswith(ABSTAIN_NL)


def test_asking_for_the_preferred_choice_the_protocol_states_is_answered(service: Any) -> None:
    answer = ask(service, "Welke injectieplaats heeft de voorkeur voor enoxaparine?")
    assert not answer.abstained and "bij voorkeur subcutaan in de buikhuid" in answer.text, answer.text


# ------------------------------------------------------- a row of a range-keyed table, no value asked


def test_a_dose_row_for_a_value_the_question_does_not_give_is_no_answer(service: Any) -> None:
    """The correction table gives extra rapid-acting insulin by glucose range; the question gives no
    glucose (and asks about the long-acting night dose, which the protocol leaves to the doctor)."""
    answer = ask(service, "Hoeveel eenheden langwerkende insuline geef ik voor de nacht?")
    assert answer.abstained, answer.text
    assert "eenheden" not in answer.text.split("\n\n")[0]


def test_the_row_of_the_value_the_question_gives_is_answered(service: Any) -> None:
    answer = ask(service, "Hoeveel eenheden extra insuline geef ik bij een bloedglucose van 13 mmol/l?")
    assert not answer.abstained and "4 eenheden" in answer.text, answer.text
    assert cited_sources(answer) == {"insuline-correctie.md"}


def test_the_range_rule_fires_only_on_a_row_holding_the_amount_asked() -> None:
    """Dev question q062 ('Hoeveel mensen …') was refused for a row 'Moment tot 24 uur …': that row
    holds no people, so it is no dose row of an unknown value ('mensen' is no stem of 'Moment')."""
    from serving.staff.generators.extractive import _asked_amount_in

    row = "Moment tot 24 uur na de transfusie — Controle: alert blijven op koorts"
    assert not _asked_amount_in("Hoeveel mensen moeten het bloedzakje aan bed controleren?", row)
    dose = "Bloedglucose (mmol/l) 10,1–12,0 — Extra insuline aspart: 4 eenheden"
    assert _asked_amount_in("Hoeveel eenheden langwerkende insuline geef ik voor de nacht?", dose)


def test_a_question_that_names_the_rows_word_is_no_unknown_value() -> None:
    """CI, 7 Dec: 'How much adrenaline do I give children with anaphylaxis?' abstained on the row
    'children 6 to 12 years' (a range, no age given); the question names the rows by their word."""
    from serving.staff.generators.extractive import _key_named

    assert _key_named("How much adrenaline do I give children with anaphylaxis?", "children 6 to 12 years")
    assert not _key_named("Hoeveel eenheden langwerkende insuline geef ik voor de nacht?", "10,1–12,0")
    assert not _key_named("Hoeveel eenheden insuline geef ik?", "Bloedglucose (mmol/l) 10,1–12,0")


# ------------------------------------------------------- what the question asks that the answer does not hold
# (serving.staff.generators.unanswered; dev questions d023-d036 of the Lindehoven set)


def test_the_unanswered_rules_shapes() -> None:
    from serving.staff.generators.unanswered import missing_names, missing_number, missing_reason, missing_unit

    # a medicine by its INN stem, an abbreviation in capitals: named in the answering document or not
    assert missing_names("Hoeveel ibuprofen mag een volwassene per dag?", "Paracetamol 1000 mg") == ["ibuprofen"]
    assert missing_names("What dose of haloperidol for delirium?", "Geef medicatie op voorschrift") == ["haloperidol"]
    assert missing_names("Hoeveel enoxaparine geef ik?", "enoxaparine 40 mg eenmaal daags") == []
    assert missing_names("Hoeveel zuurstof bij COPD?", "Geef 15 liter zuurstof") == ["COPD"]
    assert missing_names("Wat doe ik bij een EWS van 5?", "Totale EWS 5: bel de zaalarts") == []
    # the label of a value the question gives is no subject (fresh-clone CI, 7 Dec: the question-privacy
    # test's "BSN 111222333" made the hand-rub question abstain)
    q = "Mevrouw J. de Vries, BSN 111222333, geboren 12-03-1961: hoe lang moet ik de handalcohol inwrijven?"
    assert missing_names(q, "Wrijf de handalcohol minimaal 30 seconden in.") == []
    # the unit asked, and a rate ("ml per uur")
    assert missing_unit("Hoeveel weken spuit ik door?", ["Geef de laatste dosis 12 uur vooraf."]) == ["weken"]
    assert missing_unit("Hoeveel weken spuit ik door?", ["Spuit 4 weken door na ontslag."]) == []
    assert missing_unit("Na hoeveel dagen vervang ik de lijn?", ["Vervang de lijn na 4 dagen."]) == []
    assert missing_unit("Met hoeveel ml per uur start ik?", ["Residu 150–400 ml: herhaal de scan"]) == ["ml per uur"]
    assert missing_unit("Met hoeveel ml per uur start ik?", ["Start met 20 ml per uur."]) == []
    assert missing_unit("Hoeveel paracetamol mag een kind?", ["250 mg per keer"]) == []  # no unit asked
    # a reason asked
    assert missing_reason("Waarom vul ik de ballon niet met zout?", ["Gebruik nooit fysiologisch zout."]) == ["waarom"]
    assert missing_reason("Waarom niet wrijven?", ["Wrijf niet, omdat wrijven een bloeduitstorting geeft."]) == []
    assert missing_reason("Why is the tube checked?", ["Check it so that feeds do not enter the lungs."]) == []
    # a number asked
    assert missing_number("Op welk toestelnummer bereik ik de schoonmaakdienst?", ["de schoonmaakdienst reinigt"])
    assert not missing_number("Op welk toestel bel ik het SIT?", ["bel het SIT via toestel 3030"])
    # ... for the party asked, not another's (Lindehoven dev d029)
    assert missing_number("Op welk toestelnummer bereik ik de schoonmaakdienst?",
                          ["Meld het aan de schoonmaakdienst.", "Bel de infectiepreventie via toestel 2650."])
    assert not missing_number("Which extension do I call the pharmacy on?", ["Call the pharmacy on extension 4100."])


def test_a_score_table_laid_out_by_parameter_finds_the_row_of_the_value() -> None:
    """Dev question d018: 'ademt 23 keer per minuut' is the row whose cell '1 punt: 9–11 of 21–24' holds 23."""
    from serving.staff.generators.answer_types import question_quantities
    from serving.staff.generators.extractive import Candidate, _cell_rows

    rows = [
        Candidate(1, 0, "Ademfrequentie (per minuut) — 0 punten: 12–20; 1 punt: 9–11 of 21–24; 2 punten: –; "
                        "3 punten: 8 of lager, of 25 en hoger", frozenset(), "row", "Ademfrequentie (per minuut)"),
        Candidate(1, 1, "Hartfrequentie (per minuut) — 0 punten: 51–90; 1 punt: 41–50 of 91–110; 2 punten: "
                        "111–130; 3 punten: 40 of lager, of 131 en hoger", frozenset(), "row",
                  "Hartfrequentie (per minuut)"),
        Candidate(1, 2, "Totale EWS 0–1 — Meetfrequentie: elke 8 uur", frozenset(), "row", "Totale EWS 0–1"),
    ]
    q = question_quantities("Mijn patiënt ademt 23 keer per minuut. Hoeveel punten telt dat mee in de EWS?")
    assert _cell_rows(rows, q) == {0}
    # an open range ("25 en hoger") holds any larger number: both rows then, and the question's words
    # (lexical overlap, similarity) choose between them
    assert _cell_rows(rows, question_quantities("Een hartslag van 100 per minuut?")) == {0, 1}
    assert _cell_rows(rows, []) == set()


def test_a_medicine_the_answering_document_does_not_name_abstains(service: Any) -> None:
    answer = ask(service, "Hoeveel ibuprofen mag een kind van 30 kilo per dag?")
    assert answer.abstained, answer.text
    assert "mg" not in answer.text.split("\n\n")[0]


def test_a_unit_the_document_states_no_amount_of_abstains_beside_its_answered_neighbour(service: Any) -> None:
    answer = ask(service, "Hoeveel weken moet de patiënt na ontslag doorgaan met enoxaparine?")
    assert answer.abstained, answer.text
    neighbour = ask(service, "Hoe laat geef ik de enoxaparine-injectie?")
    assert not neighbour.abstained and "18.00 uur" in neighbour.text, neighbour.text


def test_a_reason_asked_is_answered_only_where_the_protocol_gives_one(service: Any) -> None:
    answer = ask(service, "Waarom wissel ik de injectieplaats van enoxaparine links en rechts af?")
    assert answer.abstained, answer.text
    reason = ask(service, "Waarom mag ik na het inspuiten van enoxaparine niet over de injectieplaats wrijven?")
    assert not reason.abstained and "omdat wrijven een bloeduitstorting geeft" in reason.text, reason.text


def test_a_number_asked_must_be_in_the_answering_sentence_not_another_partys(service: Any) -> None:
    """Replays Lindehoven dev d029: asked for the cleaning service's extension, the answer quoted the
    sentence about the cleaning service (no number) and, beside it, another party's extension."""
    answer = ask(service, "Op welk toestelnummer bereik ik de teamleider als een patiënt is gevallen?")
    assert answer.abstained, answer.text
    assert "2222" not in answer.text.split("\n\n")[0]
    neighbour = ask(service, "Op welk toestelnummer bel ik het spoedinterventieteam na een val?")
    assert not neighbour.abstained and "toestel 2222" in neighbour.text, neighbour.text
