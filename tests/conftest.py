"""Shared fixtures, and a guard that fails any test opening a socket to a non-loopback address."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pg_server import pg_dsn, pg_server  # noqa: F401  (real PostgreSQL fixtures)
from support import MODEL_DIR

# --------------------------------------------------------------------------- socket guard

_ALLOWED_HOSTS: set[str] = set()
if os.environ.get("QDRANT_URL"):
    _ALLOWED_HOSTS.add(urlparse(os.environ["QDRANT_URL"]).hostname or "")
_violations: list[str] = []


def _loopback_or_allowed(host: Any) -> bool:
    host = str(host)
    if host in _ALLOWED_HOSTS or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _socket_guard(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect":
        return
    sock, address = args[0], args[1]
    if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return
    if isinstance(address, tuple) and not _loopback_or_allowed(address[0]):
        _violations.append(f"{address[0]}:{address[1]}")
        raise ConnectionRefusedError(f"test guard: socket to non-loopback address {address[0]}:{address[1]}")


sys.addaudithook(_socket_guard)


@pytest.fixture(autouse=True)
def _no_external_sockets() -> Iterator[None]:
    before = len(_violations)
    yield
    new = _violations[before:]
    if new:
        pytest.fail(f"test opened a socket to a non-loopback address: {', '.join(new)}")


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """An in-process CLI call replaces the root logger's handlers with one on the stderr of that moment
    (pytest's capture of that test): put them back, so that no later log line (a leftover thread's, say)
    goes to a closed stream and prints a traceback from another thread (CI at stop 26)."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# --------------------------------------------------------------------------- real components


def _require_models() -> None:
    if not (MODEL_DIR / "vraagbaak-prepare.json").is_file():
        pytest.fail(f"{MODEL_DIR} is missing: run `make models` (make test does this first)")


@pytest.fixture(scope="session")
def embedder() -> Any:
    from retrieval.embedders import build_embedder
    from vraagbaak_core.settings import EmbedderSettings

    return build_embedder(EmbedderSettings())  # the embedded default


@pytest.fixture(scope="session")
def generator() -> Any:
    _require_models()
    from serving.staff.generators.transformers_local import TransformersGenerator

    return TransformersGenerator(MODEL_DIR, 2048)


# --------------------------------------------------------------------------- the real OpenID provider



@pytest.fixture(scope="module")
def real_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """tests/idp/server.mjs (npm oidc-provider, Keycloak-shaped) on loopback over TLS from a test CA."""
    from idp_support import IDP_USERS, RealIdp, node_ready

    why = node_ready()
    if why:
        pytest.fail(why)
    with RealIdp(tmp_path_factory.mktemp("idp"), users=IDP_USERS) as idp:
        yield idp
