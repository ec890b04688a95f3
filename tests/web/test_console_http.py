"""Console over plain HTTP: security headers, CSRF, cookies, forms without JavaScript."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from mongars.web.render import markdown
from tests.conftest import PASSWORD, Api
from tests.fakes import ScriptedLLM

CSRF_RE = re.compile(r'name="csrf-token" content="([0-9a-f]{64})"')


def csrf(client: TestClient, path: str = "/login") -> str:
    r = client.get(path)
    match = CSRF_RE.search(r.text)
    assert match, r.text[:500]
    return match.group(1)


def login(client: TestClient, username: str = "admin", password: str = PASSWORD) -> Any:
    token = csrf(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


def test_security_headers_on_console_pages_only(api: Api) -> None:
    r = api.client.get("/login")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in api.client.get("/static/chat.js").headers
    assert "script-src" not in api.client.get("/healthz").headers["content-security-policy"]
    assert "content-security-policy" not in api.client.get("/docs").headers  # needs inline JS


def test_pages_have_no_inline_script_or_handlers(api: Api) -> None:
    api.setup_admin()
    assert login(api.client).status_code == 303
    for path in [
        "/chat",
        "/memory",
        "/documents",
        "/account",
        "/admin/users",
        "/admin/audit",
        "/admin/model",
    ]:
        html = api.client.get(path).text
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert 'src="/static/' in tag, (path, tag)
        assert not re.search(r"<script\b[^>]*>[^<\s]", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        assert "javascript:" not in html, path


def test_first_admin_setup_form(api: Api) -> None:
    assert api.client.get("/", follow_redirects=False).headers["location"] == "/setup"
    token = csrf(api.client, "/setup")
    form = {"token": "wrong", "username": "admin", "password": PASSWORD, "csrf_token": token}
    r = api.client.post("/setup", data=form)
    assert r.status_code == 403 and "invalid setup token" in r.text
    r = api.client.post("/setup", data={**form, "username": "a"})
    assert r.status_code == 422 and "3-64 characters" in r.text
    form["token"] = api.runtime.setup_token
    r = api.client.post("/setup", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/chat"
    assert api.client.get("/chat").status_code == 200  # logged in
    assert api.client.get("/setup", follow_redirects=False).headers["location"] == "/login"


def test_csrf_is_required_on_every_form(api: Api) -> None:
    api.setup_admin()
    data = {"username": "admin", "password": PASSWORD}
    assert api.client.post("/login", data=data).status_code == 403  # no token, no cookie
    csrf(api.client)
    r = api.client.post("/login", data={**data, "csrf_token": "0" * 64})
    assert r.status_code == 403 and "CSRF" in r.text
    assert login(api.client).status_code == 303
    token = csrf(api.client, "/chat")
    for path in ["/chat/new", "/chat/send", "/logout", "/memory/note", "/admin/users"]:
        assert api.client.post(path, data={"message": "x"}).status_code == 403, path
    cross = api.client.post(
        "/chat/new", data={"csrf_token": token}, headers={"Origin": "http://evil.example"}
    )
    assert cross.status_code == 403
    ok = api.client.post("/chat/new", data={"csrf_token": token}, follow_redirects=False)
    assert ok.status_code == 303
    ticket = api.client.post("/chat/ticket", headers={"X-CSRF-Token": token})
    assert ticket.status_code == 200 and ticket.json()["ticket"].startswith("v1.")
    assert api.client.post("/chat/ticket").status_code == 403


def test_session_cookie_flags(api_factory: Any) -> None:
    api = api_factory()
    api.setup_admin()
    r = login(api.client)
    cookie = next(h for h in r.headers.get_list("set-cookie") if "mongars_session=" in h)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    secure = TestClient(api.client.app, base_url="https://testserver")
    r = login(secure)
    cookie = next(h for h in r.headers.get_list("set-cookie") if "mongars_session=" in h)
    assert "Secure" in cookie and "HttpOnly" in cookie
    assert "strict-transport-security" in secure.get("/login").headers


def test_login_errors_redirects_and_logout(api: Api) -> None:
    api.setup_admin()
    assert (
        api.client.get("/chat", follow_redirects=False).headers["location"] == "/login?next=/chat"
    )
    r = login(api.client, password="wrong password")
    assert r.status_code == 401 and "Incorrect username or password" in r.text
    token = csrf(api.client)
    r = api.client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "csrf_token": token, "next": "//evil.com"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/chat"  # never an open redirect
    session = api.client.cookies.get("mongars_session")
    token = csrf(api.client, "/chat")
    assert api.client.post("/logout", data={"csrf_token": token}).status_code == 200
    assert api.client.get("/chat", follow_redirects=False).status_code == 303
    # The logged-out token is revoked, not merely forgotten by the browser.
    r = api.client.get("/api/v1/user/me", headers={"Authorization": f"Bearer {session}"})
    assert r.status_code == 401


def test_chat_form_without_javascript(api_factory: Any) -> None:
    api = api_factory(ScriptedLLM(["Use `print()` like this:\n\n```python\nprint('<b>')\n```"]))
    api.setup_admin()
    login(api.client)
    token = csrf(api.client, "/chat")
    r = api.client.post("/chat/send", data={"message": "   ", "csrf_token": token})
    assert r.status_code == 422 and "must not be empty" in r.text
    long = "x" * 8001
    r = api.client.post("/chat/send", data={"message": long, "csrf_token": token})
    assert r.status_code == 413 and "8000 characters" in r.text and long in r.text  # draft kept
    r = api.client.post(
        "/chat/send", data={"message": "how to print?", "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    thread = r.headers["location"].split("/")[2].split("#")[0]
    page = api.client.get(f"/chat/{thread}").text
    assert "<pre><code class=\"language-python\">print('&lt;b&gt;')" in page  # code intact
    assert "how to print?" in page

    r = api.client.post(
        f"/chat/{thread}/rename",
        data={"title": "Printing", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "Printing" in api.client.get("/chat?q=print").text  # sidebar search
    assert "No thread matches" in api.client.get("/chat?q=nothing-like-this").text
    r = api.client.post(f"/chat/{thread}/delete", data={"csrf_token": token})
    assert r.status_code == 200 and "Thread deleted." in r.text
    assert api.client.get(f"/chat/{thread}").status_code == 404


def test_other_users_threads_are_not_found(api: Api) -> None:
    admin = api.setup_admin()
    api.create_user(admin, "bob")
    r = api.client.post("/api/v1/conversation/chat", json={"message": "secret"}, headers=admin)
    thread = r.json()["session_id"]
    login(api.client, "bob")
    r = api.client.get(f"/chat/{thread}")
    assert r.status_code == 404 and "secret" not in r.text
    token = csrf(api.client, "/chat")
    assert api.client.post(f"/chat/{thread}/delete", data={"csrf_token": token}).status_code == 404


def test_admin_pages(api: Api) -> None:
    admin = api.setup_admin()
    api.create_user(admin, "bob")
    login(api.client, "bob")
    for path in ["/admin/users", "/admin/audit", "/admin/model", "/admin/metrics.json"]:
        r = api.client.get(path)
        assert r.status_code == 403 and "admin rights required" in r.text, path
    api.client.cookies.clear()
    login(api.client)
    token = csrf(api.client, "/admin/users")
    r = api.client.post(
        "/admin/users/bob/password", data={"password": "bob's new password", "csrf_token": token}
    )
    assert r.status_code == 200 and "Password of bob reset" in r.text
    r = api.client.post(
        "/admin/users/admin/active", data={"is_active": "false", "csrf_token": token}
    )
    assert r.status_code == 403 and "cannot disable their own account" in r.text
    r = api.client.post(
        "/admin/users", data={"username": "x", "password": "p", "csrf_token": token}
    )
    assert r.status_code == 422
    audit = api.client.get("/admin/audit").text
    assert "user.reset_password" in audit and "bob's new password" not in audit
    api.client.post("/api/v1/conversation/chat", json={"message": "hi"}, headers=admin)
    summary = api.client.get("/admin/metrics.json").json()
    assert summary["model"] == {
        "provider": "scripted",
        "model": "scripted-model",
        "context_window": 4096,
        "max_tokens": 256,
        "prompt_format": "the server's chat format",
        "prompt_format_note": "",
    }
    assert summary["requests"] >= 1 and summary["completion_tokens"] > 0
    assert summary["turns"].get("completed") == 1
    assert "scripted-model" in api.client.get("/admin/model").text


def test_memory_page_export_and_forget_all_without_memory_feature(api: Api) -> None:
    admin = api.setup_admin()
    api.client.post("/api/v1/conversation/chat", json={"message": "hello"}, headers=admin)
    login(api.client)
    page = api.client.get("/memory")
    assert page.status_code == 200 and "Memory is switched off" in page.text
    r = api.client.get("/memory?q=anything")
    assert r.status_code == 400 and "memory" in r.text.lower()
    export = api.client.get("/memory/export")
    assert export.headers["content-disposition"].startswith("attachment;")
    assert export.json()["account"]["username"] == "admin"
    assert export.json()["turns"][0]["query"] == "hello"
    token = csrf(api.client, "/memory")
    r = api.client.post("/memory/forget-all", data={"csrf_token": token})
    assert r.status_code == 422 and "tick the confirmation box" in r.text


def test_markdown_is_sanitised() -> None:
    html = str(
        markdown(
            "<script>alert(1)</script><img src=x onerror=alert(2)> [a](javascript:alert(3)) "
            '[b](https://example.org "t") **ok**\n\n```js\nconst x = "<b>";\n```'
        )
    )
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    assert (
        '<a href="https://example.org" title="t" rel="noopener noreferrer nofollow">b</a>' in html
    )
    assert "<strong>ok</strong>" in html
    assert '<pre><code class="language-js">const x = "&lt;b&gt;";' in html
