"""Care terms (configs/care_terms.yaml, retrieval.care_terms): lay words, English equivalents, and
the BM25 query expansion they give."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.analysis import Analyzer, AnalyzerConfig, tokenize
from retrieval.care_terms import CareTerms, care_terms_from_settings, load_care_terms, parse_care_terms
from vraagbaak_core.settings import PROJECT_ROOT, ConfigError, SparseSettings


@pytest.fixture(scope="module")
def care() -> CareTerms:
    terms = care_terms_from_settings(SparseSettings())  # the product's list
    assert terms is not None
    return terms


def test_lay_words_find_the_professional_term_in_any_inflection(care: CareTerms) -> None:
    assert "decubitus" in care.expand_text("Wat doe ik met doorligwonden op de hiel?", "nl")
    assert "antistolling" in care.expand_text("Mijn patiënt gebruikt bloedverdunners", "nl")
    assert "trombocyten" in care.expand_text("Hoeveel bloedplaatjes zijn te weinig?", "nl")
    assert "tuberculose" in care.expand_text("Welk masker bij open tbc?", "nl")


def test_dutch_questions_get_english_terms_and_english_questions_dutch_ones(care: CareTerms) -> None:
    assert {"anaphylaxis", "epinephrine"} <= care.expand_text("Hoeveel adrenaline bij een allergische shock?", "en")
    assert {"nasogastric", "tube"} <= care.expand_text("Hoe controleer ik de ligging van de maagsonde?", "en")
    assert "mazelen" in care.expand_text("Which mask should I wear for measles?", "nl")
    assert "verblijfskatheter" in care.expand_text("How often is a urinary catheter replaced?", "nl")


def test_a_phrase_matches_only_as_a_phrase(care: CareTerms) -> None:
    # "lage suiker" is a term; "lage" and "suiker" apart are not that term
    assert "hypoglykemie" in care.expand_text("De patiënt heeft een lage suiker", "nl")
    assert "hypoglykemie" not in care.expand_text("De suiker is niet lage maar hoog", "nl")


def test_expand_terms_leaves_out_what_the_question_already_says(care: CareTerms) -> None:
    tokens = tokenize("decubitus en doorligwond")
    out = care.expand_terms(tokens, "nl")
    assert "decubitus" not in out and "doorligwond" not in out and "drukplek" in out
    assert care.expand_terms([], "nl") == set()
    assert care.expand_text("Wat zijn de bezoektijden van de kantine?", "nl") <= {"bezoekuren", "bezoektijd"}


def test_the_query_gets_synonyms_at_a_lower_weight_and_keeps_its_own_terms(care: CareTerms) -> None:
    plain = Analyzer(AnalyzerConfig()).query_weights("Wat doe ik bij een doorligwond?", "nl")
    expanded = Analyzer(AnalyzerConfig(care_terms=care, care_weight=0.5)).query_weights(
        "Wat doe ik bij een doorligwond?", "nl"
    )
    assert "decubitus" not in plain and expanded["decubitus"] == 0.5
    assert "ulcer" in expanded  # the English equivalent, stemmed in English ("pressure ulcer")
    for term, weight in plain.items():
        assert expanded[term] == weight  # the question's own terms are never lowered
    off = Analyzer(AnalyzerConfig(care_terms=care, care_weight=0.0)).query_weights("een doorligwond", "nl")
    assert "decubitus" not in off


def test_the_setting_turns_it_off_and_relative_paths_resolve_to_the_project() -> None:
    assert care_terms_from_settings(SparseSettings(care_terms=None)) is None
    assert SparseSettings().care_terms == Path("configs/care_terms.yaml")
    assert (PROJECT_ROOT / "configs" / "care_terms.yaml").is_file()
    with pytest.raises(ValueError):
        SparseSettings(care_terms_weight=1.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("groups: [{nl: [decubitus], fr: [escarre]}]", "fr"),
        ("groups: [{nl: ['']}]", "non-empty"),
        ("groups: {nl: x}", "groups"),
        ("groups: [nl: [a", "YAML"),
    ],
)
def test_a_bad_list_is_a_config_error_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_care_terms(text, "test.yaml")


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing"):
        load_care_terms(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- verb forms and equivalents


@pytest.mark.parametrize(
    ("token", "infinitive"),
    [
        ("valt", "vallen"),  # third person: Snowball leaves the -t, "valt" and "vallen" never met
        ("controleert", "controleren"),  # a long vowel written double before the -t
        ("meldt", "melden"),
        ("toegediend", "toedienen"),  # a participle with a separable particle before its ge-
        ("gecontroleerd", "controleren"),
        ("gevallen", "vallen"),  # a strong participle
        ("geeft", "geven"),
    ],
)
def test_a_dutch_verb_form_gets_its_infinitive(token: str, infinitive: str) -> None:
    from retrieval.verb_forms import dutch_verb_forms

    assert infinitive in dutch_verb_forms(token)


def test_words_without_a_verbs_shape_get_no_forms() -> None:
    from retrieval.verb_forms import dutch_verb_forms

    assert dutch_verb_forms("doorligwonden") == [] and dutch_verb_forms("zet") == []
    assert dutch_verb_forms("co2") == []
    assert "valt" not in dutch_verb_forms("valt")  # never the token itself


def test_a_conjugated_verb_matches_the_care_term_of_its_infinitive(care: CareTerms) -> None:
    """'Wat doe ik als een patiënt valt?' found no falls term: 'valt' and 'vallen' have other stems."""
    assert "valpreventie" in care.expand_text("Wat doe ik als een patiënt valt?", "nl")
    assert "administer" in care.expand_text("Wie controleert de medicatie voordat die wordt toegediend?", "en")
    assert "check" in care.expand_text("Wie controleert de medicatie?", "en")


def test_equivalents_give_synonyms_in_the_same_language_and_translations_in_the_other(care: CareTerms) -> None:
    analyzer = Analyzer(AnalyzerConfig(care_terms=care))
    eq = analyzer.equivalents("Hoe voorkom ik doorligwonden?", "nl")
    assert "decubitus" in eq["doorligwond"]["nl"]  # the lay word's professional term
    assert "pressur ulcer" in eq["doorligwond"]["en"]  # a phrase: its stems joined by a space
    eq = analyzer.equivalents("Wie controleert hoogrisicomedicatie voordat die wordt toegediend?", "nl")
    assert {"controleer", "controler"} <= eq["controleert"]["nl"]  # the verb's other forms
    assert "administr" in eq["toediend"]["en"] and "check" in eq["controleert"]["en"]
    assert "high risk medicin" in eq["hoogrisicomediceer"]["en"]
    # without a care list only the verb forms remain
    plain = Analyzer(AnalyzerConfig()).equivalents("Hoe voorkom ik doorligwonden als de patiënt valt?", "nl")
    assert "doorligwond" not in plain and "val" in plain["valt"]["nl"]
