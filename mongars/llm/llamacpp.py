"""Embedded llama.cpp provider (llama-cpp-python), the default.

The default model (Gemma 3 270M) is a base model, not instruction-tuned, so
messages are rendered as a plain transcript and generation stops at the next
speaker label. Generation runs in one worker thread at a time; tokens reach
the event loop through a queue, and closing the stream stops the engine after
the current token.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mongars.errors import ProviderError, ProviderUnavailable
from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, LLMProvider, StreamItem

LABELS = {"user": "User", "assistant": "Assistant"}
# A new speaker label ends the assistant's turn.
STOP_SEQUENCES = ["\nUser:", "\nAssistant:", "\nSystem:", "<end_of_turn>", "<start_of_turn>"]
REPLY_CUE = "Assistant:"


def render_message(message: ChatMessage) -> str:
    if message.role == "system":
        return f"{message.content.strip()}\n\n"
    return f"{LABELS[message.role]}: {message.content}\n"


def render_prompt(messages: Sequence[ChatMessage]) -> str:
    return "".join(render_message(m) for m in messages) + REPLY_CUE


class TokenProbabilities:
    """A logits processor that records the model's probability of each sampled token.

    llama.cpp hands us the logits before sampling; the token chosen at step k
    is the last input id seen at step k+1, so each probability is settled one
    step late (the final token, usually end-of-turn, is not counted).
    """

    def __init__(self) -> None:
        self.logprobs: list[float] = []
        self.calls = 0
        self._prev: np.ndarray | None = None
        self._prev_lse = 0.0
        self._prompt_len: int | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        n = len(input_ids)
        if self._prompt_len is None:
            self._prompt_len = n
        elif self._prev is not None and n > 0:
            token = int(input_ids[-1])
            self.logprobs.append(float(self._prev[token]) - self._prev_lse)
        self.calls += 1
        row = np.asarray(scores, dtype=np.float32)
        peak = float(row.max())
        self._prev_lse = peak + float(np.log(np.exp(row - peak).sum()))
        self._prev = row.copy()
        return scores


class LlamaCppProvider(LLMProvider):
    name = "llamacpp"

    def __init__(
        self, model_path: str, data_dir: Path, context_window: int, threads: int = 0
    ) -> None:
        self._model_path = model_path
        self._data_dir = data_dir
        self.context_window = context_window
        self._threads = threads or max(1, os.cpu_count() or 1)
        self.model_id = Path(model_path).name if model_path else "gemma-3-270m-q4_k_m.gguf"
        self._llm: Any = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="llamacpp")
        self._lock = asyncio.Lock()
        self._overhead: int | None = None

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    def _load(self) -> None:
        from llama_cpp import Llama

        path = self._model_path
        if not path:
            from mongars.llm.model_files import prepare_embedded_model

            path = str(prepare_embedded_model(self._data_dir))
        if not Path(path).is_file():
            raise ProviderUnavailable(f"model file not found: {path}")
        try:
            self._llm = Llama(
                model_path=path,
                n_ctx=self.context_window,
                n_threads=self._threads,
                n_threads_batch=self._threads,
                seed=0,
                verbose=False,
            )
        except ValueError as exc:
            raise ProviderUnavailable(f"could not load model {path}: {exc}") from exc
        self.model_id = Path(path).name

    async def close(self) -> None:
        async with self._lock:
            llm, self._llm = self._llm, None
            if llm is not None:
                await asyncio.get_running_loop().run_in_executor(self._executor, llm.close)
        self._executor.shutdown(wait=False)

    async def ready(self) -> bool:
        return self._llm is not None

    @property
    def llama(self) -> Any:
        """The loaded llama_cpp.Llama (benchmarks use it as the raw baseline)."""
        if self._llm is None:
            raise ProviderUnavailable("the embedded model is not loaded")
        return self._llm

    # -- tokens -------------------------------------------------------------

    def count(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    async def message_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        return [self.count(render_message(m)) for m in messages]

    async def prompt_overhead(self) -> int:
        if self._overhead is None:
            self._overhead = 1 + self.count(REPLY_CUE)  # BOS + the reply cue
        return self._overhead

    # -- generation -----------------------------------------------------------

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        llm = self.llama
        prompt = render_prompt(messages)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[StreamItem | BaseException] = asyncio.Queue()
        stop = threading.Event()

        def put(item: StreamItem | BaseException) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        await self._lock.acquire()
        try:
            worker = loop.run_in_executor(
                self._executor, self._generate, llm, prompt, params, put, stop
            )
        except BaseException:
            self._lock.release()
            raise
        # The lock is released when the engine has really stopped, even if the
        # consumer goes away first.
        worker.add_done_callback(lambda _: self._lock.release())
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, Finish):
                    return
        finally:
            stop.set()

    @staticmethod
    def _generate(
        llm: Any, prompt: str, params: GenerationParams, put: Any, stop: threading.Event
    ) -> None:
        from llama_cpp import LogitsProcessorList

        probs = TokenProbabilities()
        edges = EdgeWhitespace()
        sent = 0
        finish_reason = "stop"
        try:
            prompt_tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
            chunks = llm.create_completion(
                prompt_tokens,
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                seed=params.seed,
                stop=STOP_SEQUENCES,
                stream=True,
                logits_processor=LogitsProcessorList([probs]),
            )
            for chunk in chunks:
                if stop.is_set():
                    finish_reason = "cancelled"
                    break
                choice = chunk["choices"][0]
                text = edges.feed(choice.get("text") or "")
                if text:
                    put(Delta(text, probs.logprobs[sent:]))
                    sent = len(probs.logprobs)
                if choice.get("finish_reason"):
                    finish_reason = "length" if choice["finish_reason"] == "length" else "stop"
            put(Finish(len(prompt_tokens), probs.calls, finish_reason))
        except Exception as exc:  # any engine failure is reported to the request (502)
            put(ProviderError(f"the embedded model failed: {exc}"))


class EdgeWhitespace:
    """Drop the answer's leading and trailing whitespace while streaming.

    Whitespace at the end of a chunk is held back until more text follows, so
    the streamed deltas always add up to exactly the stored answer.
    """

    def __init__(self) -> None:
        self._started = False
        self._held = ""

    def feed(self, text: str) -> str:
        if not self._started:
            text = text.lstrip()
            if not text:
                return ""
            self._started = True
        text = self._held + text
        body = text.rstrip()
        self._held = text[len(body) :]
        return body
