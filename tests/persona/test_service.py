"""Two processes' worth of persona services on one database: no lost observations."""

from __future__ import annotations

import asyncio

import pytest

from mongars.persona.service import PersonaService, ProfileCache
from mongars.persona.steering import ProfileData
from tests.conftest import Api


def test_observations_from_two_processes_are_all_counted(api: Api) -> None:
    api.setup_admin()
    runtime = api.runtime
    a = PersonaService(runtime.sessions, runtime.settings)
    b = PersonaService(runtime.sessions, runtime.settings)

    async def scenario() -> tuple[int, int, int]:
        await a.observe(1, "t", "one")  # a caches the profile
        await a.load(1)
        await b.observe(1, "t", "two two")  # b moves the row on: a's cache is now stale
        await b.observe(1, "t", "three three three")
        data = await a.observe(1, "t", "four four four four")  # conditional UPDATE fails
        fresh = PersonaService(runtime.sessions, runtime.settings)
        stored = await fresh.load(1)
        wpm = stored.style.metric("words_per_message")
        assert wpm is not None
        return data.style.messages, stored.style.messages, wpm.observations

    assert api.client.portal.call(scenario) == (4, 4, 4)  # type: ignore[union-attr]


def test_concurrent_first_observations_create_one_profile(api: Api) -> None:
    api.setup_admin()
    runtime = api.runtime
    services = [PersonaService(runtime.sessions, runtime.settings) for _ in range(4)]

    async def scenario() -> int:
        await asyncio.gather(
            *(s.observe(1, f"t{i}", "hello there") for i, s in enumerate(services))
        )
        return (await PersonaService(runtime.sessions, runtime.settings).load(1)).style.messages

    assert api.client.portal.call(scenario) == 4  # type: ignore[union-attr]


def test_cache_expires_and_ignores_loads_that_raced_an_invalidation() -> None:
    cache = ProfileCache(ttl=60)
    epoch = cache.epoch
    cache.invalidate(7)  # e.g. a PUT committed while the load was reading
    cache.put(ProfileData(7), epoch)
    assert cache.get(7) is None
    cache.put(ProfileData(7), cache.epoch)
    assert cache.get(7) == ProfileData(7)
    cache.put(ProfileData(8), cache.epoch, keep_expiry=True)  # no entry to keep: not cached
    assert cache.get(8) is None
    off = ProfileCache(ttl=0)
    off.put(ProfileData(7), off.epoch)
    assert off.get(7) is None
    small = ProfileCache(ttl=60, max_entries=2)
    for user_id in (1, 2, 3):
        small.put(ProfileData(user_id), small.epoch)
    assert small.get(1) is None and small.get(3) is not None


@pytest.mark.postgres
def test_profiles_on_postgres(api_factory, pg_database: str) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(database_url=pg_database)
    headers = api.setup_admin()
    runtime = api.runtime
    services = [PersonaService(runtime.sessions, runtime.settings) for _ in range(4)]

    async def scenario() -> int:
        await asyncio.gather(
            *(s.observe(1, f"t{i}", "hello there") for i, s in enumerate(services))
        )
        await asyncio.gather(*(s.observe(1, f"u{i}", "and again") for i, s in enumerate(services)))
        return (await PersonaService(runtime.sessions, runtime.settings).load(1)).style.messages

    assert api.client.portal.call(scenario) == 8  # type: ignore[union-attr]
    r = api.client.put("/api/v1/profile", json={"tone": "formal"}, headers=headers)
    assert r.status_code == 200
    body = api.client.get("/api/v1/profile", headers=headers).json()
    assert body["explicit"]["tone"] == "formal"
    assert body["inferred"]["words_per_message"] == {"value": 2.0, "observations": 8}
    assert api.client.delete("/api/v1/profile", headers=headers).status_code == 204
