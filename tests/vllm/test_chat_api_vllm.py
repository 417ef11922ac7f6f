"""The production shape in one test module: the `openai` client -> Vraagbaak API -> real vLLM server.

Embedded store and the packaged embedder; the generator is built from the settings
(``generator.backend: openai``), exactly as in production.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from support import EXAMPLES, LiveServer, make_settings
from vllm_server import SERVED_NAME, VllmServer

from serving.staff.generators.openai_http import OpenAIHTTPGenerator
from vraagbaak_core.errors import GeneratorError, GeneratorUnavailable
from vraagbaak_core.types import ChatMessage, GenerationParams

pytestmark = pytest.mark.vllm

HANDHYGIENE = "Protocol handhygiëne"
QUESTION = "Hoe lang moet ik handalcohol inwrijven?"
LONG = [ChatMessage("user", "Write a very long story about a hospital cat.")]


async def take(it: AsyncIterator[str], n: int) -> list[str]:
    out: list[str] = []
    async for piece in it:
        out.append(piece)
        if len(out) == n:
            break
    return out


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, embedder: Any, vllm_session: VllmServer
) -> Iterator[dict[str, Any]]:
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components

    vllm_session.ensure_running()
    tmp = tmp_path_factory.mktemp("chat-vllm")
    docs = tmp / "docs"
    shutil.copytree(EXAMPLES, docs)
    settings = make_settings(
        tmp,
        generator={"backend": "openai", "base_url": vllm_session.base_url, "served_model_name": SERVED_NAME,
                   "model_path": str(vllm_session.model_dir), "max_tokens": 256, "retries": 1},
    )
    comps = build_components(settings, embedder=embedder)
    assert isinstance(comps.generator, OpenAIHTTPGenerator)
    ingestor = comps.ingestor  # the one Ingestor on the one store of this process
    assert ingestor is not None
    report = ingestor.ingest_paths([docs], Labels())
    assert not report.failed, report.failed
    app = create_app(settings, comps)
    with LiveServer(app) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="dev", max_retries=0, timeout=300)
        yield {"url": server.url, "client": client}
    ingestor.close()
    comps.store.close()


def test_answer_through_vllm_cites_the_right_document(api: dict[str, Any]) -> None:
    r = api["client"].chat.completions.create(
        model="vraagbaak", messages=[{"role": "user", "content": QUESTION}]
    )
    msg = r.choices[0].message
    assert msg.content.strip()
    assert msg.sources[0]["title"] == HANDHYGIENE
    retrieved = {s["chunk_id"] for s in msg.sources}
    assert all(c["chunk_id"] in retrieved for c in msg.citations)


def test_streaming_through_vllm_ends_with_sources(api: dict[str, Any]) -> None:
    chunks = list(api["client"].chat.completions.create(
        model="vraagbaak", messages=[{"role": "user", "content": QUESTION}], stream=True
    ))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    final = (chunks[-1].model_extra or {})
    assert final["sources"][0]["title"] == HANDHYGIENE


def test_ready_reports_the_generator(api: dict[str, Any]) -> None:
    r = httpx.get(f"{api['url']}/readyz", timeout=30)
    assert r.status_code == 200, r.text


def test_vllm_killed_mid_stream_gives_prompt_errors(api: dict[str, Any], vllm_session: VllmServer) -> None:
    """One kill, two views: the client's own stream and the API's SSE stream both end promptly and
    cleanly; afterwards the API answers 503 with Retry-After. Ordered last by the conftest."""
    loop = asyncio.new_event_loop()
    gen = OpenAIHTTPGenerator(vllm_session.base_url, served_model_name=SERVED_NAME, retries=1,
                              retry_backoff_s=0.05, extra_body={"ignore_eos": True})
    # Long enough to outlive every try below on a busy CI machine (2,000 tokens did not: fresh-clone CI,
    # 8 Dec, all three tries saw fewer than two running requests). The server's window is 8,192 tokens.
    direct = gen.stream(LONG, GenerationParams(max_tokens=7000))
    assert len(loop.run_until_complete(take(direct, 3))) == 3

    body = {"model": "vraagbaak", "stream": True, "max_tokens": 400,
            "messages": [{"role": "user", "content": "Beschrijf uitgebreid het protocol handhygiëne."}]}
    # vLLM is killed while the API's own request is still generating there (running requests: the direct
    # stream's and the API's). On a busy machine the API may forward its first pieces after vLLM finished
    # the whole answer (fresh-clone CI, 7 Dec: the stream then ended normally); then it asks again.
    seen: list[tuple[int, float]] = []  # per try: content pieces forwarded, requests running upstream
    for _attempt in range(3):
        events: list[dict[str, Any]] = []
        done, killed_at = False, 0.0
        with httpx.stream("POST", f"{api['url']}/v1/chat/completions", json=body, timeout=60) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = True
                    break
                events.append(json.loads(line.removeprefix("data: ")))
                contents = [e for e in events if e.get("choices") and e["choices"][0]["delta"].get("content")]
                if len(contents) == 1 and not killed_at:
                    running = vllm_session.metric("vllm:num_requests_running")
                    seen.append((len(contents), running))
                    if running < 2:
                        break  # the API's request is done upstream: nothing left to cut
                    vllm_session.kill()
                    killed_at = time.monotonic()
        if killed_at:
            break
    assert killed_at, f"the answer ended before vLLM could be stopped, three times: {seen}"
    assert done and time.monotonic() - killed_at < 10
    assert events[-1]["error"]["type"] == "generator_error"

    t0 = time.monotonic()
    with pytest.raises(GeneratorError) as info:
        loop.run_until_complete(asyncio.wait_for(take(direct, 10_000), 30))
    assert time.monotonic() - t0 < 10
    assert not isinstance(info.value, GeneratorUnavailable)  # mid-stream: a failed answer, not "busy"
    with pytest.raises(GeneratorUnavailable):  # a new request finds nobody home
        loop.run_until_complete(gen.generate(LONG, GenerationParams(max_tokens=8)))
    assert not loop.run_until_complete(gen.ready())
    loop.run_until_complete(gen.aclose())
    loop.close()

    r2 = httpx.post(f"{api['url']}/v1/chat/completions", timeout=60,
                    json={"model": "vraagbaak", "messages": [{"role": "user", "content": QUESTION}]})
    assert r2.status_code == 503
    assert int(r2.headers["retry-after"]) > 0
    assert httpx.get(f"{api['url']}/readyz", timeout=30).status_code == 503
