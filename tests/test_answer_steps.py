"""Procedures quoted as their steps, PDF table rows as units, and abstention on a near-topic question
the documents put out of scope (issue 17 items 2, 3 and 5).

The protocols are written here in the Markdown subset of ``benchmarks/data/make_hospital.py`` and
published by it as PDF (reportlab: each list number and table cell on a line of its own in pypdf's
text) and HTML (``<ol>``), as the hospital set is. Real components: the packaged embedder, the real
Ingestor into a Qdrant Edge store, the chat service as the API calls it.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from support import ask, ingested, nurse

from benchmarks.data.make_hospital import parse, to_html, to_pdf
from ingest.loaders.html import HtmlLoader
from ingest.loaders.pdf import PdfLoader
from retrieval.units import quotable_units
from vraagbaak_core.types import Answer

STAFF = nurse()

ENOXAPARINE = """# Tromboseprofylaxe met enoxaparine

## 1. Toepassingsgebied

Volwassen patiënten die tromboseprofylaxe krijgen. De dosering bij kinderen valt buiten dit protocol.

## 2. Dosering

De dosis hangt af van het lichaamsgewicht en de nierfunctie.

| Lichaamsgewicht | eGFR 30 of hoger | eGFR lager dan 30 |
|---|---|---|
| minder dan 50 kg | 20 mg eenmaal daags | 20 mg eenmaal daags |
| 50–100 kg | 40 mg eenmaal daags | 20 mg eenmaal daags |
| 101–150 kg | 60 mg eenmaal daags | 40 mg eenmaal daags |

Geef de dagelijkse dosis om 18.00 uur.

## 3. Toedienen

1. Controleer de voorgeschreven dosis aan de hand van het gewicht en de eGFR in de tabel.
2. Gebruik een voorgevulde spuit; verwijder de luchtbel niet.
3. Kies een injectieplaats in de buikwand, minimaal 5 cm van de navel.
4. Pak een huidplooi en spuit de vloeistof langzaam in.
5. Registreer de toediening in het toedienregistratiesysteem.

Waarschuw de arts bij een bloeding.
"""

INFUUS = """# Perifeer infuus

## 1. Toepassingsgebied

Alle volwassen patiënten met een perifeer infuus.
Centrale lijnen, PICC-lijnen en poortkatheters vallen onder protocol VP-042.

## 2. Verwijderen

Er is geen standaard vervangtermijn: een perifere katheter blijft zitten zolang hij nodig is.
Verwijder een katheter die 24 uur niet is gebruikt, na overleg met de arts.

## 3. Doorspoelen

1. Desinfecteer de toegangspoort 15 seconden met alcohol 70%.
2. Spoel voor en na elke toediening met 10 ml NaCl 0,9%.
3. Gebruik de push-pauzetechniek: spuit steeds 1 ml in met een korte pauze.
4. Sluit af met positieve druk.
"""

ISOLATIE = """# Isolatiemaatregelen

## 1. Aantrekken

Trek de middelen aan in de sluis, in deze volgorde:

1. Desinfecteer de handen met handalcohol.
2. Trek het schort met lange mouwen aan.
3. Zet het masker op.
4. Trek als laatste de handschoenen aan.

## 2. Uittrekken van beschermende middelen

1. Trek in de kamer eerst de handschoenen uit en desinfecteer de handen.
2. Trek het schort uit door het binnenstebuiten op te rollen.
3. Verlaat de kamer of ga de sluis in.
4. Zet het masker af door het alleen bij de elastieken vast te pakken.

## 3. Schoonmaak

