"""Rating an answer in a real browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import ui_login, wait_live

pytestmark = pytest.mark.browser


def test_rate_and_correct_a_live_answer(console_factory: Any, page: Any) -> None:
    live = console_factory()
    admin = live.setup_admin()
    base = live.server.url
    ui_login(page, base, "admin")
    wait_live(page)
    page.get_by_label("Message").fill("Capital of France?")
    page.keyboard.press("Enter")
    answer = page.locator("article.assistant[data-turn]")
    good = answer.get_by_role("button", name="Good answer")
    bad = answer.get_by_role("button", name="Bad answer")
    good.wait_for()  # built by feedback.js once the answer is stored
    turn = answer.get_attribute("data-turn")
    url = f"/api/v1/conversation/turns/{turn}/feedback"

    def stored() -> Any:
        r = live.client.get(url, headers=admin)
        return r.json() if r.status_code == 200 else None

    good.click()
    page.wait_for_selector("button[aria-label='Good answer'][aria-pressed='true']")
    assert stored()["rating"] == "up"
    bad.click()
    page.wait_for_selector("button[aria-label='Bad answer'][aria-pressed='true']")
    assert good.get_attribute("aria-pressed") == "false" and stored()["rating"] == "down"
    bad.click()  # the pressed one again: the rating is removed
    page.wait_for_selector("button[aria-label='Bad answer'][aria-pressed='false']")
    assert stored() is None

    answer.get_by_text("Suggest a better answer").click()
    answer.get_by_label("A better answer").fill("Paris is the capital of France.")
    answer.get_by_role("button", name="Save").click()
    answer.get_by_text("Your better answer ✓").wait_for()
    assert stored() == {**stored(), "rating": None, "correction": "Paris is the capital of France."}

    good.click()
    page.wait_for_selector("button[aria-label='Good answer'][aria-pressed='true']")
    page.reload()  # the server renders the stored state
    assert answer.get_by_role("button", name="Good answer").get_attribute("aria-pressed") == "true"
    assert answer.get_by_text("Your better answer ✓").is_visible()
    assert stored()["correction"] == "Paris is the capital of France."
