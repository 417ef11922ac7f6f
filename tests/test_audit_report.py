"""The NEN 7513 access report (issue 21): ``GET /api/audit/report`` and ``vraagbaak audit report``.

Real components: uvicorn, the packaged embedder, Qdrant Edge, the file chain (and PostgreSQL's, when the
server is there). Staff ask questions, the auditor asks who was shown a document and what a user saw,
exports CSV with a signed manifest, and the report says whether the chain verifies, also after an edit.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ROOT, LiveServer, make_settings

from vraagbaak_core.audit import AuditLog, Sealer, read_records
from vraagbaak_core.audit_report import (
    ReportFilter,
    access_report,
    canonical_json,
    check_manifest,
)

KEY_NURSE_A = "key-report-nurse-a-0123456789"
KEY_NURSE_B = "key-report-nurse-b-0123456789"
KEY_AUDITOR = "key-report-auditor-0123456789"
HMAC_KEY = "report-test-hmac-key-0123456789"

DOCS = {
    "handhygiene.md": "# Handhygiëne\n\nWrijf de handen 30 seconden in met handalcohol voor en na elk "
                      "patiëntcontact.\n",
    "valpreventie.md": "# Valpreventie\n\nBij een valrisicoscore van 3 of hoger krijgt de patiënt een laag bed en "
                       "een sensormat naast het bed.\n",
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[dict[str, Any]]:
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components
    from serving.http.auth import hash_key

    tmp = tmp_path_factory.mktemp("auditreport")
    (tmp / "docs").mkdir()
    for name, text in DOCS.items():
        (tmp / "docs" / name).write_text(text, encoding="utf-8")
    keys = [
        {"key_sha256": hash_key(KEY_NURSE_A), "user_id": "nurse-a", "roles": ["staff"], "groups": ["zorg"]},
        {"key_sha256": hash_key(KEY_NURSE_B), "user_id": "nurse-b", "roles": ["staff"], "groups": ["zorg"]},
        {"key_sha256": hash_key(KEY_AUDITOR), "user_id": "fg-1", "roles": ["auditor"], "groups": []},
    ]
    settings = make_settings(tmp, auth={"mode": "api-key", "api_keys": keys},
                             audit={"path": tmp / "audit.jsonl", "hmac_key": HMAC_KEY},
                             limits={"rate_per_minute": 1000})
    comps = build_components(settings, embedder=embedder)
    assert comps.ingestor is not None
    rep = comps.ingestor.ingest_paths([tmp / "docs"], Labels(groups=("zorg",)))
    assert not rep.failed
    docs = {d.source.rsplit("/", 1)[-1]: d.doc_id for d in comps.ingestor.list_documents()}
    with LiveServer(create_app(settings, comps)) as srv:
        ask(srv.url, KEY_NURSE_A, "Hoe lang wrijf ik handalcohol in?")
        ask(srv.url, KEY_NURSE_B, "Wanneer krijgt een patiënt een sensormat?")
        yield {"url": srv.url, "comps": comps, "settings": settings, "docs": docs, "tmp": tmp}


def ask(url: str, key: str, question: str) -> None:
    r = httpx.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=120,
                   json={"model": "vraagbaak", "messages": [{"role": "user", "content": question}]})
    assert r.status_code == 200, r.text


def report(live: dict[str, Any], key: str = KEY_AUDITOR, **params: str) -> httpx.Response:
    return httpx.get(f"{live['url']}/api/audit/report", params=params,
                     headers={"Authorization": f"Bearer {key}"}, timeout=60)


def shown(live: dict[str, Any], doc: str) -> set[str]:
    """Who the chain itself says was shown ``doc`` (the oracle the report is checked against)."""
    return {
        str(r["user_id"]) for r in read_records(live["comps"].audit.path)
        if r["event_type"] == "chat.question" and any(o.get("id") == doc for o in r["objects"])
    }


def test_document_filter_lists_the_users_who_were_shown_it(live: dict[str, Any]) -> None:
    doc = live["docs"]["handhygiene.md"]
    r = report(live, document=doc)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "nurse-a" in body["shown_to"]
    assert set(body["shown_to"]) == shown(live, doc)
    assert body["rows"] and all(doc in row["documents"] for row in body["rows"])
    assert body["chain"]["ok"] and body["chain"]["period_ok"] and body["chain"]["keyed"]


def test_user_filter_as_csv_with_a_signed_manifest(live: dict[str, Any]) -> None:
    r = report(live, user="nurse-b", format="csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows and {row["user_id"] for row in rows} == {"nurse-b"}
    assert any(live["docs"]["valpreventie.md"] in row["documents"].split() for row in rows)
    m = json.loads(r.headers["Vraagbaak-Report-Manifest"])
    sealer = Sealer(HMAC_KEY.encode())
    assert m["signature_alg"] == "hmac-sha256" and m["rows"] == len(rows)
    assert check_manifest(m, r.content, sealer) == []
    assert check_manifest(m, r.content.replace(b"nurse-b", b"nurse-x"), sealer)  # an edited export shows
    assert check_manifest({**m, "rows": 0}, r.content, sealer)  # so does an edited manifest


def test_json_manifest_signs_the_report_it_came_with(live: dict[str, Any]) -> None:
    body = report(live, user="nurse-a").json()
    m = body.pop("manifest")
    assert check_manifest(m, canonical_json(body), Sealer(HMAC_KEY.encode())) == []


def test_every_view_is_audited_and_staff_get_403(live: dict[str, Any]) -> None:
    before = [r for r in read_records(live["comps"].audit.path) if r["event_type"] in ("audit.read", "audit.export")]
    assert report(live, document=live["docs"]["valpreventie.md"]).status_code == 200
    after = [r for r in read_records(live["comps"].audit.path) if r["event_type"] in ("audit.read", "audit.export")]
    assert len(after) == len(before) + 1
    assert after[-1]["user_id"] == "fg-1"
    assert any(o["id"] == live["docs"]["valpreventie.md"] for o in after[-1]["objects"])
    assert report(live, KEY_NURSE_A).status_code == 403
    assert httpx.get(f"{live['url']}/api/audit/report", timeout=30).status_code == 401


def test_filters_by_period_and_address(live: dict[str, Any]) -> None:
    assert report(live, address="127.0.0.0/8").json()["matched"] > 0
    assert report(live, address="10.0.0.0/8").json()["matched"] == 0
    assert report(live, **{"from": "2099-01-01"}).json()["matched"] == 0
    bad = report(live, address="not-an-address")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_address"
    assert report(live, **{"from": "2030-01-01", "to": "2020-01-01"}).status_code == 400


def test_an_edited_record_breaks_the_period_that_holds_it(tmp_path: Path) -> None:
    sealer = Sealer(HMAC_KEY.encode())
    log = AuditLog(tmp_path / "a.jsonl", sealer=sealer)
    for i in range(6):
        log.chat_question(user_id=f"u{i % 2}", role="staff", question="q", documents=[(f"d{i}", "intern")],
                          chunk_ids=[f"c{i}"], network_access_point="10.1.2.3")
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    rec = json.loads(lines[3])
    rec["user_id"] = "someone-else"
    lines[3] = json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    rep = access_report(log.sink.entries(), sealer, ReportFilter(user="u1"))
    assert not rep.chain.ok and not rep.chain.period_ok
    assert rep.chain.errors[0]["line"] == 4
    late = json.loads(lines[5])["timestamp"]
    # a later period: it verifies as a period exactly when the broken record is not in it or next to it
    from vraagbaak_core.audit import parse_timestamp

    rep3 = access_report(log.sink.entries(), sealer, ReportFilter(since=parse_timestamp(late)))
    assert not rep3.chain.ok and rep3.chain.period_records == rep3.matched >= 1
    assert rep3.chain.period_ok == (rep3.rows[0].position - 1 > 4)


def test_cli_report_writes_csv_and_manifest_and_checks_them(live: dict[str, Any], tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    s = live["settings"]
    cfg.write_text(json.dumps({
        "data_dir": str(s.data_dir), "store": {"backend": "edge", "path": str(tmp_path / "unused-store")},
        "ingest": {"state_path": str(tmp_path / "state.sqlite")},
        "audit": {"path": str(live["comps"].audit.path)},
    }))
    env = {"VRAAGBAAK_AUDIT__HMAC_KEY": HMAC_KEY, "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}
    out = tmp_path / "rapport.csv"
    vb = [sys.executable, "-c", "from serving.cli.main import main; main()"]
    p = subprocess.run([*vb, "audit", "report", "--config", str(cfg), "--document", live["docs"]["handhygiene.md"],
                        "--format", "csv", "--out", str(out)], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    assert "nurse-a" in out.read_text(encoding="utf-8-sig")
    assert Path(f"{out}.manifest.json").is_file()
    ok = subprocess.run([*vb, "audit", "check-report", str(out), "--config", str(cfg)], capture_output=True,
                        text=True, env=env, cwd=ROOT, timeout=120, check=False)
    assert ok.returncode == 0, ok.stderr
    out.write_text(out.read_text(encoding="utf-8-sig").replace("nurse-a", "nurse-z"), encoding="utf-8-sig")
    bad = subprocess.run([*vb, "audit", "check-report", str(out), "--config", str(cfg)], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=120, check=False)
    assert bad.returncode == 1 and "sha256" in (bad.stdout + bad.stderr)
