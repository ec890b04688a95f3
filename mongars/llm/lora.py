"""LoRA hot-swap on a loaded llama.cpp model (no reload).

An adapter is read once (``llama_adapter_lora_init``, checked against its sha256
first) and kept; switching is ``llama_set_adapters_lora`` plus a reset of the
context's cached prefix: without the reset, the tokens the previous adapter
evaluated would be reused for the next prompt. With no adapter set, the logits are
the base model's. Everything here runs on the provider's one executor thread, under
its lock, between generations."""

from __future__ import annotations

import ctypes
import logging
import time
from pathlib import Path
from typing import Any

from mongars.errors import ProviderError

log = logging.getLogger(__name__)


class LoraSlots:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._handles: dict[str, Any] = {}
        self.applied: str | None = None
        self.last_swap_s: float | None = None  # how long the last change took

    def apply(self, llm: Any, sha256: str | None) -> None:
        """Make ``sha256`` (None: no adapter) the one the context generates with."""
        if sha256 == self.applied:
            return
        import llama_cpp

        started = time.perf_counter()
        if sha256 is None:
            result = llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, None, 0, None)
        else:
            handle = self._handles.get(sha256) or self._load(llm, sha256)
            handles = (type(handle) * 1)(handle)
            scales = (ctypes.c_float * 1)(1.0)
            result = llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, handles, 1, scales)
        if result != 0:
            raise ProviderError(f"llama.cpp refused to set adapter {sha256}: error {result}")
        llm.reset()  # the cached prefix was evaluated with the previous adapter
        self.applied = sha256
        self.last_swap_s = time.perf_counter() - started
        log.info("adapter %s in place in %.4f s", sha256 or "none", self.last_swap_s)

    def _load(self, llm: Any, sha256: str) -> Any:
        import llama_cpp

        from mongars.adapters.store import DamagedAdapter, verify

        try:
            path = verify(self.data_dir, sha256)
        except DamagedAdapter as exc:
            raise ProviderError(f"adapter refused: {exc}") from exc
        handle = llama_cpp.llama_adapter_lora_init(llm._model.model, str(path).encode())
        if not handle:
            raise ProviderError(f"llama.cpp could not load adapter {path} for this model")
        self._handles[sha256] = handle
        return handle

    def forget(self) -> None:
        """The model is closing: its adapters go with it (llama.cpp frees them)."""
        self._handles.clear()
        self.applied = None
