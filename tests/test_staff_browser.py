"""The staff page in a real browser: Playwright driving Debian's Chromium (headless, no background
networking), against the live API on real components, axe-core for WCAG 2.1 A/AA, and a real OIDC
provider process (oidc-provider-mock) for sign-in.

Screenshots of the main states are written to ``.cache/browser-artifacts/`` (not committed).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from support import ROOT, LiveServer, make_settings
from test_staff_api import KEY_A, KEY_B, _keys, two_group_docs

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / ".cache" / "browser-artifacts"
# answered (extractively) with two sentences of the PDF, so the answer streams in two steps
QUESTION = "Hoe en wanneer beoordeel je het risico op decubitus?"
WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def _paced_extractive(settings: Any, embedder: Any) -> Any:
    """The extractive generator, its units (each in two SSE pieces) a moment apart: back to back they
    reach the page in one network read, and the page's incremental rendering would go unseen."""
    from serving.staff.generators.extractive import ExtractiveGenerator

    class Paced(ExtractiveGenerator):
        async def stream_from_sources(self, *args: Any, **kwargs: Any) -> Any:
            async for i, piece in _aenumerate(super().stream_from_sources(*args, **kwargs)):
                # each quoted unit in two halves, like a model's tokens: an answer of one unit streams too
                cut = piece.find(" ", len(piece) // 2)
                for j, part in enumerate((piece, "") if cut < 0 else (piece[:cut], piece[cut:])):
                    if part:
                        if i or j:
                            await asyncio.sleep(0.3)
                        yield part

    return Paced.from_settings(settings, embedder)


async def _aenumerate(it: Any) -> Any:
    i = 0
    async for x in it:
        yield i, x
        i += 1


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[dict[str, Any]]:
    if not CHROMIUM.is_file():
        pytest.fail("/usr/bin/chromium is missing: run scripts/install-browser (make test does)")
    if not AXE.is_file():
        pytest.fail("frontend/node_modules is missing: run scripts/install-frontend (make test does)")
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components
    from serving.http.auth import Authenticator

    tmp = tmp_path_factory.mktemp("browser")
    # the product default generator (extractive): deterministic, and it always cites with [n] markers
    settings = make_settings(tmp, auth={"mode": "api-key", "api_keys": _keys()}, generator={"backend": "extractive"})
    comps = build_components(settings, embedder=embedder, generator=_paced_extractive(settings, embedder))
    assert comps.ingestor is not None
    report = comps.ingestor.ingest_paths([two_group_docs(tmp)], Labels())
    assert not report.failed, report.failed
    docs = {d.source: d for d in comps.ingestor.list_documents()}

    # the OIDC app shares the loaded components; only settings and authenticator differ
    idp_port = _free_port()
    idp = f"http://127.0.0.1:{idp_port}"
    client_id = "vraagbaak-page"
    oidc_settings = make_settings(
        tmp, auth={"mode": "oidc", "oidc": {"issuer": idp, "audience": client_id, "jwks_url": f"{idp}/jwks",
                                            "algorithms": ["RS256"]}},
        web={"oidc_client_id": client_id, "oidc_authorization_endpoint": f"{idp}/oauth2/authorize",
             "oidc_token_endpoint": f"{idp}/oauth2/token", "oidc_bearer": "id_token"},
        generator={"backend": "extractive"},
    )
    oidc_comps = dataclasses.replace(comps, settings=oidc_settings, authenticator=Authenticator(oidc_settings.auth))
    dev_settings = make_settings(tmp, auth={"mode": "insecure-dev", "dev_groups": ["zorg"]})
    dev_comps = dataclasses.replace(comps, settings=dev_settings, authenticator=Authenticator(dev_settings.auth))

    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with LiveServer(create_app(settings, comps)) as api, LiveServer(create_app(dev_settings, dev_comps)) as dev:
        oidc_app = LiveServer(create_app(oidc_settings, oidc_comps))
        users = [{"sub": "wijkverpleegkundige", "groups": ["zorg"], "roles": ["staff"], "clearance": "intern"}]
        idp_proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "oidc_idp.py"), str(idp_port), oidc_app.url, json.dumps(users)],
            stdout=subprocess.PIPE, stderr=(tmp / "idp.log").open("w"), text=True,
            env={**os.environ, "NO_COLOR": "1", "PYTHONWARNINGS": "ignore"},
        )
        try:
            assert idp_proc.stdout is not None and idp_proc.stdout.readline().strip() == "ready"
            with oidc_app, sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True,
                    args=["--disable-background-networking", "--disable-component-update", "--no-first-run",
                          "--disable-sync", "--disable-default-apps", "--disable-domain-reliability"],
                )
                yield {"api": api.url, "dev": dev.url, "oidc": oidc_app.url, "idp": idp, "browser": browser,
                       "comps": comps, "docs": docs, "tmp": tmp, "settings": settings}
                browser.close()
        finally:
            idp_proc.terminate()
            idp_proc.wait(timeout=10)
    comps.ingestor.close()
    comps.store.close()


