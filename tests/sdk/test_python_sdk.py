"""The Python SDK (sdk/python) against a live `mongars serve` with the real embedded model."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from mongars_sdk import (
    AsyncClient,
    AuthenticationError,
    CancelledEvent,
    Client,
    DeltaEvent,
    DoneEvent,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SocketEvent,
)

from tests.sdk.conftest import Server

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def user(mongars_server: Server) -> Iterator[Client]:
    """The user, logged in once: logins are rate-limited per account and address."""
    with Client(mongars_server.base_url) as client:
        client.login(*mongars_server.user)
        yield client


@pytest.fixture(scope="module")
def admin(mongars_server: Server) -> Iterator[Client]:
    with Client(mongars_server.base_url) as client:
        client.login(*mongars_server.admin)
        yield client


def test_password_login_gives_a_token_the_client_uses(user: Client, mongars_server: Server) -> None:
    assert user.token
    me = user.me()
    assert me.username == mongars_server.user[0]
    assert me.is_admin is False


def test_a_wrong_password_raises_authentication_error(mongars_server: Server) -> None:
    with Client(mongars_server.base_url) as client, pytest.raises(AuthenticationError) as err:
        client.login("sdk-nobody", "wrong-password-123")
    assert err.value.status == 401
    assert err.value.code == "not_authenticated"
    assert client.token is None


def test_api_key_authenticates_the_openai_routes(user: Client, mongars_server: Server) -> None:
    created = user.keys.create(name="sdk test", use_memory=False)
    assert created.key.startswith("mg_")
    with Client(mongars_server.base_url, api_key=created.key) as keyed:
        models = keyed.openai.models()
        assert models.data
        completion = keyed.openai.chat_completion(
            model=models.data[0].id, messages=[{"role": "user", "content": "Say hi."}]
        )
        assert completion.choices[0].message.content
        user.keys.revoke(created.id)
        with pytest.raises(AuthenticationError):
            keyed.openai.models()


def test_sync_chat_then_history_threads_and_feedback(user: Client) -> None:
    answer = user.chat.send("What is the capital of France?")
    assert answer.response.strip()
    assert answer.turn_id > 0

    history = user.history.list(session_id=answer.session_id)
    assert [h.turn_id for h in history] == [answer.turn_id]
    assert history[0].query == "What is the capital of France?"
    assert history[0].feedback is None

    thread = user.threads.get(answer.session_id)
    assert thread.id == answer.session_id
    renamed = user.threads.rename(answer.session_id, "Geography")
    assert renamed.title == "Geography"
    page = user.threads.messages(answer.session_id)
    assert [msg.turn_id for msg in page.items] == [answer.turn_id]
    assert answer.session_id in [t.id for t in user.threads.list(limit=50).items]

    rated = user.feedback.set(answer.turn_id, rating="down", correction="Paris.")
    assert (rated.rating, rated.correction) == ("down", "Paris.")
    assert user.feedback.get(answer.turn_id).correction == "Paris."
    brief = user.history.list(session_id=answer.session_id)[0].feedback
    assert brief is not None and brief.rating == "down"
    with pytest.raises(InvalidInputError) as invalid:
        user.feedback.set(answer.turn_id)  # neither rating, correction nor comment
    assert (invalid.value.status, invalid.value.code) == (422, "invalid_input")
    user.feedback.delete(answer.turn_id)
    with pytest.raises(NotFoundError) as err:
        user.feedback.get(answer.turn_id)
    assert err.value.code == "not_found"


async def test_async_chat_and_thread(user: Client, mongars_server: Server) -> None:
    async with AsyncClient(mongars_server.base_url, token=user.token) as client:
        thread = await client.threads.create("async thread")
        answer = await client.chat.send("Hello!", session_id=thread.id)
        assert answer.response.strip()
        assert answer.session_id == thread.id
        messages = await client.threads.messages(thread.id)
        assert [m.turn_id for m in messages.items] == [answer.turn_id]
        await client.threads.delete(thread.id)
        with pytest.raises(NotFoundError):
            await client.threads.get(thread.id)


def test_sse_stream_yields_deltas_then_done(user: Client) -> None:
    events = list(user.chat.stream("Name a colour."))
    deltas = [e for e in events if isinstance(e, DeltaEvent)]
    done = events[-1]
    assert deltas
    assert isinstance(done, DoneEvent)
    assert done.turn_id > 0
    assert "".join(d.text for d in deltas) == done.response
    assert [e.index for e in events] == sorted({e.index for e in events})
    assert {e.generation_id for e in events} == {done.generation_id}


async def test_sse_resume_after_leaving_the_stream(user: Client, mongars_server: Server) -> None:
    async with AsyncClient(mongars_server.base_url, token=user.token) as client:
        stream = client.chat.stream("Count to five.")
        first = await anext(stream)
        await stream.aclose()  # the answer goes on without us
        assert isinstance(first, DeltaEvent)
        rest = [e async for e in client.chat.resume(first.generation_id, after=first.index)]
    done = rest[-1]
    assert isinstance(done, DoneEvent)
    assert all(e.index > first.index for e in rest)
    text = first.text + "".join(e.text for e in rest if isinstance(e, DeltaEvent))
    assert text == done.response


def test_websocket_chat(user: Client) -> None:
    with user.chat.websocket() as ws:
        assert ws.connected is not None and ws.connected.type == "ws.connected"
        events = list(ws.chat("Say hello."))
    kinds = [e.type for e in events]
    assert kinds[0] == "chat.started"
    assert "chat.delta" in kinds
    done = events[-1]
    assert done.type == "chat.completed"
    assert done.turn_id
    assert "".join(e.text or "" for e in events if e.type == "chat.delta") == done.text


async def test_websocket_resume_after_disconnect(user: Client, mongars_server: Server) -> None:
    async with AsyncClient(mongars_server.base_url, token=user.token) as client:
        seen: list[SocketEvent] = []
        async with (
            client.chat.websocket() as ws,
            contextlib.aclosing(ws.chat("Tell me about bread.")) as events,
        ):
            async for event in events:
                seen.append(event)
                if event.type == "chat.delta":
                    break  # the socket closes mid-answer
        generation_id = seen[-1].generation_id
        assert generation_id
        async with client.chat.websocket() as ws2:
            rest = [e async for e in ws2.resume(generation_id, seen[-1].index or 0)]
            # Everything applied: a resume ends at once; an unknown generation is 404.
            assert [e async for e in ws2.resume(generation_id, rest[-1].index or 0)] == []
            with pytest.raises(NotFoundError):
                [e async for e in ws2.resume("no-such-generation", 0)]
    done = rest[-1]
    assert done.type == "chat.completed"
    indexes = [e.index or 0 for e in seen + rest]
    assert indexes == list(range(len(indexes)))  # nothing lost, nothing twice
    text = "".join(e.text or "" for e in seen + rest if e.type == "chat.delta")
    assert text == done.text


def test_websocket_cancel(user: Client) -> None:
    with user.chat.websocket() as ws:
        events: list[SocketEvent] = []
        for event in ws.chat("Write a long poem about the sea."):
            events.append(event)
            if event.type == "chat.delta" and event.index == 1:  # after the first token
                assert event.generation_id
                ws.cancel(event.generation_id)
    cancelled = events[-1]
    assert cancelled.type == "chat.cancelled"
    assert cancelled.thread_id
    stored = user.threads.messages(cancelled.thread_id).items
    assert [(m.status, m.response) for m in stored] == [("cancelled", cancelled.text)]


def test_sse_cancel_over_http(user: Client) -> None:
    events: list[object] = []
    for event in user.chat.stream("Write a long story about a cat."):
        events.append(event)
        if len(events) == 1:
            user.chat.cancel(event.generation_id)
    assert isinstance(events[-1], CancelledEvent)


def test_memory_round_trip(user: Client) -> None:
    fact = f"My cat is called Zorglub-{uuid.uuid4().hex[:6]}."
    created = user.memory.add(fact)
    assert user.memory.get(created.id).text == fact
    edited = user.memory.edit(created.id, fact.replace("cat", "dog"))
    assert "dog" in edited.text
    assert created.id in [m.id for m in user.memory.list(limit=100).items]
    hits = user.memory.search("What is my dog called?", k=5)
    assert created.id in [h.id for h in hits.items]
    user.memory.forget(created.id)
    with pytest.raises(NotFoundError):
        user.memory.get(created.id)


def test_documents_upload_list_search_delete(user: Client) -> None:
    text = b"The Zorglub engine runs on purple steam and was invented in 1887.\n"
    ingested = user.documents.upload("zorglub.txt", text, content_type="text/plain")
    doc = ingested.document
    assert ingested.status == "created"
    assert doc.id in [d.id for d in user.documents.list().items]
    assert user.documents.get(doc.id).id == doc.id
    found = user.documents.search("What does the Zorglub engine run on?", k=3)
    assert any("purple steam" in hit.text for hit in found.passages)
    user.documents.delete(doc.id)
    with pytest.raises(NotFoundError):
        user.documents.get(doc.id)


def test_profile_round_trip(user: Client) -> None:
    updated = user.profile.update(tone="formal", allow_training=True)
    assert updated.explicit.tone == "formal"
    assert updated.allow_training is True
    again = user.profile.update(verbosity="terse")  # allow_training left as it was
    assert again.allow_training is True
    assert user.profile.get().explicit.verbosity == "terse"


def test_admin_routes_for_admin_and_user(admin: Client, user: Client) -> None:
    names = [u.username for u in admin.admin.users()]
    assert "sdk-user" in names
    assert admin.jobs.list().items
    assert admin.training.datasets().items is not None
    assert admin.adapters.active().active is None
    assert admin.admin.audit(limit=5).items is not None
    with pytest.raises(PermissionDeniedError) as err:
        user.admin.users()
    assert (err.value.status, err.value.code) == (403, "forbidden")
    with pytest.raises(PermissionDeniedError):
        user.jobs.list()


def test_unknown_thread_is_not_found(user: Client) -> None:
    with pytest.raises(NotFoundError) as err:
        user.threads.get("no-such-thread")
    assert err.value.status == 404
    assert err.value.code == "not_found"
    assert err.value.detail
