"""Corpus vectors cached under .cache/ keyed by model + dtype + chunk texts (benchmarks only)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vraagbaak_core.ports import Embedder

CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "retrieval"
BLOCK = 512


def cached_embeddings(embedder: Embedder, texts: Sequence[str]) -> NDArray[np.float32]:
    name, dtype = getattr(embedder, "name", type(embedder).__name__), getattr(embedder, "dtype", "q4")
    h = hashlib.sha256(f"{name}|{dtype}|{embedder.max_tokens}".encode())
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    path = CACHE_DIR / f"{h.hexdigest()[:24]}.npy"
    if path.is_file():
        vecs = np.load(path)
        if vecs.shape == (len(texts), embedder.dimension):
            print(f"corpus vectors from cache {path.relative_to(CACHE_DIR.parents[1])}")
            return np.asarray(vecs, dtype=np.float32)
    t0 = time.perf_counter()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    parts = []
    for start in range(0, len(texts), BLOCK):  # blocks saved as they finish: an interrupted run resumes
        part = path.with_suffix(f".part{start // BLOCK}.npy")
        if part.is_file():
            parts.append(np.load(part))
            continue
        block = embedder.embed_documents(texts[start : start + BLOCK])
        np.save(part, block)
        parts.append(block)
        print(f"  {start + len(block)}/{len(texts)} chunks, {time.perf_counter() - t0:.0f} s", flush=True)
    vecs = np.concatenate(parts) if parts else np.zeros((0, embedder.dimension), dtype=np.float32)
    print(f"embedded {len(texts)} chunks in {time.perf_counter() - t0:.0f} s")
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vecs)
    tmp.replace(path)
    for part in CACHE_DIR.glob(f"{path.stem}.part*.npy"):
        part.unlink()
    return vecs
