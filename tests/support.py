"""Helpers shared by tests (import as ``from support import ...``)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
EXAMPLES = ROOT / "examples" / "docs"
MODEL_DIR = ROOT / ".models" / "smollm2-135m-instruct"

_DIGITS_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def question_tag(n: int = 8) -> str:
    """A random tag to tell a test's question apart in the audit log: lower-case letters only.

    A question is stored redacted (``audit.question_text: redacted``), so a hex tag such as ``1234ab``
    was stored as ``[ADRES]`` (a Dutch postcode) and the test's record was never found (the fresh-clone
    CI, 7 Dec). Letters alone are no postcode, number, date or BSN."""
    return uuid.uuid4().hex[:n].translate(_DIGITS_TO_LETTERS)


def make_settings(tmp: Path, **overrides: Any) -> Any:
    """Settings for a test: the default config with every writable path under ``tmp``."""
    from vraagbaak_core.settings import load_settings

    base: dict[str, Any] = {
        "data_dir": tmp,
        "store": {"backend": "edge", "path": tmp / "qdrant-edge"},
        "ingest": {"state_path": tmp / "state.sqlite", "originals_dir": tmp / "originals"},
        "audit": {"path": tmp / "audit.jsonl"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return load_settings(None, **base)


def nurse() -> Any:
    """The staff identity the answer tests ask as: group ``zorg``, classification ``intern``."""
    from vraagbaak_core.types import Identity

    return Identity("nurse", frozenset({"staff"}), frozenset({"zorg"}), "intern", "test")


def ingested(tmp: Path, docs: Path, embedder: Any, settings: Any | None = None) -> Any:
    """Components over ``docs``, ingested by the real Ingestor into a temporary Edge store for group
    ``zorg``; every file must ingest. Close with ``asyncio.run(comps.aclose())``."""
    from ingest.manifest import Labels
    from serving.components import build_components

    comps = build_components(settings if settings is not None else make_settings(tmp), embedder=embedder)
    assert comps.ingestor is not None
    report = comps.ingestor.ingest_paths([docs], Labels(groups=("zorg",)))
    assert not report.failed, report.failed
    return comps


def ask(comps: Any, question: str, max_tokens: int = 200) -> Any:
    """The chat service's answer to one question, as the API gets it (an abstention included)."""
    import asyncio

    from vraagbaak_core.types import ChatMessage, GenerationParams

    params = GenerationParams(max_tokens=max_tokens)
    prep = comps.chat.prepare([ChatMessage("user", question)], nurse(), params)
    if prep.abstain:
        return comps.chat.abstention(prep)
    return asyncio.run(comps.chat.answer(prep, params))


class LiveServer:
    """A real uvicorn server on a free loopback port, in a thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        import uvicorn

        if port is None:  # a free one; pass one when the address must be known first (an IdP's redirect URI)
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            sock.close()
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        # as `vraagbaak serve`: uvicorn's own X-Forwarded-For handling off (server.trusted_proxies decides)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, access_log=False,
                                proxy_headers=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
