"""The answer check: every sentence of an answer against the source(s) its ``[n]`` markers cite.

Per sentence:

1. its markers give the cited sources; none: ``unverifiable`` (``no_marker``); a number with no
   such source: ``unsupported`` (``citation``);
2. the sentence is aligned to the cited sources' sentences that cover its content words (a greedy
   cover of at most three sentences; a sentence that shares little with any of them, e.g. a
   translation, is compared with the whole cited text);
3. its facts (``serving.staff.answer_check.facts``) must be found there: every quantity with its value,
   unit, rate and threshold direction; every code; every actor; every negation (a cue with a shared
   content word around it), and no negation of the aligned source sentence may be missing around
   the same words;
4. status: any mismatch ``unsupported`` with a reason naming it; all facts found ``supported``; no
   fact at all ``supported`` when at least half of its content words are in the source, else
   ``unverifiable`` (``nothing_checkable``).

Pure and deterministic (no model); reasons are in the answer's language.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from retrieval.analysis import detect_language
from retrieval.stopwords import DUTCH, ENGLISH
from serving.staff.answer_check.facts import (
    _ACTORS,
    Facts,
    Quantity,
    content_words,
    extract,
    same_values,
)
from vraagbaak_core.types import Claim

STOPWORDS = DUTCH | ENGLISH
MARKER = re.compile(r"\s*\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
_LIST_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*•+]\s+|\d{1,3}[.)]\s+|>\s*)+")
_EMPHASIS = re.compile(r"\*\*|__|`")
_TABLE_RULE = re.compile(r"^[\s|:\-+]+$")
# pySBD splits after these; a piece that ends in one goes on in the next
_ABBREVIATIONS = frozenset(
    "a.u.b afd art bijv bv ca d.w.z dhr dr drs e.d e.g enz etc evt excl ext fig i.e i.o.m i.p.v i.v.m "
    "incl ing ir jl m.b.t m.b.v m.u.v max min mevr mr mw n.a.v nl nr o.a o.b.v p pag prof resp st "
    "t.a.v t.b.v t.z.t tel tst vgl vs z.o.z z.s.m zgn no approx".split()
)
_ABBREV_END = re.compile(r"(?:^|[\s(])((?:[A-Za-z]{1,5}\.)+)\s*$")
PREFIX = 5  # words are compared on their first five letters: a stem for Dutch and English alike
MAX_ALIGNED = 3
WEAK_ALIGNMENT = 0.3  # below this share of its words in any one source sentence: compare with the whole source
COVERS = 0.8  # an answer sentence holding this share of its source sentence's words must keep its negations
LEXICAL_SUPPORT = 0.5  # a sentence without facts is supported when this share of its words is in the source


@dataclass(frozen=True)
class AnswerSentence:
    text: str  # as in the answer, markers included
    body: str  # without markers and list markup
    cites: tuple[int, ...]


# A sentence ends at . ! ? … (closing quotes or brackets may follow) before whitespace and a capital,
# a digit, a bracket or a quote. A regular expression rather than pySBD: it is ~100x faster, and
# the check runs on every answer and every cited passage.
# A citation marker before a capital ends a sentence too: an extractive answer quotes a table row
# (no full stop) and goes on with the next unit ("… 500 mg [1] Geef paracetamol …").
_BOUNDARY = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+(?=[A-ZÀ-ÖØ-Þ0-9(\[\"'‘“])|(?<=\d\])\s+(?=[A-ZÀ-ÖØ-Þ])")


def _segments(block: str, language: str = "nl") -> list[str]:
    out: list[str] = []
    pending = ""
    start = 0
    for m in _BOUNDARY.finditer(block):
        piece = block[start:m.start()] + m.group(0).rstrip()
        start = m.end()
        pending = f"{pending} {piece}" if pending else piece
        ab = _ABBREV_END.search(pending.rstrip())
        if ab and ab.group(1).rstrip(".").lower() in _ABBREVIATIONS:
            continue
        if re.search(r"(?:^|\s)\d{1,3}\.$", pending.rstrip()) and len(pending.split()) == 1:
            continue  # "3." opening a numbered step
        if pending.strip():
            out.append(pending.strip())
        pending = ""
    rest = block[start:]
    pending = f"{pending} {rest}" if pending else rest
    if pending.strip():
        out.append(pending.strip())
    return out


def _blocks(text: str) -> list[str]:
    """Lines of text as units: paragraphs (wrapped lines joined), list items, table rows (cells joined)."""
    blocks: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or _TABLE_RULE.match(stripped):
            if current:
                blocks.append(" ".join(current))
                current = []
            continue
        if stripped.startswith("|"):
            if current:
                blocks.append(" ".join(current))
                current = []
            blocks.append("; ".join(c.strip() for c in stripped.strip("|").split("|") if c.strip()))
            continue
        if _LIST_MARKUP.match(line) and current:
            blocks.append(" ".join(current))
            current = []
        current.append(stripped)
    if current:
        blocks.append(" ".join(current))
    return blocks


def _cites(text: str) -> tuple[int, ...]:
    out: list[int] = []
    for m in MARKER.finditer(text):
        for x in re.split(r"[,;]", m.group(1)):
            n = int(x)
            if n not in out:
                out.append(n)
    return tuple(out)


def _body(text: str) -> str:
    return _EMPHASIS.sub("", _LIST_MARKUP.sub("", MARKER.sub("", text))).strip()


def split_answer(answer: str, language: str = "nl") -> list[AnswerSentence]:
    """The answer's sentences with their markers; a marker standing after the full stop belongs to the
    sentence before it ("… droog zijn. [1] Was …")."""
    lang = language if language in ("nl", "en") else "nl"
    pieces: list[str] = []
    for block in _blocks(answer):
        for seg in _segments(block, lang):
            lead = re.match(r"^(?:\s*\[\s*\d+\s*(?:[,;]\s*\d+\s*)*\]\s*[.!?]?)+", seg)
            if lead and pieces:
                pieces[-1] = f"{pieces[-1]} {lead.group(0).strip()}"
                seg = seg[lead.end():].strip()
            if seg:
                pieces.append(seg)
    out = []
    cursor = 0
    for p in pieces:
        body = _body(p)
        if body or _cites(p):
            text, cursor = _verbatim(answer, p, cursor)
            out.append(AnswerSentence(text, body, _cites(p)))
    return out


def _verbatim(answer: str, piece: str, start: int) -> tuple[str, int]:
    """The piece as it stands in the answer (a sentence wrapped over lines was joined with spaces), so the
    page can find and mark it; the joined piece itself when the answer does not hold it (a table row)."""
    m = re.compile(r"\s+".join(map(re.escape, piece.split()))).search(answer, start)
    return (m.group(0), m.end()) if m else (piece, start)


def split_source(text: str, language: str | None = None) -> list[str]:
    """A source passage's sentences (headings, list items and table rows are units of their own)."""
    lang = language or detect_language(text)
    out = []
    for block in _blocks(text):
        for seg in _segments(block, lang):
            body = _body(seg)
            if body:
                out.append(body)
    return out


