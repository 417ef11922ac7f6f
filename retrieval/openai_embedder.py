"""Embedder adapter for an OpenAI-compatible ``/v1/embeddings`` server.

Meant for embedding servers on GPUs: vLLM's pooling runner (``vllm serve DIR --runner pooling``)
and Hugging Face Text Embeddings Inference (TEI). Requests go in batches of ``batch_size``;
connection errors, timeouts, 429 and 5xx answers are retried with exponential back-off;
any other refusal is an error that quotes the server. Vectors are L2-normalised here, whatever
the server does, so cosine scores in the store stay comparable.

Inputs: an empty document or query is refused (:class:`EmbeddingInputError`); a document longer
than ``max_tokens`` is refused with its position in the batch (the chunker must make chunks that
fit, silently truncated chunks are unsearchable text); a long query is truncated by the server
(vLLM's ``truncate_prompt_tokens``).

Token counts for the chunker come from a local ``tokenizer.json`` when ``tokenizer`` is set
(exact, no round trip), else from vLLM's ``/tokenize`` endpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray

from retrieval.embedder_inputs import check_texts, resolve_prefixes
from vraagbaak_core.errors import EmbedderError, EmbedderUnavailable, EmbeddingInputError
from vraagbaak_core.modelpaths import resolve_model_dir
from vraagbaak_core.settings import EmbedderSettings

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
DEFAULT_MAX_TOKENS = 512


def normalise(vecs: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise EmbedderError("the embeddings server returned a zero vector")
    out: NDArray[np.float32] = (vecs / norms).astype(np.float32)
    return out


class OpenAIEmbedder:
    """Implements ``vraagbaak_core.ports.Embedder`` over HTTP."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        batch_size: int = 64,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        retries: int = 2,
        query_prefix: str = "",
        document_prefix: str = "",
        max_tokens: int | None = None,
        tokenizer_dir: Path | None = None,
        transport: httpx.BaseTransport | None = None,
        backoff_s: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.batch_size = batch_size
        self.retries = retries
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self.backoff_s = backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            transport=transport,
        )
        # The chunker's workers load the tokenizer from ``model_dir`` when it holds tokenizer.json.
        self.model_dir = tokenizer_dir
        self._tokenizer: Any = None
        if tokenizer_dir is not None:
            from tokenizers import Tokenizer

            path = tokenizer_dir / "tokenizer.json"
            if not path.is_file():
                raise EmbedderError(f"embedder.tokenizer {tokenizer_dir} holds no tokenizer.json")
            self._tokenizer = Tokenizer.from_file(str(path))
            self._tokenizer.no_truncation()
            self._tokenizer.no_padding()
        served = self._served_models()
        if model not in served:
            raise EmbedderError(
                f"the embeddings server at {self.base_url} serves {sorted(served) or 'no models'}, "
                f"not {model!r} (embedder.model)"
            )
        server_max = served[model]
        self._max_tokens = max_tokens or server_max or DEFAULT_MAX_TOKENS
        if server_max and max_tokens and max_tokens > server_max:
            raise EmbedderError(
                f"embedder.max_tokens is {max_tokens} but {model!r} on {self.base_url} takes {server_max}"
            )

    @classmethod
    def from_settings(cls, settings: EmbedderSettings, root: Path | None = None) -> OpenAIEmbedder:
        if not settings.base_url:
            raise EmbedderError("embedder.base_url is required when embedder.backend is 'openai'")
        tok = resolve_model_dir(settings.tokenizer, root) if settings.tokenizer else None
        query_prefix, document_prefix = resolve_prefixes(settings, settings.model)
        return cls(
            settings.base_url, settings.model, api_key=settings.api_key, batch_size=settings.batch_size,
            connect_timeout_s=settings.connect_timeout_s, read_timeout_s=settings.read_timeout_s,
            retries=settings.retries, query_prefix=query_prefix,
            document_prefix=document_prefix, max_tokens=settings.max_tokens, tokenizer_dir=tok,
        )

    # ------------------------------------------------------------------ Embedder port

    @property
    def name(self) -> str:
        return self.model

    @cached_property
    def dimension(self) -> int:
        return int(self._embed(["dimension"], truncate=None).shape[1])

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as a document, its ``document_prefix`` included (what
        ``embed_documents`` checks against ``max_tokens``, so a chunk cut to fit is accepted)."""
        return self._count_raw(self.document_prefix + text)

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        return self._count_raw_batch([self.document_prefix + t for t in texts])

    def _count_raw(self, text: str) -> int:
        if self._tokenizer is not None:
            return len(self._tokenizer.encode(text, add_special_tokens=True).ids)
        body = self._request("POST", self._root_url() + "/tokenize",
                             {"model": self.model, "prompt": text, "add_special_tokens": True})
        try:
            return int(body["count"])
        except (KeyError, TypeError, ValueError):
            raise EmbedderError(
                f"{self._root_url()}/tokenize gave no token count; set embedder.tokenizer to a local "
                "tokenizer directory"
            ) from None

    def _count_raw_batch(self, texts: Sequence[str]) -> list[int]:
        if self._tokenizer is not None:
            return [len(e.ids) for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=True)]
        return [self._count_raw(t) for t in texts]

    def embed_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        check_texts(texts, "document")
        inputs = [self.document_prefix + t for t in texts]
        if self._tokenizer is not None:
            for i, n in enumerate(self._count_raw_batch(inputs)):
                if n > self._max_tokens:
                    raise EmbeddingInputError(
                        f"document {i} is {n} tokens, {self.model} takes {self._max_tokens}; chunk it smaller"
                    )
        parts = []
        for start in range(0, len(inputs), self.batch_size):
            batch = inputs[start : start + self.batch_size]
            try:
                parts.append(self._embed(batch, truncate=None))
            except EmbeddingInputError as err:
                raise EmbeddingInputError(self._which_document(batch, start, err)) from None
        return np.concatenate(parts)

    def embed_query(self, text: str) -> NDArray[np.float32]:
        check_texts([text], "query")
        vec: NDArray[np.float32] = self._embed([self.query_prefix + text], truncate=self._max_tokens)[0]
        return vec

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ HTTP

    def _root_url(self) -> str:
        return self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url

    def _served_models(self) -> dict[str, int | None]:
        body = self._request("GET", self.base_url + "/models", None)
        out: dict[str, int | None] = {}
        for m in body.get("data", []) if isinstance(body, dict) else []:
            if isinstance(m, dict) and "id" in m:
                length = m.get("max_model_len")
                out[str(m["id"])] = int(length) if isinstance(length, int) else None
        return out

    def _embed(self, inputs: list[str], truncate: int | None) -> NDArray[np.float32]:
        body: dict[str, Any] = {"model": self.model, "input": inputs, "encoding_format": "float"}
        if truncate is not None:
            body["truncate_prompt_tokens"] = truncate
        answer = self._request("POST", self.base_url + "/embeddings", body)
        try:
            data = sorted(answer["data"], key=lambda d: int(d["index"]))
            vecs = np.asarray([d["embedding"] for d in data], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as err:
            raise EmbedderError(f"{self.base_url}/embeddings answered without embeddings: {err}") from None
        if vecs.ndim != 2 or vecs.shape[0] != len(inputs):
            raise EmbedderError(
                f"{self.base_url}/embeddings returned {vecs.shape[0] if vecs.ndim else 0} vectors "
                f"for {len(inputs)} inputs"
            )
        if "dimension" in self.__dict__ and vecs.shape[1] != self.dimension:
            raise EmbedderError(
                f"{self.base_url}/embeddings returned {vecs.shape[1]}-dim vectors, expected {self.dimension}"
            )
        return normalise(vecs)

    def _request(self, method: str, url: str, body: dict[str, Any] | None) -> Any:
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                r = self._client.request(method, url, json=body)
            except httpx.TimeoutException as err:
                last = f"timed out ({type(err).__name__})"
                continue
            except httpx.TransportError as err:
                last = f"unreachable ({err})"
                continue
            if r.status_code in _RETRY_STATUS:
                last = f"HTTP {r.status_code}: {_message(r)}"
                continue
            if r.status_code >= 400:
                msg = _message(r)
                if r.status_code in (400, 413, 422):
                    raise EmbeddingInputError(f"{url} refused the input (HTTP {r.status_code}): {msg}")
                raise EmbedderError(f"{url} answered HTTP {r.status_code}: {msg}")
            try:
                return r.json()
            except ValueError:
                raise EmbedderError(f"{url} answered with something that is not JSON") from None
        raise EmbedderUnavailable(f"embeddings server {url} {last} after {self.retries + 1} attempts")

    def _which_document(self, batch: list[str], start: int, err: EmbeddingInputError) -> str:
        """Name the refused document in a batch (a batch error does not say which)."""
        if len(batch) > 1:
            for i, text in enumerate(batch):
                try:
                    self._embed([text], truncate=None)
                except EmbeddingInputError as one:
                    return f"document {start + i}: {one}"
        return f"document {start}: {err}"


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:300]
    if isinstance(body, dict):
        err = body.get("error", body.get("message", body))
        if isinstance(err, dict):
            err = err.get("message", err)
        return str(err)[:500]
    return str(body)[:300]
