"""Other forms of a Dutch verb form, so that a question's "valt" meets a text's "vallen".

Snowball's Dutch stemmer leaves a verb's ``-t`` (third person, "controleert") and the ``ge-`` of a
past participle ("gecontroleerd", "toegediend") in place, so these forms never share a stem with the
infinitive or imperative a protocol uses ("controleren", "Controleer", "toedienen"). For a folded
token this gives the candidate base forms and infinitives; the callers stem them and use them as
alternatives of the token (never instead of it), so a wrong guess ("patiënt" → "patiën") only adds
a form that matches nothing.
"""

from __future__ import annotations

# separable particles before the ge- of a participle: "toe-ge-diend", "op-ge-nomen"
_PARTICLES = ("aan", "af", "bij", "door", "in", "mee", "na", "om", "op", "over", "terug", "toe", "uit",
              "voor", "weg", "vast", "samen", "achter", "neer", "tegen")
_VOWELS = "aeiou"


def _infinitives(base: str) -> list[str]:
    """Infinitive spellings of a verb's stem form: "val" → "vallen", "controleer" → "controleren",
    "geef" → "geven", "meld" → "melden"."""
    out = [base + "en"]
    if len(base) >= 3 and base[-1] not in _VOWELS and base[-2] in _VOWELS:
        if base[-3] == base[-2]:  # a long vowel written double loses a letter: "controleer", "geef"
            last = {"f": "v", "s": "z"}.get(base[-1], base[-1])
            out.append(base[:-3] + base[-2] + last + "en")
        elif base[-3] not in _VOWELS:  # a short vowel: the consonant doubles ("val" → "vallen")
            out.append(base + base[-1] + "en")
    return out


def dutch_verb_forms(token: str) -> list[str]:
    """Candidate base forms and infinitives of a folded Dutch token that may be a conjugated verb or
    a past participle ("valt" → "val", "vallen"; "toegediend" → "toedien", "toedienen"); [] when
    the token has no such shape."""
    if not token.isalpha() or len(token) < 4:
        return []
    bases: list[str] = []
    participle = token
    prefix = ""
    for p in _PARTICLES:
        if token.startswith(p + "ge") and len(token) >= len(p) + 5:
            prefix, participle = p, token[len(p):]
            break
    if participle.startswith("ge") and len(participle) >= 5:
        rest = participle[2:]
        if rest[-1] in "td" and len(rest) >= 4:  # weak: "gecontroleerd", "toegediend"; "gemeld" keeps its d
            bases += [prefix + rest[:-1], prefix + rest]
        elif rest.endswith("en") and len(rest) >= 4:  # strong: "gevallen" → "vallen"
            return [prefix + rest]
    if not prefix and token.endswith("t") and not token.endswith("tt"):  # "valt", "controleert", "meldt"
        bases.append(token[:-1])
    forms = [b for base in bases for b in (base, *_infinitives(base)) if len(b) >= 3]
    return [f for f in dict.fromkeys(forms) if f != token]
