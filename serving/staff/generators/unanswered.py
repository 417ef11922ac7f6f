"""What a question asks that the answering source does not hold: the extractive answerer's reasons to
abstain beyond a low score (issue 17 item 5, "the most dangerous failure in care").

Each function looks at the question and at what would be quoted (or the answering document) and names
what is missing; an empty list means nothing is. They are general rules of how a question asks, not
lists of this hospital's words:

- :func:`missing_names`: a medicine named by its international nonproprietary name stem (WHO INN
  stems: "-profen", "-azepam", "-peridol" …) or an abbreviation written in capitals ("COPD") that the
  answering document does not name. A dose of another medicine is not an answer.
- :func:`missing_unit`: "hoeveel weken / dagen / liter / ml …" answered by a text without that unit.
- :func:`missing_reason`: "waarom / why" answered by a text that gives no reason ("omdat", "zodat" …).
- :func:`missing_number`: "op welk toestelnummer …" answered by a text without a number for the party
  asked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval.analysis import fold

# WHO INN stems (and their Dutch spellings) of common medicine groups; a word ending in one is a medicine.
_INN_STEMS = (
    "profen", "fenac", "azepam", "azolam", "olol", "pril", "sartan", "statine", "statin", "cilline",
    "cillin", "mycine", "mycin", "floxacine", "floxacin", "prazol", "prazole", "tidine", "triptan",
    "parine", "parin", "codon", "codone", "morfine", "morphine", "fentanyl", "setron", "dronaat",
    "dronate", "gliptine", "gliptin", "gliflozine", "gliflozin", "cycline", "conazol", "conazole",
    "dipine", "semide", "thiazide", "peridol", "oxetine", "pramine", "triptyline", "astine",
    "cortison", "cortisone", "methason", "methasone", "nisolon", "nisolone", "xaban", "gatran",
    "vastatine", "lukast", "terol", "tropium", "zepam",
)
_INN = re.compile(r"\b[a-z]{3,}(?:" + "|".join(sorted(_INN_STEMS, key=len, reverse=True)) + r")\b")
# an abbreviation: two to six capitals (a digit may follow), as written in the question
_ACRONYM = re.compile(r"\b[A-Z][A-Z]{1,5}[0-9]?\b")
_LABEL_OF_VALUE = re.compile(r"[\s:=-]*(?:van\s+|of\s+)?\d")


def missing_names(question: str, document_text: str, known: Sequence[str] = ()) -> list[str]:
    """Medicines and abbreviations the question names that ``document_text`` (the answering document's
    quoted units, titles and sections) does not; ``known`` are abbreviations with an equivalent there
    (a care term's other forms)."""
    text = fold(document_text)
    out = []
    for m in _INN.finditer(fold(question)):
        word = m.group(0)
        if word[: max(5, len(word) - 2)] not in text:
            out.append(word)
    for m in _ACRONYM.finditer(question):
        word = m.group(0)
        if word.lower() in known or _LABEL_OF_VALUE.match(question, m.end()):
            continue  # "BSN 111222333", "EWS 5": the label of a value the question gives, not its subject
        if not re.search(rf"\b{re.escape(word.lower())}", text):
            out.append(word)
    return out


_UNITS: dict[str, str] = {  # the unit asked ("hoeveel weken") -> how a text states an amount of it
    r"weken|week": r"weken?|weeks?",
    r"dagen": r"dag(?:en)?|days?|etmaal|24 uur",
    r"uren|uur": r"uur|uren|hours?|h",
    r"minuten": r"min(?:uten|uut)?|minutes?",
    r"maanden": r"maand(?:en)?|months?",
    r"liters?|litres?": r"liters?|litres?|l|l/min",
    r"ml|milliliters?": r"ml|milliliters?|millilitres?",
    r"grams?": r"gram|grams|g",
    r"mg|milligrams?": r"mg|milligrams?",
    r"eenheden|units": r"eenhed(?:en)?|units?|ie",
    r"weeks|days|hours|minutes|months": r"weeks?|days?|hours?|minutes?|months?|weken?|dag(?:en)?|uur|maand(?:en)?",
}
_ASKED_UNIT = re.compile(r"\b(?:hoeveel|how many|how much)\s+(" + "|".join(_UNITS) + r")\b"
                         r"(?:\s+per\s+(uur|hour|dag|day|minuut|minute|kg|kilo|week))?")
_PER = {"uur": "uur|hour|h", "hour": "uur|hour|h", "dag": "dag|day|24 uur|etmaal", "day": "dag|day|24 hours",
        "minuut": "minuut|min|minute", "minute": "minuut|min|minute", "kg": "kg|kilo\\w*",
        "kilo": "kg|kilo\\w*", "week": "week"}


def missing_unit(question: str, answer_texts: Sequence[str]) -> list[str]:
    """The unit a "hoeveel <unit>" question asks for when no quoted text states an amount in it
    ("Hoeveel weken …" answered with "4 uur")."""
    m = _ASKED_UNIT.search(fold(question))
    if not m:
        return []
    asked, per = m.group(1), m.group(2)
    forms = next(v for k, v in _UNITS.items() if re.fullmatch(k, asked))
    rate = rf"\s*(?:per|/)\s*(?:{_PER[per]})\b" if per else ""  # "ml per uur": an amount per hour
    amount = re.compile(r"\d(?:[\d.,]*)\s*(?:tot|-|–|à|to)?\s*[\d.,]*\s*(?:" + forms + r")\b" + rate
                        + r"|\b(?:een|twee|drie|vier|vijf|zes|zeven|acht|negen|tien|one|two|three|four|five|six)\s+(?:"
                        + forms + r")\b" + rate)
    if any(amount.search(fold(t)) for t in answer_texts):
        return []
    return [f"{asked} per {per}" if per else asked]


_NUMBER_ASKED = re.compile(
    r"\b(?:(?:welk|welke|wat is het|wat is de)\s+(?:\w+)?(?:nummer|toestel\w*)"
    r"|(?:op|via) welk (?:\w+)?(?:nummer|toestel)"
    r"|(?:which|what) (?:phone |telephone |extension )?(?:number|extension))\b"
)
_PHONE = re.compile(r"\b\d{3,}\b")


# whom the number is for: "bereik ik de schoonmaakdienst", "bel ik het SIT", "do I call the pharmacy"
_PARTY = re.compile(r"\b(?:bereik|bel|contacteer|waarschuw|roep|reach|call|contact|page)\s+(?:ik|je|u|we|i|you)?\s*"
                    r"(?:de|het|een|the|a)?\s*([^\W\d_]{3,})")


def missing_number(question: str, answer_texts: Sequence[str]) -> list[str]:
    """["nummer"] when the question asks which (extension) number and no quoted text holds one for the
    party it names: "op welk toestel bereik ik de schoonmaakdienst" is not answered by a sentence about
    the cleaning service beside another party's extension."""
    q = fold(question)
    m = _NUMBER_ASKED.search(q)
    if not m:
        return []
    numbered = [fold(t) for t in answer_texts if _PHONE.search(t)]
    party = _PARTY.search(q)
    if party:
        stem = party.group(1)[: max(5, len(party.group(1)) - 2)]
        numbered = [t for t in numbered if stem in t]
    return [] if numbered else [m.group(0)]


_WHY = re.compile(r"\b(?:waarom|why)\b")
_REASON = re.compile(
    r"\b(?:omdat|want|zodat|doordat|daardoor|daarom|anders|om (?:\w+ ){0,6}te|zo (?:beperkt|voorkomt|voorkom)\w*"
    r"|because|so that|in order to|to (?:prevent|avoid|reduce)|otherwise|since|as this)\b"
)


def missing_reason(question: str, answer_texts: Sequence[str]) -> list[str]:
    """["waarom"] when a why-question is answered by texts that give no reason."""
    q = fold(question)
    m = _WHY.search(q)
    if not m or any(_REASON.search(fold(t)) for t in answer_texts):
        return []
    return [m.group(0)]
