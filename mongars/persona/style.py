"""Style metrics measured from a user's own messages (pure functions, no I/O).

:func:`measure` reads one message; :class:`Style` keeps the running values, each
an exponential moving average with its observation count: a plain mean for the
first ``1/alpha`` messages, then ``value += alpha * (x - value)``. Methods and
word lists are described in docs/persona.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mongars.persona.lexicon import (
    CONTRACTION_SUFFIXES,
    FORMAL_PHRASES,
    FORMAL_WORDS,
    INFORMAL_WORDS,
    STOPWORDS,
    TECHNICAL_WORDS,
)

METRICS = (
    "words_per_message",
    "sentence_length",
    "formality",
    "question_rate",
    "exclamation_rate",
    "emoji_rate",
    "technical_share",
)

_LETTERS = re.compile(r"[^\W\d_]+")
_SENTENCE_END = re.compile(r"[.!?…。！？]+(?=\s|$)|\n+")
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff]"
    r"|(?<![\w/])[:;=][-']?[)(DPp|*3](?!\w)|<3|\^_\^|(?<!\w)xD(?!\w)"
)
_CODE_LIKE = re.compile(
    r"^(?:[A-Za-z_]\w+(?:\.[A-Za-z_]\w+)+(?:\(\))?"  # os.path.join, obj.method()
    r"|\w+\(\)"  # call()
    r"|[a-z]+[A-Z]\w*|[A-Z][a-z]+[A-Z]\w*"  # camelCase, PascalCase
    r"|\w*[A-Za-z]_\w+"  # snake_case
    r"|--?[a-z][\w-]+"  # --flags
    r"|[\w/.-]*\.(?:py|js|ts|rs|go|java|cpp|json|yaml|yml|toml|sql|sh|md))$"  # files
)
_EDGE_PUNCT = ".,;:!?\"'()[]{}<>«»“”‘’`*"
_REPEATED_PUNCT = re.compile(r"[!?]{2,}")


@dataclass(frozen=True, slots=True)
class MessageStyle:
    """One message's measurements."""

    words: int
    sentence_length: float
    formality: float  # 0 casual .. 1 formal
    question: bool
    exclamation: bool
    emoji: bool
    technical_share: float
    language: str | None  # None: too little evidence

    def values(self) -> dict[str, float]:
        return {
            "words_per_message": float(self.words),
            "sentence_length": self.sentence_length,
            "formality": self.formality,
            "question_rate": float(self.question),
            "exclamation_rate": float(self.exclamation),
            "emoji_rate": float(self.emoji),
            "technical_share": self.technical_share,
        }


def words_of(text: str) -> list[str]:
    """Whitespace-separated tokens with at least one letter, edge punctuation removed."""
    out = []
    for raw in text.split():
        token = raw.strip(_EDGE_PUNCT)
        if token and any(c.isalpha() for c in token):
            out.append(token)
    return out


