"""Hostile callers against the live API (issue 11 items 13, 16, 17, 18, 20): the body limit on bytes
received, ingest scoped to the groups an identity manages, insecure-dev's Host/Origin checks, OIDC
hardening with real signed tokens, and blocking work kept off the event loop."""

from __future__ import annotations

import asyncio
import http.server
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from support import LiveServer, make_settings

STAFF, IT_A, IT_B, ADMIN = "key-staff-0123456789", "key-it-a-0123456789", "key-it-b-0123456789", "key-admin-0123456"
BODY_LIMIT = 64_000
UPLOAD_MB = 0.25


def _key(key: str, user: str, roles: list[str], groups: list[str], manages: list[str] | None = None
         ) -> dict[str, Any]:
    from serving.http.auth import hash_key

    return {"key_sha256": hash_key(key), "user_id": user, "roles": roles, "groups": groups,
            "manages": manages or []}


class HoldingRetriever:
    """The real retriever; a query holding HOLDME blocks (in whatever thread runs it) until released."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.held = threading.Event()

    def search(self, query: str, *args: Any, **kw: Any) -> Any:
        if "HOLDME" in query:
            self.held.set()
            self.release.wait(60)
        return self.inner.search(query, *args, **kw)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, embedder: Any, generator: Any) -> Iterator[dict[str, Any]]:
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components

    tmp = tmp_path_factory.mktemp("hostile")
    for group, name, text in (
        ("zorg-a", "koelkast", "Afdeling A: de koelkast voor medicatie staat op 4 graden."),
        ("zorg-a", "koelkast-controle", "Afdeling A: controleer de temperatuur van de medicatiekoelkast elke dag."),
        ("zorg-a", "koelkast-storing", "Afdeling A: bij een storing van de medicatiekoelkast bel je de apotheek."),
        ("zorg-b", "rooster", "Afdeling B: het nachtrooster begint om 23:00 uur."),
    ):
        (tmp / "docs" / group).mkdir(parents=True, exist_ok=True)
        (tmp / "docs" / group / f"{name}.txt").write_text(text, encoding="utf-8")
    keys = [
        _key(STAFF, "zorg", ["staff"], ["zorg-a", "zorg-b"]),
        _key(IT_A, "it-a", ["ingest"], [], ["zorg-a"]),
        _key(IT_B, "it-b", ["ingest"], [], ["zorg-b"]),
        _key(ADMIN, "beheer", ["admin"], []),
    ]
    settings = make_settings(
        tmp, auth={"mode": "api-key", "api_keys": keys},
        generator={"max_tokens": 8, "max_concurrent": 2, "max_queue": 4},
        limits={"max_body_bytes": BODY_LIMIT, "max_upload_mb": UPLOAD_MB, "rate_per_minute": 1000},
    )
    comps = build_components(settings, embedder=embedder, generator=generator)
    for group in ("zorg-a", "zorg-b"):
        rep = comps.ingestor.ingest_paths([tmp / "docs" / group], Labels(groups=(group,)))
        assert not rep.failed
    holder = HoldingRetriever(comps.chat.retriever)
    comps.chat.retriever = holder
    with LiveServer(create_app(settings, comps)) as srv:
        yield {"url": srv.url, "port": srv.port, "comps": comps, "holder": holder, "tmp": tmp}
    holder.release.set()
    comps.ingestor.close()
    comps.store.close()


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --------------------------------------------------------------------------- 13: body limit


def _chunked(port: int, path: str, head: str, chunks: Iterator[bytes], extra_headers: str = "") -> tuple[int, int]:
    """A raw HTTP/1.1 chunked request; returns (status, bytes sent before the server answered)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sent = 0
    try:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra_headers}"
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode())
        for piece in (head.encode(), *chunks):
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered: stop sending
            try:
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            except OSError:
                break
            sent += len(piece)
        else:
            try:
                sock.sendall(b"0\r\n\r\n")
            except OSError:
                pass
        data = b""
        while b"\r\n" not in data:
            more = sock.recv(4096)
            if not more:
                break
            data += more
        return int(data.split(b" ", 2)[1]), sent
    finally:
        sock.close()


