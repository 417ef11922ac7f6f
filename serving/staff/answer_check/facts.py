"""The checkable facts of a sentence, normalised: quantities, codes, actors and negations (Dutch, English).

A *quantity* is a number with what it counts: a unit of mass, volume, amount, time, temperature …
(converted to one base unit per dimension, so "0,5 g" equals "500 mg" and "2 uur" equals "120
minuten"), an optional rate ("per uur", "/dag", "3 keer per dag"), and an optional threshold
("≥", "meer dan", "at most", "tot"). Written forms are normalised before parsing: number words
("twee", "vijfentwintig", "twenty-five"; from ``num2words`` in both languages), "½" and
"anderhalf", decimal commas, thousands separators (an ambiguous "1.000" keeps both readings, so
it equals "1000" and "1,000"), unit synonyms ("sec", "seconden", "s"). An extension number
("toestel 1234", "tst. 1234", "sein 1234") is a quantity of its own kind and counts as *who*.

An *actor* is who does something (arts, verpleegkundige, apotheek, team, specialist …), folded to
one class across synonyms and the two languages. A *negation* is a cue ("niet", "geen", "nooit",
"not", "no", "never" …) with the content words around it, so it can be found again in a source
whatever the clause order.

Pure functions of text: no I/O, deterministic.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from num2words import num2words

# --------------------------------------------------------------------------- units

# folded unit word -> (dimension, factor to the dimension's base unit)
_UNITS: dict[str, tuple[str, float]] = {}


def _add(dim: str, factor: float, *names: str) -> None:
    for n in names:
        _UNITS[n] = (dim, factor)


_add("mass", 1.0, "mg", "milligram", "milligrams", "milligramme")
_add("mass", 1000.0, "g", "gr", "gram", "grams", "gramme")
_add("mass", 1e6, "kg", "kilogram", "kilograms", "kilo", "kilos")
_add("mass", 1e-3, "µg", "μg", "ug", "mcg", "microgram", "micrograms", "microgramme")
_add("mass", 1e-6, "ng", "nanogram", "nanograms")
_add("volume", 1.0, "ml", "milliliter", "milliliters", "millilitre", "millilitres", "cc")
_add("volume", 10.0, "cl", "centiliter")
_add("volume", 100.0, "dl", "deciliter")
_add("volume", 1000.0, "l", "liter", "liters", "litre", "litres", "ltr")
_add("amount", 1.0, "mmol", "millimol", "millimole", "millimoles")
_add("amount", 1e-3, "µmol", "μmol", "umol", "micromol")
_add("amount", 1000.0, "mol")
_add("amount", 1.0, "meq")
_add("iu", 1.0, "ie", "iu", "e", "eenheid", "eenheden", "unit", "units", "i.e.")
_add("percent", 1.0, "%", "procent", "percent", "pct")
_add("time", 1.0, "s", "sec", "secs", "seconde", "seconden", "second", "seconds")
_add("time", 60.0, "min", "mins", "minuut", "minuten", "minute", "minutes")
_add("time", 900.0, "kwartier")
_add("time", 3600.0, "u", "uur", "uren", "h", "hr", "hrs", "hour", "hours")
_add("time", 86400.0, "dag", "dagen", "day", "days", "etmaal", "etmalen", "d")
_add("time", 604800.0, "week", "weken", "weeks", "wk", "wkn")
_add("time", 2629800.0, "maand", "maanden", "month", "months", "mnd")
_add("time", 31557600.0, "jaar", "jaren", "year", "years", "jr", "yr", "yrs")
_add("temperature", 1.0, "°c", "°", "graden", "degrees", "celsius", "℃")
_add("length", 1.0, "mm", "millimeter", "millimetre")
_add("length", 10.0, "cm", "centimeter", "centimetre")
_add("length", 1000.0, "m", "meter", "metre", "meters", "metres")
_add("pressure", 1.0, "mmhg")
_add("energy", 1.0, "kcal")
_add("times", 1.0, "keer", "maal", "x", "×", "times", "time")
_add("tablet", 1.0, "tablet", "tabletten", "tablets", "tabl", "tab", "tabs")
_add("capsule", 1.0, "capsule", "capsules", "caps")
_add("drop", 1.0, "druppel", "druppels", "drop", "drops", "gtt")
_add("puff", 1.0, "puf", "pufje", "pufjes", "puffs", "puff", "inhalaties", "inhalations")
_add("ampoule", 1.0, "ampul", "ampullen", "ampoule", "ampoules")
_add("beat", 1.0, "slagen", "slag", "beats", "bpm")
_add("breath", 1.0, "ademhalingen", "breaths")
_add("point", 1.0, "punten", "punt", "points", "point")

# words before a number that make it an extension ("toestel 1234") -- who to call
_EXTENSION_WORDS = frozenset(
    "toestel toestelnummer tst tel telefoon telefoonnummer sein seinnummer pieper piepernummer "
    "extension ext phone bleep pager".split()
)

# --------------------------------------------------------------------------- thresholds

LOWER, UPPER = "min", "max"  # a lower bound (≥, meer dan, at least) or an upper bound (≤, minder dan, tot)
_THRESHOLDS: list[tuple[tuple[str, ...], str]] = sorted(
    [
        (("≥",), LOWER), ((">",), LOWER), ((">", "="), LOWER), (("=>",), LOWER),
        (("≤",), UPPER), (("<",), UPPER), (("<", "="), UPPER), (("=<",), UPPER),
        (("meer", "dan"), LOWER), (("more", "than"), LOWER), (("boven",), LOWER), (("above",), LOWER),
        (("hoger", "dan"), LOWER), (("higher", "than"), LOWER), (("groter", "dan"), LOWER),
        (("greater", "than"), LOWER), (("minimaal",), LOWER), (("minimum",), LOWER), (("min",), LOWER),
        (("ten", "minste"), LOWER), (("tenminste",), LOWER), (("minstens",), LOWER), (("at", "least"), LOWER),
        (("vanaf",), LOWER), (("niet", "minder", "dan"), LOWER), (("no", "less", "than"), LOWER),
        (("not", "less", "than"), LOWER), (("over",), LOWER), (("exceeding",), LOWER),
        (("maximaal",), UPPER), (("maximum",), UPPER), (("max",), UPPER), (("ten", "hoogste"), UPPER),
        (("hoogstens",), UPPER), (("at", "most"), UPPER), (("up", "to"), UPPER), (("tot",), UPPER),
        (("tot", "maximaal"), UPPER), (("niet", "meer", "dan"), UPPER), (("no", "more", "than"), UPPER),
        (("not", "more", "than"), UPPER), (("minder", "dan"), UPPER), (("less", "than"), UPPER),
        (("fewer", "than"), UPPER), (("lager", "dan"), UPPER), (("lower", "than"), UPPER),
        (("onder",), UPPER), (("below",), UPPER), (("under",), UPPER), (("kleiner", "dan"), UPPER),
        (("binnen",), UPPER), (("within",), UPPER), (("uiterlijk",), UPPER),
    ],
    key=lambda t: -len(t[0]),  # longest phrase first: "niet meer dan" before "meer dan"
)

# --------------------------------------------------------------------------- negation and actors

NEGATIONS = frozenset(
    "niet geen nooit niemand niets nergens noch not no never none nobody nothing neither nor "
    "cannot can't don't doesn't isn't aren't won't mustn't shouldn't wasn't weren't didn't".split()
)

# folded word (or phrase) -> actor class; classes are shared across the two languages
_ACTOR_CLASSES: dict[str, tuple[str, ...]] = {
    "arts": ("arts", "artsen", "dokter", "dokters", "doctor", "doctors", "physician", "physicians",
             "zaalarts", "zaalartsen", "behandelend arts", "treating physician"),
    "arts-assistent": ("arts-assistent", "arts-assistenten", "aios", "anios", "resident", "residents",
                       "house officer"),
    "huisarts": ("huisarts", "huisartsen", "gp", "general practitioner"),
    "kinderarts": ("kinderarts", "kinderartsen", "paediatrician", "pediatrician", "paediatricians",
                   "pediatricians"),
    "anesthesioloog": ("anesthesioloog", "anesthesiologen", "anesthesist", "anesthesisten",
                       "anaesthetist", "anesthetist", "anaesthetists", "anesthesiologist"),
    "verpleegkundige": ("verpleegkundige", "verpleegkundigen", "nurse", "nurses", "verpleger",
                        "verplegers", "verpleegster", "registered nurse"),
    "verpleegkundig specialist": ("verpleegkundig specialist", "verpleegkundig specialisten",
                                  "nurse practitioner", "nurse practitioners"),
    "verzorgende": ("verzorgende", "verzorgenden", "carer", "carers", "care assistant", "care assistants",
                    "nursing assistant", "nursing assistants"),
    "specialist": ("specialist", "specialisten", "medisch specialist", "medisch specialisten", "consultant",
                   "consultants", "specialists"),
    "apotheek": ("apotheek", "apotheker", "apothekers", "ziekenhuisapotheek", "ziekenhuisapotheker",
                 "pharmacy", "pharmacist", "pharmacists", "hospital pharmacy"),
    "team": ("team", "teams"),
    "teamleider": ("teamleider", "teamleiders", "leidinggevende", "leidinggevenden", "afdelingshoofd",
                   "manager", "ward manager", "team leader", "nurse in charge", "charge nurse"),
    "fysiotherapeut": ("fysiotherapeut", "fysiotherapeuten", "physiotherapist", "physiotherapists"),
    "dietist": ("dietist", "dietisten", "dietitian", "dietitians", "dietician"),
    "ergotherapeut": ("ergotherapeut", "ergotherapeuten", "occupational therapist"),
    "verloskundige": ("verloskundige", "verloskundigen", "midwife", "midwives"),
    "hygienist": ("hygienist", "hygienisten", "deskundige infectiepreventie", "infectiepreventie",
                  "infection prevention", "infection control"),
    "patient": ("patient", "patienten", "patients", "client", "clienten", "clients", "bewoner", "bewoners",
                ),
    "bezoeker": ("bezoeker", "bezoekers", "visitor", "visitors", "bezoek"),
    "partner": ("partner", "partners"),
    "familie": ("familie", "familieleden", "naasten", "naaste", "mantelzorger", "mantelzorgers", "family",
                "relatives", "next of kin"),
    "chirurg": ("chirurg", "chirurgen", "surgeon", "surgeons", "operateur"),
    "internist": ("internist", "internisten"),
    "intensivist": ("intensivist", "intensivisten"),
    "medewerker": ("medewerker", "medewerkers", "staff", "employee", "employees", "zorgmedewerker",
                   "zorgmedewerkers", "personeel"),
    "ic-verpleegkundige": ("ic-verpleegkundige", "ic-verpleegkundigen", "icu nurse", "icu nurses"),
    "wondverpleegkundige": ("wondverpleegkundige", "wondverpleegkundigen", "wound nurse", "tissue viability nurse"),
}
_ACTORS: dict[str, str] = {form: cls for cls, forms in _ACTOR_CLASSES.items() for form in forms}
_ACTOR_SUFFIXES = ("verpleegkundige", "verpleegkundigen", "arts", "artsen", "team", "teams", "specialist",
                   "specialisten", "therapeut", "therapeuten")
_NOT_ACTORS = ("starts", "parts", "hearts", "carts", "darts", "quarts", "charts")


def _singular(word: str) -> str:
    """The class of a compound actor ("ic-verpleegkundigen" -> "ic-verpleegkundige", "wondteams" -> "wondteam")."""
    for plural, single in (("igen", "ige"), ("artsen", "arts"), ("teams", "team"), ("isten", "ist"),
                           ("euten", "eut")):
        if word.endswith(plural):
            return word[: -len(plural)] + single
    return word

# --------------------------------------------------------------------------- number words


@lru_cache(maxsize=1)
def _number_words() -> dict[str, float]:
    """Folded Dutch and English number words -> value (0..1000 and round thousands), from num2words."""
    out: dict[str, float] = {}
    for lang in ("nl", "en"):
        for i in list(range(0, 1001)) + [2000, 5000, 10000]:
            word = fold(num2words(i, lang=lang)).replace(",", "")
            out[word] = float(i)
            out[word.replace("-", " ")] = float(i)
            out[word.replace(" and ", " ")] = float(i)
    out.pop("een", None)  # Dutch "een" is mostly the article; "één" (folded to "een") is handled apart
    out.update({"half": 0.5, "halve": 0.5, "anderhalf": 1.5, "anderhalve": 1.5, "tweeenhalf": 2.5,
                "drieenhalf": 3.5, "dozen": 12.0, "once": 1.0, "twice": 2.0, "thrice": 3.0,
                "eenmaal": 1.0, "tweemaal": 2.0, "driemaal": 3.0, "viermaal": 4.0})
    return out


_HOUR_WORDS = frozenset({"uur", "u", "h", "hour", "hours", "hrs", "hr"})
_TEN_PHRASES = frozenset("minste hoogste eerste tweede derde laatste behoeve aanzien opzichte einde slotte gevolge "
                         "tijde dele volle".split())
_MAAL = {"eenmaal", "tweemaal", "driemaal", "viermaal", "once", "twice", "thrice"}

# --------------------------------------------------------------------------- tokens


def fold(text: str) -> str:
    """Lowercase with diacritics stripped, one character for one (offsets stay those of ``text``)."""
    out = []
    for ch in text:
        low = ch.lower()
        if len(low) != 1:
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", low) if not unicodedata.combining(c))
        out.append(base if len(base) == 1 and base.isascii() else low)
    return "".join(out)


_TOKEN = re.compile(
    r"\d{1,2}:\d{2}(?!\d)"  # clock time
    r"|\d+(?:[.,]\d+)*"  # number with decimal comma/point or thousands separators
    r"|[a-zµ]+(?:-[a-z]+)*"  # word (with hyphenated parts)
    r"|[≥≤<>=%°℃½¼¾/×+\-–—]"
    r"|[,;:()\[\]!?]"  # punctuation: a rate, a range or a unit never reads across it
)
_FRACTIONS = {"½": 0.5, "¼": 0.25, "¾": 0.75}


@dataclass(frozen=True)
class Token:
    text: str  # folded
    start: int
    end: int


def tokens(text: str) -> list[Token]:
    prepared = fold(text).replace("\u00a0", " ").replace("\u202f", " ").replace("\u2009", " ")
    return [Token(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(prepared)]


def _num_values(raw: str) -> frozenset[float]:
    """Candidate values of a written number: "0,5" -> {0.5}; "1.000" -> {1000, 1.0} (either reading)."""
    if ":" in raw:
        h, m = raw.split(":")
        return frozenset({float(int(h) * 60 + int(m))})
    seps = [c for c in raw if c in ".,"]
    if not seps:
        return frozenset({float(raw)})
    groups = re.split(r"[.,]", raw)
    if len(seps) == 1:
        whole, frac = groups
        as_decimal = float(f"{whole}.{frac}")
        if len(frac) == 3 and whole != "0" and len(whole) <= 3:
            return frozenset({as_decimal, float(whole + frac)})
        return frozenset({as_decimal})
    if len(set(seps)) == 1:  # 1.000.000 / 1,000,000
        return frozenset({float("".join(groups))})
    dec = seps[-1]  # 1.000,5 or 1,000.5: the last separator is the decimal one
    whole, frac = raw.rsplit(dec, 1)
    return frozenset({float(re.sub(r"[.,]", "", whole) + "." + frac)})


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class Quantity:
    text: str  # as written in the sentence
    raw: frozenset[float]  # the written value(s), before conversion
    values: frozenset[float]  # in the dimension's base unit
    dim: str | None  # None: a bare number
    per: float | None = None  # a rate: per this many base units of ``per_dim`` ("mg/kg/dag": the product)
    per_dim: str | None = None  # "time", "mass", "mass*time" …
    bound: str | None = None  # LOWER / UPPER
    extension: bool = False


@dataclass(frozen=True)
class Actor:
    text: str
    cls: str


@dataclass(frozen=True)
class Negation:
    text: str
    context: frozenset[str]  # folded content words around the cue


@dataclass
class Facts:
    quantities: list[Quantity] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    actors: list[Actor] = field(default_factory=list)
    negations: list[Negation] = field(default_factory=list)

    @property
    def checkable(self) -> bool:
        return bool(self.quantities or self.codes or self.actors or self.negations)


def _same(a: frozenset[float], b: frozenset[float]) -> bool:
    return any(abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y)) for x in a for y in b)


def same_values(a: frozenset[float], b: frozenset[float]) -> bool:
    return _same(a, b)


_CODE = re.compile(r"\b[A-Za-z]{1,6}-\d[\w-]*\b|\b\d+[A-Za-z]{2,}\d*\b")
_CONTENT = re.compile(r"[a-z]{3,}")
_NUMBER_LIKE = re.compile(r"\d")


def _is_number(tok: str) -> bool:
    return bool(_NUMBER_LIKE.match(tok))


class _Parser:
    def __init__(self, text: str, stopwords: frozenset[str]) -> None:
        self.text = text
        codes = [(m.start(), m.end()) for m in _CODE.finditer(text)]
        self.toks = [t for t in tokens(text) if not any(a <= t.start < b for a, b in codes)]
        self.stop = stopwords
        self.words = _number_words()

    def number_at(self, i: int) -> tuple[frozenset[float], int] | None:
        """The number starting at token i (digits, a fraction, a number word, "één", "een half"), and
        the index after it."""
        toks = self.toks
        if i >= len(toks):
            return None
        t = toks[i].text
        if _is_number(t):
            vals = _num_values(t)
            j = i + 1
            if j < len(toks) and toks[j].text in _FRACTIONS and toks[j].start == toks[i].end:  # 1½
                vals = frozenset(v + _FRACTIONS[toks[j].text] for v in vals)
                j += 1
            return vals, j
        if t in _FRACTIONS:
            return frozenset({_FRACTIONS[t]}), i + 1
        raw = self.text[toks[i].start:toks[i].end]
        if t == "een" and ("é" in raw or "É" in raw):  # één
            return frozenset({1.0}), i + 1
        # "een half uur", "half an hour", "a/an hour", "een uur": a count before a unit only
        if t in ("een", "a", "an") and i + 1 < len(toks):
            nxt = toks[i + 1].text
            if nxt in ("half", "halve"):
                return frozenset({0.5}), i + 2
            if nxt in _UNITS and _UNITS[nxt][0] == "time" and nxt not in ("second", "s", "d", "u", "h", "m"):
                prev = toks[i - 1].text if i else ""
                if prev in _UNITS and _UNITS[prev][0] == "times" or prev in _MAAL or prev == "per":
                    return None  # "twice a day": a rate, read by the caller
                return frozenset({1.0}), i + 1
            return None
        if t in ("half",) and i + 2 < len(toks) and toks[i + 1].text in ("an", "a") and toks[i + 2].text in _UNITS:
            return frozenset({0.5}), i + 2
        # multi-word English numbers: "twenty five", "one hundred and twenty"
        for span in (4, 3, 2):
            if i + span <= len(toks):
                phrase = " ".join(x.text for x in toks[i:i + span])
                if phrase in self.words and all(not _is_number(x.text) for x in toks[i:i + span]):
                    return frozenset({self.words[phrase]}), i + span
        if t == "ten" and i + 1 < len(toks) and toks[i + 1].text in _TEN_PHRASES:
            return None  # Dutch "ten minste", "ten hoogste": no number
        if t in self.words:
            return frozenset({self.words[t]}), i + 1
        return None

    def unit_at(self, i: int) -> tuple[str, float, int] | None:
        toks = self.toks
        if i >= len(toks):
            return None
        t = toks[i].text
        if t == "°" and i + 1 < len(toks) and toks[i + 1].text == "c":
            return "temperature", 1.0, i + 2
        if t in ("mm",) and i + 1 < len(toks) and toks[i + 1].text == "hg":
            return "pressure", 1.0, i + 2
        if t in _UNITS:
            dim, factor = _UNITS[t]
            if t == "graden" and i + 1 < len(toks) and toks[i + 1].text == "celsius":
                return dim, factor, i + 2
            return dim, factor, i + 1
        return None

    def bound_before(self, i: int) -> str | None:
        words = [t.text for t in self.toks[max(0, i - 3):i]]
        for phrase, kind in _THRESHOLDS:
            n = len(phrase)
            if tuple(words[-n:]) == phrase:
                return kind
        return None

    def quantities(self) -> list[Quantity]:
        toks = self.toks
        out: list[Quantity] = []
        i = 0
        while i < len(toks):
            got = self.number_at(i)
            if got is None:
                i += 1
                continue
            t = toks[i].text
            # "2e", "3de": an ordinal glued to its number
            if _is_number(t) and i + 1 < len(toks) and toks[i + 1].start == toks[i].end and toks[i + 1].text in (
                    "e", "ste", "de", "st", "nd", "rd", "th"):
                i += 2
                continue
            start_i = i
            vals, j = got
            # a range: "70-80 %", "2 tot 4 uur", "van 14:00 tot 20:00 uur", "between 2 and 4 hours"
            ends = [(start_i, vals)]
            k = j
            if k < len(toks) and toks[k].text in ("-", "–", "—", "tot", "to", "a", "en", "and"):
                connector = toks[k].text
                ok = connector in ("-", "–", "—", "tot", "to", "a") or (
                    connector in ("en", "and") and start_i and toks[start_i - 1].text in ("tussen", "between"))
                nxt = self.number_at(k + 1) if ok else None
                if nxt is not None:
                    ends.append((k + 1, nxt[0]))
                    k = nxt[1]
            unit = self.unit_at(k)
            dim, factor = (unit[0], unit[1]) if unit else (None, 1.0)
            after = unit[2] if unit else k
            # a clock time written "14.00 uur"
            last_raw = toks[ends[-1][0]].text
            if dim == "time" and toks[k].text in ("uur", "u", "h") and re.fullmatch(r"\d{1,2}\.\d{2}", last_raw):
                dim = "clock"
            if ":" in last_raw and (dim is None or toks[k].text in _HOUR_WORDS):
                dim, factor = "clock", 1.0
                after = unit[2] if unit else k
            per: float | None = None
            per_dims: list[str] = []
            while after < len(toks):
                if toks[after].text in ("/", "per", "a", "an"):
                    got_n = self.number_at(after + 1)
                    n_per, m = (min(got_n[0]), got_n[1]) if got_n else (1.0, after + 1)
                    per_unit = self.unit_at(m)
                    if per_unit is None:
                        break
                    per = (per or 1.0) * n_per * per_unit[1]
                    per_dims.append(per_unit[0])
                    after = per_unit[2]
                elif toks[after].text in ("daags", "dagelijks", "daily"):
                    per, after = (per or 1.0) * 86400.0, after + 1
                    per_dims.append("time")
                else:
                    break
            per_dim = "*".join(sorted(per_dims)) or None
            if dim is None and t in _MAAL:
                dim, factor = "times", 1.0
            bound = self.bound_before(start_i)
            extension = start_i > 0 and toks[start_i - 1].text in _EXTENSION_WORDS and dim is None
            for pos, v in ends:
                if extension:
                    d: str | None = "extension"
                else:
                    d = dim
                    dotted = re.fullmatch(r"\d{1,2}\.\d{2}", toks[pos].text)
                    if d == "clock" and ":" not in toks[pos].text and not dotted:
                        d = "time"
                    if d == "clock" and dotted:
                        h, mnt = toks[pos].text.split(".")
                        v = frozenset({float(int(h) * 60 + int(mnt))})
                f = 1.0 if d in ("clock", "extension", None) else factor
                span_end = toks[min(after, len(toks)) - 1].end if after > pos else toks[pos].end
                out.append(Quantity(
                    text=self.text[toks[pos].start:span_end].strip(), raw=v,
                    values=frozenset(x * f for x in v), dim=d, per=per, per_dim=per_dim,
                    bound=bound if len(ends) == 1 else None, extension=extension,
                ))
            i = max(after, j)
        return out

    def actors(self) -> list[Actor]:
        toks = self.toks
        out: list[Actor] = []
        i = 0
        while i < len(toks):
            hit = None
            for span in (3, 2, 1):
                if i + span <= len(toks):
                    phrase = " ".join(x.text for x in toks[i:i + span])
                    if phrase in _ACTORS:
                        hit = (phrase, span)
                        break
            if hit is None:
                t = toks[i].text
                if (len(t) > 6 and any(t.endswith(s) for s in _ACTOR_SUFFIXES)
                        and not t.endswith(_NOT_ACTORS)):
                    hit = (t, 1)
            if hit is not None:
                phrase, span = hit
                cls = _ACTORS.get(phrase) or _singular(phrase)
                out.append(Actor(self.text[toks[i].start:toks[i + span - 1].end], cls))
                i += span
            else:
                i += 1
        return out

    def negations(self, window: int = 3) -> list[Negation]:
        toks = self.toks
        content = [(k, t.text) for k, t in enumerate(toks) if _CONTENT.fullmatch(t.text)
                   and t.text not in self.stop and t.text not in NEGATIONS]
        out: list[Negation] = []
        for k, t in enumerate(toks):
            if t.text not in NEGATIONS:
                continue
            before = [w for pos, w in content if pos < k][-window:]
            after = [w for pos, w in content if pos > k][:window]
            out.append(Negation(t.text, frozenset(before + after)))
        return out


def extract(text: str, stopwords: frozenset[str] = frozenset()) -> Facts:
    """The facts of one sentence (or of a whole source passage)."""
    p = _Parser(text, stopwords)
    return Facts(
        quantities=p.quantities(),
        codes=sorted({m.group(0).lower() for m in _CODE.finditer(text)}),
        actors=p.actors(),
        negations=p.negations(),
    )


def content_words(text: str, stopwords: frozenset[str]) -> list[str]:
    """Folded content words (3+ letters), without stopwords, negation cues or number words."""
    words = _number_words()
    return [t.text for t in tokens(text) if _CONTENT.fullmatch(t.text) and t.text not in stopwords
            and t.text not in NEGATIONS and t.text not in words and t.text not in _UNITS]
