"""Hybrid fusion done next to the store, from one batched round trip (dense list + sparse list).

Qdrant's query API can fuse (RRF, DBSF) server-side, but the retriever also needs each input's
best score for its relevance gate and the best sparse hit for the lexical coverage; asking for
those separately cost four queries per hybrid search. Here the two candidate lists come back in
one ``VectorStore.query_batch`` call and are fused in Python, with the same formulas as Qdrant:

- RRF: ``sum_i w_i / (k + rank_i)`` (rank from 0, as in Qdrant), over the lists that hold the point, with the
  weights scaled to average 1 as Qdrant does;
- DBSF: each list's scores mapped by ``(s - (mean - 3 sd)) / (6 sd)`` (sample sd; not clipped),
  then summed with the weights (Qdrant's DBSF is the unweighted case).

Ties are broken by the dense rank, then the sparse rank, so a fused list is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from vraagbaak_core.types import FusionParams, Hit


def _dbsf_norm(hits: Sequence[Hit]) -> list[float]:
    if not hits:
        return []
    scores = [h.score for h in hits]
    mean = sum(scores) / len(scores)
    sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / max(len(scores) - 1, 1))
    low, high = mean - 3 * sd, mean + 3 * sd
    if high <= low:
        return [0.5] * len(scores)
    return [(s - low) / (high - low) for s in scores]


def fuse(dense: Sequence[Hit], sparse: Sequence[Hit], params: FusionParams, limit: int) -> list[Hit]:
    """The fused ranking of a dense and a sparse candidate list (each best first), ``limit`` long."""
    w_dense, w_sparse = params.weights
    if params.method == "rrf" and w_dense + w_sparse > 0:
        scale = 2.0 / (w_dense + w_sparse)
        w_dense, w_sparse = w_dense * scale, w_sparse * scale
    scores: dict[str, float] = {}
    first: dict[str, tuple[int, int, Hit]] = {}
    big = len(dense) + len(sparse) + 1
    for which, (hits, weight) in enumerate(((dense, w_dense), (sparse, w_sparse))):
        if params.method == "rrf":
            contrib = [weight / (params.k + rank) for rank in range(len(hits))]
        else:
            contrib = [weight * v for v in _dbsf_norm(hits)]
        for rank, (h, c) in enumerate(zip(hits, contrib, strict=True)):
            cid = h.chunk.chunk_id
            scores[cid] = scores.get(cid, 0.0) + c
            d_rank, s_rank, hit = first.get(cid, (big, big, h))
            first[cid] = (rank, s_rank, hit) if which == 0 else (d_rank, rank, hit)
    order = sorted(scores, key=lambda c: (-scores[c], first[c][0], first[c][1]))
    return [Hit(chunk=first[c][2].chunk, score=scores[c]) for c in order[:limit]]
