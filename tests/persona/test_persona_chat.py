"""Scripted users through POST /chat: their profiles steer the prompt and the budgets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mongars.conversation.models import Turn
from tests.conftest import Api
from tests.fakes import ScriptedLLM

LONG_REPLY = " ".join(f"word{i}" for i in range(120))
USERS: dict[str, list[str]] = {
    "terse": ["Capital of France?", "Largest ocean?", "Speed of light?"],
    "verbose": [
        "I have been reading about the history of the Roman Empire for a few weeks now and I "
        "would love a thorough explanation of why the western half declined while the eastern "
        "half survived for almost another thousand years, with the main causes explained.",
        "Could you also walk me through how historians today weigh economic factors against "
        "military pressure and political instability when they explain that decline, and "
        "which primary sources they lean on most heavily for those arguments?",
        "Finally, I am curious how the story is usually taught in schools compared with how "
        "specialists discuss it, because I suspect the popular version leaves out a great "
        "deal of nuance that would be interesting to understand properly.",
    ],
    "formal": [
        "Good morning. Could you kindly explain how vaccines train the immune system?",
        "Thank you. Would you please clarify the role of memory cells, if I may ask?",
        "I would appreciate your assistance regarding booster doses. Thank you.",
    ],
    "casual": [
        "hey whats up lol",
        "yeah ok so how do vaccines even work",
        "lol cool thx 😂",
    ],
    "french": [
        "Bonjour, je voudrais savoir comment fonctionne la photosynthèse dans les plantes.",
        "Merci ! Et pourquoi les feuilles sont-elles vertes en été ?",
        "Est-ce que les plantes respirent aussi pendant la nuit ?",
    ],
    "english": [
        "Hello, I would like to know how photosynthesis works in plants.",
        "Thanks! And why are the leaves green in the summer?",
        "Do plants also breathe during the night?",
    ],
}


def chat(api: Api, headers: dict[str, str], message: str) -> dict[str, Any]:
    r = api.client.post("/api/v1/conversation/chat", json={"message": message}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def stored_turn(api: Api, turn_id: int) -> Turn:
    async def load() -> Turn:
        async with api.runtime.sessions() as s:
            return (await s.execute(select(Turn).where(Turn.id == turn_id))).scalar_one()

    return api.client.portal.call(load)  # type: ignore[union-attr, no-any-return]


def run_user(api: Api, admin: dict[str, str], name: str) -> tuple[str, Turn]:
    """The user's scripted messages, then one probe: (system prompt sent, stored turn)."""
    headers = api.create_user(admin, name)
    for message in USERS[name]:
        chat(api, headers, message)
    body = chat(api, headers, "Tell me more.")
    llm: ScriptedLLM = api.runtime.llm
    system = llm.calls[-1][0]
    assert system.role == "system"
    return system.content, stored_turn(api, body["turn_id"])


def directive_texts(turn: Turn) -> list[str]:
    return [d["text"] for d in turn.steering["persona"]["directives"]]


def test_scripted_users_get_different_directives_and_budgets(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(provider=ScriptedLLM([LONG_REPLY]))
    admin = api.setup_admin()
    results = {name: run_user(api, admin, name) for name in USERS}

    terse_system, terse = results["terse"]
    assert "Keep answers short: one or two sentences." in terse_system
    assert terse.completion_tokens == 64  # the terse budget, not the default 256
    budget = terse.steering["persona"]["budgets"]["max_tokens"]
    assert budget["value"] == 64 and budget["base"] == 256
    assert budget["from"]["source"] == "inferred" and budget["from"]["observations"] == 3

    verbose_system, verbose = results["verbose"]
    assert "Give detailed answers" in verbose_system
    assert "Keep answers short" not in verbose_system
    assert verbose.completion_tokens == 120  # the whole scripted reply
    assert "max_tokens" not in verbose.steering["persona"]["budgets"]

    assert "Use a formal register." in directive_texts(results["formal"][1])
    assert "Use a casual, relaxed register." in directive_texts(results["casual"][1])
    assert "Use a formal register." not in directive_texts(results["casual"][1])

    french_system, french = results["french"]
    assert "Answer in French." in french_system
    (lang,) = [d for d in french.steering["persona"]["directives"] if d["text"].startswith("Ans")]
    assert lang["from"]["source"] == "inferred" and lang["from"]["value"] == "fr"
    assert lang["from"]["observations"] == 3 and lang["from"]["measured"] == 1.0
    assert "Answer in English." in results["english"][0]
    # directives never reach the answer itself
    assert all(t.response == LONG_REPLY[: len(t.response)] for _, t in results.values())


def test_explicit_preference_beats_inferred_at_once(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(provider=ScriptedLLM([LONG_REPLY]))
    admin = api.setup_admin()
    headers = api.create_user(admin, "francois")
    for message in USERS["french"] + USERS["terse"]:
        chat(api, headers, message)
    before = stored_turn(api, chat(api, headers, "Et alors ?")["turn_id"])
    assert "Answer in French." in directive_texts(before)
    r = api.client.put(
        "/api/v1/profile", json={"language": "en", "verbosity": "detailed"}, headers=headers
    )
    assert r.status_code == 200
    after = stored_turn(api, chat(api, headers, "Et alors ?")["turn_id"])  # cache invalidated
    texts = directive_texts(after)
    assert "Answer in English." in texts and "Answer in French." not in texts
    sources = {
        d["from"]["field"]: d["from"]["source"] for d in after.steering["persona"]["directives"]
    }
    assert sources["language"] == "explicit" and sources["verbosity"] == "explicit"
    assert after.completion_tokens == 120


def test_persona_instructions_reach_the_system_prompt(api: Api) -> None:
    headers = api.setup_admin()
    api.client.put(
        "/api/v1/profile", json={"persona": "You are Ada, a patient tutor."}, headers=headers
    )
    body = chat(api, headers, "hello")
    system = api.runtime.llm.calls[-1][0].content
    assert "You are Ada, a patient tutor." in system
    assert body["response"] == "Hello there. How can I help?"  # nothing added to the answer
    assert stored_turn(api, body["turn_id"]).steering["persona"]["instructions"]["chars"] == 29


def test_regenerating_does_not_count_the_message_twice(api: Api) -> None:
    from mongars.auth.models import User

    headers = api.setup_admin()
    chat(api, headers, "first")
    body = chat(api, headers, "second one here")

    def observed() -> int:
        profile = api.client.get("/api/v1/profile", headers=headers).json()
        return int(profile["inferred"]["messages_observed"])

    assert observed() == 2

    async def regenerate() -> str:
        async with api.runtime.sessions() as s:
            user = (await s.execute(select(User))).scalars().one()
        hub = api.runtime.hub
        started = await hub.start(user, None, body["session_id"], regenerate=True)
        async for event in hub.watch(user.id, started.generation_id):
            if event["type"] in ("chat.completed", "chat.error"):
                return str(event["type"])
        return "none"

    assert api.client.portal.call(regenerate) == "chat.completed"  # type: ignore[union-attr]
    assert observed() == 2
    chat(api, headers, "second one here")  # sent again as a new message: counted
    assert observed() == 3
