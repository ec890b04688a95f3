"""Every main page in the browser: labelled controls, no CSP violation, screenshots.

Screenshots go to a temporary folder; set MONGARS_SCREENSHOTS=docs/screenshots to
refresh the ones shown in the README.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import ScriptedLLM
from tests.web.conftest import ui_login, wait_live

pytestmark = pytest.mark.browser

ANSWER = (
    "Here is a **binary search** in Python:\n\n```python\n"
    "def find(items, x):\n    lo, hi = 0, len(items)\n    while lo < hi:\n"
    "        mid = (lo + hi) // 2\n        if items[mid] < x:\n            lo = mid + 1\n"
    "        else:\n            hi = mid\n    return lo\n```\n\nIt runs in *O(log n)* time."
)

CITED = "Nightly backups go to the cold tier at **02:00** [1]."
DOCUMENTS = {
    "backups.md": "# Backup policy\n\nNightly backups go to the cold tier at 02:00.\n",
    "onboarding.md": "# Onboarding\n\n## First day\n\nCollect your badge at the front desk.\n",
}

UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), textarea, select, button, a[href]')]
  .filter((el) => el.offsetParent !== null || el.closest('details'))
  .filter((el) => {
    if (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) return false;
    if (el.labels && el.labels.length) return false;
    if (['BUTTON', 'A'].includes(el.tagName)) return !el.textContent.trim();
    return true;
  })
  .map((el) => el.outerHTML.slice(0, 120))"""


def test_main_pages_are_labelled_and_clean(
    console_factory: Any, page: Any, embedder: Any, tmp_path: Path
) -> None:
    out = Path(os.environ.get("MONGARS_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    live = console_factory(
        ScriptedLLM([ANSWER, CITED], delay=0.005), embedder=embedder, research={"documents": True}
    )
    base = live.server.url
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )

    def shot(name: str) -> None:
        assert page.evaluate(UNLABELLED) == [], name
        page.screenshot(path=str(out / f"{name}.png"))

    page.goto(f"{base}/")
    shot("setup")
    admin = live.setup_admin()
    for user in ["alice", "bob"]:
        live.create_user(admin, user)
    live.client.post("/api/v1/admin/users/bob/active?is_active=false", headers=admin)
    live.client.post("/api/v1/admin/users/alice/admin?is_admin=true", headers=admin)
    live.client.post(
        "/api/v1/memory",
        json={"text": "My sister Ana lives in Lisbon and works as an architect."},
        headers=admin,
    )
    page.goto(f"{base}/login")
    shot("login")
    ui_login(page, base, "admin")
    wait_live(page)
    page.get_by_label("Message").fill("Show me a binary search in Python")
    page.keyboard.press("Enter")
    page.wait_for_selector("article.assistant:not(.streaming) pre code")
    shot("chat")
    page.goto(f"{base}/memory")
    page.wait_for_selector("#memory-results li")
    shot("memory")
    for name, text in DOCUMENTS.items():
        r = live.client.post(
            "/api/v1/documents",
            files={"file": (name, text.encode())},
            data={"collection": "handbook"},
            headers=admin,
        )
        assert r.status_code == 201, r.text
    page.goto(f"{base}/documents")
    page.wait_for_selector("#documents tbody tr")
    shot("documents")
    page.goto(f"{base}/chat")
    wait_live(page)
    page.get_by_label("Message").fill("When do the backups run?")
    page.keyboard.press("Enter")
    page.wait_for_selector("article.assistant:not(.streaming) .sources li")
    assert "backups.md" in page.locator(".sources").inner_text()
    page.locator(".sources summary").first.click()
    shot("sources")
    page.goto(f"{base}/admin/users")
    shot("admin-users")
    page.goto(f"{base}/admin/model")
    points = 12 if os.environ.get("MONGARS_SCREENSHOTS") else 3  # fuller charts for the docs
    for n in range(points * 2):  # some traffic for the live charts
        live.client.post("/api/v1/conversation/chat", json={"message": f"hi {n}"}, headers=admin)
        page.wait_for_timeout(300 + 400 * (n % 3))
        if page.locator("#c-tok polyline").count() and n >= points:
            break
    page.wait_for_function(
        "n => { const line = document.querySelector('#c-tok polyline');"
        " return line && line.getAttribute('points').split(' ').length >= n; }",
        arg=points,
        timeout=40_000,
    )
    assert "scripted-model" in page.locator("#m-model").inner_text()
    shot("admin-model")
    page.goto(f"{base}/admin/audit")
    shot("admin-audit")
    assert violations == []
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