class Recorder:
    """Every request the page makes; anything off the allowed origins is aborted and kept."""

    def __init__(self, context: Any, allowed: tuple[str, ...]) -> None:
        self.requests: list[tuple[str, str]] = []
        self.allowed = allowed

        def route(r: Any) -> None:
            if r.request.url.startswith(allowed) or r.request.url.startswith(("data:", "blob:")):
                r.continue_()
            else:
                r.abort()

        context.route("**/*", route)
        context.on("request", lambda req: self.requests.append((req.url, req.frame.url if req.frame else "")))

    def off_origin(self, origin: str) -> list[str]:
        return [u for u, _ in self.requests if not u.startswith((origin + "/", "data:", "blob:"))]


def _page(stack: dict[str, Any], origin: str, width: int = 1280, height: int = 900,
          allowed: tuple[str, ...] = ()) -> tuple[Any, Any, Recorder]:
    ctx = stack["browser"].new_context(viewport={"width": width, "height": height}, locale="nl-NL",
                                       service_workers="block")
    rec = Recorder(ctx, (origin + "/", *allowed))
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "401" not in m.text
            and "404" not in m.text else None)
    page.errors = errors  # type: ignore[attr-defined]
    return ctx, page, rec


def _axe(page: Any, state: str) -> None:
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_A_AA)
    violations = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]
    assert violations == [], f"axe-core WCAG 2.1 A/AA violations ({state}): {violations}"
    assert result["passes"], "axe-core ran no rule"


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _sign_in_with_key(page: Any, key: str) -> None:
    page.fill("#api-key", key)
    page.press("#api-key", "Enter")
    page.wait_for_selector("#signin", state="hidden")


def _ask(page: Any, question: str) -> None:
    page.evaluate("""() => {
        window.__lengths = [];
        new MutationObserver(() => {
            const a = document.querySelector('#conversation li:last-child .answer-text');
            if (a) window.__lengths.push(a.textContent.length);
        }).observe(document.getElementById('conversation'), {subtree: true, childList: true, characterData: true});
    }""")
    page.fill("#question", question)
    page.press("#question", "Enter")
    page.wait_for_selector("#conversation li:last-child .answer .actions", timeout=240_000)


def _stored_history(page: Any, user: str) -> Any:
    """The user's history as the page keeps it (ui.history: session, the default)."""
    return page.evaluate("u => JSON.parse(sessionStorage.getItem('vraagbaak.history.v2:' + encodeURIComponent(u)))",
                         user)


def _last_turn(page: Any, user: str = "verpleegkundige-a") -> dict[str, Any]:
    hist = _stored_history(page, user)
    turn: dict[str, Any] = hist["current"]["turns"][-1]
    return turn


