"""The shipped realm settings, the k8s/compose settings and the ingress agree (issue 18, item 7).

- deploy/keycloak/vraagbaak-realm.json (the Keycloak client, roles and mappers a hospital imports) and
  deploy/k8s/base/config.yaml name the same issuer, endpoints, client, audience and claims;
- a token of the shape Keycloak issues with that realm (RS256, no ``nbf``, claims as the mappers name them)
  is accepted by an Authenticator built from the k8s settings, and one without the audience mapper is not;
- ``server.trusted_proxies`` covers the proxy in front of the API and nothing broader: k8s (the ingress
  controller's pods) and compose (an nginx service on the API's network, or, with the port published to a
  proxy on the host, only the bridge's gateway).
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from support import ROOT

REALM = ROOT / "deploy" / "keycloak" / "vraagbaak-realm.json"
K8S_CONFIG = ROOT / "deploy" / "k8s" / "base" / "config.yaml"
K8S_API = ROOT / "deploy" / "k8s" / "base" / "api.yaml"
K8S_POLICIES = ROOT / "deploy" / "k8s" / "base" / "networkpolicies.yaml"
COMPOSE_DIR = ROOT / "deploy" / "compose"


def _realm() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REALM.read_text(encoding="utf-8"))
    return data


def _client(realm: dict[str, Any], client_id: str) -> dict[str, Any]:
    found = [c for c in realm["clients"] if c["clientId"] == client_id]
    assert len(found) == 1, f"the realm has no client {client_id!r}"
    return found[0]


def _mapper(client: dict[str, Any], kind: str) -> list[dict[str, str]]:
    return [m["config"] for m in client["protocolMappers"] if m["protocolMapper"] == kind]


def _k8s() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(K8S_CONFIG.read_text(encoding="utf-8"))
    return data


def test_realm_and_k8s_settings_agree() -> None:
    realm, cfg = _realm(), _k8s()
    oidc, web = cfg["auth"]["oidc"], cfg["web"]
    assert cfg["auth"]["mode"] == "oidc"
    issuer = oidc["issuer"]
    assert issuer.startswith("https://") and issuer.endswith(f"/realms/{realm['realm']}")
    base = issuer + "/protocol/openid-connect"
    assert oidc["jwks_url"] == base + "/certs"
    assert (web["oidc_authorization_endpoint"], web["oidc_token_endpoint"], web["oidc_end_session_endpoint"]) == (
        base + "/auth", base + "/token", base + "/logout")
    assert web.get("oidc_bearer", "access_token") == "access_token"  # the JWT access token, with the mappers

    client = _client(realm, web["oidc_client_id"])
    assert client["publicClient"] and client["standardFlowEnabled"]
    assert not client["implicitFlowEnabled"] and not client["directAccessGrantsEnabled"]
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    # the page's address as the ingress serves it
    api = list(yaml.safe_load_all(K8S_API.read_text(encoding="utf-8")))
    host = next(d for d in api if d and d["kind"] == "Ingress")["spec"]["rules"][0]["host"]
    assert client["redirectUris"] == [f"https://{host}/chat"]  # the page's redirect_uri (app.js)
    assert client["webOrigins"] == [f"https://{host}"]  # CORS at the token endpoint for the page
    assert client["attributes"]["post.logout.redirect.uris"] == f"https://{host}/"

    audience = _mapper(client, "oidc-audience-mapper")
    assert [a["included.custom.audience"] for a in audience] == [oidc["audience"]]
    assert audience[0]["access.token.claim"] == "true"
    groups = _mapper(client, "oidc-group-membership-mapper")
    assert len(groups) == 1 and groups[0]["claim.name"] == oidc.get("groups_claim", "groups")
    assert groups[0]["full.path"] == "false" and groups[0]["access.token.claim"] == "true"
    roles = _mapper(client, "oidc-usermodel-realm-role-mapper")
    assert len(roles) == 1 and roles[0]["claim.name"] == oidc.get("roles_claim", "roles")
    assert roles[0]["multivalued"] == "true" and roles[0]["access.token.claim"] == "true"
    attrs = {m["claim.name"]: m for m in _mapper(client, "oidc-usermodel-attribute-mapper")}
    assert attrs.keys() == {oidc.get("clearance_claim", "clearance"), oidc.get("manages_claim", "manages")}

    from serving.http.auth import ROLES

    assert {r["name"] for r in realm["roles"]["realm"]} == set(ROLES)
    assert set(oidc["algorithms"]) == {"RS256"}  # Keycloak's default realm key (rsa-generated)
    assert cfg["ui"]["idle_timeout_s"] == 900 and cfg["ui"]["history"] in ("session", "off")


def _keycloak_token(key: Any, issuer: str, realm: dict[str, Any], with_audience: bool = True) -> str:
    """An access token as Keycloak issues it with the realm's client: its own claims (typ, azp, scope,
    realm_access …), no nbf, plus what the client's mappers add."""
    client = _client(realm, "vraagbaak-web")
    now = int(time.time())
    claims: dict[str, Any] = {
        "exp": now + 300, "iat": now, "auth_time": now - 10, "jti": "onrtac:3b1e", "iss": issuer,
        "aud": ["account"], "sub": "7d4e1b52-6a2f-4c55-9d3e-0b8f1d2c9a11", "typ": "Bearer", "azp": "vraagbaak-web",
        "sid": "a1b2", "acr": "1", "scope": "openid profile email", "preferred_username": "j.devries",
        "realm_access": {"roles": ["default-roles-zorg", "offline_access", "staff"]},
    }
    if with_audience:
        claims["aud"] = [*claims["aud"], _mapper(client, "oidc-audience-mapper")[0]["included.custom.audience"]]
    claims[_mapper(client, "oidc-group-membership-mapper")[0]["claim.name"]] = ["zorg", "ic"]
    claims[_mapper(client, "oidc-usermodel-realm-role-mapper")[0]["claim.name"]] = [
        "default-roles-zorg", "offline_access", "staff"]
    claims["clearance"] = "intern"
    return jwt.encode(claims, key, "RS256", headers={"kid": "kc-rsa-1", "typ": "JWT"})


