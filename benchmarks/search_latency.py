"""``Retriever.search`` latency on the Dutch set, through the product's own path (issue 20).

    .venv/bin/python benchmarks/data/make_nl_lohelp.py     # once: .cache/bench/nl_lohelp
    .venv/bin/python benchmarks/search_latency.py [--rounds 2]

The 446 documents of the Dutch set are written as Markdown files and ingested by the real Ingestor
(the default settings: Qdrant Edge in a temporary folder, the embedded default embedder, unit
vectors); then each of its 441 queries goes through ``Retriever.search`` as a nurse of the group
that may read them (embedding, sparse encoding, one store round trip, fusion, access filter,
shaping), after 5 warm-up queries. Prints p50 / p90 / p99 per round.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SET = ROOT / ".cache" / "bench" / "nl_lohelp"


def main() -> None:
    from benchmarks.trust import settings_for
    from ingest.manifest import Labels
    from serving.components import build_components
    from vraagbaak_core.types import Identity

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if not (SET / "corpus.jsonl").is_file():
        raise SystemExit(f"{SET} is missing: run benchmarks/data/make_nl_lohelp.py first")
    work = Path(tempfile.mkdtemp(prefix="vraagbaak-search-"))
    docs = work / "docs"
    docs.mkdir()
    for line in (SET / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        name = d["_id"].replace("/", "__") + ".md"
        (docs / name).write_text(f"# {d.get('title', '')}\n\n{d['text']}\n", encoding="utf-8")
    comps = build_components(settings_for(work))
    assert comps.ingestor is not None
    t0 = time.perf_counter()
    report = comps.ingestor.ingest_paths([docs], Labels(groups=("iedereen",)))
    print(f"ingested {len(report.results)} documents, {report.chunks_embedded} chunks, {len(report.failed)} failed "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)
    who = Identity("nurse", frozenset({"staff"}), frozenset({"iedereen"}), "intern", "benchmark")
    queries = [json.loads(x)["text"] for x in (SET / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    for q in queries[:5]:
        comps.retriever.search(q, who)
    print("| round | queries | p50 ms | p90 ms | p99 ms | 1-min load |\n|---|---:|---:|---:|---:|---:|")
    for r in range(args.rounds):
        times = []
        for q in queries:
            t = time.perf_counter()
            comps.retriever.search(q, who)
            times.append((time.perf_counter() - t) * 1000)
        p50, p90, p99 = (float(np.percentile(times, p)) for p in (50, 90, 99))
        print(f"| {r + 1} | {len(times)} | {p50:.1f} | {p90:.1f} | {p99:.1f} | {os.getloadavg()[0]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
