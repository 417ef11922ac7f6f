"""The answer check as a pure module: the normaliser, each kind of mismatch (Dutch and English), splitting."""

from __future__ import annotations

import pytest

from serving.staff.answer_check.check import check_answer, drop_unsupported, split_answer, split_source
from serving.staff.answer_check.facts import extract, same_values

HANDEN = (
    "# Protocol handhygiëne\n\n## Handalcohol of water en zeep\n\n"
    "Gebruik handalcohol (70–80%) als de handen niet zichtbaar vuil zijn. Wrijf de handalcohol "
    "**minimaal 30 seconden** in tot de handen droog zijn. Was de handen met water en zeep als ze "
    "zichtbaar vuil zijn.\n\n## Basisvoorwaarden\n\nDraag geen sieraden, horloges of polsbandjes aan "
    "handen en onderarmen. Bij twijfel belt de verpleegkundige de arts-microbioloog via toestel 4512."
)
MEDS = (
    "Concentrated potassium chloride is never stored on the wards. The maximum infusion rate on a "
    "general ward is 10 mmol per hour. High-risk medicines are always checked independently by a "
    "second nurse before administration. Give paracetamol 0.5 g four times a day, at most 2 g a day."
)
INSULINE = (
    "| Glucose (mmol/l) | Actie |\n|---|---|\n| < 4 | Geef 15 g glucose en meet na 15 minuten opnieuw |\n"
    "| ≥ 15 | Waarschuw de arts binnen 30 minuten |\n\nDien nooit meer dan 10 eenheden insuline extra toe "
    "zonder overleg met de arts."
)


def one(answer: str, sources: dict[int, str], language: str | None = None) -> tuple[str, str | None, str | None]:
    claims = check_answer(answer, sources, language)
    assert len(claims) == 1, claims
    return claims[0].status, claims[0].kind, claims[0].reason


# --------------------------------------------------------------------------- the normaliser


@pytest.mark.parametrize(("a", "b"), [
    ("twee uur", "2 uur"),
    ("30 sec", "30 seconden"),
    ("0,5 mg", "0.5 mg"),
    ("½ uur", "30 minuten"),
    ("een half uur", "0,5 uur"),
    ("anderhalf uur", "90 min"),
    ("1.000 mg", "1000 mg"),
    ("1,000 mg", "1 g"),
    ("vijfentwintig eenheden", "25 IE"),
    ("twenty-five units", "25 E"),
    ("500 mcg", "0,5 mg"),
    ("500 µg", "500 microgram"),
    ("2 l", "2000 ml"),
    ("een kwartier", "15 minuten"),
    ("three hours", "3 uur"),
    ("2 dagen", "48 uur"),
    ("14.00 uur", "14:00"),
    ("driemaal daags", "3 keer per dag"),
    ("twice a day", "2x per dag"),
    ("10 mmol/uur", "10 mmol per hour"),
    ("38,5 °C", "38.5 graden"),
])
def test_spelled_and_written_forms_are_equal(a: str, b: str) -> None:
    qa, qb = extract(a).quantities, extract(b).quantities
    assert len(qa) == 1 and len(qb) == 1, (qa, qb)
    assert qa[0].dim == qb[0].dim and same_values(qa[0].values, qb[0].values), (qa, qb)
    assert (qa[0].per_dim, qa[0].per) == (qb[0].per_dim, qb[0].per)


@pytest.mark.parametrize(("a", "b"), [("30 seconden", "30 minuten"), ("0,5 mg", "0,5 g"), ("2 uur", "3 uur"),
                                      ("10 mmol per uur", "10 mmol per minuut"), ("14:00", "15:00")])
def test_different_quantities_differ(a: str, b: str) -> None:
    qa, qb = extract(a).quantities[0], extract(b).quantities[0]
    assert not (qa.dim == qb.dim and same_values(qa.values, qb.values) and qa.per == qb.per)


