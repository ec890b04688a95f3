"""Search queries embedded through ONNX Runtime agree with the PyTorch model; a
damaged export leaves the embedder on PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mongars.memory.embeddings import ONNX_MAX_TEXTS, Embedder

QUERIES = [
    "what does my sister think about running?",
    "Où est mon passeport ? 東京の天気",
    "x",
    " ".join(["a very long query"] * 200),  # past the model's 256 tokens: truncated
]


def test_queries_go_through_onnx_and_agree_with_pytorch(embedder: Any) -> None:
    assert embedder.onnx is not None
    fast = embedder.embed_sync(QUERIES)  # few texts: the ONNX path
    assert fast.shape == (len(QUERIES), 384)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    batch = embedder.embed_sync(QUERIES * ONNX_MAX_TEXTS)[: len(QUERIES)]  # PyTorch
    assert float(np.min(np.sum(fast * batch, axis=1))) > 0.999


def test_the_export_is_kept_and_reused(embedder: Any) -> None:
    directory = embedder.onnx_dir
    exports = list(directory.glob("*.onnx"))
    assert len(exports) == 1 and not list(directory.glob("*.partial"))
    before = exports[0].stat().st_mtime_ns
    again = Embedder(onnx_dir=directory)
    again.load()
    assert again.onnx is not None
    assert exports[0].stat().st_mtime_ns == before  # loaded, not exported again
    again.close()


def test_a_damaged_export_leaves_queries_on_pytorch(tmp_path: Path, embedder: Any) -> None:
    export = next(iter(embedder.onnx_dir.glob("*.onnx")))
    (tmp_path / export.name).write_bytes(b"not onnx")
    damaged = Embedder(onnx_dir=tmp_path)
    damaged.load()
    assert damaged.onnx is None
    vector = damaged.embed_sync(["where is my passport?"])
    assert float(vector[0] @ embedder.embed_sync(["where is my passport?"])[0]) > 0.999
    damaged.close()


def test_a_failing_onnx_run_falls_back_to_pytorch(tmp_path: Path, embedder: Any) -> None:
    model = Embedder(onnx_dir=embedder.onnx_dir)
    model.load()
    assert model.onnx is not None

    class Broken:
        def embed(self, texts: Any) -> np.ndarray:
            raise RuntimeError("onnx runtime error")

    model.onnx = Broken()  # type: ignore[assignment]
    vector = model.embed_sync(["where is my passport?"])
    assert model.onnx is None  # PyTorch from now on
    assert float(vector[0] @ embedder.embed_sync(["where is my passport?"])[0]) > 0.999
    model.close()
