"""GGUF LoRA export: llama.cpp's tensor names, shapes, metadata and Q/K row permutation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mongars.training.export import export_gguf_lora, gguf_tensors, permute_rows
from mongars.training.hf_model import GGUFInfo

SMOL = GGUFInfo(architecture="llama", n_head=9, n_head_kv=3, n_layer=30)


def peft_state(layers: tuple[int, ...] = (0, 29), r: int = 4) -> dict[str, torch.Tensor]:
    """LoRA tensors named as peft saves them, shaped for SmolLM2-135M (576 wide, 3 KV heads)."""
    gen = torch.Generator().manual_seed(0)
    out_features = {"q_proj": 576, "k_proj": 192, "v_proj": 192, "o_proj": 576}
    state = {}
    for layer in layers:
        for module, out in out_features.items():
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            state[f"{prefix}.lora_A.weight"] = torch.randn(r, 576, generator=gen)
            state[f"{prefix}.lora_B.weight"] = torch.randn(out, r, generator=gen)
    return state


@pytest.mark.model
def test_permutation_is_llamacpps(model_path: Path) -> None:
    """transformers un-permutes the served Q/K weights; permute_rows must put them back."""
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    reader = GGUFReader(str(model_path))
    config = {"num_attention_heads": SMOL.n_head, "num_key_value_heads": SMOL.n_head_kv}
    for name, heads_kv in (("attn_q", SMOL.n_head), ("attn_k", SMOL.n_head_kv)):
        tensor = next(t for t in reader.tensors if t.name == f"blk.3.{name}.weight")
        served = dequantize(tensor.data, tensor.tensor_type)
        hf = LlamaTensorProcessor(config=config).process(served, tensor.name).weights
        assert not np.array_equal(hf, served)  # the permutation is not the identity
        assert np.array_equal(permute_rows(hf, SMOL.n_head, heads_kv), served)


def test_lora_b_of_q_and_k_is_permuted_and_the_rest_kept() -> None:
    state = peft_state()
    tensors = gguf_tensors(state, SMOL)
    assert len(tensors) == len(state)
    prefix = "base_model.model.model.layers.29.self_attn"
    a = state[f"{prefix}.q_proj.lora_A.weight"].numpy()
    b_q = state[f"{prefix}.q_proj.lora_B.weight"].numpy()
    b_k = state[f"{prefix}.k_proj.lora_B.weight"].numpy()
    assert np.array_equal(tensors["blk.29.attn_q.weight.lora_a"], a)
    assert np.array_equal(tensors["blk.29.attn_q.weight.lora_b"], permute_rows(b_q, 9, 9))
    assert np.array_equal(tensors["blk.29.attn_k.weight.lora_b"], permute_rows(b_k, 9, 3))
    assert not np.array_equal(tensors["blk.29.attn_q.weight.lora_b"], b_q)
    for module, name in (("v_proj", "attn_v"), ("o_proj", "attn_output")):
        b = state[f"{prefix}.{module}.lora_B.weight"].numpy()
        assert np.array_equal(tensors[f"blk.29.{name}.weight.lora_b"], b)
    # (B_perm A) is the served-space delta: rows of (B A) permuted as llama.cpp's Q
    delta = tensors["blk.29.attn_q.weight.lora_b"] @ a
    assert np.allclose(delta, permute_rows(b_q @ a, 9, 9))


def test_unknown_tensors_and_architectures_are_refused() -> None:
    with pytest.raises(ValueError, match="not supported"):
        gguf_tensors(peft_state(), GGUFInfo("qwen3", 8, 8, 2))
    with pytest.raises(ValueError, match="unexpected tensor"):
        gguf_tensors({"model.embed_tokens.lora_A.weight": torch.zeros(1)}, SMOL)


@pytest.mark.model
def test_export_writes_an_adapter_llamacpp_loads(model_path: Path, tmp_path: Path) -> None:
    from gguf import GGUFReader

    out = tmp_path / "out" / "adapter.gguf"
    provenance = {"run_id": "run-1", "mongars.dataset_sha256": "ab" * 32}
    export_gguf_lora(peft_state(r=4), model_path, out, alpha=8, provenance=provenance)
    assert [p.name for p in out.parent.iterdir()] == ["adapter.gguf"]  # no temp file left

    reader = GGUFReader(str(out))
    fields = {k: f.contents() for k, f in reader.fields.items()}
    assert fields["general.architecture"] == "llama"
    assert fields["general.type"] == "adapter"
    assert fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == pytest.approx(8.0)
    assert fields["mongars.run_id"] == "run-1"
    assert fields["mongars.dataset_sha256"] == "ab" * 32
    shapes = {t.name: (t.tensor_type.name, [int(n) for n in t.shape]) for t in reader.tensors}
    assert len(shapes) == 16
    # ggml order (ne0 = input width): A is (r, in), B is (out, r) in numpy terms
    assert shapes["blk.0.attn_q.weight.lora_a"] == ("F32", [576, 4])
    assert shapes["blk.0.attn_q.weight.lora_b"] == ("F32", [4, 576])
    assert shapes["blk.0.attn_k.weight.lora_b"] == ("F32", [4, 192])

    from llama_cpp import Llama

    llm = Llama(model_path=str(model_path), lora_path=str(out), n_ctx=64, verbose=False)
    llm.close()  # llama.cpp checked names, shapes and architecture against the base
