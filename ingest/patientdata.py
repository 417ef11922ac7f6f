"""The patient-data guard: Dutch patient identifiers in a document's text, before it is embedded.

Runs in the sandboxed parser worker (``ingest.worker``). What it looks for, per kind:

- ``bsn``: 9 digits passing the elfproef, written ``123456782``, ``1234 56 782``, ``123.456.782``
  or ``123-45-6782``-like groupings (any mix of spaces, dots and dashes between digit groups);
- ``patient_number``: the configured patterns (``ingest.patient_data.patient_number_patterns``);
- ``birth_date``: a date near a birth word (``geboren``, ``geb.``, ``geboortedatum``, ``DOB`` ...)
  or right after a person's name;
- ``person``, ``address``, ``phone``: with ``deduce`` (UMC Utrecht's de-identification of Dutch
  medical text); an address is a street with a house number or a postcode.

Only counts leave the worker, never the values. The decision (``Findings.over``) weighs kinds:
a BSN, a patient number or a birth date is patient data on its own; a name is patient data
together with an address or a phone number next to it; names and phone numbers alone are what
every protocol has (authors, department numbers) and do not count.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS: tuple[str, ...] = ("bsn", "patient_number", "birth_date", "person_with_address", "person", "address", "phone")

# weights towards the threshold (default 1.0): what alone makes a document patient data
WEIGHTS: dict[str, float] = {
    "bsn": 1.0,
    "patient_number": 1.0,
    "birth_date": 1.0,
    "person_with_address": 1.0,
    "person": 0.0,
    "address": 0.0,
    "phone": 0.0,
}

PLACEHOLDERS: dict[str, str] = {
    "bsn": "[BSN]",
    "patient_number": "[PATIENTNUMMER]",
    "birth_date": "[GEBOORTEDATUM]",
    "person": "[NAAM]",
    "address": "[ADRES]",
    "phone": "[TELEFOON]",
}


@dataclass(frozen=True)
class Redaction:
    """A text with its patient identifiers replaced: the counts per kind (never the values)."""

    text: str
    counts: dict[str, int]
    patient_data: bool  # over the guard's threshold (a BSN, a birth date, a name with an address …)


_BSN = re.compile(r"(?<![\d\-/])(?<!\d[.,])(\d(?:[ .\-]?\d){8})(?![\d\-/]|[.,]\d)")
_DATE = re.compile(
    r"(?<!\d)(?:(\d{1,2})[-./ ](\d{1,2})[-./ ]((?:19|20)\d\d)"
    r"|(\d{1,2}) (januari|februari|maart|april|mei|juni|juli|augustus|september|oktober|november|december"
    r"|jan|feb|mrt|apr|jun|jul|aug|sep|sept|okt|nov|dec)\.? ((?:19|20)\d\d)"
    r"|((?:19|20)\d\d)-(\d{2})-(\d{2}))(?!\d)",
    re.IGNORECASE,
)
_BIRTH_WORD = re.compile(
    r"\b(geboren|geb\.|geb\b|geboortedatum|geboorte ?datum|geb\.?datum|d\.o\.b\.?|dob|date of birth|born)",
    re.IGNORECASE,
)
_POSTCODE = re.compile(r"\b[1-9]\d{3} ?(?!SA|SD|SS)[A-Z]{2}\b")
_STREET = re.compile(
    r"\b[A-Z][a-zà-ÿ]+(?:straat|laan|weg|plein|gracht|kade|singel|dijk|pad|hof|dreef|steeg|park|baan)"
    r" \d{1,4}(?: ?[a-zA-Z]\b)?"
)
_NAME_DATE_GAP = re.compile(r"[\s,;:(\-]*(?:geb\.?|geboren|born)?[\s,;:(]*", re.IGNORECASE)
_BIRTH_WINDOW = 40  # characters between a birth word (or a name) and the date
_NAME_WINDOW = 120  # characters between a name and an address or phone number


def elfproef(digits: str) -> bool:
    """The BSN check: Σ d_i·(9−i) for the first eight digits − the last digit ≡ 0 (mod 11)."""
    if len(digits) != 9 or not digits.isdigit() or digits == "000000000":
        return False
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - int(digits[8])
    return total % 11 == 0


@dataclass
class Findings:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, n: int = 1) -> None:
        if n:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def score(self) -> float:
        return sum(WEIGHTS.get(k, 0.0) * n for k, n in self.counts.items())

    def over(self, threshold: float) -> bool:
        return self.score() >= threshold

    def summary(self) -> str:
        """``bsn: 2, birth_date: 1`` — kinds and counts, never values."""
        return ", ".join(f"{k}: {self.counts[k]}" for k in KINDS if self.counts.get(k))


@dataclass(frozen=True)
class GuardConfig:
    threshold: float = 1.0
    patient_number_patterns: tuple[str, ...] = ()
    names: bool = True  # person names, addresses and phone numbers with deduce


class PatientDataGuard:
    """Scans text; build once per worker (deduce's lookup tables take seconds and ~1 GB)."""

    def __init__(self, config: GuardConfig) -> None:
        self.config = config
        self.patterns = [re.compile(p) for p in config.patient_number_patterns]
        self._deduce: Any = None
        if config.names:
            self._deduce = load_deduce()

    def scan(self, text: str, tick: Callable[[], None] | None = None) -> Findings:
        """Counts per kind in ``text``; ``tick`` is called after each piece the name recogniser reads
        (a long document's scan shows the parser is alive)."""
        return _findings(self.spans(text, tick))

    def spans(self, text: str, tick: Callable[[], None] | None = None) -> dict[str, list[tuple[int, int]]]:
        """Where each kind was found: (start, end) character spans per kind (``person_with_address`` is
        derived from ``person`` and ``address`` by :meth:`scan`)."""
        bsn = [m.span(1) for m in _BSN.finditer(text) if elfproef(re.sub(r"\D", "", m.group(1)))]
        numbers = [m.span() for pattern in self.patterns for m in pattern.finditer(text)]
        dates = [m.span() for m in _DATE.finditer(text)]
        births = {s for s in dates if _BIRTH_WORD.search(text, max(0, s[0] - _BIRTH_WINDOW), s[0])}
        persons: list[tuple[int, int]] = []
        addresses = [m.span() for m in _STREET.finditer(text)] + [m.span() for m in _POSTCODE.finditer(text)]
        phones: list[tuple[int, int]] = []
        if self._deduce is not None:
            persons, more_addresses, phones = self._names(text, tick)
            addresses += more_addresses
            # a date right after a name: "J. Jansen, 12-03-1961", "Jan Jansen (12-03-1961)"
            births |= {
                s for s in dates
                if any(0 <= s[0] - p[1] <= _BIRTH_WINDOW and _NAME_DATE_GAP.fullmatch(text, p[1], s[0])
                       for p in persons)
            }
        return {"bsn": bsn, "patient_number": numbers, "birth_date": sorted(births), "person": persons,
                "address": addresses, "phone": phones}

    def redact(self, text: str) -> Redaction:
        """``text`` with every value found replaced by a typed placeholder (``[BSN]``, ``[NAAM]``,
        ``[GEBOORTEDATUM]`` …), the counts per kind, and whether it is patient data (over the threshold)."""
        parts = self.spans(text)
        marks = sorted(((a, b, k) for k, spans in parts.items() for a, b in spans), key=lambda m: (m[0], -m[1]))
        out, pos = [], 0
        for a, b, kind in marks:
            if a < pos:  # inside (or overlapping) a span already replaced
                if b > pos:
                    pos = b
                continue
            out.append(text[pos:a])
            out.append(PLACEHOLDERS[kind])
            pos = b
        out.append(text[pos:])
        counts = {k: len(v) for k, v in parts.items() if v}
        return Redaction("".join(out), counts, _findings(parts).over(self.config.threshold))

    def _names(
        self, text: str, tick: Callable[[], None] | None = None
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[tuple[int, int]]]:
        persons, addresses, phones = [], [], []
        for start in range(0, len(text), 20000):  # deduce is linear but keeps whole-text structures
            piece = text[start : start + 20000]
            doc = self._deduce.deidentify(piece, disabled=DISABLED)
            for a in doc.annotations:
                span = (a.start_char + start, a.end_char + start)
                tag = str(a.tag)
                if tag in ("persoon", "patient"):
                    persons.append(span)
                elif tag == "locatie" and (any(ch.isdigit() for ch in a.text) or _POSTCODE.search(a.text)):
                    addresses.append(span)
                elif tag == "telefoonnummer":
                    phones.append(span)
            if tick is not None:
                tick()
        return persons, addresses, phones


def _findings(parts: dict[str, list[tuple[int, int]]]) -> Findings:
    found = Findings()
    for kind in ("bsn", "patient_number", "birth_date", "person"):
        found.add(kind, len(parts[kind]))
    found.add("address", len(set(parts["address"])))
    found.add("phone", len(parts["phone"]))
    persons, addresses = parts["person"], parts["address"]
    near = sum(
        1 for p in persons
        if any(abs(a[0] - p[1]) <= _NAME_WINDOW or abs(p[0] - a[1]) <= _NAME_WINDOW for a in addresses)
    )
    found.add("person_with_address", near)
    return found


_DEDUCE: Any = None
# deduce's annotators the guard does not use (it finds dates, numbers and BSNs itself; institutions
# are no patient data)
DISABLED = frozenset({"dates", "ages", "identifiers", "email_addresses", "urls", "institutions"})
# ... and the lookup tables only those use: the institution tries are a third of deduce's cache (25 of
# 77 MB pickled) and of its memory in every parser worker (issue 20: a 5,000-page PDF under 2 GiB)
UNUSED_TABLES = ("healthcare_institution", "hospital", "hospital_abbr")
GUARD_CACHE = "vraagbaak-guard"  # beside deduce's own cache: data/lookup/vraagbaak-guard/cache/


def _guard_cache_dir(deduce_module: Any) -> Path:
    return Path(deduce_module.__file__).parent / "data" / "lookup" / GUARD_CACHE


def write_guard_tables() -> Path:
    """deduce's lookup-table cache without ``UNUSED_TABLES`` (each replaced by an empty table of its
    kind, so every annotator still builds), for ``load_deduce``; scripts/install-deduce runs it once
    after deduce built its own cache. Returns the file written."""
    import pickle

    import deduce
    from docdeid.ds.lookup import LookupSet, LookupTrie

    full = Path(deduce.__file__).parent / "data" / "lookup" / "cache" / "lookup_structs.pickle"
    with full.open("rb") as f:
        cache = pickle.load(f)  # deduce's own cache, written by scripts/install-deduce
    tables = cache["lookup_structs"]
    for name in UNUSED_TABLES:
        if name in tables:
            tables[name] = LookupTrie() if isinstance(tables[name], LookupTrie) else LookupSet()
    out = _guard_cache_dir(deduce) / "cache" / "lookup_structs.pickle"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".partial")
    with tmp.open("wb") as f:
        pickle.dump(cache, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(out)
    return out


def load_deduce() -> Any:
    """deduce's Deduce(), built once per process, from the guard's trimmed cache of its lookup tables
    (``write_guard_tables``) when present, else from deduce's own cache in its package."""
    global _DEDUCE
    if _DEDUCE is None:
        import logging

        logging.getLogger("root").setLevel(logging.WARNING)
        try:
            import deduce
        except ImportError as err:  # pragma: no cover - a dependency, installed by scripts/install-deduce
            raise RuntimeError(
                "the patient-data guard needs deduce (scripts/install-deduce), or set "
                "ingest.patient_data.names: false"
            ) from err
        # Its cache is a pickle of millions of small objects: unpickled with the cyclic garbage
        # collector running it took 7.1 s, without 1.4 s (every parser worker and API process pays
        # it once). Frozen afterwards, later collections skip them.
        enabled = gc.isenabled()
        gc.disable()
        try:
            trimmed = _guard_cache_dir(deduce)
            if (trimmed / "cache" / "lookup_structs.pickle").is_file():
                _DEDUCE = deduce.Deduce(cache_path=trimmed)
            else:
                _DEDUCE = deduce.Deduce()
        finally:
            if enabled:
                gc.enable()
        gc.freeze()
    return _DEDUCE


def scan_texts(guard: PatientDataGuard, texts: Sequence[str]) -> Findings:
    return guard.scan("\n\n".join(texts))
