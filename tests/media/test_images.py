"""Image input: validation, and a tiny BLIP model captioning through the chat API."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mongars.app import create_app
from mongars.conversation.models import Turn
from mongars.errors import InvalidInput, ProviderUnavailable
from mongars.media.captioning import BlipCaptioner, load_image, sniff_format
from tests.conftest import Api, make_settings
from tests.fakes import ScriptedLLM
from tests.media.conftest import image_bytes


def send(api: Api, headers: dict[str, str], image: str, message: str = "What is this?") -> Any:
    body = {"message": message, "image": image}
    return api.client.post("/api/v1/conversation/chat", json=body, headers=headers)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def stored(api: Api, turn_id: int) -> Turn:
    async def load() -> Turn:
        async with api.runtime.sessions() as s:
            return (await s.execute(select(Turn).where(Turn.id == turn_id))).scalar_one()

    return api.client.portal.call(load)  # type: ignore[union-attr, no-any-return]


def turn_count(api: Api) -> int:
    async def count() -> int:
        async with api.runtime.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(Turn)) or 0)

    return api.client.portal.call(count)  # type: ignore[union-attr, no-any-return]


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims other dimensions (valid CRC): a decompression bomb."""
    data = bytearray(image_bytes("PNG", (1, 1)))
    ihdr = 8 + 8  # signature, then length and type of the first chunk
    struct.pack_into(">II", data, ihdr, width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    struct.pack_into(">I", data, ihdr + 13, crc)
    return bytes(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_supported_images_decode_to_rgb(fmt: str) -> None:
    data = image_bytes(fmt)
    assert sniff_format(data) == fmt
    image = load_image(data, 1 << 20)
    assert image.mode == "RGB" and image.size == (64, 48)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (image_bytes("GIF"), "unsupported type (GIF)"),
        (b"%PDF-1.7 not an image", "unsupported type (PDF)"),
        (b"hello world, plain text", "unsupported type (unknown)"),
        (image_bytes("PNG")[:60], "corrupt or unreadable PNG"),
        (image_bytes("JPEG")[:200], "corrupt or unreadable JPEG"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 garbage", "corrupt or unreadable WEBP"),
        (png_claiming(8000, 8000), "8000x8000 pixels is over the limit"),
        (image_bytes("PNG", (400, 400)), "over the limit of 2000 bytes"),
    ],
)
def test_bad_images_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason.replace("(", r"\(").replace(")", r"\)")):
        load_image(data, 2000)


def test_image_without_caption_model_is_a_clear_400(api: Api) -> None:
    headers = api.setup_admin()
    r = send(api, headers, b64(image_bytes()))
    assert r.status_code == 400 and r.json()["code"] == "feature_disabled"
    assert "MONGARS_CAPTION_MODEL" in r.json()["detail"]


def test_tiny_blip_caption_reaches_prompt_and_stored_turn(api_factory, tiny_blip: Path) -> None:  # type: ignore[no-untyped-def]
    llm = ScriptedLLM(["It looks red."])
    api = api_factory(provider=llm, caption_model=str(tiny_blip))
    headers = api.setup_admin()
    data = image_bytes("PNG")
    expected = BlipCaptioner.load(str(tiny_blip)).caption(load_image(data, 1 << 20))
    assert expected  # what the model itself says about this image
    r = send(api, headers, b64(data))
    assert r.status_code == 200, r.text
    assert r.json()["response"] == "It looks red."
    system = llm.calls[-1][0].content
    assert f"The user attached an image. Caption: {expected}" in system
    assert llm.calls[-1][-1].content == "What is this?"  # the message is untouched
    turn = stored(api, r.json()["turn_id"])
    assert turn.image_caption == expected
    assert turn.steering["caption"]["model"] == tiny_blip.name
    assert turn.steering["caption"]["ms"] > 0
    # a data: URL, and the other formats, work the same way
    for fmt, mime in (("JPEG", "jpeg"), ("WEBP", "webp")):
        url = f"data:image/{mime};base64,{b64(image_bytes(fmt))}"
        r = send(api, headers, url)
        assert r.status_code == 200, r.text
        assert stored(api, r.json()["turn_id"]).image_caption


def test_bad_images_through_chat_are_422_and_nothing_is_stored(
    api_factory,  # type: ignore[no-untyped-def]
    tiny_blip: Path,
) -> None:
    api = api_factory(caption_model=str(tiny_blip), caption_max_bytes=4096)
    headers = api.setup_admin()
    cases = [
        (b64(image_bytes("PNG")[:60]), "corrupt or unreadable PNG"),
        (b64(image_bytes("GIF")), "unsupported type (GIF)"),
        (b64(image_bytes("PNG", (300, 300)) + b"\x00" * 5000), "over the limit of 4096 bytes"),
        ("not base64 at all!", "not valid base64"),
    ]
    for image, reason in cases:
        r = send(api, headers, image)
        assert r.status_code == 422, (reason, r.text)
        assert r.json()["code"] == "invalid_input" and reason in r.json()["detail"]
    assert turn_count(api) == 0


def test_missing_caption_model_fails_start_up_clearly(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, caption_model=str(tmp_path / "no-such-model"))
    with (
        pytest.raises(ProviderUnavailable, match="caption model not found"),
        TestClient(create_app(settings, llm=ScriptedLLM())),
    ):
        pass
