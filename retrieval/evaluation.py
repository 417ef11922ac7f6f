"""Retrieval evaluation on a BEIR-format set held in memory (reading files is the caller's job).

Evaluation is at document level: a BEIR corpus id is a ``doc_id``; a document longer than
the embedder's input is split into several chunks (never silently truncated) and a
document's score for a query is the best score of its chunks.

Metrics follow BEIR / pytrec_eval: nDCG@10 (linear gain, graded qrels), Recall@10,
Recall@100 (found relevant / all relevant), MRR@10. Latency is per query, wall clock, for
embedding the query, encoding its sparse vector and searching the store.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from vraagbaak_core.ports import SparseEncoder, VectorStore
from vraagbaak_core.types import PUBLIC_GROUP, Chunk, Hit, Identity, SearchMode, StoredPoint

if TYPE_CHECKING:
    from retrieval.search import Retriever

CHUNK_NAMESPACE = uuid.UUID("6f1c7a52-3f0e-4c1e-9a55-0b7e1d2c9a10")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+")


@dataclass(frozen=True)
class BeirDoc:
    doc_id: str
    title: str
    text: str


@dataclass
class BeirDataset:
    corpus: dict[str, BeirDoc]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    name: str = "beir"

    def judged_queries(self) -> dict[str, str]:
        """Queries that have at least one relevance judgement with a positive grade."""
        return {
            qid: text
            for qid, text in self.queries.items()
            if any(g > 0 for g in self.qrels.get(qid, {}).values())
        }


def split_to_fit(
    text: str, count_tokens: Callable[[str], int], max_tokens: int, prefix: str = ""
) -> list[str]:
    """Split ``text`` at sentence (then word) boundaries so that ``prefix + piece`` fits.

    Returns the pieces without the prefix. Nothing is dropped: a single word that alone
    exceeds the budget becomes its own piece (the tokenizer splits it further). Token
    counts of units are added up (exact for word-piece tokenizers, which split at
    whitespace first), so each unit is tokenized once.
    """
    if count_tokens(prefix + text) <= max_tokens:
        return [text]
    special = count_tokens("")
    budget = max_tokens - count_tokens(prefix)
    units: list[tuple[str, int]] = []
    for sentence in _SENTENCE.split(text):
        cost = count_tokens(sentence) - special
        if cost <= budget:
            units.append((sentence, cost))
        else:
            units.extend((w, count_tokens(w) - special) for w in sentence.split())
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for unit, cost in units:
        if current and used + cost > budget:
            pieces.append(" ".join(current))
            current, used = [], 0
        current.append(unit)
        used += cost
    if current:
        pieces.append(" ".join(current))
    return pieces


def chunk_id_for(doc_id: str, index: int) -> str:
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{doc_id}#{index}"))


def corpus_chunks(
    corpus: Iterable[BeirDoc],
    count_tokens: Callable[[str], int],
    max_tokens: int,
    language: Callable[[str], str],
    count_tokens_batch: Callable[[Sequence[str]], list[int]] | None = None,
) -> list[Chunk]:
    """One chunk per document, or several when title + text exceed ``max_tokens``.

    Every chunk text starts with the document title. ``language(text)`` picks the chunk's
    language (e.g. ``retrieval.analysis.detect_language`` or a constant). With
    ``count_tokens_batch`` the token counts are computed in batches (same result, faster).
    """
    docs = list(corpus)
    prefixes = [f"{d.title}\n\n" if d.title else "" for d in docs]
    count = count_tokens
    if count_tokens_batch is not None:
        fulls = [p + d.text for p, d in zip(prefixes, docs, strict=True)]
        known = dict(zip(fulls, count_tokens_batch(fulls), strict=True))
        long_docs = [(p, d) for p, d in zip(prefixes, docs, strict=True) if known[p + d.text] > max_tokens]
        units = {""} | {p for p, _ in long_docs}
        for _, d in long_docs:
            units.update(_SENTENCE.split(d.text))
        unit_list = sorted(units)
        known.update(zip(unit_list, count_tokens_batch(unit_list), strict=True))

        def count(text: str) -> int:
            n = known.get(text)
            return count_tokens(text) if n is None else n

    chunks: list[Chunk] = []
    for doc, prefix in zip(docs, prefixes, strict=True):
        for i, piece in enumerate(split_to_fit(doc.text, count, max_tokens, prefix)):
            text = prefix + piece
            chunks.append(
                Chunk(
                    chunk_id=chunk_id_for(doc.doc_id, i),
                    doc_id=doc.doc_id,
                    index=i,
                    text=text,
                    title=doc.title,
                    source=f"beir:{doc.doc_id}",
                    groups=(PUBLIC_GROUP,),
                    classification="openbaar",
                    language=language(text),
                )
            )
    return chunks


def index_chunks(
    store: VectorStore,
    chunks: Sequence[Chunk],
    dense: NDArray[np.float32],
    encoder: SparseEncoder,
    batch_size: int = 512,
) -> None:
    """Write chunks with their dense vectors (row i for chunk i) and sparse vectors."""
    if len(chunks) != len(dense):
        raise ValueError(f"{len(chunks)} chunks but {len(dense)} dense vectors")
    for start in range(0, len(chunks), batch_size):
        batch = chunks[start : start + batch_size]
        store.upsert(
            [
                StoredPoint(
                    chunk=c,
                    dense=dense[start + i].tolist(),
                    sparse=encoder.encode_document(c.text, c.language),
                )
                for i, c in enumerate(batch)
            ]
        )


def doc_ranking(hits: Sequence[Hit]) -> list[str]:
    """Document ids in order of their best chunk (hits arrive best first)."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit.chunk.doc_id, None)
    return list(seen)