def test_chunked_json_body_over_the_limit_is_refused_before_it_is_read(live: dict[str, Any]) -> None:
    filler = (b"x" * 16_000 for _ in range(2500))  # 40 MB, far past the 64 kB limit, no Content-Length
    # anonymous: refused from the headers alone (authentication before the body, issue 18), nothing read
    status, sent = _chunked(live["port"], "/v1/chat/completions",
                            '{"model": "vraagbaak", "messages": [{"role": "user", "content": "', filler)
    assert status == 401
    assert sent < 20_000_000  # answered long before the whole body was sent (socket buffers aside)
    # signed in: the body limit stops the stream
    filler = (b"x" * 16_000 for _ in range(2500))
    status, sent = _chunked(live["port"], "/v1/chat/completions",
                            '{"model": "vraagbaak", "messages": [{"role": "user", "content": "', filler,
                            f"Authorization: Bearer {STAFF}\r\n")
    assert status == 413 and sent < 20_000_000
    # a chunked body under the limit is read normally (and then fails auth)
    small = (b"a" for _ in range(1))
    status, _ = _chunked(live["port"], "/v1/chat/completions",
                         '{"model": "vraagbaak", "messages": [{"role": "user", "content": "', small)
    assert status in (400, 401)


def test_chunked_multipart_upload_over_the_limit_is_413(live: dict[str, Any]) -> None:
    boundary = "vraagbaakgrens"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"groot.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\n")
    filler = (b"tekst " * 3000 for _ in range(2500))  # 45 MB against a 0.25 MB upload limit
    status, sent = _chunked(live["port"], "/api/documents", head, filler,
                            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                            f"Authorization: Bearer {IT_A}\r\n")
    assert status == 413 and sent < 20_000_000
    assert all(d.source != "uploads/groot.txt" for d in live["comps"].ingestor.list_documents())


def test_declared_content_length_over_the_limit_is_413(live: dict[str, Any]) -> None:
    r = httpx.post(f"{live['url']}/v1/chat/completions", content=b"{" + b" " * (BODY_LIMIT + 10) + b"}",
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


# --------------------------------------------------------------------------- 16: ingest scope


def test_ingest_role_is_scoped_to_the_groups_it_manages(live: dict[str, Any]) -> None:
    url = f"{live['url']}/api/documents"

    def sources(key: str) -> set[str]:
        r = httpx.get(url, headers=_h(key))
        assert r.status_code == 200, r.text
        return {d["groups"][0] for d in r.json()["data"]}

    assert sources(IT_A) == {"zorg-a"} and sources(IT_B) == {"zorg-b"}
    assert sources(ADMIN) >= {"zorg-a", "zorg-b"}
    docs = httpx.get(url, headers=_h(ADMIN)).json()["data"]
    doc_b = next(d for d in docs if d["groups"] == ["zorg-b"])
    # A may not erase B's document, nor upload into B's group, nor make a world-readable one alone
    r = httpx.delete(f"{url}/{doc_b['doc_id']}", headers=_h(IT_A))
    assert r.status_code == 403 and r.json()["error"]["code"] == "group_not_managed"
    files = {"file": ("rooster.txt", b"Rooster: vroege dienst 07:00.")}
    assert httpx.post(url, files=files, data={"groups": "zorg-b"}, headers=_h(IT_A)).status_code == 403
    assert httpx.post(url, files=files, data={"groups": "zorg-a,zorg-b"}, headers=_h(IT_A)).status_code == 403
    assert httpx.post(url, files=files, data={"public": "true"}, headers=_h(IT_A)).status_code == 403
    # B uploads rooster.txt; A may not replace it, not even into A's own group
    up = httpx.post(url, files=files, data={"groups": "zorg-b"}, headers=_h(IT_B))
    assert up.status_code == 201, up.text
    files2 = {"file": ("rooster.txt", b"Rooster: vroege dienst 06:00.")}
    r = httpx.post(url, files=files2, data={"groups": "zorg-a", "replace": up.json()["doc_id"]}, headers=_h(IT_A))
    assert r.status_code == 403
    r = httpx.post(url, files=files2, data={"groups": "zorg-b", "replace": up.json()["doc_id"]}, headers=_h(IT_B))
    assert r.status_code == 201, r.text
    assert httpx.delete(f"{url}/{up.json()['doc_id']}", headers=_h(IT_A)).status_code == 403
    assert httpx.delete(f"{url}/{up.json()['doc_id']}", headers=_h(IT_B)).status_code == 200
    # staff has no ingest role at all
    assert httpx.get(url, headers=_h(STAFF)).status_code == 403


# --------------------------------------------------------------------------- 20: the event loop


def test_held_retrieval_blocks_neither_healthz_nor_another_user(live: dict[str, Any]) -> None:
    holder: HoldingRetriever = live["holder"]
    holder.held.clear()
    holder.release.clear()
    url = f"{live['url']}/v1/chat/completions"
    result: dict[str, Any] = {}

    def held_request() -> None:
        result["r"] = httpx.post(url, headers=_h(STAFF), timeout=120, json={
            "model": "vraagbaak", "messages": [{"role": "user", "content": "HOLDME waar staat de koelkast?"}]})

    t = threading.Thread(target=held_request)
    t.start()
    try:
        assert holder.held.wait(30), "the held retrieval never started"
        t0 = time.perf_counter()
        hz = httpx.get(f"{live['url']}/healthz", timeout=5)
        assert hz.status_code == 200 and time.perf_counter() - t0 < 2.0
        other = httpx.post(url, headers=_h(STAFF), timeout=5, json={
            "model": "vraagbaak", "messages": [{"role": "user", "content": "xqzv plorp wibble"}]})
        assert other.status_code == 200  # answered (an abstention) while the first is still held
        ready = httpx.get(f"{live['url']}/readyz", timeout=5)
        assert ready.status_code == 200
        assert t.is_alive() and "r" not in result
    finally:
        holder.release.set()
        t.join(120)
    assert result["r"].status_code == 200


# --------------------------------------------------------------------------- 17: insecure-dev


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory, embedder: Any, generator: Any) -> Iterator[dict[str, Any]]:
    from serving.app import create_app
    from serving.components import build_components

    tmp = tmp_path_factory.mktemp("dev")
    settings = make_settings(tmp)  # the default config: insecure-dev on 127.0.0.1
    comps = build_components(settings, embedder=embedder, generator=generator)
    with LiveServer(create_app(settings, comps)) as srv:
        yield {"url": srv.url, "port": srv.port}
    comps.ingestor.close()
    comps.store.close()


