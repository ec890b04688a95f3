"""Embedded llama.cpp provider (llama-cpp-python), the default.

Every model is driven in its own chat format: the chat template its GGUF
carries (chat_template.py), or, for a file without one, a plain transcript
with stop strings (logged, and shown on the admin model page). Generation runs
in one worker thread at a time; tokens reach the event loop through a queue
(at most one delta per ``stream_interval_s`` after the first), and closing
the stream stops the engine after the current token.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import math
import threading
import time
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mongars.errors import ProviderError, ProviderUnavailable
from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, LLMProvider, StreamItem
from mongars.llm.chat_template import ChatTemplate, TemplateError, Transcript, check_template
from mongars.llm.lora import LoraSlots
from mongars.llm.model_files import DEFAULT_MODEL

log = logging.getLogger(__name__)


class StopMatcher:
    """Hold back text that may begin a stop sequence; cut at the first full match."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = list(stops)
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Return (text safe to emit, whether a stop sequence was reached)."""
        self.pending += text
        cut = min((i for i in (self.pending.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            out, self.pending = self.pending[:cut], ""
            return out, True
        keep = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(self.pending)), keep, -1):
                if self.pending.endswith(stop[:k]):
                    keep = k
                    break
        out = self.pending[: len(self.pending) - keep]
        self.pending = self.pending[len(out) :]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


class LogSoftmax:
    """log p(token) from the logits the token was sampled from (for confidence)."""

    def __init__(self, n_vocab: int) -> None:
        self._buf = np.empty(n_vocab, dtype=np.float32)

    def __call__(self, logits: np.ndarray, token: int) -> float:
        peak = float(logits.max())
        np.subtract(logits, peak, out=self._buf)
        np.exp(self._buf, out=self._buf)
        # float32 pairwise summation: ~1e-6 relative error on the 4e4-5e5 terms of a
        # vocabulary, at half the cost of converting them to float64 (this runs
        # between two decodes, so every microsecond is on each token's path).
        return float(logits[token]) - peak - float(np.log(self._buf.sum()))


class LlamaCppProvider(LLMProvider):
    name = "llamacpp"
    loads_adapters = True

    def __init__(
        self,
        model_path: str,
        data_dir: Path,
        context_window: int,
        threads: int = 0,
        embedded_model: str = DEFAULT_MODEL,
        stream_interval_s: float = 0.0,
    ) -> None:
        self._model_path = model_path
        self._data_dir = data_dir
        self._embedded_model = embedded_model
        self.context_window = context_window
        if not threads:  # 0 = auto: the cgroup-aware compute cores (`mongars doctor`)
            from mongars.hardware import default_llm_threads

            threads = default_llm_threads()
        self._threads = threads
        self._stream_interval_s = stream_interval_s
        self.model_id = Path(model_path).name if model_path else embedded_model
        self._llm: Any = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="llamacpp")
        self._lock = asyncio.Lock()
        self.format: ChatTemplate | Transcript = Transcript()
        self._per_message = 0  # template tokens around each message
        self._overhead = 0  # BOS and the reply cue
        self._add_bos = True  # whether a prompt starts with BOS (the vocabulary says)
        # The last prompt tokenized: the budget counts it, then generation uses it.
        self._last: tuple[tuple[ChatMessage, ...], list[int]] | None = None
        self.lora = LoraSlots(data_dir)  # adapters by sha256 (mongars/llm/lora.py)

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    def _load(self) -> None:
        from llama_cpp import Llama

        path = self._model_path
        if not path:
            from mongars.llm.model_files import prepare_embedded_model

            path = str(prepare_embedded_model(self._data_dir, self._embedded_model))
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
        self.format, self.prompt_format_note = self._prompt_format()
        if isinstance(self.format, ChatTemplate):
            import llama_cpp

            self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._llm._model.vocab))
        self.prompt_format = (
            "the GGUF's chat template"
            if isinstance(self.format, ChatTemplate)
            else "plain transcript (User:/Assistant:)"
        )
        if self.prompt_format_note:
            log.warning("%s: %s", self.model_id, self.prompt_format_note)
        self._measure_format()

    def _prompt_format(self) -> tuple[ChatTemplate | Transcript, str]:
        """The file's own chat template, or the transcript (with the reason)."""
        source = self._llm.metadata.get("tokenizer.chat_template")
        if not source:
            return Transcript(), "the GGUF has no chat template; using a plain transcript"
        special = self._llm.detokenize
        try:
            template = ChatTemplate(
                source,
                special([self._llm.token_bos()], special=True).decode("utf-8", "replace"),
                special([self._llm.token_eos()], special=True).decode("utf-8", "replace"),
            )
            check_template(template)
        except TemplateError as exc:
            return Transcript(), f"{exc}; using a plain transcript"
        return template, ""

    def _measure_format(self) -> None:
        """Per-message and per-prompt template tokens, for the budget's estimates
        (the exact count of a whole prompt is ``prompt_tokens``)."""
        if isinstance(self.format, Transcript):
            self._per_message = 0
            self._overhead = 1 + self.count(self.format.cue)
            return
        s, u, a, v = "Be brief.", "Hello there.", "Hi! How can I help?", "Thanks."
        short = self._tokens([ChatMessage("system", s), ChatMessage("user", u)])
        long = self._tokens(
            [
                ChatMessage("system", s),
                ChatMessage("user", u),
                ChatMessage("assistant", a),
                ChatMessage("user", v),
            ]
        )
        self._per_message = max(0, (len(long) - len(short) - self.count(a) - self.count(v)) // 2)
        body = self.count(s) + self.count(u) + 2 * self._per_message
        self._overhead = max(0, len(short) - body)

    async def close(self) -> None:
        async with self._lock:
            llm, self._llm = self._llm, None
            self.lora.forget()
            if llm is not None:
                await asyncio.get_running_loop().run_in_executor(self._executor, llm.close)
        self._executor.shutdown(wait=False)

    async def ready(self) -> bool:
        return self._llm is not None

    async def use_adapter(self, sha256: str | None) -> float:
        """Load and apply an adapter now (between answers), so that the next answer
        with it does not wait for the file; the seconds the swap took."""
        llm = self.llama
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self.lora.apply, llm, sha256
            )
        return self.lora.last_swap_s or 0.0

    @property
    def llama(self) -> Any:
        """The loaded llama_cpp.Llama (benchmarks use it as the raw baseline)."""
        if self._llm is None:
            raise ProviderUnavailable("the embedded model is not loaded")
        return self._llm

    # -- tokens -------------------------------------------------------------

    def count(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The prompt's tokens: template text with its special tokens, contents as text.
        The last prompt is kept: the budget counts it, then generation is fed it."""
        key = tuple(messages)
        last = self._last
        if last is not None and last[0] == key:
            return last[1]
        llm = self.llama
        tokens: list[int] = []
        for text, template_text in self.format.segments(messages):
            tokens += llm.tokenize(text.encode("utf-8"), add_bos=False, special=template_text)
        bos = llm.token_bos()
        if self._add_bos and (not tokens or tokens[0] != bos):
            tokens.insert(0, bos)
        self._last = (key, tokens)
        return tokens

    def prompt_text(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt as text (special tokens written out), e.g. for the raw baseline."""
        return "".join(text for text, _ in self.format.segments(messages))

    async def message_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        if isinstance(self.format, Transcript):
            return [self.count(self.format.message_text(m)) for m in messages]
        return [self.count(m.content) + self._per_message for m in messages]

    async def prompt_overhead(self) -> int:
        return self._overhead

    async def prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        try:
            return len(self._tokens(messages))
        except TemplateError as exc:
            raise ProviderError(f"the model's chat template refused the prompt: {exc}") from exc

    # -- generation -----------------------------------------------------------

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        llm = self.llama
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[StreamItem | BaseException] = asyncio.Queue()
        stop = threading.Event()

        def put(item: StreamItem | BaseException) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        await self._lock.acquire()
        try:
            worker = loop.run_in_executor(
                self._executor, self._generate, llm, list(messages), params, put, stop
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

    def _generate(
        self,
        llm: Any,
        messages: list[ChatMessage],
        params: GenerationParams,
        put: Any,
        stop: threading.Event,
    ) -> None:
        """Token loop on llama-cpp-python's ``generate``.

        Right after a token is sampled, the logits it came from are still in
        the context, so its probability costs one log-softmax and no copy. A
        turn ends at an end-of-generation token, and, with a chat template, at
        any other control token (``<|im_start|>``...): those are never text.
        """
        import llama_cpp

        n_vocab = llm.n_vocab()
        log_softmax = LogSoftmax(n_vocab)
        stops = StopMatcher(self.format.stops)
        templated = isinstance(self.format, ChatTemplate)
        edges = EdgeWhitespace()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        vocab = llm._model.vocab
        logprobs: list[float] = []
        held = ""  # text waiting for the next send (``stream_interval_s``)
        sent_at = -math.inf
        completion = 0
        finish_reason = "length"
        try:
            self.lora.apply(llm, params.adapter)
            prompt_tokens = list(self._tokens(messages))
            if len(prompt_tokens) + params.max_tokens > llm.n_ctx():
                raise ProviderError("the prompt and answer do not fit the context window")
            if params.seed is not None:
                llm.set_seed(params.seed)
            grammar = None
            if params.json_schema is not None:
                from llama_cpp import LlamaGrammar

                grammar = LlamaGrammar.from_json_schema(
                    json.dumps(params.json_schema), verbose=False
                )
                stops = StopMatcher([])  # the grammar decides where the JSON ends
            _evaluate_at_least_two(llm, prompt_tokens)
            for token in llm.generate(
                prompt_tokens,
                grammar=grammar,
                temp=params.temperature,
                top_p=params.top_p,
                top_k=40,
                min_p=0.05,
                repeat_penalty=params.repeat_penalty,
            ):
                if stop.is_set():
                    finish_reason = "cancelled"
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token) or (
                    templated and llama_cpp.llama_vocab_is_control(vocab, token)
                ):
                    finish_reason = "stop"
                    break
                row = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(n_vocab,))
                logprobs.append(log_softmax(row, token))
                completion += 1
                text, stopped = stops.feed(decoder.decode(llm.detokenize([token])))
                held += edges.feed(text)
                # The first text goes at once; then at most one send per interval, so
                # the event loop and the client wake less often than once a token.
                if held and time.monotonic() - sent_at >= self._stream_interval_s:
                    put(Delta(held, logprobs))
                    held, logprobs, sent_at = "", [], time.monotonic()
                if stopped:
                    finish_reason = "stop"
                    break
                if completion >= params.max_tokens:
                    break
            if finish_reason != "cancelled":
                tail = held + edges.feed(stops.flush() + decoder.decode(b"", final=True))
                if tail:
                    put(Delta(tail, logprobs))
            put(Finish(len(prompt_tokens), completion, finish_reason))
        except TemplateError as exc:
            put(ProviderError(f"the model's chat template refused the prompt: {exc}"))
        except Exception as exc:  # any engine failure is reported to the request (502)
            put(
                exc
                if isinstance(exc, ProviderError)
                else ProviderError(f"the embedded model failed: {exc}")
            )


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


def _evaluate_at_least_two(llm: Any, prompt: list[int]) -> None:
    """Leave at least the prompt's last two tokens to be evaluated by ``generate``.

    llama-cpp-python reuses the longest prefix of the previous prompt still in the KV
    cache and evaluates only the rest; when nothing is left it replays the last token
    alone. llama.cpp computes a single token on another kernel path than a batch, so
    the logits differ slightly: on an AVX2 CPU here the same greedy request answered
    "1. **Avoiding..." the first time and "Here are three tips..." the second. Two or
    more tokens take the batch path a fresh prompt takes, and give its answer (checked
    from 2 to 16 replayed tokens), keeping the reuse of the prefix.
    """
    cached = llm.n_tokens
    if cached == 0:
        return
    same = 0
    for a, b in zip(llm.input_ids[:cached], prompt, strict=False):
        if a != b:
            break
        same += 1
    if len(prompt) - same < 2:
        llm.n_tokens = max(0, min(cached, len(prompt) - 2))
