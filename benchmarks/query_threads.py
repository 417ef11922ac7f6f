"""Short-query latency of the torch embedder backend: 2 threads against 1, same process, two rounds.

    .venv/bin/python benchmarks/query_threads.py [--queries 40]

The first N queries of the Dutch set (benchmarks/data/make_nl_lohelp.py), each through the
adapter's forward pass (``_encode``) with the process's thread pool and with one thread; prints
the p50 per round: what ``embedder.query_threads`` chooses between (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import torch

    from retrieval.embedders import build_embedder
    from vraagbaak_core.settings import EmbedderSettings

    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=40)
    args = ap.parse_args()
    emb = build_embedder(EmbedderSettings(backend="torch", model=".models/multilingual-e5-small-q4-fp32"), ROOT)
    path = ROOT / ".cache" / "bench" / "nl_lohelp" / "queries.jsonl"
    queries = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()][: args.queries]

    def p50(single: bool) -> float:
        times = []
        for q in queries:
            row = emb._ids([q], emb.query_prefix)[0]  # type: ignore[attr-defined]
            t0 = time.perf_counter()
            emb._encode([row], threads=1 if single else None)  # type: ignore[attr-defined]
            times.append(time.perf_counter() - t0)
        return 1000 * float(np.median(times))

    for r in range(2):
        pool, one = p50(False), p50(True)
        print(f"round {r + 1}: {torch.get_num_threads()} threads p50 {pool:.1f} ms | 1 thread p50 {one:.1f} ms")


if __name__ == "__main__":
    main()
