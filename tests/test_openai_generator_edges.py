"""Edge cases of the vLLM client that a healthy vLLM will not produce on demand.

Each test runs a real HTTP server on loopback (asyncio streams) that scripts one failure:
busy (429/503), a bad request, a stream that breaks, stalls, ends early or reports an error,
and a server that only comes up after the first attempt. The real-server suite is tests/vllm/.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from serving.staff.generators.factory import build_generator
from serving.staff.generators.openai_http import OpenAIHTTPGenerator
from vraagbaak_core.errors import GeneratorError, GeneratorUnavailable
from vraagbaak_core.settings import load_settings
from vraagbaak_core.types import ChatMessage, GenerationParams

MESSAGES = [ChatMessage("user", "Hoe laat is het bezoekuur?")]
PARAMS = GenerationParams(max_tokens=16)

Handler = Callable[[asyncio.StreamWriter], Awaitable[None]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chunk(text: str | None = None, finish: str | None = None) -> bytes:
    delta = {"content": text} if text is not None else {}
    body = {"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


def http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n")


def json_response(status: int, body: object, extra: str = "") -> bytes:
    data = json.dumps(body).encode()
    return (f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n"
            f"{extra}connection: close\r\n\r\n").encode() + data


class Scripted:
    """A loopback HTTP/1.1 server; ``chat`` scripts the answer to POST /v1/chat/completions."""

    def __init__(self, chat: Handler, port: int | None = None) -> None:
        self.chat = chat
        self.port = port or free_port()
        self.requests: list[str] = []
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            length = next((int(line.split(":")[1]) for line in head.split("\r\n")
                           if line.lower().startswith("content-length:")), 0)
            await reader.readexactly(length)
            request_line = head.split("\r\n")[0]
            self.requests.append(request_line)
            if request_line.startswith("GET /v1/models"):
                writer.write(json_response(200, {"object": "list", "data": [{"id": "scripted"}]}))
            else:
                await self.chat(writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def run_with(chat: Handler, body: Callable[[Scripted], Awaitable[None]]) -> Scripted:
    server = Scripted(chat)
    await server.start()
    try:
        await body(server)
    finally:
        await server.stop()
    return server


def gen(server: Scripted, **kw: float) -> OpenAIHTTPGenerator:
    kw.setdefault("retry_backoff_s", 0.05)
    return OpenAIHTTPGenerator(server.base_url, served_model_name="scripted", **kw)  # type: ignore[arg-type]


async def collect(it: AsyncIterator[str], into: list[str]) -> None:
    async for piece in it:
        into.append(piece)


@pytest.mark.parametrize("status", [429, 503])
def test_busy_upstream_is_unavailable_with_its_retry_after(status: int) -> None:
    async def chat(w: asyncio.StreamWriter) -> None:
        w.write(json_response(status, {"error": {"message": "queue full"}}, "retry-after: 7\r\n"))

    async def body(server: Scripted) -> None:
        g = gen(server)
        with pytest.raises(GeneratorUnavailable) as info:
            await g.generate(MESSAGES, PARAMS)
        assert info.value.retry_after == 7
        assert "queue full" in str(info.value)
        with pytest.raises(GeneratorUnavailable):
            await collect(g.stream(MESSAGES, PARAMS), [])
        await g.aclose()

    server = asyncio.run(run_with(chat, body))
    assert len(server.requests) == 2  # busy is passed on at once, never retried into the queue


def test_rejected_request_is_a_plain_error() -> None:
    async def chat(w: asyncio.StreamWriter) -> None:
        w.write(json_response(400, {"error": {"message": "prompt is longer than the context"}}))

    async def body(server: Scripted) -> None:
        g = gen(server)
        with pytest.raises(GeneratorError, match="400: prompt is longer") as info:
            await g.generate(MESSAGES, PARAMS)
        assert not isinstance(info.value, GeneratorUnavailable)
        await g.aclose()

    asyncio.run(run_with(chat, body))


def test_stream_broken_after_tokens_is_an_error_and_never_retried() -> None:
    async def chat(w: asyncio.StreamWriter) -> None:
        w.write(SSE_HEAD + http_chunk(chunk("Het ")) + http_chunk(chunk("bezoek")))
        await w.drain()
        w.transport.abort()  # the server dies: no terminating chunk, no [DONE]

    got: list[str] = []

    async def body(server: Scripted) -> None:
        g = gen(server, retries=3)
        with pytest.raises(GeneratorError, match="broke off"):
            await asyncio.wait_for(collect(g.stream(MESSAGES, PARAMS), got), 5)
        await g.aclose()

    server = asyncio.run(run_with(chat, body))
    assert got == ["Het ", "bezoek"]
    assert len(server.requests) == 1


def test_stream_ending_without_finish_is_an_error() -> None:
    async def chat(w: asyncio.StreamWriter) -> None:
        w.write(SSE_HEAD + http_chunk(chunk("Het ")) + b"0\r\n\r\n")  # clean end, no finish, no [DONE]

    async def body(server: Scripted) -> None:
        g = gen(server)
        with pytest.raises(GeneratorError, match="before the answer was complete"):
            await collect(g.stream(MESSAGES, PARAMS), [])
        await g.aclose()

    asyncio.run(run_with(chat, body))


def test_error_event_mid_stream_is_an_error() -> None:
    async def chat(w: asyncio.StreamWriter) -> None:
        error = b'data: {"error": {"message": "engine died", "code": 500}}\n\n'
        w.write(SSE_HEAD + http_chunk(chunk("Het ")) + http_chunk(error) + b"0\r\n\r\n")

    async def body(server: Scripted) -> None:
        g = gen(server)
        with pytest.raises(GeneratorError, match="engine died"):
            await collect(g.stream(MESSAGES, PARAMS), [])
        await g.aclose()

    asyncio.run(run_with(chat, body))


def test_stalled_stream_hits_the_read_timeout() -> None:
    release = asyncio.Event()

    async def chat(w: asyncio.StreamWriter) -> None:
        w.write(SSE_HEAD + http_chunk(chunk("Het ")))
        await w.drain()
        await release.wait()

    async def body(server: Scripted) -> None:
        g = gen(server, read_timeout_s=0.5)
        t0 = time.monotonic()
        with pytest.raises(GeneratorError):
            await collect(g.stream(MESSAGES, PARAMS), [])
        assert time.monotonic() - t0 < 3
        release.set()
        await g.aclose()

    asyncio.run(run_with(chat, body))


def test_complete_stream_and_model_discovery() -> None:
    async def chat(w: asyncio.StreamWriter) -> None:
        w.write(SSE_HEAD + b"".join(http_chunk(c) for c in (
            chunk(""), chunk("Van "), chunk("14 tot 20 uur."), chunk(finish="stop"), b"data: [DONE]\n\n"
        )) + b"0\r\n\r\n")

    got: list[str] = []

    async def body(server: Scripted) -> None:
        g = OpenAIHTTPGenerator(server.base_url)  # no served name: asks /models
        await collect(g.stream(MESSAGES, PARAMS), got)
        assert g.model_name == "scripted"
        assert await g.ready()
        await g.aclose()

    server = asyncio.run(run_with(chat, body))
    assert got == ["Van ", "14 tot 20 uur."]
    assert server.requests[0].startswith("GET /v1/models")


def test_connection_is_retried_before_the_first_token() -> None:
    async def chat(w: asyncio.StreamWriter) -> None:
        w.write(json_response(200, {"choices": [{"message": {"role": "assistant", "content": "Ja."}}]}))

    async def run() -> str:
        server = Scripted(chat)
        g = gen(server, retries=6, retry_backoff_s=0.1)

        async def late_start() -> None:
            await asyncio.sleep(0.4)  # refused at first: nobody listens yet
            await server.start()

        starter = asyncio.create_task(late_start())
        try:
            return await g.generate(MESSAGES, PARAMS)
        finally:
            await starter
            await g.aclose()
            await server.stop()

    assert asyncio.run(run()) == "Ja."


def test_counting_without_a_tokenizer_or_a_server_is_a_clear_unavailable_error() -> None:
    """No ``generator.tokenizer`` and no reachable server: counting names the server, never guesses."""
    g = OpenAIHTTPGenerator("http://127.0.0.1:9/v1", served_model_name="x")
    try:
        with pytest.raises(GeneratorUnavailable, match=r"127\.0\.0\.1:9.*unreachable"):
            g.count_text_tokens("a" * 40)
        with pytest.raises(GeneratorUnavailable, match="unreachable"):
            g.count_tokens([ChatMessage("user", "a" * 40)])
    finally:
        asyncio.run(g.aclose())


def test_factory_builds_the_http_client_for_the_openai_backend(tmp_path: object) -> None:
    settings = load_settings(
        generator={"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "served_model_name": "m",
                   "model_path": "/nonexistent", "connect_timeout_s": 1.5},
    )
    g = build_generator(settings)
    assert isinstance(g, OpenAIHTTPGenerator)
    assert g.model_name == "m"
    asyncio.run(g.aclose())


def test_upstream_down_is_unavailable_not_a_hang() -> None:
    async def run() -> None:
        g = OpenAIHTTPGenerator(f"http://127.0.0.1:{free_port()}/v1", served_model_name="x", retries=1,
                                retry_backoff_s=0.05)
        try:
            assert not await g.ready()
            with pytest.raises(GeneratorUnavailable) as info:
                await g.generate(MESSAGES, PARAMS)
            assert info.value.retry_after > 0
            with pytest.raises(GeneratorUnavailable):
                await collect(g.stream(MESSAGES, PARAMS), [])
        finally:
            await g.aclose()

    t0 = time.monotonic()
    asyncio.run(run())
    assert time.monotonic() - t0 < 5
