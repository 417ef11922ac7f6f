"""No prompt exceeds the real vLLM server's context window (issue 11, "also found").

The generator has no local tokenizer: it counts through vLLM's own ``/tokenize``, which also
reports the server's ``max_model_len``. The configured window is set far above it, so the server's
limit is the one that must hold; vLLM answers 400 to a prompt over it (shown first).
"""

from __future__ import annotations

import asyncio

import pytest
from test_prompt_fit import SENTENCE, STAFF, ManyLongSources, conversation, service
from vllm_server import SERVED_NAME, VllmServer

from serving.staff.generators.openai_http import OpenAIHTTPGenerator
from vraagbaak_core.errors import GeneratorError, PromptTooLong
from vraagbaak_core.types import ChatMessage, GenerationParams

pytestmark = pytest.mark.vllm

PARAMS = GenerationParams(max_tokens=4)


def test_prompts_fit_the_servers_window_counted_by_its_tokenize(vllm: VllmServer) -> None:
    # an 8k-token prefill on two CPU cores can take longer than the default 120 s read timeout; this test
    # is about fitting the window, not about speed (it timed out so in the fresh-clone CI run)
    g = OpenAIHTTPGenerator(vllm.base_url, served_model_name=SERVED_NAME, context_window=100_000,
                            read_timeout_s=600.0)
    retriever = ManyLongSources(12, sentences=40)  # about 10k tokens of sources: over 8192
    chat = service(g, retriever)

    async def run() -> None:
        try:
            everything = [ChatMessage("user", "\n".join(h.chunk.text for h in retriever.hits))]
            with pytest.raises(GeneratorError, match="400"):  # what an unfitted prompt gets
                await g.generate(everything, PARAMS)
            prep = await asyncio.to_thread(chat.prepare, conversation(4), STAFF, PARAMS)
            window = g.context_window
            assert window < 100_000  # learned from /tokenize: the server's max_model_len
            n = g.count_tokens(prep.prompt)
            assert n <= window - PARAMS.max_tokens
            assert 1 <= len(prep.hits) < len(retriever.hits)
            answer = await g.generate(prep.prompt, PARAMS)  # vLLM takes it: no 400
            assert isinstance(answer, str)
            with pytest.raises(PromptTooLong):
                await asyncio.to_thread(chat.prepare, conversation(0, SENTENCE * 600), STAFF, PARAMS)
        finally:
            await g.aclose()

    asyncio.run(run())


def test_tokenize_count_matches_vllms_own_prompt_tokens(vllm: VllmServer) -> None:
    g = OpenAIHTTPGenerator(vllm.base_url, served_model_name=SERVED_NAME)
    prompt = conversation(2)

    async def run() -> int:
        import httpx

        body = {"model": SERVED_NAME, "max_tokens": 1,
                "messages": [{"role": m.role, "content": m.content} for m in prompt]}
        async with httpx.AsyncClient(timeout=120) as client:
            r = await client.post(f"{vllm.base_url}/chat/completions", json=body)
        return int(r.json()["usage"]["prompt_tokens"])

    try:
        assert g.count_tokens(prompt) == asyncio.run(run())
    finally:
        asyncio.run(g.aclose())
