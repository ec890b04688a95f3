"""Masked next-token prediction (MNTP, LLM2Vec step 2): the model as a text encoder.

Attention is made bidirectional (a 4D mask that lets every token see every
non-padding token), a share of the tokens is corrupted as in BERT (80% the mask
token, 10% a random token, 10% kept), and the token at position ``i`` is
predicted from the output at ``i - 1``, the loss on the selected tokens only.
LLM2Vec uses ``_`` as the mask token for Llama-family models; so do we.

The adapter is for embeddings (mean-pooled last hidden states with bidirectional
attention), evaluated by retrieval, and never loaded into generation: no GGUF.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mongars.training.hf_model import IGNORE, Tokenizer, load_base, model_device, on_device
from mongars.training.trainer import Example, TrainConfig, collate, read_records

MASK_TEXT = "_"


def record_text(record: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in record["messages"])


def encode_records(
    records: list[dict[str, Any]], tokenizer: Tokenizer, seq_len: int, split: str = "train"
) -> tuple[list[Example], int]:
    """Plain text of each record's messages (first ``seq_len`` tokens), skipping records
    too short to mask."""
    out: list[Example] = []
    skipped = 0
    for record in records:
        if record.get("split", "train") != split:
            continue
        ids = tokenizer.tokenize(record_text(record))
        if tokenizer.add_bos:
            ids = [tokenizer.bos_id, *ids]
        ids = ids[:seq_len]
        if len(ids) < 4:
            skipped += 1
            continue
        out.append(Example(ids, list(ids)))
    return out, skipped


def bidirectional_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, 1, T, T) additive mask: every position sees every non-padding token."""
    keys = attention_mask[:, None, None, :].to(torch.bool)
    full = keys.expand(-1, 1, attention_mask.shape[1], -1)
    return torch.zeros(full.shape, dtype=dtype).masked_fill(~full, torch.finfo(dtype).min)


class MntpLoss:
    """The MNTP loss of a batch; uses torch's global RNG (checkpointed by the trainer)."""

    def __init__(self, tokenizer: Tokenizer, config: TrainConfig) -> None:
        ids = tokenizer.tokenize(MASK_TEXT)
        if len(ids) != 1:
            raise ValueError(f"{MASK_TEXT!r} is not a single token in this vocabulary")
        self.mask_id = ids[0]
        self.n_vocab = tokenizer.n_vocab
        self.prob = config.mntp_mask_prob
        self.special = {tokenizer.bos_id, tokenizer.eos_id}

    def corrupt(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(corrupted input ids, labels: the original token where selected, else IGNORE)."""
        ids = batch["input_ids"]
        eligible = batch["attention_mask"].bool().clone()
        eligible[:, 0] = False  # position 0 has no previous output to predict it from
        for token in self.special:
            eligible &= ids != token
        selected = (torch.rand(ids.shape) < self.prob) & eligible
        for row in range(ids.shape[0]):  # at least one token per row
            if not selected[row].any() and eligible[row].any():
                selected[row, int(eligible[row].nonzero()[0])] = True
        labels = torch.where(selected, ids, torch.full_like(ids, IGNORE))
        draw = torch.rand(ids.shape)
        corrupted = ids.clone()
        corrupted[selected & (draw < 0.8)] = self.mask_id
        swap = selected & (draw >= 0.8) & (draw < 0.9)
        corrupted[swap] = torch.randint(0, self.n_vocab, (int(swap.sum()),))
        return corrupted, labels

    def __call__(self, model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        corrupted, labels = self.corrupt(batch)  # on the CPU (its RNG is checkpointed)
        device = model_device(model)
        mask = bidirectional_mask(batch["attention_mask"], torch.float32).to(device)
        logits = model(input_ids=corrupted.to(device), attention_mask=mask).logits
        target = labels[:, 1:].to(device)
        n = int((target != IGNORE).sum())
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
            target.reshape(-1),
            ignore_index=IGNORE,
            reduction="sum",
        )
        return loss / max(n, 1), n


def embed(
    model: Any, tokenizer: Tokenizer, texts: Sequence[str], seq_len: int = 256
) -> torch.Tensor:
    """L2-normalised mean of the last hidden states, attention bidirectional."""
    examples = []
    for text in texts:
        ids = tokenizer.tokenize(text)[:seq_len] or [tokenizer.eos_id]
        examples.append(Example(ids, list(ids)))
    out = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(examples), 8):
            b = on_device(collate(examples[start : start + 8], tokenizer.eos_id), model)
            mask = bidirectional_mask(b["attention_mask"], torch.float32)
            hidden = model(
                input_ids=b["input_ids"], attention_mask=mask, output_hidden_states=True
            ).hidden_states[-1]
            weights = b["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * weights).sum(1) / weights.sum(1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu())
    return torch.cat(out)


def retrieval_scores(
    model: Any, tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]]
) -> dict[str, float]:
    """Recall@1 and MRR of finding each pair's second text from its first, among all."""
    queries = embed(model, tokenizer, [q for q, _ in pairs])
    docs = embed(model, tokenizer, [d for _, d in pairs])
    scores = queries @ docs.T
    ranks = (scores > scores.diagonal().unsqueeze(1)).sum(1) + 1
    return {
        "recall_at_1": float((ranks == 1).float().mean()),
        "mrr": float((1.0 / ranks.float()).mean()),
    }


def evaluate_retrieval(
    base_gguf: Path | str, run_dir: Path | str, dataset_dir: Path | str, threads: int = 0
) -> dict[str, Any]:
    """Held-out retrieval (last user message -> last assistant message), base vs adapter,
    and the MNTP loss on held-out text. Keys: retrieval_base_recall_at_1,
    retrieval_adapter_recall_at_1, retrieval_base_mrr, retrieval_adapter_mrr, pairs."""
    import warnings

    from peft import PeftModel

    records, _ = read_records(Path(dataset_dir))
    pairs = []
    for record in records:
        if record.get("split") != "held_out":
            continue
        user = [m["content"] for m in record["messages"] if m["role"] == "user"]
        answer = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        if user and answer:
            pairs.append((user[-1], answer[-1]))
    if len(pairs) < 2:
        raise ValueError("retrieval needs at least 2 held_out records with a question and answer")
    model, tokenizer = load_base(base_gguf, threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = PeftModel.from_pretrained(model, str(Path(run_dir) / "adapter"))
    with model.disable_adapter():
        base = retrieval_scores(model, tokenizer, pairs)
    adapter = retrieval_scores(model, tokenizer, pairs)
    return {
        "retrieval_base_recall_at_1": base["recall_at_1"],
        "retrieval_adapter_recall_at_1": adapter["recall_at_1"],
        "retrieval_base_mrr": base["mrr"],
        "retrieval_adapter_mrr": adapter["mrr"],
        "pairs": len(pairs),
        "chance_mrr": sum(1 / k for k in range(1, len(pairs) + 1)) / len(pairs),
    }
