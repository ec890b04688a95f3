"""all-MiniLM-L6-v2's word pieces through the `tokenizers` library alone.

transformers (and PyTorch behind it) is not needed to tokenize: its fast BERT
tokenizer is this same ``tokenizer.json`` run by `tokenizers`. Configured as the
embedder calls it (truncation at ``max_tokens``, padding to the longest text),
it gives the same ids, masks and type ids (tests/memory/test_onnx_backend.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


class WordPieces:
    def __init__(self, model_dir: Path, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # the file's own settings (pad every text to 128) are not the embedder's
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.no_padding()
        pad_id = self._tokenizer.token_to_id("[PAD]")
        self._pad_id = 0 if pad_id is None else pad_id

    def get_vocab(self) -> dict[str, int]:
        return dict(self._tokenizer.get_vocab())

    def __call__(self, texts: Sequence[str]) -> dict[str, list[list[int]]]:
        """Word piece ids of each text (truncated, not padded), as transformers'."""
        return {"input_ids": [e.ids for e in self._tokenizer.encode_batch(list(texts))]}

    def encode(self, texts: list[str]) -> dict[str, Any]:
        """Input ids, attention mask and token type ids, (n, longest) int64 each."""
        encodings = self._tokenizer.encode_batch(texts)
        width = max((len(e.ids) for e in encodings), default=0)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = e.ids, e.attention_mask, e.type_ids
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
