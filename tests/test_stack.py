"""The stack, for real (deploy/compose/compose.stack.yaml with podman-compose, scripts/stack):
nginx terminating TLS from a CA this test makes, the API image behind it, PostgreSQL for the catalog
and the audit chain, and the real OpenID provider (npm oidc-provider, Keycloak-shaped, tests/idp) on
the same internal CA. vLLM is absent, so answers are the extractive fallback, marked.

End to end, through nginx only:
- IT (an OIDC identity with the ingest role) uploads the protocol PDF, a scanned PDF (OCR makes it
  answerable) and a letter with a BSN (quarantined);
- a nurse signs in on the page in headless Chromium (authorization code + PKCE at the provider), asks a
  Dutch question, opens the cited passage on its PDF page, and signs out;
- the auditor verifies the chain in PostgreSQL, whose records carry the workstation's address (what
  nginx saw as the client), not nginx's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from container_support import ROOT, podman, podman_env, require_image
from fixtures.scans import PAGES_NL, image_pdf, scan_png

pytestmark = [pytest.mark.stack, pytest.mark.browser, pytest.mark.slow]

idp_support = pytest.importorskip("idp_support", reason="tests/idp_support.py (the real OpenID provider)")

CHROMIUM = Path("/usr/bin/chromium")
STACK = ROOT / "scripts" / "stack"
PROJECT = "vbstack"
QUESTION = "Hoe en wanneer beoordeel je het risico op decubitus?"
SCAN_QUESTION = "Wanneer controleer je het valrisico met de vragenlijst?"
BSN_LETTER = "# Brief\n\nBetreft mevrouw S. de Vries, BSN 111222333, opname op de IC.\n"
USERS = [
    {"username": "verpleegkundige", "password": secrets.token_urlsafe(12), "groups": ["zorg"], "roles": ["staff"],
     "clearance": "intern"},
    {"username": "it-beheer", "password": secrets.token_urlsafe(12), "groups": ["zorg"], "roles": ["ingest"],
     "manages": ["zorg"]},
]


def _spki_sha256(cert_pem: Path) -> str:
    """The server key's SPKI hash: Chromium trusts exactly this key (--ignore-certificate-errors-spki-list)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _stack(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(STACK), *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_image()
    why = idp_support.node_ready()
    if why is None and not CHROMIUM.is_file():
        why = "/usr/bin/chromium is missing: run scripts/install-browser"
    if why is not None:
        if os.environ.get("VRAAGBAAK_REQUIRE_IMAGE") == "1":
            pytest.fail(why)
        pytest.skip(why)
    d = tmp_path_factory.mktemp("stack")
    https_port, idp_port = idp_support.free_port(), idp_support.free_port()
    origin = f"https://127.0.0.1:{https_port}"
    pki = idp_support.make_pki(d / "tls", names=("idp",))
    assert (pki.ca_cert.name, pki.cert.name, pki.key.name) == ("ca.pem", "server.pem", "server-key.pem")
    idp = idp_support.RealIdp(workdir=d / "idp", users=USERS, redirect_uris=[origin + "/chat"],
                              web_origins=[origin], port=idp_port, pki=pki)
    cfg = {**idp.config(), "host": "0.0.0.0", "tls": {"cert": "/tls/server.pem", "key": "/tls/server-key.pem"},
           "keys_file": "/realm/signing-keys.json"}
    cfg["clients"][0]["post_logout_redirect_uris"] = [origin + "/"]  # where the page returns after sign-out
    cfg["audience"] = "vraagbaak"  # the shipped realm's audience mapper (deploy/keycloak/vraagbaak-realm.json)
    (d / "idp").mkdir()
    (d / "idp" / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    env = {**podman_env(), "STACK_HTTPS_PORT": str(https_port), "STACK_IDP_PORT": str(idp_port)}
    _stack("down", env=env, timeout=300)  # a stack a killed run left behind
    up = _stack("up", str(d), env=env, timeout=900)
    try:
        assert up.returncode == 0, f"scripts/stack up failed:\n{up.stdout[-4000:]}\n{up.stderr[-6000:]}"
        print(up.stdout.strip())  # "stack: ready in N s": benchmarks/RESULTS.md
        client = httpx.Client(base_url=origin, verify=ssl.create_default_context(cafile=str(pki.ca_cert)),
                              trust_env=False, timeout=300)
        yield {"origin": origin, "idp": idp, "client": client, "dir": d, "env": env, "pki": pki}
        client.close()
    finally:
        logs = _stack("logs", env=env, timeout=300)
        (d / "stack.log").write_text(logs.stdout + logs.stderr, encoding="utf-8")
        _stack("down", str(d), env=env, timeout=300)


def _bearer(stack: dict[str, Any], username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack['idp'].token(username)['access_token']}"}


@pytest.fixture(scope="module")
def uploaded(stack: dict[str, Any]) -> dict[str, Any]:
    """IT uploads through nginx: the protocol PDF, a scanned PDF, and a letter with a BSN."""
    c, it = stack["client"], _bearer(stack, "it-beheer")
    d: Path = stack["dir"]
    pngs = [scan_png(t, 300, d / f"scan{i}.png") for i, t in enumerate(PAGES_NL[1:3])]
    scan = image_pdf(d / "valpreventie-scan.pdf", list(pngs))
    protocol = ROOT / "examples" / "docs" / "afdeling" / "decubituspreventie.pdf"
    out: dict[str, Any] = {}
    for path in (protocol, scan):
        r = c.post("/api/documents", headers=it, data={"groups": "zorg", "classification": "intern"},
                   files={"file": (path.name, path.read_bytes(), "application/pdf")})
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "added" and r.json()["chunks"] >= 1
        out[path.name] = r.json()
    r = c.post("/api/documents", headers=it, data={"groups": "zorg", "classification": "intern"},
               files={"file": ("brief-opname.md", BSN_LETTER.encode(), "text/markdown")})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "quarantined" and "111222333" not in r.text
    out["letter"] = r.json()
    listed = c.get("/api/documents", headers=it)
    assert listed.status_code == 200
    ids = {doc["doc_id"] for doc in listed.json()["data"]}
    assert ids == {out[protocol.name]["doc_id"], out[scan.name]["doc_id"]}  # the letter is not indexed
    return out


def test_scanned_upload_is_answerable_and_answers_are_marked_extractive(
    stack: dict[str, Any], uploaded: dict[str, Any]
) -> None:
    c = stack["client"]
    ready = c.get("/readyz")  # the store answers; vLLM is not in the stack, and readiness says so
    assert ready.json()["checks"] == {"store": "ok", "generator": "unreachable"}, ready.text
    nurse = _bearer(stack, "verpleegkundige")
    r = c.post("/v1/chat/completions", headers=nurse,
               json={"model": "vraagbaak", "messages": [{"role": "user", "content": SCAN_QUESTION}]})
    assert r.status_code == 200, r.text
    msg = r.json()["choices"][0]["message"]
    # vLLM is not in the stack: the extractive answerer stands in, and says so
    assert msg["mode"] == "extractive" and msg["notice"], msg
    scan_id = uploaded["valpreventie-scan.pdf"]["doc_id"]
    cited = [x for x in msg["citations"] if x["doc_id"] == scan_id]
    assert cited and cited[0]["page"] == 1, msg["citations"]
    assert "vragenlijst" in msg["content"]


def test_nurse_signs_in_asks_opens_the_pdf_page_and_signs_out(
    stack: dict[str, Any], uploaded: dict[str, Any]
) -> None:
    from playwright.sync_api import sync_playwright

    origin, idp = stack["origin"], stack["idp"]
    spki = _spki_sha256(stack["pki"].cert)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=[f"--ignore-certificate-errors-spki-list={spki}", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-default-apps"],
        )
        ctx = browser.new_context(locale="nl-NL", service_workers="block", viewport={"width": 1280, "height": 900})
        seen: list[str] = []
        ctx.on("request", lambda req: seen.append(req.url))
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(origin + "/")
        page.wait_for_selector("#oidc-login", state="visible")
        page.click("#oidc-login")
        page.wait_for_url(idp.origin + "/**")
        page.fill("input[name=username]", "verpleegkundige")
        page.fill("input[name=password]", USERS[0]["password"])
        page.click("#kc-login")
        page.wait_for_url(origin + "/chat", timeout=60_000)
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        assert "verpleegkundige" in page.inner_text("#who")
        auth = next(u for u in seen if u.startswith(idp.endpoints["authorization"]))
        assert "code_challenge_method=S256" in auth and "client_id=vraagbaak-web" in auth

        page.fill("#question", QUESTION)
        page.press("#question", "Enter")
        page.wait_for_selector("#conversation li:last-child .answer .actions", timeout=240_000)
        sources = page.locator("#conversation li:last-child .sources button.source")
        assert sources.count() >= 1
        assert "Protocol decubituspreventie" in sources.first.inner_text()
        n = int(sources.first.get_attribute("data-n") or "0")
        sources.first.click()
        page.wait_for_selector("[data-testid=pdf-highlight]", timeout=120_000)
        shown_page = page.get_attribute("[data-testid=pdf-page]", "data-page")
        assert shown_page is not None and int(shown_page) >= 1
        assert page.locator("[data-testid=pdf-highlight]").count() >= 1
        assert "gemarkeerd" in page.inner_text("#viewer-status")
        assert n >= 1

        # sign-out ends the provider's session too (RP-initiated logout), then the page is back, signed out
        page.click("#signout")
        page.wait_for_url(origin + "/", timeout=60_000)  # via the provider's logout endpoint and back
        page.wait_for_selector("#oidc-login", state="visible")
        assert page.locator("#conversation .turn").count() == 0
        assert page.evaluate("() => fetch('/v1/whoami').then(r => r.status)") == 401
        # the provider's session is gone: signing in again asks for the password
        page.click("#oidc-login")
        page.wait_for_selector("input[name=password]", timeout=60_000)
        # the page talked only to its own origin and the provider's sign-in and token endpoints
        off = [u for u in seen if not u.startswith((origin + "/", idp.origin + "/", "data:", "blob:"))]
        assert off == []
        assert errors == []
        ctx.close()
        browser.close()


def _nginx_clients(stack: dict[str, Any]) -> set[str]:
    """The client addresses nginx logged (its access log: `$remote_addr "request" status xff=…`)."""
    logs = podman("logs", f"{PROJECT}_nginx_1", timeout=120)
    return {line.split()[0] for line in (logs.stdout + logs.stderr).splitlines()
            if '"' in line and line.split()[0].count(".") == 3}


def test_auditor_verifies_the_chain_with_the_workstations_address(
    stack: dict[str, Any], uploaded: dict[str, Any]
) -> None:
    c = stack["client"]
    nurse = _bearer(stack, "verpleegkundige")
    who = c.get("/v1/whoami", headers=nurse)
    assert who.status_code == 200, who.text
    user = who.json()["user_id"]
    r = c.post("/v1/chat/completions", headers=nurse,
               json={"model": "vraagbaak", "messages": [{"role": "user", "content": QUESTION}]})
    assert r.status_code == 200
    env = stack["env"]
    cfg = "/etc/vraagbaak/config.yaml"
    verify = subprocess.run([str(STACK), "exec", "api", "vraagbaak", "audit", "verify", "--json", "--config", cfg],
                            capture_output=True, text=True, timeout=300, env=env, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    result = json.loads(verify.stdout.strip().splitlines()[-1])
    assert result["keyed"] and result["records"] >= 5 and not result["errors"]
    export = subprocess.run([str(STACK), "exec", "api", "vraagbaak", "audit", "export", "--user", user,
                             "--config", cfg], capture_output=True, text=True, timeout=300, env=env, check=False)
    assert export.returncode == 0, export.stderr
    records = [json.loads(line) for line in export.stdout.splitlines() if line.startswith("{")]
    questions = [rec for rec in records if rec["event_type"].startswith("chat")]
    assert questions, {rec["event_type"] for rec in records}
    addresses = {rec["network_access_point"] for rec in records}
    inspect = json.loads(podman("inspect", f"{PROJECT}_nginx_1", check=True, timeout=60).stdout)[0]
    nginx_ips = {n["IPAddress"] for n in inspect["NetworkSettings"]["Networks"].values()}
    assert not addresses & nginx_ips, (addresses, nginx_ips)
    clients = _nginx_clients(stack)
    assert addresses and addresses <= clients, (addresses, clients)
    # IT's uploads and the quarantine are in the same chain, from the same workstation
    it_export = subprocess.run([str(STACK), "exec", "api", "vraagbaak", "audit", "export", "--user", "it-beheer",
                                "--config", cfg], capture_output=True, text=True, timeout=300, env=env, check=False)
    it_records = [json.loads(line) for line in it_export.stdout.splitlines() if line.startswith("{")]
    assert {rec["outcome"] for rec in it_records if rec["event_type"].startswith("document")} >= {"success"}
    assert {rec["network_access_point"] for rec in it_records} <= clients
