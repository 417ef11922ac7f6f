"""Language-aware text analysis and the BM25-style sparse encoder.

Pipeline per text: Unicode word tokens, lowercased, diacritics folded (NFKD with the
combining marks stripped, so ``patiëntendossier`` and ``patientendossier`` are one term),
stopwords of the text's language removed, Snowball stemming (PyStemmer) for that language.

Dutch compounds: a long Dutch token (``compound_min_len`` letters or more) additionally
yields pieces as extra terms (weight ``compound_weight``), so ``dossier`` finds
``patiëntendossier`` and ``handhygiëne`` finds ``hygiëne``. With a word list
(``compound_lexicon``, the product's default: Debian wdutch's /usr/share/dict/dutch) the pieces
are the listed words the token splits into (``lexicon_split``: head + optional linking
s/e/en + listed rest, recursively); without one, every prefix and suffix of at least
``compound_min_part`` letters. Pieces are stemmed and share the term space of whole words.
On the Dutch dev split the word list scored best (benchmarks/RESULTS.md).

Term ids are the first 31 bits of blake2b(term): stable across processes and backends.

Document weights are BM25's saturated, length-normalised term frequency
``tf·(k1+1) / (tf + k1·(1 − b + b·dl/avg_len))`` with a configured ``avg_len`` (in analysed
terms). The IDF factor comes from the store: the sparse vector is created with Qdrant's
IDF modifier, so a sparse score is Σ idf(t)·w_doc(t)·w_query(t), i.e. BM25.
A query vector holds each unique query term with weight 1 (compound pieces lower).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import Stemmer

from retrieval.care_terms import CareTerms, care_terms_from_settings
from retrieval.stopwords import DUTCH, ENGLISH, STOPWORDS
from retrieval.tokens import WORD as _WORD
from retrieval.tokens import fold as fold
from retrieval.tokens import tokenize as tokenize
from retrieval.verb_forms import dutch_verb_forms
from vraagbaak_core.settings import ConfigError, SparseSettings
from vraagbaak_core.types import SparseVector

Language = Literal["nl", "en"]
LANGUAGES: tuple[Language, ...] = ("nl", "en")
_SNOWBALL = {"nl": "dutch", "en": "english"}
_NL_ONLY = DUTCH - ENGLISH
_EN_ONLY = ENGLISH - DUTCH


def language_scores(text: str) -> dict[Language, int]:
    """How many tokens of ``text`` are stopwords found only in Dutch / only in English."""
    tokens = _WORD.findall(fold(text))
    return {
        "nl": sum(1 for t in tokens if t in _NL_ONLY),
        "en": sum(1 for t in tokens if t in _EN_ONLY),
    }


def guess_language(text: str) -> Language | None:
    """``nl`` or ``en`` from stopword evidence; None when there is none (or a tie)."""
    scores = language_scores(text)
    if scores["nl"] == scores["en"]:
        return None
    return "nl" if scores["nl"] > scores["en"] else "en"


def detect_language(text: str, default: Language = "nl") -> Language:
    """``nl`` or ``en`` by stopword ratio (no model); ``default`` when there is no evidence."""
    return guess_language(text) or default


def term_id(term: str) -> int:
    """Stable 31-bit id of a term (same in every process, backend and Python version)."""
    digest = hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class AnalyzerConfig:
    k1: float = 1.2
    b: float = 0.75
    avg_len: float = 120.0
    compound_min_len: int = 8
    compound_min_part: int = 4
    compound_weight: float = 0.3
    # a Dutch word list (folded, lowercased): compounds split only into listed words (see
    # ``lexicon_split``); None: every long enough prefix and suffix is a piece
    compound_lexicon: frozenset[str] | None = None
    # query-time synonyms (retrieval.care_terms): the other terms of a matched group, at care_weight
    care_terms: CareTerms | None = None
    care_weight: float = 0.5
    # the other language's equivalents (a Dutch question's English terms and the other way round)
    translation_weight: float = 0.5


LINKS = ("", "s", "e", "en")  # Dutch linking morphemes between compound parts (tussenklanken)


def lexicon_split(token: str, lexicon: frozenset[str], min_part: int) -> list[str]:
    """The parts of ``token`` as a compound of listed words: the longest listed head (followed
    by an optional linking ``s``/``e``/``en``) whose rest is listed or splits again; [] if none."""
    n = len(token)
    for cut in range(n - min_part, min_part - 1, -1):
        head = token[:cut]
        if head not in lexicon:
            continue
        for link in LINKS:
            if not token.startswith(link, cut):
                continue
            rest = token[cut + len(link):]
            if len(rest) < min_part:
                continue
            if rest in lexicon:
                return [head, rest]
            tail = lexicon_split(rest, lexicon, min_part)
            if tail:
                return [head, *tail]
    return []


def load_lexicon(path: Path) -> frozenset[str]:
    """A word list, one word a line (e.g. Debian wdutch's /usr/share/dict/dutch), folded."""
    with path.open(encoding="utf-8") as fh:
        return frozenset(fold(w.strip()).lower() for w in fh if w.strip().isalpha())


class Analyzer:
    """Turns text into weighted terms for one language, or for both when unknown."""

    def __init__(self, config: AnalyzerConfig | None = None) -> None:
        self.config = config or AnalyzerConfig()
        self._local = threading.local()  # PyStemmer objects are not thread-safe

    def _stemmer(self, language: Language) -> Stemmer.Stemmer:
        stemmers: dict[str, Stemmer.Stemmer] | None = getattr(self._local, "stemmers", None)
        if stemmers is None:
            stemmers = {lang: Stemmer.Stemmer(algo) for lang, algo in _SNOWBALL.items()}
            self._local.stemmers = stemmers
        return stemmers[language]

    def compound_pieces(self, token: str) -> list[str]:
        """Unstemmed prefixes and suffixes of a long (Dutch) token, each a candidate compound part."""
        n, part = len(token), self.config.compound_min_part
        if n < self.config.compound_min_len or not token.isalpha():
            return []
        if self.config.compound_lexicon is not None:
            return lexicon_split(token, self.config.compound_lexicon, part)
        suffixes = [token[i:] for i in range(part - 1, n - part + 1)]
        prefixes = [token[:j] for j in range(part, n - part + 2)]
        return suffixes + prefixes

    def terms(
        self, text: str, language: Language, stopwords: frozenset[str] | None = None
    ) -> tuple[list[str], Counter[str]]:
        """(stemmed word terms in order, compound piece counts) for ``text`` in ``language``."""
        stop = STOPWORDS[language] if stopwords is None else stopwords
        tokens = [t for t in tokenize(text) if t not in stop]
        stemmer = self._stemmer(language)
        words: list[str] = stemmer.stemWords(tokens)
        pieces: Counter[str] = Counter()
        if language == "nl":
            min_part = self.config.compound_min_part
            for token in tokens:
                raw = self.compound_pieces(token)
                if raw:
                    pieces.update(p for p in set(stemmer.stemWords(raw)) if len(p) >= min_part)
        return words, pieces

    def document_weights(self, text: str, language: Language) -> dict[str, float]:
        """BM25 term-frequency weights of a document (chunk); IDF is left to the store."""
        words, pieces = self.terms(text, language)
        tf: dict[str, float] = dict(Counter(words))
        for piece, count in pieces.items():
            tf[piece] = tf.get(piece, 0.0) + self.config.compound_weight * count
        c = self.config
        norm = c.k1 * (1.0 - c.b + c.b * len(words) / c.avg_len)
        return {t: f * (c.k1 + 1.0) / (f + norm) for t, f in tf.items()}

    def query_weights(self, text: str, language: Language | None = None) -> dict[str, float]:
        """Unique query terms, weight 1 (compound pieces ``compound_weight``; care terms lower).

        ``language=None`` guesses it from stopwords; without evidence both Dutch and
        English analysis are applied (with both stopword lists) and their terms united.
        """
        return self.query_terms(text, language)[0]

    def query_terms(
        self, text: str, language: Language | None = None
    ) -> tuple[dict[str, float], dict[str, frozenset[str]]]:
        """(:meth:`query_weights`, translations): for each term of the question's own words that
        belongs to a care term, the stems of that term's equivalents in the other language (a Dutch
        question's ``zuurstof`` → ``{"oxygen"}``), so that a document in the other language can
        cover the term (``retrieval.search.lexical_coverage``)."""
        lang = language or guess_language(text)
        languages: Iterable[Language] = (lang,) if lang else LANGUAGES
        stop = None if lang else DUTCH | ENGLISH
        weights: dict[str, float] = {}
        for language_ in languages:
            words, pieces = self.terms(text, language_, stop)
            for piece in pieces:
                weights.setdefault(piece, self.config.compound_weight)
            for word in words:
                weights[word] = 1.0
        translations: dict[str, frozenset[str]] = {}
        if self.config.care_terms is not None:
            translations = self._expand(text, lang, weights)
        return weights, translations

    def _expand(self, text: str, lang: Language | None, weights: dict[str, float]) -> dict[str, frozenset[str]]:
        """Add the care-term equivalents of the query's terms, stemmed in their own language (never
        lowering a term the query already holds): same-language ones at ``care_weight``, the other
        language's at ``translation_weight`` (both languages at ``care_weight`` when the question's
        language is unknown). Returns the translations of the question's own terms."""
        care = self.config.care_terms
        assert care is not None
        tokens = tokenize(text)
        spans = care.spans(tokens)
        stems: dict[tuple[int, Language], list[str]] = {}  # (group, language) -> stems of its words

        def group_stems(g: int, language: Language) -> list[str]:
            key = (g, language)
            if key not in stems:
                words = sorted(w for w in care.group_words(g, language) if w not in STOPWORDS[language])
                stems[key] = self._stemmer(language).stemWords(words)
            return stems[key]

        for g in sorted({g for _, _, g in spans}):
            for language in LANGUAGES:
                weight = self.config.care_weight
                if lang is not None and language != lang:
                    weight = self.config.translation_weight
                if weight <= 0.0:
                    continue
                for stem in group_stems(g, language):
                    if weights.get(stem, 0.0) < weight:
                        weights[stem] = weight
        translations: dict[str, set[str]] = {}
        for own in (lang,) if lang else LANGUAGES:
            other: Language = "en" if own == "nl" else "nl"
            stemmer = self._stemmer(own)
            for start, end, g in spans:
                targets = group_stems(g, other)
                for token in tokens[start:end]:
                    if token in STOPWORDS[own]:
                        continue
                    keys = [stemmer.stemWord(token)]
                    if own == "nl":  # a compound's pieces are the compound's ("maag", "sond" of "maagsonde")
                        keys += stemmer.stemWords(self.compound_pieces(token))
                    for key in keys:
                        if key in weights:
                            translations.setdefault(key, set()).update(t for t in targets if t != key)
        return {k: frozenset(v) for k, v in translations.items() if v}


    def equivalents(self, text: str, language: Language) -> dict[str, dict[Language, frozenset[str]]]:
        """What stands for each term of ``text`` (its word stems and a Dutch compound's piece stems,
        as :meth:`terms` gives them) in each language: a Dutch verb form's other forms ("valt" →
        the stems of "val", "vallen"), and the stems of every care term of a group the word (or a
        compound's piece, "decubitus" of "decubitusrisico") belongs to: in the same language its
        synonyms (lay ↔ professional: "doorligwond" → "decubitus"), in the other its translations.
        A care term of several words is one string, its stems joined by a space ("pressur ulcer").
        The extractive answerer's overlap counts a term as held by a text holding one of these."""
        stemmer = self._stemmer(language)
        stop = STOPWORDS[language]
        tokens = tokenize(text)
        out: dict[str, dict[Language, set[str]]] = {}

        def add(key: str, lang: Language, stems: Iterable[str]) -> None:
            more = set(stems) - {key}
            if more:
                out.setdefault(key, {}).setdefault(lang, set()).update(more)

        def pieces(token: str) -> list[tuple[str, str]]:  # (piece, its stem) of a Dutch compound
            if language != "nl":
                return []
            raw = self.compound_pieces(token)
            return [(p, st) for p, st in zip(raw, stemmer.stemWords(raw), strict=True)
                    if len(st) >= self.config.compound_min_part]

        if language == "nl":
            for token in tokens:
                if token not in stop:
                    add(stemmer.stemWord(token), "nl", stemmer.stemWords(dutch_verb_forms(token)))
        care = self.config.care_terms
        if care is None:
            return {k: {lang: frozenset(v) for lang, v in d.items()} for k, d in out.items()}
        stems: dict[tuple[int, Language], list[str]] = {}

        def group_stems(g: int, lang: Language) -> list[str]:  # a term of several words: its stems joined by " "
            if (g, lang) not in stems:
                st = self._stemmer(lang)
                stems[(g, lang)] = sorted({" ".join(st.stemWords([w for w in term.words if w not in STOPWORDS[lang]]))
                                           for term in care.groups[g] if term.language == lang} - {""})
            return stems[(g, lang)]

        for start, end, g in care.spans(tokens):
            for token in tokens[start:end]:
                if token in stop:
                    continue
                for key in [stemmer.stemWord(token), *(st for _, st in pieces(token))]:
                    for lang in LANGUAGES:
                        add(key, lang, group_stems(g, lang))
        for token in tokens:
            if token in stop:
                continue
            for piece, key in pieces(token):
                for _, _, g in care.spans([piece]):
                    for lang in LANGUAGES:
                        add(key, lang, group_stems(g, lang))
        return {k: {lang: frozenset(v) for lang, v in d.items()} for k, d in out.items()}


def to_sparse(weights: dict[str, float]) -> SparseVector:
    """Hash terms to ids; colliding terms (rare) add up. Indices sorted ascending."""
    by_id: dict[int, float] = {}
    for term, weight in weights.items():
        if weight > 0.0:
            idx = term_id(term)
            by_id[idx] = by_id.get(idx, 0.0) + weight
    ids = sorted(by_id)
    return SparseVector(indices=tuple(ids), values=tuple(by_id[i] for i in ids))


class Bm25SparseEncoder:
    """Implements ``vraagbaak_core.ports.SparseEncoder`` with :class:`Analyzer`."""

    def __init__(self, config: AnalyzerConfig | None = None) -> None:
        self.analyzer = Analyzer(config)

    def encode_document(self, text: str, language: str) -> SparseVector:
        lang: Language = "en" if language == "en" else "nl"
        if language not in LANGUAGES:
            lang = detect_language(text)
        return to_sparse(self.analyzer.document_weights(text, lang))

    def encode_query(self, text: str, language: str | None = None) -> SparseVector:
        lang: Language | None = language if language in LANGUAGES else None  # type: ignore[assignment]
        return to_sparse(self.analyzer.query_weights(text, lang))

    def query_translations(self, text: str) -> dict[int, frozenset[int]]:
        """Term id of a query term → ids of its care-term equivalents in the other language."""
        _, translations = self.analyzer.query_terms(text)
        return {term_id(t): frozenset(term_id(x) for x in xs) for t, xs in translations.items()}


@functools.lru_cache(maxsize=4)
def _lexicon(path: Path) -> frozenset[str]:
    if not path.is_file():
        raise ConfigError(
            f"retrieval.sparse.compound_lexicon {path} is missing: run scripts/install-wdutch "
            "(Debian wdutch) or set it to null (compounds are then split by affixes)"
        )
    return load_lexicon(path)


def encoder_from_settings(settings: SparseSettings) -> Bm25SparseEncoder:
    lexicon = None if settings.compound_lexicon is None else _lexicon(settings.compound_lexicon)
    return Bm25SparseEncoder(
        AnalyzerConfig(
            k1=settings.k1,
            b=settings.b,
            avg_len=settings.avg_len,
            compound_min_len=settings.compound_min_len,
            compound_weight=settings.compound_weight,
            compound_lexicon=lexicon,
            care_terms=care_terms_from_settings(settings),
            care_weight=settings.care_terms_weight,
            translation_weight=settings.translation_weight,
        )
    )
