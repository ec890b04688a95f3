"""Style metrics measured from messages, and their running averages."""

from __future__ import annotations

import pytest

from mongars.persona.style import Style, detect_language, measure


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("What is the capital of France and why is it there?", "en"),
        ("Bonjour, pourriez-vous m'expliquer comment fonctionne la photosynthèse ?", "fr"),
        ("¿Qué es la fotosíntesis y cómo funciona en las plantas?", "es"),
        ("Wie funktioniert das Internet? Ich verstehe es nicht.", "de"),
        ("Che cosa è la fotosintesi e come funziona nelle piante?", "it"),
        ("O que é a fotossíntese e como ela funciona nas plantas?", "pt"),
        ("Bonjour", "fr"),
        ("ok", None),
        ("12345", None),
    ],
)
def test_language_from_function_words(text: str, language: str | None) -> None:
    assert measure(text).language == language


def test_ambiguous_text_has_no_language() -> None:
    # one English and one French function word: no winner
    assert detect_language(["the", "le", "xyz", "abc", "def"]) is None


def test_formal_and_casual_messages_score_apart() -> None:
    formal = measure("Dear Sir, could you kindly explain how photosynthesis works? Thank you.")
    casual = measure("hey whats up lol how does photosynthesis even work 😂")
    neutral = measure("How does photosynthesis work?")
    assert formal.formality > 0.7 > neutral.formality > 0.35 > casual.formality
    assert measure("Bonjour, pourriez-vous m'aider ?").formality > 0.7
    assert measure("salut tu peux m'aider stp").formality < 0.35


def test_counts_rates_and_technical_share() -> None:
    m = measure("How do I fix a KeyError in os.path.join() when my Python script reads JSON?")
    assert m.words == 14 and m.sentence_length == 14
    assert m.question and not m.exclamation and not m.emoji
    # KeyError (camelCase), os.path.join(), Python, script, JSON
    assert m.technical_share == pytest.approx(5 / 14)
    two = measure("Great work! Thanks a lot :) See you tomorrow.")
    assert two.exclamation and two.emoji and not two.question
    assert two.sentence_length == 4  # two sentences, eight words
    assert not measure("see http://example.com/path now").emoji  # a URL is no emoticon


def test_running_values_are_a_mean_then_an_ema() -> None:
    style = Style()
    for words in (2, 4, 6):
        style = style.observed(measure(" ".join(["word"] * words)), alpha=0.2)
    wpm = style.metric("words_per_message")
    assert wpm is not None and wpm.observations == 3
    assert wpm.value == pytest.approx(4.0)  # the plain mean of the first messages
    for _ in range(20):
        style = style.observed(measure("word"), alpha=0.2)
    wpm = style.metric("words_per_message")
    assert wpm is not None and wpm.observations == 23
    assert 1.0 < wpm.value < 1.1  # recent messages dominate
    assert style.messages == 23


def test_language_share_follows_recent_messages() -> None:
    style = Style()
    for _ in range(5):
        style = style.observed(measure("What is the weather like today in the city?"), 0.2)
    style = style.observed(measure("ok"), 0.2)  # undetected: not counted for language
    assert style.language() == ("en", pytest.approx(1.0), 5)
    for _ in range(6):
        style = style.observed(measure("Quel temps fait-il aujourd'hui dans la ville ?"), 0.2)
    code, share, n = style.language()  # type: ignore[misc]
    assert code == "fr" and 0.6 < share < 1.0 and n == 11


def test_style_json_round_trip() -> None:
    style = Style().observed(measure("Bonjour, comment allez-vous ?"), 0.2, digest="abc")
    again = Style.from_json(style.to_json())
    assert again.to_json() == style.to_json()
    assert again.last == "abc" and again.language() is not None
    assert Style.from_json(None).messages == 0
