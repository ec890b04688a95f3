"""all-MiniLM-L6-v2 through ONNX Runtime: search queries (several times as fast as
PyTorch on one short text) and, without PyTorch, everything.

A search embeds its query on the response path, a few milliseconds nothing else
hides. At a dozen tokens PyTorch's cost is mostly per-operator overhead, which
ONNX Runtime's fused graph does not have (3.1 ms instead of 6-7 ms here), and
its int8 version (dynamic quantization, per-channel unsigned weights) takes 1.4 ms. The
model is exported once (torch.onnx, dynamo exporter) into the models folder,
and quantized once from there; beside the export, the PyTorch model's vectors
of a few reference texts, so that an install without PyTorch (the ONNX backend,
embeddings.py) checks the exports it runs against PyTorch all the same.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

OPSET = 18
STEM = f"all-MiniLM-L6-v2-opset{OPSET}"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
QUANTIZED = "-int8u"  # the int8 version's suffix (unsigned weights, see _quantized)
STALE_QUANTIZED = "-int8"  # signed weights, made by earlier releases: never loaded
# texts -> padded, truncated word pieces: {input name: (n, tokens) integers}
Encode = Callable[[list[str]], Mapping[str, Any]]


class OnnxQueries:
    def __init__(self, session: Any, encode: Encode) -> None:
        self._session = session
        self._encode = encode

    @classmethod
    def open(cls, path: Path, encode: Encode, threads: int) -> OnnxQueries:
        """An ONNX Runtime session on an export (raises when it cannot be loaded)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # no busy-waiting thread left behind a query, taking a core from the SQL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return cls(session, encode)

    @classmethod
    def load(
        cls, path: Path, encode: Encode, threads: int, quantized: bool = False
    ) -> OnnxQueries | None:
        """The export at ``path``, ``quantized``: its int8 version (made once from the
        export, which needs the onnx package), or None when it cannot be loaded."""
        try:
            if quantized:
                path = quantized_path(path, make=True)
            return cls.open(path, encode, threads)
        except Exception as exc:  # an unsupported model, a damaged file, a full disk
            log.warning("no ONNX model %s (%s)", path.name, exc)
            return None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) float32, unit length (mean pooling, as the PyTorch path)."""
        enc = self._encode(list(texts))
        feed = {name: np.asarray(enc[name], dtype=np.int64) for name in INPUTS}
        hidden = self._session.run(None, feed)[0]
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def export(model: Any, tokenizer: Any, directory: Path) -> Path | None:
    """The float export for this torch version in ``directory`` (made if missing), or
    None when ONNX Runtime, the exporter or the disk fails."""
    try:
        import onnxruntime  # noqa: F401
        import torch
    except ImportError:
        return None
    path = directory / f"{STEM}-torch{torch.__version__}.onnx"
    try:
        if not path.exists():
            _export(model, tokenizer, path)
    except Exception as exc:  # an unsupported model, torch or disk: PyTorch only
        log.warning("no ONNX export %s (%s)", path.name, exc)
        return None
    return path


def quantized_path(path: Path, make: bool = False) -> Path:
    """Where the int8 version of an export is kept (``make``: made first if missing)."""
    target = path.with_name(f"{path.stem}{QUANTIZED}.onnx")
    return _quantized(path) if make and not target.exists() else target


def reference_path(path: Path) -> Path:
    return path.with_suffix(".reference.json")


def write_reference(path: Path, texts: Sequence[str], vectors: np.ndarray, made_by: str) -> None:
    """The PyTorch model's vectors of ``texts``, kept beside the export (atomically)."""
    target = reference_path(path)
    body = {"made_by": made_by, "texts": list(texts), "vectors": vectors.tolist()}
    partial = target.with_suffix(f".{os.getpid()}.partial")
    try:
        partial.write_text(json.dumps(body))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def read_reference(path: Path) -> tuple[list[str], np.ndarray]:
    """(texts, their PyTorch vectors) kept beside an export; ValueError if unreadable."""
    try:
        body = json.loads(reference_path(path).read_text())
        texts = [str(t) for t in body["texts"]]
        vectors = np.asarray(body["vectors"], dtype=np.float32)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unreadable reference vectors beside {path.name}: {exc}") from exc
    if not texts or vectors.shape != (len(texts), 384):
        raise ValueError(f"reference vectors beside {path.name}: shape {vectors.shape}")
    return texts, vectors


def find_export(directory: Path) -> Path | None:
    """The newest float export in ``directory`` that has its reference vectors."""
    found = [
        p
        for p in directory.glob(f"{STEM}-*.onnx")
        if not p.stem.endswith((QUANTIZED, STALE_QUANTIZED)) and reference_path(p).is_file()
    ]
    return max(found, key=lambda p: p.stat().st_mtime_ns, default=None)


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
    channel of each weight), written once beside it, atomically.

    The weights are unsigned (U8U8): with signed weights (U8S8) ONNX Runtime multiplies
    with VPMADDUBSW on CPUs with AVX2 but no VNNI, which saturates. Measured on such a
    CPU (AMD EPYC, AVX2 only), least cosine to PyTorch over the reference texts: U8S8
    0.9798 (under the 0.98 floor: queries fell back to the float model), U8S8 with
    7-bit weights 0.9819, U8U8 0.9837; a query 4.9, 6.4 and 5.3 ms (float 7.4 ms)."""
    target = quantized_path(path)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_suffix(f".{os.getpid()}.partial")
    root = logging.getLogger()
    advice = _DropAdvice()
    root.addFilter(advice)  # "Please consider to run pre-processing before quantization"
    try:
        quantize_dynamic(path, partial, weight_type=QuantType.QUInt8, per_channel=True)
        os.replace(partial, target)
        # the signed-weight version earlier releases made, which saturates (above)
        path.with_name(f"{path.stem}{STALE_QUANTIZED}.onnx").unlink(missing_ok=True)
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