def ndcg_at(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    dcg = sum(qrels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]))
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    relevant = {d for d, g in qrels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr_at(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    for i, d in enumerate(ranking[:k]):
        if qrels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


@dataclass
class QueryResult:
    query_id: str
    ranking: list[str]
    latency_ms: float
    ndcg10: float = 0.0


@dataclass
class Metrics:
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    latency_p50_ms: float
    latency_p99_ms: float
    queries: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "ndcg@10": round(self.ndcg_at_10, 4),
            "recall@10": round(self.recall_at_10, 4),
            "recall@100": round(self.recall_at_100, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "latency_p50_ms": round(self.latency_p50_ms, 2),
            "latency_p99_ms": round(self.latency_p99_ms, 2),
            "queries": self.queries,
        }


@dataclass
class EvalRun:
    results: list[QueryResult] = field(default_factory=list)

    def metrics(self, qrels: Mapping[str, Mapping[str, int]], only: set[str] | None = None) -> Metrics:
        rows = [r for r in self.results if only is None or r.query_id in only]
        if not rows:
            raise ValueError("no queries to score")
        lat = np.array([r.latency_ms for r in rows])

        def mean(fn: Callable[[QueryResult], float]) -> float:
            return float(np.mean([fn(r) for r in rows]))

        return Metrics(
            ndcg_at_10=mean(lambda r: ndcg_at(r.ranking, qrels.get(r.query_id, {}), 10)),
            recall_at_10=mean(lambda r: recall_at(r.ranking, qrels.get(r.query_id, {}), 10)),
            recall_at_100=mean(lambda r: recall_at(r.ranking, qrels.get(r.query_id, {}), 100)),
            mrr_at_10=mean(lambda r: mrr_at(r.ranking, qrels.get(r.query_id, {}), 10)),
            latency_p50_ms=float(np.percentile(lat, 50)),
            latency_p99_ms=float(np.percentile(lat, 99)),
            queries=len(rows),
        )


def run_queries(
    search: Callable[[str], Sequence[Hit]],
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    warmup: int = 3,
) -> EvalRun:
    """Time ``search(query)`` (embed + search) per query and rank documents by best chunk."""
    texts = list(queries.values())
    for text in texts[:warmup]:
        search(text)
    run = EvalRun()
    for qid, text in queries.items():
        t0 = time.perf_counter()
        hits = search(text)
        elapsed = (time.perf_counter() - t0) * 1000.0
        ranking = doc_ranking(hits)
        run.results.append(QueryResult(qid, ranking, elapsed, ndcg_at(ranking, qrels.get(qid, {}), 10)))
    return run


def evaluate_modes(
    retriever: Retriever,
    dataset: BeirDataset,
    modes: Sequence[SearchMode],
    identity: Identity,
    depth: int = 100,
) -> dict[str, EvalRun]:
    """One timed run per mode over the judged queries; chunks fetched = ``depth`` + 20%."""
    queries = dataset.judged_queries()
    limit = int(depth * 1.2)
    runs: dict[str, EvalRun] = {}
    for mode in modes:

        def search(q: str, m: SearchMode = mode) -> list[Hit]:
            return retriever.retrieve_raw(q, identity, mode=m, limit=limit)

        runs[mode] = run_queries(search, queries, dataset.qrels)
    return runs
