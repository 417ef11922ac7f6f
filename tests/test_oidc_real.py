"""OIDC against the real OpenID provider (tests/idp: npm oidc-provider, configured like a hospital's Keycloak
realm, TLS from an internal CA the test makes), through the live API (issue 18, item 4):

- a Keycloak-shaped access token (RS256, iss/aud/sub/iat/exp, groups, roles, no ``nbf``) is accepted;
- the JWKS is fetched over TLS trusting the system store plus ``auth.oidc.ca_file``; without the CA it fails;
- the signing key rotates halfway: tokens with the new ``kid`` are accepted without a restart (one refetch),
  while made-up ``kid``s never refetch more than once per ``refetch_interval_s``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from idp_support import AUDIENCE
from support import LiveServer, make_settings


def _oidc_settings(tmp: Path, idp: Any, **oidc: Any) -> Any:
    return make_settings(tmp, auth={"mode": "oidc", "oidc": {
        "issuer": idp.issuer, "audience": AUDIENCE, "jwks_url": idp.endpoints["jwks"],
        "algorithms": ["RS256"], "ca_file": str(idp.pki.ca_cert), "refetch_interval_s": 1.0, **oidc}})


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, embedder: Any, real_idp: Any) -> Iterator[dict[str, Any]]:
    from serving.app import create_app
    from serving.components import build_components

    tmp = tmp_path_factory.mktemp("oidc-real")
    settings = _oidc_settings(tmp, real_idp)
    comps = build_components(settings, embedder=embedder)
    with LiveServer(create_app(settings, comps)) as srv:
        yield {"url": srv.url, "comps": comps, "tmp": tmp}
    comps.store.close()
    if comps.ingestor is not None:
        comps.ingestor.close()


def _whoami(api: dict[str, Any], token: str) -> httpx.Response:
    return httpx.get(api["url"] + "/v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_keycloak_shaped_token_without_nbf_is_accepted(api: dict[str, Any], real_idp: Any) -> None:
    token = real_idp.token("verpleegkundige")["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert "nbf" not in claims  # the shape that was refused with "Token is missing the nbf claim"
    assert {"iss", "aud", "sub", "iat", "exp", "groups", "roles"} <= claims.keys()
    r = _whoami(api, token)
    assert r.status_code == 200, r.text
    assert r.json() == {"user_id": "verpleegkundige", "roles": ["staff"], "groups": ["zorg"], "clearance": "intern"}
    # the same provider's token for another audience is still refused: aud is required and checked
    assert _whoami(api, real_idp.token("verpleegkundige")["id_token"]).status_code == 401


def test_jwks_over_an_internal_ca_needs_ca_file(tmp_path: Path, real_idp: Any) -> None:
    from serving.http.auth import Authenticator, AuthError
    from vraagbaak_core.settings import ConfigError

    token = "Bearer " + real_idp.token("verpleegkundige")["access_token"]
    trusted = Authenticator(_oidc_settings(tmp_path, real_idp).auth)
    assert trusted.identify(token).user_id == "verpleegkundige"
    # the system trust store alone does not know the hospital's CA: the fetch fails, the token is refused
    untrusted = Authenticator(_oidc_settings(tmp_path, real_idp, ca_file=None).auth)
    with pytest.raises(AuthError, match="unknown key"):
        untrusted.identify(token)
    assert untrusted.jwks is not None and untrusted.jwks.fetches == 1
    # a CA file that is not PEM stops the start, with the setting named
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("no certificate here\n")
    with pytest.raises(ConfigError, match="auth.oidc.ca_file"):
        Authenticator(_oidc_settings(tmp_path, real_idp, ca_file=str(bad)).auth)


def test_signing_key_rotation_halfway_needs_no_restart(api: dict[str, Any], real_idp: Any) -> None:
    jwks = api["comps"].authenticator.jwks
    before = real_idp.token("verpleegkundige")["access_token"]
    assert _whoami(api, before).status_code == 200
    fetches = jwks.fetches

    new_kid = real_idp.rotate()
    after = real_idp.token("it-beheer")["access_token"]
    assert jwt.get_unverified_header(after)["kid"] == new_kid != jwt.get_unverified_header(before)["kid"]
    time.sleep(1.1)  # past refetch_interval_s (1 s here) since the last fetch
    r = _whoami(api, after)
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == "it-beheer"
    assert jwks.fetches == fetches + 1  # the unknown kid refetched the JWKS once
    assert _whoami(api, before).status_code == 200  # the old key is still published: old tokens stay valid



def test_made_up_kids_never_flood_the_provider(tmp_path: Path, real_idp: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from serving.http.auth import Authenticator, AuthError

    auth = Authenticator(_oidc_settings(tmp_path, real_idp, refetch_interval_s=60).auth)
    token = real_idp.token("verpleegkundige")["access_token"]
    assert auth.identify("Bearer " + token).user_id == "verpleegkundige"
    assert auth.jwks is not None and auth.jwks.fetches == 1
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = jwt.decode(token, options={"verify_signature": False})
    for i in range(20):
        with pytest.raises(AuthError, match="unknown key"):
            auth.identify("Bearer " + jwt.encode(claims, other, "RS256", headers={"kid": f"made-up-{i}"}))
    assert auth.jwks.fetches == 1  # within refetch_interval_s: no second fetch, whatever the kids
