"""What kind of answer a question expects, and what kinds of answer a quotable unit holds.

Rules, Dutch and English, on folded text (lowercase, no diacritics): "hoe lang" / "how long" expects a
duration, "hoe vaak" a frequency, "hoeveel" / "welke dosis" an amount with a unit, "wie" / "welk
toestel" a role or number, "wat doe ik" / "how do I" instruction steps, "wanneer" a time or moment,
"vanaf welke waarde" a threshold, "waar" a place or system, "mag ik" a permission or prohibition.
A unit holds a type when its text has the matching shape: a number with a time unit, "elke 2 uur",
"500 mg", "de arts" or "toestel 4444", an imperative or a list of steps, and so on.

Also here: numbers in a question matched against a table row's key ("50–74 kg", "< 4 mmol/l", "≥ 7",
"18 of lager"), and the purpose/scope sentences ("Dit protocol beschrijft …") and document metadata
("Versie 3.2 — vastgesteld …") that answer nothing.
"""

from __future__ import annotations

import re
from typing import Literal

from retrieval.analysis import fold

AnswerType = Literal[
    "duration", "frequency", "amount", "actor", "instruction", "time", "clock", "threshold", "location",
    "permission", "preference",
]

_NUM = r"(?:\d+(?:[.,]\d+)?|een|één|twee|drie|vier|vijf|zes|zeven|acht|negen|tien|elf|twaalf|vijftien|twintig" \
       r"|dertig|veertig|vijftig|zestig|half|halve|anderhalf|one|two|three|four|five|six|seven|eight|nine|ten" \
       r"|twelve|fifteen|twenty|thirty|forty|fifty|sixty|a|an)"
_TIME_UNIT = r"(?:sec(?:onde|onden|onds?)?|s|min(?:uut|uten|utes?)?|u|uur|uren|h|hr|hrs|hours?|dag(?:en)?|days?" \
             r"|we(?:ek|ken|eks?)|maand(?:en)?|months?|jaar|jaren|years?|etmaal|etmalen|nacht(?:en)?|nights?)"
_AMOUNT_UNIT = r"(?:mg|g|gram|µg|ug|mcg|microgram|milligram|ml|cc|l|liter|dl|ie|eh|eenheden|units?|iu|mmol(?:/l)?" \
               r"|mol|%|procent|percent|kg|litres?|liters?|druppels?|drops?|tabletten|tablets?|capsules?" \
               r"|puffs?|pufjes|stuks|keer" \
               r"|maal|times|bezoekers|visitors|personen|people|tekens|characters|cm|mm|graden|degrees|°c?|mmhg" \
               r"|ampul(?:len)?|zakjes?|sachets?|doses|dosis)"

# a count of people answers "hoeveel mensen": "twee bevoegde medewerkers", "two nurses"
_PEOPLE = r"(?:medewerkers|verpleegkundigen|zorgverleners|collega'?s|mensen|personen|hulpverleners|nurses|staff" \
          r"|members of staff|people|persons|colleagues)"

