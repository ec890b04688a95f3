"""Evaluation of a trained adapter: held-out perplexity, forgetting, regression prompts,
and parity between torch and llama.cpp running the exported GGUF adapter.

``evaluate(base_gguf, run_dir, dataset_dir)`` returns the metrics dict (keys in
``evaluate``'s docstring). Perplexities are over the assistant tokens of the
``held_out`` records (as trained, with the chat template), except the
forgetting sample, a generic English text scored on all its tokens.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mongars.llm.base import ChatMessage
from mongars.training.hf_model import IGNORE, Encoder, Tokenizer, load_base, on_device
from mongars.training.trainer import Example, collate, encode_records, read_records

# Fixed, plain English prose: the base's perplexity on it should not move much.
GENERIC_TEXT = """\
The town library opens at nine in the morning and closes at six in the evening. On \
weekdays it is quiet until lunchtime, when students arrive with their laptops and \
look for a free table near the windows. The librarians keep a shelf of new books by \
the entrance, and a small room at the back is reserved for children, who come on \
Saturday mornings to listen to stories.

Bread is one of the oldest prepared foods. Flour, water, salt and yeast are mixed \
into a dough, which is kneaded, left to rise, shaped and baked in a hot oven. The \
crust turns brown because sugars and proteins react in the heat, while the inside \
stays soft. Many families still bake their own bread at the weekend.

Rivers begin as small streams in the hills. As they flow downhill they join other \
streams, grow wider and slower, and carry sand and mud towards the sea. Where a river \
meets the sea it often forms a delta, a flat area of land crossed by many channels, \
where birds and fish find food and shelter.

A good night's sleep helps the body and the mind. Most adults need between seven and \
nine hours each night. Going to bed at the same time, keeping the bedroom dark and \
cool, and avoiding screens before sleep are simple habits that make rest easier.
"""

SCAFFOLDING = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<start_of_turn>", "<end_of_turn>")


@dataclass(frozen=True)
class Probe:
    """A regression prompt and the word its answer must contain (if any)."""

    prompt: str
    expect: str | None = None


# Questions SmolLM2-135M-Instruct (Q4_1) answers right when greedy, checked against the
# base: it fails "the capital of France" (it answers in French) and "the largest planet",
# and on an AVX2-only CPU (AMD EPYC) "What is 2 + 3?" (it says 6) and "What do bees
# make?" (no honey in 64 tokens), replaced by "2 + 2" and "the opposite of day" (llama.cpp's
# kernels differ by CPU, and a 135M model's greedy answers with them).
PROBES = (
    Probe("What colour is the sky on a clear day?", "blue"),
    Probe("How many days are there in a week?", "seven|7"),
    Probe("What is 2 + 2?", "four|4"),
    Probe("What is the opposite of hot?", "cold"),
    Probe("What is the opposite of day?", "night"),
)
PARITY_TOLERANCE = 0.05  # relative, torch vs llama.cpp perplexity of the adapter


def perplexity_torch(model: Any, examples: Sequence[Example], pad_id: int, batch: int = 4) -> float:
    """exp(mean NLL) over the labelled tokens of ``examples``."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(examples), batch):
            b = on_device(collate(list(examples[start : start + batch]), pad_id), model)
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
            target = b["labels"][:, 1:]
            total += float(
                torch.nn.functional.cross_entropy(
                    logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                    target.reshape(-1),
                    ignore_index=IGNORE,
                    reduction="sum",
                )
            )
            count += int((target != IGNORE).sum())
    return math.exp(total / max(count, 1))


def llamacpp_nll(llm: Any, example: Example) -> tuple[float, int, np.ndarray]:
    """Summed NLL of an example's labelled tokens in llama.cpp (``logits_all``), their
    count, and the logits (for comparisons)."""
    llm.reset()
    llm.eval(example.ids)
    logits = np.asarray(llm.scores[: len(example.ids)], dtype=np.float64)
    shifted = logits[:-1]
    logz = np.log(np.exp(shifted - shifted.max(-1, keepdims=True)).sum(-1)) + shifted.max(-1)
    target = np.asarray(example.labels[1:])
    keep = target != IGNORE
    picked = shifted[np.arange(len(target)), np.where(keep, target, 0)]
    return float(((logz - picked) * keep).sum()), int(keep.sum()), logits


def open_llama(base: Path, adapter: Path | None, n_ctx: int, threads: int) -> Any:
    from llama_cpp import Llama

    return Llama(
        model_path=str(base),
        lora_path=str(adapter) if adapter else None,
        n_ctx=n_ctx,
        n_batch=n_ctx,
        n_ubatch=n_ctx,
        logits_all=True,
        n_threads=threads or None,
        n_threads_batch=threads or None,
        seed=0,
        verbose=False,
    )


def generic_example(tokenizer: Tokenizer, seq_len: int) -> Example:
    ids = tokenizer.tokenize(GENERIC_TEXT)[:seq_len]
    if tokenizer.add_bos:
        ids = [tokenizer.bos_id, *ids[: seq_len - 1]]
    return Example(ids, list(ids))


