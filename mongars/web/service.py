"""Console logic that is not HTTP: the data behind the chat page, and whole turns
for the no-JavaScript form path (start a generation, wait for its end)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.auth.models import User
from mongars.conversation.schemas import ChatRequest
from mongars.db.base import utcnow
from mongars.errors import (
    GenerationCancelled,
    InvalidInput,
    NotFound,
    ProviderError,
    error_for_code,
)
from mongars.runtime import Runtime
from mongars.threads.schemas import MessageOut, ThreadHit, ThreadOut
from mongars.threads.service import ThreadService

SIDEBAR_THREADS = 50
PAGE_SIZE = 100
MAX_MESSAGES = 1000


@dataclass
class ChatPage:
    threads: list[ThreadOut] | list[ThreadHit]
    thread: ThreadOut | None = None
    messages: list[MessageOut] = field(default_factory=list)
    query: str = ""


async def chat_page(
    session: AsyncSession, user: User, thread_id: str | None, q: str, running: set[str]
) -> ChatPage:
    """The sidebar (threads, or search hits for ``q``) and the open thread's messages.

    ``running``: threads with an answer in progress. A new thread is stored with its
    first answer, so until then it exists only there (a reload mid-answer shows it).
    """
    threads = ThreadService(session)
    query = q.strip()
    sidebar: list[ThreadOut] | list[ThreadHit]
    if query:
        sidebar = (await threads.search(user, query, SIDEBAR_THREADS, None)).items
    else:
        sidebar = (await threads.list_threads(user, SIDEBAR_THREADS, None)).items
    page = ChatPage(threads=sidebar, query=query)
    if thread_id is not None and thread_id in running:
        try:
            page.thread = await threads.get(user, thread_id)
        except NotFound:
            now = utcnow()
            page.thread = ThreadOut(
                id=thread_id, title="", created_at=now, updated_at=now, message_count=0
            )
            return page
    elif thread_id is not None:
        page.thread = await threads.get(user, thread_id)  # 404 for another user's thread
        cursor: str | None = None
        while len(page.messages) < MAX_MESSAGES:
            batch = await threads.messages(user, thread_id, PAGE_SIZE, cursor)
            page.messages.extend(batch.items)
            cursor = batch.next_cursor
            if cursor is None:
                break
    return page


def check_message(message: str, thread_id: str | None) -> None:
    """The same rules as the chat API (blank, NUL, thread id format) as a domain error."""
    try:
        ChatRequest(message=message, session_id=thread_id or None)
    except ValidationError as exc:
        problems = "; ".join(str(e.get("msg", "invalid")) for e in exc.errors())
        raise InvalidInput(problems.removeprefix("Value error, ")) from exc


async def run_turn(runtime: Runtime, user: User, message: str | None, thread_id: str | None) -> str:
    """Answer (or, with ``message`` None, regenerate) and wait until the answer is stored.

    Returns the thread id. Failures raise the same domain errors as the chat API.
    """
    if message is None:
        if thread_id is None:
            raise InvalidInput("regenerate needs a thread")
        started = await runtime.hub.start(user, None, thread_id, regenerate=True)
    else:
        check_message(message, thread_id)
        started = await runtime.hub.start(user, message, thread_id or None)
    async for event in runtime.hub.watch(user.id, started.generation_id):
        if event["type"] == "chat.completed":
            return started.thread_id
        if event["type"] == "chat.error":
            raise error_for_code(event["code"], event["detail"])
        if event["type"] == "chat.cancelled":
            raise GenerationCancelled("the answer was cancelled before it finished")
    raise ProviderError("the generation ended without an answer")
