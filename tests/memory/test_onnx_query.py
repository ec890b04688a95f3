"""Search queries embedded through ONNX Runtime (int8 by default, float on
request) agree with the PyTorch model; a damaged int8 model leaves queries on the
float one, damaged exports leave them on PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mongars.memory.embeddings import (
    ONNX_AGREEMENT,
    ONNX_INT8_AGREEMENT,
    ONNX_MAX_TEXTS,
    Embedder,
)

QUERIES = [
    "what does my sister think about running?",
    "Où est mon passeport ? 東京の天気",
    "x",
    " ".join(["a very long query"] * 200),  # past the model's 256 tokens: truncated
]


def pytorch(embedder: Any, text: str) -> np.ndarray:
    """The PyTorch model's vector (a batch larger than the ONNX path takes)."""
    return embedder.embed_sync([text] * (ONNX_MAX_TEXTS + 1))[0]


def test_queries_go_through_onnx_and_agree_with_pytorch(embedder: Any) -> None:
    assert embedder.onnx is not None and embedder.onnx_int8
    fast = embedder.embed_sync(QUERIES)  # few texts: the ONNX path
    assert fast.shape == (len(QUERIES), 384)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    batch = embedder.embed_sync(QUERIES * ONNX_MAX_TEXTS)[: len(QUERIES)]  # PyTorch
    agreement = np.sum(fast * batch, axis=1)
    # int8: about 0.99 (0.98 for a one-letter query); the load checks 0.98 on probes
    assert float(np.min(agreement)) > 0.975 and float(np.mean(agreement)) > ONNX_INT8_AGREEMENT


def test_the_float_model_on_request(embedder: Any) -> None:
    exact = Embedder(onnx_dir=embedder.onnx_dir, onnx_int8=False)
    exact.load()
    assert exact.onnx is not None
    fast = exact.embed_sync(QUERIES)
    batch = exact.embed_sync(QUERIES * ONNX_MAX_TEXTS)[: len(QUERIES)]
    assert float(np.min(np.sum(fast * batch, axis=1))) > ONNX_AGREEMENT
    exact.close()


def test_the_export_is_kept_and_reused(embedder: Any) -> None:
    directory = embedder.onnx_dir
    exports = sorted(directory.glob("*.onnx"))  # the float export and its int8 version
    assert [p.name.endswith("-int8u.onnx") for p in exports] == [True, False]
    assert not list(directory.glob("*.partial"))
    before = [p.stat().st_mtime_ns for p in exports]
    again = Embedder(onnx_dir=directory)
    again.load()
    assert again.onnx is not None
    assert [p.stat().st_mtime_ns for p in exports] == before  # loaded, not made again
    again.close()


def test_a_damaged_int8_model_leaves_queries_on_the_float_one(
    tmp_path: Path, embedder: Any
) -> None:
    for export in embedder.onnx_dir.glob("*.onnx"):
        (tmp_path / export.name).write_bytes(export.read_bytes())
    next(tmp_path.glob("*-int8u.onnx")).write_bytes(b"not onnx")
    model = Embedder(onnx_dir=tmp_path)
    model.load()
    assert model.onnx is not None
    text = "where is my passport?"
    assert float(model.embed_sync([text])[0] @ pytorch(embedder, text)) > ONNX_AGREEMENT
    model.close()


def test_a_signed_weight_int8_model_of_earlier_releases_is_replaced(
    tmp_path: Path, embedder: Any
) -> None:
    # Earlier releases quantized with signed weights, which saturate on AVX2 CPUs
    # without VNNI: such a file is never loaded, the unsigned version is made instead.
    export = next(p for p in embedder.onnx_dir.glob("*.onnx") if "-int8" not in p.name)
    (tmp_path / export.name).write_bytes(export.read_bytes())
    reference = export.with_suffix(".reference.json")
    (tmp_path / reference.name).write_bytes(reference.read_bytes())
    stale = tmp_path / f"{export.stem}-int8.onnx"
    stale.write_bytes(b"signed weights")
    model = Embedder(onnx_dir=tmp_path)
    model.load()
    assert model.onnx is not None
    assert not stale.exists()
    assert (tmp_path / f"{export.stem}-int8u.onnx").is_file()
    model.close()


def test_damaged_exports_leave_queries_on_pytorch(tmp_path: Path, embedder: Any) -> None:
    for export in embedder.onnx_dir.glob("*.onnx"):
        (tmp_path / export.name).write_bytes(b"not onnx")
    damaged = Embedder(onnx_dir=tmp_path)
    damaged.load()
    assert damaged.onnx is None
    text = "where is my passport?"
    assert float(damaged.embed_sync([text])[0] @ pytorch(embedder, text)) > 0.999
    damaged.close()


def test_a_failing_onnx_run_falls_back_to_pytorch(tmp_path: Path, embedder: Any) -> None:
    model = Embedder(onnx_dir=embedder.onnx_dir)
    model.load()
    assert model.onnx is not None

    class Broken:
        def embed(self, texts: Any) -> np.ndarray:
            raise RuntimeError("onnx runtime error")

    model.onnx = Broken()  # type: ignore[assignment]
    text = "where is my passport?"
    vector = model.embed_sync([text])
    assert model.onnx is None  # PyTorch from now on
    assert float(vector[0] @ pytorch(embedder, text)) > 0.999
    model.close()
