"""`mongars bench docs`: document ingestion throughput and retrieval recall@5.

A generated corpus (mongars/research/corpus.py: PDF, Markdown, HTML and text
documents, one answerable fact per page, >= 1,000 pages) is ingested through the
real DocumentService (extract -> chunk -> embed -> store, each document in one
transaction) as one user's collection; then each question is asked of the
hybrid search and, in the same run over the same chunks, of a BM25-only and a
dense-only ranking. A question counts as answered at k when one of the first k
chunks comes from the right document and contains the answer string.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from mongars.bench.common import bench_embedder, create_users, percentile
from mongars.db.engine import create_engine, create_session_factory
from mongars.memory.embeddings import Embedder
from mongars.research.corpus import QA, make_corpus
from mongars.research.service import Actor, DocumentService
from mongars.settings import Settings

MODES = (("monGARS hybrid", "hybrid"), ("BM25 only", "text"), ("dense only", "dense"))
KS = (1, 5, 10)


@dataclass
class Figures:
    pages: int = 0
    chunks: int = 0
    ingest_s: float = 0.0
    extract_s: float = 0.0
    embed_s: float = 0.0
    hits: dict[str, dict[int, int]] = field(default_factory=dict)
    latency_ms: dict[str, list[float]] = field(default_factory=dict)
    asked: int = 0


async def _run(
    settings: Settings, embedder: Embedder, n_docs: int, pages: int, questions: int, seed: int
) -> Figures:
    console = Console(stderr=True)
    corpus = make_corpus(n_docs, pages, seed)
    engine = create_engine(settings.resolved_database_url)
    service = DocumentService(create_session_factory(engine), embedder, settings.research)
    figures = Figures()
    actor = Actor(1)
    try:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("ingesting", total=len(corpus))
            start = time.perf_counter()
            for doc in corpus:
                t = time.perf_counter()
                extracted = await asyncio.to_thread(service.prepare, doc.data, doc.filename, None)
                figures.extract_s += time.perf_counter() - t
                result = await service.ingest(
                    actor, "bench", doc.filename, doc.data, extracted=extracted
                )
                figures.pages += result.document.pages
                figures.chunks += result.document.chunks
                progress.advance(task)
            figures.ingest_s = time.perf_counter() - start
        qas: list[QA] = [qa for doc in corpus for qa in doc.questions]
        random.Random(seed).shuffle(qas)
        qas = qas[:questions]
        figures.asked = len(qas)
        await service.search.search(actor.id, "warm up", 10)  # loads the index
        for label, mode in MODES:
            figures.hits[label] = dict.fromkeys(KS, 0)
            figures.latency_ms[label] = []
            for qa in qas:
                t = time.perf_counter()
                found = await service.search.search(actor.id, qa.question, max(KS), mode=mode)
                figures.latency_ms[label].append((time.perf_counter() - t) * 1000)
                rank = next(
                    (
                        n
                        for n, hit in enumerate(found)
                        if hit.row.path == qa.filename and qa.answer in hit.row.text
                    ),
                    None,
                )
                for k in KS:
                    if rank is not None and rank < k:
                        figures.hits[label][k] += 1
    finally:
        await engine.dispose()
    return figures


def run_bench_docs(docs: int = 100, pages: int = 10, questions: int = 300, seed: int = 0) -> None:
    console = Console()
    embedder = bench_embedder()
    embedder.load()
    with tempfile.TemporaryDirectory(prefix="mongars-docs-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp))
        create_users(settings, ["bench"])
        t = time.perf_counter()
        figures = asyncio.run(_run(settings, embedder, docs, pages, questions, seed))
        total = time.perf_counter() - t
    embedder.close()
    console.print(_ingest_table(figures))
    console.print(_recall_table(figures))
    console.print(f"total {total:.0f} s")


def _ingest_table(f: Figures) -> Table:
    table = Table(title=f"ingestion: {f.pages:,} pages, {f.chunks:,} chunks (SQLite, 1 thread)")
    table.add_column("stage")
    table.add_column("pages/s", justify="right")
    table.add_column("chunks/s", justify="right")
    table.add_column("seconds", justify="right")
    table.add_row(
        "end to end (extract, chunk, embed, store)",
        f"{f.pages / f.ingest_s:.1f}",
        f"{f.chunks / f.ingest_s:.1f}",
        f"{f.ingest_s:.1f}",
    )
    table.add_row(
        "  of which text extraction",
        f"{f.pages / f.extract_s:.1f}" if f.extract_s else "-",
        "",
        f"{f.extract_s:.1f}",
    )
    return table


def _recall_table(f: Figures) -> Table:
    table = Table(title=f"retrieval of the answering passage, {f.asked} generated questions")
    table.add_column("ranking")
    for k in KS:
        table.add_column(f"recall@{k}", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    for label, hits in f.hits.items():
        lat = f.latency_ms[label]
        table.add_row(
            label,
            *(f"{hits[k] / max(1, f.asked):.3f}" for k in KS),
            f"{statistics.median(lat):.1f}" if lat else "-",
            f"{percentile(lat, 95):.1f}",
        )
    return table
