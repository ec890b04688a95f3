"""GET /api/v1/conversation/turns/{id}/speech: WAV from espeak-ng, owner only, 501 without."""

from __future__ import annotations

import io
import shutil
import struct
import wave
from typing import Any

import pytest

from mongars.media.tts import EspeakTTS, fix_wav_sizes, speakable
from tests.conftest import Api
from tests.fakes import ScriptedLLM


@pytest.fixture
def espeak() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        pytest.fail("espeak-ng is not installed (make setup installs it)")
    return binary


def chat(api: Api, headers: dict[str, str], message: str) -> dict[str, Any]:
    r = api.client.post("/api/v1/conversation/chat", json={"message": message}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def speech(api: Api, headers: dict[str, str], turn_id: int | str) -> Any:
    return api.client.get(f"/api/v1/conversation/turns/{turn_id}/speech", headers=headers)


def read_wav(body: bytes) -> tuple[int, int, float]:
    with wave.open(io.BytesIO(body)) as w:
        frames = w.getnframes()
        assert len(w.readframes(frames)) == frames * w.getsampwidth() * w.getnchannels()
        return w.getnchannels(), w.getframerate(), frames / w.getframerate()


def test_answer_audio_is_a_valid_wav(api: Api, espeak: str) -> None:
    headers = api.setup_admin()
    body = chat(api, headers, "hello")
    r = speech(api, headers, body["turn_id"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav"
    assert r.content[:4] == b"RIFF" and r.content[8:12] == b"WAVE"
    channels, rate, seconds = read_wav(r.content)
    assert channels == 1 and rate == 22050
    # "Hello there. How can I help?": about as long as the speech_turn estimate
    estimate = sum(
        s["estimated_duration"] + s["pause_after"] for s in body["speech_turn"]["segments"]
    )
    assert 0.5 * estimate < seconds < 3 * estimate
    assert r.headers["content-language"] == "en"


def test_audio_follows_the_profile_language(api_factory, espeak: str) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(provider=ScriptedLLM(["Bonjour, je vais très bien, merci beaucoup."]))
    headers = api.setup_admin()
    api.client.put("/api/v1/profile", json={"language": "fr"}, headers=headers)
    body = chat(api, headers, "Comment vas-tu ?")
    r = speech(api, headers, body["turn_id"])
    assert r.status_code == 200 and r.headers["content-language"] == "fr"
    assert read_wav(r.content)[2] > 1.0


def test_only_the_owner_gets_the_audio(api: Api) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    body = chat(api, admin, "hello")
    assert speech(api, bob, body["turn_id"]).status_code == 404
    assert speech(api, admin, 999_999).status_code == 404
    assert speech(api, admin, "abc").status_code == 422
    assert api.client.get(f"/api/v1/conversation/turns/{body['turn_id']}/speech").status_code == 401


def test_no_tts_engine_is_a_clear_501(api_factory) -> None:  # type: ignore[no-untyped-def]
    for binary in ("/nonexistent/espeak-ng", ""):
        api = api_factory(tts_binary=binary)
        headers = api.setup_admin() if binary else api.login("admin")
        body = chat(api, headers, "hello")
        r = speech(api, headers, body["turn_id"])
        assert r.status_code == 501
        assert r.json()["code"] == "tts_unavailable" and "espeak-ng" in r.json()["detail"]


def test_wav_sizes_are_fixed_and_markup_is_not_spoken() -> None:
    header = b"RIFF" + struct.pack("<I", 0x7FFFF024) + b"WAVEfmt " + struct.pack("<I", 16)
    fmt = struct.pack("<HHIIHH", 1, 1, 22050, 44100, 2, 16)
    samples = b"\x01\x00" * 100
    wav = header + fmt + b"data" + struct.pack("<I", 0x7FFFF000) + samples
    fixed = fix_wav_sizes(wav)
    assert struct.unpack_from("<I", fixed, 4)[0] == len(fixed) - 8
    assert read_wav(fixed)[2] == pytest.approx(100 / 22050)
    assert speakable("**Bold** and `code` # title") == "Bold and code title"
    assert EspeakTTS("espeak-ng", 4.0).words_per_minute == 160
