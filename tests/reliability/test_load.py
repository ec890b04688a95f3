"""`mongars bench load`, bounded for CI: a real load server on SQLite with 20 SSE
chatters and 50 idle WebSockets for 10 s. Every answer arrives, no socket is
dropped, and the server gives its memory back once the load is over. The full
run: `mongars bench load` (200 + 500 for 2 minutes, SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mongars.bench.load import Options, run_bench_load, target_failures
from tests.conftest import PASSWORD, Api


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_small_load_has_no_error_and_no_memory_growth() -> None:
    opts = Options(
        sse=20, ws=50, duration_s=10, users=5, tokens=20, settle_s=1, rss_tolerance_mib=24
    )
    (step,) = run_bench_load(opts, ("sqlite",))
    assert dict(step.errors) == {}, step.log_tail
    assert step.ws_alive == 50
    # Every chatter answered many times (one answer takes ~0.5 s: 20 tokens, 25 ms apart).
    assert step.tally.chats >= 20 * 4 and len(step.tally.ttft_ms) == step.tally.chats
    assert step.tally.deltas == step.tally.chats * opts.tokens
    assert any(s.stats.get("pool_limit") for s in step.samples)  # the server reported
    assert step.rss_peak >= step.rss_start > 0
    assert target_failures([step], opts) == []  # includes RSS growth <= 24 MiB


def test_an_exhausted_database_pool_is_a_503_to_retry(api_factory: Callable[..., Api]) -> None:
    """Past the pool's timeout a request gets 503 + Retry-After, not a bare 500."""
    api = api_factory()
    api.setup_admin()
    engine = api.runtime.engine
    held = []

    async def hold_every_connection() -> None:
        engine.pool._timeout = 0.2  # the pool's wait (30 s): shortened for the test
        pool = engine.pool
        for _ in range(pool.size() + pool._max_overflow):
            held.append(await engine.connect())

    async def release() -> None:
        for conn in held:
            await conn.close()

    portal = api.client.portal
    assert portal is not None
    portal.call(hold_every_connection)
    try:
        r = api.client.post("/token", data={"username": "admin", "password": PASSWORD})
    finally:
        portal.call(release)
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "overloaded" and r.headers["retry-after"] == "2"
    assert "overloaded" in r.json()["detail"]
