"""Retrieval benchmark: SciFact (BEIR) with dense, sparse and hybrid search on the embedded store.

    .venv/bin/python benchmarks/retrieval.py            # writes the table into benchmarks/RESULTS.md
    .venv/bin/python benchmarks/retrieval.py --no-write

The corpus is embedded once (vectors cached in .cache/retrieval/, keyed by model and chunk
texts) and indexed once into a Qdrant Edge shard; all three modes query that shard.
Latency per query = embed the query + encode its sparse vector + search (p50/p99).
A fusion sweep re-runs hybrid search with precomputed query vectors over several RRF k /
weights and DBSF, on SciFact and on a small English FAQ-style set where dense is much
stronger than BM25 (benchmarks/data/faq_en). Peer in the same run: the same vectors in
qdrant-client's local mode (hybrid), for nDCG parity and a latency ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._embed_cache import cached_embeddings  # noqa: E402
from retrieval.analysis import detect_language, encoder_from_settings  # noqa: E402
from retrieval.embedders import SentenceTransformerEmbedder  # noqa: E402
from retrieval.evaluation import (  # noqa: E402
    BeirDataset,
    EvalRun,
    Metrics,
    QueryResult,
    corpus_chunks,
    doc_ranking,
    evaluate_modes,
    index_chunks,
    ndcg_at,
)
from retrieval.search import Retriever, fusion_params  # noqa: E402
from retrieval.stores.edge import EdgeStore  # noqa: E402
from retrieval.stores.qdrant import QdrantStore  # noqa: E402
from serving.cli_eval import EVAL_IDENTITY, load_beir  # noqa: E402
from vraagbaak_core.ports import VectorStore  # noqa: E402
from vraagbaak_core.settings import Settings, load_settings  # noqa: E402
from vraagbaak_core.types import Chunk, FusionParams, SparseVector, StoreQuery  # noqa: E402

SCIFACT = ROOT / ".." / "shared" / "data" / "scifact"
FAQ = ROOT / "benchmarks" / "data" / "faq_en"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
START, END = "<!-- retrieval:start -->", "<!-- retrieval:end -->"
DEPTH = 100
FUSIONS: list[FusionParams] = [
    FusionParams("rrf", 60, (1.0, 1.0)),
    FusionParams("rrf", 20, (1.0, 1.0)),
    FusionParams("rrf", 10, (1.0, 1.0)),
    FusionParams("rrf", 20, (1.0, 0.5)),
    FusionParams("rrf", 10, (1.0, 0.6)),
    FusionParams("rrf", 5, (1.0, 0.8)),
    FusionParams("rrf", 2, (1.0, 0.5)),
    FusionParams("rrf", 1, (1.0, 0.3)),
    FusionParams("dbsf"),
]
PEER_QUERIES = 60  # qdrant-client local mode scores in Python: ~1.5 s a query on 10k chunks


def fusion_label(f: FusionParams) -> str:
    return "dbsf" if f.method == "dbsf" else f"rrf k={f.k} w={f.weights[0]:g}/{f.weights[1]:g}"


def adaptive_note(settings: Settings) -> str:
    f = settings.retrieval.fusion
    if not f.adaptive:
        return ""
    return (
        f" where the best sparse hit covers ≥ {f.coverage_fuse_from:g} of the query's terms; "
        f"rrf k={f.band_k} w=1/{f.band_sparse_weight:g} from {f.coverage_dense_below:g}; dense only below"
    )


@dataclass
class Indexed:
    dataset: BeirDataset
    store: VectorStore
    retriever: Retriever
    qvecs: dict[str, tuple[list[float], SparseVector]]
    index_s: float
    chunks: list[Chunk]
    dense: NDArray[np.float32]


def build(
    dataset: BeirDataset,
    embedder: SentenceTransformerEmbedder,
    store: VectorStore,
    settings_path: Path | None,
) -> Indexed:
    settings = load_settings(settings_path)
    encoder = encoder_from_settings(settings.retrieval.sparse)
    chunks = corpus_chunks(
        dataset.corpus.values(), embedder.count_tokens, embedder.max_tokens, detect_language
    )
    dense = cached_embeddings(embedder, [c.text for c in chunks])
    t0 = time.perf_counter()
    store.ensure_collection(embedder.dimension)
    index_chunks(store, chunks, dense, encoder)
    index_s = time.perf_counter() - t0
    print(f"{dataset.name}: {len(dataset.corpus)} docs -> {len(chunks)} chunks, indexed in {index_s:.1f} s")
    retriever = Retriever(embedder, encoder, store, settings.retrieval)
    queries = dataset.judged_queries()
    qvecs = {
        qid: (embedder.embed_query(text).tolist(), encoder.encode_query(text))
        for qid, text in queries.items()
    }
    return Indexed(dataset, store, retriever, qvecs, index_s, chunks, dense)


def fused_run(ix: Indexed, fusion: FusionParams, mode: str = "hybrid") -> EvalRun:
    run = EvalRun()
    limit = int(DEPTH * 1.2)
    for qid, (dense, sparse) in ix.qvecs.items():
        req = StoreQuery(
            mode=mode,  # type: ignore[arg-type]
            limit=limit,
            dense=dense,
            sparse=sparse,
            filter=None,
            prefetch_limit=max(ix.retriever.settings.prefetch_limit, limit),
            fusion=fusion,
        )
        ranking = doc_ranking(ix.store.query(req))
        run.results.append(
            QueryResult(qid, ranking, 0.0, ndcg_at(ranking, ix.dataset.qrels.get(qid, {}), 10))
        )
    return run


def metrics_row(name: str, m: Metrics, latency: bool = True) -> str:
    lat = f"{m.latency_p50_ms:.1f} | {m.latency_p99_ms:.1f}" if latency else "– | –"
    return (
        f"| {name} | {m.ndcg_at_10:.4f} | {m.recall_at_10:.4f} | {m.recall_at_100:.4f} | "
        f"{m.mrr_at_10:.4f} | {lat} | {m.queries} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=SCIFACT)
    parser.add_argument("--faq", type=Path, default=FAQ)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    settings = load_settings(args.config)
    embedder = SentenceTransformerEmbedder.from_settings(settings.embedder)
    default_fusion = fusion_params(settings.retrieval)
    lines: list[str] = []
    header = (
        "| run | nDCG@10 | Recall@10 | Recall@100 | MRR@10 | p50 ms | p99 ms | queries |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    with tempfile.TemporaryDirectory(prefix="vraagbaak-bench-") as tmp:
        sci = build(load_beir(args.data.resolve()), embedder, EdgeStore(Path(tmp) / "scifact"), args.config)
        runs = evaluate_modes(sci.retriever, sci.dataset, ["dense", "sparse", "hybrid"], EVAL_IDENTITY, DEPTH)
        qrels = sci.dataset.qrels
        main_metrics = {mode: run.metrics(qrels) for mode, run in runs.items()}
        lines += [
            f"### SciFact ({len(sci.dataset.corpus)} docs, {len(sci.qvecs)} test queries), Qdrant Edge",
            "",
            f"Default settings: hybrid = {fusion_label(default_fusion)}{adaptive_note(settings)}, prefetch "
            f"{max(settings.retrieval.prefetch_limit, int(DEPTH * 1.2))} per input.",
            "",
            header,
        ]
        lines += [metrics_row(mode, m) for mode, m in main_metrics.items()]
        lines += ["", _serving_latency(sci.retriever, list(sci.dataset.judged_queries().values()))]

        if not args.no_peer:
            peer = QdrantStore(":memory:", "scifact-peer")
            peer.ensure_collection(embedder.dimension)
            index_chunks(peer, sci.chunks, sci.dense, sci.retriever.sparse_encoder)
            peer_retriever = Retriever(embedder, sci.retriever.sparse_encoder, peer, settings.retrieval)
            subset = dict(list(sci.dataset.judged_queries().items())[:PEER_QUERIES])
            peer_set = BeirDataset(sci.dataset.corpus, subset, sci.dataset.qrels, sci.dataset.name)
            pm = evaluate_modes(peer_retriever, peer_set, ["hybrid"], EVAL_IDENTITY, DEPTH)["hybrid"].metrics(
                qrels
            )
            em = runs["hybrid"].metrics(qrels, only=set(subset))
            lines.append(metrics_row(f"Qdrant Edge hybrid, first {PEER_QUERIES} queries", em))
            lines.append(
                metrics_row(f"peer: qdrant-client local mode hybrid, first {PEER_QUERIES} queries", pm)
            )
            ratio = pm.latency_p50_ms / max(em.latency_p50_ms, 1e-9)
            lines += ["", f"Peer latency ratio (qdrant-client local / Qdrant Edge, hybrid p50): {ratio:.1f}x"]
            peer.close()

        faq = None
        if args.faq.is_dir():
            faq = build(load_beir(args.faq), embedder, EdgeStore(Path(tmp) / "faq"), args.config)

        lines += [
            "",
            "### Fusion sweep (nDCG@10; query vectors precomputed, so no latency)",
            "",
            "| fusion | SciFact | "
            + ("FAQ-en | " if faq else "")
            + "SciFact dense-wins | SciFact sparse-wins |",
            "|---|---|" + ("---|" if faq else "") + "---|---|",
        ]
        dense_q = {r.query_id: r.ndcg10 for r in runs["dense"].results}
        sparse_q = {r.query_id: r.ndcg10 for r in runs["sparse"].results}
        dense_wins = {q for q in dense_q if dense_q[q] - sparse_q[q] >= 0.3}
        sparse_wins = {q for q in dense_q if sparse_q[q] - dense_q[q] >= 0.3}

        def ndcg(run: EvalRun, ix: Indexed, only: set[str] | None = None) -> str:
            return f"{run.metrics(ix.dataset.qrels, only).ndcg_at_10:.4f}"

        for label, mode in (("dense only", "dense"), ("sparse only", "sparse")):
            sr = fused_run(sci, default_fusion, mode)
            cells = [ndcg(sr, sci)]
            if faq:
                cells.append(ndcg(fused_run(faq, default_fusion, mode), faq))
            cells += [ndcg(sr, sci, dense_wins), ndcg(sr, sci, sparse_wins)]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        for fusion in FUSIONS:
            sr = fused_run(sci, fusion)
            cells = [ndcg(sr, sci)]
            if faq:
                cells.append(ndcg(fused_run(faq, fusion), faq))
            cells += [ndcg(sr, sci, dense_wins), ndcg(sr, sci, sparse_wins)]
            mark = " (default fusion; fixed, not adaptive)" if fusion == default_fusion else ""
            lines.append(f"| {fusion_label(fusion)}{mark} | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"dense-wins / sparse-wins: the {len(dense_wins)} / {len(sparse_wins)} SciFact queries where one "
            "input's nDCG@10 beats the other's by ≥ 0.3 (selected per query, so fusion cannot beat the "
            "winner there; they show how much each setting gives up).",
        ]
        if faq:
            faq_runs = evaluate_modes(
                faq.retriever, faq.dataset, ["dense", "sparse", "hybrid"], EVAL_IDENTITY, DEPTH
            )
            lines += [
                "",
                f"### FAQ-en ({len(faq.dataset.corpus)} answers, {len(faq.qvecs)} paraphrased questions), "
                "Qdrant Edge, default settings",
                "",
                header,
            ]
            lines += [metrics_row(mode, run.metrics(faq.dataset.qrels)) for mode, run in faq_runs.items()]
            faq.store.close()
        sci.store.close()

    cpu = platform.processor() or platform.machine()
    lines += [
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores ({cpu}), embedder "
        f"{embedder.name} {embedder.dtype}, torch threads {_torch_threads()}; 5-minute load average at "
        f"the end {os.getloadavg()[1]:.1f} (a shared machine: latencies include contention).",
        "Command: `" + " ".join([".venv/bin/python", "benchmarks/retrieval.py", *sys.argv[1:]]) + "`",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_results(text)


def _serving_latency(retriever: Retriever, queries: list[str]) -> str:
    """What a staff question pays: embed + hybrid search + gate + shaping for the top 10, as serving asks."""
    import time

    import numpy as np

    for q in queries[:3]:
        retriever.search(q, EVAL_IDENTITY, top_k=10)
    ms = []
    for q in queries:
        t0 = time.perf_counter()
        retriever.search(q, EVAL_IDENTITY, top_k=10)
        ms.append((time.perf_counter() - t0) * 1000)
    p50, p99 = np.percentile(ms, 50), np.percentile(ms, 99)
    return (
        f"Serving-path latency (`Retriever.search`, hybrid, top 10 shaped, relevance gate included; the table "
        f"above fetches {int(DEPTH * 1.2)} chunks per query for Recall@100): p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        f"over {len(ms)} queries."
    )


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def write_results(section: str) -> None:
    block = f"{START}\n## Retrieval\n\n{section}\n{END}"
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else "# Benchmark results\n"
    if START in old and END in old:
        new = old[: old.index(START)] + block + old[old.index(END) + len(END) :]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(new, encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