_Q: dict[AnswerType, re.Pattern[str]] = {
    "duration": re.compile(
        r"\bhoe (?:lang|snel|spoedig|kort)\b|\bbinnen (?:welke|hoeveel|hoelang)\b|\bhoelang\b"
        r"|\bhow (?:long|soon|quickly|fast)\b"
        r"|\bwithin (?:what|which|how)\b|\bhoeveel (?:tijd|uur|uren|minuten|dagen|seconden|weken)\b"
        r"|\bhow many (?:hours|minutes|days|seconds|weeks)\b|\b(?:termijn|duur|duration|time limit)\b"),
    "frequency": re.compile(
        r"\bhoe (?:vaak|dikwijls|regelmatig)\b|\bom de hoeveel\b|\bhoeveel keer\b|\bhow (?:often|frequently)\b"
        r"|\bhow many times\b|\b(?:interval|frequentie|frequency)\b"),
    "amount": re.compile(
        r"\bhoeveel\b|\b(?:dosis|dosering|doseren|doseer|hoeveelheid|dose|doses|dosage|dosing)\b|\bhow (?:much|many)\b"
        r"|\bmaxima(?:al|le)\b|\bmaximum\b|\bhoe (?:hoog|veel|groot|zwaar)\b|\bhow (?:high|big|large)\b"
        r"|\b(?:snelheid|rate|concentratie|concentration)\b"),
    "actor": re.compile(
        r"\bwie\b|\bwho(?:m)?\b|\bwelk(?:e)? (?:toestel|nummer|telefoonnummer|afdeling|arts|functionaris|discipline)\b"
        r"|\bwhich (?:extension|number|department|doctor|team)\b"
        r"|\b(?:toestelnummer|telefoonnummer|phone number|extension)\b"
        r"|\bwhat (?:number|extension)\b|\bwelk (?:nummer|toestel)\b|\bbel ik\b|\bdo i call\b|\bcontact\b"),
    "instruction": re.compile(
        r"\bwat (?:doe|moet|kan|dien) (?:ik|je|we|u)\b|\bwat te doen\b|\bhoe (?:moet|kan|doe|ga|zorg|pak|leg|meet|geef"
        r"|dien|verwijder|verzorg|plaats|controleer|handel|reageer|screen|meld|voorkom|bereid|check|beoordeel)\b"
        r"|\bwhat (?:do|should|must|can) (?:i|we|you)\b|\bwhat to do\b|\bhow (?:do|should|must|can|to) (?:i|we|you)?\b"
        r"|\b(?:stappen|steps|procedure|handelwijze|aanpak)\b|\bwelke maatregelen\b|\bwhich measures\b"
        r"|\b(?:in )?welke volgorde\b|\bin what order\b|\bwhich order\b"
        r"|\bhoe \w+ (?:ik|je|u|we)\b"),  # "hoe spoel ik", "hoe bepaal ik"
    "clock": re.compile(r"\bhoe laat\b|\bwhat time\b|\bat what time\b|\b(?:tijdstip|time of day)\b"),
    "time": re.compile(
        r"\bwanneer\b|\bhoe laat\b|\b(?:bezoek|openings|bezoeks)?tijden\b|\bwhen\b|\bwhat time\b|\bhours\b|\bmoment\b"),
    "threshold": re.compile(
        r"\bvanaf (?:welke|hoeveel|wanneer)\b|\bbij welke\b|\btot (?:welke|hoeveel|wat)\b|\bup to (?:what|which)\b"
        r"|\b(?:grens|grenswaarde|afkapwaarde|drempel|threshold|cut-?off)\b"
        r"|\bat what (?:level|value|score|temperature)\b|\bwelke (?:score|waarde)\b|\bwhich (?:score|value)\b"
        r"|\blager dan\b"
        r"|\bhoger dan\b|\bbelow\b|\babove\b|\bonder\b|\bboven\b"),
    "location": re.compile(r"\bwaar\b|\bwhere\b|\bin welk(?:e)? (?:systeem|formulier|dossier)\b|\bwaarin\b"),
    # which one is best, safest, preferred: only a protocol that states a preference answers it
    "preference": re.compile(
        r"\b(?:welk|welke|wat|which|what)\b.*\b(?:veiligst\w*|voorkeur|eerste keus|eerste keuze|het best|beste"
        r"|safest|best|preferred|preferable|first choice|first-line)\b"),
    "permission": re.compile(
        r"^(?:mag|mogen|moet|moeten|kan|kun|kunnen|is|zijn|are|is|may|can|should|must|do|does)\b"
        r"|\b(?:mag|mogen) (?:ik|je|we|u)\b|\b(?:toegestaan|verboden|allowed|permitted)\b"),
}

_IMPERATIVE_NL = (
    "gebruik draag was wrijf meld zet controleer bel waarschuw leg geef meet noteer houd laat blijf zorg roep vraag "
    "beoordeel herhaal inspecteer screen bespreek neem start stop dien spoel verwijder vervang plak ontsmet "
    "desinfecteer trek doe sluit open reinig droog volg schakel pak plaats breng draai til verschoon verzorg "
    "verbind vul lees scan wissel check bewaar gooi rapporteer registreer informeer overleg raadpleeg bepaal "
    "hang prik tel begin beëindig beeindig handel vermijd voorkom zie kijk luister vergrendel deel raak"
).split()
_IMPERATIVE_EN = (
    "use wear wash rub report call tell give measure record keep place remove check stop start inform ask do "
    "don't never always put lay take clean dry follow hang note document assess repeat inspect screen discuss "
    "administer prepare flush change replace disinfect close open lock read scan store dispose avoid prevent "
    "contact notify monitor observe count turn apply"
).split()
_IMPERATIVE = frozenset(fold(w) for w in _IMPERATIVE_NL + _IMPERATIVE_EN)

