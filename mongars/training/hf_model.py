"""The served GGUF loaded into transformers, and conversations encoded as it serves them.

Training must see what llama.cpp serves: the same GGUF file (transformers
dequantizes it to float32 and undoes llama.cpp's Q/K RoPE permutation), the
same chat template (the GGUF's own, rendered by :class:`ChatTemplate`) and the
same tokenization (template text with its special tokens, message contents as
plain text, each segment on its own, BOS only where the GGUF asks for it).

Run the training process with ``OMP_WAIT_POLICY=PASSIVE`` (set before torch is
imported): on a machine where another process wants a core, torch's spinning
OpenMP threads made LoRA steps 3-20x slower here (1.1 s against 3-25 s).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mongars.llm.base import ChatMessage
from mongars.llm.chat_template import ChatTemplate, check_template

IGNORE = -100  # label of a token that carries no loss


@dataclass(frozen=True)
class GGUFInfo:
    """The base file's facts that the export needs."""

    architecture: str
    n_head: int
    n_head_kv: int
    n_layer: int


def read_info(gguf_path: Path) -> GGUFInfo:
    """The facts, as llama.cpp reads them from the file's metadata (vocabulary only)."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    try:
        meta = dict(llm.metadata)
    finally:
        llm.close()
    arch = meta["general.architecture"]
    n_head = int(meta[f"{arch}.attention.head_count"])
    return GGUFInfo(
        architecture=arch,
        n_head=n_head,
        n_head_kv=int(meta.get(f"{arch}.attention.head_count_kv", n_head)),
        n_layer=int(meta[f"{arch}.block_count"]),
    )


def set_threads(threads: int) -> int:
    """``threads`` for torch's intra-op pool (0: every core); returns the number used."""
    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def load_base(gguf_path: Path | str, threads: int = 0) -> tuple[Any, Tokenizer]:
    """The GGUF as a float32 transformers causal LM (in eval mode) and its tokenizer.

    The tokenizer is llama.cpp's own (the file's vocabulary, no weights): the
    transformers tokenizer built from a GGUF splits runs of spaces differently
    from llama.cpp's pre-tokenizer, and training must see the served tokens.
    """
    from mongars.offline import quiet_libraries

    quiet_libraries()
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    set_threads(threads)
    path = Path(gguf_path)
    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32
    )
    model.config.use_cache = False
    model.eval()
    # CUDA when present (MONGARS_TRAINING_DEVICE=cpu keeps a GPU machine on the CPU).
    if torch.cuda.is_available() and os.environ.get("MONGARS_TRAINING_DEVICE", "") != "cpu":
        model.to("cuda")  # type: ignore[arg-type]  # (transformers types .to oddly)
    return model, Tokenizer(path)


def model_device(model: Any) -> torch.device:
    return next(model.parameters()).device


def on_device(batch: dict[str, torch.Tensor], model: Any) -> dict[str, torch.Tensor]:
    """The batch where the model is (a no-op on the CPU)."""
    device = model_device(model)
    return {k: v.to(device) for k, v in batch.items()}


class Tokenizer:
    """llama.cpp's tokenizer for a GGUF (``vocab_only``), used as the server uses it."""

    def __init__(self, gguf_path: Path) -> None:
        import llama_cpp

        self._llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
        vocab = self._llm._model.vocab
        self.bos_id = int(self._llm.token_bos())
        self.eos_id = int(self._llm.token_eos())
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
        self.n_vocab = int(self._llm.n_vocab())
        self._control = {
            i
            for i in range(self.n_vocab)
            if llama_cpp.llama_vocab_is_control(vocab, i) or llama_cpp.llama_vocab_is_eog(vocab, i)
        }
        self.chat_template: str | None = self._llm.metadata.get("tokenizer.chat_template")

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def token_text(self, token: int) -> str:
        return bytes(self._llm.detokenize([token], special=True)).decode("utf-8", "replace")

    def is_control(self, token: int) -> bool:
        """A control or end-of-generation token (``<|im_end|>``, ``<end_of_turn>``...)."""
        return token in self._control

    def close(self) -> None:
        self._llm.close()


class Encoder:
    """Conversations to token ids and labels, the way the server prompts the model.

    Labels keep the assistant messages' tokens and the end-of-turn token that
    follows each (so the model learns to stop); everything else is ``IGNORE``.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        if not tokenizer.chat_template:
            raise ValueError("the GGUF has no chat template: SFT needs the model's chat format")
        self.tokenizer = tokenizer
        self.template = ChatTemplate(
            tokenizer.chat_template,
            tokenizer.token_text(tokenizer.bos_id),
            tokenizer.token_text(tokenizer.eos_id),
        )
        check_template(self.template)

    def prompt(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The generation prompt's tokens (what the server feeds llama.cpp)."""
        ids, _ = self._encode(messages, generation_prompt=True)
        return ids

    def encode(self, messages: Sequence[ChatMessage]) -> tuple[list[int], list[int]]:
        """A whole conversation: (input ids, labels)."""
        return self._encode(messages, generation_prompt=False)

    def _encode(
        self, messages: Sequence[ChatMessage], generation_prompt: bool
    ) -> tuple[list[int], list[int]]:
        tok = self.tokenizer
        ids: list[int] = []
        labels: list[int] = []
        roles = iter([m.role for m in messages])
        after_answer = False
        for text, template_text in self.template.segments(messages, generation_prompt):
            part = tok.tokenize(text, special=template_text)
            if template_text:
                # the end-of-turn token after an answer belongs to the answer
                cut = next((i + 1 for i, t in enumerate(part) if tok.is_control(t)), 0)
                cut = cut if after_answer else 0
                labels += part[:cut] + [IGNORE] * (len(part) - cut)
                after_answer = False
            else:
                after_answer = next(roles) == "assistant"
                labels += part if after_answer else [IGNORE] * len(part)
            ids += part
        if tok.add_bos and (not ids or ids[0] != tok.bos_id):
            ids.insert(0, tok.bos_id)
            labels.insert(0, IGNORE)
        return ids, labels


def messages_of(record: dict[str, Any]) -> list[ChatMessage]:
    return [ChatMessage(m["role"], m["content"]) for m in record["messages"]]
