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
