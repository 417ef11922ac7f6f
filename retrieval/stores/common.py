"""What both store adapters share: vector names, indexed payload fields, request checks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

from vraagbaak_core.types import StoredPoint, StoreQuery

DENSE = "dense"
SPARSE = "sparse"

# Payload fields that filters use, with their index type where the backend supports indexes.
INDEXED_FIELDS: dict[str, Literal["keyword", "integer"]] = {
    "doc_id": "keyword",
    "groups": "keyword",
    "classification_level": "integer",
    "language": "keyword",
    "lifecycle": "keyword",
    "expires_day": "integer",
    "until_day": "integer",
    "starts_day_neg": "integer",
}


def check_upsert(points: Sequence[StoredPoint]) -> None:
    """Point ids are the chunk ids and must be UUID strings (Qdrant's id type)."""
    for p in points:
        try:
            uuid.UUID(p.chunk.chunk_id)
        except ValueError:
            raise ValueError(f"chunk_id {p.chunk.chunk_id!r} is not a UUID string") from None


def check_query(request: StoreQuery) -> None:
    if request.limit < 1:
        raise ValueError("query limit must be at least 1")
    if request.mode in ("dense", "hybrid") and request.dense is None:
        raise ValueError(f"a {request.mode} query needs a dense vector")
    if request.mode == "sparse" and request.sparse is None:
        raise ValueError("a sparse query needs a sparse vector")
    if request.mode not in ("dense", "sparse", "hybrid"):
        raise ValueError(f"unknown search mode {request.mode!r}; allowed: dense, sparse, hybrid")


def collection_record(embedder: str, dimension: int, state: str = "ready") -> dict[str, object]:
    """What a collection records about the vectors in it (Edge: a JSON file; server: metadata)."""
    return {"embedder": embedder, "dimension": dimension, "state": state}


def check_record(where: str, have: dict[str, object] | None, dense_dim: int, embedder: str | None) -> None:
    """Refuse an embedder other than the one that filled the collection, naming both."""
    from vraagbaak_core.errors import EmbedderMismatch

    if not have:
        return
    rec_dim, rec_name = have.get("dimension"), have.get("embedder")
    if (rec_dim is not None and rec_dim != dense_dim) or (embedder and rec_name and rec_name != embedder):
        raise EmbedderMismatch(
            f"{where} was filled by embedder {rec_name!r} ({rec_dim}-dim vectors); the configured embedder "
            f"is {embedder!r} ({dense_dim}-dim). Set embedder back to {rec_name!r}, or run "
            "`vraagbaak reindex` to re-embed every document with the configured one"
        )


def slug(name: str) -> str:
    """A collection / directory name part for an embedder name."""
    import re

    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name.removeprefix("package:")).strip("-._").lower()
    return s[:60] or "embedder"