Meld de soort isolatie bij de schoonmaakdienst, zodat het juiste middel wordt gebruikt.
"""


def _pdf(markdown: str) -> bytes:
    return to_pdf(parse(markdown), "nl")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Any:
    tmp = tmp_path_factory.mktemp("steps")
    docs = tmp / "docs"
    docs.mkdir()
    (docs / "enoxaparine.pdf").write_bytes(_pdf(ENOXAPARINE))
    (docs / "perifeer-infuus.md").write_text(INFUUS, encoding="utf-8")
    (docs / "isolatie.html").write_bytes(to_html(parse(ISOLATIE), "nl"))
    comps = ingested(tmp, docs, embedder)
    yield comps
    asyncio.run(comps.aclose())


def cited(answer: Answer) -> set[str]:
    return {c.source.rsplit("/", 1)[-1] for c in answer.citations}


# --------------------------------------------------------------------------- loaders and units (no model)


def test_pdf_table_rows_become_units_with_their_column_headers() -> None:
    """pypdf's plain text has one cell a line ("50–100 kg", "40 mg eenmaal daags", …): no row survived."""
    doc = PdfLoader().load(_pdf(ENOXAPARINE), "enoxaparine.pdf")
    text = "\n\n".join(b.text for b in doc.blocks)
    assert "| 50–100 kg | 40 mg eenmaal daags | 20 mg eenmaal daags |" in text
    rows = [u.text for u in quotable_units(text, "nl") if u.kind == "row"]
    assert "Lichaamsgewicht 50–100 kg — eGFR 30 of hoger: 40 mg eenmaal daags; eGFR lager dan 30: " \
        "20 mg eenmaal daags" in rows
    assert len(rows) == 3
    # everything else is still there, in order, once
    assert text.count("Geef de dagelijkse dosis om 18.00 uur.") == 1
    assert text.index("nierfunctie") < text.index("| Lichaamsgewicht") < text.index("18.00 uur")


def test_a_bulleted_list_in_a_pdf_is_no_table() -> None:
    md = "# X\n\n## 1. Controles\n\n- De arts bepaalt het trombocytenaantal op dag 5.\n" \
         "- Waarschuw de arts bij een daling onder 100.\n- Let op bloedingen en blauwe plekken.\n"
    text = "\n".join(b.text for b in PdfLoader().load(_pdf(md), "x.pdf").blocks)
    assert "|" not in text
    steps = [u.text for u in quotable_units(text, "nl") if u.kind == "steps"]
    assert steps and steps[0].startswith("De arts bepaalt het trombocytenaantal op dag 5.\nWaarschuw de arts")


def test_pdf_numbered_list_is_one_steps_unit_and_the_next_paragraph_is_not_in_it() -> None:
    doc = PdfLoader().load(_pdf(ENOXAPARINE), "enoxaparine.pdf")
    units = quotable_units("\n\n".join(b.text for b in doc.blocks), "nl")
    steps = [u.text for u in units if u.kind == "steps"]
    assert len(steps) == 1
    lines = steps[0].split("\n")
    assert [ln[:3] for ln in lines] == ["1. ", "2. ", "3. ", "4. ", "5. "]
    assert lines[1] == "2. Gebruik een voorgevulde spuit; verwijder de luchtbel niet."
    assert "Waarschuw de arts bij een bloeding." not in steps[0]
    assert "Waarschuw de arts bij een bloeding." in [u.text for u in units]
    assert not any(u.text in ("1.", "Toedienen") for u in units)  # no bare number, the heading is none


def test_html_ordered_list_keeps_its_numbers_and_a_numbered_heading_stays_a_heading() -> None:
    doc = HtmlLoader().load(to_html(parse(ISOLATIE), "nl"), "isolatie.html")
    text = "\n\n".join(b.text for b in doc.blocks)
    steps = [u.text for u in quotable_units(text, "nl") if u.kind == "steps"]
    assert steps[1].split("\n")[0] == "1. Trek in de kamer eerst de handschoenen uit en desinfecteer de handen."
    assert steps[0].startswith("Trek de middelen aan in de sluis, in deze volgorde:\n1. Desinfecteer")
    units = quotable_units("3. Doorspoelen\n\n1. Desinfecteer de poort.\n2. Spoel met 10 ml.\n", "nl")
    assert [u.kind for u in units if "Doorspoelen" in u.text] == []  # "3." before "1." is a heading


