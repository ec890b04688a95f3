"""The in-process bus keeps finished generations' logs for a while, within a bound:
under sustained load they held the server's memory for ten minutes (bench load)."""

from __future__ import annotations

import pytest

from mongars.realtime import bus as bus_module
from mongars.realtime.bus import InProcessBus
from tests.realtime.test_bus import ev


async def answer(bus: InProcessBus, gen: str, deltas: int) -> None:
    for i in range(deltas):
        await bus.publish(ev(gen, i))
    await bus.publish(ev(gen, deltas, kind="chat.completed"))


async def test_the_oldest_finished_logs_go_past_the_size_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bus_module, "MAX_LOG_EVENTS", 25)
    bus = InProcessBus()
    await bus.publish(ev("running", 0))  # unfinished: never dropped
    for n in range(6):
        await answer(bus, f"g{n}", 4)  # 5 events each
    assert await bus.replay("g0") == []
    assert [e["index"] for e in await bus.replay("g5")] == [0, 1, 2, 3, 4]
    kept = [n for n in range(6) if await bus.replay(f"g{n}")]
    assert kept == [1, 2, 3, 4, 5]  # 25 events
    assert len(await bus.replay("running")) == 1


async def test_finished_logs_expire_after_the_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    bus = InProcessBus()
    await answer(bus, "old", 3)
    monkeypatch.setattr(bus_module, "LOG_TTL_S", -1)  # everything finished is now past it
    await answer(bus, "new", 3)
    assert await bus.replay("old") == [] and await bus.replay("new") == []
