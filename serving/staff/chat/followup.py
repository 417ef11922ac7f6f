"""Follow-up questions made standalone, by fixed rules (no model): the same conversation always
searches and answers the same way.

A follow-up borrows from the standalone form of the question before it, so a third turn builds on the
second's rewrite ("Wat is de maximale dagdosis paracetamol voor een volwassene?" → "en bij kinderen?"
→ "hoe vaak dan?" gives "Hoe vaak is de maximale dagdosis paracetamol bij kinderen?"). The rules, in order:

1. A bare question word ("hoe vaak dan?", "hoe lang?", "wie dan?", "how often then?"): the previous
   question with its question word replaced (or, for a yes/no question, put in front).
2. A condition ("en wat als hij niet kan slikken?", "and what if …"): the previous question's own
   "als/wanneer/if" clause replaced, or the condition added.
3. A qualifier ("en bij kinderen?", "en voor een kind van 20 kilo?", "and for children?", "what about
   infants?"): a number with the same unit in the previous question takes the new number ("20 kilo" →
   "30 kilo"); else a group of people named there ("voor een volwassene") makes way for the new one;
   else the qualifier is added to the previous question.

Anything else a follow-up says (its own content words, a pronoun pointing back) is joined to the
previous question, as before (``None`` from :func:`rewrite`).
"""

from __future__ import annotations

import re

_END = r"\s*[?.!]*\s*$"
# question words, longest first ("hoe vaak" before "hoe")
_QWORDS = (
    r"hoe\s+vaak|hoe\s+lang|hoelang|hoe\s+laat|hoe\s+snel|hoe\s+hoog|hoe\s+veel|hoeveel|hoe\s+ver|"
    r"welke\s+dosis|wanneer|waarom|waarmee|waar|wie|welke|wat|hoe|"
    r"how\s+often|how\s+long|how\s+much|how\s+many|how\s+soon|how\s+fast|what\s+dose|which\s+dose|"
    r"when|why|where|who|which|what|how"
)
_FILLER = (
    r"dan|precies|eigenlijk|nog|ongeveer|ook|then|exactly|again|"
    r"moet\s+dat|moet\s+ik\s+dat|doe\s+ik\s+dat|geef\s+ik\s+dat|geef\s+ik\s+het|is\s+dat|moet\s+het|"
    r"should\s+i|do\s+i|is\s+it|is\s+that"
)
_BARE_QUESTION = re.compile(
    rf"^\s*(?:(?:en|maar|and|but|ok[eé]?|oké)\s*,?\s+)?(?P<q>{_QWORDS})(?:\s+(?:{_FILLER}))*{_END}", re.I
)
_LEADING_QWORD = re.compile(rf"^\s*(?:{_QWORDS})\b", re.I)
_CONDITION = re.compile(
    r"^\s*(?:(?:en|maar|and|but)\s+)?(?:(?:wat|what)\s+)?(?P<c>als|wanneer|indien|if|when)\s+(?P<x>.+?)" + _END, re.I
)
_PREV_CONDITION = re.compile(r"\s*,?\s*\b(?:als|indien|if)\b[^?]*", re.I)
_QUALIFIER = re.compile(
    r"^\s*(?:(?P<lead>(?:en\s+|maar\s+)?hoe\s+zit\s+het\s+(?:dan\s+)?met|en\s+wat\s+met|and\s+what\s+about|"
    r"what\s+about|how\s+about|(?:ok[eé]?|okay|oké)\s*,?(?:\s+en)?|en|maar|and|but)\s+)?"
    r"(?:(?P<prep>bij|voor|met|van|na|tijdens|zonder|op|in|aan|onder|boven|for|with|after|during|without|at|on|"
    r"under|over)\s+)?(?P<x>.+?)" + _END,
    re.I,
)
_NUMBER_UNIT = re.compile(
    r"(?P<n>\d+(?:[.,]\d+)?)\s*(?P<u>kilo(?:gram)?s?|kg|jaar|years?|maanden|months?|mmol/l|mmol|ml|mg|"
    r"graden|°c|uur|hours?|minuten|minutes?|procent|%)?",
    re.I,
)
_POPULATION = (
    r"volwassenen?|kind(?:eren)?|baby'?s?|zuigelingen?|peuters?|kleuters?|ouderen?|zwangeren?|"
    r"pati[eë]nten?|adults?|child(?:ren)?|infants?|bab(?:y|ies)|toddlers?|elderly|pregnant\s+women"
)
_PREV_POPULATION = re.compile(
    r"\b(?:(?P<prep>bij|voor|van|met|aan|for|in|with|to)\s+)?(?:(?:een|de|het|a|an|the)\s+)?"
    rf"(?:\w+\s+)?(?:{_POPULATION})\b(?:\s+van\s+\d+\s*\w*)?",
    re.I,
)
_ONLY_NUMBER = re.compile(r"^\s*\d+(?:[.,]\d+)?\s*[^\W\d]*\s*$")  # "9 kg", "14"
_BARE_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)?(?![\w.,]*\d)")
_HAS_POPULATION = re.compile(rf"\b(?:{_POPULATION})\b", re.I)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _strip_end(text: str) -> str:
    return re.sub(r"[\s?.!]+$", "", text.strip())