def test_refused_without_credentials(stack: dict[str, Any]) -> None:
    ctx, page, rec = _page(stack, stack["api"])
    page.goto(stack["api"] + "/")
    page.wait_for_selector("#key-form", state="visible")
    assert page.is_visible("#signin") and not page.is_visible("#oidc-login")
    status = page.evaluate("() => fetch('/v1/whoami').then(r => r.status)")
    assert status == 401
    _axe(page, "sign-in form")
    page.fill("#api-key", "not-a-key-at-all")
    page.press("#api-key", "Enter")
    page.wait_for_function("() => document.getElementById('signin-msg').textContent.includes('niet geaccepteerd')")
    assert page.is_visible("#key-form")
    ctx.close()


def test_ask_stream_markers_pdf_highlight_a11y_feedback_export(stack: dict[str, Any]) -> None:
    origin = stack["api"]
    ctx, page, rec = _page(stack, origin)
    page.goto(origin + "/")
    page.wait_for_selector("#key-form", state="visible")
    _sign_in_with_key(page, KEY_A)
    assert "verpleegkundige-a" in page.inner_text("#who")
    _axe(page, "empty page")
    _shot(page, "01-empty")

    _ask(page, QUESTION)
    turn = _last_turn(page)
    lengths = page.evaluate("() => window.__lengths")
    assert len({n for n in lengths if n > 0}) >= 2, f"the answer did not stream: {lengths}"
    assert turn["answer_id"].startswith("chatcmpl-") and not turn["abstained"]
    markers = page.locator("#conversation li:last-child a.marker")
    assert markers.count() >= 1, turn["answer"]
    sources = page.locator("#conversation li:last-child .sources button.source")
    assert sources.count() >= 1
    assert "Protocol decubituspreventie" in sources.first.inner_text()
    assert "score" in sources.first.inner_text()
    _axe(page, "with an answer")
    _shot(page, "02-answer")

    # click a source: the side panel opens the PDF at the cited page with the passage highlighted
    n = int(sources.first.get_attribute("data-n") or "0")
    cited = next(s for s in turn["sources"] if s["n"] == n)
    assert cited["page"] is not None
    sources.first.click()
    page.wait_for_selector("[data-testid=pdf-highlight]", timeout=60_000)
    assert page.get_attribute("[data-testid=pdf-page]", "data-page") == str(cited["page"])
    boxes = page.locator("[data-testid=pdf-highlight]")
    assert boxes.count() >= 1
    canvas = page.locator("[data-testid=pdf-page] canvas").bounding_box()
    first = boxes.first.bounding_box()
    assert canvas and first and canvas["y"] <= first["y"] <= canvas["y"] + canvas["height"]
    assert "gemarkeerd" in page.inner_text("#viewer-status")
    assert page.locator("#panel-passage mark").count() == 1
    _axe(page, "with the source panel open")
    _shot(page, "03-source-panel")
    page.screenshot(path=str(ARTIFACTS / "staff-page.png"))

    # keyboard: Escape closes the panel and focus returns to the source button
    page.focus("#panel")
    page.keyboard.press("Escape")
    assert page.is_hidden("#panel")

    # marker link opens the same source
    markers.first.click()
    page.wait_for_selector("#panel", state="visible")

    # feedback: thumbs down with a comment, then find it in the export
    page.click("#conversation li:last-child button.vote-down")
    page.fill("#conversation li:last-child textarea.comment", "Het schema voor de drukverlagende matras ontbreekt")
    page.click("#conversation li:last-child button.send-feedback")
    page.wait_for_function("() => document.querySelector('#conversation li:last-child .actions .status')"
                           ".textContent.includes('Dank')")
    cfg = stack["tmp"] / "export.yaml"
    s = stack["settings"]
    cfg.write_text(f"data_dir: {s.data_dir}\naudit:\n  path: {s.audit.path}\n  question_text: full\n"
                   f"store:\n  path: {s.store.path}\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "serving.cli.main", "feedback", "export", "--format", "jsonl",
                          "--config", str(cfg)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    mine = [r for r in rows if r["answer_id"] == turn["answer_id"]]
    assert len(mine) == 1 and mine[0]["vote"] == "down" and "matras" in mine[0]["comment"]
    assert mine[0]["question"] == QUESTION
    pdf = stack["docs"]["zorg/decubituspreventie.pdf"]
    assert pdf.doc_id in {d["doc_id"] for d in mine[0]["documents"]}

    # history: kept per user in sessionStorage; after a reload nothing shows until the same user signs in
    page.reload()
    page.wait_for_selector("#key-form", state="visible")  # the key was in memory only
    assert page.is_hidden("#chat") and page.locator("#conversation .turn").count() == 0
    _sign_in_with_key(page, KEY_A)
    assert page.locator("#conversation .turn").count() == 1
    assert page.evaluate("() => Object.keys(sessionStorage).join(',')").count("vraagbaak.history") == 1
    assert page.evaluate("() => Object.keys(localStorage).join(',')").count("vraagbaak.history") == 0
    assert KEY_A not in page.evaluate("() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
    page.click("#new-conv")
    assert page.locator("#conversation .turn").count() == 0
    page.click("#history summary")
    assert page.locator("#history-list button.past").count() == 1

    # English switch
    page.click("#lang")
    assert page.inner_text("label[for=question]") == "Your question"
    assert page.evaluate("() => document.documentElement.lang") == "en"

    assert rec.off_origin(origin) == [], "the page requested something outside its own origin"
    assert page.errors == []  # type: ignore[attr-defined]
    ctx.close()


def test_phone_width_has_no_horizontal_scroll(stack: dict[str, Any]) -> None:
    ctx, page, rec = _page(stack, stack["dev"], width=360, height=740)
    page.goto(stack["dev"] + "/chat")
    page.wait_for_selector("body[data-ready='1']")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    _axe(page, "phone width")
    _shot(page, "04-phone")
    # insecure-dev: signed in as the dev identity, same-origin requests pass the Host/Origin checks
    assert "dev" in page.inner_text("#who") and page.is_hidden("#signin")
    pdf = stack["docs"]["zorg/decubituspreventie.pdf"]
    assert page.evaluate(f"() => fetch('/api/documents/{pdf.doc_id}/content').then(r => r.status)") == 200
    r = page.evaluate("() => fetch('/api/feedback', {method: 'POST', headers: {'Content-Type': 'application/json'},"
                      " body: JSON.stringify({answer_id: 'chatcmpl-none', vote: 'up'})}).then(r => r.status)")
    assert r == 404  # passed the Origin check, refused only because no such answer exists
    assert rec.off_origin(stack["dev"]) == []
    ctx.close()


def test_group_a_sees_no_group_b_source_or_content(stack: dict[str, Any]) -> None:
    origin = stack["api"]
    memo = stack["docs"]["directie/reorganisatie-2027.md"]
    ctx, page, rec = _page(stack, origin)
    page.goto(origin + "/")
    page.wait_for_selector("#key-form", state="visible")
    _sign_in_with_key(page, KEY_A)
    _ask(page, "Wat zijn de plannen voor de reorganisatie in 2027?")
    turn = _last_turn(page)
    assert memo.doc_id not in {s["doc_id"] for s in turn["sources"] + turn["citations"]}
    assert "Reorganisatie" not in page.inner_text("#conversation")
    js = "id => fetch(`/api/documents/${id}/content`, {headers: {Authorization: 'Bearer %s'}}).then(r => r.status)"
    assert page.evaluate(js % KEY_A, memo.doc_id) == 404
    assert page.evaluate(js % KEY_B, memo.doc_id) == 200  # the same document, for group B
    _shot(page, "05-group-a")
    assert rec.off_origin(origin) == []
    ctx.close()


def test_sign_in_through_oidc_with_pkce(stack: dict[str, Any]) -> None:
    origin, idp = stack["oidc"], stack["idp"]
    ctx, page, rec = _page(stack, origin, allowed=(idp + "/",))
    authorize: list[str] = []
    token_bodies: list[str] = []
    page.on("request", lambda r: authorize.append(r.url) if r.url.startswith(idp + "/oauth2/authorize") else None)
    page.on("request", lambda r: token_bodies.append(r.post_data or "") if r.url == idp + "/oauth2/token" else None)
    page.goto(origin + "/")
    page.wait_for_selector("#oidc-login", state="visible")
    _axe(page, "OIDC sign-in")
    page.click("#oidc-login")
    page.wait_for_url(idp + "/oauth2/authorize*")
    page.fill("input[name=sub]", "wijkverpleegkundige")
    page.click("button[type=submit]:not([value=deny])")
    page.wait_for_url(origin + "/chat")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    assert page.is_hidden("#signin")
    assert "wijkverpleegkundige" in page.inner_text("#who")
    assert page.url == origin + "/chat"  # the code is gone from the address bar

    # PKCE S256: the verifier sent to the token endpoint hashes to the challenge of the authorization request
    q = parse_qs(urlsplit(authorize[0]).query)
    assert q["code_challenge_method"] == ["S256"] and q["client_id"] == ["vraagbaak-page"]
    verifier = parse_qs(token_bodies[0])["code_verifier"][0]
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert q["code_challenge"] == [digest] and "client_secret" not in token_bodies[0]
    # tokens in memory only
    stored = page.evaluate("() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
    assert "eyJ" not in stored and "code_verifier" not in stored
    # the API verifies the token: this identity is in group zorg and may open the PDF
    pdf = stack["docs"]["zorg/decubituspreventie.pdf"]
    assert page.evaluate("() => fetch('/v1/whoami').then(r => r.status)") == 401  # no token: refused
    _shot(page, "06-oidc-signed-in")
    # from our origin only our API, the navigation to the IdP's sign-in and its token endpoint
    ours = [u for u, frame in rec.requests if frame.startswith(origin)]
    allowed = (origin + "/", idp + "/oauth2/authorize?", idp + "/oauth2/token", "data:", "blob:")
    assert all(u.startswith(allowed) for u in ours), [u for u in ours if not u.startswith(allowed)]
    r = httpx.get(f"{origin}/api/documents/{pdf.doc_id}/content")
    assert r.status_code == 401
    ctx.close()


def _history_keys(page: Any) -> list[str]:
    return page.evaluate("() => [...Object.keys(localStorage), ...Object.keys(sessionStorage)]"
                         ".filter(k => k.startsWith('vraagbaak.history'))")


def test_two_users_on_one_ward_pc_see_nothing_of_each_other(stack: dict[str, Any]) -> None:
    """One browser profile, one tab, two nurses (issue 18, item 5): nothing before sign-in, history per user,
    erased on sign-out."""
    origin = stack["api"]
    ctx, page, rec = _page(stack, origin)
    page.goto(origin + "/")
    page.wait_for_selector("#key-form", state="visible")
    assert page.is_hidden("#chat") and page.is_hidden("#new-conv") and page.is_hidden("#clear-hist")
    _axe(page, "signed out")

    _sign_in_with_key(page, KEY_A)
    _ask(page, QUESTION)
    answer = page.inner_text("#conversation li:last-child .answer-text")
    assert len(answer) > 40 and _history_keys(page) == ["vraagbaak.history.v2:verpleegkundige-a"]
    page.click("#signout")
    page.wait_for_selector("#key-form", state="visible")
    assert _history_keys(page) == []  # erased, not only hidden
    assert page.is_hidden("#chat") and page.locator("#conversation .turn").count() == 0
    assert answer[:40] not in page.inner_text("body") and QUESTION not in page.inner_text("body")

    _sign_in_with_key(page, KEY_B)
    assert "directeur-b" in page.inner_text("#who")
    assert page.locator("#conversation .turn").count() == 0
    page.click("#history summary")
    assert page.locator("#history-list button.past").count() == 0
    assert answer[:40] not in page.inner_text("body") and QUESTION not in page.inner_text("body")
    assert page.evaluate("() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)").count(
        "decubitus") == 0
    # B's own conversation is B's: after B signs out, A signs in to an empty page
    _ask(page, "Wat zijn de plannen voor de reorganisatie in 2027?")
    page.click("#signout")
    _sign_in_with_key(page, KEY_A)
    assert page.locator("#conversation .turn").count() == 0 and "reorganisatie" not in page.inner_text("body")
    assert page.errors == []  # type: ignore[attr-defined]
    ctx.close()


def test_idle_timeout_clears_the_screen_and_the_stored_history(stack: dict[str, Any]) -> None:
    from serving.app import create_app
    from serving.http.auth import Authenticator

    settings = make_settings(stack["tmp"], auth={"mode": "api-key", "api_keys": _keys()},
                             generator={"backend": "extractive"}, ui={"history": "local", "idle_timeout_s": 600})
    comps = dataclasses.replace(stack["comps"], settings=settings, authenticator=Authenticator(settings.auth))
    with LiveServer(create_app(settings, comps)) as idle_api:
        ctx, page, rec = _page(stack, idle_api.url)
        page.clock.install()  # the page's timers on a clock the test moves: no waiting, no race with the answer
        page.goto(idle_api.url + "/")
        assert page.evaluate("() => fetch('/api/config').then(r => r.json()).then(c => c.ui)") == {
            "history": "local", "idle_timeout_s": 600}
        page.wait_for_selector("#key-form", state="visible")
        _sign_in_with_key(page, KEY_A)
        _ask(page, QUESTION)
        assert page.evaluate("() => Object.keys(localStorage)").count("vraagbaak.history.v2:verpleegkundige-a") == 1
        page.clock.fast_forward(590_000)  # not yet idle
        assert page.is_visible("#chat") and page.locator("#conversation .turn").count() == 1
        page.click("#question")  # input restarts the idle time
        page.clock.fast_forward(590_000)
        assert page.is_visible("#chat")
        page.clock.fast_forward(20_000)  # 600 s without input: the page signs out by itself
        page.wait_for_selector("#key-form", state="visible")
        assert "activiteit" in page.inner_text("#signin-msg")
        assert _history_keys(page) == []
        assert page.is_hidden("#chat") and page.locator("#conversation .turn").count() == 0
        assert QUESTION not in page.inner_text("body")
        ctx.close()


def _spki_sha256(cert_pem: Path) -> str:
    """The base64 SHA-256 of a certificate's public key, for Chromium's --ignore-certificate-errors-spki-list:
    the browser then trusts exactly the test IdP's certificate (the CA the test made is not in its store)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    der = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_two_users_sign_in_and_out_through_the_real_provider(stack: dict[str, Any]) -> None:
    """Shared ward PC with OIDC (issue 18, item 5) against the real, Keycloak-shaped provider: sign-out erases
    the history and ends the IdP session, so the next nurse gets the sign-in form, not the previous session."""
    from idp_support import AUDIENCE, CLIENT_ID, IDP_USERS, RealIdp, make_pki

    from serving.app import create_app
    from serving.http.auth import Authenticator

    tmp = stack["tmp"] / "real-idp"
    port = _free_port()
    app_url = f"http://127.0.0.1:{port}"
    idp = RealIdp(tmp, users=IDP_USERS, redirect_uris=[app_url + "/chat"], web_origins=[app_url])
    idp.pki = make_pki(tmp / "pki")
    with idp:
        base = idp.issuer + "/protocol/openid-connect"
        settings = make_settings(
            stack["tmp"], generator={"backend": "extractive"},
            auth={"mode": "oidc", "oidc": {"issuer": idp.issuer, "audience": AUDIENCE, "jwks_url": base + "/certs",
                                           "ca_file": str(idp.pki.ca_cert), "algorithms": ["RS256"]}},
            web={"oidc_client_id": CLIENT_ID, "oidc_authorization_endpoint": base + "/auth",
                 "oidc_token_endpoint": base + "/token", "oidc_end_session_endpoint": base + "/logout"})
        comps = dataclasses.replace(stack["comps"], settings=settings, authenticator=Authenticator(settings.auth))
        with LiveServer(create_app(settings, comps), port=port):
            browser = stack["browser"].browser_type.launch(
                executable_path=str(CHROMIUM), headless=True,
                args=["--disable-background-networking", "--disable-component-update", "--no-first-run",
                      f"--ignore-certificate-errors-spki-list={_spki_sha256(idp.pki.cert)}"])
            ctx = browser.new_context(locale="nl-NL", service_workers="block")
            rec = Recorder(ctx, (app_url + "/", idp.origin + "/"))
            page = ctx.new_page()

            def sign_in(user: str) -> None:
                page.click("#oidc-login")
                page.wait_for_selector("#username")  # the IdP's own form: no session carried over
                page.fill("#username", user)
                page.fill("#password", next(u["password"] for u in IDP_USERS if u["username"] == user))
                page.click("#kc-login")
                page.wait_for_url(app_url + "/chat")
                page.wait_for_selector("#chat", state="visible", timeout=30_000)

            page.goto(app_url + "/")
            page.wait_for_selector("#oidc-login", state="visible")
            assert page.is_hidden("#chat")
            sign_in("verpleegkundige")
            assert "verpleegkundige" in page.inner_text("#who")
            _ask(page, QUESTION)
            assert _history_keys(page) == ["vraagbaak.history.v2:verpleegkundige"]
            page.click("#signout")  # → the IdP's end-session endpoint → back to the page, signed out
            page.wait_for_url(app_url + "/")
            page.wait_for_selector("#oidc-login", state="visible")
            assert _history_keys(page) == [] and page.is_hidden("#chat")

            sign_in("it-beheer")
            assert "it-beheer" in page.inner_text("#who")
            assert page.locator("#conversation .turn").count() == 0 and QUESTION not in page.inner_text("body")
            off = [u for u, _ in rec.requests if not u.startswith((app_url + "/", idp.origin + "/", "data:", "blob:"))]
            assert off == []
            browser.close()


class _ScriptedModel:
    """A language model whose answer is scripted (the edge case: it changes a number of its source)."""

    model_name, context_window = "scripted", 4096

    def __init__(self, script: str) -> None:
        self.script = script

    def count_tokens(self, messages: Any) -> int:
        return sum(len(m.content) // 4 + 1 for m in messages)

    async def generate(self, messages: Any, params: Any) -> str:
        return self.script

    async def stream(self, messages: Any, params: Any) -> Any:
        for i, word in enumerate(self.script.split(" ")):
            yield ("" if i == 0 else " ") + word

    async def ready(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


def test_unsupported_sentences_are_marked_for_eye_and_screen_reader(stack: dict[str, Any]) -> None:
    from serving.app import create_app
    from serving.http.auth import Authenticator
    from serving.staff.chat.service import ChatService

    comps = stack["comps"]
    faithful = "Patiënten met een verhoogd risico krijgen wisselligging op een standaardmatras elke 2 uur [1]."
    changed = "Beoordeel het risico op decubitus binnen 12 uur na opname met de Braden-schaal [1]."
    chat = ChatService(comps.retriever, _ScriptedModel(f"{faithful} {changed}"), comps.chat.prompts, comps.chat.top_k)
    settings = make_settings(stack["tmp"], auth={"mode": "insecure-dev", "dev_groups": ["zorg"]})
    scripted = dataclasses.replace(comps, settings=settings, authenticator=Authenticator(settings.auth), chat=chat)
    with LiveServer(create_app(settings, scripted)) as app:
        ctx, page, rec = _page(stack, app.url)
        page.goto(app.url + "/chat")
        _ask(page, "Hoe snel moet ik het decubitusrisico beoordelen?")
        marks = page.locator("#conversation li:last-child mark.unsupported")
        changed_mark = marks.filter(has_text="binnen 12 uur")
        assert changed_mark.count() == 1
        sr = changed_mark.first.locator(".sr-only").inner_text()
        assert sr.startswith("Niet ondersteund door de bron:") and "12 uur" in sr
        assert page.locator("[data-testid=check-note]").inner_text().startswith(f"{marks.count()} ")
        assert page.locator("#conversation li:last-child .answer-text").inner_text().count("[1]") == 2
        _axe(page, "answer with an unsupported sentence")
        _shot(page, "unsupported-sentence")
        assert rec.off_origin(app.url) == [] and page.errors == []  # type: ignore[attr-defined]
        ctx.close()