def regression(llm: Any, encoder: Encoder, max_tokens: int = 64) -> list[dict[str, Any]]:
    """Greedy answers to ``PROBES`` and whether each has the expected properties."""
    out = []
    for probe in PROBES:
        llm.reset()
        ids = encoder.prompt([ChatMessage("user", probe.prompt)])
        done = llm.create_completion(ids, max_tokens=max_tokens, temperature=0.0, top_k=1)
        text = str(done["choices"][0]["text"]).strip()
        checks = {
            "non_empty": bool(text),
            "no_scaffolding": not any(s in text for s in SCAFFOLDING),
            "expected": probe.expect is None
            or re.search(rf"\b({probe.expect})\b", text, re.IGNORECASE) is not None,
        }
        checks["passed"] = all(checks.values())
        out.append({"prompt": probe.prompt, "answer": text, **checks})
    return out


def evaluate(
    base_gguf: Path | str,
    run_dir: Path | str,
    dataset_dir: Path | str,
    threads: int = 0,
    seq_len: int = 256,
    max_examples: int = 64,
) -> dict[str, Any]:
    """All metrics for ``run_dir``'s SFT adapter (``adapter/`` and ``adapter.gguf``); an
    MNTP adapter is evaluated by retrieval instead (``mntp.evaluate_retrieval``).

    Keys: perplexity_base, perplexity_adapter, perplexity_ratio, heldout_examples,
    heldout_tokens; forgetting_base, forgetting_adapter, forgetting_delta (adapter
    minus base, on ``GENERIC_TEXT``); regression_passed, regression_total,
    regression_base_passed, regression (per probe); parity_ppl_torch,
    parity_ppl_llamacpp, parity_ppl_llamacpp_base, parity_rel_diff,
    parity_tolerance, parity_ok, logits_differ, logits_max_abs_diff.
    """
    from peft import PeftModel

    base, run = Path(base_gguf), Path(run_dir)
    records, _ = read_records(Path(dataset_dir))
    model, tokenizer = load_base(base, threads)
    encoder = Encoder(tokenizer)
    held, _ = encode_records(records, encoder, seq_len, "held_out")
    held = held[:max_examples]
    if not held:
        raise ValueError("the dataset has no usable held_out record")
    with warnings.catch_warnings():  # peft calls a transformers API deprecated in 5.x
        warnings.simplefilter("ignore", FutureWarning)
        model = PeftModel.from_pretrained(model, str(run / "adapter"))
    pad = tokenizer.eos_id
    generic = [generic_example(tokenizer, seq_len)]
    with model.disable_adapter():
        ppl_base = perplexity_torch(model, held, pad)
        gen_base = perplexity_torch(model, generic, pad)
    ppl_adapter = perplexity_torch(model, held, pad)
    gen_adapter = perplexity_torch(model, generic, pad)
    del model
    metrics: dict[str, Any] = {
        "perplexity_base": ppl_base,
        "perplexity_adapter": ppl_adapter,
        "perplexity_ratio": ppl_adapter / ppl_base,
        "heldout_examples": len(held),
        "heldout_tokens": sum(sum(1 for t in e.labels[1:] if t != IGNORE) for e in held),
        "forgetting_base": gen_base,
        "forgetting_adapter": gen_adapter,
        "forgetting_delta": gen_adapter - gen_base,
    }
    metrics.update(llamacpp_metrics(base, run / "adapter.gguf", held, encoder, threads, seq_len))
    metrics["parity_ppl_torch"] = ppl_adapter
    rel = abs(metrics["parity_ppl_llamacpp"] - ppl_adapter) / ppl_adapter
    metrics["parity_rel_diff"] = rel
    metrics["parity_tolerance"] = PARITY_TOLERANCE
    metrics["parity_ok"] = rel <= PARITY_TOLERANCE and metrics["logits_differ"]
    return metrics


def llamacpp_metrics(
    base: Path,
    adapter_gguf: Path,
    held: Sequence[Example],
    encoder: Encoder,
    threads: int,
    seq_len: int,
) -> dict[str, Any]:
    """llama.cpp with and without the GGUF adapter: held-out perplexity, logits, probes."""
    n_ctx = max(512, seq_len)
    ppl: dict[str, float] = {}
    first: dict[str, np.ndarray] = {}  # the first example's logits
    probes: dict[str, list[dict[str, Any]]] = {}
    for name, path in (("base", None), ("adapter", adapter_gguf)):
        llm = open_llama(base, path, n_ctx, threads)
        try:
            total, count = 0.0, 0
            for example in held:
                nll, n, logits = llamacpp_nll(llm, example)
                total, count = total + nll, count + n
                first.setdefault(name, logits)
            ppl[name] = math.exp(total / max(count, 1))
            probes[name] = regression(llm, encoder)
        finally:
            llm.close()
    max_diff = float(np.abs(first["adapter"] - first["base"]).max())
    return {
        "parity_ppl_llamacpp": ppl["adapter"],
        "parity_ppl_llamacpp_base": ppl["base"],
        "logits_max_abs_diff": max_diff,
        "logits_differ": max_diff > 1e-3,
        "regression_passed": sum(p["passed"] for p in probes["adapter"]),
        "regression_total": len(probes["adapter"]),
        "regression_base_passed": sum(p["passed"] for p in probes["base"]),
        "regression": probes["adapter"],
    }
