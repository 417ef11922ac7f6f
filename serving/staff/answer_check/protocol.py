"""Wire models of ``POST /api/answer-check`` and of the ``claims`` of a chat answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vraagbaak_core.types import Claim

MAX_SOURCES = 50
MAX_SOURCE_CHARS = 100_000


class CheckSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(ge=1, le=1000, description="the number the answer's markers use: [n]")
    text: str = Field(max_length=MAX_SOURCE_CHARS, description="the source passage as the answerer saw it")


class AnswerCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str = Field(min_length=1, description='the answer with its markers, e.g. "… 30 seconden [1]."')
    sources: list[CheckSource] = Field(max_length=MAX_SOURCES)
    language: Literal["nl", "en"] | None = Field(
        default=None, description="language of the answer (of the reasons); null: detected")

    @field_validator("sources")
    @classmethod
    def _unique(cls, v: list[CheckSource]) -> list[CheckSource]:
        seen: set[int] = set()
        for s in v:
            if s.n in seen:
                raise ValueError(f"source number {s.n} is given twice")
            seen.add(s.n)
        return v


class WireClaim(BaseModel):
    """One sentence of an answer and what its cited sources say to it."""

    sentence: str = Field(description="the sentence as in the answer, markers included")
    status: Literal["supported", "unsupported", "unverifiable"]
    cites: list[int] = Field(description="the source numbers its markers cite")
    reason: str | None = Field(default=None, description="what did not match, or why nothing could be checked")
    kind: str | None = Field(
        default=None, description="number, unit, threshold, negation, actor, citation, no_marker, nothing_checkable")

    @classmethod
    def of(cls, c: Claim) -> WireClaim:
        return cls(sentence=c.sentence, status=c.status, cites=list(c.cites), reason=c.reason, kind=c.kind)


class AnswerCheckResponse(BaseModel):
    claims: list[WireClaim]
