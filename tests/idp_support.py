"""The real OpenID provider for tests (tests/idp/server.mjs: npm oidc-provider configured like a hospital's
Keycloak realm), on loopback over TLS with a certificate from an internal CA the test makes.

- :func:`make_pki` writes a CA and a server certificate (127.0.0.1, ::1, localhost and extra names);
- :class:`RealIdp` starts and stops the provider process, signs users in with authorization code + PKCE
  exactly as the staff page does (:meth:`RealIdp.token`), and rotates the signing key (:meth:`RealIdp.rotate`).

Needs node and ``scripts/install-idp`` (``make test`` runs it). The CI stack (deploy/compose) uses the
same server.mjs and config format.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
IDP_DIR = ROOT / "tests" / "idp"
SERVER = IDP_DIR / "server.mjs"
REALM = "vraagbaak"
CLIENT_ID = "vraagbaak-web"
AUDIENCE = "vraagbaak-api"


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    cert: Path
    key: Path


def make_pki(directory: Path, names: tuple[str, ...] = ()) -> Pki:
    """An internal CA and a server certificate it signed, for loopback (and ``names``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ziekenhuis interne CA (test)")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                    x509.IPAddress(ipaddress.ip_address("::1"))]
    sans += [x509.DNSName(n) for n in names]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    pki.key.chmod(0o600)
    return pki


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def node_ready() -> str | None:
    """Why the provider cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm)"
    if not (IDP_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        return "tests/idp/node_modules is missing: run scripts/install-idp (make test does)"
    return None


START_TIMEOUT_S = 60.0  # the provider prints 'ready' within a few seconds on 2 busy cores
# the second try waits at least this long: a test that shortens START_TIMEOUT_S to see the first (hanging)
# try killed must not also cut short the real start after it (fresh-clone CI, 8 Dec: 5 s was too few)
RETRY_TIMEOUT_S = 60.0


@dataclass
class RealIdp:
    """One provider process. ``users``: dicts with username, password, groups, roles (and clearance, manages)."""

    workdir: Path
    users: list[dict[str, Any]]
    redirect_uris: list[str] = field(default_factory=lambda: ["https://127.0.0.1/callback"])
    web_origins: list[str] = field(default_factory=list)
    access_token_ttl: int = 300
    port: int = 0
    pki: Pki | None = None
    proc: subprocess.Popen[str] | None = None
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.origin}/realms/{REALM}"

    @property
    def endpoints(self) -> dict[str, str]:
        base = self.issuer + "/protocol/openid-connect"
        return {"authorization": base + "/auth", "token": base + "/token", "jwks": base + "/certs",
                "logout": base + "/logout"}

    def config(self) -> dict[str, Any]:
        assert self.pki is not None
        return {
            "issuer": self.issuer, "host": "127.0.0.1", "realm_name": "Ziekenhuis (test)",
            "tls": {"cert": str(self.pki.cert), "key": str(self.pki.key)},
            "keys_file": str(self.workdir / "signing-keys.json"),
            "audience": AUDIENCE, "claims": {"groups": "groups", "roles": "roles"},
            "clients": [{"client_id": CLIENT_ID, "redirect_uris": self.redirect_uris,
                         "web_origins": self.web_origins,
                         "post_logout_redirect_uris": [o + "/" for o in self.web_origins]}],
            "users": self.users, "admin_token": self.admin_token, "access_token_ttl": self.access_token_ttl,
        }

    def start(self) -> RealIdp:
        why = node_ready()
        if why:
            raise RuntimeError(why)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = self.pki or make_pki(self.workdir / "pki")
        self.port = self.port or free_port()
        cfg = self.workdir / "idp.json"
        cfg.write_text(json.dumps(self.config()), encoding="utf-8")
        # Node 20 once hung before listening (every thread on a futex, no key written; fresh-clone CI,
        # 7 Dec): a start that says nothing within START_TIMEOUT_S is killed and tried once more.
        for attempt in (1, 2):
            log = (self.workdir / "idp.log").open("a")
            self.proc = subprocess.Popen(["node", str(SERVER), str(cfg)], cwd=IDP_DIR, stdout=subprocess.PIPE,
                                         stderr=log, text=True, env={**os.environ, "NODE_ENV": "production"})
            line = self._first_line(START_TIMEOUT_S if attempt == 1 else max(START_TIMEOUT_S, RETRY_TIMEOUT_S))
            if line == f"ready {self.issuer}":
                return self
            self.stop()
            if line is not None or attempt == 2:
                raise RuntimeError(f"the OpenID provider did not start (try {attempt}): {line!r}; "
                                   f"{(self.workdir / 'idp.log').read_text()[-2000:]}")
            log.write(f"\n[test] no 'ready' within {START_TIMEOUT_S} s: killed, starting again\n")
            log.close()
        raise AssertionError("unreachable")

    def _first_line(self, timeout: float) -> str | None:
        """The provider's first line on stdout, or None when it says nothing within ``timeout``."""
        import selectors

        assert self.proc is not None and self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                return None
        return self.proc.stdout.readline().strip()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self) -> RealIdp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self) -> httpx.Client:
        assert self.pki is not None
        return httpx.Client(verify=ssl.create_default_context(cafile=str(self.pki.ca_cert)), trust_env=False,
                            timeout=30.0)

    def rotate(self) -> str:
        """A new signing key (new kid) signs from now on; the old ones stay published. Returns the new kid."""
        with self.client() as c:
            r = c.post(self.origin + "/-/rotate", headers={"x-admin-token": self.admin_token})
            r.raise_for_status()
            return str(r.json()["kid"])

    def jwks(self) -> dict[str, Any]:
        with self.client() as c:
            r = c.get(self.endpoints["jwks"])
            r.raise_for_status()
            data: dict[str, Any] = r.json()
            return data

    def token(self, username: str, password: str | None = None) -> dict[str, Any]:
        """Sign in with authorization code + PKCE (S256) as the staff page does; the token response."""
        user = next(u for u in self.users if u["username"] == username)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        redirect = self.redirect_uris[0]
        params = {"client_id": CLIENT_ID, "response_type": "code", "scope": "openid profile",
                  "redirect_uri": redirect, "state": secrets.token_urlsafe(8), "code_challenge": challenge,
                  "code_challenge_method": "S256"}
        with self.client() as c:
            r = c.get(self.endpoints["authorization"] + "?" + urlencode(params))
            for _ in range(10):
                if r.status_code in (302, 303) and r.headers["location"].startswith(redirect):
                    break
                if r.status_code in (302, 303):
                    r = c.get(urljoin(str(r.url), r.headers["location"]))
                    continue
                action = re.search(r'<form method="post" action="([^"]+)"', r.text)
                assert r.status_code == 200 and action, (r.status_code, r.text[:500])
                r = c.post(urljoin(str(r.url), action.group(1)),
                           data={"username": username, "password": password or user["password"]})
            else:
                raise AssertionError("no redirect back with a code")
            q = parse_qs(urlsplit(r.headers["location"]).query)
            assert "code" in q, q
            t = c.post(self.endpoints["token"], data={
                "grant_type": "authorization_code", "code": q["code"][0], "redirect_uri": redirect,
                "client_id": CLIENT_ID, "code_verifier": verifier})
            assert t.status_code == 200, t.text
            body: dict[str, Any] = t.json()
            return body


IDP_USERS = [
    {"username": "verpleegkundige", "password": "zorg-wachtwoord", "groups": ["zorg"], "roles": ["staff"],
     "clearance": "intern"},
    {"username": "it-beheer", "password": "beheer-wachtwoord", "groups": ["zorg"], "roles": ["staff", "ingest"],
     "manages": ["zorg"]},
]
