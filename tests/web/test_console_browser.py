"""The operator console in a real browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.conftest import PASSWORD
from tests.fakes import ScriptedLLM
from tests.web.conftest import ui_login, wait_live

pytestmark = pytest.mark.browser

LAST_ANSWER = """() => {
  const a = [...document.querySelectorAll('article.assistant')].pop();
  return a ? [a.querySelector('.body').innerText, a.classList.contains('streaming')] : null;
}"""


def _words(n: int) -> str:
    return " ".join(f"word{i}" for i in range(n))


def test_first_admin_setup_then_login_and_logout(console_factory: Any, page: Any) -> None:
    live = console_factory()
    base = live.server.url
    page.goto(f"{base}/")
    page.wait_for_url(f"{base}/setup")
    page.get_by_label("Setup token").fill("not-the-token")
    page.get_by_label("Admin username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create admin and log in").click()
    assert "invalid setup token" in page.get_by_role("alert").inner_text()

    page.get_by_label("Setup token").fill(live.runtime.setup_token)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create admin and log in").click()
    page.wait_for_url(f"{base}/chat")
    assert "first admin" in page.get_by_role("status").first.inner_text()
    assert page.get_by_role("link", name="Users").is_visible()  # admin navigation

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{base}/login")
    page.goto(f"{base}/setup")  # done once: the setup page is gone
    page.wait_for_url(f"{base}/login")
    page.goto(f"{base}/chat")  # needs a session again
    page.wait_for_url(re.compile(r".*/login\?next=/chat$"))

    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    assert "Incorrect username or password" in page.get_by_role("alert").inner_text()
    ui_login(page, base, "admin")
    cookie = next(c for c in page.context.cookies() if c["name"] == "mongars_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("() => document.cookie").find("mongars_session") == -1


def test_answer_streams_into_the_page_before_it_completes(console_factory: Any, page: Any) -> None:
    reply = _words(40)
    live = console_factory(ScriptedLLM([reply], delay=0.04))
    live.setup_admin()
    base = live.server.url
    ui_login(page, base, "admin")
    wait_live(page)

    page.get_by_label("Message").fill("Tell me a story")
    page.keyboard.press("Enter")  # keyboard only: Enter sends
    seen: list[int] = []
    stop_visible = False
    deadline = time.time() + 15
    while time.time() < deadline:
        state = page.evaluate(LAST_ANSWER)
        if state is not None:
            text, streaming = state
            if not streaming and text:
                break
            if streaming and text and (not seen or len(text) != seen[-1]):
                seen.append(len(text))
                if len(seen) == 1:  # early in the answer, it can be stopped
                    stop_visible = page.get_by_role("button", name="Stop").is_visible()
        time.sleep(0.03)
    partial = [n for n in seen if n < len(reply)]
    assert len(partial) >= 3, seen  # the answer grew several times before it was complete
    assert stop_visible
    assert seen == sorted(seen)
    assert page.evaluate(LAST_ANSWER) == [reply, False]
    assert re.search(r"/chat/[0-9a-f]{32}$", page.url)  # the new thread's address
    assert not page.get_by_role("button", name="Stop").is_visible()

    page.reload()  # the stored thread renders server-side, in the sidebar too
    assert page.locator("article.assistant .body").inner_text() == reply
    assert page.locator("#threads a[aria-current=page]").inner_text().startswith("Tell me a story")


def test_reload_mid_answer_and_the_answer_completes(console_factory: Any, page: Any) -> None:
    reply = _words(50)
    live = console_factory(ScriptedLLM([reply], delay=0.05))
    live.setup_admin()
    base = live.server.url
    ui_login(page, base, "admin")
    wait_live(page)
    page.get_by_label("Message").fill("A long one, please")
    page.get_by_role("button", name="Send").click()
    page.wait_for_function(
        "() => { const a = document.querySelector('article.assistant');"
        " return a && a.innerText.includes('word5'); }"
    )
    page.reload()  # mid-answer: the generation goes on on the server
    wait_live(page)
    page.wait_for_function(
        "() => { const a = document.querySelector('article.assistant');"
        " return a && !a.classList.contains('streaming') && a.innerText.includes('word49'); }"
    )
    assert page.evaluate(LAST_ANSWER) == [reply, False]
    assert page.locator("article.user").inner_text() == "A long one, please"
    page.reload()  # and it was stored exactly once
    assert page.locator("article.assistant").count() == 1
    assert page.locator("article.assistant .body").inner_text() == reply


def test_xss_payloads_render_inert(console_factory: Any, page: Any) -> None:
    evil_answer = '<img src=x onerror="window.__xss=1"> **bold** <script>window.__xss=2</script>'
    live = console_factory(ScriptedLLM([evil_answer], delay=0.01))
    live.setup_admin()
    base = live.server.url
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    ui_login(page, base, "admin")
    wait_live(page)
    evil_message = (
        '<img src=x onerror="alert(1)"><script>alert(2)</script> '
        "[click me](javascript:alert(3)) <iframe src=javascript:alert(4)></iframe>"
    )
    page.get_by_label("Message").fill(evil_message)
    page.get_by_role("button", name="Send").click()
    page.wait_for_function(
        "() => { const a = document.querySelector('article.assistant');"
        " return a && !a.classList.contains('streaming') && a.innerText.includes('bold'); }"
    )
    for _ in range(2):  # streamed (client-side rendering), then reloaded (server-side)
        log = page.locator("#log")
        assert log.locator("img, script, iframe").count() == 0
        assert log.locator("strong").last.inner_text() == "bold"  # Markdown still works
        assert "<img src=x onerror" in page.locator("article.user").inner_text()
        for href in log.locator("a").evaluate_all("els => els.map(e => e.href)"):
            assert not href.startswith("javascript:")
        assert page.evaluate("() => window.__xss") is None
        page.reload()
        page.wait_for_selector("article.assistant")
    assert dialogs == []


def test_forget_a_memory_and_it_leaves_search(
    console_factory: Any, page: Any, embedder: Any
) -> None:
    live = console_factory(embedder=embedder)
    admin = live.setup_admin()
    for text in ["My locker code at the Riverside gym is 4512.", "I drink green tea at 4 pm."]:
        r = live.client.post("/api/v1/memory", json={"text": text}, headers=admin)
        assert r.status_code == 201, r.text
    base = live.server.url
    ui_login(page, base, "admin")
    page.goto(f"{base}/memory")
    page.get_by_label("Search memories").fill("where do I work out")
    page.get_by_role("button", name="Search").click()
    results = page.locator("#memory-results")
    assert "Riverside gym" in results.locator("li").first.inner_text()  # best match first

    gym = results.locator("li", has_text="Riverside gym")
    page.once("dialog", lambda d: d.accept())
    gym.get_by_role("button", name=re.compile(r"^Forget memory")).click()
    page.wait_for_url(re.compile(r".*/memory\?q=where"))
    assert page.get_by_role("status").first.inner_text() == "Forgotten."
    assert "Riverside" not in page.locator("#memory-results").inner_text()
    page.goto(f"{base}/memory")
    assert "green tea" in page.locator("#memory-results").inner_text()
    assert "Riverside" not in page.locator("#memory-results").inner_text()


def test_admin_creates_a_user_who_then_logs_in(console_factory: Any, page: Any) -> None:
    live = console_factory()
    live.setup_admin()
    base = live.server.url
    ui_login(page, base, "admin")
    page.get_by_role("link", name="Users").click()
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password", exact=True).fill("bob's long password")
    page.get_by_role("button", name="Create user").click()
    assert page.get_by_role("status").first.inner_text() == "User bob created."
    assert "active" in page.locator("#user-bob").inner_text()
    page.get_by_role("button", name="Promote bob").click()
    page.get_by_role("button", name="Demote bob").click()
    page.get_by_role("link", name="Audit log").click()
    audit = page.locator("#audit tbody").inner_text()
    assert audit.index("user.demote") < audit.index("user.promote") < audit.index("user.create")

    page.get_by_role("button", name="Log out").click()
    ui_login(page, base, "bob", "bob's long password")
    assert page.get_by_role("link", name="Users").count() == 0  # not an admin
    response = page.goto(f"{base}/admin/users")
    assert response.status == 403
    assert "admin rights required" in page.get_by_role("alert").inner_text()


def test_without_javascript_the_form_posts_and_the_server_answers(
    console_factory: Any, browser: Any
) -> None:
    live = console_factory(ScriptedLLM(["A **plain** answer, rendered by the server."]))
    live.setup_admin()
    base = live.server.url
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        ui_login(page, base, "admin")
        page.get_by_label("Message").fill("Hello without scripts")
        page.get_by_role("button", name="Send").click()
        page.wait_for_url(re.compile(r".*/chat/[0-9a-f]{32}(#last)?$"))
        assert page.locator("article.user").inner_text() == "Hello without scripts"
        answer = page.locator("article.assistant .body")
        assert answer.inner_text() == "A plain answer, rendered by the server."
        assert answer.locator("strong").inner_text() == "plain"
        page.get_by_role("button", name="Regenerate").click()  # a plain form too
        assert page.locator("article.assistant").count() == 1
        page.get_by_role("link", name="Hello without scripts").click()  # history, in the sidebar
        assert page.locator("article.user").inner_text() == "Hello without scripts"
    finally:
        context.close()


def test_keyboard_only_chat(console_factory: Any, page: Any) -> None:
    live = console_factory(ScriptedLLM(["Typed and sent by keyboard."]))
    live.setup_admin()
    base = live.server.url
    page.goto(f"{base}/login")
    assert page.evaluate("() => document.activeElement.id") == "username"  # autofocus
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/chat")
    wait_live(page)
    # From the top of the page, Tab reaches the composer through labelled controls only.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")  # skip link: focus moves to the main content
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "message":
            break
    assert page.evaluate("() => document.activeElement.id") == "message"
    page.keyboard.type("hello")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => { const a = document.querySelector('article.assistant');"
        " return a && !a.classList.contains('streaming') && a.innerText.includes('keyboard'); }"
    )


def test_stop_regenerate_and_copy(console_factory: Any, browser: Any) -> None:
    live = console_factory(ScriptedLLM([_words(60), "A fresh answer."], delay=0.04))
    live.setup_admin()
    base = live.server.url
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = context.new_page()
    try:
        ui_login(page, base, "admin")
        wait_live(page)
        page.get_by_label("Message").fill("Count for me")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => (document.querySelector('article.assistant') || {}).innerText?.includes('word3')"
        )
        # The new thread is in the sidebar before the answer ends.
        assert page.locator("#threads a[aria-current=page]").inner_text() == "Count for me"
        page.keyboard.press("Escape")  # stop, from the keyboard
        page.wait_for_selector("article.assistant.cancelled:not(.streaming)")
        partial = page.evaluate(LAST_ANSWER)[0]
        assert partial.startswith("word0") and "word59" not in partial
        assert page.locator("article.assistant .badge").inner_text() == "stopped"

        page.get_by_role("button", name="Regenerate").click()
        page.wait_for_function(
            "() => { const a = document.querySelector('article.assistant');"
            " return !a.classList.contains('streaming') && a.innerText.includes('fresh'); }"
        )
        assert page.locator("article.assistant").count() == 1
        page.get_by_role("button", name="Copy").click()
        assert page.evaluate("() => navigator.clipboard.readText()") == "A fresh answer."
        page.reload()  # stored: the regenerated answer replaced the stopped one
        assert page.locator("article.assistant .body").inner_text() == "A fresh answer."
    finally:
        context.close()
