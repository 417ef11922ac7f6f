"""Erasure (issue 11, item 3): by doc_id in the store whatever the state says, counted, and vacuumed.

Before: DELETE answered 404 when the state had no row although vectors existed, ``verified`` was
always true, and the erased text stayed in Qdrant Edge's segment files and write-ahead log.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from ingest_support import make_ingestor

from ingest.manifest import Labels
from ingest.state import IngestState
from serving.http.errors import install_error_handlers
from serving.it.documents.router import make_router
from vraagbaak_core.types import Identity

ZORG = Labels(groups=("zorg",))


def _files_holding(root: Path, needle: str) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_erased_canary_is_in_no_file_under_the_data_dir(tmp_path: Path) -> None:
    data, src = tmp_path / "data", tmp_path / "src"
    src.mkdir()
    canary = f"kanarie{uuid.uuid4().hex}"
    (src / "geheim.md").write_text(
        f"# Dossier {canary}\n\nDe patiënt met kenmerk {canary} krijgt valpreventie. " * 20, encoding="utf-8"
    )
    (src / "blijft.md").write_text("# Blijft\n\nHandhygiëne voor en na elk patiëntcontact.", encoding="utf-8")
    ing = make_ingestor(data)
    try:
        report = ing.ingest_paths([src], ZORG)
        assert len(report.added) == 2
        assert _files_holding(data, canary)  # the canary was stored (so the check below can fail)
        doc_id = next(r.doc_id for r in report.added if r.source == "geheim.md")
        assert doc_id is not None
        erasure = ing.erase_document(doc_id)
        assert erasure.removed > 0 and erasure.remaining == 0 and erasure.verified and erasure.vacuumed
        assert _files_holding(data, canary) == []
        assert ing.store.count(doc_id) == 0 and ing.store.count() > 0  # the other document is intact
        assert [d.source for d in ing.list_documents()] == ["blijft.md"]
    finally:
        ing.close()
        ing.store.close()
        ing.state.close()
    assert _files_holding(data, canary) == []


def test_delete_erases_vectors_the_state_does_not_know(tmp_path: Path) -> None:
    ing = make_ingestor(tmp_path)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_router(lambda: Identity(user_id="it", roles=frozenset({"ingest", "admin"}))))
    app.state.ingestor = ing
    try:
        res = ing.ingest_bytes(b"# Wees\n\nVectoren zonder staat: " + b"tekst over wondzorg. " * 30, "w.md", ZORG)
        assert res.doc_id is not None and res.chunks > 0
        other = IngestState(ing.state.path)  # e.g. the state file was restored from an older backup
        other.remove(res.doc_id)
        other.close()
        assert ing.state.get(res.doc_id) is None and ing.store.count(res.doc_id) == res.chunks
        with TestClient(app) as client:
            r = client.delete(f"/api/documents/{res.doc_id}")
            assert r.status_code == 200, r.text
            assert r.json() == {"doc_id": res.doc_id, "deleted_chunks": res.chunks, "verified": True}
            assert ing.store.count(res.doc_id) == 0
            assert client.delete(f"/api/documents/{res.doc_id}").status_code == 404  # now nothing anywhere
    finally:
        ing.close()
        ing.store.close()
