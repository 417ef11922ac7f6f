"""The erasure record says exactly what the backend did (issue 19 item 4): an Edge shard is rebuilt
(vacuumed); on a Qdrant server the points are deleted but nothing is vacuumed from the client, and the
audit reason and the CLI say so instead of "store vacuumed". Real stores, real embedder."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_support import make_settings
from retrieval_fixtures import embedder

from ingest.manifest import Labels
from ingest.pipeline import Ingestor
from ingest.state import IngestState
from retrieval.analysis import Bm25SparseEncoder
from retrieval.stores.edge import EdgeStore
from retrieval.stores.qdrant import QdrantStore
from serving.it.ingest_audit import erasure_reason
from vraagbaak_core.ports import VectorStore


@pytest.mark.parametrize("backend", ["edge", "qdrant-memory"])
def test_the_erasure_reason_says_what_the_backend_did(tmp_path: Path, backend: str) -> None:
    settings = make_settings(tmp_path)
    store: VectorStore = EdgeStore(tmp_path / "edge") if backend == "edge" else QdrantStore(":memory:", "er")
    ing = Ingestor(settings, embedder(), Bm25SparseEncoder(), store, IngestState(settings.ingest.state_path))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Bezoek\n\nBezoek is welkom van 10 tot 20 uur.", encoding="utf-8")
    rep = ing.ingest_paths([tmp_path / "docs"], Labels(groups=("zorg",)))
    (doc_id,) = [r.doc_id for r in rep.results if r.doc_id]
    erasure = ing.erase_document(doc_id)
    reason = erasure_reason(erasure)
    assert erasure.verified and store.count(doc_id) == 0
    if backend == "edge":
        assert "Edge shard rebuilt" in reason and "(vacuumed)" in reason
    else:
        assert "deleted on the Qdrant server" in reason and "not vacuumed" in reason
        assert "store vacuumed" not in reason and "snapshots and backups" in reason
    ing.close()
    store.close()


@pytest.mark.parametrize("backend", ["edge", "qdrant-memory"])
def test_a_prune_reports_what_the_backend_did(tmp_path: Path, backend: str) -> None:
    settings = make_settings(tmp_path)
    store: VectorStore = EdgeStore(tmp_path / "edge") if backend == "edge" else QdrantStore(":memory:", "pr")
    ing = Ingestor(settings, embedder(), Bm25SparseEncoder(), store, IngestState(settings.ingest.state_path))
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("a", "b", "c"):
        (docs / f"{name}.md").write_text(f"# {name}\n\nBezoek {name} is welkom van 10 tot 20 uur.", encoding="utf-8")
    ing.ingest_paths([docs], Labels(groups=("zorg",)))
    (docs / "c.md").unlink()
    rep = ing.ingest_paths([docs], Labels(groups=("zorg",)), prune=True, force=True)
    assert len(rep.with_status("deleted")) == 1
    assert rep.storage == store.vacuum()
    assert ("Edge shard rebuilt" in rep.storage) == (backend == "edge")
    assert "store vacuumed" not in rep.storage
    ing.close()
    store.close()
