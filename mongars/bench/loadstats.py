"""Diagnostics of the load server (bench only), so `mongars bench load` can say why a
load breaks instead of guessing: event-loop lag, the database pool, generations in
flight, the event bus's replay logs; and a garbage collection on demand, so memory
measured after a load is what the server still holds, not what it has yet to free.

``GET /_bench/stats`` returns the figures since the previous call; ``POST /_bench/gc``
runs ``gc.collect()`` then glibc's ``malloc_trim(0)`` (freed heap pages back to the
system). Installed by mongars.bench.loadserver only, never by the real server.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

LAG_PERIOD_S = 0.05


class LoopLag:
    """How late the event loop wakes a task that sleeps ``LAG_PERIOD_S``: the time
    every other coroutine (an SSE frame, a database result) waits for the loop."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    async def run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(LAG_PERIOD_S)
            self.samples.append(max(0.0, time.perf_counter() - start - LAG_PERIOD_S))

    def take(self) -> tuple[float, float]:
        """(p95, max) in ms since the previous call."""
        samples, self.samples = sorted(self.samples), []
        if not samples:
            return 0.0, 0.0
        return samples[int(0.95 * (len(samples) - 1))] * 1000, samples[-1] * 1000


def _malloc_trim() -> bool:
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    return hasattr(libc, "malloc_trim") and bool(libc.malloc_trim(0))


def install(app: FastAPI) -> None:
    """Add the routes, and the lag monitor to the app's lifespan."""
    lag = LoopLag()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            task = asyncio.create_task(lag.run())
            try:
                yield state
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    app.router.lifespan_context = lifespan

    @app.get("/_bench/stats", include_in_schema=False)
    async def stats(request: Request) -> dict[str, Any]:
        runtime = request.app.state.runtime
        pool = runtime.engine.pool
        size = pool.size() if hasattr(pool, "size") else 0
        p95, worst = lag.take()
        return {
            "loop_lag_p95_ms": p95,
            "loop_lag_max_ms": worst,
            "pool_checked_out": pool.checkedout() if hasattr(pool, "checkedout") else 0,
            "pool_limit": size + max(0, getattr(pool, "_max_overflow", 0)),
            "generating": runtime.generating,
            "bus_logs": len(getattr(runtime.bus, "_logs", ())),
            "tasks": len(asyncio.all_tasks()),
        }

    @app.post("/_bench/gc", include_in_schema=False)
    async def collect() -> dict[str, Any]:
        return {"collected": gc.collect(), "trimmed": _malloc_trim()}
