"""Continuity: the real vLLM server is stopped, and the API answers extractively, marked, not 503."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import EXAMPLES, LiveServer, make_settings
from vllm_server import SERVED_NAME, VllmServer

from serving.staff.chat.service import FALLBACK_NOTICE

pytestmark = pytest.mark.vllm
QUESTION = "Hoe lang moet ik handalcohol inwrijven?"


@pytest.fixture(scope="module")
def fallback_api(
    tmp_path_factory: pytest.TempPathFactory, embedder: Any, vllm_session: VllmServer
) -> Iterator[dict[str, Any]]:
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components

    vllm_session.ensure_running()
    tmp = tmp_path_factory.mktemp("fallback-vllm")
    docs = tmp / "docs"
    shutil.copytree(EXAMPLES, docs)
    settings = make_settings(
        tmp,
        generator={"backend": "openai", "base_url": vllm_session.base_url, "served_model_name": SERVED_NAME,
                   "model_path": str(vllm_session.model_dir), "max_tokens": 24, "retries": 1,
                   "fallback": "extractive"},
    )
    comps = build_components(settings, embedder=embedder)
    assert comps.ingestor is not None
    assert not comps.ingestor.ingest_paths([docs], Labels()).failed
    with LiveServer(create_app(settings, comps)) as server:
        yield {"url": server.url}


def _ask(url: str, stream: bool = False) -> httpx.Response:
    body = {"model": "vraagbaak", "stream": stream, "messages": [{"role": "user", "content": QUESTION}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=300)


def test_fallback_killed_model_server_gives_a_marked_extractive_answer(
    fallback_api: dict[str, Any], vllm_session: VllmServer
) -> None:
    """Ordered last by the conftest ("killed" in the name): the server is stopped here."""
    up = _ask(fallback_api["url"]).json()["choices"][0]["message"]
    assert up["mode"] == "generative" and up["notice"] is None  # vLLM answers while it runs
    vllm_session.kill()
    r = _ask(fallback_api["url"])
    assert r.status_code == 200, r.text
    msg = r.json()["choices"][0]["message"]
    assert msg["mode"] == "extractive" and msg["notice"] == FALLBACK_NOTICE["nl"]
    assert msg["content"].startswith(FALLBACK_NOTICE["nl"]) and "30 seconden" in msg["content"]
    streamed = _ask(fallback_api["url"], stream=True)
    assert streamed.status_code == 200 and '"mode": "extractive"' in streamed.text
    metrics = httpx.get(f"{fallback_api['url']}/metrics", timeout=10).text
    assert 'vraagbaak_fallback_answers_total{reason="unreachable"} 2.0' in metrics
