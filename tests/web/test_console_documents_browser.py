"""Documents and sources in a real browser: upload a Markdown file through the page, ask
in chat, see the Sources list under the streamed answer (and after a reload); a document
whose title and text carry an XSS payload stays inert in that list."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import ScriptedLLM
from tests.web.conftest import ui_login, wait_live
from tests.web.test_console_pages import UNLABELLED

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
GUIDE = (
    f"# Heron storage guide {XSS}\n\n"
    "Heron keeps every object in immutable segments.\n\n"
    "## Backups\n\n"
    f"Backups are written to the cold tier with the code name BLUE-HERON-42. {XSS}\n"
)
SOURCES = """() => {
  const a = [...document.querySelectorAll('article.assistant')].pop();
  const s = a && a.querySelector('.sources');
  return s ? {text: s.innerText, imgs: s.querySelectorAll('img').length,
              items: s.querySelectorAll('li').length,
              title: s.querySelector('li').getAttribute('title')} : null;
}"""


def test_upload_through_the_page_then_answer_cites_it(
    console_factory: Any, page: Any, embedder: Any
) -> None:
    llm = ScriptedLLM(["The backup code name is BLUE-HERON-42 [1]."], delay=0.01)
    live = console_factory(llm, embedder=embedder, research={"documents": True})
    live.setup_admin()
    base = live.server.url
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    ui_login(page, base, "admin")

    page.get_by_role("link", name="Documents").click()
    page.wait_for_url(f"{base}/documents")
    assert page.evaluate(UNLABELLED) == []
    page.get_by_label("File", exact=True).set_input_files(
        {"name": "heron.md", "mimeType": "text/markdown", "buffer": GUIDE.encode()}
    )
    page.get_by_label("Collection", exact=True).fill("ops")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(f"{base}/documents")
    assert "heron.md in ops: added" in page.get_by_role("status").first.inner_text()
    row = page.locator("#documents tbody tr").first
    assert "heron.md" in row.inner_text() and "ops" in row.inner_text()
    assert page.locator("#documents img").count() == 0  # the title is text, not markup

    page.get_by_role("link", name="Chat").click()
    page.wait_for_url(f"{base}/chat")
    wait_live(page)
    page.get_by_label("Message").fill("What is the backup code name?")
    page.keyboard.press("Enter")
    page.wait_for_selector("article.assistant:not(.streaming) .sources li")
    live_sources = page.evaluate(SOURCES)
    assert "Sources" in live_sources["text"] and "heron.md" in live_sources["text"]
    assert "Heron storage guide" in live_sources["text"]
    assert XSS in live_sources["text"]  # shown as text...
    assert live_sources["imgs"] == 0  # ...never as an element
    assert "BLUE-HERON-42" in live_sources["title"]  # the excerpt on hover

    page.reload()  # now rendered by the server from the stored turn
    page.wait_for_selector("article.assistant .sources li")
    stored = page.evaluate(SOURCES)
    assert stored["items"] == live_sources["items"] and "heron.md" in stored["text"]
    assert XSS in stored["text"] and stored["imgs"] == 0
    page.locator("article.assistant .sources summary").first.click()  # expand the excerpt
    quote = page.locator("article.assistant .sources blockquote").first
    assert "BLUE-HERON-42" in quote.inner_text()
    page.wait_for_timeout(200)
    assert dialogs == [] and violations == []
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0