def test_insecure_dev_gives_staff_only(dev: dict[str, Any]) -> None:
    who = httpx.get(f"{dev['url']}/v1/whoami").json()
    assert who["roles"] == ["staff"]
    r = httpx.post(f"{dev['url']}/api/documents", files={"file": ("a.txt", b"tekst")}, data={"groups": "iedereen"})
    assert r.status_code == 403


def test_insecure_dev_refuses_foreign_host_and_cross_origin_posts(dev: dict[str, Any]) -> None:
    url, port = dev["url"], dev["port"]
    # DNS rebinding: a foreign name that resolves to 127.0.0.1 reaches the socket with its own Host
    r = httpx.get(f"{url}/v1/whoami", headers={"Host": f"evil.example:{port}"})
    assert r.status_code == 421
    assert httpx.get(f"{url}/healthz", headers={"Host": f"localhost:{port}"}).status_code == 200
    body = {"model": "vraagbaak", "messages": [{"role": "user", "content": "hallo"}]}
    chat = f"{url}/v1/chat/completions"
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{port + 1}"):
        r = httpx.post(chat, json=body, headers={"Origin": origin})
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin", origin
    r = httpx.post(chat, json=body, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    # the app's own page (same origin) and clients without an Origin keep working
    assert httpx.post(chat, json=body, headers={"Origin": f"http://127.0.0.1:{port}"}).status_code == 200
    assert httpx.post(chat, json=body, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


# --------------------------------------------------------------------------- 18: OIDC

ISS, AUD = "https://sso.ziekenhuis.internal/realms/zorg", "vraagbaak"


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {"rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec": ec.generate_private_key(ec.SECP256R1())}


def _jwks(keys: dict[str, Any]) -> dict[str, Any]:
    r = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys["rsa"].public_key()))
    r.update(kid="rsa1", use="sig", alg="RS256")
    e = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(keys["ec"].public_key()))
    e.update(kid="ec1", use="sig", alg="ES256")
    return {"keys": [r, e]}


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"sub": "j.jansen", "iss": ISS, "aud": AUD, "exp": now + 300, "nbf": now - 5,
                            "iat": now, "roles": ["staff", "ingest"], "groups": ["zorg-a"], "manages": ["zorg-a"]}
    for k, v in over.items():
        if v is None:
            base.pop(k, None)
        else:
            base[k] = v
    return base


def _auth(tmp_path: Path, keys: dict[str, Any], **oidc: Any) -> Any:
    from serving.http.auth import Authenticator
    from vraagbaak_core.settings import AuthSettings

    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(_jwks(keys)))
    cfg: dict[str, Any] = {"issuer": ISS, "audience": AUD, "jwks_path": str(path)} | oidc
    return Authenticator(AuthSettings.model_validate({"mode": "oidc", "oidc": cfg}))