def _unit(u: str | None) -> str:
    u = (u or "").lower()
    for canon, forms in (
        ("kg", ("kilo", "kilos", "kilogram", "kilograms", "kg")),
        ("year", ("jaar", "year", "years")),
        ("hour", ("uur", "hour", "hours")),
        ("minute", ("minuten", "minute", "minutes")),
        ("month", ("maanden", "month", "months")),
        ("%", ("procent", "%")),
    ):
        if u in forms:
            return canon
    return u


def rewrite(prev: str, last: str) -> str | None:
    """The standalone form of follow-up ``last`` to the (standalone) question ``prev``; None when no
    rule applies (the caller then joins the two)."""
    prev, last = prev.strip(), last.strip()
    if not prev or not last:
        return None
    base = _strip_end(prev)
    m = _BARE_QUESTION.match(last)
    if m:
        q = " ".join(m.group("q").split())
        lead = _LEADING_QWORD.match(base)
        rest = base[lead.end() :].lstrip() if lead else base[:1].lower() + base[1:]
        return f"{_cap(q.lower())} {rest}?"
    m = _CONDITION.match(last)
    if m:
        clause = f"{m.group('c').lower()} {_strip_end(m.group('x'))}"
        head = _PREV_CONDITION.sub("", base) if _PREV_CONDITION.search(base[1:]) else base
        return f"{_strip_end(head)} {clause}?"
    m = _QUALIFIER.match(last)
    if not m or not (m.group("lead") or m.group("prep") or _ONLY_NUMBER.match(m.group("x"))):
        return None
    prep = (m.group("prep") or "").lower()
    x = _strip_end(m.group("x"))
    if not x or len(x.split()) > 8 or (not prep and _LEADING_QWORD.match(x)):
        return None  # long, or a question of its own ("en hoe lang duurt dat?"): joined by the caller
    new_num = _NUMBER_UNIT.search(x)
    if new_num and new_num.group("u"):
        unit = _unit(new_num.group("u"))
        for old in _NUMBER_UNIT.finditer(base):
            if old.group("u") and _unit(old.group("u")) == unit:
                return f"{base[: old.start()]}{new_num.group(0).strip()}{base[old.end() :]}?"
    numbers = list(_BARE_NUMBER.finditer(base))
    if new_num and len(_BARE_NUMBER.findall(x)) == 1 and len(numbers) == 1:  # "en bij 14?" after "Braden 11"
        old = numbers[0]
        return f"{base[: old.start()]}{new_num.group('n')}{base[old.end() :]}?"
    if _HAS_POPULATION.search(x):
        old_pop = _PREV_POPULATION.search(base)
        if old_pop:
            keep = prep or (old_pop.group("prep") or "")
            repl = f"{keep} {x}".strip() if old_pop.group("prep") else x
            return f"{base[: old_pop.start()]}{repl}{base[old_pop.end() :]}?"
    elif prep:  # "en bij mazelen?" after "Welk masker bij open tbc?": the same slot, new value
        same = list(re.finditer(rf"\b{prep}\s+[^,;:]+$", base, re.I))
        if same:
            return f"{base[: same[-1].start()]}{prep} {x}?"
    return f"{base} {prep + ' ' if prep else ''}{x}?"
