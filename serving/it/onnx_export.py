"""The converted float32 encoder -> ``onnx/model.onnx``, for the ``onnx`` embedder backend.

PyTorch's TorchScript exporter writes the float32 graph (inputs ``input_ids`` and ``attention_mask``,
batch and length dynamic; output ``last_hidden_state``); ONNX Runtime's transformer optimiser then
fuses it for the CPU (embedding + layer norm, attention, bias + GELU, skip + layer norm). Still
float32: the same arithmetic as PyTorch's up to rounding (cosine 1.00000).

``onnx/model_int8.onnx`` is the same graph with every matrix multiplication in int8 (ONNX Runtime's
dynamic quantiser: weights per output channel, activations per run). It makes only the answerer's unit
vectors (``UnitEmbedder``): as the index's vectors it was measured and refused (cosine 0.997 to the
engine's, but Dutch dev nDCG@10 0.015 below it, outside issue 20's 0.005; benchmarks/RESULTS.md).
Every step is deterministic: the same directory gives the same bytes, so their sha256 go into the
directory's manifest like the other files'.

Both keep their weights in a file beside the graph (``model.onnx.data``, ``model_int8.onnx.data``): ONNX
Runtime maps such a file into memory instead of copying it, so a process holds only the pages it
touches (of the 250,002-token embedding table, the rows of the tokens it meets). One process with the
float32 session measured 563 MiB resident with the weights inside the graph and 140 MiB with them
beside it; its peak while loading 872 MiB and 205 MiB (issue 20's 2 GiB for a 5,000-page PDF).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from retrieval.onnx_embedder import ONNX_FILE, UNITS_FILE  # the backend reads what this writes

OPSET = 17


def export_onnx(model_dir: Path) -> Path:
    """Write ``model_dir/onnx/model.onnx`` from the float32 checkpoint in ``model_dir``."""
    import json

    import onnx
    import torch

    from vraagbaak_core.egress import import_onnxruntime

    import_onnxruntime()  # its telemetry off before the submodules below load it
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    model = AutoModel.from_pretrained(
        str(model_dir), local_files_only=True, add_pooling_layer=False, attn_implementation="eager",
        dtype=torch.float32,
    ).eval()

    class Encoder(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return out

    sample = torch.ones((2, 16), dtype=torch.long)
    dynamic = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
               "last_hidden_state": {0: "batch", 1: "tokens"}}
    out = model_dir / ONNX_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=model_dir) as tmp:
        raw = Path(tmp) / "model.onnx"
        torch.onnx.export(
            Encoder(model), (sample, sample), str(raw), input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"], dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
        )
        logging.disable(logging.WARNING)  # the optimiser logs every fusion on the root logger
        try:
            fused = optimizer.optimize_model(
                str(raw), model_type="bert", num_heads=int(config["num_attention_heads"]),
                hidden_size=int(config["hidden_size"]), opt_level=0,
            )
        finally:
            logging.disable(logging.NOTSET)
        onnx.save_model(fused.model, str(out), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=out.name + ".data", size_threshold=1024)
        logging.disable(logging.WARNING)  # the quantiser logs a line per tensor on the root logger
        try:
            quantize_dynamic(str(raw), str(model_dir / UNITS_FILE), weight_type=QuantType.QInt8, per_channel=True,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                             use_external_data_format=True)
        finally:
            logging.disable(logging.NOTSET)
    return out
