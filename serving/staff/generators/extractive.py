"""Extractive answerer: the units of the retrieved sources that answer the question, verbatim.

No language model. The quotable units of the top sources (``retrieval.units``: sentences, table rows
with their column headers, numbered steps) are scored by how well they *answer*, not only by topic:

- the answer type the question expects against what the unit holds (``answer_types``: "hoe lang" →
  a duration, "hoe vaak" → a frequency, "hoeveel" → an amount with a unit, "wie" → a role or number,
  "wat doe ik" → instruction steps …); a table row whose key range holds a number of the question;
- dense similarity of question and unit with the configured embedder; the unit vectors are computed
  at ingest and stored with the chunk (``retrieval.unit_vectors``), so answering is a dot product;
  units without a stored vector (chunks ingested before, another embedder) are embedded here;
- lexical overlap: the IDF-weighted share of the question's terms (stemmed, diacritics folded,
  in the question's language) that the unit holds;
- a penalty for purpose/scope sentences ("Dit protocol beschrijft …") and document metadata;
- a small prior for the source's retrieval rank.

The best unit is quoted first; more follow from the same source when they score close to it; another
source is quoted only when one of its units also answers (the expected type, nearly as good). Numbered
steps are quoted whole when a procedure is asked. Each unit is followed by the ``[n]`` of its source,
and an answer from a source in the other language says so first, in the question's language. Nothing
in an answer is a word that is not in a source (apart from that language note).

``assess`` gives the answerability of the best unit (its answer-type match, raw similarity and lexical
coverage); below ``min_answerability`` (chosen on the dev split) the service abstains.
Deterministic: same sources, same question, same answer. Sentences that instruct the reader like a
prompt injection (``serving.staff.chat.prompts``) are never quoted.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from retrieval.analysis import Analyzer, AnalyzerConfig, Language, detect_language, fold, lexicon_split, tokenize
from retrieval.care_terms import care_terms_from_settings
from retrieval.stopwords import STOPWORDS
from retrieval.unit_vectors import stored_units, stored_vectors
from retrieval.units import Unit, quotable_units, split_sentences
from serving.staff.chat.prompts import looks_like_instruction
from serving.staff.generators.answer_types import (
    is_meta,
    is_purpose,
    is_range_key,
    key_interval,
    key_matches,
    key_tightness,
    numbers_for_key,
    question_quantities,
    question_types,
    unit_types,
)
from serving.staff.generators.unanswered import missing_names, missing_number, missing_reason, missing_unit
from vraagbaak_core.errors import GeneratorError
from vraagbaak_core.ports import Embedder
from vraagbaak_core.settings import ExtractiveSettings, Settings
from vraagbaak_core.types import ChatMessage, GenerationParams, Hit

CHARS_PER_TOKEN = 4
MIN_WORDS = 3  # shorter pieces are headings or labels, not answers
MAX_WORDS = 90
MAX_STEPS_WORDS = 160
# a longer procedure (8 to 12 steps) is quoted whole only when the situation it opens with is the unit
# closest to the question ("Vindt u een patiënt op de grond …:" for "Ik vind een patiënt op de grond",
# dev d002, 163 words), not a long list of measures that merely shares its topic (dev q005)
MAX_LONG_STEPS_WORDS = 240
NEAR_DUPLICATE = 0.6  # Jaccard of the terms of two sentences
_TERMINAL = re.compile(r"([.!?…]+)([\"'”’)]*)$")


def with_marker(sentence: str, n: int) -> str:
    """``sentence`` with ``[n]`` before its closing punctuation: "… 20:00 uur [1]."."""
    m = _TERMINAL.search(sentence)
    if m:
        return f"{sentence[: m.start()].rstrip()} [{n}]{sentence[m.start():]}"
    return f"{sentence} [{n}]"


# Answer types that are facts: a unit of another source holding one of these may join the answer.
STRONG_TYPES = frozenset({"duration", "frequency", "amount", "actor", "threshold", "clock"})
# Answer types a unit either holds exactly or does not answer at all ("hoe laat" → "om 18.00 uur"): such a
# unit weighs like a table row whose key holds the question's number (key_weight).
EXACT_TYPES = frozenset({"clock"})
# What an answer from a source in the other language opens with, in the question's language.
LANGUAGE_NOTE = {
    ("nl", "en"): "(Uit een Engelstalig protocol:)",
    ("en", "nl"): "(From a Dutch protocol:)",
}
__all__ = ["Candidate", "ExtractiveGenerator", "LANGUAGE_NOTE", "Selection", "split_sentences", "with_marker"]


@dataclass
class Candidate:
    n: int  # 1-based source number
    position: int  # unit index within its source
    text: str
    terms: frozenset[str]
    kind: str = "sentence"
    key: str = ""
    language: str = "nl"
    doc: str = ""  # the source's document id (two hits of one document are one source)
    score: float = 0.0
    dense: float = 0.0  # raw cosine to the question
    lexical: float = 0.0  # IDF-weighted share of the question's terms
    typed: bool = False  # holds an answer type the question expects
    strong: bool = False  # ... one that is a fact (a duration, amount, frequency, actor, threshold)
    key_match: bool = False


@dataclass
class Selection:
    """What the answerer would quote, and how sure it is that the sources answer at all."""

    chosen: list[Candidate] = field(default_factory=list)
    answerability: float = 0.0
    answerable: bool = False
    note: str = ""  # the language note the answer opens with, or ""
    ranked: list[Candidate] = field(default_factory=list)  # every candidate, best first
    outside: list[str] = field(default_factory=list)  # question words the sources name only as out of scope


class ExtractiveGenerator:
    """Implements ``vraagbaak_core.ports.Generator`` and ``SourceAnswerer`` without a language model."""

    def __init__(
        self, embedder: Embedder, config: ExtractiveSettings | None = None, analyzer: Analyzer | None = None,
        lexicons: dict[str, frozenset[str]] | None = None,
    ) -> None:
        self.embedder = embedder
        self.config = config or ExtractiveSettings()
        self.analyzer = analyzer or Analyzer()
        # general word lists per language: a question word in none of them and in no source is a
        # specific name (a drug, a device) the sources do not mention
        self.lexicons = lexicons or {}
        self._memo: OrderedDict[tuple[str, str, tuple[str, ...]], Selection] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Embedder) -> ExtractiveGenerator:
        cfg = settings.generator.extractive
        lexicons: dict[str, frozenset[str]] = {}
        for lang, path in (("nl", cfg.lexicon_nl), ("en", cfg.lexicon_en)):
            if path is not None and path.is_file():
                lexicons[lang] = _word_list(path)
        sparse = settings.retrieval.sparse  # the care terms give the question's translations
        analyzer = Analyzer(AnalyzerConfig(care_terms=care_terms_from_settings(sparse),
                                           translation_weight=sparse.translation_weight))
        return cls(embedder, cfg, analyzer=analyzer, lexicons=lexicons)

    def unknown_terms(self, question: str, lang: Language, cands: Sequence[Candidate],
                      titles: Sequence[str] = ()) -> list[str]:
        """Question words that none of ``cands`` in the question's language (nor ``titles``: the
        sources' titles and sections) holds and that are no general word of that language (a drug or
        device the sources never name: "oxycodon", "PICC"). ``_assess`` passes the units of the
        document that answers, so a name found only in another retrieved document counts too."""
        lexicon = self.lexicons.get(lang)
        same = [c for c in cands if c.language == lang]
        if lexicon is None or not same:
            return []
        text = " ".join([fold(c.text) for c in same] + [fold(t) for t in titles])
        out = []
        for t in tokenize(question):
            if len(t) < 4 or not t.isalpha() or t in STOPWORDS[lang] or t in lexicon:
                continue
            if lexicon_split(t, lexicon, 3):  # a compound of general words ("trombosespuitje")
                continue
            stem = t[: max(4, len(t) - 3)]
            if stem not in text:
                out.append(t)
        return out

    # -- the Generator port ---------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        return "extractive"

    @property
    def context_window(self) -> int:
        return 1 << 20  # no prompt is sent anywhere: every retrieved source is kept

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return sum(-(-len(m.content) // CHARS_PER_TOKEN) for m in messages)

    async def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> str:
        raise GeneratorError("the extractive answerer answers only from retrieved sources (retrieval is off)")

    async def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        raise GeneratorError("the extractive answerer answers only from retrieved sources (retrieval is off)")
        yield ""  # pragma: no cover - makes this an async generator

    async def ready(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None

    # -- SourceAnswerer -------------------------------------------------------------------------

    async def stream_from_sources(
        self, question: str, hits: Sequence[Hit], language: str, params: GenerationParams
    ) -> AsyncIterator[str]:
        """The answer, one unit (with its marker) per piece; the scoring runs off the event loop."""
        sel = await asyncio.to_thread(self.assess, question, hits, language)
        for i, piece in enumerate(self._pieces(sel)):
            yield ("" if i == 0 else self._joint(sel, i)) + piece

    def answer(self, question: str, hits: Sequence[Hit], language: str | None = None) -> str:
        """The whole answer at once (blocking); what :meth:`stream_from_sources` streams."""
        sel = self.assess(question, hits, language)
        return "".join(("" if i == 0 else self._joint(sel, i)) + p for i, p in enumerate(self._pieces(sel)))

    @staticmethod
    def _pieces(sel: Selection) -> list[str]:
        pieces = [with_marker(c.text, c.n) for c in sel.chosen]
        if sel.note and pieces:
            pieces[0] = f"{sel.note} {pieces[0]}"
        return pieces

    @staticmethod
    def _joint(sel: Selection, i: int) -> str:
        """What goes before the i-th piece: a line break around a list of steps and after a table row
        (a row is a line of its own, not a sentence), else a space."""
        if sel.chosen[i].kind == "steps" or sel.chosen[i - 1].kind in ("steps", "row"):
            return "\n"
        return " "

    def candidates(self, hits: Sequence[Hit], language: Language, min_words: int = MIN_WORDS) -> list[Candidate]:
        seen: set[str] = set()
        out: list[Candidate] = []
        for n, hit in enumerate(hits[: self.config.max_sources], start=1):
            units = stored_units(hit.chunk, self.embedder.name)
            if units is None or hit.merged_chunk_ids:
                # ingested without unit vectors (or with another embedder), or adjacent chunks merged into
                # one hit: segment the text now, so a list of steps that runs over a chunk border is one
                # unit (the units that ingest stored keep their vectors, looked up by text)
                units = quotable_units(hit.chunk.text, hit.chunk.language or language)
            labels = {" ".join(tokenize(x)) for x in (hit.chunk.title, hit.chunk.section or "")}
            for u in units:
                words = tokenize(u.text)
                limit = MAX_LONG_STEPS_WORDS if u.kind == "steps" else MAX_WORDS
                if not min_words <= len(words) <= limit:
                    continue
                if u.position == 0 and u.kind == "sentence" and u.text[:1].islower():
                    continue  # a chunk that starts inside a sentence (chunk overlap)
                key = " ".join(words)
                if key in seen or looks_like_instruction(u.text) or key in labels:
                    continue
                seen.add(key)
                out.append(self._candidate(n, u, language, hit.chunk.language, hit.chunk.doc_id))
        return out

    def _candidate(self, n: int, u: Unit, language: Language, source_language: str, doc: str) -> Candidate:
        words_, pieces = self.analyzer.terms(u.text, language)
        return Candidate(n, u.position, u.text, frozenset(words_) | frozenset(pieces), u.kind, u.key,
                         source_language or language, doc)

    def _similarities(self, question: str, hits: Sequence[Hit], cands: list[Candidate]) -> np.ndarray:
        """Cosine of the question to every candidate: stored unit vectors where the chunk has them
        (from this embedder), the rest embedded now."""
        q = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        q = q / (float(np.linalg.norm(q)) or 1.0)
        stored: dict[str, np.ndarray] = {}
        for hit in hits[: self.config.max_sources]:
            stored.update(stored_vectors(hit.chunk, self.embedder.name))
        sims = np.zeros(len(cands), dtype=np.float32)
        missing = []
        for i, c in enumerate(cands):
            v = stored.get(c.text)
            if v is None:
                missing.append(i)
            else:
                sims[i] = float(v @ q)
        if missing:
            s = np.asarray(self.embedder.embed_documents([cands[i].text for i in missing]), dtype=np.float32)
            s = s / (np.linalg.norm(s, axis=1, keepdims=True) + 1e-9)
            sims[missing] = s @ q
        return sims

    def answerable(self, question: str, hits: Sequence[Hit], language: str) -> bool:
        """The ``AnswerabilityJudge`` port: whether the best unit answers well enough."""
        return self.assess(question, hits, language).answerable

    def select(self, question: str, hits: Sequence[Hit], language: str | None = None) -> list[Candidate]:
        """The chosen units, best first (see :meth:`assess`)."""
        return self.assess(question, hits, language).chosen

    def assess(self, question: str, hits: Sequence[Hit], language: str | None = None) -> Selection:
        """The units to quote and the answerability of the best one; memoised for the last few
        questions, so the service's check and the answer itself score once."""
        lang: Language = language if language in ("nl", "en") else detect_language(question)  # type: ignore[assignment]
        key = (question, lang, tuple(h.chunk.chunk_id + str(len(h.chunk.text)) for h in hits))
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        sel = self._assess(question, hits, lang)
        self._memo[key] = sel
        while len(self._memo) > 32:
            self._memo.popitem(last=False)
        return sel

    def _assess(self, question: str, hits: Sequence[Hit], lang: Language) -> Selection:
        cfg = self.config
        cands = self.candidates(hits, lang) or self.candidates(hits, lang, min_words=1)
        if not cands:
            return Selection()
        cands = self._long_steps_led_by_the_best(question, hits, cands)
        all_cands = cands
        qtypes = question_types(question)
        q_words, q_pieces = self.analyzer.terms(question, lang)
        q_terms = set(q_words) | set(q_pieces)
        equivalents = self.analyzer.equivalents(question, lang)
        held = [self._held(c, lang, q_terms, equivalents) for c in cands]
        if "instruction" in qtypes:
            # a procedure comes from one protocol: every sentence of a protocol reads like an instruction,
            # so the answer type does not tell the sources apart; the document that holds most of the
            # question's words does (retrieval's first on a tie)
            doc = _best_document(cands, held, hits[0].chunk.doc_id, set(q_words))
            keep = [i for i, c in enumerate(cands) if c.doc == doc]
            if keep:
                cands, held = [cands[i] for i in keep], [held[i] for i in keep]
        idf = _idf(q_terms, held)
        q_mass = sum(idf.values()) or 1.0
        quantities = question_quantities(question)
        sims = self._similarities(question, hits, cands) if cfg.dense_weight > 0.0 else np.zeros(len(cands))
        span = float(sims.max() - sims.min())
        dense = (sims - sims.min()) / span if span > 1e-6 else np.ones_like(sims)
        # The IDF-weighted share of the question's terms a unit holds, itself or as an equivalent: a
        # care-term synonym (a lay word's professional term), a Dutch verb's other form, and in a unit
        # in the other language a care-term translation (retrieval.analysis.Analyzer.equivalents).
        # Across languages that may still be little: such a unit gets at least the overlap its
        # similarity suggests (its scaled cosine times the best overlap found), and when no unit
        # shares much of the question's words (lay words), the (multilingual) embedder weighs more.
        lexical = [sum(idf[t] for t in h) / q_mass for h in held]
        top_lexical = max(lexical)
        for i, c in enumerate(cands):
            if c.language in ("nl", "en") and c.language != lang:
                lexical[i] = max(lexical[i], float(dense[i]) * top_lexical)
        w = cfg.dense_weight if top_lexical >= cfg.low_overlap else max(cfg.dense_weight, cfg.cross_dense_weight)
        rows = _tightest_rows(cands, quantities) | _cell_rows(cands, quantities)
        for i, c in enumerate(cands):
            types = unit_types(c.text, c.kind)
            c.dense, c.lexical = float(sims[i]), lexical[i]
            c.typed = bool(qtypes & types)
            c.strong = bool(qtypes & types & STRONG_TYPES)
            c.key_match = i in rows
            score = (1.0 - w) * c.lexical + w * float(dense[i])
            score += cfg.type_weight * c.typed + cfg.key_weight * (c.key_match or bool(qtypes & types & EXACT_TYPES))
            score += cfg.source_prior / c.n
            if is_purpose(c.text):
                score -= cfg.purpose_penalty
            elif is_meta(c.text):
                score -= cfg.meta_penalty
            if c.kind == "steps":
                score += cfg.steps_bonus if "instruction" in qtypes else -cfg.steps_bonus
            c.score = score
        if "instruction" in qtypes:
            _steps_by_their_sentences(cands, cfg.steps_bonus)
        ranked = sorted(cands, key=lambda c: (-c.score, c.n, c.position))  # deterministic ties
        if "instruction" in qtypes:
            ranked = _closest_steps_first(ranked, cfg.closest_steps_ratio)
        best = ranked[0]
        chosen = [best]
        used = len(best.text)
        for c in ranked[1:]:
            if len(chosen) >= cfg.max_sentences or c.score < cfg.min_relative_score * best.score:
                break
            if c.doc != best.doc and not (c.strong and c.score >= cfg.other_source_ratio * best.score):
                continue  # another source only when it adds an answer too
            if c.doc != best.doc and c.kind == "steps" and "instruction" not in qtypes:
                continue  # and for a fact asked, a sentence or a row of it: not a whole list of its steps
            if c.doc != best.doc and (self._names_missing(question, lang, c.doc, all_cands, hits)
                                      or self._topic_missing(question, lang, best.doc, c.doc, all_cands, hits)):
                continue  # and names what the question names: no enoxaparine row for a paracetamol question
            if used + len(c.text) > cfg.max_chars or best.kind == "steps" and c.doc == best.doc:
                continue
            if any(_overlaps(c, o) for o in chosen):
                continue
            chosen.append(c)
            used += len(c.text)
        # the answering unit first, then the others of its source in reading order, then other sources
        rest = sorted(chosen[1:], key=lambda c: (c.doc != best.doc, c.n, c.position))
        chosen = [best, *rest]
        answerability = (cfg.answer_dense_weight * best.dense + cfg.answer_type_weight * (best.typed or not qtypes)
                         + cfg.answer_lexical_weight * max(c.lexical for c in cands) + 0.1 * best.key_match)
        # the question's names (a drug, a device) must be in the document that answers, not only in
        # another retrieved one: "enoxaparine voor een kind" is not answered by the paracetamol table
        own, titles = self._document(best.doc, all_cands, hits)
        if best.language == lang and self.unknown_terms(question, lang, own, titles):
            answerability = 0.0
        # a question word the sources hold only where they put it out of scope, or that the answering
        # document itself puts out of scope ("de dosering bij kinderen valt buiten dit protocol", asked
        # for a child's dose while another document's table is about children)
        # (another document's scope sentence counts when the answer is in the question's language: the
        # words of a scope sentence are compared as written, so an answer from a source in the other
        # language names them otherwise: "kind" is "children" there)
        same_language = best.language == lang or best.language not in ("nl", "en")
        outside = (out_of_scope_terms(question, lang, all_cands) if same_language else []) \
            or out_of_scope_terms(question, lang, own) or population_mismatch(question, [*titles, best.text])
        # a medicine or abbreviation the answering document does not name; a unit ("hoeveel weken") or a
        # reason ("waarom") asked that the quoted texts do not state (serving.staff.generators.unanswered)
        quoted = [c.text for c in chosen]
        own_held = frozenset().union(*(self._held(c, lang, q_terms, equivalents) for c in own))
        known = [w for w in q_words if w in own_held]
        if missing_names(question, " ".join([c.text for c in own] + titles), known) \
                or missing_unit(question, quoted) or missing_reason(question, [best.text]) \
                or missing_number(question, quoted):
            answerability = 0.0
        # a preference asked ("welk slaapmiddel is het veiligst") that the answering unit does not state
        if "preference" in qtypes and "preference" not in unit_types(best.text, best.kind):
            answerability = 0.0
        # an amount from a table keyed by ranges of a value the question does not give ("hoeveel eenheden
        # insuline" and the correction table by glucose): which row holds is not known
        if best.kind == "row" and is_range_key(best.key) and not quantities and "amount" in qtypes \
                and "threshold" not in qtypes and _asked_amount_in(question, best.text) \
                and not _key_named(question, best.key):
            answerability = 0.0
        if outside:
            answerability = 0.0
        note = ""
        src_lang = best.language if best.language in ("nl", "en") else lang
        if src_lang != lang:
            note = LANGUAGE_NOTE.get((lang, src_lang), "")
        return Selection(chosen, answerability, answerability >= cfg.min_answerability, note, ranked, outside)


    def _long_steps_led_by_the_best(self, question: str, hits: Sequence[Hit], cands: list[Candidate],
                                    ) -> list[Candidate]:
        """``cands`` without the lists of steps over ``MAX_STEPS_WORDS`` whose opening line (the
        situation they are for) is not the unit most similar to the question."""
        long = [c for c in cands if c.kind == "steps" and len(tokenize(c.text)) > MAX_STEPS_WORDS]
        if not long or self.config.dense_weight <= 0.0:
            return [c for c in cands if c not in long]
        sims = self._similarities(question, hits, cands)
        top = float(sims.max())
        by_text = {c.text: float(x) for c, x in zip(cands, sims, strict=True)}
        return [c for c in cands if c not in long or by_text.get(c.text.split("\n", 1)[0], -1.0) >= top - 1e-6]

    def _names_missing(self, question: str, lang: Language, doc: str, cands: Sequence[Candidate],
                       hits: Sequence[Hit]) -> bool:
        """Whether document ``doc`` lacks a name the question holds (``unknown_terms``)."""
        return bool(self.unknown_terms(question, lang, *self._document(doc, cands, hits)))

    def _document(self, doc: str, cands: Sequence[Candidate], hits: Sequence[Hit]) -> tuple[list[Candidate], list[str]]:
        """Document ``doc``'s candidate units, and the titles and sections of its hits."""
        own = [c for c in cands if c.doc == doc]
        titles = [t for h in hits[: self.config.max_sources] if h.chunk.doc_id == doc
                  for t in (h.chunk.title, h.chunk.section or "")]
        return own, titles

    @staticmethod
    def _topic_missing(question: str, lang: Language, best: str, doc: str, cands: Sequence[Candidate],
                       hits: Sequence[Hit]) -> bool:
        """Whether document ``doc`` never names a question word that is the answering document's topic
        (in its title): "Hoeveel paracetamol …" answered from "Paracetamol bij kinderen" takes no row
        of the enoxaparine protocol, however well its key fits the weight asked."""
        best_title = " ".join(fold(h.chunk.title) for h in hits if h.chunk.doc_id == best)
        topic = [w for w in _content_words(question, lang) if len(w) >= 4 and _stem_in(w, best_title)]
        if not topic:
            return False
        text = " ".join([fold(c.text) for c in cands if c.doc == doc]
                        + [fold(h.chunk.title) for h in hits if h.chunk.doc_id == doc])
        return any(not _stem_in(w, text) for w in topic)

    def _held(self, c: Candidate, lang: Language, q_terms: set[str],
              equivalents: dict[str, dict[Language, frozenset[str]]]) -> frozenset[str]:
        """The question's terms that unit ``c`` holds: the term itself or one of its equivalents in the
        unit's language (a unit in the other language analysed in its own language, issue 17 item 4)."""
        own = c.terms
        unit_lang: Language = c.language if c.language in ("nl", "en") else lang  # type: ignore[assignment]
        if unit_lang != lang:
            words, pieces = self.analyzer.terms(c.text, unit_lang)
            own = c.terms | frozenset(words) | frozenset(pieces)
        return frozenset(t for t in q_terms if t in own or any(
            all(part in own for part in eq.split()) for eq in equivalents.get(t, {}).get(unit_lang, ())))


