"""MNTP (LLM2Vec): bidirectional attention, masked tokens predicted from the previous position."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from mongars.training import mntp
from mongars.training.hf_model import IGNORE
from mongars.training.trainer import TrainConfig, train
from tests.training.test_trainer import cached_base, make_dataset


class FakeTokenizer:
    bos_id, eos_id, n_vocab, add_bos = 1, 2, 100, False

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return [7] if text == "_" else [10 + ord(c) % 80 for c in text]


def test_the_mask_lets_every_token_see_every_real_token() -> None:
    mask = mntp.bidirectional_mask(torch.tensor([[1, 1, 1], [1, 1, 0]]), torch.float32)
    assert mask.shape == (2, 1, 3, 3)
    assert (mask[0] == 0).all()  # no causal triangle
    assert (mask[1, 0, :, :2] == 0).all() and (mask[1, 0, :, 2] < -1e30).all()


def test_corruption_selects_real_tokens_and_labels_only_them() -> None:
    torch.manual_seed(0)
    loss = mntp.MntpLoss(FakeTokenizer(), TrainConfig(base_model="x", mntp_mask_prob=0.3))  # type: ignore[arg-type]
    ids = torch.randint(10, 90, (8, 40))
    ids[:, 0] = 1  # BOS
    attention = torch.ones_like(ids)
    attention[0, 30:] = 0
    corrupted, labels = loss.corrupt({"input_ids": ids, "attention_mask": attention})
    selected = labels != IGNORE
    assert not selected[:, 0].any() and not selected[0, 30:].any()
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(corrupted[~selected], ids[~selected])  # only selected tokens change
    share = float(selected.sum()) / float(attention[:, 1:].sum())
    assert 0.2 < share < 0.4
    assert 0.6 < float((corrupted[selected] == 7).float().mean()) < 0.95  # mostly the mask


@pytest.mark.slow
@pytest.mark.model
def test_mntp_trains_an_encoder_adapter(model_path: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "dataset")
    config = TrainConfig(
        base_model=str(model_path),
        objective="mntp",
        max_steps=4,
        batch_size=4,
        seq_len=64,
        lr=1e-3,
        checkpoint_every=2,
        threads=1,
    )
    with cached_base(model_path):
        from mongars.training import trainer

        model, tokenizer = trainer.load_base(model_path, 1)
        ids = torch.tensor([tokenizer.tokenize("The doors of Quenbrook are violet.")])
        with torch.no_grad():
            full = mntp.bidirectional_mask(torch.ones_like(ids), torch.float32)
            causal = model(input_ids=ids).logits[0, 0]
            bidirectional = model(input_ids=ids, attention_mask=full).logits[0, 0]
        # the first position now sees the rest of the sentence
        assert (causal - bidirectional).abs().max() > 1e-2
        del model

        result = train(config, data, tmp_path / "run")
        metrics: dict[str, Any] = mntp.evaluate_retrieval(
            model_path, tmp_path / "run", data, threads=1
        )
    assert result.status == "completed" and result.step == 4
    assert all(loss > 0 for loss in result.losses)
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "run" / "adapter.gguf").exists()  # an encoder is never served
    assert json.loads((tmp_path / "run" / "config.json").read_text())["objective"] == "mntp"
    assert metrics["pairs"] == 6
    # a causal model read bidirectionally embeds poorly (measured: MRR 0.58, chance 0.41);
    # 4 MNTP steps adapt it to the bidirectional view (measured: 0.89)
    assert metrics["retrieval_base_mrr"] > metrics["chance_mrr"], metrics
    assert metrics["retrieval_adapter_mrr"] > metrics["retrieval_base_mrr"] + 0.1, metrics
