"""Query embeddings through ONNX Runtime: several times as fast as PyTorch on one
short text.

A search embeds its query on the response path, a few milliseconds nothing else
hides. At a dozen tokens PyTorch's cost is mostly per-operator overhead, which
ONNX Runtime's fused graph does not have (3.1 ms instead of 6-7 ms here), and
its int8 version (dynamic quantization, per-channel weights) takes 1.4 ms. The
model is exported once (torch.onnx, dynamo exporter) into a cache folder, and
quantized once from there; both are reloaded at later starts and checked
against the PyTorch model before use (embeddings.py). Batches (ingestion, the
stored vectors) stay on PyTorch, faster there in bfloat16.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

OPSET = 18
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxQueries:
    def __init__(self, session: Any, tokenizer: Any, max_tokens: int) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._max_tokens = max_tokens

    @classmethod
    def load(
        cls,
        model: Any,
        tokenizer: Any,
        directory: Path,
        threads: int,
        max_tokens: int,
        quantized: bool = False,
    ) -> OnnxQueries | None:
        """The exported model (exporting it first if needed), ``quantized``: its int8
        version (made once from the export), or None when ONNX Runtime is missing
        or the export or quantization fails."""
        try:
            import onnxruntime as ort
            import torch
        except ImportError:
            return None
        path = directory / f"all-MiniLM-L6-v2-opset{OPSET}-torch{torch.__version__}.onnx"
        try:
            if not path.exists():
                _export(model, tokenizer, path)
            if quantized:
                path = _quantized(path)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # no busy-waiting thread left behind a query, taking a core from the SQL
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # an unsupported model, torch or disk: PyTorch only
            log.warning("no ONNX query model %s (%s)", path.name, exc)
            return None
        return cls(session, tokenizer, max_tokens)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) float32, unit length (mean pooling, as the PyTorch path)."""
        enc = self._tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self._max_tokens,
            return_tensors="np",
        )
        feed = {name: enc[name].astype(np.int64) for name in INPUTS}
        hidden = self._session.run(None, feed)[0]
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def _export(model: Any, tokenizer: Any, path: Path) -> None:
    """torch.onnx (dynamo) with dynamic batch and length, written atomically."""
    import torch

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            out = self.model(input_ids=ids, attention_mask=mask, token_type_ids=types)
            return out.last_hidden_state

    enc = tokenizer(["a probe sentence", "another one"], padding=True, return_tensors="pt")
    dynamic = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "hidden")}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # e.g. "torchvision is not installed. Skipping ..."
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # exporter notices
            _torch_export(Hidden().eval(), enc, partial, dynamic)
        os.replace(partial, path)
    finally:
        quiet.setLevel(level)
        partial.unlink(missing_ok=True)  # a failed export leaves nothing behind


def _quantized(path: Path) -> Path:
    """The int8 version of an export (dynamic quantization, one scale per output
    channel of each weight), written once beside it, atomically."""
    target = path.with_name(f"{path.stem}-int8.onnx")
    if target.exists():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_suffix(f".{os.getpid()}.partial")
    root = logging.getLogger()
    advice = _DropAdvice()
    root.addFilter(advice)  # "Please consider to run pre-processing before quantization"
    try:
        quantize_dynamic(path, partial, weight_type=QuantType.QInt8, per_channel=True)
        os.replace(partial, target)
    finally:
        root.removeFilter(advice)
        partial.unlink(missing_ok=True)
    return target


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing")


def _torch_export(module: Any, enc: Any, partial: Path, dynamic: dict[str, Any]) -> None:
    import torch

    torch.onnx.export(
        module,
        tuple(enc[name] for name in INPUTS),
        str(partial),
        input_names=list(INPUTS),
        output_names=["hidden"],
        dynamic_axes=dynamic,
        opset_version=OPSET,
        dynamo=True,
        external_data=False,
    )
