"""The converted float32 encoder -> ``onnx/model_int8.onnx``, for the ``onnx`` embedder backend.

PyTorch's TorchScript exporter writes the float32 graph (inputs ``input_ids`` and ``attention_mask``,
batch and length dynamic; output ``last_hidden_state``), then ONNX Runtime's dynamic quantiser turns
every matrix multiplication into an int8 one (weights per output channel; activations per batch at
run time). Only the int8 file is kept. Both steps are deterministic: the same directory gives the
same bytes, so its sha256 goes into the directory's manifest like the other files'.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

ONNX_FILE = "onnx/model_int8.onnx"
OPSET = 17


def export_int8(model_dir: Path) -> Path:
    """Write ``model_dir/onnx/model_int8.onnx`` from the float32 checkpoint in ``model_dir``."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

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
        fp32 = Path(tmp) / "model.onnx"
        torch.onnx.export(
            Encoder(model), (sample, sample), str(fp32), input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"], dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
        )
        logging.disable(logging.WARNING)  # the quantiser logs a line per tensor on the root logger
        try:
            quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        finally:
            logging.disable(logging.NOTSET)
    return out
