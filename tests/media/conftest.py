"""A tiny BLIP captioning model (random weights) saved like a real one, and test images."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "a", "cat", "dog", "red", "photo", "of", "the", "on", "table", "blue", "square",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BlipForConditionalGeneration from a small config plus a BlipProcessor (BERT
    tokenizer from a small vocabulary, 32x32 image processor), saved to a folder."""
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessorPil,
        BlipProcessor,
    )

    folder = tmp_path_factory.mktemp("tiny-blip")
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True)
    config = BlipConfig(
        text_config={
            "vocab_size": len(VOCAB),
            "hidden_size": 32,
            "encoder_hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
            "bos_token_id": tokenizer.cls_token_id,
            "eos_token_id": tokenizer.sep_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "sep_token_id": tokenizer.sep_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=32,
        image_text_hidden_size=32,
    )
    torch.manual_seed(0)
    BlipForConditionalGeneration(config).save_pretrained(folder)
    image_processor = BlipImageProcessorPil(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    for x in range(size[0] // 2):
        image.putpixel((x, x % size[1]), (20, 20, 220))
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()
