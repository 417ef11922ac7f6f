"""Wire models for ``POST /api/feedback``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer_id: str = Field(min_length=1, max_length=100, description="the `id` of the chat completion")
    vote: Literal["up", "down"]
    comment: str = Field(default="", max_length=10000)


class FeedbackResponse(BaseModel):
    feedback_id: str
    answer_id: str
