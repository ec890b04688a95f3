"""Bouche: turn an answer into a speech turn (segments, durations, pauses).

Speaking-rate model (docs/speech.md): each word costs its estimated syllable
count (vowel groups, at least one) divided by the syllable rate; a segment is a
sentence or a line; the pause after it depends on how it ends.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel

_SENTENCE = re.compile(r"[^.!?…。！？\n]+(?:[.!?…。！？]+[\"')\]»”]*[ \t]*\n*|\n+|$)")
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)
_VOWELS = re.compile(r"[aeiouyàâäéèêëîïôöùûüœæáíóúãõåø]+", re.IGNORECASE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")

PAUSES = {"?": 0.45, "!": 0.45, "…": 0.6, ".": 0.35, "。": 0.35, "！": 0.45, "？": 0.45}
PARAGRAPH_PAUSE = 0.7
BASE_SYLLABLES_PER_WORD = 1.5  # English average, used to express tempo in words


class SpeechSegment(BaseModel):
    text: str
    estimated_duration: float
    pause_after: float


class SpeechTurn(BaseModel):
    turn_id: str
    text: str
    created_at: str
    segments: list[SpeechSegment]
    average_words_per_second: float
    tempo: float


def syllables(word: str) -> int:
    cjk = len(_CJK.findall(word))
    if cjk:
        return cjk  # one syllable per character
    return max(1, len(_VOWELS.findall(word)))


def _pause(raw: str, is_last: bool) -> float:
    if is_last:
        return 0.0
    if raw.count("\n") >= 2:
        return PARAGRAPH_PAUSE
    stripped = raw.rstrip(" \"')]»”\n")
    return PAUSES.get(stripped[-1:], 0.25) if stripped else 0.25


def build_speech_turn(
    turn_id: str, text: str, created_at: datetime, syllables_per_second: float
) -> SpeechTurn:
    pieces = [m.group(0) for m in _SENTENCE.finditer(text) if m.group(0).strip()]
    segments: list[SpeechSegment] = []
    total_words = 0
    total_speaking = 0.0
    for i, raw in enumerate(pieces):
        words = _WORD.findall(raw)
        duration = sum(syllables(w) for w in words) / syllables_per_second
        total_words += len(words)
        total_speaking += duration
        segments.append(
            SpeechSegment(
                text=raw.strip(),
                estimated_duration=round(duration, 3),
                pause_after=_pause(raw, i == len(pieces) - 1),
            )
        )
    wps = total_words / total_speaking if total_speaking else 0.0
    base_wps = syllables_per_second / BASE_SYLLABLES_PER_WORD
    return SpeechTurn(
        turn_id=turn_id,
        text=text,
        created_at=created_at.isoformat(),
        segments=segments,
        average_words_per_second=round(wps, 3),
        tempo=round(wps / base_wps, 3) if wps else 1.0,
    )