def _terms(text: str) -> set[str]:
    return {w[:PREFIX] for w in content_words(text, STOPWORDS) if w not in _ACTORS}


# --------------------------------------------------------------------------- reasons

_REASONS = {
    "nl": {
        "no_marker": "geen bronverwijzing [n]: niet te controleren",
        "citation": "verwijst naar bron [{n}], die er niet is",
        "nothing_checkable": ("geen getal, eenheid, ontkenning of persoon om te controleren, en weinig woorden "
                              "uit de bron"),
        "number": "getal: '{got}' staat niet in de bron{src}",
        "unit": "eenheid: '{got}', maar de bron zegt '{want}'",
        "rate": "frequentie: '{got}', maar de bron zegt '{want}'",
        "threshold": "grens: '{got}' is een andere grens dan '{want}' in de bron",
        "code": "code '{got}' staat niet in de bron",
        "extension": "toestelnummer '{got}' staat niet in de bron{src}",
        "actor": "wie: '{got}' staat niet in de bron{src}",
        "negation_added": "ontkenning: '{got}' staat niet zo in de bron",
        "negation_dropped": "ontkenning ontbreekt: de bron zegt '{want}'",
        "source_has": " (de bron noemt: {items})",
    },
    "en": {
        "no_marker": "no source marker [n]: cannot be checked",
        "citation": "cites source [{n}], which does not exist",
        "nothing_checkable": "no number, unit, negation or person to check, and few words from the source",
        "number": "number: '{got}' is not in the source{src}",
        "unit": "unit: '{got}', but the source says '{want}'",
        "rate": "rate: '{got}', but the source says '{want}'",
        "threshold": "threshold: '{got}' is another bound than '{want}' in the source",
        "code": "code '{got}' is not in the source",
        "extension": "extension '{got}' is not in the source{src}",
        "actor": "who: '{got}' is not in the source{src}",
        "negation_added": "negation: '{got}' is not in the source that way",
        "negation_dropped": "negation missing: the source says '{want}'",
        "source_has": " (the source names: {items})",
    },
}


@dataclass(frozen=True)
class Mismatch:
    kind: str  # number, unit, threshold, negation, actor
    reason: str