def test_oidc_accepts_only_complete_tokens_from_the_named_issuer(tmp_path: Path, keys: dict[str, Any]) -> None:
    from serving.http.auth import AuthError

    auth = _auth(tmp_path, keys)
    rsa_key, ec_key = keys["rsa"], keys["ec"]
    ok = auth.identify("Bearer " + jwt.encode(_claims(), rsa_key, "RS256", headers={"kid": "rsa1"}))
    assert ok.user_id == "j.jansen" and ok.manages == {"zorg-a"}
    assert auth.identify("Bearer " + jwt.encode(_claims(), ec_key, "ES256", headers={"kid": "ec1"})).user_id
    # Keycloak's access tokens carry no nbf: nbf is checked when present, never required (issue 18)
    assert auth.identify("Bearer " + jwt.encode(_claims(nbf=None), rsa_key, "RS256", headers={"kid": "rsa1"})).user_id
    now = int(time.time())
    public_pem = rsa_key.public_key().public_bytes(
        encoding=__import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.PEM,
        format=__import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).PublicFormat
        .SubjectPublicKeyInfo)
    unsigned = jwt.api_jws.base64url_encode(json.dumps({"alg": "none", "kid": "rsa1"}).encode()).decode()
    payload = jwt.api_jws.base64url_encode(json.dumps(_claims()).encode()).decode()
    import hashlib
    import hmac as hmac_mod

    hs_header = jwt.api_jws.base64url_encode(json.dumps({"alg": "HS256", "kid": "rsa1", "typ": "JWT"}).encode())
    signing_input = hs_header + b"." + payload.encode()
    hs_sig = jwt.api_jws.base64url_encode(hmac_mod.new(public_pem, signing_input, hashlib.sha256).digest())
    bad = {
        "no exp": jwt.encode(_claims(exp=None), rsa_key, "RS256", headers={"kid": "rsa1"}),
        "no iat": jwt.encode(_claims(iat=None), rsa_key, "RS256", headers={"kid": "rsa1"}),
        "iat in the future": jwt.encode(_claims(iat=now + 3600), rsa_key, "RS256", headers={"kid": "rsa1"}),
        "no sub": jwt.encode(_claims(sub=None), rsa_key, "RS256", headers={"kid": "rsa1"}),
        "nbf in the future": jwt.encode(_claims(nbf=now + 3600), rsa_key, "RS256", headers={"kid": "rsa1"}),
        "expired": jwt.encode(_claims(exp=now - 3600), rsa_key, "RS256", headers={"kid": "rsa1"}),
        "no iss": jwt.encode(_claims(iss=None), rsa_key, "RS256", headers={"kid": "rsa1"}),
        "other iss": jwt.encode(_claims(iss="https://evil.example"), rsa_key, "RS256", headers={"kid": "rsa1"}),
        "no aud": jwt.encode(_claims(aud=None), rsa_key, "RS256", headers={"kid": "rsa1"}),
        "other aud": jwt.encode(_claims(aud="other-app"), rsa_key, "RS256", headers={"kid": "rsa1"}),
        "alg none": f"{unsigned}.{payload}.",
        "HS256 with the RSA public key as secret": (signing_input + b"." + hs_sig).decode(),
        "ES256 token naming the RSA key": jwt.encode(_claims(), ec_key, "ES256", headers={"kid": "rsa1"}),
        "RS384 against a key pinned to RS256": jwt.encode(_claims(), rsa_key, "RS384", headers={"kid": "rsa1"}),
        "unknown kid": jwt.encode(_claims(), rsa_key, "RS256", headers={"kid": "rsa9"}),
        "forged": jwt.encode(_claims(), rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256",
                             headers={"kid": "rsa1"}),
    }
    for case, token in bad.items():
        with pytest.raises(AuthError):
            auth.identify("Bearer " + token)
            pytest.fail(f"accepted: {case}")


def test_oidc_settings_refuse_missing_issuer_audience_and_weak_algorithms(tmp_path: Path) -> None:
    from serving.app import create_app
    from vraagbaak_core.settings import ConfigError

    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    for oidc, match in (({"audience": AUD}, "issuer"), ({"issuer": ISS}, "audience")):
        with pytest.raises(ConfigError, match=match):
            create_app(make_settings(tmp_path, auth={"mode": "oidc", "oidc": {"jwks_path": jwks, **oidc}}))
    for algs in (["none"], ["HS256"], ["RS256", "HS512"], []):
        with pytest.raises(ConfigError, match="algorithms"):
            make_settings(tmp_path, auth={"mode": "oidc", "oidc": {
                "jwks_path": jwks, "issuer": ISS, "audience": AUD, "algorithms": algs}})


