"""Cortex internals: cancellation, and the whole flow on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from mongars.auth.repository import UserRepository
from mongars.conversation.models import Turn
from mongars.conversation.service import ChatService, TurnDelta
from tests.conftest import Api
from tests.fakes import ScriptedLLM


def test_client_leaving_mid_answer_keeps_partial_marked_cancelled(
    api_factory: Callable[..., Api],
) -> None:
    llm = ScriptedLLM(replies=["one two three four five six seven eight"])
    api = api_factory(provider=llm)
    api.setup_admin()

    async def scenario() -> list[Turn]:
        runtime = api.runtime
        async with runtime.sessions() as s:
            user = await UserRepository(s).by_username("admin")
        service = ChatService(runtime)
        turn = await service.prepare(user, "count for me", "t1")
        events = service.run(turn)
        seen = [await anext(events), await anext(events)]
        assert all(isinstance(e, TurnDelta) for e in seen)
        await events.aclose()  # what the server does when the client disconnects
        async with runtime.sessions() as s:
            return list((await s.execute(select(Turn))).scalars())

    turns = api.client.portal.call(scenario)  # type: ignore[union-attr]
    assert llm.closed_early  # generation was stopped, not left running
    assert len(turns) == 1
    assert turns[0].status == "cancelled"
    assert turns[0].response == "one two"
    assert turns[0].query == "count for me"


@pytest.mark.postgres
def test_accounts_chat_and_history_on_postgres(
    api_factory: Callable[..., Api], pg_database: str
) -> None:
    api = api_factory(database_url=pg_database)
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    r = api.client.post(
        "/api/v1/conversation/chat",
        json={"message": "héllo <b>&</b> 🙂", "session_id": "s1"},
        headers=bob,
    )
    assert r.status_code == 200, r.text
    history = api.client.get("/api/v1/conversation/history?user_id=bob", headers=bob).json()
    assert [h["query"] for h in history] == ["héllo <b>&</b> 🙂"]
    assert (
        api.client.get("/api/v1/conversation/history?user_id=bob", headers=admin).status_code == 403
    )
    again = api.client.post(
        "/api/v1/conversation/chat", json={"message": "x", "session_id": "s1"}, headers=admin
    )
    assert again.status_code == 404


def test_skipped_contributors_do_not_shape_the_turn(api_factory: Callable[..., Api]) -> None:
    api = api_factory()
    api.setup_admin()

    async def scenario() -> tuple[list[str], dict[str, object], dict[str, object]]:
        runtime = api.runtime
        async with runtime.sessions() as s:
            user = await UserRepository(s).by_username("admin")
        service = ChatService(runtime)
        names = [c.name for c in runtime.contributors]
        with_all = await service.prepare(user, "hello there", None)
        without = await service.prepare(user, "hello there", None, skip=frozenset(names))
        return names, with_all.plan.steering, without.plan.steering  # type: ignore[union-attr]

    names, steered, plain = api.client.portal.call(scenario)  # type: ignore[union-attr]
    assert "persona" in names
    assert "persona" in steered
    assert plain == {}
