"""How memory shapes a turn: recall into the prompt before, remember after."""

from __future__ import annotations

from mongars.conversation.plan import StoredTurn, TurnContributor, TurnPlan
from mongars.llm.base import ChatMessage, LLMProvider
from mongars.memory.service import MemoryService, NewMemory, turn_text

HEADER = "Things you remember from earlier conversations with this user (use them if relevant):"


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
        used = (await self.llm.message_tokens([ChatMessage("system", HEADER)]))[0]
        for hit in hits:
            line = f"- [{hit.created_at.date().isoformat()}] {hit.text}"
            cost = (await self.llm.message_tokens([ChatMessage("system", line)]))[0]
            if used + cost > budget:
                continue
            lines.append(line)
            plan.memory_ids.append(hit.id)
            used += cost
        if lines:
            plan.context_parts.append("\n".join([HEADER, *lines]))
            plan.steering["memory"] = {"recalled": len(lines), "tokens": used, "budget": budget}

    async def after_turn(self, plan: TurnPlan, turn: StoredTurn) -> None:
        # Stored now, embedded by the indexer off the response path; a crash in
        # between is repaired at start-up (turns without a memory are found).
        await self.memory.add(
            turn.user_id,
            [
                NewMemory(
                    turn_text(turn.query, turn.response),
                    kind="turn",
                    thread_id=turn.thread_id,
                    turn_id=turn.id,
                    extract_facts=self.facts,
                )
            ],
            embed=False,
        )
