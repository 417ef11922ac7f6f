"""Wire models of the OpenAI-compatible chat API, with Vraagbaak's extension fields."""

from __future__ import annotations

import time
import uuid
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from serving.staff.answer_check.protocol import WireClaim
from vraagbaak_core.types import Citation, DocControl, Hit, Suggestion


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class WireMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class RequestFilter(BaseModel):
    """Narrowing a caller may ask for; always intersected with the caller's own access filter."""

    model_config = ConfigDict(extra="forbid")
    doc_ids: list[str] | None = None
    groups: list[str] | None = None
    classification: list[str] | None = None
    language: list[Literal["nl", "en"]] | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = "vraagbaak"
    messages: list[WireMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    user: str | None = None
    # Vraagbaak extensions
    filter: RequestFilter | None = None
    top_k: int | None = Field(default=None, ge=1, le=50)
    retrieval: bool = True

    @field_validator("messages")
    @classmethod
    def _has_user(cls, v: list[WireMessage]) -> list[WireMessage]:
        if not any(m.role == "user" and m.text().strip() for m in v):
            raise ValueError("at least one non-empty user message is required")
        return v


class WireSource(BaseModel):
    """A passage that was given to the model as source ``[n]`` (cited or not)."""

    n: int
    doc_id: str
    title: str
    page: int | None = None
    section: str | None = None
    chunk_id: str
    score: float
    text: str | None = None  # the passage itself (what the model was given), for the source panel

    @classmethod
    def of(cls, n: int, hit: Hit) -> WireSource:
        c = hit.chunk
        return cls(n=n, doc_id=c.doc_id, title=c.title, page=c.page, section=c.section, chunk_id=c.chunk_id,
                   score=round(hit.score, 6), text=c.text)


class WireDocControl(BaseModel):
    """The cited document's document-control fields (all null when the document states none)."""

    version: str | None = None
    status: Literal["concept", "vastgesteld", "vervallen"] | None = None
    owner: str | None = None
    valid_from: str | None = None  # ISO dates
    review_date: str | None = None
    expires: str | None = None
    review_overdue: bool = False

    @classmethod
    def of(cls, c: DocControl, today: date | None = None) -> WireDocControl:
        today = today or date.today()
        status = c.status if c.status in ("concept", "vastgesteld", "vervallen") else None
        return cls(
            version=c.version, status=status, owner=c.owner,  # type: ignore[arg-type]
            valid_from=c.valid_from, review_date=c.review_date, expires=c.expires,
            review_overdue=bool(c.review_date) and date.fromisoformat(str(c.review_date)) < today,
        )


class WireCitation(WireSource):
    """A source the answer cites, with a snippet of the cited passage and its document's control data."""

    snippet: str
    source: str = ""
    method: Literal["marker", "overlap"] = "marker"
    document: WireDocControl = WireDocControl()

    @classmethod
    def of_citation(cls, c: Citation) -> WireCitation:
        return cls(
            n=c.n, doc_id=c.doc_id, title=c.title, page=c.page, section=c.section,
            chunk_id=c.chunk_id, score=round(c.score, 6), snippet=c.snippet, source=c.source,
            method="overlap" if c.method == "overlap" else "marker",
            document=WireDocControl.of(c.control),
        )


class WireSuggestion(BaseModel):
    """A document offered with an abstention ("misschien relevant")."""

    doc_id: str
    title: str
    source: str = ""
    page: int | None = None

    @classmethod
    def of(cls, s: Suggestion) -> WireSuggestion:
        return cls(doc_id=s.doc_id, title=s.title, source=s.source, page=s.page)


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    citations: list[WireCitation] = []
    sources: list[WireSource] = []
    abstained: bool = False
    # "extractive": sentences quoted from the sources (the embedded default, or the stand-in for an
    # unavailable language model, then with ``notice``); "generative": written by the language model.
    mode: Literal["generative", "extractive"] = "generative"
    notice: str | None = None
    # with an abstention because the sources found do not answer: those documents, nearest first
    maybe_relevant: list[WireSuggestion] = []
    # set when the question seems to hold patient data: Vraagbaak is not meant for it (the page shows it)
    privacy_notice: str | None = None
    # each sentence checked against the sources it cites (serving.staff.answer_check)
    claims: list[WireClaim] = []


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: Literal["stop", "length"] = "stop"


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class ChatCompletionResponse(BaseModel):
    id: str = Field(default_factory=completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage = Usage()


def chunk_payload(
    cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` event; extension fields ride along at the top level."""
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "vraagbaak"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
