"""Typed errors shared by every layer; serving maps them onto one error envelope."""

from __future__ import annotations


class VraagbaakError(Exception):
    """Base class for errors the service reports to its callers."""


class GeneratorError(VraagbaakError):
    """The generator failed (e.g. mid-stream): the answer is incomplete."""


class GeneratorUnavailable(GeneratorError):
    """The generator is down or its queue is full; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 5, reason: str = "unreachable") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason  # "unreachable" (down, timed out) or "busy" (its queue is full)


class PromptTooLong(VraagbaakError, ValueError):
    """The question (with its best source) does not fit the model's context window."""

    def __init__(self, message: str, tokens: int, budget: int) -> None:
        super().__init__(message)
        self.tokens = tokens
        self.budget = budget


class EmbedderError(VraagbaakError):
    """The embedder failed (bad server answer, refused request)."""


class EmbedderUnavailable(EmbedderError):
    """The embeddings server cannot be reached or keeps failing after the retries."""


class EmbeddingInputError(EmbedderError, ValueError):
    """A text the embedder refuses: empty, or longer than the model's input."""


class EmbedderMismatch(VraagbaakError, ValueError):
    """The collection was filled by another embedder model (or dimension) than the configured one."""

class StoreLocked(VraagbaakError):
    """The embedded store is open in another process (or already in this one): one writer per shard."""
