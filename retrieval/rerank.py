"""Reranker adapter: a sentence-transformers ``CrossEncoder`` from a local directory, on CPU.

Off by default (``retrieval.reranker.enabled``): no reranker weights ship in a package here.
The hits it returns carry the cross-encoder's score (a logit or probability, model-dependent).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vraagbaak_core.settings import Settings
from vraagbaak_core.types import Hit

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder


class CrossEncoderReranker:
    """Implements ``vraagbaak_core.ports.Reranker``."""

    def __init__(self, model_dir: Path, batch_size: int = 32) -> None:
        if not model_dir.is_dir():
            raise FileNotFoundError(
                f"reranker model directory {model_dir} does not exist; "
                "weights are loaded from local paths only"
            )
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as err:  # pragma: no cover - core dependency
            raise ImportError("the cross-encoder reranker needs `sentence-transformers`") from err
        self.model_dir = model_dir
        self.batch_size = batch_size
        self._model: CrossEncoder = CrossEncoder(str(model_dir), device="cpu", local_files_only=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> CrossEncoderReranker:
        path = settings.retrieval.reranker.model_path
        if path is None:
            raise ValueError(
                "retrieval.reranker.enabled is true but retrieval.reranker.model_path is not set"
            )
        return cls(settings.resolve(path))

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        out = self._model.predict(
            [(query, t) for t in texts], batch_size=self.batch_size, show_progress_bar=False
        )
        return [float(x) for x in out]

    def rerank(self, query: str, hits: Sequence[Hit], top_k: int) -> list[Hit]:
        """``hits`` reordered by the cross-encoder's score (ties keep retrieval order), best ``top_k``."""
        scores = self.scores(query, [h.chunk.text for h in hits])
        order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))
        return [Hit(chunk=hits[i].chunk, score=scores[i]) for i in order[:top_k]]
