"""What a chat request leaves behind (NEN 7513): the patient-data guard of the question, the access record
before any answer or source leaves, the outcome record linked to it, and the answer receipt feedback refers
to. The chat router and ``vraagbaak ask`` call the same methods; every method blocks (run it in a worker
thread) and an audit write that fails raises ``AuditWriteError``, so the caller fails closed."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request

from serving.http.metrics import Metrics
from serving.http.proxies import client_address
from serving.staff.feedback.store import AnswerReceipt, CitedDocument
from serving.staff.question_guard import GuardedText, QuestionGuard
from vraagbaak_core.audit import AuditLog, Outcome
from vraagbaak_core.ports import FeedbackLog
from vraagbaak_core.settings import Settings
from vraagbaak_core.types import Answer, Hit, Identity


class ChatRecords:
    def __init__(self, settings: Settings, audit: AuditLog, questions: QuestionGuard, metrics: Metrics,
                 feedback: FeedbackLog | None) -> None:
        self.settings = settings
        self.audit = audit
        self.questions = questions
        self.metrics = metrics
        self.feedback = feedback

    def guard(self, query: str) -> GuardedText:
        """What may be stored of a question (``audit.question_text``), and whether it holds patient data.
        Blocking (the guard runs deduce): call it in a worker thread."""
        return self.questions.check(query)

    def access(self, request: Request | None, identity: Identity, query: GuardedText, hits: Sequence[Hit]) -> str:
        """The access record of a chat request, before any answer or source leaves: every document and chunk
        the answer may show. Returns its event id (the outcome record links to it)."""
        docs, chunk_ids = _shown(hits)
        rec = self.audit.chat_access(
            user_id=identity.user_id, role=",".join(sorted(identity.roles)) or None, question=query.stored,
            documents=docs, chunk_ids=chunk_ids, network_access_point=client_address(request),
            extra=query.audit_extra(),
        )
        return str(rec["event_id"])

    def outcome(
        self, request: Request | None, identity: Identity, query: GuardedText, hits: Sequence[Hit], *,
        answer: Answer | None = None, outcome: Outcome = "success", reason: str | None = None,
        access_event_id: str | None = None,
    ) -> None:
        """The outcome record of a chat request: every document and chunk shown (merged chunks each), the
        caller's own roles, and how it ended, linked to its access record."""
        if answer is not None:
            self.metrics.observe_answer(answer)
            if reason is None and answer.abstained:
                reason = "abstained: nothing relevant retrieved"
        docs, chunk_ids = _shown(hits)
        self.audit.chat_question(
            user_id=identity.user_id, role=",".join(sorted(identity.roles)) or None, question=query.stored,
            documents=docs, chunk_ids=chunk_ids,
            network_access_point=client_address(request), outcome=outcome, reason=reason,
            access_event_id=access_event_id, extra=query.audit_extra(),
        )

    def remember(self, answer_id: str, identity: Identity, query: GuardedText, answer: Answer) -> None:
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
        self.feedback.record_answer(AnswerReceipt(
            answer_id=answer_id, user_id=identity.user_id, documents=tuple(docs.values()),
            question=query.stored,
            answer_text=self.questions.free_text(answer.text) if self.settings.feedback.store_answers else None,
            mode=getattr(answer, "mode", None), abstained=answer.abstained,
        ))


def _shown(hits: Sequence[Hit]) -> tuple[list[tuple[str, str]], list[str]]:
    """(documents with classification, chunk ids) of the hits, merged chunks each, in order."""
    docs: dict[str, str] = {}
    for h in hits:
        docs.setdefault(h.chunk.doc_id, h.chunk.classification)
    return sorted(docs.items()), list(dict.fromkeys(c for h in hits for c in h.shown_chunk_ids))
