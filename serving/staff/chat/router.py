"""Thin router for ``/v1/chat/completions`` and ``/v1/models``."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from serving.components import Components
from serving.http.auth import require_role
from serving.http.errors import ApiError
from serving.staff.answer_check.protocol import WireClaim
from serving.staff.chat.protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    ModelCard,
    ModelList,
    RequestFilter,
    ResponseMessage,
    WireCitation,
    WireSource,
    WireSuggestion,
    chunk_payload,
    completion_id,
)
from serving.staff.chat.service import StreamDelta, StreamEnd
from serving.staff.question_guard import GuardedText
from vraagbaak_core.audit import AuditWriteError, Outcome
from vraagbaak_core.errors import GeneratorError
from vraagbaak_core.types import (
    Answer,
    ChatMessage,
    GenerationParams,
    Hit,
    Identity,
    MatchAny,
    SearchFilter,
    classification_level,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["chat"])
RAG_MODEL = "vraagbaak"


def _components(request: Request) -> Components:
    comps: Components = request.app.state.components
    return comps


def request_filter(f: RequestFilter | None) -> SearchFilter | None:
    if f is None:
        return None
    must: list[MatchAny] = []
    if f.doc_ids is not None:
        must.append(MatchAny("doc_id", tuple(f.doc_ids)))
    if f.groups is not None:
        must.append(MatchAny("groups", tuple(f.groups)))
    if f.classification is not None:
        for c in f.classification:
            classification_level(c)  # unknown labels are an error, not an empty result
        must.append(MatchAny("classification", tuple(f.classification)))
    if f.language is not None:
        must.append(MatchAny("language", tuple(f.language)))
    return SearchFilter(tuple(must))


def _check_limits(req: ChatCompletionRequest, comps: Components) -> None:
    lim = comps.settings.limits
    if len(req.messages) > lim.max_messages:
        raise ApiError(400, f"too many messages ({len(req.messages)}; at most {lim.max_messages})",
                       code="too_many_messages")
    for i, m in enumerate(req.messages):
        if len(m.text()) > lim.max_message_chars:
            raise ApiError(400, f"messages.{i} is too long ({len(m.text())} characters; at most "
                           f"{lim.max_message_chars})", code="message_too_long")


def _messages(req: ChatCompletionRequest) -> list[ChatMessage]:
    out = []
    for m in req.messages:
        if m.role in ("user", "assistant"):
            out.append(ChatMessage(m.role, m.text()))
    return out


def _params(req: ChatCompletionRequest, comps: Components) -> GenerationParams:
    g = comps.settings.generator
    stop = (req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ())
    return GenerationParams(
        max_tokens=min(req.max_completion_tokens or req.max_tokens or g.max_tokens, g.max_tokens),
        temperature=g.temperature if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        stop=stop,
    )


@router.get("/v1/models", response_model=ModelList)
async def list_models(
    request: Request, identity: Annotated[Identity, Depends(require_role("staff"))]
) -> ModelList:
    comps = _components(request)
    return ModelList(data=[ModelCard(id=RAG_MODEL), ModelCard(id=comps.generator.model_name)])


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    identity: Annotated[Identity, Depends(require_role("staff"))],
) -> ChatCompletionResponse | StreamingResponse:
    comps = _components(request)
    _check_limits(body, comps)
    if body.model not in (RAG_MODEL, comps.generator.model_name):
        raise ApiError(404, f"model {body.model!r} does not exist; use {RAG_MODEL!r}", "not_found",
                       "model_not_found")
    if not body.retrieval and not comps.settings.server.allow_passthrough:
        raise ApiError(403, "chat without retrieval is switched off on this server", "permission_error")
    try:
        rfilter = request_filter(body.filter)
    except ValueError as err:
        raise ApiError(400, str(err)) from None
    messages = _messages(body)
    params = _params(body, comps)
    # embedding, store queries and prompt tokenizing block: a worker thread, never the event loop
    prep = await comps.run_blocking(
        comps.chat.prepare, messages, identity, params, rfilter, use_retrieval=body.retrieval, top_k=body.top_k
    )
    comps.metrics.observe_retrieval(prep.retrieval_ms, abstained=prep.abstain and body.retrieval)
    model = RAG_MODEL if body.model == RAG_MODEL else comps.generator.model_name
    record = ChatRecord(request, comps, identity, prep.query, prep.hits)
    await record.open()  # the access record, committed before anything is answered (fail closed)

    if prep.abstain and body.retrieval:
        answer = comps.chat.abstention(prep)
        await record.awrite(answer=answer)
        cid = completion_id()
        await comps.run_blocking(comps.records.remember, cid, identity, record.query, answer)
        if not body.stream:
            return _response(model, answer, cid, record.query.notice)
        return _sse(_abstain_events(model, answer, cid, record.query.notice))

    # A full generation queue, with generator.fallback set, is answered extractively at once
    # (no slot: the stand-in never calls the model server).
    busy = comps.gate.full and comps.chat.can_fall_back(prep)
    if not body.stream:
        try:
            if busy:
                answer = await comps.chat.answer(prep, params, fallback="busy")
            else:
                async with comps.gate.slot():
                    answer = await comps.chat.answer(prep, params)
        except BaseException as err:
            await record.failed(err)
            raise
        await record.awrite(answer=answer)
        cid = completion_id()
        await comps.run_blocking(comps.records.remember, cid, identity, record.query, answer)
        return _response(model, answer, cid, record.query.notice)
    # Streaming holds its slot for as long as the stream runs. The first piece is awaited before
    # the response starts, so an unreachable or full upstream is still a clean 503 with Retry-After
    # (or, with generator.fallback, an extractive answer).
    if not busy:
        try:
            await comps.gate.acquire()
        except BaseException as err:
            await record.failed(err)
            raise
    t0 = time.perf_counter()
    stream = comps.chat.stream(prep, params, fallback="busy" if busy else None)
    try:
        first = await anext(stream)
    except BaseException as err:
        if not busy:
            comps.gate.release()
        await stream.aclose()  # type: ignore[attr-defined]
        await record.failed(err)
        raise
    comps.metrics.observe_ttft(time.perf_counter() - t0)
    released = False

    async def release() -> None:  # once, whichever comes first: the stream's end or the response's
        nonlocal released
        if not released:
            released = True
            if not record.done:  # the response closed before (or without) the body finishing
                await record.safe_write("aborted", "client disconnected before the stream finished")
            if not busy:
                comps.gate.release()
            await stream.aclose()  # type: ignore[attr-defined]

    events = _stream_events(record, comps, stream, first, model, release)
    return _sse(events, on_close=release)


class ChatRecord:
    """Two linked audit records per chat request (NEN 7513), written in a worker thread.

    The access record (``chat.access``: who is shown which documents and chunks) is committed by
    :meth:`open` before any answer text or source leaves, so a process killed mid-answer still leaves
    it. Exactly one outcome record (``chat.question``, ``access_event_id`` naming the access record)
    follows, whatever the outcome: the answer was complete (``success``), the generator failed or the
    request was refused (``failure``, ``refused``), or the client went away mid-stream (``aborted``).
    A record that cannot be stored fails the request closed: 503 before any answer is produced, or, if
    the store fails later, no answer or sources are sent after the failure.
    """

    def __init__(
        self, request: Request, comps: Components, identity: Identity, query: str, hits: Sequence[Hit]
    ) -> None:
        self.request, self.comps, self.identity, self.hits = request, comps, identity, hits
        self._raw = query
        self.query = GuardedText(None)  # what may be stored of the question: set by open()
        self.done = False
        self.access_id: str | None = None

    def _open(self) -> tuple[GuardedText, str]:
        self.comps.audit.check_writable()  # the sink's own reserve (free space, privileges): fail early
        guarded = self.comps.records.guard(self._raw)  # before anything stores it: the patient-data guard
        return guarded, self.comps.records.access(self.request, self.identity, guarded, self.hits)

    async def open(self) -> None:
        """Guard the question, commit the access record; 503 (nothing shown) when it cannot be stored."""
        try:
            self.query, self.access_id = await self.comps.run_blocking(self._open)
        except AuditWriteError as err:
            raise _audit_unavailable(err) from None

    async def awrite(self, *, answer: Answer | None = None, outcome: Outcome = "success",
                     reason: str | None = None) -> None:
        """The outcome record; raises ``ApiError`` (503) when it cannot be stored."""
        if self.done:
            return
        self.done = True
        try:
            with anyio.CancelScope(shield=True):  # a disconnect must not cut the record short
                await self.comps.run_blocking(
                    self.comps.records.outcome, self.request, self.identity, self.query, self.hits, answer=answer,
                    outcome=outcome, reason=reason, access_event_id=self.access_id,
                )
        except AuditWriteError as err:
            raise _audit_unavailable(err) from None

    async def failed(self, err: BaseException) -> None:
        """Record a request that ended in ``err``; never masks ``err`` itself."""
        if isinstance(err, asyncio.CancelledError | GeneratorExit):
            outcome: Outcome = "aborted"
            reason = "client disconnected before the answer was complete"
        elif isinstance(err, ApiError):
            outcome, reason = "refused", f"{err.status}: {err.message}"
        else:
            outcome, reason = "failure", f"{type(err).__name__}: {err}"[:500]
        await self.safe_write(outcome, reason)

    async def safe_write(self, outcome: Outcome, reason: str) -> None:
        """Write without raising (on paths that already end in an error or a disconnect)."""
        try:
            await self.awrite(outcome=outcome, reason=reason)
        except ApiError:
            log.critical("audit record of a %s chat request could not be stored", outcome)


def _audit_unavailable(err: AuditWriteError) -> ApiError:
    log.critical("audit log unavailable, refusing the request: %s", err)
    return ApiError(503, "the audit log cannot be written; no answer is given until it can",
                    "service_unavailable", "audit_unavailable", headers={"Retry-After": "30"})


def _response(model: str, answer: Answer, cid: str, privacy_notice: str | None = None) -> ChatCompletionResponse:
    msg = ResponseMessage(
        content=answer.text,
        citations=[WireCitation.of_citation(c) for c in answer.citations],
        sources=[WireSource.of(i + 1, h) for i, h in enumerate(answer.hits)],
        abstained=answer.abstained,
        mode=answer.mode,
        notice=answer.notice,
        maybe_relevant=[WireSuggestion.of(s) for s in answer.maybe_relevant],
        privacy_notice=privacy_notice,
        claims=[WireClaim.of(c) for c in answer.claims],
    )
    return ChatCompletionResponse(id=cid, model=model, choices=[Choice(message=msg)])


class _ClosingStream(StreamingResponse):
    """A streaming response that runs ``on_close`` however it ends, also when the client went
    away before the body started (the body generator then never runs, nor its ``finally``)."""

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], Awaitable[None]] | None,
                 **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._on_close is not None:
                await self._on_close()


def _sse(events: AsyncIterator[dict[str, Any]],
         on_close: Callable[[], Awaitable[None]] | None = None) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        async for ev in events:
            yield f"data: {json.dumps(ev, ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"

    return _ClosingStream(
        body(), on_close, media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _final(cid: str, created: int, model: str, answer: Answer, privacy_notice: str | None = None) -> dict[str, Any]:
    return chunk_payload(
        cid, created, model, {}, "stop",
        citations=[WireCitation.of_citation(c).model_dump() for c in answer.citations],
        sources=[WireSource.of(i + 1, h).model_dump() for i, h in enumerate(answer.hits)],
        abstained=answer.abstained,
        mode=answer.mode,
        notice=answer.notice,
        maybe_relevant=[WireSuggestion.of(s).model_dump() for s in answer.maybe_relevant],
        privacy_notice=privacy_notice,
        claims=[WireClaim.of(c).model_dump() for c in answer.claims],
    )


async def _abstain_events(model: str, answer: Answer, cid: str,
                          privacy_notice: str | None = None) -> AsyncIterator[dict[str, Any]]:
    created = int(time.time())
    yield chunk_payload(cid, created, model, {"role": "assistant", "content": answer.text},
                        privacy_notice=privacy_notice)
    yield _final(cid, created, model, answer, privacy_notice)


async def _stream_events(
    record: ChatRecord,
    comps: Components,
    stream: AsyncIterator[StreamDelta | StreamEnd],
    first: StreamDelta | StreamEnd,
    model: str,
    release: Callable[[], Awaitable[None]],
) -> AsyncIterator[dict[str, Any]]:
    cid, created = completion_id(), int(time.time())
    sent = 0

    async def event(ev: StreamDelta | StreamEnd) -> dict[str, Any]:
        if isinstance(ev, StreamDelta):
            return chunk_payload(cid, created, model, {"content": ev.text})
        await record.awrite(answer=ev.answer)  # before the sources go out; raises ApiError when unavailable
        await comps.run_blocking(comps.records.remember, cid, record.identity, record.query, ev.answer)
        return _final(cid, created, model, ev.answer, record.query.notice)

    try:
        yield chunk_payload(cid, created, model, {"role": "assistant", "content": ""},
                            privacy_notice=record.query.notice)
        yield await event(first)
        sent = 1
        async for ev in stream:
            yield await event(ev)
            sent += 1
    except GeneratorError as err:
        log.warning("stream ended by generator error: %s", type(err).__name__)
        await record.failed(err)
        yield {"error": {"message": str(err), "type": "generator_error", "code": "generator_error"}}
    except ApiError as err:  # the audit record could not be stored: nothing more is sent
        yield {"error": {"message": err.message, "type": err.type, "code": err.code}}
    except BaseException as err:  # client disconnect (cancelled / closed) or any other failure
        if isinstance(err, asyncio.CancelledError | GeneratorExit):
            await record.safe_write("aborted", f"client disconnected mid-stream after {sent} piece(s)")
        else:
            await record.failed(err)
        raise
    finally:
        if not record.done:  # closed without any exception reaching us
            await record.safe_write("aborted", f"stream closed after {sent} piece(s)")
        await release()
