"""Client address and sign-in limiting behind a reverse proxy (issue 18, item 3), on the live API.

Every request reaches the API from the proxy's address (the test's peer, 127.0.0.1); ``X-Forwarded-For``
names the workstation. With ``server.trusted_proxies`` the limiter and the audit use the workstation's
address; a request without a credential is no failed sign-in; valid credentials are never refused by the
failed-sign-in limit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import LiveServer, make_settings

USERS = 200
ATTACKER = "10.66.6.6"
PROXY_NET = "127.0.0.0/8"  # the peer every request comes from here: the ingress


def _user_key(i: int) -> str:
    return f"ward-pc-user-{i:03d}-0123456789abcdef"


def _workstation(i: int) -> str:
    return f"10.20.{i // 200}.{i % 200 + 1}"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[dict[str, Any]]:
    from serving.app import create_app
    from serving.components import build_components
    from serving.http.auth import Authenticator, hash_key

    tmp = tmp_path_factory.mktemp("proxy")
    keys = [{"key_sha256": hash_key(_user_key(i)), "user_id": f"user-{i:03d}", "roles": ["staff"],
             "groups": ["zorg"]} for i in range(USERS + 1)]  # the last one is the attacker's own valid key
    settings = make_settings(tmp, auth={"mode": "api-key", "api_keys": keys},
                             server={"trusted_proxies": [PROXY_NET, "fd00:1::/64"]})
    comps = build_components(settings, embedder=embedder)
    # the same API with no trusted proxy: the peer is the client, X-Forwarded-For is ignored
    direct = make_settings(tmp, auth={"mode": "api-key", "api_keys": keys})
    # (its own failed-sign-in limiter: replace() builds a new one)
    direct_comps = dataclasses.replace(comps, settings=direct, authenticator=Authenticator(direct.auth))
    with LiveServer(create_app(settings, comps)) as srv, LiveServer(create_app(direct, direct_comps)) as dsrv:
        yield {"url": srv.url, "direct": dsrv.url, "comps": comps, "direct_comps": direct_comps,
               "audit": Path(settings.audit.path)}
    comps.store.close()
    if comps.ingestor is not None:
        comps.ingestor.close()


def _auth_failures(api: dict[str, Any]) -> list[dict[str, Any]]:
    from vraagbaak_core.audit import read_records

    api["comps"].auth_failures.flush_all()
    api["direct_comps"].auth_failures.flush_all()
    return [r for r in read_records(api["audit"]) if r["event_type"] == "auth.failure"]


def test_200_users_behind_one_proxy_and_one_attacker(api: dict[str, Any]) -> None:
    url = api["url"] + "/v1/whoami"
    user_codes: list[int] = []
    anonymous_codes: list[int] = []
    attacker_codes: list[int] = []
    with httpx.Client(timeout=30) as c:
        def spray(n: int) -> None:
            for j in range(n):
                # the attacker's own X-Forwarded-For is kept by the proxy, which appends the real address
                xff = f"198.51.100.{j % 250}, {ATTACKER}"
                attacker_codes.append(c.get(url, headers={"Authorization": f"Bearer guess-{j}",
                                                          "X-Forwarded-For": xff}).status_code)

        for rnd in range(3):
            for i in range(USERS):
                xff = {"X-Forwarded-For": _workstation(i)}
                if rnd == 0:  # the page asks who is signed in before sign-in: no credential, no failure
                    anonymous_codes.append(c.get(url, headers=xff).status_code)
                r = c.get(url, headers={**xff, "Authorization": f"Bearer {_user_key(i)}"})
                user_codes.append(r.status_code)
                assert r.status_code != 200 or r.json()["user_id"] == f"user-{i:03d}"
                if i % 50 == 0:
                    spray(20)
        # the attacker, refused by now, still gets in with valid credentials of its own
        own = c.get(url, headers={"Authorization": f"Bearer {_user_key(USERS)}", "X-Forwarded-For": ATTACKER})
    assert user_codes == [200] * (3 * USERS)
    assert anonymous_codes == [401] * USERS
    assert len(attacker_codes) == 240
    assert attacker_codes[:30] == [401] * 30 and attacker_codes[30:] == [429] * 210
    assert own.status_code == 200

    fails = _auth_failures(api)
    addresses = {f["network_access_point"] for f in fails}
    assert addresses == {ATTACKER}, addresses  # never the proxy's address, never a user's workstation
    assert sum(f["count"] for f in fails) == 240


def test_audit_records_the_workstation_not_the_proxy(api: dict[str, Any]) -> None:
    from vraagbaak_core.audit import read_records

    body = {"model": "vraagbaak", "messages": [{"role": "user", "content": "Hoe vaak wissel ik een infuus?"}]}
    r = httpx.post(api["url"] + "/v1/chat/completions", json=body, timeout=120,
                   headers={"Authorization": f"Bearer {_user_key(7)}", "X-Forwarded-For": _workstation(7)})
    assert r.status_code == 200, r.text
    chats = [x for x in read_records(api["audit"]) if x["event_type"] == "chat.question"]
    assert chats[-1]["network_access_point"] == _workstation(7)
    assert chats[-1]["user_id"] == "user-007"


def test_forwarded_for_from_an_untrusted_peer_is_ignored(api: dict[str, Any]) -> None:
    url = api["direct"] + "/v1/whoami"
    with httpx.Client(timeout=30) as c:
        # the replay of the lockout: 40 anonymous calls from one address, then a valid key
        assert {c.get(url).status_code for _ in range(40)} == {401}
        assert c.get(url, headers={"Authorization": f"Bearer {_user_key(1)}"}).status_code == 200
        # a client naming another address in the header is still counted (and audited) as itself
        codes = [c.get(url, headers={"Authorization": "Bearer wrong", "X-Forwarded-For": f"10.0.0.{i}"}).status_code
                 for i in range(35)]
        assert codes[:30] == [401] * 30 and set(codes[30:]) == {429}
        assert c.get(url, headers={"Authorization": f"Bearer {_user_key(1)}"}).status_code == 200
    fails = [f for f in _auth_failures(api) if f["network_access_point"] != ATTACKER]
    assert {f["network_access_point"] for f in fails} == {"127.0.0.1"}


def test_trusted_proxies_refuse_a_catch_all(tmp_path: Path) -> None:
    from vraagbaak_core.settings import ConfigError

    for catch_all in ("0.0.0.0/0", "::/0"):
        with pytest.raises(ConfigError, match="trusted_proxies"):
            make_settings(tmp_path, server={"trusted_proxies": [catch_all]})
    with pytest.raises(ConfigError, match="trusted_proxies"):
        make_settings(tmp_path, server={"trusted_proxies": ["nginx"]})