def test_a_keycloak_token_of_the_shipped_realm_is_accepted_by_the_k8s_settings(tmp_path: Path) -> None:
    from serving.http.auth import Authenticator, AuthError
    from vraagbaak_core.settings import AuthSettings

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="kc-rsa-1", use="sig", alg="RS256")
    (tmp_path / "certs.json").write_text(json.dumps({"keys": [jwk]}))
    oidc = {**_k8s()["auth"]["oidc"], "jwks_url": None, "jwks_path": str(tmp_path / "certs.json")}
    auth = Authenticator(AuthSettings.model_validate({"mode": "oidc", "oidc": oidc}))
    realm = _realm()

    token = _keycloak_token(key, oidc["issuer"], realm)
    assert "nbf" not in jwt.decode(token, options={"verify_signature": False})
    who = auth.identify("Bearer " + token)
    assert who.user_id == "7d4e1b52-6a2f-4c55-9d3e-0b8f1d2c9a11"
    assert who.roles == {"staff"} and who.groups == {"zorg", "ic"} and who.clearance == "intern"
    # without the client's audience mapper Keycloak's token is for "account" only: refused
    with pytest.raises(AuthError, match="(?i)audience"):
        auth.identify("Bearer " + _keycloak_token(key, oidc["issuer"], realm, with_audience=False))


def _networks(values: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(v) for v in values]


