"""Answer hygiene: scaffolding never reaches a stored or streamed answer, for any provider."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mongars.conversation.hygiene import ScaffoldingGuard
from tests.conftest import Api
from tests.fakes import ScriptedLLM

CHAT = "/api/v1/conversation/chat"


def guarded(chunks: list[str]) -> tuple[str, str, str | None]:
    guard = ScaffoldingGuard()
    streamed = "".join(guard.feed(c) for c in chunks) + guard.finish()
    return streamed, guard.answer(), guard.cut.kind if guard.cut else None


@pytest.mark.parametrize(
    ("chunks", "answer", "kind"),
    [
        (
            ["Paris is the", " capital.", "\nUser:", " and you?"],
            "Paris is the capital.",
            "role_label",
        ),
        (["Sure.\nUs", "er: hi"], "Sure.", "role_label"),
        (["Noted.\n- 2026-12-06: the user", " said"], "Noted.", "memory_line"),
        (["Noted.\n- [2026-12-06] User: I am allergic"], "Noted.", "memory_line"),
        (["Hi<|im_", "start|>user"], "Hi", "template_token"),
        (["Done.<end_of_turn>"], "Done.", "template_token"),
        (["See below.\n</memory>"], "See below.", "context_block"),
        (["Ok.\nSources (cite them as [n]"], "Ok.", "context_block"),
    ],
)
def test_scaffolding_is_cut_where_it_starts(chunks: list[str], answer: str, kind: str) -> None:
    streamed, stored, cut = guarded(chunks)
    assert (streamed, stored, cut) == (answer, answer, kind)


@pytest.mark.parametrize(
    "text",
    [
        "The user said no, so I stopped.",  # mid-line words are not labels
        "Usernames: admin\nUseful: yes\n2023-05-01 was a Monday.",
        "Use <b>bold</b> and a < b comparisons.",
        "Line one\n\nLine two",
    ],
)
def test_ordinary_answers_pass_whole(text: str) -> None:
    # fed a character at a time: held-back prefixes are released once they are clear
    streamed, stored, cut = guarded(list(text))
    assert (streamed, stored, cut) == (text, text, None)


# Pieces that build, break and almost build scaffolding, mixed with plain text.
PIECES = st.sampled_from(
    [
        "User",
        ":",
        "\n",
        " ",
        "\t",
        "-",
        "[",
        "2026-12-06",
        "]",
        "the user said",
        "<|",
        "im_end",
        "|>",
        "<end_of_turn>",
        "</s",
        ">",
        "Sources (cite them",
        "Hello",
        "é",
        "Us",
        "er",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=30), st.data())
def test_any_chunking_gives_what_the_whole_text_gives(
    pieces: list[str], data: st.DataObject
) -> None:
    """Streaming never changes the outcome: cut, stored and streamed text are those of
    the whole answer fed at once, wherever the chunks split it."""
    text = "".join(pieces)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=12)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    assert guarded(chunks) == guarded([text])


def test_each_token_costs_the_same_however_long_the_answer() -> None:
    """The guard searches the unreleased tail only (it rescanned the whole line, so a
    long answer without newlines cost quadratic time)."""
    import time

    def seconds(guard: ScaffoldingGuard) -> float:
        start = time.perf_counter()
        for i in range(1000):
            guard.feed(f" word{i}")
        return time.perf_counter() - start

    seconds(ScaffoldingGuard())  # warm the regex
    long = ScaffoldingGuard()
    for i in range(20_000):
        long.feed(f" word{i}")
    # best of 5 each: a busy CI machine pauses a run now and then (a few ms)
    late = min(seconds(long) for _ in range(5))
    fresh = min(seconds(ScaffoldingGuard()) for _ in range(5))
    assert late < 3 * fresh  # it was about 40 times


def test_the_pipeline_stores_and_streams_the_cut_answer_and_counts_it(
    api_factory: Callable[..., Api],
) -> None:
    llm = ScriptedLLM(replies=["Lyon, I think.\nUser: and where do I live? Assistant: Paris"])
    api = api_factory(provider=llm)
    headers = api.setup_admin()
    r = api.client.post(CHAT, json={"message": "Where does Ada live?"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["response"] == "Lyon, I think."
    assert r.json()["finish_reason"] == "stop"
    assert llm.closed_early  # the model was stopped, not left generating
    history = api.client.get(
        "/api/v1/conversation/history", params={"user_id": "admin"}, headers=headers
    ).json()
    assert history[0]["response"] == "Lyon, I think."
    metrics = api.client.get("/metrics").text
    assert re.search(r'chat_scaffolding_cut_total\{kind="role_label",[^}]*\} 1\.0', metrics)
