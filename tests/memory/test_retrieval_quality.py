"""Retrieval quality on real long conversations (two LoCoMo conversations): the
hybrid recall used by chat finds more of each question's evidence in its top 10
than full-text alone or dense alone over the same stored turns."""

from __future__ import annotations

import asyncio
import os
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mongars.auth.service import AuthService
from mongars.bench.locomo import load
from mongars.bench.memory import METHODS, evaluate, ingest
from mongars.db import migrate
from mongars.db.engine import create_engine, create_session_factory, unit_of_work
from mongars.memory.retrieval import date_spans, time_match
from mongars.memory.service import MemoryService
from mongars.settings import AuthSettings

DATASET = Path(
    os.environ.get(
        "MONGARS_LOCOMO",
        Path(__file__).resolve().parents[3] / "shared" / "data" / "locomo" / "locomo10.json",
    )
)


@pytest.mark.slow
def test_hybrid_beats_bm25_and_dense_on_locomo(tmp_path: Path, embedder: Any) -> None:
    if not DATASET.is_file():
        pytest.skip(f"LoCoMo not found at {DATASET} (set MONGARS_LOCOMO)")
    convs = [c for c in load(DATASET) if c.sample_id in ("conv-26", "conv-30")]
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)

    async def scenario() -> dict[str, float]:
        engine = create_engine(url)
        sessions = create_session_factory(engine)
        async with unit_of_work(sessions) as s:
            auth = AuthService(s, AuthSettings(), "x")
            users = [
                (await auth.create_user(c.sample_id, "password123", is_admin=False)).id
                for c in convs
            ]
        memory = MemoryService(sessions, embedder)
        store = await ingest(memory, users, convs, lambda when, text: len(text) // 4 + 8)
        results = await evaluate(memory, store, convs, budget=1500, header=20)
        await engine.dispose()
        return {m: statistics.fmean(results[m, 0].recall["@10"]) for m in METHODS}

    recall = asyncio.run(scenario())
    hybrid, bm25, dense = (recall[m] for m in METHODS)
    assert hybrid > bm25 + 0.03 and hybrid > dense + 0.1, recall
    assert hybrid >= 0.65, recall


def test_dates_named_in_a_query() -> None:
    now = datetime(2026, 3, 15, 12, tzinfo=UTC)
    day = date_spans("What did Maria do on 7 July, 2023?", now)
    assert day == [
        (datetime(2023, 7, 7, tzinfo=UTC).timestamp(), datetime(2023, 7, 8, tzinfo=UTC).timestamp())
    ]
    assert date_spans("a painting shown on October 13, 2023", now) == [
        (
            datetime(2023, 10, 13, tzinfo=UTC).timestamp(),
            datetime(2023, 10, 14, tzinfo=UTC).timestamp(),
        )
    ]
    [(start, end)] = date_spans("the workout class she started in December 2023", now)
    assert (start, end) == (
        datetime(2023, 12, 1, tzinfo=UTC).timestamp(),
        datetime(2024, 1, 1, tzinfo=UTC).timestamp(),
    )
    [(start, _)] = date_spans("what did I say yesterday?", now)
    assert start == datetime(2026, 3, 14, tzinfo=UTC).timestamp()
    assert date_spans("what is my favourite colour?", now) == []
    assert date_spans("on 31 February, 2023", now) == []
    inside = datetime(2023, 7, 7, 15, tzinfo=UTC).timestamp()
    later = datetime(2023, 7, 10, tzinfo=UTC).timestamp()
    earlier = datetime(2023, 7, 4, tzinfo=UTC).timestamp()
    assert time_match(inside, day) == 1.0
    assert 0 < time_match(earlier, day) < time_match(later, day) < 1.0


def test_bfloat16_and_float32_embeddings_agree(embedder: Any) -> None:
    from mongars.memory.embeddings import Embedder

    texts = ["My dog Rex loves the beach.", "Tax return due in April", "日本語のテキスト", "ok"]
    exact = Embedder(precision="float32")
    exact._tokenizer, exact._model = embedder._tokenizer, embedder._model
    fast = Embedder(precision="bfloat16")
    fast._tokenizer, fast._model = embedder._tokenizer, embedder._model
    a, b = exact.embed_sync(texts), fast.embed_sync(texts)
    assert a.shape == b.shape == (4, 384)
    assert (a * b).sum(axis=1).min() > 0.999
    assert abs(float((a[0] * a[1]).sum()) - float((b[0] * b[1]).sum())) < 0.01
