"""/api/documents on a real Ingestor: upload bytes, list, delete with verification, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fixtures.make_docs import SECTIONS_NL, docx_bytes
from ingest_support import make_ingestor

from serving.http.errors import install_error_handlers
from serving.it.documents.router import make_router
from vraagbaak_core.types import Identity


def _it() -> Identity:
    return Identity(user_id="it-beheer", roles=frozenset({"ingest"}), manages=frozenset({"zorg", "ict", "x"}))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    ingestor = make_ingestor(tmp_path_factory.mktemp("api"))
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_router(_it))
    app.state.ingestor = ingestor
    with TestClient(app) as c:
        yield c
    ingestor.close()
    ingestor.store.close()


def test_upload_list_delete(client: TestClient, tmp_path: Path) -> None:
    data = docx_bytes("Hygiënebeleid", SECTIONS_NL)
    files = {"file": ("hygiëne beleid.docx", data, "application/octet-stream")}
    r = client.post("/api/documents", files=files, data={"groups": "zorg, ict", "classification": "intern"})
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["status"] == "added" and up["source"] == "uploads/hygiëne beleid.docx" and up["chunks"] >= 1
    form = {"groups": "zorg,ict", "classification": "intern"}
    again = client.post("/api/documents", files=files, data=form)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"

    listed = client.get("/api/documents").json()["data"]
    doc = next(d for d in listed if d["doc_id"] == up["doc_id"])
    assert doc["groups"] == ["zorg", "ict"] and doc["classification"] == "intern"
    assert doc["chunks"] == up["chunks"]

    d = client.delete(f"/api/documents/{up['doc_id']}")
    assert d.status_code == 200
    assert d.json() == {"doc_id": up["doc_id"], "deleted_chunks": up["chunks"], "verified": True}
    assert client.delete(f"/api/documents/{up['doc_id']}").status_code == 404
    assert all(x["doc_id"] != up["doc_id"] for x in client.get("/api/documents").json()["data"])


def test_upload_errors_use_the_envelope(client: TestClient) -> None:
    junk = {"file": ("junk.txt", b"\x00\x01\x02" * 50, "text/plain")}
    r = client.post("/api/documents", files=junk, data={"groups": "zorg"})
    assert r.status_code == 422 and "binary data" in r.json()["error"]["message"]
    ok = {"file": ("a.md", b"# A\n\ntekst", "text/markdown")}
    r = client.post("/api/documents", files=ok)
    assert r.status_code == 422 and "no access groups" in r.json()["error"]["message"]
    r = client.post("/api/documents", files=ok, data={"groups": "x", "classification": "topgeheim"})
    assert r.status_code == 400 and "allowed" in r.json()["error"]["message"]
    assert client.post("/api/documents", data={"groups": "x"}).status_code == 400  # no file part
