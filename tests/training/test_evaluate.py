"""SFT then evaluation: perplexity drops, llama.cpp runs the exported adapter as torch does."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mongars.training import evaluate as ev
from mongars.training import export
from mongars.training.trainer import TrainConfig, encode_records, read_records, train
from tests.training.test_trainer import cached_base, make_dataset

pytestmark = [pytest.mark.slow, pytest.mark.model]


@pytest.fixture(scope="module")
def trained(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A LoRA taught six made-up towns' door colours (6 steps of 4), and its evaluation."""
    root = tmp_path_factory.mktemp("sft")
    data = make_dataset(root / "dataset")
    config = TrainConfig(
        base_model=str(model_path),
        max_steps=6,
        batch_size=4,
        seq_len=64,
        lr=1e-3,
        checkpoint_every=0,
        threads=1,  # steady on a busy machine: see small_config in test_trainer
    )
    with cached_base(model_path):
        result = train(config, data, root / "run", provenance={"mongars.dataset_id": "ds-1"})
        metrics = ev.evaluate(model_path, root / "run", data, threads=1)
    yield {"run": root / "run", "data": data, "result": result, "metrics": metrics}


def test_sft_lowers_held_out_perplexity(trained: dict[str, Any]) -> None:
    m = trained["metrics"]
    assert trained["result"].status == "completed"
    assert m["heldout_examples"] == 6 and m["heldout_tokens"] > 50
    # the held-out questions are new phrasings of the trained facts
    assert m["perplexity_adapter"] < 0.6 * m["perplexity_base"]
    # and generic prose barely moves
    assert abs(m["forgetting_delta"]) < 0.25 * m["forgetting_base"]


def test_llamacpp_runs_the_exported_adapter_as_torch_does(trained: dict[str, Any]) -> None:
    m = trained["metrics"]
    assert m["logits_differ"] and m["logits_max_abs_diff"] > 1.0
    assert m["parity_ok"], m
    assert abs(m["parity_ppl_llamacpp"] / m["parity_ppl_torch"] - 1) < ev.PARITY_TOLERANCE
    # llama.cpp's adapter lowers its perplexity as much as torch's does
    assert m["parity_ppl_llamacpp"] < 0.6 * m["parity_ppl_llamacpp_base"]


def test_regression_prompts_still_pass(trained: dict[str, Any]) -> None:
    m = trained["metrics"]
    assert m["regression_total"] == len(ev.PROBES) == 5
    assert m["regression_base_passed"] == 5, "the probes are chosen so that the base passes"
    assert m["regression_passed"] >= 4, m["regression"]
    assert all(p["no_scaffolding"] and p["non_empty"] for p in m["regression"])


def test_gguf_adapter_carries_its_provenance(trained: dict[str, Any]) -> None:
    from gguf import GGUFReader

    fields = {
        k: f.contents() for k, f in GGUFReader(str(trained["run"] / "adapter.gguf")).fields.items()
    }
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == pytest.approx(16.0)
    assert fields["mongars.run_id"] == "run"
    assert fields["mongars.dataset_id"] == "ds-1"
    assert len(fields["mongars.dataset_sha256"]) == 64
    assert (trained["run"] / "adapter" / "adapter_model.safetensors").is_file()


def test_parity_catches_an_export_without_the_qk_permutation(
    trained: dict[str, Any], model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check can fail: the same LoRA exported without the permutation drifts."""
    from safetensors.torch import load_file

    from mongars.training.hf_model import Encoder, Tokenizer

    monkeypatch.setattr(export, "PERMUTED_QK", set())
    monkeypatch.setattr(export, "UNPERMUTED_QK", {"llama"})
    state = load_file(str(trained["run"] / "adapter" / "adapter_model.safetensors"))
    wrong = export.export_gguf_lora(state, model_path, tmp_path / "wrong.gguf", 16, {})
    tokenizer = Tokenizer(model_path)
    records, _ = read_records(trained["data"])
    held, _ = encode_records(records, Encoder(tokenizer), 64, "held_out")
    tokenizer.close()
    llm = ev.open_llama(model_path, wrong, 512, 1)
    try:
        nll = [ev.llamacpp_nll(llm, e)[:2] for e in held]
    finally:
        llm.close()
    ppl = math.exp(sum(s for s, _ in nll) / sum(n for _, n in nll))
    torch_ppl = trained["metrics"]["parity_ppl_torch"]
    assert abs(ppl / torch_ppl - 1) > ev.PARITY_TOLERANCE, (ppl, torch_ppl)
