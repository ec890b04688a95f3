"""What `mongars bench crash` finds stored, checked against what its clients sent.

The reads are the bench's own (read-only, here rather than in the features'
repositories: nothing else needs them). The rules:

- an acknowledged turn is stored exactly once, ``completed``, with the exact message
  and the exact answer; an unacknowledged one is absent, or stored once and whole
  (``completed`` with the exact answer, or ``cancelled`` with a prefix of it);
- an acknowledged document is stored once with the uploaded bytes' sha256 and every
  chunk (the texts the chunker makes of those bytes, each embedded); an
  unacknowledged one is absent or just as whole;
- acknowledged feedback is stored with its exact values;
- every completed turn has its memory, with the turn's text, embedded (memory lag:
  how long after the last start that took);
- every acknowledged job run ended (not queued or running, not failed as
  "interrupted"), and no run at all is left queued or running.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.auth.models import User
from mongars.bench.crash_clients import COLLECTION, DocAttempt, Ledger, TurnAttempt
from mongars.conversation.models import Turn
from mongars.db.engine import unit_of_work
from mongars.feedback.models import Feedback
from mongars.memory.models import Memory
from mongars.memory.service import turn_text
from mongars.research.chunking import chunk_document
from mongars.research.extract import extract
from mongars.research.models import Chunk, Collection, Document
from mongars.scheduler.models import JobRun
from mongars.settings import ResearchSettings

OPEN_RUN_STATES = ("queued", "running", "cancelling")
INTERRUPTED = "interrupted"


@dataclass
class StoredDoc:
    user_id: int | None
    sha256: str
    chunk_count: int
    chunks: list[tuple[int, str, bool]]  # position, text, embedded


@dataclass
class Snapshot:
    users: dict[str, int]
    turns: list[Turn]
    memories: dict[int, tuple[str, bool]]  # turn id -> (text, embedded)
    docs: dict[str, list[StoredDoc]]  # path (collection "crash") -> rows
    feedback: dict[int, Feedback]
    runs: dict[str, JobRun]

    def unindexed(self) -> int:
        """Completed turns without an embedded memory holding their text."""
        return sum(
            1
            for t in self.turns
            if t.status == "completed"
            and self.memories.get(t.id) != (turn_text(t.query, t.response), True)
        )

    def open_runs(self) -> list[JobRun]:
        return [r for r in self.runs.values() if r.state in OPEN_RUN_STATES]


async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> Snapshot:
    async with unit_of_work(sessions) as session:
        users = {u.username: u.id for u in await session.scalars(select(User))}
        turns = list(await session.scalars(select(Turn).order_by(Turn.id)))
        memories: dict[int, tuple[str, bool]] = {}
        for turn_id, text, embedded, missing in await session.execute(
            select(Memory.turn_id, Memory.text, Memory.embedded, Memory.embedding.is_(None))
        ):
            if turn_id is not None:
                memories[turn_id] = (text, bool(embedded) and not missing)
        docs: dict[str, list[StoredDoc]] = defaultdict(list)
        by_id: dict[int, StoredDoc] = {}
        for doc, owner in await session.execute(
            select(Document, Collection.owner_id)
            .join(Collection, Collection.id == Document.collection_id)
            .where(Collection.name == COLLECTION)
        ):
            by_id[doc.id] = StoredDoc(owner, doc.sha256, doc.chunk_count, [])
            docs[doc.path].append(by_id[doc.id])
        for document_id, position, text, missing in await session.execute(
            select(Chunk.document_id, Chunk.position, Chunk.text, Chunk.embedding.is_(None))
            .where(Chunk.document_id.in_(list(by_id)))
            .order_by(Chunk.document_id, Chunk.position)
        ):
            by_id[document_id].chunks.append((position, text, not missing))
        feedback = {f.turn_id: f for f in await session.scalars(select(Feedback))}
        runs = {r.id: r for r in await session.scalars(select(JobRun))}
    return Snapshot(users, turns, memories, dict(docs), feedback, runs)


@dataclass
class Findings:
    # turns (and "turns rest|sse|ws"), documents, feedback, jobs
    acked: Counter[str] = field(default_factory=Counter)
    # sent but never acknowledged (in flight at a kill): "turns", "documents", and
    # "... stored" for those the database has all the same (committed, answer lost)
    unacked: Counter[str] = field(default_factory=Counter)
    resumed_runs: int = 0  # job runs begun before a kill and finished after a restart
    checked: int = 0  # stored rows checked (acknowledged or not)
    lost: int = 0
    duplicated: int = 0
    half_written: int = 0
    unindexed: int = 0  # completed turns whose memory is missing or not embedded
    stuck_jobs: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return self.lost + self.duplicated + self.half_written + self.unindexed + self.stuck_jobs

    def note(self, kind: str, what: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.problems) < 30:
            self.problems.append(f"{kind}: {what}")


def check(ledger: Ledger, snap: Snapshot) -> Findings:
    found = Findings()
    _check_turns(ledger.turns, snap, found)
    _check_docs(ledger.docs, snap, found)
    for fb in ledger.feedback:
        row = snap.feedback.get(fb.turn_id)
        found.acked["feedback"] += fb.acked
        if row is None:
            if fb.acked:
                found.note("lost", f"feedback on turn {fb.turn_id}")
            continue
        found.checked += 1
        if (row.rating, row.comment) != (fb.rating, fb.comment):
            found.note("half_written", f"feedback on turn {fb.turn_id}: {row.comment!r}")
    found.unindexed = snap.unindexed()
    if found.unindexed:
        found.problems.append(f"unindexed: {found.unindexed} completed turns without memory")
    for job in ledger.jobs:
        found.acked["jobs"] += 1
        run = snap.runs.get(job.run_id)
        if run is None or (run.state == "failed" and INTERRUPTED in (run.error or "")):
            found.note("lost", f"job run {job.run_id}: {run.state if run else 'missing'}")
    for run in snap.runs.values():
        end = run.finished_at
        if end is not None and any(run.started_at < kill < end for kill in ledger.kills):
            found.resumed_runs += run.state == "succeeded"
    for run in snap.open_runs():
        found.note("stuck_jobs", f"job run {run.id} ({run.name}) left {run.state}")
    return found


def _check_turns(attempts: list[TurnAttempt], snap: Snapshot, found: Findings) -> None:
    by_query: dict[str, list[Turn]] = defaultdict(list)
    for turn in snap.turns:
        by_query[turn.query].append(turn)
    known = set()
    for attempt in attempts:
        known.add(attempt.message)
        rows = by_query.get(attempt.message, [])
        found.acked[f"turns {attempt.channel}"] += attempt.acked
        label = f"turn {attempt.tag} ({attempt.channel}, id {attempt.turn_id})"
        if not _tally(found, "turns", attempt.acked, attempt.bad_ack, len(rows), label):
            continue
        row = rows[0]
        whole = row.status == "completed" and row.response == attempt.expected
        partial = row.status == "cancelled" and attempt.expected.startswith(row.response)
        # acknowledged: whole, and the row the acknowledgement named; else whole or cancelled
        ok = whole and row.id == attempt.turn_id if attempt.acked else whole or partial
        if not ok:
            found.note("half_written", f"turn {attempt.tag}: {row.status} {row.response!r}")
        if row.user_id != snap.users.get(attempt.user):
            found.note("half_written", f"turn {attempt.tag} stored for user {row.user_id}")
    for turn in snap.turns:  # a stored message nobody sent: a mangled one
        if turn.query not in known:
            found.note("half_written", f"turn {turn.id}: unknown message {turn.query[:60]!r}")


def _tally(found: Findings, kind: str, acked: bool, bad_ack: str, stored: int, label: str) -> bool:
    """Count one attempt of ``kind`` stored ``stored`` times; note what is lost,
    duplicated or wrongly acknowledged. True when there is a row to check further."""
    found.acked[kind] += acked
    found.unacked[kind] += not acked
    found.unacked[f"{kind} stored"] += not acked and stored > 0
    found.checked += stored
    if bad_ack:
        found.note("half_written", f"{label}: {bad_ack}")
    if stored > 1:
        found.note("duplicated", f"{label} stored {stored} times")
    if not stored and acked:
        found.note("lost", label)
    return stored > 0


def _check_docs(attempts: list[DocAttempt], snap: Snapshot, found: Findings) -> None:
    cfg = ResearchSettings()
    for attempt in attempts:
        rows = snap.docs.get(attempt.path, [])
        label = f"document {attempt.path}"
        if not _tally(found, "documents", attempt.acked, attempt.bad_ack, len(rows), label):
            continue
        doc = rows[0]
        expected = expected_chunks(attempt, cfg)
        stored = [text for _, text, _ in doc.chunks]
        problem = ""
        if doc.sha256 != hashlib.sha256(attempt.data).hexdigest():
            problem = "sha256 differs from the uploaded bytes"
        elif doc.user_id != snap.users.get(attempt.user):
            problem = f"stored for user {doc.user_id}"
        elif stored != expected or doc.chunk_count != len(expected):
            problem = (
                f"{len(stored)} chunks stored ({doc.chunk_count} listed), {len(expected)} made"
            )
        elif [p for p, _, _ in doc.chunks] != list(range(len(stored))):
            problem = "chunk positions have gaps"
        elif not all(embedded for _, _, embedded in doc.chunks):
            problem = "a chunk has no embedding"
        if problem:
            found.note("half_written", f"document {attempt.path}: {problem}")


def expected_chunks(attempt: DocAttempt, cfg: ResearchSettings) -> list[str]:
    """The chunk texts ingestion makes of these bytes (as DocumentService.ingest)."""
    doc = extract(attempt.data, filename=attempt.path, content_type="text/markdown")
    overlap = min(cfg.chunk_overlap_tokens, cfg.chunk_tokens - 1)
    return [
        c.text for c in chunk_document(doc, max_tokens=cfg.chunk_tokens, overlap_tokens=overlap)
    ]