# "Vermoedt u een overdosering, waarschuw dan direct de arts": the imperative after its condition;
# "Stelt u decubitus vast, registreer de wond": the imperative after a comma
_THEN_VERB = re.compile(r"\b(\w+) dan\b|[,;:]\s+(\w+)\b")  # ":" a table cell ("Action: turn …")

_U: dict[AnswerType, re.Pattern[str]] = {
    "duration": re.compile(rf"\b{_NUM}\s*(?:[-–]\s*{_NUM}\s*)?{_TIME_UNIT}\b|\b(?:direct|onmiddellijk|meteen|"
                           r"zo snel mogelijk|immediately|at once|as soon as possible)\b"),
    "frequency": re.compile(r"\b(?:elke|ieder|iedere|om de|per (?:dag|dienst|uur|week|nacht|etmaal|shift|day|hour|week)"
                            r"|dagelijks|wekelijks|eenmaal|tweemaal|driemaal|viermaal|every|each|daily|hourly|weekly"
                            r"|once|twice|times (?:a|per)|x per|keer per|maal per)\b|\b\d+\s*(?:x|keer|maal)\b"),
    "amount": re.compile(rf"\b{_NUM}\s*(?:[-–]\s*{_NUM}\s*)?{_AMOUNT_UNIT}(?=\W|$)|\b(?:maximaal|minimaal|maximum|"
                         r"minimum|ten hoogste|ten minste|at most|at least|up to|tot)\s+\d"
                         rf"|\b{_NUM}\s+(?:\w+\s+)?{_PEOPLE}\b"),
    "actor": re.compile(r"\b(?:arts|artsen|verpleegkundige|verpleegkundigen|apotheker|apotheek|specialist|"
                        r"teamleider|leidinggevende|functionaris|consulent|wondconsulent|servicedesk|balie|"
                        r"diëtist|dietist|fysiotherapeut|intensivist|anesthesist|hoofdbehandelaar|zaalarts|"
                        r"arts-assistent|dienstdoende|coördinator|coordinator|team|spoedinterventieteam|"
                        r"physician|doctor|nurse|nurses|pharmacist|pharmacy|consultant|specialist|team|"
                        r"toestel|tel|extension|ext|pieper|pager|bleep)\b|\b\d{3,5}\b"),
    # a time of day: "om 18.00 uur", "at 10:00", "'s avonds" (what "hoe laat" asks for)
    "clock": re.compile(r"\b\d{1,2}[:.]\d{2}\b|\b(?:om|at) \d{1,2}(?: uur|[ap]m| o'clock)\b"
                        r"|'s (?:nachts|ochtends|avonds|middags)|\bat (?:night|bedtime)\b|\bbij het slapengaan\b"),
    "time": re.compile(r"\b\d{1,2}[:.]\d{2}\b|\b\d{1,2} uur\b|\b(?:voor|na|binnen|bij|tijdens|before|after|within|"
                       r"during|'s (?:nachts|ochtends|avonds|middags)|at night)\b"),
    "threshold": re.compile(r"[<>≤≥]|\b(?:hoger|lager|meer|minder|groter|kleiner) dan\b"
                            r"|\bof (?:hoger|lager|meer|minder)\b"
                            r"|\b(?:boven|onder|vanaf|tot|below|above|under|over|or (?:more|less|higher|lower)|"
                            r"at least|ten minste|minimaal|maximaal)\b"
                            r"|\b\d+(?:[.,]\d+)? to \d"),  # "1 to 5.5": a bounded range (Dutch "tot" above)
    "location": re.compile(r"\b(?:in het|in de|via|bij de|op de|systeem|system|formulier|form|balie|kamer|room|"
                           r"afdeling|ward|dossier|epd|vim|intranet|kast|koelkast|apotheek|map)\b"),
    "preference": re.compile(
        r"\b(?:bij voorkeur|de voorkeur|voorkeur voor|eerste keus|eerste keuze|het veiligst|veiligste|het best|beste"
        r"|preferably|preferred|first choice|first-line|is best|the best|safest|is safer|aanbevolen|recommended)\b"),
    "permission": re.compile(r"\b(?:niet|geen|nooit|alleen|uitsluitend|toegestaan|verboden|mag|mogen|never|not|"
                             r"no|only|allowed|permitted|forbidden|must|moet|moeten|altijd|always)\b"),
}

