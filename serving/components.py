"""The adapters a running service needs, built once (in the app's lifespan or a CLI command)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

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
from serving.staff.chat.records import ChatRecords
from serving.staff.chat.service import ChatService
from serving.staff.feedback.factory import build_feedback
from serving.staff.generators.factory import build_extractive, build_fallback, build_generator
from serving.staff.generators.judges import build_judge
from serving.staff.question_guard import QuestionGuard
from vraagbaak_core.audit import AuditLog
from vraagbaak_core.audit_factory import build_audit_log
from vraagbaak_core.ports import Embedder, FeedbackLog, Generator, SourceAnswerer, VectorStore
from vraagbaak_core.settings import PROJECT_ROOT, Settings

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

    def switch_index(self, embedder: Embedder, store: VectorStore) -> None:
        """Serve ``store`` (filled by ``embedder``) from now on, on every request path: search (the
        retriever swaps both at once and waits for searches on the old pair), ingest and erasure (the
        ingestor), counts. The caller holds the ingestor's write pause (``Ingestor.writes_paused``)."""
        self.retriever.switch(embedder, store)
        if self.ingestor is not None:
            self.ingestor.switch_index(embedder, store)
        self.embedder, self.store = embedder, store

    @property
    def records(self) -> ChatRecords:
        """What a chat request leaves behind (guard, access and outcome records, answer receipt), on the
        current audit log and feedback store (tests swap them)."""
        assert self.questions is not None
        return ChatRecords(self.settings, self.audit, self.questions, self.metrics, self.feedback)

    async def aclose(self) -> None:
        self.auth_failures.flush_all()
        await self.generator.aclose()
        if self.ingestor is not None:
            self.ingestor.close()
        if self.feedback is not None:
            self.feedback.close()
        self.store.close()


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
