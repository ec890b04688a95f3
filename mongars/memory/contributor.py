"""How memory shapes a turn: recall into the prompt before, remember after."""

from __future__ import annotations

from mongars.conversation.plan import StoredTurn, TurnContributor, TurnPlan
from mongars.llm.base import ChatMessage, LLMProvider
from mongars.memory.service import MemoryService, NewMemory, turn_text

HEADER = (
    "Earlier conversations with this user, for your reference only (not part of this "
    "conversation; use them if relevant, never repeat these lines):\n<memory>"
)
FOOTER = "</memory>"


def recalled_line(day: str, text: str) -> str:
    """One recalled memory as the prompt shows it: on one line, without the role
    labels the model would continue (``User: ...`` becomes ``the user said "..."``)."""
    if text.startswith("User: ") and "\nAssistant: " in text:
        query, _, answer = text.removeprefix("User: ").partition("\nAssistant: ")
        text = f'the user said "{query.strip()}"; you answered "{answer.strip()}"'
    return f"- {day}: {' '.join(text.split())}"


class MemoryContributor(TurnContributor):
    name = "memory"

    def __init__(
        self, memory: MemoryService, llm: LLMProvider, budget_tokens: int, facts: bool = False
    ) -> None:
        self.memory = memory
        self.llm = llm
        self.budget_tokens = budget_tokens
        self.facts = facts

    def _budget(self, plan: TurnPlan) -> int:
        # never more than a third of what the window leaves besides the answer
        return min(self.budget_tokens, (self.llm.context_window - plan.max_tokens) // 3)

    async def contribute(self, plan: TurnPlan) -> None:
        budget = self._budget(plan)
        if budget <= 0:
            return
        recent = [t.turn_id for t in plan.history if t.turn_id is not None]
        hits = await self.memory.search(plan.user.id, plan.message, k=60, exclude_turn_ids=recent)
        lines: list[str] = []
        used = sum(await self.llm.message_tokens([ChatMessage("system", f"{HEADER}\n{FOOTER}")]))
        for hit in hits:
            line = recalled_line(hit.created_at.date().isoformat(), hit.text)
            cost = (await self.llm.message_tokens([ChatMessage("system", line)]))[0]
            if used + cost > budget:
                continue
            lines.append(line)
            plan.memory_ids.append(hit.id)
            used += cost
        if lines:
            plan.context_parts.append("\n".join([HEADER, *lines, FOOTER]))
            plan.steering["memory"] = {"recalled": len(lines), "tokens": used, "budget": budget}

    async def after_turn(self, plan: TurnPlan, turn: StoredTurn) -> None:
        # Stored now, embedded by the indexer off the response path; a crash in
        # between is repaired at start-up (turns without a memory are found).
        await self.memory.add_turn(
            turn.user_id,
            NewMemory(
                turn_text(turn.query, turn.response),
                kind="turn",
                thread_id=turn.thread_id,
                turn_id=turn.id,
                extract_facts=self.facts,
            ),
        )
