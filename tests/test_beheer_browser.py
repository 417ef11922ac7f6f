"""``/beheer`` in a real browser (issue 21): Playwright driving Debian's Chromium against the live API on
real components (packaged embedder, Qdrant Edge, the patient-data guard, the file audit chain), axe-core
for WCAG 2.1 A/AA on every section (0 serious or critical violations).

- an IT user uploads, replaces and erases a document;
- a privacy officer releases a quarantined file, and the reason is in the chain;
- an auditor filters the access report by document and by user, exports CSV, and sees the chain verify;
- a staff user sees no section and gets 403 from the API;
- ``/beheer`` answers with the same security headers as ``/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fixtures.patient_docs import bsn
from support import ROOT, LiveServer, make_settings

from vraagbaak_core.audit import read_records

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / ".cache" / "browser-artifacts"
WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
KEYS = {
    "staff": "key-beheer-staff-0123456789",
    "it": "key-beheer-it-0123456789",
    "privacy": "key-beheer-privacy-0123456789",
    "auditor": "key-beheer-auditor-0123456789",
}
THE_BSN = bsn(__import__("random").Random(2121))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[dict[str, Any]]:
    if not CHROMIUM.is_file() or not AXE.is_file():
        pytest.fail("Chromium or axe-core is missing: run scripts/install-browser and scripts/install-frontend")
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components
    from serving.http.auth import hash_key

    tmp = tmp_path_factory.mktemp("beheer")
    docs = tmp / "docs"
    docs.mkdir()
    (docs / "valpreventie.md").write_text(
        "---\nstatus: vastgesteld\nversion: '4'\nfamily: valpreventie\nreview_date: 2021-05-01\nowner: Kwaliteit\n---\n"
        "# Valpreventie\n\nBij een valrisicoscore van 3 of hoger krijgt de patiënt een laag bed en een sensormat.\n",
        encoding="utf-8")
    (docs / "brief.md").write_text(
        f"# Verwijsbrief\n\nBetreft de heer P. Jansen, geboren 04-07-1955, BSN {THE_BSN}, wonende Dorpsweg 3 "
        "te Zwolle.\n", encoding="utf-8")
    keys = [
        {"key_sha256": hash_key(KEYS["staff"]), "user_id": "nurse-7", "roles": ["staff"], "groups": ["zorg"]},
        {"key_sha256": hash_key(KEYS["it"]), "user_id": "appbeheer-1", "roles": ["staff", "ingest"],
         "groups": ["zorg"], "manages": ["zorg"]},
        {"key_sha256": hash_key(KEYS["privacy"]), "user_id": "privacy-1", "roles": ["admin"], "groups": []},
        {"key_sha256": hash_key(KEYS["auditor"]), "user_id": "fg-1", "roles": ["auditor"], "groups": []},
    ]
    settings = make_settings(tmp, auth={"mode": "api-key", "api_keys": keys}, limits={"rate_per_minute": 1000})
    comps = build_components(settings, embedder=embedder)
    assert comps.ingestor is not None
    comps.ingestor.ingest_paths([docs], Labels(groups=("zorg",)))
    from playwright.sync_api import sync_playwright

    with LiveServer(create_app(settings, comps)) as api, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--disable-background-networking", "--no-first-run"])
        r = httpx.post(f"{api.url}/v1/chat/completions", headers={"Authorization": f"Bearer {KEYS['staff']}"},
                       json={"model": "vraagbaak", "messages": [{"role": "user", "content":
                             "Wanneer krijgt een patiënt een sensormat?"}]}, timeout=120)
        assert r.status_code == 200, r.text
        yield {"url": api.url, "browser": browser, "comps": comps, "tmp": tmp}
        browser.close()


def _page(stack: dict[str, Any], who: str) -> tuple[Any, Any]:
    ctx = stack["browser"].new_context(locale="nl-NL", accept_downloads=True, service_workers="block")
    ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(stack["url"]) else r.abort())
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(f"{stack['url']}/beheer")
    page.fill("#api-key", KEYS[who])
    page.press("#api-key", "Enter")
    page.wait_for_selector("#signin", state="hidden")
    return ctx, page


def _axe(page: Any, state: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"beheer-{state.replace(' ', '-')}.png"), full_page=True)
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_A_AA)
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
           if v["impact"] in ("serious", "critical")]
    assert bad == [], f"axe-core serious/critical WCAG 2.1 A/AA violations ({state}): {bad}"
    assert result["passes"], "axe-core ran no rule"


def _tabs(page: Any) -> list[str]:
    return [str(x) for x in page.eval_on_selector_all("#tabs button", "bs => bs.map(b => b.id)")]


def test_beheer_has_the_security_headers_of_the_staff_page(stack: dict[str, Any]) -> None:
    staff, beheer = httpx.get(f"{stack['url']}/", timeout=30), httpx.get(f"{stack['url']}/beheer", timeout=30)
    assert beheer.status_code == 200
    for h in ("content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options"):
        assert beheer.headers.get(h) and beheer.headers.get(h) == staff.headers.get(h), h


def test_it_user_uploads_replaces_and_erases_a_document(stack: dict[str, Any], tmp_path: Path) -> None:
    ctx, page = _page(stack, "it")
    assert _tabs(page) == ["tab-documents", "tab-due", "tab-feedback"]
    page.wait_for_selector("#doc-table tbody tr")
    _axe(page, "documents")
    f1 = tmp_path / "bezoek.md"
    f1.write_text("# Bezoektijden\n\nBezoek is welkom van 14.00 tot 20.00 uur.\n", encoding="utf-8")
    page.set_input_files("#up-file", str(f1))
    page.fill("#up-groups", "zorg")
    page.click("#up-send")
    page.wait_for_function("() => document.getElementById('doc-result').textContent.includes('added')")
    row = page.locator("#doc-table tbody tr", has_text="Bezoektijden")
    assert row.count() == 1
    row.locator("button.replace").click()
    f2 = tmp_path / "bezoek2.md"
    f2.write_text("# Bezoektijden\n\nBezoek is welkom van 15.00 tot 19.30 uur.\n", encoding="utf-8")
    page.set_input_files("#up-file", str(f2))
    page.fill("#up-groups", "zorg")
    page.click("#up-send")
    page.wait_for_function("() => document.getElementById('doc-result').textContent.includes('updated')")
    assert page.locator("#doc-table tbody tr", has_text="Bezoektijden").count() == 1
    page.locator("#doc-table tbody tr", has_text="Bezoektijden").locator("button.erase").click()
    page.click("#confirm-ok")
    page.wait_for_function("() => document.getElementById('doc-result').textContent.includes('Gewist')")
    assert "geverifieerd" in page.text_content("#doc-result")
    assert page.locator("#doc-table tbody tr", has_text="Bezoektijden").count() == 0
    page.click("#tab-due")
    page.wait_for_selector("#due-table tbody tr")
    assert "2021-05-01" in page.text_content("#due-table")
    _axe(page, "due")
    assert page.errors == []  # type: ignore[attr-defined]
    ctx.close()


def test_privacy_officer_releases_a_quarantined_file_with_a_reason(stack: dict[str, Any]) -> None:
    ctx, page = _page(stack, "privacy")
    page.click("#tab-quarantine")
    page.wait_for_selector("#q-table tbody tr")
    assert THE_BSN not in page.content() and "Jansen" not in page.content()
    _axe(page, "quarantine")
    page.click("#q-table tbody tr button.release")
    page.fill("#confirm-reason", "geanonimiseerd voorbeeld voor de scholing")
    page.click("#confirm-ok")
    page.wait_for_function("() => document.getElementById('q-result').textContent.includes('privacy-1')")
    recs = [r for r in read_records(stack["comps"].audit.path) if "scholing" in (r.get("outcome_reason") or "")]
    assert len(recs) == 1 and recs[0]["user_id"] == "privacy-1"
    ctx.close()


def test_auditor_filters_the_report_exports_csv_and_sees_the_chain_verify(stack: dict[str, Any]) -> None:
    doc = next(d.doc_id for d in stack["comps"].ingestor.list_documents() if d.source.endswith("valpreventie.md"))
    ctx, page = _page(stack, "auditor")
    assert _tabs(page) == ["tab-report", "tab-egress"]
    page.fill("#r-doc", doc)
    page.click("#r-run")
    page.wait_for_function("() => document.getElementById('r-chain').textContent.includes('records')")
    assert "nurse-7" in page.text_content("#r-chain") and "geverifieerd" in page.text_content("#r-chain")
    assert page.locator("#r-table tbody tr").count() >= 1
    _axe(page, "report")
    page.fill("#r-doc", "")
    page.fill("#r-user", "nurse-7")
    page.click("#r-run")
    page.wait_for_function("() => document.querySelectorAll('#r-table tbody tr').length > 0")
    users = page.eval_on_selector_all("#r-table tbody tr td:nth-child(2)", "tds => tds.map(t => t.textContent)")
    assert set(users) == {"nurse-7"}
    with page.expect_download() as dl:
        page.click("#r-csv")
    path = dl.value.path()
    assert path is not None and "nurse-7" in Path(path).read_text(encoding="utf-8-sig")
    page.click("#tab-egress")
    page.wait_for_function("() => document.getElementById('eg-allow').textContent.startsWith('loopback')")
    _axe(page, "egress")
    views = [r for r in read_records(stack["comps"].audit.path)
             if r["event_type"] in ("audit.read", "audit.export") and r["user_id"] == "fg-1"]
    assert len(views) >= 3  # two views and the export, each recorded
    ctx.close()


def test_staff_user_sees_no_section_and_gets_403(stack: dict[str, Any]) -> None:
    ctx, page = _page(stack, "staff")
    assert _tabs(page) == []
    assert page.is_visible("#none")
    assert all(page.is_hidden(f"#sec-{s}") for s in ("documents", "due", "quarantine", "feedback", "report", "egress"))
    _axe(page, "no sections")
    for path in ("/api/documents", "/api/quarantine", "/api/audit/report", "/api/admin/egress"):
        code = page.evaluate("async ([p, k]) => (await fetch(p, {headers: {Authorization: 'Bearer ' + k}})).status",
                             [path, KEYS["staff"]])
        assert code == 403, path
    ctx.close()
