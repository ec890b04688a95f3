"""The crash bench's checker finds each kind of violation (so a clean run means
something): fabricated ledgers against fabricated database contents."""

from __future__ import annotations

import hashlib

from mongars.bench.crash_audit import Snapshot, StoredDoc, check, expected_chunks
from mongars.bench.crash_clients import DocAttempt, JobAttempt, Ledger, TurnAttempt
from mongars.conversation.models import Turn
from mongars.memory.service import turn_text
from mongars.scheduler.models import JobRun
from mongars.settings import ResearchSettings

MESSAGES = [f"crash t{n} amber willow 東京" for n in range(6)]


def _turn(turn_id: int, query: str, response: str, status: str = "completed") -> Turn:
    return Turn(id=turn_id, user_id=1, query=query, response=response, status=status)


def _world() -> tuple[Ledger, Snapshot]:
    ledger = Ledger()
    turns = []
    for n, message in enumerate(MESSAGES):
        attempt = TurnAttempt(f"t{n}", "u", "rest", message, acked=n < 4, turn_id=n + 1)
        ledger.turns.append(attempt)
        if n != 5:  # the last unacknowledged one never reached the database
            turns.append(_turn(n + 1, message, attempt.expected))
    memories = {t.id: (turn_text(t.query, t.response), True) for t in turns}
    runs = {"run-1": JobRun(id="run-1", name="cache.warm", state="succeeded")}
    ledger.jobs.append(JobAttempt("run-1", "cache.warm"))
    return ledger, Snapshot({"u": 1}, turns, memories, {}, {}, runs)


def test_a_clean_world_has_no_violation() -> None:
    ledger, snap = _world()
    found = check(ledger, snap)
    assert found.violations == 0, found.problems
    assert found.acked["turns"] == 4 and found.unacked["turns stored"] == 1


def test_each_kind_of_violation_is_found() -> None:
    ledger, snap = _world()
    snap.turns = [t for t in snap.turns if t.id != 1]  # acknowledged, then lost
    snap.turns.append(_turn(9, MESSAGES[1], ledger.turns[1].expected))  # stored twice
    snap.turns[1].response = ledger.turns[2].expected[:-3]  # truncated, "completed"
    snap.turns.append(_turn(10, "crash mangled", "x"))  # a message nobody sent
    snap.memories.pop(4)  # a completed turn left unindexed
    snap.runs["run-1"].state = "running"  # the acknowledged run never ended
    found = check(ledger, snap)
    assert (found.lost, found.duplicated, found.half_written) == (1, 1, 2), found.problems
    # unindexed: the one whose memory went, the cut one (its memory holds the whole
    # answer) and the two rows no memory was written for
    assert (found.unindexed, found.stuck_jobs) == (4, 1), found.problems


def test_an_unacknowledged_turn_may_be_a_cancelled_prefix_never_a_cut_completed_one() -> None:
    ledger, snap = _world()
    cut = ledger.turns[4].expected[:10]
    snap.turns[4].status, snap.turns[4].response = "cancelled", cut
    assert check(ledger, snap).violations == 0
    snap.turns[4].status = "completed"
    assert check(ledger, snap).half_written == 1


def test_a_document_must_be_whole() -> None:
    ledger, snap = _world()
    data = "# Doc\n\n" + " ".join(["amber willow 東京 ripple"] * 120) + "\n"
    attempt = DocAttempt("u", "d.md", data.encode(), acked=True)
    ledger.docs.append(attempt)
    texts = expected_chunks(attempt, ResearchSettings())
    assert len(texts) > 1
    chunks = [(n, text, True) for n, text in enumerate(texts)]
    whole = StoredDoc(1, hashlib.sha256(attempt.data).hexdigest(), len(texts), chunks)
    snap.docs["d.md"] = [whole]
    assert check(ledger, snap).violations == 0, check(ledger, snap).problems
    whole.chunks = chunks[:-1]  # the document row without its last chunk
    assert check(ledger, snap).half_written == 1
    whole.chunks = [(n, text, n != 1) for n, text in enumerate(texts)]  # one not embedded
    assert check(ledger, snap).half_written == 1
    snap.docs = {}
    assert check(ledger, snap).lost == 1
