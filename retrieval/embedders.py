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

from vraagbaak_core.modelpaths import resolve_model_dir
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
        self, model_dir: Path, dtype: str = "auto", batch_size: int = 64, threads: int | None = None
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
        self._model: SentenceTransformer = SentenceTransformer(
            str(model_dir), device="cpu", local_files_only=True
        )
        if self.dtype == "bfloat16":
            self._model = self._model.to(torch.bfloat16)
        self._model.eval()
        log.info("embedder %s loaded (%s, dim %d)", model_dir.name, self.dtype, self.dimension)

    @classmethod
    def from_settings(cls, settings: EmbedderSettings, root: Path | None = None) -> SentenceTransformerEmbedder:
        return cls(resolve_model_dir(settings.model, root), settings.dtype, settings.batch_size, settings.threads)

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
        return self.model_dir.name

    def count_tokens(self, text: str) -> int:
        ids = self._model.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"]
        return len(ids)

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        enc = self._model.tokenizer(list(texts), add_special_tokens=True, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]

    def embed_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vecs = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)

    def embed_query(self, text: str) -> NDArray[np.float32]:
        vec: NDArray[np.float32] = self.embed_documents([text])[0]
        return vec
