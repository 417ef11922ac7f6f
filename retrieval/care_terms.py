"""Care terms: groups of words that mean the same in care (``configs/care_terms.yaml``).

Each group holds Dutch terms (lay words and professional terms: "doorligwond", "decubitus") and
their English equivalents ("pressure ulcer"). A term matches a text's tokens after stemming in the
term's own language (Snowball, as the BM25 analysis does), so "doorligwonden" matches "doorligwond";
a Dutch verb form also matches as its infinitive (``retrieval.verb_forms``: "valt" matches "vallen",
"toegediend" matches "toedienen"); a term of several words matches only as that phrase.

- At query time the BM25 query gets the other terms of every matched group as extra terms
  (``retrieval.analysis.Analyzer.query_weights``, weight ``retrieval.sparse.care_terms_weight``).
- :meth:`CareTerms.expand_terms` gives the same expansion to other callers (the extractive answerer's
  stemmed overlap between a question and a sentence).

Loaded once per path (:func:`load_care_terms` is cached); a bad file is a ``ConfigError`` naming it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import Stemmer
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from retrieval.tokens import tokenize
from retrieval.verb_forms import dutch_verb_forms
from vraagbaak_core.settings import PROJECT_ROOT, ConfigError, SparseSettings

Language = Literal["nl", "en"]
LANGUAGES: tuple[Language, ...] = ("nl", "en")
_SNOWBALL = {"nl": "dutch", "en": "english"}


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nl: list[str] = []
    en: list[str] = []

    @field_validator("nl", "en")
    @classmethod
    def _terms(cls, v: list[str]) -> list[str]:
        for term in v:
            if not isinstance(term, str) or not term.strip():
                raise ValueError("a term must be a non-empty string")
        return v


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    groups: list[_Group]


@dataclass(frozen=True)
class Term:
    language: Language
    text: str
    words: tuple[str, ...]  # folded tokens, as retrieval.analysis.tokenize gives them
    stems: tuple[str, ...]  # the words stemmed in the term's language


class CareTerms:
    """Term groups, matched by stems; thread-safe (one set of stemmers per thread)."""

    def __init__(self, groups: Sequence[Mapping[Language, Sequence[str]]]) -> None:
        self._local = threading.local()
        self.groups: list[tuple[Term, ...]] = []
        # (language, first stem) -> [(stems, group index)]: where a term can start
        self._starts: dict[tuple[Language, str], list[tuple[tuple[str, ...], int]]] = {}
        for g, group in enumerate(groups):
            terms: list[Term] = []
            for language in LANGUAGES:
                for text in group.get(language, ()):
                    words = tuple(tokenize(text))
                    if not words:
                        continue
                    stems = tuple(self._stemmer(language).stemWords(list(words)))
                    terms.append(Term(language, text, words, stems))
                    self._starts.setdefault((language, stems[0]), []).append((stems, g))
            self.groups.append(tuple(terms))

    def _stemmer(self, language: Language) -> Stemmer.Stemmer:
        stemmers: dict[str, Stemmer.Stemmer] | None = getattr(self._local, "stemmers", None)
        if stemmers is None:
            stemmers = {lang: Stemmer.Stemmer(algo) for lang, algo in _SNOWBALL.items()}
            self._local.stemmers = stemmers
        return stemmers[language]

    def spans(self, tokens: Sequence[str]) -> set[tuple[int, int, int]]:
        """``(start, end, group)`` of every term occurrence in ``tokens`` (folded, in order):
        ``tokens[start:end]`` is a term of group ``group`` (in either language)."""
        found: set[tuple[int, int, int]] = set()
        if not tokens:
            return found
        for language in LANGUAGES:
            stemmer = self._stemmer(language)
            stems = stemmer.stemWords(list(tokens))
            # a Dutch verb form also as its infinitive ("valt" → "vallen", "toegediend" → "toedienen")
            alts: list[set[str]] = [{s} for s in stems]
            if language == "nl":
                for i, token in enumerate(tokens):
                    alts[i].update(stemmer.stemWords(dutch_verb_forms(token)))
            for i, options in enumerate(alts):
                for stem in options:
                    for term_stems, g in self._starts.get((language, stem), ()):
                        end = i + len(term_stems)
                        if end <= len(alts) and all(t in alts[i + j] for j, t in enumerate(term_stems)):
                            found.add((i, end, g))
        return found

    def matched_groups(self, tokens: Sequence[str]) -> set[int]:
        """Indices of the groups one of whose terms occurs in ``tokens`` (folded, in order)."""
        return {g for _, _, g in self.spans(tokens)}

    def group_words(self, group: int, language: Language) -> set[str]:
        """The words (folded, unstemmed) of a group's terms in ``language``."""
        return {w for term in self.groups[group] if term.language == language for w in term.words}

    def expand_terms(self, tokens: Sequence[str], language: Language) -> set[str]:
        """Words in ``language`` (folded, unstemmed) of the terms that share a group with a term in
        ``tokens``, less the tokens themselves. ``tokens``: ``retrieval.analysis.tokenize`` output of
        a text in either language; ask for ``"en"`` to get a Dutch question's English equivalents."""
        have = set(tokens)
        out: set[str] = set()
        for g in self.matched_groups(tokens):
            for term in self.groups[g]:
                if term.language == language:
                    out.update(w for w in term.words if w not in have)
        return out

    def expand_text(self, text: str, language: Language) -> set[str]:
        """:meth:`expand_terms` of a text's tokens."""
        return self.expand_terms(tokenize(text), language)


def parse_care_terms(text: str, origin: str = "care terms") -> CareTerms:
    """Care terms from YAML text; raises ConfigError naming ``origin`` and what is wrong."""
    try:
        raw = yaml.safe_load(text)
        data = _File.model_validate(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"{origin}: not valid YAML: {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{origin}: {where}: {first['msg']}") from None
    return CareTerms([{"nl": g.nl, "en": g.en} for g in data.groups])


@functools.lru_cache(maxsize=4)
def load_care_terms(path: Path) -> CareTerms:
    """The care terms of a YAML file (cached per path); ConfigError when missing or malformed."""
    if not path.is_file():
        raise ConfigError(f"retrieval.sparse.care_terms {path} is missing (set it to null to turn the list off)")
    return parse_care_terms(path.read_text(encoding="utf-8"), str(path))


def care_terms_from_settings(settings: SparseSettings) -> CareTerms | None:
    """The configured list (a relative path is relative to the project root), or None when off."""
    if settings.care_terms is None:
        return None
    path = settings.care_terms if settings.care_terms.is_absolute() else PROJECT_ROOT / settings.care_terms
    return load_care_terms(path)
