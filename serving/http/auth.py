"""Identity: API keys (stored as sha256) and OIDC bearer tokens (JWT against a local or allow-listed JWKS).

Every route that needs a caller depends on :func:`require_role`; the resulting Identity
carries the groups and clearance that retrieval filters on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import jwt
from fastapi import Request

from serving.http.errors import ApiError
from vraagbaak_core.settings import AuthSettings, ConfigError
from vraagbaak_core.types import CLASSIFICATIONS, Identity

log = logging.getLogger(__name__)
ROLES = ("staff", "ingest", "auditor", "admin")


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class AuthError(Exception):
    def __init__(self, reason: str, user_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.user_id = user_id


class MissingCredentials(AuthError):
    """No credential at all: a caller that has not signed in yet, not a failed sign-in."""


_KEY_FAMILIES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


class _Jwks:
    """The signing keys: a local JWKS file, or an allow-listed JWKS URL fetched in a worker thread.

    An unknown ``kid`` refetches the URL at most once per ``refetch_interval_s`` (key rotation),
    so a flood of tokens with made-up key ids never turns into a flood of fetches.
    """

    def __init__(
        self, path: Path | None, url: str | None, refetch_interval_s: float, ca_file: Path | None = None
    ) -> None:
        self.path, self.url = path, url
        self.refetch_interval_s = refetch_interval_s
        self.tls = trust_store(ca_file) if url is not None else None
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = -math.inf
        self._lock = threading.Lock()
        self.fetches = 0
        if path is not None:
            self._keys = _parse_jwks(json.loads(path.read_text()))

    def _fetch(self) -> None:
        assert self.url is not None
        self.fetches += 1
        self._fetched_at = time.monotonic()
        try:
            # no proxy or CA from the environment: the system trust store plus auth.oidc.ca_file, only
            with httpx.Client(timeout=5.0, trust_env=False, verify=self.tls or True) as client:
                resp = client.get(self.url)
                resp.raise_for_status()
                self._keys = _parse_jwks(resp.json())
        except (httpx.HTTPError, ValueError) as err:
            log.warning("JWKS fetch from %s failed: %s", self.url, type(err).__name__)

    def key(self, kid: str | None) -> jwt.PyJWK:
        """Blocking (may fetch): call from a worker thread, never on the event loop."""
        with self._lock:
            found = self._lookup(kid)
            if found is None and self.url is not None:
                if time.monotonic() - self._fetched_at >= self.refetch_interval_s:
                    self._fetch()
                    found = self._lookup(kid)
            if found is None:
                raise AuthError("token signed with an unknown key")
            return found

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is not None:
            return self._keys.get(kid)
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None


def trust_store(ca_file: Path | None) -> ssl.SSLContext:
    """The system's trusted CAs (OpenSSL's default paths, e.g. /etc/ssl/certs) plus ``ca_file`` (a hospital's
    internal CA, PEM); a missing or unreadable file is an error at startup, not at the first sign-in."""
    ctx = ssl.create_default_context()
    if ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"auth.oidc.ca_file {ca_file}: cannot load it as PEM certificates ({err})") from None
    return ctx


def _parse_jwks(data: Any) -> dict[str | None, jwt.PyJWK]:
    out: dict[str | None, jwt.PyJWK] = {}
    for raw in data.get("keys", []) if isinstance(data, dict) else []:
        if raw.get("use", "sig") != "sig" or raw.get("kty") == "oct":
            continue  # encryption keys and symmetric secrets never verify a token
        try:
            jwk = jwt.PyJWK.from_dict(raw)
        except jwt.PyJWTError:
            continue
        jwk.vraagbaak_alg = raw.get("alg")  # type: ignore[attr-defined]  # the alg the key is pinned to
        out[raw.get("kid")] = jwk
    return out


class Authenticator:
    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.jwks: _Jwks | None = None
        oidc = settings.oidc
        if settings.mode == "oidc":
            self.jwks = _Jwks(oidc.jwks_path, oidc.jwks_url, oidc.refetch_interval_s, oidc.ca_file)

    async def aidentify(self, authorization: str | None) -> Identity:
        """:meth:`identify` for the event loop: OIDC (which may fetch keys) runs in a worker thread."""
        if self.settings.mode == "oidc":
            return await anyio.to_thread.run_sync(self.identify, authorization)
        return self.identify(authorization)

    def identify(self, authorization: str | None) -> Identity:
        s = self.settings
        if s.mode == "insecure-dev":
            return Identity(
                user_id=s.dev_user, roles=frozenset(s.dev_roles), groups=frozenset(s.dev_groups),
                clearance=s.dev_clearance, auth_method="insecure-dev", manages=frozenset(s.dev_manages),
            )
        if not authorization or not authorization.strip():
            raise MissingCredentials("missing bearer credentials")
        if not authorization.lower().startswith("bearer "):
            raise AuthError("not a bearer credential")
        token = authorization[7:].strip()
        if s.mode == "api-key":
            return self._api_key(token)
        return self._oidc(token)

    def _api_key(self, key: str) -> Identity:
        digest = hash_key(key)
        for entry in self.settings.api_keys:
            if hmac.compare_digest(entry.key_sha256, digest):
                return Identity(
                    user_id=entry.user_id, roles=frozenset(entry.roles), groups=frozenset(entry.groups),
                    clearance=entry.clearance, auth_method="api-key", manages=frozenset(entry.manages),
                )
        raise AuthError("unknown API key")

    def _signing_key(self, token: str) -> Any:
        o = self.settings.oidc
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as err:
            raise AuthError(f"invalid token: {err}") from None
        alg = header.get("alg")
        if alg not in o.algorithms:
            raise AuthError(f"token algorithm {alg!r} is not allowed")
        assert self.jwks is not None
        jwk = self.jwks.key(header.get("kid"))
        # the key decides the algorithm family: an RSA key never verifies an HS*/ES* token, etc.
        pinned = getattr(jwk, "vraagbaak_alg", None)
        if _KEY_FAMILIES.get(str(alg)[:2]) != jwk.key_type or pinned not in (alg, None):
            raise AuthError(f"token algorithm {alg!r} does not match its key")
        return jwk.key

    def _oidc(self, token: str) -> Identity:
        o = self.settings.oidc
        try:
            claims = jwt.decode(
                token, self._signing_key(token), algorithms=o.algorithms, audience=o.audience,
                issuer=o.issuer, leeway=o.leeway_s,
                # nbf is checked when present, never required: Keycloak's access tokens carry none
                options={"require": ["exp", "iat", "iss", "aud", o.user_claim],
                         "verify_exp": True, "verify_nbf": True, "verify_iat": True, "verify_iss": True,
                         "verify_aud": True},
            )
        except jwt.PyJWTError as err:
            raise AuthError(f"invalid token: {err}") from None
        roles = [r for r in _as_list(claims.get(o.roles_claim)) if r in ROLES]
        clearance = str(claims.get(o.clearance_claim, "openbaar"))
        if clearance not in CLASSIFICATIONS:
            clearance = "openbaar"
        return Identity(
            user_id=str(claims[o.user_claim]), roles=frozenset(roles),
            groups=frozenset(_as_list(claims.get(o.groups_claim))), clearance=clearance, auth_method="oidc",
            manages=frozenset(_as_list(claims.get(o.manages_claim))),
        )


def _as_list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v]


async def authenticate(request: Request, role: str | None) -> Identity:
    """The caller's Identity from the request's headers alone (the body is never read here), or ApiError:
    401 (no or bad credentials), 429 (too many failed sign-ins from this address, or the per-user rate),
    403 (the role is missing; ``role=None``: any signed-in caller).

    The failed-sign-in limit counts bad credentials per client address (``request.client``: behind a
    trusted proxy the workstation's, see serving/http/proxies.py). A request without any credential is not a
    failed sign-in (the page asks ``/v1/whoami`` before sign-in), and valid credentials are never refused
    by that limit: they are always checked, so a shared proxy or ward PC address cannot lock its users out.
    """
    comps = request.app.state.components
    client = request.client.host if request.client else "unknown"
    try:
        identity: Identity = await comps.authenticator.aidentify(request.headers.get("authorization"))
    except MissingCredentials as err:
        raise _unauthenticated(err.reason) from None
    except AuthError as err:
        if comps.auth_failures.blocked(client):  # counted in the address's window, not audited one by one
            raise ApiError(
                429, "too many failed sign-ins from this address; try again later", "rate_limit_exceeded",
                "auth_rate_limited", headers={"Retry-After": "60"},
            ) from None
        await comps.run_blocking(comps.auth_failures.failed, client, err.reason)
        raise _unauthenticated(err.reason) from None
    if role is not None and not identity.has_role(role):
        comps.rate_limiter.check(identity.user_id)
        await comps.run_blocking(
            comps.auth_failures.refused, client, f"user {identity.user_id} lacks role {role}", identity.user_id
        )
        raise ApiError(403, f"this needs the {role!r} role", "permission_error", "forbidden")
    comps.rate_limiter.check(identity.user_id)
    return identity


def _unauthenticated(reason: str) -> ApiError:
    return ApiError(
        401, "authentication required: " + reason, "authentication_error", "invalid_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )


ROLE_ATTRIBUTE = "vraagbaak_role"


def require_role(role: str) -> Callable[[Request], Awaitable[Identity]]:
    """FastAPI dependency: the caller's Identity, or 401 (no/bad credentials) / 403 (missing role).

    serving/http/authfirst.py runs the same check from the headers before the route reads its body and
    leaves the Identity in ``request.state``; this dependency then only hands it on.
    """

    async def dependency(request: Request) -> Identity:
        done: dict[str, Identity] = getattr(request.state, "authorized", {})
        identity = done.get(role)
        if identity is None:
            identity = await authenticate(request, role)
            request.state.authorized = {**done, role: identity}
        request.state.identity = identity
        return identity

    setattr(dependency, ROLE_ATTRIBUTE, role)
    return dependency



def require_signed_in() -> Callable[[Request], Awaitable[Identity]]:
    """FastAPI dependency: the caller's Identity whatever its roles (401 without valid credentials, with the
    failed-sign-in accounting of :func:`authenticate`); for pages that show sections by role, while every
    route checks its own role."""

    async def dependency(request: Request) -> Identity:
        identity = await authenticate(request, None)
        request.state.identity = identity
        return identity

    return dependency
