"""Vectors of a chunk's quotable units, made once at ingest, so that answering is a dot product.

``encode_units`` segments each chunk with :func:`retrieval.units.quotable_units` (the answerer's own
segmentation), embeds every unit through the ``Embedder`` port in one batch (its ``embed_units`` when it
is a ``UnitEmbedder``: the onnx backend's int8 export), and quantises each
L2-normalised vector to int8 with a per-row scale (384 bytes a unit for multilingual-e5-small; cosine
error below 0.01). The result rides in the chunk's payload (``Chunk.units``), so the Qdrant Edge shard,
a Qdrant server and the exit bundle carry it like any other payload field; no side store.

``stored_vectors`` reads them back, as float32 unit vectors keyed by the unit's text, only when they
were made by the embedder now configured (after a change of model the answerer embeds on the fly).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.units import Unit, quotable_units
from vraagbaak_core.ports import Embedder, UnitEmbedder
from vraagbaak_core.types import Chunk, UnitVectors

MAX_UNIT_CHARS = 2000  # longer units are not stored (the answerer does not quote them)


def quantise(vectors: np.ndarray) -> tuple[bytes, tuple[float, ...]]:
    """Rows L2-normalised, then int8 with a scale per row (max |x| → 127)."""
    v = np.asarray(vectors, dtype=np.float32)
    v = v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12)
    scales = np.abs(v).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    q = np.clip(np.rint(v / scales[:, None]), -127, 127).astype(np.int8)
    return q.tobytes(), tuple(float(s) for s in scales)


def dequantise(units: UnitVectors) -> np.ndarray:
    n = len(units.texts)
    q = np.frombuffer(units.vectors, dtype=np.int8).reshape(n, units.dim).astype(np.float32)
    v = q * np.asarray(units.scales, dtype=np.float32)[:, None]
    out: np.ndarray = v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12)
    return out


def chunk_units(chunk_text: str, language: str) -> list[Unit]:
    """The distinct units of a chunk, in reading order."""
    seen: dict[str, Unit] = {}
    for u in quotable_units(chunk_text, language):
        if len(u.text) <= MAX_UNIT_CHARS:
            seen.setdefault(u.text, u)
    return list(seen.values())


def encode_units(embedder: Embedder, chunks: Sequence[tuple[str, str]]) -> list[UnitVectors | None]:
    """For each (chunk text, language): its units with their quantised vectors (None: no unit)."""
    per_chunk = [chunk_units(text, lang) for text, lang in chunks]
    if not any(per_chunk):
        return [None] * len(chunks)
    embed = embedder.embed_units if isinstance(embedder, UnitEmbedder) else embedder.embed_documents
    # one call per chunk: an embedder whose numbers depend on the batch (the ONNX int8 export scales its
    # activations over the whole run) then gives a chunk's units the same vectors whatever other chunks
    # the ingest batch held, which depends on the order the parser threads finished in (the same
    # protocols ingested twice gave other unit vectors, and near a tie another answer)
    vectors = np.vstack([np.asarray(embed([u.text for u in units]), dtype=np.float32)
                         for units in per_chunk if units])
    out: list[UnitVectors | None] = []
    at = 0
    for units in per_chunk:
        if not units:
            out.append(None)
            continue
        block = vectors[at : at + len(units)]
        at += len(units)
        q, scales = quantise(block)
        out.append(UnitVectors(embedder.name, int(block.shape[1]), tuple(u.text for u in units), q, scales,
                               tuple(u.kind for u in units), tuple(u.key for u in units)))
    return out


def stored_units(chunk: Chunk, embedder_name: str) -> list[Unit] | None:
    """The chunk's units as ingest stored them (no segmentation needed), or None when it stored none
    for this embedder (then segment its text with :func:`quotable_units`)."""
    usable = [u for u in chunk.units if u.embedder == embedder_name and len(u.kinds) == len(u.texts)]
    if not usable:
        return None
    out: list[Unit] = []
    for units in usable:
        for i, (text, kind) in enumerate(zip(units.texts, units.kinds, strict=True)):
            if i == 0 and kind == "sentence" and text[:1].islower():
                continue  # a chunk that starts inside a sentence (chunk overlap)
            key = units.keys[i] if i < len(units.keys) else ""
            out.append(Unit(text, kind if kind in ("sentence", "row", "steps") else "sentence",  # type: ignore[arg-type]
                            len(out), key))
    return out


def stored_vectors(chunk: Chunk, embedder_name: str) -> dict[str, np.ndarray]:
    """Unit text → float32 unit vector, from the chunk's stored units made by ``embedder_name``."""
    out: dict[str, np.ndarray] = {}
    for units in chunk.units:
        if units.embedder != embedder_name or len(units.vectors) != len(units.texts) * units.dim:
            continue
        for text, vec in zip(units.texts, dequantise(units), strict=True):
            out[text] = vec
    return out
