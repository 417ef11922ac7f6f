"""Identity and limits on the live API: API keys, OIDC tokens, 401/403, 429, 503, and a generator
that fails mid-stream (the one scripted edge case: a real model cannot be made to fail on cue)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import jwt
import openai
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from support import LiveServer, make_settings

from vraagbaak_core.errors import GeneratorError
from vraagbaak_core.types import ChatMessage, GenerationParams

KEY_A, KEY_B, KEY_AUDITOR = "key-of-ward-a-0123456789", "key-of-ward-b-0123456789", "key-auditor-0123456789"
DOC_A = "Afdeling A: de code van de medicijnkast op afdeling A is 4711."
DOC_B = "Afdeling B: de code van de medicijnkast op afdeling B is 9876."


def _key(key: str, user: str, groups: list[str], roles: list[str], clearance: str = "intern") -> dict[str, Any]:
    from serving.http.auth import hash_key

    return {"key_sha256": hash_key(key), "user_id": user, "roles": roles, "groups": groups, "clearance": clearance}


class FailingGenerator:
    """Wraps the real generator. Scripted edge cases: ``fail`` streams two real pieces, then fails
    like a crashed upstream; ``hold`` keeps a stream open after its first piece (a long answer)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail = False
        self.hold = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> str:
        return str(await self.inner.generate(messages, params))

    async def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        n = 0
        async for piece in self.inner.stream(messages, params):
            yield piece
            while self.hold.is_set():
                await asyncio.sleep(0.05)
            n += 1
            if self.fail and n == 2:
                raise GeneratorError("upstream generator stopped mid-stream")


