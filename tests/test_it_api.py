"""IT's routes behind ``/beheer`` (issue 21): reviews due, the quarantine, feedback, egress.

Real components: uvicorn, the packaged embedder, Qdrant Edge, the patient-data guard (deduce), the file
audit chain. The server enforces every role; a staff user gets 403 from each route.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fixtures.patient_docs import bsn
from support import LiveServer, make_settings

from vraagbaak_core.audit import parse_timestamp, read_records

KEYS = {
    "staff": "key-it-staff-0123456789",
    "ingest": "key-it-ingest-0123456789",
    "privacy": "key-it-privacy-0123456789",
    "auditor": "key-it-auditor-0123456789",
}
THE_BSN = bsn(__import__("random").Random(21))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[dict[str, Any]]:
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components
    from serving.http.auth import hash_key

    tmp = tmp_path_factory.mktemp("itapi")
    docs = tmp / "docs"
    docs.mkdir()
    (docs / "decubitus.md").write_text(
        "---\nstatus: vastgesteld\nversion: '2'\nreview_date: 2020-03-01\nowner: Wondzorg\n---\n"
        "# Decubitus\n\nWissel elke drie uur van houding bij een Bradenscore van 10 tot 12.\n", encoding="utf-8")
    (docs / "brief.md").write_text(
        f"# Ontslagbrief\n\nBetreft mevrouw J. de Vries, geboren 12-03-1961, BSN {THE_BSN}, opgenomen op "
        "Cardiologie. Zij woont aan de Kerkstraat 12 in Utrecht.\n", encoding="utf-8")
    keys = [
        {"key_sha256": hash_key(KEYS["staff"]), "user_id": "nurse-1", "roles": ["staff"], "groups": ["zorg"]},
        {"key_sha256": hash_key(KEYS["ingest"]), "user_id": "am-1", "roles": ["ingest"], "groups": ["zorg"],
         "manages": ["zorg"]},
        {"key_sha256": hash_key(KEYS["privacy"]), "user_id": "privacy-1", "roles": ["admin"], "groups": []},
        {"key_sha256": hash_key(KEYS["auditor"]), "user_id": "fg-1", "roles": ["auditor"], "groups": []},
    ]
    settings = make_settings(tmp, auth={"mode": "api-key", "api_keys": keys}, limits={"rate_per_minute": 1000})
    comps = build_components(settings, embedder=embedder)
    assert comps.ingestor is not None
    comps.ingestor.ingest_paths([docs], Labels(groups=("zorg",)))
    with LiveServer(create_app(settings, comps)) as srv:
        yield {"url": srv.url, "comps": comps}


def get(live: dict[str, Any], path: str, who: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{live['url']}{path}", params=params, headers={"Authorization": f"Bearer {KEYS[who]}"},
                     timeout=60)


def test_due_lists_the_overdue_review(live: dict[str, Any]) -> None:
    r = get(live, "/api/admin/due", "ingest", within="30d")
    assert r.status_code == 200, r.text
    items = r.json()["data"]
    assert [(i["what"], i["due"], i["owner"]) for i in items] == [("review", "2020-03-01", "Wondzorg")]
    assert items[0]["days"] < 0
    assert get(live, "/api/admin/due", "ingest", within="soon").status_code == 400


def test_quarantine_shows_counts_never_values_and_release_is_audited_first(live: dict[str, Any]) -> None:
    r = get(live, "/api/quarantine", "privacy")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [e["source"].rsplit("/", 1)[-1] for e in body["data"]] == ["brief.md"]
    assert body["totals"].get("bsn") == 1
    assert THE_BSN not in r.text and "de Vries" not in r.text and "1961" not in r.text
    entry = body["data"][0]
    bad = httpx.post(f"{live['url']}/api/quarantine/{entry['id']}/release", json={"reason": ""},
                     headers={"Authorization": f"Bearer {KEYS['privacy']}"}, timeout=60)
    assert bad.status_code == 400  # a reason is required
    ok = httpx.post(f"{live['url']}/api/quarantine/{entry['id']}/release",
                    json={"reason": "fictieve testbrief, geen echte patiënt"},
                    headers={"Authorization": f"Bearer {KEYS['privacy']}"}, timeout=60)
    assert ok.status_code == 200, ok.text
    out = ok.json()
    assert out["released"] and out["released_by"] == "privacy-1"
    recs = [x for x in read_records(live["comps"].audit.path)
            if x["event_type"] == "document.update" and entry["id"] in (x.get("outcome_reason") or "")]
    assert len(recs) == 1 and recs[0]["user_id"] == "privacy-1" and recs[0]["role"] == "admin"
    assert "fictieve testbrief" in recs[0]["outcome_reason"]
    assert parse_timestamp(recs[0]["timestamp"]).replace(microsecond=0) <= parse_timestamp(out["released_at"])
    again = httpx.post(f"{live['url']}/api/quarantine/{entry['id']}/release", json={"reason": "nog eens"},
                       headers={"Authorization": f"Bearer {KEYS['privacy']}"}, timeout=60)
    assert again.status_code == 409


def test_feedback_summary_puts_niet_nuttig_first_and_exports(live: dict[str, Any]) -> None:
    hdr = {"Authorization": f"Bearer {KEYS['staff']}"}
    ids = []
    for q in ("Hoe vaak wissel ik van houding bij Bradenscore 11?", "Wat is de Bradenscore?"):
        r = httpx.post(f"{live['url']}/v1/chat/completions", headers=hdr, timeout=120,
                       json={"model": "vraagbaak", "messages": [{"role": "user", "content": q}]})
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    for aid, vote in zip(ids, ("down", "down"), strict=True):
        f = httpx.post(f"{live['url']}/api/feedback", headers=hdr, timeout=60,
                       json={"answer_id": aid, "vote": vote, "comment": "klopt niet"})
        assert f.status_code == 201, f.text
    s = get(live, "/api/feedback/summary", "ingest")
    assert s.status_code == 200, s.text
    body = s.json()
    assert body["down"] == 2 and body["documents"][0]["down"] >= 1
    assert "klopt niet" in body["documents"][0]["comments"]
    csv_ = get(live, "/api/feedback/export", "ingest", format="csv")
    assert csv_.status_code == 200 and csv_.text.count("klopt niet") == 2
    lines = get(live, "/api/feedback/export", "ingest", format="jsonl").text.splitlines()
    assert {json.loads(x)["vote"] for x in lines} == {"down"}


def test_egress_shows_the_running_allowlist(live: dict[str, Any]) -> None:
    r = get(live, "/api/admin/egress", "auditor")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["allowlist"].startswith("loopback")
    assert body["offline_env"].get("HF_HUB_OFFLINE") == "1"


@pytest.mark.parametrize("path", ["/api/admin/due", "/api/quarantine", "/api/feedback/summary",
                                  "/api/feedback/export", "/api/admin/egress", "/api/audit/report"])
def test_staff_get_403_from_every_it_route(live: dict[str, Any], path: str) -> None:
    assert get(live, path, "staff").status_code == 403
    assert httpx.get(f"{live['url']}{path}", timeout=30).status_code == 401
