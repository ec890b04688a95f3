"""From turns to training records: the policy, scrubbing, the held-out split by
conversation, governance, and the dataset files (data.jsonl + manifest.json)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mongars.db.base import utcnow
from mongars.training.repository import Candidate
from mongars.training.schemas import DatasetPolicy, Violation
from mongars.training.scrub import SCRUBBER_VERSION, Scrubber
from mongars.training.spec import file_sha256

NODE_FILE = "node_id"


@dataclass(frozen=True)
class Policy:
    """A DatasetPolicy with every default filled in from settings."""

    include_rated_up: bool
    include_corrected: bool
    include_unrated: bool
    min_confidence: float
    since: datetime | None
    limit: int
    held_out_share: float
    min_records: int

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["since"] = self.since.isoformat() if self.since else None
        return out


def resolve_policy(policy: DatasetPolicy, cfg: Any) -> Policy:
    """``cfg``: the TrainingSettings."""
    return Policy(
        include_rated_up=policy.include_rated_up,
        include_corrected=policy.include_corrected,
        include_unrated=cfg.include_unrated
        if policy.include_unrated is None
        else policy.include_unrated,
        min_confidence=cfg.min_confidence
        if policy.min_confidence is None
        else policy.min_confidence,
        since=policy.since,
        limit=min(policy.limit or cfg.max_records, cfg.max_records),
        held_out_share=cfg.held_out_share
        if policy.held_out_share is None
        else policy.held_out_share,
        min_records=policy.min_records or cfg.min_records,
    )


def select_target(candidate: Candidate, policy: Policy) -> tuple[str, str] | None:
    """The answer to learn and why (answer | correction), or None to leave the turn out.

    Rated down, cut by the answer hygiene guard or empty: never. Corrected: the
    correction (even when rated down: the user said what the answer should be)."""
    turn = candidate.turn
    if policy.include_corrected and candidate.correction and candidate.correction.strip():
        return candidate.correction.strip(), "correction"
    if candidate.rating == "down" or "hygiene" in (turn.steering or {}):
        return None
    if not turn.response.strip():
        return None
    if candidate.rating == "up":
        return (turn.response.strip(), "answer") if policy.include_rated_up else None
    confident = turn.confidence is not None and turn.confidence >= policy.min_confidence
    return (turn.response.strip(), "answer") if policy.include_unrated and confident else None


def node_id(data_dir: Path) -> str:
    """This node's stable id (the peer mesh will name other nodes' records)."""
    path = data_dir / NODE_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = uuid.uuid4().hex
    path.write_text(value + "\n")
    return value


def hashed(secret: str, kind: str, value: object) -> str:
    """A keyed hash: stable on this server, not reversible without its secret."""
    digest = hmac.new(secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


def held_out_conversations(conversations: list[str], share: float) -> set[str]:
    """Whole conversations go to the held-out split (never single rows), chosen by a
    stable hash; at least one when there are two or more and the share is positive."""
    ordered = sorted(set(conversations), key=lambda c: hashlib.sha256(c.encode()).hexdigest())
    if share <= 0 or len(ordered) < 2:
        return set()
    count = max(1, round(len(ordered) * share))
    return set(ordered[: min(count, len(ordered) - 1)])


@dataclass
class Built:
    records: list[dict[str, Any]] = field(default_factory=list)
    manifest_records: list[dict[str, Any]] = field(default_factory=list)
    sources: list[tuple[int, int]] = field(default_factory=list)  # (turn id, user id)
    violations: list[Violation] = field(default_factory=list)
    detector_counts: Counter[str] = field(default_factory=Counter)

    @property
    def held_out(self) -> int:
        return sum(1 for r in self.records if r["split"] == "held_out")


def build_records(
    candidates: list[Candidate],
    policy: Policy,
    *,
    system_prompt: str,
    usernames: dict[int, str],
    secret: str,
    source_node: str,
) -> Built:
    """Scrub and split the chosen turns; record what governance must know."""
    built = Built()
    chosen = [(c, t) for c in reversed(candidates) if (t := select_target(c, policy))]
    held = held_out_conversations([c.turn.thread_id for c, _ in chosen], policy.held_out_share)
    scrubbers: dict[int, Scrubber] = {}
    pii_left: list[int] = []
    for index, (candidate, (target, kind)) in enumerate(chosen):
        turn = candidate.turn
        scrubber = scrubbers.get(turn.user_id)
        if scrubber is None:
            others = [name for uid, name in usernames.items() if uid != turn.user_id]
            scrubber = scrubbers[turn.user_id] = Scrubber(other_user_names=others)
        texts = []
        for text in (turn.query, target):
            clean, counts = scrubber.scrub(text)
            built.detector_counts.update(counts)
            if scrubber.find(clean):
                pii_left.append(index)
            texts.append(clean)
        split = "held_out" if turn.thread_id in held else "train"
        conversation = hashed(secret, "thread", turn.thread_id)
        built.records.append(
            {
                "id": index,
                "conversation": conversation,
                "split": split,
                "messages": [
                    {"role": "system", "content": system_prompt},
                    {"role": "user", "content": texts[0]},
                    {"role": "assistant", "content": texts[1]},
                ],
            }
        )
        built.manifest_records.append(
            {
                "index": index,
                "source_node": source_node,
                "user": hashed(secret, "user", turn.user_id),
                "turn_id": turn.id,
                "conversation": conversation,
                "split": split,
                "target": kind,
                "rating": candidate.rating,
                "confidence": turn.confidence,
                "scrubber_version": SCRUBBER_VERSION,
            }
        )
        built.sources.append((turn.id, turn.user_id))
    if pii_left:
        built.violations.append(
            Violation(
                code="pii_remaining",
                detail=f"{len(set(pii_left))} record(s) still hold personal data after scrubbing",
                records=sorted(set(pii_left))[:100],
            )
        )
    if len(built.records) < policy.min_records:
        built.violations.append(
            Violation(
                code="too_few_records",
                detail=f"{len(built.records)} record(s); the policy needs {policy.min_records}",
            )
        )
    return built


def write_dataset(
    root: Path, dataset_id: str, built: Built, policy: Policy, status: str
) -> tuple[Path, str]:
    """Write data.jsonl and manifest.json into a temp folder, then rename it into place:
    a crash leaves no half-written dataset. Returns the folder and data's sha256."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / dataset_id
    temp = root / f".{dataset_id}.tmp"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    try:
        data = temp / "data.jsonl"
        with data.open("w", encoding="utf-8") as f:
            for record in built.records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        sha = file_sha256(data)
        manifest = {
            "id": dataset_id,
            "format": "chat-messages-jsonl",
            "anonymised_at": utcnow().isoformat(),
            "records": len(built.records),
            "held_out": built.held_out,
            "sha256": sha,
            "scrubber_version": SCRUBBER_VERSION,
            "scrubbed": dict(built.detector_counts),
            "policy": policy.to_json(),
            "governance": {
                "verdict": status,
                "violations": [v.model_dump() for v in built.violations],
            },
            "record_sources": built.manifest_records,
        }
        (temp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        os.replace(temp, final)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return final, sha


def update_verdict(folder: Path, status: str, violations: list[Violation]) -> None:
    """Record a later governance verdict (consent withdrawn, past retention)."""
    path = folder / "manifest.json"
    if not path.exists():
        return
    manifest = json.loads(path.read_text())
    manifest["governance"] = {
        "verdict": status,
        "violations": [v.model_dump() for v in violations],
    }
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    os.replace(temp, path)
