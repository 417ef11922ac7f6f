"""What the care-term list (configs/care_terms.yaml) does to retrieval on the Lindehoven set.

    nice -n 5 .venv/bin/python benchmarks/care_terms.py --split dev
    .venv/bin/python benchmarks/care_terms.py --split dev --weights 0,0.3,0.5,1 -v
    .venv/bin/python benchmarks/care_terms.py --split dev --weights 0,0.5 --across   # issue 17 item 4

One ingest of ``benchmarks/data/hospital/docs`` (default settings, Edge in a temporary directory);
then every question of the split is searched by the product's ``Retriever.search`` (gate and
shaping included) once per query-expansion weight, the documents and their index unchanged
(the list only touches the query). Weight 0 is the list off. Per weight and kind: the expected
document ranked first, the expected document among the ``top_k`` hits, and for unanswerable
questions how often the relevance gate let anything through (lower is better: the answerer
can only abstain on what retrieval hands it). The peer is weight 0, measured in the same run.
``--across`` adds the default list without what issue 17 item 4 added to retrieval (translations at
``translation_weight``, the cross-language fusion rule): the care-term weight for both languages.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.hospital_set import DOCS_DIR, KINDS, Question, load_questions  # noqa: E402
from benchmarks.trust import GROUPS, is_source, settings_for  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--split", choices=("dev", "test", "all"), default="dev")
    ap.add_argument("--weights", default="0,0.5", help="comma-separated care_terms_weight values (0: off)")
    ap.add_argument("--verbose", "-v", action="store_true", help="print questions whose rank-1 document changes")
    ap.add_argument("--across", action="store_true", help=(
        "also the default weight with translations at the same weight and no cross-language fusion rule "
        "(row -1: retrieval before issue 17 item 4)"))
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ingest.manifest import Labels
    from retrieval.analysis import encoder_from_settings
    from serving.components import build_components
    from vraagbaak_core.types import Identity

    weights = [float(w) for w in args.weights.split(",")]
    questions = load_questions(split=None if args.split == "all" else args.split)
    who = Identity("bench", frozenset({"staff"}), frozenset(GROUPS), "intern", "bench")
    with tempfile.TemporaryDirectory(prefix="vraagbaak-care-") as tmp:
        settings = settings_for(Path(tmp))
        comps = build_components(settings)
        try:
            assert comps.ingestor is not None and comps.retriever is not None
            report = comps.ingestor.ingest_paths([DOCS_DIR], Labels(groups=GROUPS))
            assert not report.failed, report.failed
            retriever = comps.retriever
            firsts: dict[float, dict[str, str]] = {}
            rows = []
            variants: list[tuple[float, Any, Any]] = []
            for w in weights:
                base = settings.retrieval.sparse
                sparse = base.model_copy(update={"care_terms_weight": w} if w else {"care_terms": None})
                variants.append((w, sparse, settings.retrieval))
            if args.across:  # issue 17 item 4: the same list without translations that lead across languages
                fusion = settings.retrieval.fusion.model_copy(update={"cross_language_sparse_weight": None})
                sparse = settings.retrieval.sparse.model_copy(
                    update={"translation_weight": settings.retrieval.sparse.care_terms_weight})
                variants.append((-1.0, sparse, settings.retrieval.model_copy(update={"fusion": fusion})))
            for w, sparse, retrieval in variants:
                retriever.sparse_encoder = encoder_from_settings(sparse)
                retriever.settings = retrieval
                firsts[w] = {}
                per: dict[str, list[int]] = {k: [0, 0, 0] for k in KINDS}  # n, first/passed, in top_k
                for q in questions:
                    hits = retriever.search(q.question, who)
                    srcs = [h.chunk.source for h in hits]
                    firsts[w][q.id] = srcs[0] if srcs else ""
                    c = per[q.kind]
                    c[0] += 1
                    if q.kind == "unanswerable":
                        c[1] += bool(hits)
                    else:
                        c[1] += bool(srcs) and is_source(srcs[0], q.expected_docs)
                        c[2] += any(is_source(s, q.expected_docs) for s in srcs)
                rows.append((w, per))
            _print(rows, args.split, settings.retrieval.top_k)
            if args.verbose and len(variants) > 1:
                _changes(questions, firsts, variants[0][0], variants[-1][0])
        finally:
            import asyncio

            asyncio.run(comps.aclose())
    return 0


def _print(rows: list[tuple[float, dict[str, list[int]]]], split: str, top_k: int) -> None:
    print(f"\nLindehoven set, {split} split: expected document first / in top {top_k}; unanswerable: gate passed")
    print("| care_terms_weight | " + " | ".join(KINDS) + " | answerable first | answerable in top_k |")
    print("|---|" + "---|" * (len(KINDS) + 2))
    for w, per in rows:
        cells = []
        for k in KINDS:
            n, a, b = per[k]
            cells.append(f"{a}/{n} passed" if k == "unanswerable" else f"{a} / {b} of {n}")
        ans = [per[k] for k in KINDS if k != "unanswerable"]
        n = sum(x[0] for x in ans)
        cells += [f"{sum(x[1] for x in ans)}/{n}", f"{sum(x[2] for x in ans)}/{n}"]
        label = "default list, no translation weight or cross-language rule" if w < 0 else f"{w:g}"
        print(f"| {label}{' (off)' if not w else ''} | " + " | ".join(cells) + " |")


def _changes(questions: list[Question], firsts: dict[float, dict[str, str]], a: float, b: float) -> None:
    for q in questions:
        x, y = firsts[a][q.id], firsts[b][q.id]
        if x != y:
            ok_x = "ok" if x and is_source(x, q.expected_docs) else "--"
            ok_y = "ok" if y and is_source(y, q.expected_docs) else "--"
            print(f"{q.id} {q.kind}: {q.question}\n   {a:g}: {ok_x} {x or '(none)'}\n   {b:g}: {ok_y} {y or '(none)'}")


if __name__ == "__main__":
    sys.exit(main())