class _Reasons:
    def __init__(self, language: str) -> None:
        self.t = _REASONS.get(language, _REASONS["nl"])

    def __call__(self, key: str, **kw: object) -> str:
        return self.t[key].format(**kw)

    def has(self, items: Sequence[str]) -> str:
        uniq = list(dict.fromkeys(items))[:3]
        return self.t["source_has"].format(items=", ".join(uniq)) if uniq else ""


# --------------------------------------------------------------------------- comparing facts


def _same_per(q: Quantity, s: Quantity) -> bool:
    if q.per is None:
        return True  # the answer leaves the rate out: not a wrong fact
    return s.per_dim == q.per_dim and s.per is not None and same_values(frozenset({q.per}), frozenset({s.per}))


def _compare_quantity(q: Quantity, source: Facts, r: _Reasons) -> Mismatch | None:
    qs = source.quantities
    if q.dim is None:
        if any(same_values(q.raw, s.raw) or same_values(q.raw, s.values) for s in qs):
            return None
        return Mismatch("number", r("number", got=q.text, src=r.has([s.text for s in qs])))
    full = [s for s in qs if s.dim == q.dim and same_values(q.values, s.values) and _same_per(q, s)]
    if not full and not any(s.dim is not None and same_values(q.raw, s.raw) for s in qs):
        # a bare number in the source (a table cell whose unit is in its header) answers for it
        full = [s for s in qs if s.dim is None and same_values(q.raw, s.raw)]
    if full:
        if q.bound and all(s.bound and s.bound != q.bound for s in full):
            return Mismatch("threshold", r("threshold", got=q.text, want=full[0].text))
        return None
    if q.extension:
        return Mismatch("actor", r("extension", got=q.text, src=r.has([s.text for s in qs if s.extension])))
    same_value = [s for s in qs if same_values(q.raw, s.raw) or (s.dim == q.dim and same_values(q.values, s.values))]
    if same_value:
        s = same_value[0]
        if s.dim == q.dim and same_values(q.values, s.values):
            return Mismatch("unit", r("rate", got=q.text, want=s.text))
        return Mismatch("unit", r("unit", got=q.text, want=s.text))
    same_dim = [s.text for s in qs if s.dim == q.dim]
    return Mismatch("number", r("number", got=q.text, src=r.has(same_dim)))


def _overlap(a: frozenset[str], b: frozenset[str]) -> int:
    pa, pb = {w[:PREFIX] for w in a}, {w[:PREFIX] for w in b}
    return len(pa & pb)


def compare(answer: Facts, answer_terms: set[str], aligned: Facts, primary: Facts, r: _Reasons,
            primary_terms: set[str] | None = None) -> list[Mismatch]:
    """What of ``answer`` is not in ``aligned`` (the cited sentences it was aligned to); ``primary`` is
    the best-aligned sentence, whose negations the answer must keep."""
    out: list[Mismatch] = []
    for q in answer.quantities:
        m = _compare_quantity(q, aligned, r)
        if m is not None:
            out.append(m)
    for code in answer.codes:
        if code not in aligned.codes:
            out.append(Mismatch("number", r("code", got=code)))
    have = Counter(a.cls for a in aligned.actors)
    said = Counter(a.cls for a in answer.actors)
    for a in answer.actors:
        if said[a.cls] > have[a.cls]:  # named more often than the source names it: someone was replaced
            out.append(Mismatch("actor", r("actor", got=a.text, src=r.has([x.text for x in aligned.actors]))))
            said[a.cls] = 0
    for neg in answer.negations:
        ok = any(_overlap(neg.context, s.context) > 0 or not neg.context for s in aligned.negations)
        if not ok:
            out.append(Mismatch("negation", r("negation_added", got=neg.text)))
    if not any(m.kind == "negation" for m in out):
        if len(answer.negations) > len(aligned.negations):
            out.append(Mismatch("negation", r("negation_added", got=answer.negations[-1].text)))
        elif primary_terms and len(answer_terms & primary_terms) >= COVERS * len(primary_terms) \
                and len(answer.negations) < len(primary.negations):
            out.append(Mismatch("negation", r("negation_dropped", want=primary.negations[-1].text)))
    for s in primary.negations:
        shared = len({w[:PREFIX] for w in s.context} & answer_terms)
        if shared >= min(2, len(s.context)) and shared > 0 and not any(
                _overlap(a.context, s.context) > 0 for a in answer.negations):
            out.append(Mismatch("negation", r("negation_dropped", want=s.text)))
    return out


# --------------------------------------------------------------------------- the check


@dataclass
class _Source:
    sentences: list[str]
    terms: list[set[str]]
    whole: str


@lru_cache(maxsize=512)
def _prepare(text: str) -> _Source:
    sentences = split_source(text) or [text]
    return _Source(sentences, [_terms(s) for s in sentences], text)


