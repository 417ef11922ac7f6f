"""OpenAI-compatible HTTP generator: vLLM (or any OpenAI-compatible server) over httpx.

- connect and read timeouts from ``settings.generator``;
- retries only while connecting, i.e. before the first token; never once a token was yielded;
- streaming over server-sent events (httpx-sse);
- closing or cancelling the stream closes the upstream response, so vLLM aborts the request;
- typed errors: ``GeneratorUnavailable`` (down, or 429/503 queue full) with ``retry_after``,
  ``GeneratorError`` for everything else, including a stream that breaks mid-way;
- prompt tokens are counted with the served model's tokenizer: a configured local tokenizer
  (``generator.tokenizer``), else the server's own ``/tokenize`` (vLLM), which also reports the
  server's ``max_model_len`` (the context window is the smaller of that and the setting). Counting
  is blocking (``count_tokens`` runs in the chat service's worker thread, never on the event loop)
  and cached per prompt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

import httpx
from httpx_sse import EventSource, SSEError, aconnect_sse

from vraagbaak_core.errors import GeneratorError, GeneratorUnavailable
from vraagbaak_core.modelpaths import resolve_model_dir
from vraagbaak_core.settings import Settings
from vraagbaak_core.types import ChatMessage, GenerationParams

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_RETRY_AFTER_S = 5
COUNT_CACHE_SIZE = 512


class OpenAIHTTPGenerator:
    """Implements ``vraagbaak_core.ports.Generator`` against ``{base_url}/chat/completions``."""

    def __init__(
        self,
        base_url: str,
        *,
        served_model_name: str | None = None,
        api_key: str | None = None,
        tokenizer_dir: Path | None = None,
        context_window: int = 2048,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 120.0,
        retries: int = 2,
        retry_backoff_s: float = 0.25,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._served = served_model_name
        self._context_window = context_window
        self._retries = retries
        self._backoff = retry_backoff_s
        self._extra_body = dict(extra_body or {})
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            trust_env=False,  # never pick up a proxy from the environment
        )
        # counting runs in worker threads: a blocking client of its own, and a lock for the cache
        self._sync = httpx.Client(
            base_url=_server_root(self.base_url),
            headers=headers,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            trust_env=False,
        )
        self._counts: OrderedDict[tuple[tuple[str, str], ...], int] = OrderedDict()
        self._lock = threading.Lock()
        self._server_max_len: int | None = None
        self._tokenizer: Any = None
        if tokenizer_dir is not None:
            if not tokenizer_dir.is_dir():
                raise GeneratorError(f"generator.tokenizer {tokenizer_dir} is not a directory")
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
        self._fallback_name = "model"

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIHTTPGenerator:
        g = settings.generator
        if not g.base_url:
            raise GeneratorError("generator.base_url is required for the openai backend")
        return cls(
            g.base_url,
            served_model_name=g.served_model_name,
            api_key=g.api_key,
            tokenizer_dir=_tokenizer_dir(settings),
            context_window=g.context_window,
            connect_timeout_s=g.connect_timeout_s,
            read_timeout_s=g.read_timeout_s,
            retries=g.retries,
        )

    # -- the port -------------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        return self._served or self._fallback_name

    @property
    def context_window(self) -> int:
        """The configured window, or the server's ``max_model_len`` where that is smaller."""
        if self._server_max_len is not None:
            return min(self._context_window, self._server_max_len)
        return self._context_window

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Prompt tokens as the server counts them: chat template and generation prompt included.

        Blocking (a local tokenizer or one ``/tokenize`` request); cached per prompt.
        """
        key = tuple((m.role, m.content) for m in messages)
        with self._lock:
            if key in self._counts:
                self._counts.move_to_end(key)
                return self._counts[key]
        conv = [{"role": m.role, "content": m.content} for m in messages]
        if self._tokenizer is not None:
            ids = self._tokenizer.apply_chat_template(conv, add_generation_prompt=True, tokenize=True)
            if isinstance(ids, Mapping):
                ids = ids["input_ids"]
            n = len(ids)
        else:
            n = self._tokenize({"messages": conv, "add_generation_prompt": True})
        with self._lock:
            self._counts[key] = n
            while len(self._counts) > COUNT_CACHE_SIZE:
                self._counts.popitem(last=False)
        return n

    def count_text_tokens(self, text: str) -> int:
        if self._tokenizer is not None:
            return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])
        return self._tokenize({"prompt": text, "add_special_tokens": False})

    def _tokenize(self, body: dict[str, Any]) -> int:
        """One request to the server's ``/tokenize`` (vLLM); records its ``max_model_len``."""
        body = {"model": self._model_sync(), **body}
        response = self._sync_call(lambda: self._sync.post("/tokenize", json=body))
        if response.status_code in (404, 405):
            raise GeneratorError(
                f"{self._sync.base_url}tokenize does not exist: this server cannot count prompt tokens; "
                "set generator.tokenizer to the served model's tokenizer directory"
            )
        _check_status(response)
        try:
            data = response.json()
            n = int(data["count"])
            max_len = data.get("max_model_len")
        except (KeyError, TypeError, ValueError) as err:
            raise GeneratorError(f"{self._sync.base_url}tokenize gave no token count: {err!r}") from err
        if isinstance(max_len, int) and max_len > 0:
            self._server_max_len = max_len
        return n

    def _model_sync(self) -> str:
        if self._served is None:
            response = self._sync_call(lambda: self._sync.get(self.base_url + "/models"))
            _check_status(response)
            try:
                self._served = str(response.json()["data"][0]["id"])
            except (KeyError, IndexError, TypeError, ValueError) as err:
                raise GeneratorError(f"{self.base_url}/models lists no model") from err
        return self._served

    def _sync_call(self, call: Callable[[], httpx.Response]) -> httpx.Response:
        try:
            return call()
        except httpx.TimeoutException as err:
            raise GeneratorUnavailable(
                f"the model server at {self.base_url} did not answer in time", DEFAULT_RETRY_AFTER_S
            ) from err
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as err:
            raise GeneratorUnavailable(
                f"the model server at {self.base_url} is unreachable: {err!r}", DEFAULT_RETRY_AFTER_S
            ) from err
        except httpx.HTTPError as err:
            raise GeneratorError(f"request to the model server failed: {err!r}") from err

    async def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> str:
        body = await self._body(messages, params, stream=False)
        response = await self._with_retries(lambda: self._client.post("/chat/completions", json=body))
        try:
            await _raise_for_status(response)
            data = response.json()
            content = data["choices"][0]["message"].get("content")
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise GeneratorError(f"unexpected response from {self.base_url}: {err}") from err
        return str(content or "")

    async def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        """Yield text deltas. Closing this iterator (or cancelling its task) closes the upstream stream."""
        body = await self._body(messages, params, stream=True)
        # The exit stack runs on normal end, on error, on aclose() (our client went away) and on
        # cancellation: closing the response drops the connection, and vLLM aborts the request.
        async with AsyncExitStack() as stack:

            async def connect() -> EventSource:
                sse = aconnect_sse(self._client, "POST", "/chat/completions", json=body)
                return await stack.enter_async_context(sse)

            source = await self._with_retries(connect)
            await _raise_for_status(source.response)
            finished = False
            try:
                async for event in source.aiter_sse():
                    if event.data == "[DONE]":
                        finished = True
                        break
                    delta, reason = _parse_chunk(event.data)
                    if delta:
                        yield delta
                    if reason is not None:
                        finished = True
            except (httpx.HTTPError, SSEError) as err:
                raise GeneratorError(f"the model server's stream broke off: {err!r}") from err
            if not finished:
                raise GeneratorError("the model server ended the stream before the answer was complete")

    async def ready(self) -> bool:
        try:
            response = await self._client.get("/models")
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        if self._served is None:
            return True
        try:
            ids = {m["id"] for m in response.json()["data"]}
        except (KeyError, TypeError, ValueError):
            return False
        return self._served in ids

    async def aclose(self) -> None:
        await self._client.aclose()
        self._sync.close()

    # -- internals ------------------------------------------------------------------------------

    async def _model(self) -> str:
        if self._served is None:
            response = await self._with_retries(lambda: self._client.get("/models"))
            await _raise_for_status(response)
            try:
                self._served = str(response.json()["data"][0]["id"])
            except (KeyError, IndexError, TypeError, ValueError) as err:
                raise GeneratorError(f"{self.base_url}/models lists no model") from err
        return self._served

    async def _body(
        self, messages: Sequence[ChatMessage], params: GenerationParams, stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": await self._model(),
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": stream,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        body.update(self._extra_body)
        return body

    async def _with_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        """Retry only failures to connect: nothing has reached the model yet, so it is safe."""
        attempt = 0
        while True:
            try:
                return await call()
            except (httpx.ConnectError, httpx.ConnectTimeout) as err:
                if attempt >= self._retries:
                    raise GeneratorUnavailable(
                        f"the model server at {self.base_url} is unreachable: {err!r}",
                        retry_after=DEFAULT_RETRY_AFTER_S,
                    ) from err
            except httpx.TimeoutException as err:
                raise GeneratorUnavailable(
                    f"the model server at {self.base_url} did not answer in time", DEFAULT_RETRY_AFTER_S
                ) from err
            except (httpx.RemoteProtocolError, httpx.ReadError) as err:
                raise GeneratorUnavailable(
                    f"the model server at {self.base_url} dropped the connection: {err!r}",
                    DEFAULT_RETRY_AFTER_S,
                ) from err
            except httpx.HTTPError as err:
                raise GeneratorError(f"request to the model server failed: {err!r}") from err
            attempt += 1
            await asyncio.sleep(self._backoff * 2 ** (attempt - 1))


async def _raise_for_status(response: httpx.Response) -> None:
    """429/503 mean 'busy or down, come back later'; any other non-2xx is a plain error."""
    if response.status_code < 400:
        return
    if not response.is_closed:
        await response.aread()
    _check_status(response)


def _check_status(response: httpx.Response) -> None:
    """``_raise_for_status`` for a response whose body is read."""
    if response.status_code < 400:
        return
    detail = _error_message(response)
    if response.status_code in (429, 503):
        raise GeneratorUnavailable(
            f"the model server is busy ({response.status_code}): {detail}",
            retry_after=_retry_after(response.headers.get("retry-after")),
            reason="busy",
        )
    raise GeneratorError(f"the model server answered {response.status_code}: {detail}")


def _tokenizer_dir(settings: Settings) -> Path | None:
    spec = settings.generator.tokenizer
    if not spec:
        return None
    if spec.startswith("package:"):
        return resolve_model_dir(spec)
    return resolve_model_dir(str(settings.resolve(Path(spec))))


def _server_root(base_url: str) -> str:
    """vLLM serves ``/tokenize`` at the root, beside ``/v1``."""
    root = base_url.rstrip("/")
    return (root.removesuffix("/v1") or root) + "/"


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            return str(err.get("message", err))[:200]
        return str(err)[:200]
    return str(data)[:200]


def _retry_after(value: str | None) -> int:
    try:
        return max(1, int(float(value))) if value else DEFAULT_RETRY_AFTER_S
    except ValueError:
        return DEFAULT_RETRY_AFTER_S


def _parse_chunk(data: str) -> tuple[str, str | None]:
    """Text delta and finish reason of one OpenAI chat-completion chunk; an error event raises."""
    try:
        chunk = json.loads(data)
    except ValueError as err:
        raise GeneratorError(f"the model server sent an unreadable event: {data[:80]!r}") from err
    if not isinstance(chunk, dict):
        raise GeneratorError(f"the model server sent an unexpected event: {data[:80]!r}")
    if "error" in chunk:
        problem = chunk["error"]
        msg = problem.get("message", problem) if isinstance(problem, dict) else problem
        raise GeneratorError(f"the model server failed mid-stream: {msg}")
    choices = chunk.get("choices") or []
    if not choices:
        return "", None
    choice = choices[0]
    delta = (choice.get("delta") or {}).get("content") or ""
    reason = choice.get("finish_reason")
    return str(delta), (str(reason) if reason is not None else None)
