"""Bouche's voice: speak an answer as WAV audio with espeak-ng (a subprocess).

The text goes through standard input (never the command line); espeak-ng
writes the WAV to standard output, whose header it leaves with placeholder
sizes when streaming, so :func:`fix_wav_sizes` writes the real ones.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import struct

from mongars.conversation.speech import BASE_SYLLABLES_PER_WORD
from mongars.errors import DomainError, ProviderError, ProviderTimeout

# espeak-ng voice names where they differ from the ISO 639-1 code.
VOICES = {"zh": "cmn"}
_MARKUP = re.compile(r"[*_`#>|~]+")


class SpeechUnavailable(DomainError):
    """No text-to-speech engine on this server."""

    status, code = 501, "tts_unavailable"


def fix_wav_sizes(wav: bytes) -> bytes:
    """Set the RIFF and data chunk sizes to the bytes actually present."""
    if len(wav) < 12 or wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise ProviderError("espeak-ng did not produce WAV audio")
    out = bytearray(wav)
    pos = 12
    while pos + 8 <= len(out):
        chunk, size = out[pos : pos + 4], struct.unpack_from("<I", out, pos + 4)[0]
        if chunk == b"data":
            struct.pack_into("<I", out, pos + 4, len(out) - pos - 8)
            break
        pos += 8 + size + (size & 1)
    else:
        raise ProviderError("espeak-ng produced WAV audio without a data chunk")
    struct.pack_into("<I", out, 4, len(out) - 8)
    return bytes(out)


class EspeakTTS:
    def __init__(self, binary: str, syllables_per_second: float, timeout_s: float = 60.0) -> None:
        self.binary = binary
        # the same speaking rate as the speech_turn durations, in words per minute
        wpm = round(syllables_per_second / BASE_SYLLABLES_PER_WORD * 60)
        self.words_per_minute = max(80, min(450, wpm))
        self.timeout_s = timeout_s

    def executable(self) -> str | None:
        return shutil.which(self.binary) if self.binary else None

    async def synthesize(self, text: str, language: str) -> bytes:
        exe = self.executable()
        if exe is None:
            raise SpeechUnavailable(
                "no text-to-speech engine is available on this server: install espeak-ng "
                "(apt-get install espeak-ng) or point MONGARS_TTS_BINARY at it"
            )
        voice = VOICES.get(language, language)
        cmd = [exe, "--stdin", "--stdout", "-b", "1", "-v", voice, "-s", str(self.words_per_minute)]
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(speakable(text).encode("utf-8")), self.timeout_s
            )
        except TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise ProviderTimeout(f"espeak-ng took longer than {self.timeout_s} s") from exc
        if proc.returncode != 0:
            detail = err.decode("utf-8", "replace").strip()[:200]
            raise ProviderError(f"espeak-ng failed (exit {proc.returncode}): {detail}")
        return fix_wav_sizes(out)


def speakable(text: str) -> str:
    """The answer without Markdown symbols a voice would spell out."""
    return " ".join(_MARKUP.sub(" ", text).split())
