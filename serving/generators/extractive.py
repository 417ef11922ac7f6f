"""Extractive answerer: the few sentences of the retrieved sources that best answer the question.

No language model. For each sentence of the top sources (split with pySBD, Dutch or English,
with a Dutch abbreviation list on top) a score combines

- dense similarity: the question (``embed_query``) against the sentence (``embed_documents``)
  with the configured embedder, through the ``Embedder`` port, min-max scaled over the candidates;
- lexical overlap: the IDF-weighted share of the question's terms (Dutch or English stemming,
  stopwords and diacritic folding of ``retrieval.analysis``, in the question's language) that
  the sentence holds; IDF is computed over the candidate sentences.

The best sentence is always taken; a few more follow when they score close to it and are not
near-duplicates. The answer is those sentences verbatim (markup such as ``**`` or list bullets
stripped), each followed by the ``[n]`` of its source: it never holds a word that is not in a
source. Deterministic: same sources, same question, same answer. Sentences that instruct the
reader like a prompt injection (``serving.chat.prompts``) are never quoted.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from retrieval.analysis import Analyzer, Language, detect_language, tokenize
from serving.chat.prompts import looks_like_instruction
from vraagbaak_core.errors import GeneratorError
from vraagbaak_core.ports import Embedder
from vraagbaak_core.settings import ExtractiveSettings, Settings
from vraagbaak_core.types import ChatMessage, GenerationParams, Hit

CHARS_PER_TOKEN = 4
MIN_WORDS = 4  # shorter pieces are headings or labels, not answers
MAX_WORDS = 90
HEADING_WORDS = 8
NEAR_DUPLICATE = 0.6  # Jaccard of the terms of two sentences

# pySBD's Dutch rules split after these; a segment that ends in one continues in the next.
_ABBREVIATIONS = frozenset(
    "a.u.b afd art bijv bv ca d.w.z dhr dr drs e.d e.g enz etc evt excl fig i.e i.o.m i.p.v i.v.m "
    "incl ing ir jl m.b.t m.b.v m.u.v max min mevr mr mw n.a.v nl nr o.a o.b.v p pag prof resp st "
    "t.a.v t.b.v t.z.t tel vgl vs z.o.z z.s.m zgn".split()
)
_ABBREV_END = re.compile(r"(?:^|[\s(])((?:[A-Za-z]{1,5}\.)+)\s*$")
_BLOCK_START = re.compile(r"^\s*(?:#{1,6}\s|[-*•+]\s|\d{1,3}[.)]\s|\|)")
_SECTION_NUMBER = re.compile(r"^\d{1,3}(?:\.\d{1,3})*[.)]?\s+")
_LEADING_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*•+]\s+|\d{1,3}[.)]\s+|>\s*)+")
_EMPHASIS = re.compile(r"(\*\*|__|`)")
_SINGLE_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_TABLE_RULE = re.compile(r"^[\s|:\-+]+$")
_TERMINAL = re.compile(r"([.!?…]+)([\"'”’)]*)$")


@lru_cache(maxsize=2)
def _segmenter(language: str) -> object:
    import pysbd

    return pysbd.Segmenter(language=language, clean=False)


def _is_heading(line: str, following: str | None, previous: str | None = None) -> bool:
    """A short line without closing punctuation before a new capitalised line (or the end): a heading
    as PDF and plain-text extraction leave them."""
    stripped = line.strip()
    if stripped.startswith("#"):
        return True
    nxt = (following or "").strip()
    numbered = _SECTION_NUMBER.match(stripped)
    if numbered:  # "3. Toegang tot dossiers" before its paragraph; not an item of a numbered list
        if _BLOCK_START.match(nxt) or _BLOCK_START.match((previous or "").strip()):
            return False
        stripped = stripped[numbered.end() :]
    if len(stripped.split()) > HEADING_WORDS or stripped[-1:] in ".!?:;,…" or not stripped[:1].isupper():
        return False
    return not nxt or nxt[:1].isupper() or nxt[:1].isdigit()


def _blocks(text: str) -> list[str]:
    """Paragraphs, list items and table rows of a chunk, wrapped lines joined; headings left out."""
    blocks: list[str] = []
    current: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            if current:
                blocks.append(" ".join(current))
                current = []
            continue
        following = next((x for x in lines[i + 1 :] if x.strip()), None)
        previous = next((x for x in reversed(lines[:i]) if x.strip()), None)
        if _is_heading(line, following, previous):
            if current:
                blocks.append(" ".join(current))
                current = []
            continue
        if _BLOCK_START.match(line) and current:
            blocks.append(" ".join(current))
            current = []
        if line.lstrip().startswith("|"):
            if not _TABLE_RULE.match(line):
                cells = [c.strip() for c in line.strip().strip("|").split("|") if c.strip()]
                blocks.append("; ".join(cells))
            continue
        current.append(line.strip())
    if current:
        blocks.append(" ".join(current))
    return blocks


def _clean(sentence: str) -> str:
    s = _LEADING_MARKUP.sub("", sentence)
    s = _SINGLE_STAR.sub(r"\1", _EMPHASIS.sub("", s))
    return " ".join(s.split())


def split_sentences(text: str, language: Language) -> list[str]:
    """Sentences of ``text`` in reading order, markup stripped; Dutch abbreviations do not end one."""
    segmenter = _segmenter(language)
    out: list[str] = []
    for block in _blocks(text):
        pending = ""
        for seg in segmenter.segment(block):  # type: ignore[attr-defined]
            pending = f"{pending} {seg}" if pending else str(seg)
            m = _ABBREV_END.search(pending.rstrip())
            if m and m.group(1).rstrip(".").lower() in _ABBREVIATIONS:
                continue
            cleaned = _clean(pending)
            if cleaned:
                out.append(cleaned)
            pending = ""
        if pending.strip():
            out.append(_clean(pending))
    return out


def with_marker(sentence: str, n: int) -> str:
    """``sentence`` with ``[n]`` before its closing punctuation: "… 20:00 uur [1]."."""
    m = _TERMINAL.search(sentence)
    if m:
        return f"{sentence[: m.start()].rstrip()} [{n}]{sentence[m.start():]}"
    return f"{sentence} [{n}]"


@dataclass
class Candidate:
    n: int  # 1-based source number
    position: int  # sentence index within its source
    text: str
    terms: frozenset[str]
    score: float = 0.0


class ExtractiveGenerator:
    """Implements ``vraagbaak_core.ports.Generator`` and ``SourceAnswerer`` without a language model."""

    def __init__(
        self, embedder: Embedder, config: ExtractiveSettings | None = None, analyzer: Analyzer | None = None
    ) -> None:
        self.embedder = embedder
        self.config = config or ExtractiveSettings()
        self.analyzer = analyzer or Analyzer()

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Embedder) -> ExtractiveGenerator:
        return cls(embedder, settings.generator.extractive)

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
        """The answer, one sentence (with its marker) per piece; the embedding runs off the event loop."""
        chosen = await asyncio.to_thread(self.select, question, hits, language)
        for i, c in enumerate(chosen):
            yield ("" if i == 0 else " ") + with_marker(c.text, c.n)

    def answer(self, question: str, hits: Sequence[Hit], language: str | None = None) -> str:
        """The whole answer at once (blocking); what :meth:`stream_from_sources` streams."""
        return " ".join(with_marker(c.text, c.n) for c in self.select(question, hits, language))

    def candidates(self, hits: Sequence[Hit], language: Language, min_words: int = MIN_WORDS) -> list[Candidate]:
        seen: set[str] = set()
        out: list[Candidate] = []
        for n, hit in enumerate(hits[: self.config.max_sources], start=1):
            sentences = split_sentences(hit.chunk.text, language)
            labels = {" ".join(tokenize(x)) for x in (hit.chunk.title, hit.chunk.section or "")}
            for pos, s in enumerate(sentences):
                words = tokenize(s)
                if not min_words <= len(words) <= MAX_WORDS:
                    continue
                if pos == 0 and s[:1].islower():
                    continue  # a chunk that starts inside a sentence (chunk overlap)
                key = " ".join(words)
                if key in seen or looks_like_instruction(s) or key in labels:
                    continue
                seen.add(key)
                words_, pieces = self.analyzer.terms(s, language)
                out.append(Candidate(n, pos, s, frozenset(words_) | frozenset(pieces)))
        return out

    def select(self, question: str, hits: Sequence[Hit], language: str | None = None) -> list[Candidate]:
        """The chosen sentences, ordered: sources by their best sentence, reading order within one."""
        lang: Language = language if language in ("nl", "en") else detect_language(question)  # type: ignore[assignment]
        cands = self.candidates(hits, lang) or self.candidates(hits, lang, min_words=1)
        if not cands:
            return []
        q_words, q_pieces = self.analyzer.terms(question, lang)
        q_terms = set(q_words) | set(q_pieces)
        df: dict[str, int] = {}
        for c in cands:
            for t in c.terms & q_terms:
                df[t] = df.get(t, 0) + 1
        idf = {t: math.log(1.0 + (len(cands) + 1) / (df.get(t, 0) + 0.5)) for t in q_terms}
        q_mass = sum(idf.values()) or 1.0
        lexical = np.array([sum(idf[t] for t in c.terms & q_terms) / q_mass for c in cands])
        w = self.config.dense_weight
        score = (1.0 - w) * lexical
        if w > 0.0:
            q = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
            s = np.asarray(self.embedder.embed_documents([c.text for c in cands]), dtype=np.float32)
            sims = (s @ q) / (np.linalg.norm(s, axis=1) * float(np.linalg.norm(q)) + 1e-9)
            span = float(sims.max() - sims.min())
            dense = (sims - sims.min()) / span if span > 1e-6 else np.ones_like(sims)
            score = score + w * dense
        for c, v in zip(cands, score.tolist(), strict=True):
            c.score = float(v)
        # best first; ties by source rank, then position: deterministic
        ranked = sorted(cands, key=lambda c: (-c.score, c.n, c.position))
        best = ranked[0]
        chosen = [best]
        used = len(best.text)
        for c in ranked[1:]:
            if len(chosen) >= self.config.max_sentences:
                break
            if c.score < self.config.min_relative_score * best.score:
                break
            if used + len(c.text) > self.config.max_chars:
                continue
            if any(_jaccard(c.terms, o.terms) >= NEAR_DUPLICATE for o in chosen):
                continue
            chosen.append(c)
            used += len(c.text)
        source_rank: dict[int, int] = {}
        for c in chosen:
            source_rank.setdefault(c.n, len(source_rank))
        return sorted(chosen, key=lambda c: (source_rank[c.n], c.position))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
