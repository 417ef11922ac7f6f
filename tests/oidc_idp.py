"""A real OIDC provider process for the browser test: ``oidc-provider-mock`` (authlib + Flask, PyPI).

Run as ``python tests/oidc_idp.py PORT PAGE_ORIGIN USERS_JSON``. It serves discovery, an
authorization form, the token endpoint and the JWKS on 127.0.0.1:PORT; ID tokens are RS256 JWTs
carrying each user's custom claims (groups, roles, clearance). Two settings a real IdP offers for a
browser app: public clients (``none`` auth) at the token endpoint, and CORS on it for the page's
origin (Keycloak's "Web origins").
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

import werkzeug.serving

os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # loopback http in the test only

from oidc_provider_mock import app as make_app
from oidc_provider_mock._app import AuthorizationCodeGrant
from oidc_provider_mock._storage import User

# A public client (no secret, PKCE) at the token endpoint, as Keycloak's "Client authentication: off";
# the package's grant allows only client_secret_basic by default.
AuthorizationCodeGrant.TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


def with_cors(wsgi: Any, origin: str) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if environ.get("PATH_INFO") == "/oauth2/token":
                headers = [*headers, ("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
            return start_response(status, headers, exc_info)

        if environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get("PATH_INFO") == "/oauth2/token":
            start_response("204 No Content", [("Access-Control-Allow-Origin", origin),
                                              ("Access-Control-Allow-Methods", "POST"),
                                              ("Access-Control-Allow-Headers", "Content-Type")])
            return [b""]
        result: Iterable[bytes] = wsgi(environ, start)
        return result

    return app


def main() -> None:
    port, origin, users_json = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    # no nbf added: the API checks nbf only when a token has one (Keycloak's and this provider's have none)
    users = [User(sub=u["sub"], claims={k: v for k, v in u.items() if k != "sub"}) for u in json.loads(users_json)]
    server = werkzeug.serving.make_server("127.0.0.1", port, with_cors(make_app(user_claims=users), origin),
                                          threaded=True)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
