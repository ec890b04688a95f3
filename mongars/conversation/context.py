"""Prompt assembly within the model's real context window.

The system part and the new message are always included; past turns are added
newest first until the budget (context window minus room for the answer) is
spent. A message that cannot fit even alone is refused, never cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mongars.errors import ContextTooLarge
from mongars.llm.base import ChatMessage, LLMProvider


@dataclass(frozen=True, slots=True)
class PastTurn:
    query: str
    response: str
    turn_id: int | None = None


@dataclass(frozen=True, slots=True)
class AssembledPrompt:
    messages: list[ChatMessage]
    prompt_tokens: int
    history_turns_used: int


async def assemble_prompt(
    llm: LLMProvider,
    system: str,
    history_newest_first: Sequence[PastTurn],
    message: str,
    max_tokens: int,
) -> AssembledPrompt:
    budget = llm.context_window - max_tokens - await llm.prompt_overhead()
    fixed = [ChatMessage("system", system), ChatMessage("user", message)]
    system_cost, message_cost = await llm.message_tokens(fixed)
    if system_cost + message_cost > budget:
        limit = max(0, budget - system_cost)
        raise ContextTooLarge(
            f"message is {message_cost} tokens; the limit is {limit} tokens "
            f"(context window {llm.context_window}, minus the system prompt and "
            f"{max_tokens} tokens kept for the answer)"
        )
    used = system_cost + message_cost
    kept: list[ChatMessage] = []
    turns = 0
    for past in history_newest_first:
        pair = [ChatMessage("user", past.query), ChatMessage("assistant", past.response)]
        cost = sum(await llm.message_tokens(pair))
        if used + cost > budget:
            break
        kept[:0] = pair  # older turns go first
        used += cost
        turns += 1
    # The per-message costs are the provider's estimates; the rendered prompt is the
    # truth (a chat template may add text around the conversation): trim to it.
    messages = [fixed[0], *kept, fixed[1]]
    exact = await llm.prompt_tokens(messages)
    while exact > llm.context_window - max_tokens and turns > 0:
        messages = [messages[0], *messages[3:]]  # drop the oldest pair
        turns -= 1
        exact = await llm.prompt_tokens(messages)
    if exact > llm.context_window - max_tokens:
        raise ContextTooLarge(
            f"message is {message_cost} tokens; the limit is "
            f"{max(0, llm.context_window - max_tokens - (exact - message_cost))} tokens "
            f"(context window {llm.context_window}, minus the system prompt, the chat "
            f"format and {max_tokens} tokens kept for the answer)"
        )
    return AssembledPrompt(messages=messages, prompt_tokens=exact, history_turns_used=turns)
