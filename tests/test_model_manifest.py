"""sha256 manifests of model directories, with real files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from vraagbaak_core.model_manifest import (
    BLOCK_SIZE,
    MANIFEST_NAME,
    ManifestError,
    compute_manifest,
    sha256_file,
    verify_manifest,
    write_manifest,
)


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "qwen"
    (d / "tokenizer").mkdir(parents=True)
    (d / "config.json").write_text('{"model_type": "qwen2"}', encoding="utf-8")
    (d / "tokenizer" / "vocab.txt").write_text("hallo\nwereld\n", encoding="utf-8")
    # larger than one block, not a multiple of it: exercises the streaming loop
    (d / "model.safetensors").write_bytes(bytes(range(256)) * (BLOCK_SIZE // 256 * 2 + 3))
    return d


def test_compute_manifest_matches_hashlib(model_dir: Path) -> None:
    m = compute_manifest(model_dir)
    assert sorted(m) == ["config.json", "model.safetensors", "tokenizer/vocab.txt"]
    for rel, digest in m.items():
        assert digest == hashlib.sha256((model_dir / rel).read_bytes()).hexdigest()


def test_streaming_hash_equals_whole_file_hash(model_dir: Path) -> None:
    p = model_dir / "model.safetensors"
    assert sha256_file(p, block_size=4096) == sha256_file(p) == hashlib.sha256(p.read_bytes()).hexdigest()


def test_write_then_verify_is_clean(model_dir: Path) -> None:
    path = write_manifest(model_dir)
    assert path == model_dir / MANIFEST_NAME
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["algorithm"] == "sha256" and len(doc["files"]) == 3
    assert MANIFEST_NAME not in doc["files"]
    assert verify_manifest(model_dir) == []


def test_verify_reports_missing_changed_and_extra(model_dir: Path) -> None:
    write_manifest(model_dir)
    (model_dir / "tokenizer" / "vocab.txt").unlink()
    with (model_dir / "model.safetensors").open("r+b") as f:  # flip one byte past the first block
        f.seek(BLOCK_SIZE + 10)
        b = f.read(1)
        f.seek(BLOCK_SIZE + 10)
        f.write(bytes([b[0] ^ 0xFF]))
    (model_dir / "stray.bin").write_bytes(b"\x00")

    problems = verify_manifest(model_dir)

    assert len(problems) == 3
    assert problems[0].startswith("changed: model.safetensors (sha256 ")
    assert problems[1] == "missing: tokenizer/vocab.txt"
    assert problems[2] == "extra: stray.bin (not in the manifest)"


def test_manifest_outside_the_directory(model_dir: Path, tmp_path: Path) -> None:
    mpath = tmp_path / "qwen.sha256.json"
    write_manifest(model_dir, mpath)
    assert not (model_dir / MANIFEST_NAME).exists()
    assert verify_manifest(model_dir, mpath) == []


def test_missing_or_bad_manifest_is_a_clear_error(model_dir: Path) -> None:
    with pytest.raises(ManifestError, match="no manifest"):
        verify_manifest(model_dir)
    (model_dir / MANIFEST_NAME).write_text("{not json", encoding="utf-8")
    with pytest.raises(ManifestError, match="unreadable manifest"):
        verify_manifest(model_dir)
    (model_dir / MANIFEST_NAME).write_text(json.dumps({"files": {"a": 1}}), encoding="utf-8")
    with pytest.raises(ManifestError, match="not a vraagbaak sha256 manifest"):
        verify_manifest(model_dir)
    with pytest.raises(ManifestError, match="not a directory"):
        compute_manifest(model_dir / "config.json")
