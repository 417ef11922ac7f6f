"""Grounded answers: retrieve for the caller, compose a numbered-source prompt, generate, verify citations."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, Protocol

from retrieval.analysis import detect_language, guess_language
from serving.staff.answer_check.check import check_answer, drop_unsupported
from serving.staff.chat.citations import MarkerFilter, attribute, build_citations, clean_markers
from serving.staff.chat.followup import rewrite
from serving.staff.chat.prompts import PromptBook, PromptTemplate
from vraagbaak_core.errors import GeneratorUnavailable, PromptTooLong
from vraagbaak_core.ports import AnswerabilityJudge, Generator, SourceAnswerer
from vraagbaak_core.types import (
    Answer,
    ChatMessage,
    Citation,
    Claim,
    GenerationParams,
    Hit,
    Identity,
    SearchFilter,
    Suggestion,
)

# Words that point back at the previous question wherever they stand ("de bijwerkingen daarvan")...
_ANAPHORA = re.compile(
    r"\b(daar(?:van|over|bij|mee|voor|na|in|op|aan|door|om)?|hier(?:van|over|bij|mee|voor|na|in|op|aan)|"
    r"er(?:van|over|bij|mee|voor|na|in|op|aan|door|om)|dezelfde|hetzelfde|"
    r"thereof|therefore|the same)\b"
    r"|^(?:en|maar|ook|and|but|also|what about)\b",  # "En bij kinderen?", "And for children?"
    re.IGNORECASE,
)
# ... and pronouns that do so only standing alone at the end of a clause ("hoe lang duurt dat?"):
# "het", "die", "dat", "deze" and "ze" are mostly articles, relatives and conjunctions in Dutch.
_ANAPHORA_AT_END = re.compile(
    r"\b(het|dit|dat|die|deze|ze|zij|hij|hem|it|this|that|these|those|they|them|he|she|him|there)\s*(?:[?.!,;]|$)",
    re.IGNORECASE,
)
MAX_HISTORY_MESSAGES = 4
MAX_FOLLOW_UP_CHAIN = 4  # user turns a follow-up's standalone question may build on
# First line of an answer the extractive answerer gave because the language model was unavailable.
FALLBACK_NOTICE = {
    "nl": "Het taalmodel is nu niet beschikbaar. Dit antwoord bestaat uit letterlijke zinnen uit de bronnen.",
    "en": "The language model is unavailable right now. This answer consists of sentences quoted from the sources.",
}
# First line of an answer that replaced a generated one whose sentences its sources did not support
# (answer_check: fallback).
CHECK_NOTICE = {
    "nl": "Het antwoord van het taalmodel week af van de bronnen. Dit antwoord bestaat uit letterlijke zinnen "
          "uit de bronnen.",
    "en": "The language model's answer differed from its sources. This answer consists of sentences quoted "
          "from the sources.",
}
CHECK_FALLBACK = "answer_check"  # Answer.fallback when the answer check replaced the answer
AnswerCheckMode = Literal["flag", "drop", "fallback"]


class RetrieverPort(Protocol):
    def search(
        self, query: str, identity: Identity, request_filter: SearchFilter | None = None,
        top_k: int | None = None,
    ) -> list[Hit]: ...


def standalone_query(messages: Sequence[ChatMessage]) -> str:
    """The search query for the last user turn; a short or anaphoric follow-up borrows the previous question.

    Deterministic on purpose: a tiny model rewrites worse than this, and the same
    conversation always searches the same way.
    """
    users = [m.content.strip() for m in messages if m.role == "user" and m.content.strip()]
    if not users:
        return ""
    # each follow-up builds on the standalone form of the question before it (serving.staff.chat.followup),
    # so the third turn of "dosis voor volwassenen?" / "en bij kinderen?" / "hoe vaak dan?" keeps the topic
    users = users[-MAX_FOLLOW_UP_CHAIN:]
    current = users[0]
    for turn in users[1:]:
        if is_follow_up(turn):
            current = rewrite(current, turn) or f"{current} {turn}"
        else:
            current = turn
    return current


def is_follow_up(text: str) -> bool:
    """Whether a user turn leans on the question before it: short, or pointing back."""
    return len(text.split()) <= 6 or bool(_ANAPHORA.search(text) or _ANAPHORA_AT_END.search(text))


@dataclass
class Prepared:
    """Everything decided before the model is called."""

    language: str
    query: str
    template: PromptTemplate
    hits: list[Hit]
    prompt: list[ChatMessage] = field(default_factory=list)
    retrieval_ms: float = 0.0
    # the model server could not even count the prompt: answered by the fallback, or this is raised
    unavailable: GeneratorUnavailable | None = None
    # the sources found do not answer the question: the abstention offers these documents
    maybe_relevant: list[Suggestion] = field(default_factory=list)

    @property
    def abstain(self) -> bool:
        return not self.hits


@dataclass
class StreamDelta:
    text: str


@dataclass
class StreamEnd:
    answer: Answer


def overdue_notice(citations: Sequence[Citation], template: PromptTemplate, today: date | None = None) -> str:
    """The warning for cited documents past their review date, in the question's language."""
    today = today or date.today()
    seen: dict[str, tuple[str, str]] = {}
    for c in citations:
        review = c.control.review_date
        if review and date.fromisoformat(review) < today and c.doc_id not in seen:
            seen[c.doc_id] = (c.title, review)
    return template.overdue_notice(list(seen.values())) if seen else ""


