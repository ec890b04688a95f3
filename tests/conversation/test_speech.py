"""speech_turn segmentation and the speaking-rate model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mongars.conversation.speech import build_speech_turn, syllables

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_segments_durations_and_pauses() -> None:
    turn = build_speech_turn("7", "Hello there. How are you? Fine!\n\nNew paragraph", NOW, 4.0)
    assert [s.text for s in turn.segments] == [
        "Hello there.",
        "How are you?",
        "Fine!",
        "New paragraph",
    ]
    assert [s.pause_after for s in turn.segments] == [0.35, 0.45, 0.7, 0.0]
    # "Hello there." = hel-lo (2) + there (1, "e" groups: "e","e" -> 2) syllables at 4/s
    assert turn.segments[0].estimated_duration == pytest.approx(
        (syllables("Hello") + syllables("there")) / 4.0
    )
    assert turn.turn_id == "7" and turn.created_at.startswith("2026-01-01")
    assert turn.average_words_per_second > 0


def test_slower_rate_means_longer_durations() -> None:
    fast = build_speech_turn("1", "A sentence with several words.", NOW, 6.0)
    slow = build_speech_turn("1", "A sentence with several words.", NOW, 3.0)
    assert slow.segments[0].estimated_duration == pytest.approx(
        2 * fast.segments[0].estimated_duration
    )


def test_unicode_and_cjk() -> None:
    turn = build_speech_turn("1", "你好世界。Ça va? 🙂", NOW, 4.0)
    assert [s.text for s in turn.segments] == ["你好世界。", "Ça va?", "🙂"]
    assert turn.segments[0].estimated_duration == pytest.approx(1.0)  # 4 characters


def test_empty_text_has_no_segments() -> None:
    turn = build_speech_turn("1", "", NOW, 4.0)
    assert turn.segments == [] and turn.tempo == 1.0