_PURPOSE = re.compile(
    r"^(?:dit|deze|het) (?:protocol|document|werkinstructie|richtlijn|beleid|procedure|handboek|reglement|stuk)\b"
    r"|^(?:this|the) (?:protocol|document|policy|procedure|guideline|handbook|instruction)\b"
    r"|\b(?:is bedoeld voor|is van toepassing op|geldt voor alle|beschrijft hoe|beschrijft de|beschrijft wat"
    r"|describes how|describes the|applies to all|is intended for|aims to)\b"
    r"|^(?:doel|purpose|scope|reikwijdte|inleiding|introduction)\b")
_META = re.compile(
    r"\b(?:versie|version|vastgesteld|eigenaar|owner|protocolnummer|documentnummer|document (?:ms|nr)|"
    r"herzien|herziening|review date|revisie|auteur|author|goedgekeurd|approved|geldig (?:tot|vanaf)|"
    r"ingangsdatum|effective date)\b")

_RANGE = re.compile(r"(?P<op>[<>≤≥]=?)?\s*(?P<a>\d+(?:[.,]\d+)?)\s*(?:(?:[-–—]|tot|to|t/m)\s*(?P<b>\d+(?:[.,]\d+)?))?"
                    r"(?:\s*(?:\S+\s+)?(?P<tail>of (?:hoger|meer|lager|minder)|(?:or )?(?:more|higher|less|lower|"
                    r"en hoger|en lager|and above|and below|of ouder|or older|en ouder|of jonger)))?")
_QNUM = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)?(?![\w])")


def question_types(question: str) -> frozenset[AnswerType]:
    """The answer types ``question`` expects (empty when none is recognised)."""
    q = fold(question).strip()
    found = {t for t, rx in _Q.items() if rx.search(q)}
    if "duration" in found or "frequency" in found:
        found.discard("amount")  # "hoeveel uur" is a duration, not an amount
        found.discard("time")
    if "clock" in found:  # "hoe laat": a time of day, not any sentence with "voor" or "na" in it
        found.discard("time")
    if found - {"permission"}:
        found.discard("permission")
    return frozenset(found)


def unit_types(text: str, kind: str = "sentence") -> frozenset[AnswerType]:
    """The answer types the unit's text holds."""
    t = fold(text)
    found: set[AnswerType] = {ty for ty, rx in _U.items() if rx.search(t)}
    first = re.match(r"\W*(\w+(?:'t)?)", t)
    if kind == "steps" or (first and first.group(1) in _IMPERATIVE) or re.search(r"\b(?:moet|dient|must|should)\b", t) \
            or any(w in _IMPERATIVE for pair in _THEN_VERB.findall(t) for w in pair):
        found.add("instruction")
    return frozenset(found)


def is_purpose(text: str) -> bool:
    """A sentence about the document rather than its subject ("Dit protocol beschrijft …")."""
    return bool(_PURPOSE.search(fold(text).strip()))


def is_meta(text: str) -> bool:
    """Document metadata: version, owner, number, dates of adoption or review."""
    return bool(_META.search(fold(text)))


def _num(s: str) -> float:
    return float(s.replace(",", "."))


# the unit after a number, in one spelling: "30 kilo" and "30 kg" are the same weight
_UNIT_AFTER = re.compile(r"\s*(%|°\s*c|[a-zµ]+(?:/[a-z]+)?)", re.I)
_UNIT_SPELLINGS = {
    "kg": "kg", "kilo": "kg", "kilos": "kg", "kilogram": "kg", "g": "g", "gram": "g", "mg": "mg", "milligram": "mg",
    "µg": "µg", "ug": "µg", "mcg": "µg", "microgram": "µg", "ml": "ml", "milliliter": "ml", "cc": "ml", "l": "l",
    "liter": "l", "litre": "l", "mmol/l": "mmol", "mmol": "mmol", "jaar": "jaar", "jaren": "jaar", "year": "jaar",
    "years": "jaar", "jr": "jaar", "maand": "maand", "maanden": "maand", "months": "maand", "month": "maand",
    "dagen": "dag", "dag": "dag", "days": "dag", "day": "dag", "uur": "uur", "uren": "uur", "hours": "uur",
    "hour": "uur", "u": "uur", "h": "uur", "min": "min", "minuten": "min", "minuut": "min", "minutes": "min",
    "cm": "cm", "mm": "mm", "mmhg": "mmhg", "%": "%", "procent": "%", "percent": "%", "graden": "°c", "°c": "°c",
    "degrees": "°c", "ie": "ie", "eenheden": "ie", "units": "ie", "eh": "ie",
}