@lru_cache(maxsize=4)
def _word_list(path: Path) -> frozenset[str]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        return frozenset(fold(w.strip()) for w in fh if w.strip())


def _idf(q_terms: set[str], held: Sequence[frozenset[str]]) -> dict[str, float]:
    """Each question term's IDF over the candidate units (a term few units hold weighs more)."""
    df: dict[str, int] = {}
    for h in held:
        for t in h:
            df[t] = df.get(t, 0) + 1
    return {t: math.log(1.0 + (len(held) + 1) / (df.get(t, 0) + 0.5)) for t in q_terms}


def _best_document(cands: Sequence[Candidate], held: Sequence[frozenset[str]], first: str, words: set[str]) -> str:
    """The document whose units together hold the most of the question's words (whole words: a
    compound's pieces are too many and too loose to count here); ``first`` (retrieval's first
    document) unless another holds strictly more."""
    per_doc: dict[str, set[str]] = {}
    for c, h in zip(cands, held, strict=True):
        per_doc.setdefault(c.doc, set()).update(h & words)
    best = first if first in per_doc else cands[0].doc
    for doc, terms in per_doc.items():  # in retrieval order
        if len(terms) > len(per_doc[best]):
            best = doc
    return best


def _tightest_rows(cands: Sequence[Candidate], quantities: list[tuple[float, str]]) -> set[int]:
    """The table rows whose key holds a number of the question (in the key's unit: ``numbers_for_key``),
    and of a document's rows that hold that number the closest bound: 900 ml is the row "meer dan
    800 ml", not also "meer dan 400 ml"."""
    best: dict[tuple[str, float], tuple[float, float, float]] = {}
    holding: list[tuple[int, str, float, tuple[float, float, float]]] = []
    for i, c in enumerate(cands):
        if c.kind != "row":
            continue
        for x in numbers_for_key(c.key, quantities):
            if key_matches(c.key, [x]):
                t = key_tightness(c.key, [x])
                holding.append((i, c.doc, x, t))
                best[(c.doc, x)] = min(best.get((c.doc, x), t), t)
    return {i for i, doc, x, t in holding if t <= best[(doc, x)]}


