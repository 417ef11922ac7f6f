"""Authentication before the body (issue 18, item 6), against `vraagbaak serve` as a real uvicorn process
with its own TMPDIR.

The client sends the headers and only the first bytes of the body, then waits for the answer: a server
that authenticates after reading the body would wait for the rest instead. After the 401/403 the client
tries to send the rest of a 30 MB multipart upload; the server's temp directory stays empty (nothing was
spooled).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from idp_support import free_port
from support import ROOT

STAFF_KEY, INGEST_KEY = "staff-only-key-0123456789abcdef", "ingest-key-0123456789abcdef0123"
BOUNDARY = "vraagbaak-test-boundary"
UPLOAD_BYTES = 30 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from serving.http.auth import hash_key

    tmp = tmp_path_factory.mktemp("authfirst")
    tmpdir = tmp / "server-tmp"
    tmpdir.mkdir()
    port = free_port()
    cfg = tmp / "config.yaml"
    cfg.write_text(yaml.safe_dump({
        "data_dir": str(tmp / "data"),
        "store": {"path": str(tmp / "data" / "qdrant-edge")},
        # the patient-data guard (deduce, ~1 GB per parser worker) is not what this test is about
        "ingest": {"state_path": str(tmp / "data" / "state.sqlite"), "originals_dir": str(tmp / "data" / "orig"),
                   "patient_data": {"enabled": False}},
        "audit": {"path": str(tmp / "data" / "audit.jsonl")},
        "server": {"host": "127.0.0.1", "port": port},
        "auth": {"mode": "api-key", "api_keys": [
            {"key_sha256": hash_key(STAFF_KEY), "user_id": "verpleegkundige", "roles": ["staff"], "groups": ["zorg"]},
            {"key_sha256": hash_key(INGEST_KEY), "user_id": "it", "roles": ["ingest"], "groups": ["zorg"],
             "manages": ["zorg"]},
        ]},
    }), encoding="utf-8")
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT)}
    log = (tmp / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "serving.cli.main", "serve", "--config", str(cfg)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (tmp / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "vraagbaak serve did not come up"
            time.sleep(0.5)
        yield {"url": url, "port": port, "tmpdir": tmpdir}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _answer_to_headers(port: int, method: str, path: str, headers: dict[str, str], body: bytes,
                       first: int = 65536) -> tuple[int, bytes]:
    """Send the headers and the first ``first`` bytes of ``body``, read the answer, then try the rest."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode() + body[:first])
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)  # a server that waits for the whole body times this out (60 s)
            assert chunk, "the server closed the connection without an answer"
            data += chunk
        # the answer's body may come in a later segment than its headers: read it to its Content-Length
        end = data.index(b"\r\n\r\n") + 4
        length = re.search(rb"(?im)^content-length:\s*(\d+)", data[:end])
        while length and len(data) < end + int(length.group(1)):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        status = int(data.split(b" ", 2)[1])
        try:  # the rest of the upload: the server has answered and will not read it
            for i in range(first, len(body), 1 << 20):
                s.sendall(body[i:i + (1 << 20)])
        except OSError:
            pass
        return status, data


def _multipart(size: int) -> tuple[bytes, str]:
    filler = os.urandom(1024) * (size // 1024)
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"groups\"\r\n\r\nzorg\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.pdf\"\r\n"
            "Content-Type: application/pdf\r\n\r\n").encode() + filler + f"\r\n--{BOUNDARY}--\r\n".encode()
    return body, f"multipart/form-data; boundary={BOUNDARY}"


def test_anonymous_30_mb_upload_gets_401_and_nothing_is_spooled(server: dict[str, Any]) -> None:
    body, ctype = _multipart(UPLOAD_BYTES)
    assert list(server["tmpdir"].iterdir()) == []
    status, raw = _answer_to_headers(server["port"], "POST", "/api/documents", {"Content-Type": ctype}, body)
    assert status == 401, raw
    assert b"authentication_error" in raw
    # a caller with a credential but without the ingest role: 403, just as early
    status, raw = _answer_to_headers(server["port"], "POST", "/api/documents",
                                     {"Content-Type": ctype, "Authorization": f"Bearer {STAFF_KEY}"}, body)
    assert status == 403, raw
    assert list(server["tmpdir"].iterdir()) == []  # no spooled multipart part, no temp file at all
    assert httpx.get(server["url"] + "/healthz").status_code == 200


# routes the staff role may use: a staff caller's body is read there (and answered on its merits)
STAFF_ROUTES = {"/v1/chat/completions", "/api/feedback", "/api/answer-check"}


def test_every_route_with_a_body_answers_before_the_body(server: dict[str, Any]) -> None:
    spec = httpx.get(server["url"] + "/openapi.json").json()
    routes = [(method.upper(), path.replace("{doc_id}", "doc-x").replace("{entry_id}", "q-x"))
              for path, ops in spec["paths"].items() for method, op in ops.items() if "requestBody" in op]
    assert {("POST", "/v1/chat/completions"), ("POST", "/api/documents"), ("POST", "/api/feedback"),
            ("POST", "/api/admin/reindex")} <= set(routes)
    body = b'{"x": "' + b"a" * 200_000 + b'"}'
    for method, path in routes:
        status, raw = _answer_to_headers(server["port"], method, path, {"Content-Type": "application/json"}, body,
                                         first=10)
        assert status == 401, (method, path, raw)
        # an authenticated caller who lacks the route's role is refused before the body too
        if path not in STAFF_ROUTES:
            status, raw = _answer_to_headers(server["port"], method, path, {
                "Content-Type": "application/json", "Authorization": f"Bearer {STAFF_KEY}"}, body, first=10)
            assert status == 403, (method, path, raw)
    assert list(server["tmpdir"].iterdir()) == []


def test_a_signed_in_upload_still_reads_its_body(server: dict[str, Any], tmp_path: Path) -> None:
    files = {"file": ("hygiene.md", b"# Handhygiene\n\nWrijf de handen 30 seconden in met handalcohol.\n")}
    r = httpx.post(server["url"] + "/api/documents", files=files, data={"groups": "zorg"},
                   headers={"Authorization": f"Bearer {INGEST_KEY}"}, timeout=600)
    assert r.status_code == 201, r.text
    assert r.json()["chunks"] >= 1
