"""The LoCoMo long-conversation dataset (snap-research/LoCoMo, CC BY-NC 4.0) as
memories and questions, with the evidence ids normalised as its README says."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
_DIA = re.compile(r"D:?(\d+):0*(\d+)")


@dataclass(frozen=True, slots=True)
class DialogTurn:
    dia_id: str
    session: int
    speaker: str
    text: str  # the memory's text: speaker, words, and a shared photo's caption
    at: datetime


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    category: int
    evidence: frozenset[str]
    answer: str = ""  # the gold answer (categories 1-4)


@dataclass
class Conversation:
    sample_id: str
    speakers: tuple[str, str]
    turns: list[DialogTurn] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


def parse_session_time(value: str) -> datetime:
    """'1:56 pm on 8 May, 2023' -> an aware UTC datetime."""
    return datetime.strptime(value.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def normalise_evidence(raw: Iterable[str]) -> set[str]:
    """Split multi-id strings and repair misformatted ids (D:11:26, D30:05)."""
    ids: set[str] = set()
    for item in raw:
        for token in re.split(r"[;,\s]+", str(item)):
            match = _DIA.fullmatch(token.strip())
            if match:
                ids.add(f"D{int(match[1])}:{int(match[2])}")
    return ids


def memory_text(turn: dict[str, object]) -> str:
    text = f"{turn['speaker']}: {turn['text']}"
    caption = turn.get("blip_caption")
    return f"{text} [shares a photo: {caption}]" if caption else text


def load(path: Path, categories: Sequence[int] = (1, 2, 3, 4)) -> list[Conversation]:
    """Conversations with their turns in order (one second apart within a session,
    from the session's date) and the answerable questions of ``categories``."""
    conversations: list[Conversation] = []
    for sample in json.loads(path.read_text()):
        conv = sample["conversation"]
        item = Conversation(sample["sample_id"], (conv["speaker_a"], conv["speaker_b"]))
        sessions = sorted(
            int(k.split("_")[1]) for k in conv if re.fullmatch(r"session_\d+", k) and conv[k]
        )
        for n in sessions:
            start = parse_session_time(conv[f"session_{n}_date_time"])
            for i, turn in enumerate(conv[f"session_{n}"]):
                item.turns.append(
                    DialogTurn(
                        turn["dia_id"],
                        n,
                        turn["speaker"],
                        memory_text(turn),
                        start + timedelta(seconds=i),
                    )
                )
        known = {t.dia_id for t in item.turns}
        for qa in sample["qa"]:
            evidence = normalise_evidence(qa.get("evidence", [])) & known
            if qa["category"] in categories and evidence:
                item.questions.append(
                    Question(qa["question"], qa["category"], frozenset(evidence), str(qa["answer"]))
                )
        conversations.append(item)
    return conversations