def _cell_rows(cands: Sequence[Candidate], quantities: list[tuple[float, str]]) -> set[int]:
    """Rows of a table laid out the other way round: the key names a measure ("Ademfrequentie (per
    minuut)") and the cells hold its ranges per column ("1 punt: 9–11 of 21–24"); a row with a cell
    that holds a number of the question is that number's row (a score table such as the EWS)."""
    numbers = [x for x, _ in quantities]
    out: set[int] = set()
    if not numbers:
        return out
    for i, c in enumerate(cands):
        if c.kind != "row" or not c.key or key_interval(c.key) is not None or " — " not in c.text:
            continue
        for cell in c.text.split(" — ", 1)[1].split("; "):
            _, _, value = cell.rpartition(": ")
            pieces = [p for p in re.split(r",?\s+(?:of|or)\s+|,\s+", value) if p.strip()]
            if any(key_matches(p, numbers) for p in pieces):
                out.add(i)
                break
    return out


def _closest_steps_first(ranked: list[Candidate], ratio: float) -> list[Candidate]:
    """A procedure asked: the list of steps closest to the question in meaning (the highest cosine of
    all units) leads when it scores within ``ratio`` of the best, over a sentence that only names the
    topic ("Volwassen patiënten die tromboseprofylaxe krijgen" for "Hoe geef ik een trombosespuitje?",
    its care-term synonym counting as the question's word)."""
    if not ranked:
        return ranked
    closest = max(ranked, key=lambda c: c.dense)
    if closest.kind != "steps" or closest is ranked[0] or closest.score < ratio * ranked[0].score:
        return ranked
    return [closest, *(c for c in ranked if c is not closest)]


