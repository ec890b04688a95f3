"""A trained LoRA as llama.cpp loads it (a GGUF adapter) and as peft saves it.

The GGUF adapter holds, per adapted weight, ``<gguf name>.lora_a`` (peft's
``lora_A``, shape ``(r, in)``) and ``.lora_b`` (``lora_B``, ``(out, r)``) in
float32; llama.cpp applies ``W x + alpha / r * B A x``, as plain peft LoRA does.

The trap: llama.cpp's converter permutes the rows of a llama model's Q and K
weights (its RoPE pairs dimensions differently) and transformers undoes that
when it loads a GGUF. A LoRA trained on transformers' ``q_proj``/``k_proj``
therefore gets its ``lora_B`` rows permuted exactly as llama.cpp permutes the
base weight (``convert_hf_to_gguf.py`` ``LlamaModel.permute``), so ``B A``
lines up with the served ``attn_q``/``attn_k``; ``lora_A`` (input side) stays.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mongars.training.hf_model import GGUFInfo, read_info

# transformers module -> llama.cpp tensor name (llama-style blocks)
TENSOR_NAMES = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}
# Architectures whose converter permutes Q/K rows (and transformers un-permutes them),
# and those it stores as they are (none verified yet: Gemma 3's GGUF has no chat
# template, so SFT refuses it first). Anything else is refused rather than guessed.
PERMUTED_QK = {"llama"}
UNPERMUTED_QK: set[str] = set()

_PEFT_NAME = re.compile(
    r"layers\.(?P<layer>\d+)\.(?:self_attn|mlp)\.(?P<module>\w+_proj)"
    r"\.lora_(?P<ab>[AB])(?:\.[\w-]+)?\.weight$"
)


def permute_rows(weight: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
    """llama.cpp's Q/K row permutation (``LlamaModel.permute``) of an ``(out, ...)`` array."""
    if n_head_kv != n_head:
        n_head = n_head_kv
    shape = weight.shape
    return (
        weight.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)
    )


def lora_state(model_or_state: Any) -> dict[str, torch.Tensor]:
    """The LoRA tensors of a peft model, or a state dict given as is."""
    if isinstance(model_or_state, Mapping):
        return dict(model_or_state)
    from peft import get_peft_model_state_dict

    return dict(get_peft_model_state_dict(model_or_state, save_embedding_layers=False))


def gguf_tensors(state: Mapping[str, torch.Tensor], info: GGUFInfo) -> dict[str, np.ndarray]:
    """peft LoRA tensors renamed, permuted and laid out for llama.cpp."""
    if info.architecture not in PERMUTED_QK | UNPERMUTED_QK:
        raise ValueError(f"exporting a LoRA for {info.architecture!r} models is not supported")
    out: dict[str, np.ndarray] = {}
    for name, tensor in state.items():
        m = _PEFT_NAME.search(name)
        if m is None:
            raise ValueError(f"unexpected tensor in the LoRA state: {name}")
        module, layer = m.group("module"), int(m.group("layer"))
        if module not in TENSOR_NAMES:
            raise ValueError(f"no llama.cpp tensor for the module {module!r}")
        array = tensor.detach().to(torch.float32).cpu().numpy()
        if m.group("ab") == "B" and info.architecture in PERMUTED_QK:
            if module == "q_proj":
                array = permute_rows(array, info.n_head, info.n_head)
            elif module == "k_proj":
                array = permute_rows(array, info.n_head, info.n_head_kv)
        suffix = "lora_a" if m.group("ab") == "A" else "lora_b"
        out[f"blk.{layer}.{TENSOR_NAMES[module]}.weight.{suffix}"] = np.ascontiguousarray(array)
    if not out:
        raise ValueError("the LoRA state holds no tensors")
    return out


def export_gguf_lora(
    model_or_state: Any,
    base_gguf_path: Path | str,
    out_path: Path | str,
    alpha: float,
    provenance: Mapping[str, str],
) -> Path:
    """Write the LoRA as a GGUF adapter for ``base_gguf_path``; atomic (temp + rename).

    ``provenance`` keys are written as strings, prefixed ``mongars.`` where they
    have no dot (``run_id`` -> ``mongars.run_id``).
    """
    from gguf import GGUFWriter

    info = read_info(Path(base_gguf_path))
    tensors = gguf_tensors(lora_state(model_or_state), info)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    writer = GGUFWriter(str(tmp), info.architecture)
    try:
        writer.add_type("adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(alpha))
        for key, value in sorted(provenance.items()):
            writer.add_string(key if "." in key else f"mongars.{key}", str(value))
        for name in sorted(tensors):
            writer.add_tensor(name, tensors[name])
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        writer.close()
        tmp.unlink(missing_ok=True)
    return out


def write_peft_adapter(model: Any, out_dir: Path | str) -> Path:
    """peft's own adapter folder (safetensors + adapter_config.json), replaced atomically."""
    out = Path(out_dir)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(str(tmp), safe_serialization=True, save_embedding_layers=False)
        if out.exists():
            os.rename(out, old)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out