# --------------------------------------------------------------------------- answers through the service


def test_procedure_from_a_pdf_is_quoted_as_its_numbered_steps(service: Any) -> None:
    answer = ask(service, "Hoe geef ik een trombosespuitje?")
    lines = answer.text.split("\n")
    assert [ln[:3] for ln in lines[:5]] == ["1. ", "2. ", "3. ", "4. ", "5. "], answer.text
    assert "verwijder de luchtbel niet" in answer.text and "minimaal 5 cm van de navel" in answer.text
    assert re.search(r"\[1\]\.?$", lines[4]) and cited(answer) == {"enoxaparine.pdf"}


def test_how_do_i_question_gets_the_html_steps_whole(service: Any) -> None:
    answer = ask(service, "Hoe doe ik mijn beschermende kleding weer uit als ik de isolatiekamer verlaat?")
    assert answer.text.startswith("1. Trek in de kamer eerst de handschoenen uit"), answer.text
    assert "binnenstebuiten" in answer.text and "4. Zet het masker af" in answer.text
    assert "schoonmaakdienst" not in answer.text and cited(answer) == {"isolatie.html"}


def test_hoe_spoel_ik_is_a_procedure_not_the_scope_sentence(service: Any) -> None:
    answer = ask(service, "Hoe spoel ik een perifeer infuus goed door?")
    assert answer.text.startswith("1. Desinfecteer de toegangspoort"), answer.text
    assert "push-pauzetechniek" in answer.text and "Alle volwassen patiënten" not in answer.text


def test_table_row_from_the_pdf_answers_the_dose(service: Any) -> None:
    answer = ask(service, "Hoeveel enoxaparine geef ik iemand van 80 kg met een eGFR van 25?")
    assert answer.text.startswith("Lichaamsgewicht 50–100 kg — eGFR 30 of hoger: 40 mg eenmaal daags; "
                                  "eGFR lager dan 30: 20 mg eenmaal daags"), answer.text


def test_near_topic_question_the_protocol_puts_out_of_scope_abstains(service: Any) -> None:
    """"PICC" is in the sources only where the infusion protocol sends it elsewhere: it does not say."""
    answer = ask(service, "Hoe lang mag een PICC-lijn blijven zitten?")
    assert answer.abstained, answer.text
    assert answer.text.startswith("Ik kan dit niet beantwoorden op basis van de beschikbare documenten.")
    assert answer.maybe_relevant and answer.maybe_relevant[0].title in answer.text


def test_the_answerable_neighbour_is_still_answered(service: Any) -> None:
    answer = ask(service, "Wanneer haal ik een perifere katheter weg die niet gebruikt wordt?")
    assert not answer.abstained and "24 uur niet is gebruikt" in answer.text, answer.text


def test_asking_in_which_order_is_asking_for_the_steps() -> None:
    """Dev d004: 'In welke volgorde trek ik mijn schort, masker en handschoenen aan …' is answered by the
    numbered steps 'in deze volgorde:', not by the isolation table's rows."""
    from serving.staff.generators.answer_types import question_types

    assert "instruction" in question_types("In welke volgorde trek ik mijn schort, masker en handschoenen aan?")
    assert "instruction" in question_types("In what order do I put on gown, mask and gloves?")
    assert "instruction" not in question_types("Welk mondmasker draag ik bij open tbc?")


def test_a_table_row_whose_action_cell_instructs_is_an_instruction() -> None:
    """Dev d008: 'Ik krijg niets opgezogen … Wat doe ik dan?' is answered by the row 'no aspirate — Action:
    turn the patient onto the left side …', an instruction in its cell."""
    from serving.staff.generators.answer_types import unit_types

    row = "no aspirate — Action: turn the patient onto the left side, inject 10 to 20 ml of air"
    assert "instruction" in unit_types(row, "row")
    assert "instruction" not in unit_types("Druppelisolatie — Kamer: eenpersoonskamer; Kleur deurkaart: groen", "row")