def _steps_by_their_sentences(cands: Sequence[Candidate], bonus: float) -> None:
    """A list of steps scores as its best sentence (plus ``bonus``) when a procedure is asked: the steps
    that hold the answering sentence are quoted whole, not a list that only looks like a procedure."""
    for s in cands:
        if s.kind != "steps":
            continue
        inner = [c.score for c in cands if c.kind != "steps" and c.doc == s.doc and c.text in s.text]
        if inner:
            s.score = max(inner) + bonus


# a sentence that puts a subject outside the document: "PICC-lijnen … vallen onder protocol VP-042"
_OUT_OF_SCOPE = re.compile(
    r"\b(?:vall?(?:en|t) (?:buiten|onder (?:een ander |het )?protocol)|apart protocol|ander protocol"
    r"|hier niet behandeld|niet in dit protocol|buiten dit protocol|covered by (?:other|another|a separate)"
    r"|not covered|outside (?:the scope|this protocol)|separate protocol|other protocols?"
    r"|met uitzondering van|uitgezonderd|geldt (?:een )?eigen (?:werkinstructie|protocol|richtlijn)"
    r"|with the exception of|except(?:ing)?|excluded)\b")


# who a protocol is for, as its title says it ("… bij volwassenen", "… bij kinderen")
_POPULATIONS = {
    "kind": re.compile(r"\b(?:kind|kinderen|kinder\w*|child|children|paediatric|pediatric|baby|babies|zuigeling\w*"
                       r"|neonat\w*|pasgeboren\w*|newborns?|infants?)\b"),
    "volwassene": re.compile(r"\b(?:volwassen\w*|adults?)\b"),
}


