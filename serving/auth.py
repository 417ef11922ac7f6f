"""Identity: API keys (stored as sha256) and OIDC bearer tokens (JWT against a local or allow-listed JWKS).

Every route that needs a caller depends on :func:`require_role`; the resulting Identity
carries the groups and clearance that retrieval filters on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from fastapi import Request

from serving.errors import ApiError
from vraagbaak_core.settings import AuthSettings
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


class Authenticator:
    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._jwks: jwt.PyJWKSet | None = None
        self._jwk_client: jwt.PyJWKClient | None = None
        oidc = settings.oidc
        if settings.mode == "oidc":
            if oidc.jwks_path is not None:
                self._jwks = jwt.PyJWKSet.from_dict(json.loads(oidc.jwks_path.read_text()))
            elif oidc.jwks_url is not None:
                self._jwk_client = jwt.PyJWKClient(oidc.jwks_url, cache_keys=True, lifespan=3600)

    def identify(self, authorization: str | None) -> Identity:
        s = self.settings
        if s.mode == "insecure-dev":
            return Identity(
                user_id=s.dev_user, roles=frozenset(ROLES), groups=frozenset(s.dev_groups),
                clearance=s.dev_clearance, auth_method="insecure-dev",
            )
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AuthError("missing bearer credentials")
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
                    clearance=entry.clearance, auth_method="api-key",
                )
        raise AuthError("unknown API key")

    def _signing_key(self, token: str) -> Any:
        if self._jwk_client is not None:
            return self._jwk_client.get_signing_key_from_jwt(token).key
        assert self._jwks is not None
        kid = jwt.get_unverified_header(token).get("kid")
        for k in self._jwks.keys:
            if kid is None or k.key_id == kid:
                return k.key
        raise AuthError("token signed with an unknown key")

    def _oidc(self, token: str) -> Identity:
        o = self.settings.oidc
        try:
            claims = jwt.decode(
                token, self._signing_key(token), algorithms=o.algorithms, audience=o.audience,
                issuer=o.issuer, options={"require": ["exp", "sub"]},
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
        )


def _as_list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v]


def require_role(role: str) -> Callable[[Request], Awaitable[Identity]]:
    """FastAPI dependency: the caller's Identity, or 401 (no/bad credentials) / 403 (missing role)."""

    async def dependency(request: Request) -> Identity:
        comps = request.app.state.components
        try:
            identity: Identity = comps.authenticator.identify(request.headers.get("authorization"))
        except AuthError as err:
            comps.audit_auth_failure(request, err.reason)
            raise ApiError(
                401, "authentication required: " + err.reason, "authentication_error", "invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            ) from None
        if not identity.has_role(role):
            comps.audit_auth_failure(request, f"user {identity.user_id} lacks role {role}", identity)
            raise ApiError(403, f"this needs the {role!r} role", "permission_error", "forbidden")
        comps.rate_limiter.check(identity.user_id)
        request.state.identity = identity
        return identity

    return dependency
