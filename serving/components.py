"""The adapters a running service needs, built once (in the app's lifespan or a CLI command)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from fastapi import Request

from ingest.pipeline import Ingestor
from retrieval.embedders import build_embedder
from retrieval.search import Retriever, build_retriever
from retrieval.stores import build_store
from serving.http.auth import Authenticator
from serving.http.auth_failures import AuthFailureAudit
from serving.http.limits import ConcurrencyGate, RateLimiter
from serving.http.metrics import Metrics
from serving.http.priority import lowered
from serving.staff.chat.prompts import PromptBook
from serving.staff.chat.service import ChatService
from serving.staff.feedback.factory import build_feedback
from serving.staff.feedback.store import AnswerReceipt, CitedDocument
from serving.staff.generators.factory import build_extractive, build_fallback, build_generator
from serving.staff.generators.judges import build_judge
from serving.staff.question_guard import GuardedText, QuestionGuard
from vraagbaak_core.audit import AuditLog, Outcome
from vraagbaak_core.audit_factory import build_audit_log
from vraagbaak_core.ports import Embedder, FeedbackLog, Generator, SourceAnswerer, VectorStore
from vraagbaak_core.settings import PROJECT_ROOT, Settings
from vraagbaak_core.types import Answer, Hit, Identity

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Components:
    settings: Settings
    embedder: Embedder
    store: VectorStore
    retriever: Retriever
    generator: Generator
    chat: ChatService
    authenticator: Authenticator
    gate: ConcurrencyGate
    rate_limiter: RateLimiter
    audit: AuditLog
    metrics: Metrics = field(default_factory=Metrics)
    ingestor: Ingestor | None = None
    # bounded worker threads for blocking work (see ServerSettings.worker_threads)
    blocking: anyio.CapacityLimiter | None = None

    async def run_blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking ``fn`` in a worker thread, at most ``server.worker_threads`` at a time."""
        if self.blocking is None:
            self.blocking = anyio.CapacityLimiter(self.settings.server.worker_threads)
        call = functools.partial(lowered, self.settings.server.worker_nice, fn, *args, **kwargs)
        return await anyio.to_thread.run_sync(call, limiter=self.blocking)
    feedback: FeedbackLog | None = None
    questions: QuestionGuard | None = None
    auth_failures: AuthFailureAudit = field(init=False)

    def __post_init__(self) -> None:
        if self.questions is None:
            self.questions = QuestionGuard(self.settings)
        a = self.settings.audit
        self.auth_failures = AuthFailureAudit(self.audit, a.auth_failure_interval_s, a.auth_failures_per_minute)

    # --- observations ---
    def observe_retrieval(self, ms: float, abstained: bool) -> None:
        self.metrics.retrieval.observe(ms / 1000)
        if abstained:
            self.metrics.abstentions.inc()

    def observe_ttft(self, seconds: float) -> None:
        self.metrics.ttft.observe(seconds)

    # --- audit hooks (NEN 7513) ---
    def guard_question(self, query: str) -> GuardedText:
        """What may be stored of a question (``audit.question_text``), and whether it holds patient data.
        Blocking (the guard runs deduce): call it in a worker thread."""
        assert self.questions is not None
        return self.questions.check(query)

    def audit_access(self, request: Request | None, identity: Identity, query: GuardedText,
                     hits: Sequence[Hit]) -> str:
        """The access record of a chat request, before any answer or source leaves: every document and chunk
        the answer may show. Returns its event id (the outcome record links to it). Raises
        ``AuditWriteError``: the caller fails closed."""
        docs, chunk_ids = _shown(hits)
        rec = self.audit.chat_access(
            user_id=identity.user_id, role=",".join(sorted(identity.roles)) or None, question=query.stored,
            documents=docs, chunk_ids=chunk_ids, network_access_point=_client(request), extra=query.audit_extra(),
        )
        return str(rec["event_id"])

    def audit_chat(
        self, request: Request | None, identity: Identity, query: GuardedText, hits: Sequence[Hit], *,
        answer: Answer | None = None, outcome: Outcome = "success", reason: str | None = None,
        access_event_id: str | None = None,
    ) -> None:
        """The outcome record of a chat request: every document and chunk shown (merged chunks each), the
        caller's own roles, and how it ended, linked to its access record. Raises ``AuditWriteError``: the
        caller fails closed."""
        if answer is not None:
            self.metrics.tokens.inc(max(1, len(answer.text) // 4))
            if answer.fallback is not None and answer.check_action != "fallback":
                self.metrics.fallbacks.labels(answer.fallback).inc()
            for claim in answer.claims:
                self.metrics.claims.labels(claim.status).inc()
            if answer.check_action is not None:
                self.metrics.check_actions.labels(answer.check_action).inc()
            if reason is None and answer.abstained:
                reason = "abstained: nothing relevant retrieved"
        docs, chunk_ids = _shown(hits)
        self.audit.chat_question(
            user_id=identity.user_id, role=",".join(sorted(identity.roles)) or None, question=query.stored,
            documents=docs, chunk_ids=chunk_ids,
            network_access_point=_client(request), outcome=outcome, reason=reason,
            access_event_id=access_event_id, extra=query.audit_extra(),
        )

    def remember_answer(self, answer_id: str, identity: Identity, query: GuardedText, answer: Answer) -> None:
        """The answer receipt that feedback refers to: ids and versions; the question as
        ``audit.question_text`` allows (redacted); the answer text only with ``feedback.store_answers``,
        through the same guard (an answer may repeat what the question said)."""
        if self.feedback is None:
            return
        cited = {c.chunk_id for c in answer.citations}
        docs: dict[str, CitedDocument] = {}
        for h in answer.hits:
            if cited and h.chunk.chunk_id not in cited:
                continue
            # the document's own version (document control); a document that states none is named by
            # its content hash, marked as such
            version = h.chunk.control.version or f"sha256:{h.chunk.doc_sha256[:12]}"
            docs.setdefault(h.chunk.doc_id, CitedDocument(h.chunk.doc_id, version, h.chunk.chunk_id))
        s = self.settings
        self.feedback.record_answer(AnswerReceipt(
            answer_id=answer_id, user_id=identity.user_id, documents=tuple(docs.values()),
            question=query.stored,
            answer_text=self.questions.free_text(answer.text) if s.feedback.store_answers and self.questions else None,
            mode=getattr(answer, "mode", None), abstained=answer.abstained,
        ))

    def audit_auth_failure(self, request: Request, reason: str, identity: Identity | None = None) -> None:
        """An unauthenticated failure is counted per client address: one aggregated record per address per
        interval (see auth_failures). A known caller lacking a role (already rate-limited per user) gets
        its own record."""
        if identity is None:
            self.auth_failures.failed(_client(request), reason)
            return
        self.audit.auth_failure(reason=reason, network_access_point=_client(request), user_id=identity.user_id)

    async def aclose(self) -> None:
        self.auth_failures.flush_all()
        await self.generator.aclose()
        if self.ingestor is not None:
            self.ingestor.close()
        if self.feedback is not None:
            self.feedback.close()
        self.store.close()


def _shown(hits: Sequence[Hit]) -> tuple[list[tuple[str, str]], list[str]]:
    """(documents with classification, chunk ids) of the hits, merged chunks each, in order."""
    docs: dict[str, str] = {}
    for h in hits:
        docs.setdefault(h.chunk.doc_id, h.chunk.classification)
    return sorted(docs.items()), list(dict.fromkeys(c for h in hits for c in h.shown_chunk_ids))


def _client(request: Request | None) -> str:
    if request is None:
        import socket

        return f"local:{socket.gethostname()}"
    return request.client.host if request.client else "unknown"


def build_components(
    settings: Settings,
    embedder: Embedder | None = None,
    generator: Generator | None = None,
    store: VectorStore | None = None,
    metrics: Metrics | None = None,
) -> Components:
    """Build every adapter from settings; tests pass prebuilt heavy ones to share them."""
    root = settings.resolve
    embedder = embedder or build_embedder(settings.embedder, PROJECT_ROOT)
    store = store or build_store(settings)
    store.ensure_collection(embedder.dimension, embedder.name)
    retriever = build_retriever(settings, embedder=embedder, store=store)
    generator = generator or build_generator(settings, embedder)
    prompts = PromptBook.load(root(settings.prompts.templates_dir), settings.prompts.default_language)
    fallback = build_fallback(settings, embedder)
    # answer_check: fallback replaces a rejected generated answer by the extractive one
    extractive = (build_extractive(settings, embedder) if settings.answer_check == "fallback" and fallback is None
                  and not isinstance(generator, SourceAnswerer) else None)
    chat = ChatService(retriever, generator, prompts, settings.retrieval.top_k, fallback=fallback,
                       judge=build_judge(settings, generator),
                       maybe_relevant=settings.generator.extractive.maybe_relevant,
                       answer_check=settings.answer_check, extractive=extractive)
    ingestor = Ingestor.from_settings(settings, embedder=embedder, store=store)
    g = settings.generator
    return Components(
        settings=settings, embedder=embedder, store=store, retriever=retriever, generator=generator, chat=chat,
        authenticator=Authenticator(settings.auth), gate=ConcurrencyGate(g.max_concurrent, g.max_queue),
        rate_limiter=RateLimiter(settings.limits.rate_per_minute), metrics=metrics or Metrics(),
        audit=build_audit_log(settings), ingestor=ingestor,
        feedback=build_feedback(settings),
    )