def population_mismatch(question: str, titles: Sequence[str]) -> list[str]:
    """The question's population word when the answering document's title is for the other one and
    not for this one: a child's dose asked, "Tromboseprofylaxe … bij volwassenen" answers (the
    documents do not say, and an adult's dose for a child is a wrong dose)."""
    q = fold(question)
    title = " ".join(fold(t) for t in titles)
    asked = [p for p, rx in _POPULATIONS.items() if rx.search(q)]
    if len(asked) != 1:
        return []
    other = next(p for p in _POPULATIONS if p != asked[0])
    if _POPULATIONS[other].search(title) and not _POPULATIONS[asked[0]].search(title):
        return [m.group(0) for m in _POPULATIONS[asked[0]].finditer(q)][:1]
    return []


_HOW_MUCH = re.compile(r"\b(?:hoeveel|how (?:much|many))\s+(\w+)")


def _asked_amount_in(question: str, text: str) -> bool:
    """Whether ``text`` holds what "hoeveel …" asks for ("hoeveel eenheden": a row in units; "hoeveel
    mensen" is not answered by a row of insulin units)."""
    m = _HOW_MUCH.search(fold(question))
    if not m:
        return False
    word = m.group(1)
    return re.search(rf"\b{re.escape(word[: max(4, len(word) - 2)])}", fold(text)) is not None


