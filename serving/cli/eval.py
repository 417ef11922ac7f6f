"""``vraagbaak eval retrieval DIR``: evaluate retrieval on a BEIR-format folder.

DIR holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score`` with a header).
The corpus is ingested into a fresh collection: a temporary Qdrant Edge shard, or
qdrant-client's ``:memory:`` / the configured server (a new collection, dropped afterwards).
"""

from __future__ import annotations

import csv
import json
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from retrieval.analysis import detect_language, encoder_from_settings
from retrieval.evaluation import (
    BeirDataset,
    BeirDoc,
    Metrics,
    corpus_chunks,
    evaluate_modes,
    index_chunks,
)
from retrieval.search import Retriever
from retrieval.stores import build_store
from vraagbaak_core.ports import Embedder
from vraagbaak_core.settings import ConfigError, Settings, load_settings
from vraagbaak_core.types import PUBLIC_GROUP, Identity, SearchMode

app = typer.Typer(help="Evaluate retrieval quality.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Evaluate retrieval quality on BEIR-format question sets."""


EVAL_IDENTITY = Identity(user_id="eval", groups=frozenset({PUBLIC_GROUP}), clearance="openbaar")


class BeirFormatError(ValueError):
    pass


def _read_jsonl(path: Path) -> list[dict[str, object]]:
    if not path.is_file():
        raise BeirFormatError(f"missing {path.name} in {path.parent}")
    rows: list[dict[str, object]] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise BeirFormatError(f"{path}:{n}: not JSON ({err.msg})") from None
            if not isinstance(row, dict) or "_id" not in row:
                raise BeirFormatError(f"{path}:{n}: expected an object with an '_id'")
            rows.append(row)
    return rows


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    """Read a BEIR folder into memory; raises BeirFormatError naming the file and line."""
    corpus = {
        str(r["_id"]): BeirDoc(str(r["_id"]), str(r.get("title") or ""), str(r.get("text") or ""))
        for r in _read_jsonl(folder / "corpus.jsonl")
    }
    queries = {str(r["_id"]): str(r.get("text") or "") for r in _read_jsonl(folder / "queries.jsonl")}
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise BeirFormatError(f"missing qrels/{split}.tsv in {folder}")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.reader(fh, delimiter="\t"), 1):
            if not row or (n == 1 and not row[-1].strip().lstrip("-").isdigit()):
                continue  # header
            if len(row) < 3:
                raise BeirFormatError(f"{qrels_path}:{n}: expected query-id, corpus-id, score")
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels, name=folder.name)


def evaluate_folder(
    settings: Settings,
    dataset: BeirDataset,
    modes: list[SearchMode],
    backend: Literal["edge", "qdrant"],
    language: str = "auto",
    depth: int = 100,
    embedder: Embedder | None = None,
) -> dict[str, Metrics]:
    """Ingest ``dataset`` into a fresh collection and evaluate each mode."""
    if embedder is None:
        from retrieval.embedders import build_embedder

        embedder = build_embedder(settings.embedder)
    encoder = encoder_from_settings(settings.retrieval.sparse)
    pick = detect_language if language == "auto" else (lambda _t: language)
    chunks = corpus_chunks(
        dataset.corpus.values(),
        embedder.count_tokens,
        embedder.max_tokens,
        pick,
        getattr(embedder, "count_tokens_batch", None),
    )
    dense = embedder.embed_documents([c.text for c in chunks])
    with tempfile.TemporaryDirectory(prefix="vraagbaak-eval-") as tmp:
        if backend == "edge":
            store_settings = settings.store.model_copy(
                update={"backend": "edge", "path": Path(tmp) / "shard"}
            )
        else:
            store_settings = settings.store.model_copy(
                update={
                    "backend": "qdrant",
                    "url": settings.store.url if settings.store.backend == "qdrant" else ":memory:",
                    "collection": f"eval-{uuid.uuid4().hex[:12]}",
                }
            )
        run_settings = settings.model_copy(update={"store": store_settings})
        store = build_store(run_settings)
        try:
            store.ensure_collection(embedder.dimension)
            index_chunks(store, chunks, dense, encoder)
            retriever = Retriever(embedder, encoder, store, settings.retrieval)
            runs = evaluate_modes(retriever, dataset, modes, EVAL_IDENTITY, depth)
            out = {mode: run.metrics(dataset.qrels) for mode, run in runs.items()}
            return out
        finally:
            if backend == "qdrant" and store_settings.url != ":memory:":
                drop = getattr(store, "drop_collection", None)
                if callable(drop):
                    drop()
            store.close()


def metrics_table(title: str, results: dict[str, Metrics]) -> Table:
    table = Table(title=title)
    for col in ("mode", "nDCG@10", "Recall@10", "Recall@100", "MRR@10", "p50 ms", "p99 ms", "queries"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for mode, m in results.items():
        table.add_row(
            mode,
            f"{m.ndcg_at_10:.4f}",
            f"{m.recall_at_10:.4f}",
            f"{m.recall_at_100:.4f}",
            f"{m.mrr_at_10:.4f}",
            f"{m.latency_p50_ms:.1f}",
            f"{m.latency_p99_ms:.1f}",
            str(m.queries),
        )
    return table


@app.command("retrieval")
def retrieval_cmd(
    folder: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv")],
    mode: Annotated[
        list[str] | None, typer.Option("--mode", help="dense, sparse or hybrid (repeatable); default all")
    ] = None,
    backend: Annotated[
        str, typer.Option(help="edge (temporary shard) or qdrant (:memory: or server)")
    ] = "edge",
    split: Annotated[str, typer.Option(help="qrels split")] = "test",
    language: Annotated[str, typer.Option(help="auto (detect per document), nl or en")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="settings YAML")] = None,
) -> None:
    """Ingest a BEIR-format folder into a fresh collection and print nDCG@10, recall, MRR, latency."""
    modes = mode or ["dense", "sparse", "hybrid"]
    bad = [m for m in modes if m not in ("dense", "sparse", "hybrid")]
    if bad or backend not in ("edge", "qdrant") or language not in ("auto", "nl", "en"):
        raise typer.BadParameter(
            "--mode must be dense|sparse|hybrid, --backend edge|qdrant, --language auto|nl|en"
        )
    try:
        settings = load_settings(config)
        dataset = load_beir(folder, split)
    except (ConfigError, BeirFormatError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    results = evaluate_folder(settings, dataset, modes, backend, language)  # type: ignore[arg-type]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "dataset": dataset.name,
                    "backend": backend,
                    "results": {k: v.as_dict() for k, v in results.items()},
                },
                indent=2,
            )
        )
    else:
        Console().print(metrics_table(f"{dataset.name} ({backend})", results))