def detect_language(letters: list[str]) -> str | None:
    """The language whose function words dominate (en, fr, es, de, it, pt), or None.

    Needs two hits and 1.5 times the runner-up; a message of three words or
    fewer needs one hit and none for any other language.
    """
    hits = {lang: sum(w in words for w in letters) for lang, words in STOPWORDS.items()}
    ranked = sorted(hits.items(), key=lambda kv: kv[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top >= 2 and top >= 1.5 * second:
        return best
    if len(letters) <= 3 and top >= 1 and second == 0:
        return best
    return None


def formality(text: str, letters: list[str], lowered_words: list[str], emoji_count: int) -> float:
    """Register score in (0, 1): (formal + 1) / (formal + informal + 2).

    Formal: politeness and formal-address words or phrases; informal: slang,
    English contractions, informal address, emoji, repeated ! or ?. Starting
    with a capital and ending with punctuation count a quarter point each way.
    """
    formal = float(sum(w in FORMAL_WORDS for w in letters))
    lowered = text.lower()
    formal += sum(phrase in lowered for phrase in FORMAL_PHRASES)
    informal = float(sum(w in INFORMAL_WORDS for w in letters))
    informal += sum(w.endswith(CONTRACTION_SUFFIXES) for w in lowered_words)
    informal += emoji_count + len(_REPEATED_PUNCT.findall(text))
    stripped = text.strip()
    first = next((c for c in stripped if c.isalpha()), "")
    if first and first.upper() != first.lower():  # a script with letter case
        if first.isupper():
            formal += 0.25
        else:
            informal += 0.25
    if stripped:
        if stripped[-1] in '.?!…)»"':
            formal += 0.25
        else:
            informal += 0.25
    return (formal + 1) / (formal + informal + 2)


def technical_share(words: list[str]) -> float:
    if not words:
        return 0.0
    hits = 0
    for word in words:
        lowered = word.lower()
        if (
            lowered in TECHNICAL_WORDS
            or (lowered.endswith("s") and lowered[:-1] in TECHNICAL_WORDS)
            or _CODE_LIKE.match(word)
        ):
            hits += 1
    return hits / len(words)


def measure(text: str) -> MessageStyle:
    words = words_of(text)
    lowered_words = [w.lower() for w in words]
    letters = _LETTERS.findall(text.lower())
    sentences = [s for s in _SENTENCE_END.split(text) if _LETTERS.search(s)]
    emoji_count = len(_EMOJI.findall(text))
    return MessageStyle(
        words=len(words),
        sentence_length=len(words) / max(1, len(sentences)),
        formality=formality(text, letters, lowered_words, emoji_count),
        question="?" in text or "¿" in text or "？" in text,
        exclamation="!" in text or "¡" in text or "！" in text,
        emoji=emoji_count > 0,
        technical_share=technical_share(words),
        language=detect_language(letters),
    )


@dataclass(frozen=True, slots=True)
class Measured:
    value: float
    observations: int


@dataclass(frozen=True)
class Style:
    """Running style values of one user (stored as JSON on the profile)."""

    messages: int = 0
    metrics: dict[str, Measured] = field(default_factory=dict)
    languages: dict[str, float] = field(default_factory=dict)  # EMA share per language
    language_observations: int = 0
    last: str = ""  # digest of the last message observed (a regenerated turn repeats it)

    def metric(self, name: str) -> Measured | None:
        return self.metrics.get(name)

    def language(self) -> tuple[str, float, int] | None:
        """(code, share, observations) of the dominant language, if any was detected."""
        if not self.languages:
            return None
        code = max(self.languages, key=lambda c: self.languages[c])
        return code, self.languages[code], self.language_observations

    def observed(self, m: MessageStyle, alpha: float, digest: str = "") -> Style:
        """A new Style including this message."""
        metrics = dict(self.metrics)
        for name, x in m.values().items():
            old = metrics.get(name)
            n = (old.observations if old else 0) + 1
            value = old.value if old else 0.0
            metrics[name] = Measured(value + max(1 / n, alpha) * (x - value), n)
        languages, lang_n = self.languages, self.language_observations
        if m.language is not None:
            lang_n += 1
            a = max(1 / lang_n, alpha)
            languages = {c: s * (1 - a) for c, s in languages.items() if s * (1 - a) >= 0.01}
            languages[m.language] = languages.get(m.language, 0.0) + a
        return Style(self.messages + 1, metrics, languages, lang_n, digest)

    def to_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "metrics": {
                k: {"value": round(v.value, 5), "n": v.observations}
                for k, v in self.metrics.items()
            },
            "languages": {k: round(v, 5) for k, v in self.languages.items()},
            "language_n": self.language_observations,
            "last": self.last,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Style:
        if not data:
            return cls()
        metrics = {
            k: Measured(float(v["value"]), int(v["n"]))
            for k, v in data.get("metrics", {}).items()
            if k in METRICS
        }
        return cls(
            messages=int(data.get("messages", 0)),
            metrics=metrics,
            languages={str(k): float(v) for k, v in data.get("languages", {}).items()},
            language_observations=int(data.get("language_n", 0)),
            last=str(data.get("last", "")),
        )