def _key_named(question: str, key: str) -> bool:
    """Whether the question names a word of a row's key: "and for children?" picks the rows "children 6 to
    12 years" by their word, though it gives no age (an answer, not a row of an unknown value)."""
    q = fold(question)
    return any(re.search(rf"\b{re.escape(w[: max(4, len(w) - 2)])}", q)
               for w in re.findall(r"[^\W\d_]{4,}", fold(key)))


def _content_words(question: str, lang: Language) -> list[str]:
    return [t for t in dict.fromkeys(tokenize(question))
            if len(t) >= 3 and t.isalpha() and t not in STOPWORDS[lang]]


def _stem_in(word: str, text: str) -> bool:
    return word[: max(3, len(word) - 3)] in text


def out_of_scope_terms(question: str, lang: Language, cands: Sequence[Candidate]) -> list[str]:
    """Question words that the sources hold only in sentences that put them out of scope ("Centrale
    lijnen, PICC-lijnen en poortkatheters vallen onder protocol VP-042"): the documents do not say."""
    folded = [(fold(c.text), bool(_OUT_OF_SCOPE.search(fold(c.text)))) for c in cands]
    out = []
    for w in _content_words(question, lang):
        where = [scope for text, scope in folded if re.search(rf"\b{re.escape(w)}", text)]
        if where and all(where):
            out.append(w)
    return out


def _overlaps(a: Candidate, b: Candidate) -> bool:
    """Near-duplicates, or one unit holding the other (a sentence of a list of steps)."""
    if a.text in b.text or b.text in a.text:
        return True
    return _jaccard(a.terms, b.terms) >= NEAR_DUPLICATE


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