def test_k8s_trusts_the_ingress_controller_and_nothing_broader() -> None:
    from vraagbaak_core.settings import ServerSettings

    trusted = _networks(_k8s()["server"]["trusted_proxies"])
    ServerSettings.model_validate({"trusted_proxies": [str(n) for n in trusted]})  # the settings accept them
    assert trusted and all(n.is_private and n.prefixlen >= 8 for n in trusted)
    # the API is reached only through the ingress controller (its namespace is the only one let in), so
    # every peer is an ingress pod on the pod network: that network is what trusted_proxies lists
    policies = [d for d in yaml.safe_load_all(K8S_POLICIES.read_text(encoding="utf-8")) if d]
    api = next(p for p in policies if p["metadata"]["name"] == "api")
    sources = [f for rule in api["spec"]["ingress"] for f in rule["from"]]
    assert [s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for s in sources] == ["ingress-nginx"]
    ingress = next(d for d in yaml.safe_load_all(K8S_API.read_text(encoding="utf-8")) if d and d["kind"] == "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"


def _compose_trusted(service: dict[str, Any], settings_file: Path | None) -> list[str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    if "VRAAGBAAK_SERVER__TRUSTED_PROXIES" in env:
        value = json.loads(env["VRAAGBAAK_SERVER__TRUSTED_PROXIES"])
        return [str(v) for v in value]
    if settings_file is not None and settings_file.is_file():
        data = yaml.safe_load(settings_file.read_text(encoding="utf-8")) or {}
        return [str(v) for v in (data.get("server") or {}).get("trusted_proxies", [])]
    return []


def _subnets(doc: dict[str, Any], net: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """A compose network's subnets: its ipam config, or, for an external network, the
    ``network create --subnet CIDR NAME`` that a script of this repository runs (podman-compose 1.0 sets none)."""
    spec = doc.get("networks", {}).get(net) or {}
    found = [c["subnet"] for c in spec.get("ipam", {}).get("config", []) if "subnet" in c]
    if not found and spec.get("external"):
        name = spec.get("name", net)
        pattern = re.compile(r"network create\b[^\n]*--subnet[ =](\S+)[^\n]*\s" + re.escape(name) + r"\b")
        for script in sorted((ROOT / "scripts").iterdir()):
            if script.is_file():
                found += pattern.findall(script.read_text(encoding="utf-8", errors="replace"))
    return _networks(found)


def test_compose_trusts_exactly_its_reverse_proxy() -> None:
    files = sorted(p for p in COMPOSE_DIR.glob("*.y*ml") if "services" in (yaml.safe_load(p.read_text()) or {}))
    assert files
    seen_apis = 0
    for path in files:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        services: dict[str, Any] = doc["services"]
        apis = {n: s for n, s in services.items() if n in ("api", "vraagbaak")}
        seen_apis += len(apis)
        proxies = {n: s for n, s in services.items() if "nginx" in str(s.get("image", "")) or n in ("nginx", "proxy")}
        for name, api in apis.items():
            mounted = [v.split(":")[0] for v in api.get("volumes", [])
                       if str(v).endswith(":/etc/vraagbaak/config.yaml:ro")]
            settings_file = (path.parent / mounted[0]) if mounted else None
            if settings_file is not None and not settings_file.is_file():
                settings_file = settings_file.with_name(settings_file.name.replace(".yaml", ".example.yaml"))
            trusted = _networks(_compose_trusted(api, settings_file))
            if not proxies:
                # the API's port is published: a reverse proxy on the host reaches it from the bridge's
                # gateway, so that single address may be trusted, and nothing else
                gateways = {ipaddress.ip_address(c["gateway"]) for net in api.get("networks", [])
                            for c in ((doc.get("networks", {}).get(net) or {}).get("ipam", {}).get("config", []))
                            if "gateway" in c}
                for t in trusted:
                    assert t.num_addresses == 1 and t.network_address in gateways, (
                        f"{path.name}: {name} is published directly; it may trust its network's gateway "
                        f"{sorted(map(str, gateways))} only, not {t}")
                continue
            for pname, proxy in proxies.items():
                shared = set(proxy.get("networks", [])) & set(api.get("networks", []))
                assert shared, f"{path.name}: {pname} and {name} share no network"
                for net in shared:
                    subnets = _subnets(doc, net)
                    assert subnets, f"{path.name}: network {net} needs a fixed subnet for trusted_proxies"
                    assert any(s.subnet_of(t) for s in subnets for t in trusted if s.version == t.version), (
                        f"{path.name}: trusted_proxies {trusted} does not cover {pname}'s network {subnets}")
            assert all(t.prefixlen >= 16 for t in trusted)
    assert seen_apis >= 1, "no API service found in deploy/compose"