def test_thresholds_ranges_extensions_codes_actors_and_negations_are_read() -> None:
    f = extract("Bel bij ≥ 15 mmol/l binnen 30 minuten tst. 4512 (protocol HH-2024-07); de arts geeft geen insuline.")
    by_text = {q.text: q for q in f.quantities}
    assert by_text["15 mmol/l"].bound == "min" and by_text["15 mmol/l"].per_dim == "volume"
    assert by_text["30 minuten"].bound == "max"
    assert by_text["4512"].extension
    assert f.codes == ["hh-2024-07"]
    assert [a.cls for a in f.actors] == ["arts"]
    assert [n.text for n in f.negations] == ["geen"]
    r = extract("Bezoek van 14:00 tot 20:00 uur; 70–80% alcohol; tussen 2 en 4 uur").quantities
    assert [sorted(q.values)[0] for q in r] == [840.0, 1200.0, 70.0, 80.0, 7200.0, 14400.0]
    assert extract("De tweede verpleegkundige, ten minste één keer, a second nurse").quantities[0].text == "één keer"
    assert [a.cls for a in extract("The nurse calls the physician; de dokter en de ic-verpleegkundigen").actors] == [
        "verpleegkundige", "arts", "arts", "ic-verpleegkundige"]


# --------------------------------------------------------------------------- faithful answers


@pytest.mark.parametrize("answer", [
    "Wrijf de handalcohol minimaal 30 seconden in tot de handen droog zijn [1].",
    "Wrijf de handalcohol minimaal dertig sec in tot de handen droog zijn [1].",
    "Tot de handen droog zijn, wrijf je de handalcohol minimaal 30 seconden in [1].",
    "Gebruik handalcohol (70-80 procent) als de handen niet zichtbaar vuil zijn [1].",
    "Als de handen niet zichtbaar vuil zijn, gebruik je handalcohol (70–80%) [1].",
    "Draag geen sieraden, horloges of polsbandjes aan handen en onderarmen [1].",
    "Bij twijfel belt de verpleegkundige via toestel 4512 de arts-microbioloog [1].",
])
def test_faithful_dutch_sentences_are_supported(answer: str) -> None:
    assert one(answer, {1: HANDEN})[0] == "supported"


@pytest.mark.parametrize("answer", [
    "Concentrated potassium chloride is never stored on the wards [1].",
    "On a general ward the maximum infusion rate is ten mmol an hour [1].",
    "A second nurse always checks high-risk medicines independently before administration [1].",
    "Give paracetamol 500 mg four times daily, at most 2000 mg per day [1].",
])
def test_faithful_english_sentences_are_supported(answer: str) -> None:
    assert one(answer, {1: MEDS})[0] == "supported"


def test_table_rows_and_thresholds_are_supported() -> None:
    assert one("Bij een glucose ≥ 15 mmol/l waarschuw je de arts binnen 30 minuten [1].", {1: INSULINE})[0] == \
        "supported"
    assert one("Geef nooit meer dan 10 eenheden insuline extra zonder overleg met de arts [1].", {1: INSULINE})[0] \
        == "supported"


# --------------------------------------------------------------------------- each mismatch, Dutch and English