def _unit_after(text: str, end: int) -> str:
    m = _UNIT_AFTER.match(text, end)
    if not m:
        return ""
    return _UNIT_SPELLINGS.get(re.sub(r"\s+", "", m.group(1).lower()), "")


def question_quantities(question: str) -> list[tuple[float, str]]:
    """The question's numbers with the unit that follows each ('' when none is known): "iemand van
    80 kg met een eGFR van 45" is (80, "kg"), (45, "")."""
    return [(_num(m.group(0)), _unit_after(question, m.end())) for m in _QNUM.finditer(question)]


def key_unit(key: str) -> str:
    """The unit of a table row's key ("minder dan 50 kg": "kg"), '' when it names none."""
    m = _RANGE.search(fold(key))
    return _unit_after(fold(key), m.end("b") if m and m.group("b") else m.end("a")) if m else ""


def numbers_for_key(key: str, quantities: list[tuple[float, str]]) -> list[float]:
    """The question's numbers a row's key may hold: those in the key's unit when the question gives
    one in it, else those without a unit; never a number in another unit (a key "minder dan 50 kg"
    is no row for "eGFR van 45" when the question weighs 80 kg)."""
    unit = key_unit(key)
    if not unit:
        return [v for v, _ in quantities]
    same = [v for v, u in quantities if u == unit]
    return same or [v for v, u in quantities if not u]


# a key that opens with a comparison: "meer dan 800 ml", "hoger dan 20,0", "onder 50 kg", "vanaf 7"
_ABOVE = re.compile(r"^(?:hoger dan|meer dan|groter dan|boven|vanaf|more than|greater than|higher than|over"
                    r"|above|from)\s")
_BELOW = re.compile(r"^(?:lager dan|minder dan|kleiner dan|onder|beneden|tot|less than|lower than|under|below"
                    r"|up to)\s")


def key_interval(key: str) -> tuple[float, float] | None:
    """The range of values a table row's key holds ("50–74 kg", "< 4 mmol/l", "≥ 7", "18 of lager",
    "meer dan 800 ml"), or None when it holds no number."""
    if not key:
        return None
    k = fold(key).strip()
    m = _RANGE.search(k)
    if not m:
        return None
    a = _num(m.group("a"))
    b = _num(m.group("b")) if m.group("b") else None
    op = m.group("op") or ""
    tail = m.group("tail") or ""
    lead = k[: m.start("a")].strip()
    lo, hi = a, a
    if b is not None:
        lo, hi = min(a, b), max(a, b)
    below = ("lager", "minder", "less", "lower", "below", "jonger")
    above = ("hoger", "meer", "more", "higher", "above", "ouder", "older")
    if op[:1] in ("<", "≤") or any(w in tail for w in below) or (b is None and _BELOW.match(lead + " ")):
        lo, hi = float("-inf"), a if (op in ("<=", "≤") or not op.startswith("<")) else a - 1e-9
    elif op[:1] in (">", "≥") or any(w in tail for w in above) or (b is None and _ABOVE.match(lead + " ")):
        lo, hi = (a if (op in (">=", "≥") or not op.startswith(">")) else a + 1e-9), float("inf")
    return lo, hi


def is_range_key(key: str) -> bool:
    """Whether a table row's key holds a range or a bound of values ("10,1–12,0", "< 4 mmol/l",
    "SNAQ-score 3 of hoger"), not one value ("VIP-score 5") or a name ("Druppelisolatie")."""
    interval = key_interval(key)
    return interval is not None and interval[0] < interval[1]


def key_matches(key: str, numbers: list[float]) -> bool:
    """Whether a table row's key (a number, a range, a bound) holds one of the question's numbers."""
    interval = key_interval(key) if numbers else None
    return interval is not None and any(interval[0] <= n <= interval[1] for n in numbers)


def key_tightness(key: str, numbers: list[float]) -> tuple[float, float, float]:
    """How closely a matching key bounds the question's number (smaller is closer): of "meer dan 400 ml"
    and "meer dan 800 ml", 900 ml is the second's. (width, distance to the lower bound, to the upper one)."""
    interval = key_interval(key)
    inf = float("inf")
    if interval is None:
        return inf, inf, inf
    lo, hi = interval
    best = (inf, inf, inf)
    for n in numbers:
        if lo <= n <= hi:
            best = min(best, (hi - lo, n - lo, hi - n))
    return best