def suggestions(hits: Sequence[Hit], limit: int) -> list[Suggestion]:
    """The first ``limit`` distinct documents among ``hits`` (best first)."""
    out: dict[str, Suggestion] = {}
    for h in hits:
        c = h.chunk
        if c.doc_id not in out and len(out) < limit:
            out[c.doc_id] = Suggestion(c.doc_id, c.title, c.source, c.page)
    return list(out.values())


class ChatService:
    def __init__(
        self, retriever: RetrieverPort | None, generator: Generator, prompts: PromptBook, top_k: int,
        fallback: Generator | None = None, judge: AnswerabilityJudge | None = None, maybe_relevant: int = 3,
        answer_check: AnswerCheckMode = "flag", extractive: Generator | None = None,
    ) -> None:
        self.retriever = retriever
        self.generator = generator
        self.prompts = prompts
        self.top_k = top_k
        self.fallback = fallback  # answers when the generator is unavailable (generator.fallback)
        self.judge = judge  # decides whether the sources answer at all (else abstain, offering them)
        self.maybe_relevant = maybe_relevant
        self.answer_check = answer_check
        # the extractive answerer that replaces a generated answer the check rejects (answer_check: fallback)
        self.extractive = extractive or fallback

    def prepare(
        self,
        messages: Sequence[ChatMessage],
        identity: Identity,
        params: GenerationParams,
        request_filter: SearchFilter | None = None,
        use_retrieval: bool = True,
        top_k: int | None = None,
    ) -> Prepared:
        query = standalone_query(messages)
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        # a follow-up without language evidence ("ok, en bij 14?") takes its standalone question's
        language = (
            (guess_language(last_user) or detect_language(query)) if last_user.strip()
            else self.prompts.default_language
        )
        template = self.prompts.for_language(language)
        if not use_retrieval:
            prep = Prepared(language, query, template, [])
            prep.prompt = [m for m in messages if m.role != "system"] or list(messages)
            n = self.generator.count_tokens(prep.prompt)
            budget = self.generator.context_window - params.max_tokens
            if n > budget:
                raise PromptTooLong(
                    f"the conversation is {n} tokens; the model takes {budget} beside max_tokens "
                    f"{params.max_tokens}: shorten it", n, budget)
            return prep
        if self.retriever is None:
            raise RuntimeError("retrieval is not configured")
        t0 = time.perf_counter()
        hits = self.retriever.search(query, identity, request_filter=request_filter, top_k=top_k or self.top_k)
        prep = Prepared(language, query, template, hits, retrieval_ms=(time.perf_counter() - t0) * 1000)
        if hits:
            try:
                prep.prompt, n_sources = self._fit(template, hits, messages, params)
            except GeneratorUnavailable as err:  # cannot count: the fallback (or a 503) answers
                prep.prompt, prep.unavailable = [], err
            else:
                prep.hits = hits[:n_sources]
        if prep.hits and self.judge is not None and not self.judge.answerable(query, prep.hits, language):
            prep.maybe_relevant = suggestions(prep.hits, self.maybe_relevant)
            prep.hits, prep.prompt, prep.unavailable = [], [], None
        return prep

    def _fit(
        self,
        template: PromptTemplate,
        hits: list[Hit],
        messages: Sequence[ChatMessage],
        params: GenerationParams,
    ) -> tuple[list[ChatMessage], int]:
        """The prompt that fits the context window, never a longer one.

        Drops the lowest-ranked sources first (down to the best one), then the oldest turns; a
        question that does not fit even so is refused (``PromptTooLong``, a 400).
        """
        convo = [m for m in messages if m.role in ("user", "assistant")]
        last_user = max(i for i, m in enumerate(convo) if m.role == "user")
        history, question = convo[:last_user][-MAX_HISTORY_MESSAGES:], convo[last_user].content

        def build(n: int, past: list[ChatMessage]) -> list[ChatMessage]:
            user = template.render_user(hits[:n], question) if n else question
            return [ChatMessage("system", template.system), *past, ChatMessage("user", user)]

        def size(prompt: list[ChatMessage]) -> tuple[int, int]:
            n_tokens = self.generator.count_tokens(prompt)  # may learn the server's window: read after
            return n_tokens, self.generator.context_window - params.max_tokens

        def fits(prompt: list[ChatMessage]) -> bool:
            n_tokens, budget = size(prompt)
            return n_tokens <= budget

        while True:
            if fits(build(len(hits), history)):
                return build(len(hits), history), len(hits)
            if fits(build(1, history)):  # the most sources that fit: a binary search (counts cost a call)
                lo, hi = 1, len(hits) - 1
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    lo, hi = (mid, hi) if fits(build(mid, history)) else (lo, mid - 1)
                return build(lo, history), lo
            if not history:
                break
            history = history[1:]
        n_tokens, budget = size(build(0, []))
        if n_tokens > budget:
            raise PromptTooLong(
                f"the question is too long: {n_tokens} tokens with the instructions, and the model takes "
                f"{budget} beside max_tokens {params.max_tokens}; shorten it", n_tokens, budget)
        n_tokens, budget = size(build(1, []))
        raise PromptTooLong(
            f"the question with its best source is {n_tokens} tokens, and the model takes {budget} beside "
            f"max_tokens {params.max_tokens}; shorten the question or ask for fewer max_tokens",
            n_tokens, budget)

    def abstention(self, prep: Prepared) -> Answer:
        """The fixed abstention; when sources were found that do not answer, a line offering them."""
        text = prep.template.abstain
        if prep.maybe_relevant:
            titles = "; ".join(prep.template.sanitise_field(s.title) for s in prep.maybe_relevant)
            text = f"{text}\n\n{prep.template.maybe_relevant.format(titles=titles)}"
        return Answer(text=text, citations=[], abstained=True, hits=[], maybe_relevant=list(prep.maybe_relevant))

    def can_fall_back(self, prep: Prepared) -> bool:
        """Whether an unavailable generator can be stood in for on this request (sources needed)."""
        return self.fallback is not None and bool(prep.hits)

    def _pieces(self, generator: Generator, prep: Prepared, params: GenerationParams) -> AsyncIterator[str]:
        if isinstance(generator, SourceAnswerer):
            return generator.stream_from_sources(prep.query, prep.hits, prep.language, params)
        return generator.stream(prep.prompt, params)

    async def answer(self, prep: Prepared, params: GenerationParams, fallback: str | None = None) -> Answer:
        """The answer; ``fallback`` ("busy") answers with the stand-in straight away."""
        if prep.abstain and prep.prompt == []:
            return self.abstention(prep)
        if fallback is None and prep.unavailable is not None:
            if not self.can_fall_back(prep):
                raise prep.unavailable
            fallback = prep.unavailable.reason
        if fallback is None:
            try:
                if isinstance(self.generator, SourceAnswerer):
                    raw = "".join([p async for p in self._pieces(self.generator, prep, params)])
                else:
                    raw = await self.generator.generate(prep.prompt, params)
            except GeneratorUnavailable as err:
                if not self.can_fall_back(prep):
                    raise
                fallback = err.reason
            else:
                text, cited = clean_markers(raw, len(prep.hits))
                return await self._checked(text, cited, prep, self._mode(self.generator), params)
        assert self.fallback is not None
        raw = "".join([p async for p in self._pieces(self.fallback, prep, params)])
        text, cited = clean_markers(raw, len(prep.hits))
        return await self._checked(text, cited, prep, "extractive", params, fallback)

    async def check(self, text: str, prep: Prepared) -> list[Claim]:
        """The answer check of ``text`` against the prepared sources (in a worker thread)."""
        sources = {i + 1: h.chunk.text for i, h in enumerate(prep.hits)}
        return await asyncio.to_thread(check_answer, text, sources, prep.language)

    async def _checked(
        self, text: str, cited: list[int], prep: Prepared, mode: Literal["generative", "extractive"],
        params: GenerationParams, fallback: str | None = None,
    ) -> Answer:
        """The answer with its claims, after the configured ``answer_check`` action."""
        claims = await self.check(text, prep)
        unsupported = any(c.status == "unsupported" for c in claims)
        if unsupported and self.answer_check == "fallback" and mode == "generative" and self.extractive \
                is not None and prep.hits:
            raw = "".join([p async for p in self._pieces(self.extractive, prep, params)])
            text, cited = clean_markers(raw, len(prep.hits))
            ans = self._finish(text, cited, prep, "extractive", CHECK_FALLBACK, await self.check(text, prep))
            ans.check_action = "fallback"
            return ans
        if unsupported and self.answer_check == "drop":
            text = drop_unsupported(text, claims)
            if not text.strip():
                ans = self.abstention(prep)
                ans.claims, ans.check_action, ans.mode = claims, "dropped", mode
                return ans
            _, cited = clean_markers(text, len(prep.hits))
            ans = self._finish(text, cited, prep, mode, fallback, claims)
            ans.check_action = "dropped"
            return ans
        return self._finish(text, cited, prep, mode, fallback, claims)

    async def stream(
        self, prep: Prepared, params: GenerationParams, fallback: str | None = None
    ) -> AsyncIterator[StreamDelta | StreamEnd]:
        """Text deltas, then the answer. A generator found unavailable before its first token (or
        ``fallback="busy"``) hands over to the stand-in, whose answer opens with the notice line."""
        if prep.abstain and prep.prompt == []:
            ans = self.abstention(prep)
            yield StreamDelta(ans.text)
            yield StreamEnd(ans)
            return
        if self.answer_check != "flag":
            # drop / fallback decide on the whole answer: it is checked before any of it is sent
            ans = await self.answer(prep, params, fallback)
            yield StreamDelta(ans.text)
            yield StreamEnd(ans)
            return
        if fallback is None and prep.unavailable is not None:
            if not self.can_fall_back(prep):
                raise prep.unavailable
            fallback = prep.unavailable.reason
        filt = MarkerFilter(len(prep.hits))
        parts: list[str] = []
        generator = self.generator if fallback is None else self.fallback
        assert generator is not None
        gen = self._pieces(generator, prep, params)
        try:
            first: str | None = None
            try:
                first = await anext(gen)
            except StopAsyncIteration:
                pass
            except GeneratorUnavailable as err:
                if fallback is not None or not self.can_fall_back(prep):
                    raise
                await gen.aclose()  # type: ignore[attr-defined]
                fallback, generator = err.reason, self.fallback
                assert generator is not None
                gen = self._pieces(generator, prep, params)
                first = await anext(gen, None)
            if fallback is not None:
                notice = self.notice(prep)
                yield StreamDelta(notice + "\n\n")
            for delta in ([first] if first is not None else []):
                out = filt.feed(delta)
                if out:
                    parts.append(out)
                    yield StreamDelta(out)
            async for delta in gen:
                out = filt.feed(delta)
                if out:
                    parts.append(out)
                    yield StreamDelta(out)
        finally:
            await gen.aclose()  # type: ignore[attr-defined]
        tail = filt.finish()
        if tail:
            parts.append(tail)
            yield StreamDelta(tail)
        mode = "extractive" if fallback is not None else self._mode(generator)
        text = "".join(parts)
        ans = self._finish(text, filt.cited, prep, mode, fallback, await self.check(text.strip(), prep))
        overdue = overdue_notice(ans.citations, prep.template)
        if overdue:  # _finish appended it to the answer's text; the stream carries it too
            yield StreamDelta(("\n\n" if parts else "") + overdue)
        yield StreamEnd(ans)

    def notice(self, prep: Prepared, reason: str | None = None) -> str:
        notices = CHECK_NOTICE if reason == CHECK_FALLBACK else FALLBACK_NOTICE
        return notices.get(prep.language, notices["nl"])

    @staticmethod
    def _mode(generator: Generator) -> Literal["generative", "extractive"]:
        return "extractive" if isinstance(generator, SourceAnswerer) else "generative"

    def _finish(
        self, text: str, cited: list[int], prep: Prepared,
        mode: Literal["generative", "extractive"] = "generative", fallback: str | None = None,
        claims: list[Claim] | None = None,
    ) -> Answer:
        """Citations are the sources the answer points at; with no marker at all, the sources
        whose words the answer demonstrably uses (see :func:`attribute`). A fallback answer
        opens with the notice line."""
        method = "marker"
        if not cited and prep.hits:
            cited, method = attribute(text, prep.hits), "overlap"
        citations: list[Citation] = build_citations(cited, prep.hits, method) if prep.hits else []
        text = text.strip()
        overdue = overdue_notice(citations, prep.template)
        if overdue:
            text = f"{text}\n\n{overdue}" if text else overdue
        notice = self.notice(prep, fallback) if fallback is not None else None
        if notice is not None:
            text = f"{notice}\n\n{text}"
        return Answer(text=text, citations=citations, hits=prep.hits, mode=mode, fallback=fallback,
                      notice=notice, claims=list(claims or []))
