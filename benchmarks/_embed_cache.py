"""Corpus vectors cached under .cache/ keyed by model + dtype + chunk texts (benchmarks only)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from retrieval.embedders import SentenceTransformerEmbedder

CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "retrieval"


def cached_embeddings(embedder: SentenceTransformerEmbedder, texts: Sequence[str]) -> NDArray[np.float32]:
    h = hashlib.sha256(f"{embedder.name}|{embedder.dtype}|{embedder.max_tokens}".encode())
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    path = CACHE_DIR / f"{h.hexdigest()[:24]}.npy"
    if path.is_file():
        vecs = np.load(path)
        if vecs.shape == (len(texts), embedder.dimension):
            print(f"corpus vectors from cache {path.relative_to(CACHE_DIR.parents[1])}")
            return vecs.astype(np.float32)
    t0 = time.perf_counter()
    vecs = embedder.embed_documents(texts)
    print(f"embedded {len(texts)} chunks in {time.perf_counter() - t0:.0f} s")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vecs)
    tmp.replace(path)
    return vecs
