"""The vLLM client (serving.staff.generators.openai_http) against a real vLLM CPU server.

vLLM killed mid-stream is tested once, for this client and the API together, in test_chat_api_vllm.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from vllm_server import SERVED_NAME, VllmServer

from serving.staff.generators.openai_http import OpenAIHTTPGenerator
from vraagbaak_core.types import ChatMessage, GenerationParams

pytestmark = pytest.mark.vllm

QUESTION = [
    ChatMessage("system", "You are a helpful assistant."),
    ChatMessage("user", "What should staff do before and after touching a patient?"),
]
LONG = [ChatMessage("user", "Write a very long story about a hospital cat.")]


def generator(server: VllmServer, **kw: object) -> OpenAIHTTPGenerator:
    return OpenAIHTTPGenerator(server.base_url, tokenizer_dir=server.model_dir, **kw)  # type: ignore[arg-type]


async def take(it: AsyncIterator[str], n: int) -> list[str]:
    out: list[str] = []
    async for piece in it:
        out.append(piece)
        if len(out) == n:
            break
    return out


def wait_for(cond: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_ready_and_model_discovery(vllm: VllmServer) -> None:
    async def run() -> None:
        g = generator(vllm)
        try:
            assert await g.ready()
            named = generator(vllm, served_model_name=SERVED_NAME)
            assert await named.ready()
            wrong = generator(vllm, served_model_name="not-served")
            assert not await wrong.ready()
            await named.aclose()
            await wrong.aclose()
        finally:
            await g.aclose()

    asyncio.run(run())


def test_count_tokens_matches_vllm_prompt_tokens(vllm: VllmServer) -> None:
    g = generator(vllm)
    body = {"model": SERVED_NAME, "max_tokens": 1,
            "messages": [{"role": m.role, "content": m.content} for m in QUESTION]}
    usage = httpx.post(f"{vllm.base_url}/chat/completions", json=body, timeout=120).json()["usage"]
    assert g.count_tokens(QUESTION) == usage["prompt_tokens"]
    asyncio.run(g.aclose())


def test_chat_non_streaming_is_greedy_and_reproducible(vllm: VllmServer) -> None:
    async def run() -> tuple[str, str]:
        g = generator(vllm)
        try:
            params = GenerationParams(max_tokens=24)
            return await g.generate(QUESTION, params), await g.generate(QUESTION, params)
        finally:
            await g.aclose()

    first, second = asyncio.run(run())
    assert first.strip()
    assert first == second


def test_streaming_yields_the_same_text_in_pieces(vllm: VllmServer) -> None:
    async def run() -> tuple[list[str], str]:
        g = generator(vllm)
        try:
            params = GenerationParams(max_tokens=24)
            pieces = [p async for p in g.stream(QUESTION, params)]
            return pieces, await g.generate(QUESTION, params)
        finally:
            await g.aclose()

    pieces, whole = asyncio.run(run())
    assert len(pieces) > 3
    assert "".join(pieces) == whole


# Left alone, a request of MAX_TOKENS (ignore_eos) runs for minutes on a CPU. vLLM notices the closed
# connection only when its API process next gets the CPU: on a busy 2-core CI machine its engine core
# went on for 1,266 tokens (about 15 s) before the abort (stop 25's CI, with 2,000 as the limit). The
# margin is therefore wide: a request that was not aborted fails both checks below.
MAX_TOKENS = 8000


def _assert_aborted(vllm: VllmServer, generated_before: float, max_tokens: int) -> None:
    assert wait_for(lambda: vllm.metric("vllm:num_requests_running") == 0, 60), "vLLM still generating"
    settled = vllm.metric("vllm:generation_tokens_total")
    time.sleep(1.0)
    assert vllm.metric("vllm:generation_tokens_total") == settled, "tokens still being generated"
    assert settled - generated_before < max_tokens / 4


def test_closing_the_stream_aborts_the_upstream_request(vllm: VllmServer) -> None:
    max_tokens = MAX_TOKENS

    async def run() -> None:
        g = generator(vllm, extra_body={"ignore_eos": True})
        try:
            it = g.stream(LONG, GenerationParams(max_tokens=max_tokens))
            assert len(await take(it, 3)) == 3
            assert vllm.metric("vllm:num_requests_running") == 1
            await it.aclose()  # what the API does when its client goes away
        finally:
            await g.aclose()

    before = vllm.metric("vllm:generation_tokens_total")
    asyncio.run(run())
    _assert_aborted(vllm, before, max_tokens)


def test_cancelling_the_consumer_task_aborts_the_upstream_request(vllm: VllmServer) -> None:
    max_tokens = MAX_TOKENS

    async def run() -> None:
        g = generator(vllm, extra_body={"ignore_eos": True})
        started = asyncio.Event()

        async def consume() -> None:
            async for _ in g.stream(LONG, GenerationParams(max_tokens=max_tokens)):
                started.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(started.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await g.aclose()

    before = vllm.metric("vllm:generation_tokens_total")
    asyncio.run(run())
    _assert_aborted(vllm, before, max_tokens)
