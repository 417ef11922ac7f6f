"""The staff page's API: page and headers, originals (access, audit, erasure), feedback and its export, CLI."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support import EXAMPLES, make_settings

KEY_A, KEY_B = "key-zorg-a-0123456789", "key-directie-b-0123456789"


def _keys() -> list[dict[str, Any]]:
    from serving.http.auth import hash_key

    return [
        {"key_sha256": hash_key(KEY_A), "user_id": "verpleegkundige-a", "roles": ["staff"], "groups": ["zorg"],
         "clearance": "intern"},
        {"key_sha256": hash_key(KEY_B), "user_id": "directeur-b", "roles": ["staff"], "groups": ["directie"],
         "clearance": "vertrouwelijk"},
    ]


def two_group_docs(tmp: Path) -> Path:
    """The sample PDF for group ``zorg`` and the confidential board memo for group ``directie``."""
    docs = tmp / "docs"
    (docs / "zorg").mkdir(parents=True)
    (docs / "directie").mkdir()
    shutil.copy(EXAMPLES / "afdeling" / "decubituspreventie.pdf", docs / "zorg")
    shutil.copy(EXAMPLES / "directie" / "reorganisatie-2027.md", docs / "directie")
    (docs / "vraagbaak.yaml").write_text(
        "classification: intern\nrules:\n  - match: 'zorg/'\n    groups: [zorg]\n"
        "  - match: 'directie/'\n    groups: [directie]\n    classification: vertrouwelijk\n", encoding="utf-8")
    return docs


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, embedder: Any, generator: Any) -> Iterator[dict[str, Any]]:
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components

    tmp = tmp_path_factory.mktemp("staff")
    settings = make_settings(tmp, auth={"mode": "api-key", "api_keys": _keys()}, generator={"max_tokens": 12})
    comps = build_components(settings, embedder=embedder, generator=generator)
    assert comps.ingestor is not None
    report = comps.ingestor.ingest_paths([two_group_docs(tmp)], Labels())
    assert not report.failed, report.failed
    docs = {d.source: d for d in comps.ingestor.list_documents()}
    with TestClient(create_app(settings, comps)) as client:
        yield {"client": client, "comps": comps, "settings": settings, "docs": docs, "tmp": tmp}
    comps.ingestor.close()
    comps.store.close()


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _audit(env: dict[str, Any], event: str) -> list[dict[str, Any]]:
    path = env["settings"].resolve(env["settings"].audit.path)
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["event_type"] == event]


def test_page_and_strict_headers(env: dict[str, Any]) -> None:
    c = env["client"]
    for path in ("/", "/chat"):
        r = c.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert '<html lang="nl">' in r.text and "/static/app/app.js" in r.text
        assert "<script>" not in r.text and "http" not in r.text.replace("http-equiv", "")  # no inline, no CDN
    csp = r.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    script = directives["script-src"].split()
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script and "'self'" in script
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
    js = c.get("/static/app/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert js.headers["content-security-policy"] == csp  # every response, API and assets too
    pdfjs = c.get("/static/vendor/pdfjs/build/pdf.mjs")
    assert pdfjs.status_code == 200 and "javascript" in pdfjs.headers["content-type"]
    cfg = c.get("/api/config").json()
    assert cfg["auth"] == "api-key" and cfg["pdf_viewer"] is True and "oidc" not in cfg


def test_content_same_access_check_as_retrieval_and_audited(env: dict[str, Any]) -> None:
    c, docs = env["client"], env["docs"]
    pdf, memo = docs["zorg/decubituspreventie.pdf"], docs["directie/reorganisatie-2027.md"]
    r = c.get(f"/api/documents/{pdf.doc_id}/content", headers=_h(KEY_A))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content == (EXAMPLES / "afdeling" / "decubituspreventie.pdf").read_bytes()
    assert "sandbox" in r.headers["content-security-policy"] and r.headers["cache-control"] == "private, no-store"
    # group A may not see the board memo: the same 404 as for a document that does not exist
    hidden = c.get(f"/api/documents/{memo.doc_id}/content", headers=_h(KEY_A))
    missing = c.get("/api/documents/00000000-0000-5000-8000-000000000000/content", headers=_h(KEY_A))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["code"] == missing.json()["error"]["code"] == "document_not_found"
    assert c.get(f"/api/documents/{pdf.doc_id}/content", headers=_h(KEY_B)).status_code == 404
    memo_b = c.get(f"/api/documents/{memo.doc_id}/content", headers=_h(KEY_B))
    assert memo_b.status_code == 200 and memo_b.headers["content-type"].startswith("text/plain")
    assert c.get(f"/api/documents/{pdf.doc_id}/content").status_code == 401
    views = _audit(env, "document.view")
    outcomes = [(v["user_id"], v["objects"][0]["id"], v["outcome"]) for v in views]
    assert ("verpleegkundige-a", pdf.doc_id, "success") in outcomes
    assert ("verpleegkundige-a", memo.doc_id, "refused") in outcomes
    assert all(v["action"] == "R" and "question" not in v for v in views)
    assert "Reorganisatie" not in json.dumps(views)  # ids only, never a title or text


def test_feedback_round_trip_metrics_audit_and_export(env: dict[str, Any], capsys: Any) -> None:
    from serving.cli.feedback import write_export

    c = env["client"]
    q = "Hoe vaak wisselligging bij verhoogd risico op decubitus?"
    r = c.post("/v1/chat/completions", headers=_h(KEY_A),
               json={"model": "vraagbaak", "messages": [{"role": "user", "content": q}]})
    assert r.status_code == 200, r.text
    body = r.json()
    answer_id = body["id"]
    sources = body["choices"][0]["message"]["sources"]
    assert sources and all(s["text"] for s in sources)  # the source panel shows the passage itself
    # another user cannot vote on this answer, nor can anyone on an unknown id
    other = c.post("/api/feedback", headers=_h(KEY_B), json={"answer_id": answer_id, "vote": "up"})
    assert other.status_code == 404
    assert c.post("/api/feedback", headers=_h(KEY_A), json={"answer_id": "chatcmpl-x", "vote": "up"}).status_code == 404
    assert c.post("/api/feedback", headers=_h(KEY_A), json={"answer_id": answer_id, "vote": "meh"}).status_code == 400
    fb = c.post("/api/feedback", headers=_h(KEY_A),
                json={"answer_id": answer_id, "vote": "down", "comment": "Schema klopt niet"})
    assert fb.status_code == 201, fb.text
    fid = fb.json()["feedback_id"]
    assert 'vraagbaak_feedback_total{vote="down"} 1.0' in c.get("/metrics").text
    rec = _audit(env, "feedback.submit")[-1]
    assert rec["user_id"] == "verpleegkundige-a" and rec["action"] == "C"
    assert {(o["type"], o["id"]) for o in rec["objects"]} == {("answer", answer_id), ("feedback", fid)}
    assert "Schema" not in json.dumps(rec)

    rows = list(env["comps"].feedback.export())
    assert [r.feedback_id for r in rows] == [fid]
    row = rows[0]
    assert row.vote == "down" and row.comment == "Schema klopt niet" and row.question
    pdf = env["docs"]["zorg/decubituspreventie.pdf"]
    # no version stated: the content hash, marked as such
    assert [(d.doc_id, d.version) for d in row.documents] == [(pdf.doc_id, f"sha256:{pdf.sha256[:12]}")]
    assert row.answer_text is None  # feedback.store_answers is off by default

    import io

    out = io.StringIO()
    assert write_export(rows, "jsonl", out, include_question=False) == 1
    line = json.loads(out.getvalue())
    assert line["question"] is None and line["vote"] == "down" and line["documents"][0]["doc_id"] == pdf.doc_id
    out = io.StringIO()
    write_export(rows, "csv", out, include_question=True)
    assert out.getvalue().splitlines()[0].startswith("feedback_id,created_at,answer_id,vote")
    assert f"{pdf.doc_id}@sha256:{pdf.sha256[:12]}" in out.getvalue() and q in out.getvalue()  # its version


def test_erasure_removes_the_stored_original(env: dict[str, Any]) -> None:
    from ingest.manifest import Labels

    comps, c = env["comps"], env["client"]
    extra = env["tmp"] / "extra" / "zorg"
    extra.mkdir(parents=True)
    (extra / "wondzorg.md").write_text("# Wondzorg\n\nVerbind een wond elke dag met steriel gaas.\n", encoding="utf-8")
    res = comps.ingestor.ingest_paths([extra.parent], Labels(groups=("zorg",)))
    doc_id = res.results[0].doc_id
    stored = comps.ingestor.originals.path(doc_id)
    assert stored.read_bytes() == (extra / "wondzorg.md").read_bytes()
    assert c.get(f"/api/documents/{doc_id}/content", headers=_h(KEY_A)).status_code == 200
    comps.ingestor.delete_document(doc_id)
    assert not stored.exists() and not any(p.name == doc_id for p in stored.parent.parent.rglob("*"))
    assert c.get(f"/api/documents/{doc_id}/content", headers=_h(KEY_A)).status_code == 404


def test_documents_list_fits_80_columns(env: dict[str, Any]) -> None:
    from serving.cli.ingest import narrow_table

    docs = env["comps"].ingestor.list_documents()
    lines = narrow_table(docs, 80)
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].split() == ["ID", "TITLE", "LABELS", "CHUNKS"] and len(lines) == len(docs) + 2
    memo = env["docs"]["directie/reorganisatie-2027.md"]
    row = next(line for line in lines if line.startswith(memo.doc_id[:8]))
    assert "vertrouwelijk" in row and row.rstrip().endswith(str(memo.chunks))


def test_serve_host_override_is_checked(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from serving.cli.main import app

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\naudit:\n  path: {tmp_path}/audit.jsonl\nauth:\n  mode: insecure-dev\n")
    r = CliRunner().invoke(app, ["serve", "--config", str(cfg), "--host", "0.0.0.0", "--port", "8765"])
    assert r.exit_code == 2 and "insecure-dev" in r.output and "'0.0.0.0'" in r.output
