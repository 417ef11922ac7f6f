"""The podman-compose stack (deploy/compose/compose.stack.yaml, run for real by tests/test_stack.py) agrees
with itself and with the production compose file: one image; the API reachable only through nginx;
nginx sets X-Forwarded-For; ``server.trusted_proxies`` names exactly the network on which nginx talks to
the API (and the production file's, the bridge gateway its host proxy arrives from); the page's OIDC
endpoints, the issuer and the JWKS URL belong to one realm, whose client, audience and claim names are
the shipped Keycloak realm's (deploy/keycloak/vraagbaak-realm.json).
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from vraagbaak_core.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "deploy" / "compose"
STACK = yaml.safe_load((COMPOSE / "compose.stack.yaml").read_text(encoding="utf-8"))
PROD = yaml.safe_load((COMPOSE / "compose.yaml").read_text(encoding="utf-8"))
NGINX = (COMPOSE / "stack" / "nginx.conf").read_text(encoding="utf-8")
SCRIPT = (ROOT / "scripts" / "stack").read_text(encoding="utf-8")
REALM = json.loads((ROOT / "deploy" / "keycloak" / "vraagbaak-realm.json").read_text(encoding="utf-8"))
VARS = {"STACK_IDP_PORT": "19443", "STACK_HTTPS_PORT": "18443", "POSTGRES_PASSWORD": "p-4nRt7YwQ",
        "AUDIT_HMAC_KEY": "k-8xQv2LmN5pRt7YwZ", "STACK_DIR": "/srv/stack", "VRAAGBAAK_VERSION": "0.1.0"}


def interpolate(value: str) -> str:
    """${NAME}, ${NAME:-default}, ${NAME:?error} and $$ as compose reads them, with VARS."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(3)
        return VARS.get(name) or default or ""
    return re.sub(r"\$\$|\$\{(\w+)(:?[-?]([^}]*))?\}", sub, value)


def subnets() -> dict[str, tuple[str, bool]]:
    """The networks scripts/stack creates: name -> (subnet, internal)."""
    out = {}
    for m in re.finditer(r"podman network create (--internal )?--subnet (\S+) (\S+)", SCRIPT):
        out[m.group(3)] = (m.group(2), bool(m.group(1)))
    return out


def stack_settings(monkeypatch: pytest.MonkeyPatch) -> Any:
    for key in [k for k in __import__("os").environ if k.startswith("VRAAGBAAK_")]:
        monkeypatch.delenv(key)
    for key, value in STACK["services"]["api"]["environment"].items():
        monkeypatch.setenv(key, interpolate(str(value)))
    return load_settings(COMPOSE / "stack" / "settings.yaml")


def test_one_image_and_only_nginx_and_the_idp_published_on_loopback() -> None:
    svcs = STACK["services"]
    assert set(svcs) == {"postgres", "idp", "api", "nginx"}  # no Qdrant server, no vLLM: see the header
    stack_image = interpolate(svcs["api"]["image"]).removeprefix("localhost/")
    assert stack_image == interpolate(PROD["services"]["api"]["image"]) == "vraagbaak:0.1.0"
    assert PROD["services"]["api"]["build"]["dockerfile"] == "Containerfile"
    published = {name: [interpolate(p) for p in s.get("ports", [])] for name, s in svcs.items() if s.get("ports")}
    assert set(published) == {"nginx", "idp"}
    assert all(p.startswith("127.0.0.1:") for ports in published.values() for p in ports)
    assert published["nginx"] == ["127.0.0.1:18443:8443"]
    for name, s in svcs.items():
        assert s["read_only"] is True and s["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in s["security_opt"], name
        assert s.get("user") != "root", name
    assert svcs["api"]["networks"] == ["backend"] and svcs["postgres"]["networks"] == ["backend"]
    nets = subnets()
    assert nets[STACK["networks"]["backend"]["name"]][1] is True  # internal: no route off the host
    assert nets[STACK["networks"]["edge"]["name"]][1] is False
    header = (COMPOSE / "compose.stack.yaml").read_text(encoding="utf-8")
    assert "No Qdrant server" in header and "No vLLM" in header


def test_trusted_proxies_is_the_network_nginx_reaches_the_api_on(monkeypatch: pytest.MonkeyPatch) -> None:
    s = stack_settings(monkeypatch)
    backend = ipaddress.ip_network(subnets()[STACK["networks"]["backend"]["name"]][0])
    assert [ipaddress.ip_network(str(c)) for c in s.server.trusted_proxies] == [backend]
    assert "backend" in STACK["services"]["nginx"]["networks"]
    # nginx hands the client's address on, appended to what came in, and proxies to the API only
    assert re.search(r"proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;", NGINX)
    assert re.findall(r"proxy_pass (\S+);", NGINX) == ["http://api:8000"]
    assert "proxy_buffering off;" in NGINX  # streamed answers
    # PostgreSQL accepts password logins from the backend network only
    assert f"host all all {backend} scram-sha-256" in " ".join(STACK["services"]["postgres"]["command"])


def test_the_page_the_api_and_the_realm_name_one_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    s = stack_settings(monkeypatch)
    s.check_serving_safety()
    issuer = s.auth.oidc.issuer
    assert issuer == "https://127.0.0.1:19443/realms/vraagbaak"
    assert s.web.oidc_authorization_endpoint == issuer + "/protocol/openid-connect/auth"
    assert s.web.oidc_token_endpoint == issuer + "/protocol/openid-connect/token"
    # the API fetches the keys inside the network, by the provider's service name, on the same port
    assert s.auth.oidc.jwks_url == issuer.replace("127.0.0.1", "idp") + "/protocol/openid-connect/certs"
    assert str(s.auth.oidc.ca_file) == "/etc/vraagbaak/internal-ca.pem"
    assert any(v.endswith(":/etc/vraagbaak/internal-ca.pem:ro") for v in STACK["services"]["api"]["volumes"])
    assert s.web.oidc_end_session_endpoint == issuer + "/protocol/openid-connect/logout"
    # the shipped Keycloak realm: its client, its audience mapper, its claim names
    client = REALM["clients"][0]
    mappers = {m["protocolMapper"]: m["config"] for m in client["protocolMappers"]}
    assert s.web.oidc_client_id == client["clientId"] and client["publicClient"] is True
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert s.auth.oidc.audience == mappers["oidc-audience-mapper"]["included.custom.audience"]
    assert s.auth.oidc.groups_claim == mappers["oidc-group-membership-mapper"]["claim.name"]
    assert s.auth.oidc.roles_claim == mappers["oidc-usermodel-realm-role-mapper"]["claim.name"]
    assert s.web.oidc_bearer == "access_token"  # Keycloak's access tokens are JWTs for the API's audience
    assert (s.generator.backend, s.generator.fallback) == ("openai", "extractive")
    assert s.store.backend == "edge" and str(s.store.path).startswith("/var/lib/vraagbaak/")
    assert s.audit.backend == "postgresql" and s.audit.require_hmac


def test_production_compose_trusts_only_the_gateway_its_host_proxy_comes_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """compose.yaml publishes the API on loopback for the host's TLS proxy; those connections reach the
    API from the `edge` bridge's gateway, which is therefore the one trusted proxy."""
    edge = PROD["networks"]["edge"]["ipam"]["config"][0]
    env = PROD["services"]["api"]["environment"]
    trusted = yaml.safe_load(env["VRAAGBAAK_SERVER__TRUSTED_PROXIES"])
    assert trusted == [f"{edge['gateway']}/32"]
    assert ipaddress.ip_address(edge["gateway"]) in ipaddress.ip_network(edge["subnet"])