@pytest.mark.parametrize(("answer", "source", "kind", "named"), [
    ("Wrijf de handalcohol minimaal 40 seconden in tot de handen droog zijn [1].", HANDEN, "number", "40 seconden"),
    ("Wrijf de handalcohol minimaal 30 minuten in tot de handen droog zijn [1].", HANDEN, "unit", "30 minuten"),
    ("Gebruik handalcohol (70–80%) als de handen zichtbaar vuil zijn [1].", HANDEN, "negation", "niet"),
    ("Draag sieraden, horloges of polsbandjes aan handen en onderarmen [1].", HANDEN, "negation", "geen"),
    ("Was de handen niet met water en zeep als ze zichtbaar vuil zijn [1].", HANDEN, "negation", "niet"),
    ("Bij twijfel belt de verpleegkundige de arts-microbioloog via toestel 4521 [1].", HANDEN, "actor", "4521"),
    ("Bij twijfel belt de teamleider de arts-microbioloog via toestel 4512 [1].", HANDEN, "actor", "teamleider"),
    ("Bij een glucose ≥ 15 mmol/l waarschuw je de arts binnen 30 minuten [1].", INSULINE.replace("≥ 15", "≥ 16"),
     "number", "15 mmol/l"),
    ("Bij een glucose < 15 mmol/l waarschuw je de arts binnen 30 minuten [1].", INSULINE, "threshold", "15 mmol/l"),
    ("Bij een glucose ≥ 15 mmol/l waarschuw je de verpleegkundige binnen 30 minuten [1].", INSULINE, "actor",
     "verpleegkundige"),
])
def test_dutch_mismatches_are_unsupported_with_their_reason(answer: str, source: str, kind: str, named: str) -> None:
    status, got_kind, reason = one(answer, {1: source})
    assert (status, got_kind) == ("unsupported", kind), reason
    assert reason is not None and named in reason


@pytest.mark.parametrize(("answer", "kind", "named"), [
    ("The maximum infusion rate on a general ward is 20 mmol per hour [1].", "number", "20 mmol"),
    ("The maximum infusion rate on a general ward is 10 mmol per minute [1].", "unit", "per minute"),
    ("The maximum infusion rate on a general ward is 10 mg per hour [1].", "unit", "10 mg"),
    ("Concentrated potassium chloride is always stored on the wards [1].", "negation", "never"),
    ("High-risk medicines are not checked independently by a second nurse before administration [1].", "negation",
     "not"),
    ("High-risk medicines are always checked independently by a second doctor before administration [1].", "actor",
     "doctor"),
    ("Give paracetamol 0.5 g four times a day, at most 3 g a day [1].", "number", "3 g"),
])
def test_english_mismatches_are_unsupported_with_their_reason(answer: str, kind: str, named: str) -> None:
    status, got_kind, reason = one(answer, {1: MEDS}, "en")
    assert (status, got_kind) == ("unsupported", kind), reason
    assert reason is not None and named in reason


def test_reasons_follow_the_language() -> None:
    nl = one("Wrijf de handalcohol minimaal 40 seconden in [1].", {1: HANDEN}, "nl")[2]
    en = one("Rub in the hand alcohol for at least 40 seconds [1].", {1: HANDEN}, "en")[2]
    assert nl is not None and nl.startswith("getal") and en is not None and en.startswith("number")


# --------------------------------------------------------------------------- unverifiable, citations, splitting


def test_no_marker_or_nothing_checkable_is_unverifiable_and_a_missing_source_is_unsupported() -> None:
    claims = check_answer("Dit is algemeen advies. De maan is van kaas [1]. Meld het binnen 48 uur [7].",
                          {1: HANDEN}, "nl")
    assert [(c.status, c.kind) for c in claims] == [
        ("unverifiable", "no_marker"), ("unverifiable", "nothing_checkable"), ("unsupported", "citation")]
    assert claims[2].cites == (7,)


def test_markers_after_the_full_stop_and_list_items_are_split_right() -> None:
    s = split_answer("Wrijf 30 sec in. [1] Bel tst. 4512 [1, 2].\n1. Stap één [2]\n- Stap twee [3]")
    assert [(x.body, x.cites) for x in s] == [
        ("Wrijf 30 sec in.", (1,)), ("Bel tst. 4512.", (1, 2)), ("Stap één", (2,)), ("Stap twee", (3,))]
    assert split_source(INSULINE)[0] == "Glucose (mmol/l); Actie"


