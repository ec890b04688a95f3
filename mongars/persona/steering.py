"""Profile -> system directives, length budget and sampling for one turn (pure).

An explicit preference always wins; an inferred value applies only once it was
measured on ``min_observations`` messages (confidence >= 0.5). Every directive
and budget is recorded with the profile value it came from (docs/persona.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mongars.persona.lexicon import LANGUAGES
from mongars.persona.style import Style
from mongars.settings import PersonaSettings

# Inference thresholds on the measured style.
TERSE_WORDS, DETAILED_WORDS = 6.0, 30.0  # words per message
FORMAL_SCORE, CASUAL_SCORE = 0.7, 0.35  # formality
EMOJI_RATE = 0.5  # share of messages with emoji
TECHNICAL_SHARE = 0.15  # share of technical words
LANGUAGE_SHARE = 0.6  # share of the dominant language

VERBOSITY_DIRECTIVES = {
    "terse": "Keep answers short: one or two sentences.",
    "detailed": "Give detailed answers: explain your reasoning and give examples.",
}
TONE_DIRECTIVES = {
    "formal": "Use a formal register.",
    "casual": "Use a casual, relaxed register.",
    "friendly": "Use a warm, friendly tone.",
}
EMOJI_DIRECTIVES = {True: "Emoji are welcome where they fit.", False: "Do not use emoji."}
TECHNICAL_DIRECTIVE = "The user is technical: use precise technical terms."


@dataclass(frozen=True, slots=True)
class Preferences:
    """Explicit preferences; None means not set."""

    persona: str | None = None
    tone: str | None = None
    verbosity: str | None = None
    language: str | None = None
    emoji: bool | None = None


@dataclass(frozen=True)
class ProfileData:
    """What steering needs to know about a user (cached per process)."""

    user_id: int
    prefs: Preferences = Preferences()
    style: Style = field(default_factory=Style)


@dataclass(frozen=True, slots=True)
class Choice:
    field: str
    value: Any
    source: str  # "explicit" | "inferred"
    metric: str | None = None
    measured: float | None = None
    observations: int | None = None
    confidence: float | None = None

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "value": self.value, "source": self.source}
        if self.source == "inferred":
            out.update(
                metric=self.metric,
                measured=round(self.measured or 0.0, 4),
                observations=self.observations,
                confidence=self.confidence,
            )
        return out


@dataclass
class Steering:
    instructions: str | None
    directives: list[str]
    max_tokens: int
    temperature: float
    record: dict[str, Any]


def confidence(observations: int, min_observations: int) -> float:
    """n / (n + min_observations): 0.5 exactly when inferred values start to apply."""
    return round(observations / (observations + min_observations), 3)


def _inferred(style: Style, metric: str, cfg: PersonaSettings) -> tuple[float, int, float] | None:
    m = style.metric(metric)
    if m is None or m.observations < cfg.min_observations:
        return None
    return m.value, m.observations, confidence(m.observations, cfg.min_observations)


def choices(profile: ProfileData, cfg: PersonaSettings) -> dict[str, Choice]:
    """The value each steerable field takes, and where it comes from."""
    prefs, style = profile.prefs, profile.style
    out: dict[str, Choice] = {}
    for name in ("language", "verbosity", "tone", "emoji"):
        value = getattr(prefs, name)
        if value is not None:
            out[name] = Choice(name, value, "explicit")
    if "language" not in out and (lang := style.language()) is not None:
        code, share, n = lang
        if n >= cfg.min_observations and share >= LANGUAGE_SHARE:
            conf = confidence(n, cfg.min_observations)
            out["language"] = Choice("language", code, "inferred", "language", share, n, conf)
    rules: list[tuple[str, str, Any]] = [
        ("verbosity", "words_per_message", _verbosity),
        ("tone", "formality", _tone),
        ("emoji", "emoji_rate", lambda v: True if v >= EMOJI_RATE else None),
        ("technical", "technical_share", lambda v: True if v >= TECHNICAL_SHARE else None),
    ]
    for name, metric, rule in rules:
        if name in out or (measured := _inferred(style, metric, cfg)) is None:
            continue
        value, n, conf = measured
        if (picked := rule(value)) is not None:
            out[name] = Choice(name, picked, "inferred", metric, value, n, conf)
    return out


def _verbosity(words: float) -> str:
    return "terse" if words <= TERSE_WORDS else "detailed" if words >= DETAILED_WORDS else "normal"


def _tone(score: float) -> str:
    return "formal" if score >= FORMAL_SCORE else "casual" if score <= CASUAL_SCORE else "neutral"


def steer(
    profile: ProfileData, cfg: PersonaSettings, max_tokens: int, temperature: float
) -> Steering:
    picked = choices(profile, cfg)
    directives: list[tuple[str, Choice]] = []
    budgets: dict[str, Any] = {}
    if (c := picked.get("language")) is not None and c.value in LANGUAGES:
        directives.append((f"Answer in {LANGUAGES[c.value]}.", c))
    if (c := picked.get("verbosity")) is not None and c.value in VERBOSITY_DIRECTIVES:
        directives.append((VERBOSITY_DIRECTIVES[c.value], c))
        if c.value == "terse" and cfg.terse_max_tokens < max_tokens:
            budgets["max_tokens"] = {"value": cfg.terse_max_tokens, "base": max_tokens, "from": c}
    if (c := picked.get("tone")) is not None and c.value in TONE_DIRECTIVES:
        directives.append((TONE_DIRECTIVES[c.value], c))
    if (c := picked.get("emoji")) is not None:
        directives.append((EMOJI_DIRECTIVES[bool(c.value)], c))
    if (c := picked.get("technical")) is not None:
        directives.append((TECHNICAL_DIRECTIVE, c))
        if cfg.technical_temperature < temperature:
            budgets["temperature"] = {
                "value": cfg.technical_temperature,
                "base": temperature,
                "from": c,
            }
    instructions = profile.prefs.persona
    record: dict[str, Any] = {
        "directives": [{"text": text, "from": c.record()} for text, c in directives],
        "budgets": {k: {**v, "from": v["from"].record()} for k, v in budgets.items()},
        "messages_observed": profile.style.messages,
    }
    if instructions:
        record["instructions"] = {"source": "explicit", "chars": len(instructions)}
    return Steering(
        instructions=instructions,
        directives=[text for text, _ in directives],
        max_tokens=budgets.get("max_tokens", {}).get("value", max_tokens),
        temperature=budgets.get("temperature", {}).get("value", temperature),
        record=record,
    )