@pytest.fixture(scope="module")
def rsa_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, embedder: Any, generator: Any, rsa_key: Any
           ) -> Iterator[dict[str, Any]]:
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components

    tmp = tmp_path_factory.mktemp("auth")
    for name, text in (("a", DOC_A), ("b", DOC_B)):
        (tmp / "docs" / name).mkdir(parents=True)
        (tmp / "docs" / name / f"medicijnkast-{name}.txt").write_text(text, encoding="utf-8")
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    jwk.update(kid="k1", use="sig", alg="RS256")
    (tmp / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    keys = [
        _key(KEY_A, "zorg-a", ["afdeling-a"], ["staff"]),
        _key(KEY_B, "zorg-b", ["afdeling-b"], ["staff"]),
        _key(KEY_AUDITOR, "auditor", [], ["auditor"]),
    ]
    settings = make_settings(
        tmp,
        auth={"mode": "api-key", "api_keys": keys},
        generator={"max_tokens": 24, "max_concurrent": 1, "max_queue": 0},
        limits={"rate_per_minute": 1000},
    )
    failing = FailingGenerator(generator)
    comps = build_components(settings, embedder=embedder, generator=failing)
    ing = comps.ingestor
    for name in ("a", "b"):
        rep = ing.ingest_paths([tmp / "docs" / name], Labels(groups=(f"afdeling-{name}",)))
        assert not rep.failed
    with LiveServer(create_app(settings, comps)) as srv:
        yield {"url": srv.url, "gen": failing, "comps": comps, "tmp": tmp, "settings": settings}


def _client(server: dict[str, Any], key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server['url']}/v1", api_key=key, max_retries=0, timeout=300)


def _ask(server: dict[str, Any], key: str, q: str, **kw: Any) -> Any:
    return _client(server, key).chat.completions.create(
        model="vraagbaak", messages=[{"role": "user", "content": q}], **kw)


def test_missing_or_wrong_key_is_401_and_audited(server: dict[str, Any]) -> None:
    url = f"{server['url']}/v1/chat/completions"
    body = {"model": "vraagbaak", "messages": [{"role": "user", "content": "hoi"}]}
    r = httpx.post(url, json=body)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        _ask(server, "not-a-key", "hoi")
    from vraagbaak_core.audit import read_records

    server["comps"].auth_failures.flush_all()  # failures are aggregated per address per interval
    fails = [x for x in read_records(Path(server["settings"].audit.path)) if x["event_type"] == "auth.failure"]
    assert fails and all(f["outcome"] == "failure" and f["network_access_point"] for f in fails)
    # the wrong key is a failed sign-in; the request without any credential is not (issue 18)
    assert sum(f.get("count", 1) for f in fails) >= 1


def test_wrong_role_is_403(server: dict[str, Any]) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        _ask(server, KEY_AUDITOR, "Wat is de code van de medicijnkast?")


def test_group_a_never_sees_group_b(server: dict[str, Any]) -> None:
    q = "Wat is de code van de medicijnkast op afdeling B?"
    for extra in ({}, {"filter": {"groups": ["afdeling-b"]}}):
        msg = _ask(server, KEY_A, q, extra_body=extra).choices[0].message
        shown = " ".join(s["title"] for s in msg.sources) + " ".join(c["title"] for c in msg.citations)
        assert "medicijnkast-b" not in shown
        assert "9876" not in msg.content
    msg_b = _ask(server, KEY_B, q).choices[0].message
    assert msg_b.sources and msg_b.sources[0]["title"] == "medicijnkast-b"


def test_oidc_tokens(server: dict[str, Any], rsa_key: Any) -> None:
    from serving.http.auth import Authenticator, AuthError
    from vraagbaak_core.settings import AuthSettings

    auth = Authenticator(AuthSettings.model_validate({"mode": "oidc", "oidc": {
        "issuer": "https://sso.example.internal", "audience": "vraagbaak",
        "jwks_path": str(server["tmp"] / "jwks.json")}}))

    def token(**over: Any) -> str:
        claims = {"sub": "j.jansen", "iss": "https://sso.example.internal", "aud": "vraagbaak",
                  "exp": int(time.time()) + 300, "roles": ["staff"], "groups": ["afdeling-a"],
                  "clearance": "vertrouwelijk"} | over
        claims.setdefault("iat", int(time.time()))
        return jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "k1"})

    ident = auth.identify("Bearer " + token())
    assert ident.user_id == "j.jansen" and ident.groups == {"afdeling-a"} and ident.clearance == "vertrouwelijk"
    for bad in (token(exp=int(time.time()) - 10), token(aud="other"), token(iss="https://evil.example")):
        with pytest.raises(AuthError):
            auth.identify("Bearer " + bad)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({"sub": "x", "exp": int(time.time()) + 60, "iat": int(time.time()), "aud": "vraagbaak",
                         "iss": "https://sso.example.internal"}, other, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(AuthError):
        auth.identify("Bearer " + forged)


def test_full_queue_is_503_with_retry_after(server: dict[str, Any]) -> None:
    url = f"{server['url']}/v1/chat/completions"
    hdr = {"Authorization": f"Bearer {KEY_A}"}
    body = {"model": "vraagbaak", "stream": True,
            "messages": [{"role": "user", "content": "Wat is de code van de medicijnkast op afdeling A?"}]}
    server["gen"].hold.set()
    try:
        with httpx.Client(timeout=300) as c, c.stream("POST", url, json=body, headers=hdr) as first:
            assert first.status_code == 200
            lines = first.iter_lines()
            next(lines)  # the stream holds the only generation slot
            second = httpx.post(url, json={**body, "stream": False}, headers=hdr, timeout=60)
            assert second.status_code == 503, second.text
            assert int(second.headers["retry-after"]) >= 1
            assert second.json()["error"]["code"] == "queue_full"
            server["gen"].hold.clear()
            assert [ln for ln in lines if ln][-1] == "data: [DONE]"
    finally:
        server["gen"].hold.clear()


def test_rate_limit_is_429_with_retry_after(server: dict[str, Any]) -> None:
    from serving.http.limits import RateLimiter

    comps = server["comps"]
    saved = comps.rate_limiter
    comps.rate_limiter = RateLimiter(3)
    try:
        codes = [httpx.get(f"{server['url']}/v1/models", headers={"Authorization": f"Bearer {KEY_B}"}).status_code
                 for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = httpx.get(f"{server['url']}/v1/models", headers={"Authorization": f"Bearer {KEY_B}"})
        assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]["type"] == "rate_limit_exceeded"
        # another user is not affected
        assert httpx.get(f"{server['url']}/v1/models", headers={"Authorization": f"Bearer {KEY_A}"}).status_code == 200
    finally:
        comps.rate_limiter = saved


def test_message_limits(server: dict[str, Any]) -> None:
    url = f"{server['url']}/v1/chat/completions"
    hdr = {"Authorization": f"Bearer {KEY_A}"}
    limits = server["settings"].limits
    long = {"model": "vraagbaak", "messages": [{"role": "user", "content": "x" * (limits.max_message_chars + 1)}]}
    r = httpx.post(url, json=long, headers=hdr)
    assert r.status_code == 400 and "characters" in r.json()["error"]["message"]
    many = {"model": "vraagbaak", "messages": [{"role": "user", "content": "hoi"}] * (limits.max_messages + 1)}
    r = httpx.post(url, json=many, headers=hdr)
    assert r.status_code == 400 and "messages" in r.json()["error"]["message"]
    huge = b"{" + b" " * (limits.max_body_bytes + 10) + b"}"
    r = httpx.post(url, content=huge, headers={**hdr, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_generator_failure_mid_stream_is_a_clean_error_event(server: dict[str, Any]) -> None:
    server["gen"].fail = True
    try:
        stream = _ask(server, KEY_A, "Wat is de code van de medicijnkast op afdeling A?", stream=True)
        got: list[str] = []
        t0 = time.monotonic()
        with pytest.raises(openai.APIError, match="mid-stream"):
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    got.append(chunk.choices[0].delta.content)
        assert time.monotonic() - t0 < 120 and got  # some text, then the error; no hang
    finally:
        server["gen"].fail = False
    # the slot was released: the next request is served
    assert _ask(server, KEY_A, "Wat is de code van de medicijnkast op afdeling A?").choices[0].message.content


def test_refuses_to_start_without_auth(tmp_path: Path) -> None:
    from serving.app import create_app
    from vraagbaak_core.settings import ConfigError

    with pytest.raises(ConfigError, match="api_keys is empty"):
        create_app(make_settings(tmp_path, auth={"mode": "api-key"}))
    with pytest.raises(ConfigError, match="loopback"):
        create_app(make_settings(tmp_path, server={"host": "0.0.0.0"}))
    with pytest.raises(ConfigError, match="placeholder"):
        create_app(make_settings(tmp_path, store={"api_key": "changethis"}))


def test_client_disconnect_cancels_the_stream_and_frees_the_slot(server: dict[str, Any]) -> None:
    url = f"{server['url']}/v1/chat/completions"
    hdr = {"Authorization": f"Bearer {KEY_A}"}
    body = {"model": "vraagbaak", "stream": True,
            "messages": [{"role": "user", "content": "Wat is de code van de medicijnkast op afdeling A?"}]}
    gate = server["comps"].gate
    server["gen"].hold.set()
    try:
        with httpx.Client(timeout=300) as c, c.stream("POST", url, json=body, headers=hdr) as first:
            lines = first.iter_lines()
            next(lines)
            assert gate.in_flight == 1
        # the connection is closed mid-stream: the server cancels the generation and frees the slot
        deadline = time.monotonic() + 30
        while gate.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gate.in_flight == 0
    finally:
        server["gen"].hold.clear()