def _align(terms: set[str], sources: Sequence[_Source]) -> tuple[list[str], float]:
    """The cited sentences that cover the answer sentence's words (greedy, at most three), and the
    best single sentence's share; all sentences when the sentence has no content words."""
    pool = [(s, t) for src in sources for s, t in zip(src.sentences, src.terms, strict=True)]
    if not terms or not pool:
        return [s for src in sources for s in src.sentences], 0.0
    best_i = max(range(len(pool)), key=lambda i: (len(terms & pool[i][1]), -len(pool[i][1]), -i))
    best_share = len(terms & pool[best_i][1]) / len(terms)
    chosen = [best_i]
    uncovered = terms - pool[best_i][1]
    while uncovered and len(chosen) < MAX_ALIGNED:
        gains = [(len(uncovered & t), -i) for i, (_, t) in enumerate(pool) if i not in chosen]
        if not gains:
            break
        gain, neg_i = max(gains)
        if gain < 2 or gain < 0.2 * len(terms):
            break
        chosen.append(-neg_i)
        uncovered -= pool[-neg_i][1]
    return [pool[i][0] for i in sorted(chosen)], best_share


def check_sentence(
    sentence: AnswerSentence, sources: Mapping[int, _Source], language: str
) -> Claim:
    r = _Reasons(language)
    if not sentence.cites:
        return Claim(sentence.text, "unverifiable", (), r("no_marker"), "no_marker")
    missing = [n for n in sentence.cites if n not in sources]
    if missing:
        return Claim(sentence.text, "unsupported", sentence.cites, r("citation", n=missing[0]), "citation")
    cited = [sources[n] for n in sentence.cites]
    terms = _terms(sentence.body)
    aligned, share = _align(terms, cited)
    if terms and share < WEAK_ALIGNMENT:  # a translation or a free paraphrase: the whole cited text
        aligned = [s for src in cited for s in src.sentences]
    else:
        aligned += [s for s in _rows_by_numbers(sentence.body, cited) if s not in aligned]
    facts = extract(sentence.body, STOPWORDS)
    aligned_facts = extract("\n".join(aligned), STOPWORDS)
    primary = _primary(terms, aligned)
    primary_terms = set().union(*(_terms(s) for s in aligned)) if aligned and share >= WEAK_ALIGNMENT else set()
    mismatches = compare(facts, terms, aligned_facts, primary, r, primary_terms)
    if mismatches:
        reason = "; ".join(dict.fromkeys(m.reason for m in mismatches))
        return Claim(sentence.text, "unsupported", sentence.cites, reason, mismatches[0].kind)
    if facts.checkable or share >= LEXICAL_SUPPORT:
        return Claim(sentence.text, "supported", sentence.cites)
    return Claim(sentence.text, "unverifiable", sentence.cites, r("nothing_checkable"), "nothing_checkable")


_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _rows_by_numbers(body: str, sources: Sequence[_Source]) -> list[str]:
    """Source lines that the answer sentence matches by their numbers rather than their words: a table
    row ("26–40 kg; 500 mg; 2000 mg") quoted under its header's words. A line counts when it shares
    at least two numbers with the sentence (one when it holds one) and most of its numbers are in it."""
    mine = set(_NUMBER.findall(body))
    if not mine:
        return []
    out = []
    for src in sources:
        for s in src.sentences:
            theirs = set(_NUMBER.findall(s))
            shared = len(theirs & mine)
            if theirs and shared >= min(2, len(theirs)) and shared * 2 > len(theirs):
                out.append(s)
    return out


def _primary(terms: set[str], aligned: Sequence[str]) -> Facts:
    """The negations the answer must keep: those of aligned sentences it shares most words with."""
    if not aligned or not terms:
        return Facts()
    scored = [(len(terms & _terms(s)) / len(terms), s) for s in aligned]
    keep = [s for share, s in scored if share >= WEAK_ALIGNMENT]
    return extract("\n".join(keep), STOPWORDS) if keep else Facts()


def check_answer(answer: str, sources: Mapping[int, str], language: str | None = None) -> list[Claim]:
    """One claim per sentence of ``answer``; ``sources`` maps each marker number to its source text."""
    lang = language if language in ("nl", "en") else detect_language(answer)
    prepared = {n: _prepare(text) for n, text in sources.items()}
    return [check_sentence(s, prepared, lang) for s in split_answer(answer, lang)]


def drop_unsupported(answer: str, claims: Sequence[Claim]) -> str:
    """``answer`` without its unsupported sentences (whitespace tidied)."""
    out = answer
    for c in claims:
        if c.status == "unsupported":
            out = out.replace(c.sentence, "", 1)
    out = re.sub(r"[ \t]{2,}", " ", out)
    out = re.sub(r"\n{3,}", "\n\n", out)
    return "\n".join(line.rstrip() for line in out.strip().splitlines()).strip()
