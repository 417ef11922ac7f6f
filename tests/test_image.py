"""The real image (scripts/build-image; CI builds it FROM the debootstrap base), run with podman as it
runs in production: uid 10001, read-only root filesystem, one writable volume, no network.

- the tools the product uses are inside (Tesseract nld+eng, pdftoppm, the Dutch word list, deduce with
  its lookup tables built, the pinned models verified);
- `vraagbaak ingest` in the image reads a scanned PDF with OCR (answerable afterwards, with its page)
  and quarantines a letter with a BSN (the patient-data guard's default);
- the staff page and pdf.js are served by the image.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from container_support import IMAGE, podman, require_image, ulimit_args
from fixtures.scans import PAGES_NL, image_pdf, scan_png

pytestmark = [pytest.mark.image, pytest.mark.slow]

BSN_LETTER = "# Brief\n\nBetreft mevrouw S. de Vries, BSN 111222333, opname op de IC.\n"
PROTOCOL = "# Protocol\n\nControleer het BSN van de patiënt op het polsbandje.\n"


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


@pytest.fixture(scope="module")
def volume() -> Iterator[str]:
    require_image()
    name = f"vraagbaak-test-{secrets.token_hex(4)}"
    podman("volume", "create", name, check=True, timeout=60)
    yield name
    podman("volume", "rm", "-f", name, timeout=120)


def _run(volume: str, tmp: Path, *args: str, entrypoint: str | None = None, timeout: float = 600) -> str:
    """One command in the image, as production runs it: read-only root, uid 10001, no network."""
    tmp.chmod(0o755)  # the image runs as uid 10001, which reads what the test mounts
    cmd = ["run", "--rm", "--read-only", "--network=none", "--cap-drop=ALL", "--security-opt=no-new-privileges",
           *ulimit_args(), "-v", f"{volume}:/var/lib/vraagbaak", "-v", f"{tmp}:/work:ro"]
    if (tmp / "config.yaml").is_file():
        cmd += ["-v", f"{tmp / 'config.yaml'}:/etc/vraagbaak/config.yaml:ro"]
    if entrypoint:
        cmd += ["--entrypoint", entrypoint]
    proc = podman(*cmd, IMAGE, *args, timeout=timeout)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _json(out: str) -> dict[str, Any]:
    """The JSON document a --json command printed (the OCR worker's library logs a DEBUG line first)."""
    start = out.index("\n{") + 1 if not out.startswith("{") else 0
    doc: dict[str, Any] = json.loads(out[start:])
    return doc


CONFIG = """\
data_dir: /var/lib/vraagbaak
store: {backend: edge, path: /var/lib/vraagbaak/qdrant-edge}
ingest: {state_path: /var/lib/vraagbaak/ingest/ingest-state.sqlite}
audit: {path: /var/lib/vraagbaak/audit/audit.jsonl}
generator: {backend: extractive}
auth: {mode: insecure-dev, dev_groups: [zorg]}
"""


def test_runs_as_non_root_on_a_read_only_root_with_every_tool(volume: str, tmp_path: Path) -> None:
    inspect = json.loads(podman("image", "inspect", IMAGE, check=True, timeout=60).stdout)[0]
    assert inspect["Config"]["User"] == "10001:10001"
    assert inspect["Config"]["Entrypoint"] == ["vraagbaak"]
    script = (
        "set -e; id -u; tesseract --list-langs 2>/dev/null | grep -x nld; tesseract --list-langs 2>/dev/null "
        "| grep -x eng; command -v pdftoppm; test -s /usr/share/dict/dutch && echo wdutch; "
        "python -c 'import deduce, pathlib; p = pathlib.Path(deduce.__file__).parent / "
        "\"data/lookup/cache/lookup_structs.pickle\"; assert p.stat().st_size > 0; print(\"deduce-tables\")'; "
        "test -f /app/frontend/node_modules/pdfjs-dist/build/pdf.worker.mjs && echo pdfjs; "
        "if touch /app/x 2>/dev/null; then echo root-writable; fi; touch /var/lib/vraagbaak/ok && echo volume-writable"
    )
    out = _run(volume, tmp_path, "-c", script, entrypoint="sh").split()
    assert out[0] == "10001"
    assert {"nld", "eng", "/usr/bin/pdftoppm", "wdutch", "deduce-tables", "pdfjs", "volume-writable"} <= set(out)
    assert "root-writable" not in out
    # the pinned models: prepared at build time, verified again now (sha256), nothing converted or written
    prep = _run(volume, tmp_path, "models", "prepare")
    assert "sha256" in prep.lower() or "verified" in prep.lower() or "unchanged" in prep.lower(), prep


def test_ingest_in_the_image_reads_scans_and_quarantines_patient_data(volume: str, tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(CONFIG, encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    pngs = [scan_png(t, 300, tmp_path / f"p{i}.png") for i, t in enumerate(PAGES_NL[1:3])]
    image_pdf(docs / "scan.pdf", list(pngs))  # two scanned pages, no text layer
    (docs / "brief.md").write_text(BSN_LETTER, encoding="utf-8")
    (docs / "protocol.md").write_text(PROTOCOL, encoding="utf-8")
    for p in pngs:
        p.unlink()

    report = _json(_run(volume, tmp_path, "ingest", "/work/docs", "--groups", "zorg", "--json",
                        "--config", "/etc/vraagbaak/config.yaml"))
    status = {d["source"]: d["status"] for d in report["documents"]}
    assert status == {"scan.pdf": "added", "brief.md": "quarantined", "protocol.md": "added"}, report
    assert report["ocr_pages"] == 2
    assert "bsn" in report["quarantined"][0]["reason"].lower()
    assert "111222333" not in json.dumps(report)  # counts per kind, never the value

    answer = _json(_run(volume, tmp_path, "ask", "Wanneer controleer je het valrisico met de vragenlijst?",
                        "--json", "--config", "/etc/vraagbaak/config.yaml"))
    assert not answer["abstained"]
    cited = [c for c in answer["citations"] if c["source"].endswith("scan.pdf")]
    assert cited and cited[0]["page"] == 1, answer
    assert "vragenlijst" in answer["answer"]


def test_the_image_serves_the_page_and_pdf_viewer(volume: str, tmp_path: Path) -> None:
    key = secrets.token_urlsafe(16)
    from serving.http.auth import hash_key

    (tmp_path / "config.yaml").write_text(
        CONFIG.replace("auth: {mode: insecure-dev, dev_groups: [zorg]}",
                       f"auth: {{mode: api-key, api_keys: [{{key_sha256: '{hash_key(key)}', user_id: it}}]}}")
        + "server: {host: 0.0.0.0, port: 8000}\n", encoding="utf-8")
    port = _free_port()
    name = f"vraagbaak-web-{secrets.token_hex(3)}"
    proc = podman("run", "-d", "--name", name, "--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges",
                  *ulimit_args(), "-p", f"127.0.0.1:{port}:8000", "-v", f"{volume}:/var/lib/vraagbaak",
                  "-v", f"{tmp_path / 'config.yaml'}:/etc/vraagbaak/config.yaml:ro", IMAGE, timeout=120)
    assert proc.returncode == 0, proc.stderr
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, podman("logs", name, timeout=60).stderr[-3000:]
            time.sleep(1)
        cfg = httpx.get(base + "/api/config", timeout=10).json()
        assert cfg["pdf_viewer"] is True and cfg["auth"] == "api-key"
        page = httpx.get(base + "/", timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        js = httpx.get(base + "/static/vendor/pdfjs/build/pdf.mjs", timeout=30)
        assert js.status_code == 200 and "javascript" in js.headers["content-type"] and len(js.content) > 100_000
        worker = httpx.get(base + "/static/vendor/pdfjs/build/pdf.worker.mjs", timeout=30)
        assert worker.status_code == 200
        assert httpx.get(base + "/v1/whoami", timeout=10).status_code == 401
        assert httpx.get(base + "/v1/whoami", headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code == 200
    finally:
        podman("rm", "-f", name, timeout=120)
