"""The event bus, in-process and on a real Redis: ordering, replay, fan-out, isolation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mongars.realtime.bus import EventBus, InProcessBus, RedisBus


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    if request.param == "memory":
        bus: EventBus = InProcessBus()
    else:
        bus = RedisBus(request.getfixturevalue("redis_url"), prefix=f"t{id(request)}")
    await bus.start()
    yield bus
    await bus.close()


def ev(gen: str, index: int, kind: str = "chat.delta", user: int = 1) -> dict[str, object]:
    return {"type": kind, "generation_id": gen, "user_id": user, "index": index, "text": str(index)}


async def test_replay_returns_events_after_an_index(bus: EventBus) -> None:
    for i in range(5):
        await bus.publish(ev("g1", i))
    assert [e["index"] for e in await bus.replay("g1", 2)] == [3, 4]
    assert [e["index"] for e in await bus.replay("g1")] == [0, 1, 2, 3, 4]
    assert await bus.replay("unknown") == []


async def test_subscribers_get_only_their_users_events_in_order(bus: EventBus) -> None:
    async with bus.subscribe(1) as mine, bus.subscribe(2) as theirs:
        await asyncio.sleep(0.05)  # Redis: let the subscription settle
        for i in range(3):
            await bus.publish(ev("g", i, user=1))
        await bus.publish(ev("h", 0, user=2))
        got = [await asyncio.wait_for(anext(mine), 5) for _ in range(3)]
        assert [e["index"] for e in got] == [0, 1, 2]
        other = await asyncio.wait_for(anext(theirs), 5)
        assert other["generation_id"] == "h"


async def test_signals_reach_subscribers_without_being_logged(bus: EventBus) -> None:
    async with bus.subscribe(7) as live:
        await asyncio.sleep(0.05)
        await bus.signal(7, {"type": "control.cancel", "generation_id": "g", "user_id": 7})
        message = await asyncio.wait_for(anext(live), 5)
        assert message["type"] == "control.cancel"
    assert await bus.replay("g") == []


async def test_two_subscribers_of_one_user_both_receive(bus: EventBus) -> None:
    async with bus.subscribe(3) as a, bus.subscribe(3) as b:
        await asyncio.sleep(0.05)
        await bus.publish(ev("g", 0, user=3))
        assert (await asyncio.wait_for(anext(a), 5))["index"] == 0
        assert (await asyncio.wait_for(anext(b), 5))["index"] == 0


async def test_a_control_only_subscriber_hears_signals_and_no_events(bus: EventBus) -> None:
    """The cancel watcher of each generation is not woken by every streamed delta."""
    async with bus.subscribe(9, control_only=True) as control, bus.subscribe(9) as live:
        await asyncio.sleep(0.05)
        await bus.publish(ev("g", 0, user=9))
        await bus.signal(9, {"type": "control.cancel", "generation_id": "g", "user_id": 9})
        assert (await asyncio.wait_for(anext(control), 5))["type"] == "control.cancel"
        got = [await asyncio.wait_for(anext(live), 5) for _ in range(2)]
        assert [e["type"] for e in got] == ["chat.delta", "control.cancel"]