class _JwksServer:
    """A local JWKS endpoint that answers slowly and counts its fetches."""

    def __init__(self, jwks: dict[str, Any], delay_s: float) -> None:
        outer = self
        self.hits = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                time.sleep(delay_s)
                body = json.dumps(jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/certs"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_oidc_key_fetch_runs_off_the_loop_and_unknown_kids_are_rate_limited(keys: dict[str, Any]) -> None:
    from serving.http.auth import Authenticator, AuthError
    from vraagbaak_core.settings import AuthSettings

    srv = _JwksServer(_jwks(keys), delay_s=0.6)
    try:
        auth = Authenticator(AuthSettings.model_validate({"mode": "oidc", "oidc": {
            "issuer": ISS, "audience": AUD, "jwks_url": srv.url, "refetch_interval_s": 60}}))
        good = "Bearer " + jwt.encode(_claims(), keys["rsa"], "RS256", headers={"kid": "rsa1"})

        async def scenario() -> tuple[int, Any]:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.02)
                    ticks += 1

            task = asyncio.create_task(ticker())
            ident = await auth.aidentify(good)
            task.cancel()
            return ticks, ident

        ticks, ident = asyncio.run(scenario())
        assert ident.user_id == "j.jansen"
        assert ticks >= 10  # the loop kept running during the 0.6 s fetch
        assert srv.hits == 1
        for i in range(20):
            forged = "Bearer " + jwt.encode(_claims(), keys["rsa"], "RS256", headers={"kid": f"made-up-{i}"})
            with pytest.raises(AuthError, match="unknown key"):
                auth.identify(forged)
        assert srv.hits == 1  # within the refetch interval no unknown kid causes a fetch
        auth.jwks._fetched_at -= 61  # the interval has passed: one refetch (key rotation), then quiet again
        for i in range(5):
            with pytest.raises(AuthError):
                auth.identify("Bearer " + jwt.encode(_claims(), keys["rsa"], "RS256", headers={"kid": f"x{i}"}))
        assert srv.hits == 2
    finally:
        srv.close()


# --------------------------------------------------------------------------- also found: top_k, slots


def test_request_top_k_is_honoured(live: dict[str, Any]) -> None:
    url = f"{live['url']}/v1/chat/completions"
    q = {"model": "vraagbaak", "max_tokens": 4,
         "messages": [{"role": "user", "content": "Wat doe je met de medicatiekoelkast op afdeling A?"}]}
    many = httpx.post(url, headers=_h(STAFF), json=q, timeout=120).json()["choices"][0]["message"]["sources"]
    one = httpx.post(url, headers=_h(STAFF), json=q | {"top_k": 1}, timeout=120).json()
    assert len(many) >= 2
    assert len(one["choices"][0]["message"]["sources"]) == 1
    assert httpx.post(url, headers=_h(STAFF), json=q | {"top_k": 0}, timeout=30).status_code == 400


def test_disconnect_before_the_body_starts_frees_the_slot(
    tmp_path: Path, embedder: Any, generator: Any
) -> None:
    """The client is gone once the response exists but before its body starts: Starlette then
    never iterates the body, so a release in the body generator's ``finally`` never runs."""
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "koelkast.txt").write_text("De medicatiekoelkast staat op 4 graden.", encoding="utf-8")
    settings = make_settings(tmp_path, generator={"max_tokens": 8, "max_concurrent": 1, "max_queue": 0})
    comps = build_components(settings, embedder=embedder, generator=generator)
    assert not comps.ingestor.ingest_paths([tmp_path / "docs"], Labels(groups=("iedereen",))).failed
    app = create_app(settings, comps)
    body = json.dumps({"model": "vraagbaak", "stream": True,
                       "messages": [{"role": "user", "content": "Op hoeveel graden staat de medicatiekoelkast?"}]})

    async def one_request() -> list[dict[str, Any]]:
        delivered = False
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body.encode(), "more_body": False}
            return {"type": "http.disconnect"}  # gone before the first byte of the body

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"",
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
                 "server": ("127.0.0.1", 8000),
                 "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")]}
        await app(scope, receive, send)
        return sent

    async def scenario() -> list[int]:
        counts = []
        async with app.router.lifespan_context(app):
            for _ in range(3):
                await one_request()
                await asyncio.sleep(0.2)
                counts.append(comps.gate.in_flight)
        return counts

    try:
        assert asyncio.run(scenario()) == [0, 0, 0]
    finally:
        comps.ingestor.close()
        comps.store.close()