def test_a_sentence_wrapped_over_lines_is_claimed_as_it_stands_in_the_answer() -> None:
    # replays SmolLM2 through vLLM: "Bronnen:\n[1] Bezoekregeling …" was claimed with a space for the line
    # break, so the claim was not a piece of the answer and the page could not mark it
    answer = "Wrijf de handalcohol minimaal\n40 seconden in [1]. Draag geen\nsieraden [1]."
    claims = check_answer(answer, {1: HANDEN}, "nl")
    at = 0
    for c in claims:
        found = answer.find(c.sentence, at)
        assert found >= 0, c.sentence
        at = found + len(c.sentence)
    assert claims[0].sentence == "Wrijf de handalcohol minimaal\n40 seconden in [1]."
    assert claims[0].status == "unsupported"


def test_a_sentence_citing_two_sources_is_checked_against_both() -> None:
    claims = check_answer("Wrijf de handalcohol 30 seconden in en geef maximaal 10 mmol per uur [1, 2].",
                          {1: HANDEN, 2: MEDS}, "nl")
    assert claims[0].status == "supported", claims


def test_drop_removes_only_unsupported_sentences() -> None:
    answer = ("Wrijf de handalcohol minimaal 30 seconden in tot de handen droog zijn [1]. "
              "Wrijf de handalcohol minimaal 40 seconden in [1]. Draag geen sieraden [1].")
    claims = check_answer(answer, {1: HANDEN})
    assert [c.status for c in claims] == ["supported", "unsupported", "supported"]
    assert drop_unsupported(answer, claims) == (
        "Wrijf de handalcohol minimaal 30 seconden in tot de handen droog zijn [1]. Draag geen sieraden [1].")


# ------------------------------------------------- a table row quoted under its header (issue 17, replayed)

PARACETAMOL_TABLE = """# Paracetamol bij kinderen

Geef paracetamol oraal, ten hoogste vier keer per 24 uur, met minstens 6 uur tussen twee giften.

| Lichaamsgewicht | Dosis per keer (oraal) | Maximaal per 24 uur |
|---|---|---|
| 10–15 kg | 180 mg | 720 mg |
| 16–25 kg | 300 mg | 1200 mg |
| 26–40 kg | 500 mg | 2000 mg |
"""


def test_a_row_quoted_under_its_header_is_checked_against_the_row() -> None:
    """The extractive answer quotes a row as "header value — header: value"; its words align with the
    header row, its numbers with the row. It was marked unsupported ("'500 mg' staat niet in de bron")."""
    row = "Lichaamsgewicht 26–40 kg — Dosis per keer (oraal): 500 mg; Maximaal per 24 uur: 2000 mg [1]"
    [claim] = check_answer(row, {1: PARACETAMOL_TABLE}, "nl")
    assert claim.status == "supported", claim.reason


@pytest.mark.parametrize("wrong", [
    "Lichaamsgewicht 26–40 kg — Dosis per keer (oraal): 300 mg; Maximaal per 24 uur: 2000 mg [1]",
    "Lichaamsgewicht 26–40 kg — Dosis per keer (oraal): 500 mg; Maximaal per 24 uur: 3000 mg [1]",
    "Lichaamsgewicht 26–40 kg — Dosis per keer (oraal): 5000 mg; Maximaal per 24 uur: 2000 mg [1]",
])
def test_a_row_with_a_number_changed_is_unsupported(wrong: str) -> None:
    [claim] = check_answer(wrong, {1: PARACETAMOL_TABLE}, "nl")
    assert claim.status == "unsupported", wrong


def test_a_row_and_the_next_unit_are_two_sentences() -> None:
    """A row has no full stop: the marker ends it, so the sentence after it is checked on its own."""
    answer = ("Lichaamsgewicht 26–40 kg — Dosis per keer (oraal): 500 mg; Maximaal per 24 uur: 2000 mg [1] "
              "Geef paracetamol oraal, ten hoogste vier keer per 24 uur [1].")
    claims = check_answer(answer, {1: PARACETAMOL_TABLE}, "nl")
    assert [c.status for c in claims] == ["supported", "supported"], claims
