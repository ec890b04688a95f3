"""Cortex: the turn pipeline.

One turn: check the message, load the thread's recent turns, assemble the
prompt within the context window, stream from the model, then persist the turn
and record metrics. No database transaction is held while the model generates:
loading and persisting are two short units of work.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from mongars.auth.models import User
from mongars.conversation.context import AssembledPrompt, PastTurn, assemble_prompt
from mongars.conversation.hygiene import ScaffoldingGuard
from mongars.conversation.models import Turn
from mongars.conversation.plan import StoredTurn, TurnPlan
from mongars.conversation.repository import ConversationRepository
from mongars.conversation.schemas import ChatResponse, HistoryItem, Usage
from mongars.conversation.speech import build_speech_turn
from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.errors import (
    DomainError,
    EmptyOutput,
    FeatureDisabled,
    Forbidden,
    MessageTooLong,
    NotFound,
    ProviderError,
)
from mongars.feedback.service import feedback_briefs
from mongars.llm.base import Delta, Finish, GenerationParams, StreamItem, mean_probability
from mongars.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TurnDelta:
    text: str


@dataclass(frozen=True, slots=True)
class TurnDone:
    result: ChatResponse


@dataclass
class PreparedTurn:
    user_id: int
    username: str
    thread_id: str
    message: str
    prompt: AssembledPrompt
    started: float
    stages: dict[str, float] = field(default_factory=dict)
    generation_id: str | None = None  # set by the generation hub; makes the store idempotent
    adapter_version: int | None = None  # the adapter version that answers (None: base)
    answered_by: str | None = None  # the paired node that answered (None: this node)
    supersedes: int | None = None  # the turn a regenerated answer replaces
    thread_existed: bool = False  # if it then disappears, the user deleted it: do not revive it
    plan: TurnPlan | None = None


class ChatService:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.llm = runtime.llm

    async def prepare(
        self,
        user: User,
        message: str,
        session_id: str | None,
        *,
        history: Sequence[PastTurn] | None = None,
        system_extra: str = "",
        image: bytes | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> PreparedTurn:
        """Everything before generation; raises a domain error (4xx) on bad input.

        ``history`` (oldest first) replaces the thread's stored turns in the
        prompt, for clients that send the conversation themselves (the
        OpenAI-compatible API); ``system_extra`` is appended to the system prompt.
        """
        started = time.perf_counter()
        limit = self.settings.chat.max_message_chars
        if len(message) > limit:
            raise MessageTooLong(
                f"message is {len(message)} characters; the limit is {limit} characters"
            )
        thread_id = session_id or uuid.uuid4().hex
        async with unit_of_work(self.runtime.sessions) as session:
            repo = ConversationRepository(session)
            thread = await repo.thread(thread_id)
            if thread is not None and thread.user_id != user.id:
                raise NotFound(f"no conversation {thread_id!r} for this user")
            if history is None:
                turns = await repo.recent_turns(thread_id, self.settings.chat.history_turns)
                past = [PastTurn(t.query, t.response, t.id) for t in turns if t.response]
            else:
                past = list(reversed(history))
        turn = await self._assemble(
            user, thread_id, message, past, started, system_extra, image, skip
        )
        turn.thread_existed = thread is not None
        return turn

    async def prepare_regenerate(self, user: User, thread_id: str) -> PreparedTurn:
        """Answer the thread's last message again; the new answer supersedes the old."""
        started = time.perf_counter()
        async with unit_of_work(self.runtime.sessions) as session:
            repo = ConversationRepository(session)
            thread = await repo.thread(thread_id)
            if thread is None or thread.user_id != user.id:
                raise NotFound(f"no conversation {thread_id!r} for this user")
            turns = await repo.recent_turns(thread_id, self.settings.chat.history_turns + 1)
        if not turns:
            raise NotFound(f"conversation {thread_id!r} has no message to regenerate")
        last, earlier = turns[0], turns[1:]
        past = [PastTurn(t.query, t.response, t.id) for t in earlier if t.response]
        turn = await self._assemble(user, thread_id, last.query, past, started)
        turn.supersedes = last.id
        turn.thread_existed = True
        return turn

    async def _assemble(
        self,
        user: User,
        thread_id: str,
        message: str,
        past_newest_first: Sequence[PastTurn],
        started: float,
        system_extra: str = "",
        image: bytes | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> PreparedTurn:
        loaded = time.perf_counter()
        llm = self.settings.llm
        plan = TurnPlan(
            user=user,
            thread_id=thread_id,
            message=message,
            history=past_newest_first,
            max_tokens=llm.max_tokens,
            temperature=llm.temperature,
            top_p=llm.top_p,
            image=image,
            skip=skip,
        )
        if system_extra.strip():
            plan.system_parts.append(system_extra.strip())
        for contributor in self.runtime.contributors:
            if contributor.name not in plan.skip:
                await contributor.contribute(plan)
        if image is not None and plan.image_caption is None:
            raise FeatureDisabled(
                "image input is not enabled on this server (set MONGARS_CAPTION_MODEL)"
            )
        contributed = time.perf_counter()
        system = "\n\n".join([llm.system_prompt, *plan.system_parts, *plan.context_parts])
        prompt = await assemble_prompt(self.llm, system, plan.history, message, plan.max_tokens)
        assembled = time.perf_counter()
        stages = {"load_ms": _ms(loaded - started), "assemble_ms": _ms(assembled - contributed)}
        if self.runtime.contributors:
            stages["contributors_ms"] = _ms(contributed - loaded)
        return PreparedTurn(
            user_id=user.id,
            username=user.username,
            thread_id=thread_id,
            message=message,
            prompt=prompt,
            started=started,
            stages=stages,
            plan=plan,
        )

    async def run(self, turn: PreparedTurn) -> AsyncGenerator[TurnDelta | TurnDone, None]:
        """Stream the answer, then persist it. Provider errors propagate; nothing is stored."""
        plan = turn.plan
        llm = self.settings.llm
        params = GenerationParams(
            max_tokens=plan.max_tokens if plan else llm.max_tokens,
            temperature=plan.temperature if plan else llm.temperature,
            top_p=plan.top_p if plan else llm.top_p,
            seed=llm.seed,
            repeat_penalty=llm.repeat_penalty,
        )
        if self.runtime.adapters is not None:  # the active version, or the canary's share
            choice = await self.runtime.adapters.choose(turn.generation_id or uuid.uuid4().hex)
            if choice is not None:
                params = replace(params, adapter=choice.sha256)
                turn.adapter_version = choice.version
        parts: list[str] = []
        logprobs: list[float] = []
        finish: Finish | None = None
        first_token: float | None = None
        guard = ScaffoldingGuard()  # what may end an answer (hygiene.py)
        gen_start = time.perf_counter()
        self.runtime.generation_started()  # a training worker waits meanwhile
        try:
            source = await self._source(turn, params)
            async with aclosing(source) as stream:
                async for item in stream:
                    if isinstance(item, Finish):
                        finish = item
                        continue
                    logprobs.extend(item.logprobs)
                    safe = guard.feed(item.text)
                    if safe:
                        if first_token is None:
                            first_token = time.perf_counter()
                        parts.append(safe)
                        yield TurnDelta(safe)
                    if guard.cut is not None:  # closing the stream stops the model
                        finish = Finish(0, len(logprobs), "stop")
                        break
            tail = guard.finish()
            if tail:
                parts.append(tail)
                yield TurnDelta(tail)
        except DomainError:  # a provider failure is an error, never a stored answer
            self.runtime.metrics.turns.add(1, {"status": "failed"})
            raise
        except BaseException:  # the client went away: keep the part it saw, marked
            if parts and finish is None:
                with anyio.CancelScope(shield=True):
                    await self._persist(
                        turn,
                        "".join(parts),
                        None,
                        logprobs,
                        gen_start,
                        first_token,
                        status="cancelled",
                    )
            raise
        finally:
            self.runtime.generation_ended()
        if guard.cut is not None:
            self.runtime.metrics.scaffolding_cuts.add(1, {"kind": guard.cut.kind})
            if turn.plan is not None:
                turn.plan.steering["hygiene"] = {"cut": guard.cut.kind, "at": guard.cut.at}
        text = "".join(parts)
        if not text.strip():
            self.runtime.metrics.turns.add(1, {"status": "empty"})
            raise EmptyOutput("the model returned an empty answer; nothing was stored")
        if finish is None:
            raise ProviderError("the model stream ended without finishing")
        result = await self._persist(turn, text, finish, logprobs, gen_start, first_token)
        await self._after_turn(turn, result)
        yield TurnDone(result)

    async def _source(
        self, turn: PreparedTurn, params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        """This node's model, or, when it is busy and a paired peer takes chat work, that
        peer (docs/peers.md). A peer that fails before its first token is replaced by
        this node's model; one that fails later fails the turn (nothing is stored)."""
        mesh = self.runtime.peers
        peer = None
        if mesh is not None and mesh.delegator is not None:
            try:  # this node's load without this turn (already counted as generating)
                peer = await mesh.delegator.pick("chat", local=self.runtime.generating - 1)
            except Exception:  # choosing a peer never costs the turn: answer here
                log.exception("choosing a peer for a delegated turn failed")
        if peer is None or mesh is None or mesh.delegator is None:
            return self.llm.stream(turn.prompt.messages, params)
        return self._delegated(turn, params, peer)

    async def _delegated(
        self, turn: PreparedTurn, params: GenerationParams, peer: Any
    ) -> AsyncGenerator[StreamItem, None]:
        from mongars.peers.transport import PeerUnreachable
        from mongars.peers.work import WorkRefused

        mesh = self.runtime.peers
        assert mesh is not None and mesh.delegator is not None
        started, parts = False, []
        remote_params = replace(params, adapter=None)  # the peer answers with its own
        try:
            async with aclosing(
                mesh.delegator.remote_chat(peer, turn.prompt.messages, remote_params)
            ) as remote:
                async for item in remote:
                    if not started:
                        started = True
                        turn.adapter_version = None
                        turn.answered_by = peer.node_id
                    if isinstance(item, Delta):
                        parts.append(item.text)
                    yield item
        except (PeerUnreachable, WorkRefused) as exc:
            if started:
                raise ProviderError(f"the peer that answered failed: {exc}") from exc
            log.info("delegation to %s failed before its first token: %s", peer.node_id, exc)
            async with aclosing(self.llm.stream(turn.prompt.messages, params)) as local:
                async for item in local:
                    yield item
            return
        mesh.delegator.spot_check_chat(
            peer, turn.prompt.messages, remote_params, "".join(parts), self.llm
        )

    async def _persist(
        self,
        turn: PreparedTurn,
        text: str,
        finish: Finish | None,
        logprobs: list[float],
        gen_start: float,
        first_token: float | None,
        status: str = "completed",
    ) -> ChatResponse:
        gen_end = time.perf_counter()
        prompt_tokens = (finish.prompt_tokens if finish else 0) or turn.prompt.prompt_tokens
        completion_tokens = (finish.completion_tokens if finish else 0) or len(logprobs)
        confidence = mean_probability(logprobs)
        ttft_ms = _ms(first_token - gen_start) if first_token else None
        stages = {**turn.stages, "generate_ms": _ms(gen_end - gen_start)}
        if ttft_ms is not None:
            stages["ttft_ms"] = ttft_ms
        created = utcnow()
        async with unit_of_work(self.runtime.sessions) as session:
            repo = ConversationRepository(session)
            if turn.thread_existed and await repo.thread(turn.thread_id) is None:
                raise NotFound("the conversation was deleted while the answer was generated")
            thread = await repo.ensure_thread(turn.thread_id, turn.user_id, _title(turn.message))
            if thread.user_id != turn.user_id:  # created by someone else meanwhile
                raise Forbidden("this conversation belongs to another user")
            if turn.supersedes is not None:
                await repo.supersede(turn.supersedes, turn.user_id)
            row = await repo.add_turn(
                Turn(
                    thread_id=turn.thread_id,
                    user_id=turn.user_id,
                    query=turn.message,
                    response=text,
                    status=status,
                    model=self.llm.model_id,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    confidence=confidence,
                    ttft_ms=ttft_ms,
                    latency_ms=0.0,
                    stage_ms=dict(stages),
                    generation_id=turn.generation_id,
                    steering=dict(turn.plan.steering) if turn.plan else {},
                    memory_ids=list(turn.plan.memory_ids) if turn.plan else [],
                    citations=list(turn.plan.citations) if turn.plan else [],
                    image_caption=turn.plan.image_caption if turn.plan else None,
                    adapter_version=turn.adapter_version,
                    answered_by=turn.answered_by,
                    created_at=created,
                ),
                thread,
            )
            stages["persist_ms"] = _ms(time.perf_counter() - gen_end)
            row.stage_ms = dict(stages)
            row.latency_ms = _ms(time.perf_counter() - turn.started)
            turn_id, latency_ms = row.id, row.latency_ms
        self._record(prompt_tokens, completion_tokens, first_token, gen_start, gen_end, status)
        return ChatResponse(
            response=text,
            confidence=confidence,
            processing_time=round(latency_ms / 1000, 4),
            speech_turn=build_speech_turn(
                str(turn_id), text, created, self.settings.chat.syllables_per_second
            ),
            session_id=turn.thread_id,
            turn_id=turn_id,
            model=self.llm.model_id,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens),
            finish_reason=finish.finish_reason if finish else "cancelled",
            memory_ids=list(turn.plan.memory_ids) if turn.plan else [],
            citations=list(turn.plan.citations) if turn.plan else [],
            adapter_version=turn.adapter_version,
            answered_by=turn.answered_by,
        )

    async def _after_turn(self, turn: PreparedTurn, result: ChatResponse) -> None:
        if turn.plan is None:
            return
        stored = StoredTurn(
            id=result.turn_id,
            user_id=turn.user_id,
            thread_id=turn.thread_id,
            query=turn.message,
            response=result.response,
            status="completed",
        )
        for contributor in self.runtime.contributors:
            if contributor.name in turn.plan.skip:
                continue
            try:
                await contributor.after_turn(turn.plan, stored)
            except Exception:  # an observer's failure must not lose the answer
                log.exception("contributor %s failed after turn %s", contributor.name, stored.id)

    def _record(
        self,
        prompt: int,
        completion: int,
        first: float | None,
        start: float,
        end: float,
        status: str,
    ) -> None:
        m = self.runtime.metrics
        attrs = {"model": self.llm.model_id, "provider": self.llm.name}
        m.prompt_tokens.add(prompt, attrs)
        m.completion_tokens.add(completion, attrs)
        m.turns.add(1, {"status": status})
        if first is not None:
            m.ttft.record(first - start, attrs)
            if completion > 1 and end > first:
                m.tokens_per_second.record((completion - 1) / (end - first), attrs)

    async def history(self, user: User, limit: int, session_id: str | None) -> list[HistoryItem]:
        async with unit_of_work(self.runtime.sessions) as session:
            turns = await ConversationRepository(session).history(user.id, limit, session_id)
            feedback = await feedback_briefs(session, user.id, [t.id for t in turns])
            return [
                HistoryItem(
                    user_id=user.username,
                    query=t.query,
                    response=t.response,
                    timestamp=t.created_at.isoformat(),
                    session_id=t.thread_id,
                    turn_id=t.id,
                    feedback=feedback.get(t.id),
                    adapter_version=t.adapter_version,
                )
                for t in turns
            ]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _title(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line[:80]
