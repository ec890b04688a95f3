"""Image input: validate an attached image and caption it (BLIP through transformers).

The caption enters the prompt as context and is stored with the turn. Image
checks (type by content, size, dimensions, decodability) and the model run in a
worker thread, one image at a time, so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from PIL import Image

from mongars import extras
from mongars.conversation.plan import TurnContributor, TurnPlan
from mongars.errors import InvalidInput, ProviderError, ProviderUnavailable

log = logging.getLogger(__name__)

MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding
MAX_CAPTION_CHARS = 300
CAPTION_MAX_NEW_TOKENS = 30


def sniff_format(data: bytes) -> str | None:
    """PNG, JPEG or WebP from the leading bytes (the declared type is not trusted)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _other_type(data: bytes) -> str:
    known = {b"GIF8": "GIF", b"BM": "BMP", b"%PDF": "PDF", b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}
    for magic, name in known.items():
        if data.startswith(magic):
            return name
    return "unknown"


def load_image(data: bytes, max_bytes: int) -> Image.Image:
    """Decode an attached image to RGB; InvalidInput (422) says what is wrong."""
    if len(data) > max_bytes:
        raise InvalidInput(f"image: {len(data)} bytes is over the limit of {max_bytes} bytes")
    fmt = sniff_format(data)
    if fmt is None:
        raise InvalidInput(f"image: unsupported type ({_other_type(data)}); send PNG, JPEG or WebP")
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as probe:
            width, height = probe.size
            if width * height > MAX_PIXELS:
                raise InvalidInput(
                    f"image: {width}x{height} pixels is over the limit of {MAX_PIXELS} pixels"
                )
            probe.verify()
        with Image.open(io.BytesIO(data), formats=[fmt]) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInput(f"image: corrupt or unreadable {fmt} data ({exc})") from exc


class Captioner(ABC):
    """Describes an image in a short sentence. ``caption`` is blocking (run it in a thread)."""

    model_id: str

    @abstractmethod
    def caption(self, image: Image.Image) -> str: ...


class BlipCaptioner(Captioner):
    """BLIP (BlipForConditionalGeneration + BlipProcessor), greedy, a few tokens."""

    def __init__(self, model: Any, processor: Any, model_id: str, max_new_tokens: int) -> None:
        self.model = model
        self.processor = processor
        self.model_id = model_id
        self.max_new_tokens = max_new_tokens
        self._lock = threading.Lock()  # one image at a time through the model

    @classmethod
    def load(cls, path: str, max_new_tokens: int = CAPTION_MAX_NEW_TOKENS) -> BlipCaptioner:
        """Load from a local directory only (never the network)."""
        extras.require(extras.CAPTIONING, "image captioning (MONGARS_CAPTION_MODEL)")
        from transformers import BlipForConditionalGeneration, BlipProcessor

        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise ProviderUnavailable(
                f"caption model not found: {path} (MONGARS_CAPTION_MODEL must name a "
                "directory holding a BLIP model saved by transformers)"
            )
        try:
            processor = BlipProcessor.from_pretrained(folder, local_files_only=True)
            model = BlipForConditionalGeneration.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ProviderUnavailable(f"could not load caption model {path}: {exc}") from exc
        model.eval()
        return cls(model, processor, folder.name, max_new_tokens)

    def caption(self, image: Image.Image) -> str:
        import torch

        with self._lock, torch.inference_mode():
            inputs = self.processor(images=image, return_tensors="pt")
            out = self.model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1
            )
        text = self.processor.decode(out[0], skip_special_tokens=True)
        return " ".join(str(text).split())[:MAX_CAPTION_CHARS]


class CaptionContributor(TurnContributor):
    """Turns an attached image into a caption in the prompt and on the stored turn."""

    name = "caption"

    def __init__(self, captioner: Captioner, max_bytes: int) -> None:
        self.captioner = captioner
        self.max_bytes = max_bytes

    async def contribute(self, plan: TurnPlan) -> None:
        if plan.image is None:
            return
        started = time.perf_counter()
        caption = await asyncio.to_thread(self._caption, plan.image)
        if not caption:
            raise ProviderError("the captioning model produced no caption for this image")
        plan.image_caption = caption
        plan.context_parts.append(f"The user attached an image. Caption: {caption}")
        plan.steering["caption"] = {
            "model": self.captioner.model_id,
            "ms": round((time.perf_counter() - started) * 1000, 3),
        }

    def _caption(self, data: bytes) -> str:
        return self.captioner.caption(load_image(data, self.max_bytes))


async def load_caption_contributor(model_dir: str, max_bytes: int) -> CaptionContributor:
    """Load the BLIP model in a worker thread (start-up)."""
    started = time.perf_counter()
    captioner = await asyncio.to_thread(BlipCaptioner.load, model_dir)
    log.info("caption model %s loaded in %.1f s", model_dir, time.perf_counter() - started)
    return CaptionContributor(captioner, max_bytes)
