"""Accounts: first-admin setup, login, registration policy, roles read from the database."""

from __future__ import annotations

from tests.conftest import PASSWORD, Api


def test_setup_token_creates_first_admin_once(api: Api) -> None:
    assert api.client.get("/api/v1/setup").json() == {"setup_required": True}
    token = api.runtime.setup_token
    wrong = api.client.post(
        "/api/v1/setup", json={"token": "nope", "username": "root", "password": PASSWORD}
    )
    assert wrong.status_code == 403
    ok = api.client.post(
        "/api/v1/setup", json={"token": token, "username": "root", "password": PASSWORD}
    )
    assert ok.status_code == 201 and ok.json() == {"status": "registered", "is_admin": True}
    again = api.client.post(
        "/api/v1/setup", json={"token": token, "username": "root2", "password": PASSWORD}
    )
    assert again.status_code == 403
    assert api.client.get("/api/v1/setup").json() == {"setup_required": False}


def test_no_default_credentials(api: Api) -> None:
    for username, password in [("admin", "admin"), ("admin", "password"), ("root", "root")]:
        r = api.client.post("/token", data={"username": username, "password": password})
        assert r.status_code == 401
        assert r.json()["code"] == "not_authenticated"


def test_login_returns_bearer_token_with_standard_claims(api: Api) -> None:
    import jwt

    api.setup_admin()
    r = api.client.post("/token", data={"username": "admin", "password": PASSWORD})
    body = r.json()
    assert body["token_type"] == "bearer"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert {"sub", "exp", "iat", "jti"} <= set(claims)
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"


def test_wrong_password_and_unknown_user_look_the_same(api: Api) -> None:
    api.setup_admin()
    a = api.client.post("/token", data={"username": "admin", "password": "wrong-password"})
    b = api.client.post("/token", data={"username": "ghost", "password": "wrong-password"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()


def test_registration_policy_admin_only_by_default(api: Api) -> None:
    admin = api.setup_admin()
    anon = api.client.post("/api/v1/user/register", json={"username": "eve", "password": PASSWORD})
    assert anon.status_code == 403
    ok = api.client.post(
        "/api/v1/user/register", json={"username": "bob", "password": PASSWORD}, headers=admin
    )
    assert ok.json() == {"status": "registered", "is_admin": False}
    dup = api.client.post(
        "/api/v1/user/register", json={"username": "bob", "password": PASSWORD}, headers=admin
    )
    assert dup.status_code == 409


def test_registration_open_and_closed(api_factory) -> None:  # type: ignore[no-untyped-def]
    open_api = api_factory(auth={"registration": "open"})
    r = open_api.client.post(
        "/api/v1/user/register", json={"username": "carol", "password": PASSWORD}
    )
    assert r.status_code == 200 and r.json()["is_admin"] is False
    sneaky = open_api.client.post(
        "/api/v1/user/register",
        json={"username": "mallory", "password": PASSWORD, "is_admin": True},
    )
    assert sneaky.status_code == 403
    closed_api = api_factory(
        auth={"registration": "closed"},
        data_dir=open_api.runtime.settings.data_dir.parent / "closed",
    )
    r = closed_api.client.post(
        "/api/v1/user/register", json={"username": "dave", "password": PASSWORD}
    )
    assert r.status_code == 403 and "closed" in r.json()["detail"]


def test_bad_registration_input(api: Api) -> None:
    admin = api.setup_admin()
    for body in [
        {"username": "x", "password": PASSWORD},
        {"username": "bad name!", "password": PASSWORD},
        {"username": "ok_name", "password": "short"},
        {"username": "ok_name"},
        {"username": "ünïcode", "password": PASSWORD},
    ]:
        r = api.client.post("/api/v1/user/register", json=body, headers=admin)
        assert r.status_code == 422, body
        assert r.json()["detail"]
    r = api.client.post(
        "/api/v1/user/register",
        content=b"{not json",
        headers={**admin, "content-type": "application/json"},
    )
    assert r.status_code == 422


def test_user_list_is_admin_only(api: Api) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    assert api.client.get("/api/v1/user/list", headers=admin).json() == {"users": ["admin", "bob"]}
    assert api.client.get("/api/v1/user/list", headers=bob).status_code == 403
    assert api.client.get("/api/v1/user/list").status_code == 401


def test_demoted_admin_loses_rights_with_old_token(api: Api) -> None:
    admin = api.setup_admin()
    second = api.create_user(admin, "second", is_admin=True)
    assert api.client.get("/api/v1/user/list", headers=second).status_code == 200
    r = api.client.post("/api/v1/admin/users/second/admin?is_admin=false", headers=admin)
    assert r.status_code == 200 and r.json()["is_admin"] is False
    assert api.client.get("/api/v1/user/list", headers=second).status_code == 403


def test_disabled_user_is_locked_out_at_once(api: Api) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    api.client.post("/api/v1/admin/users/bob/active?is_active=false", headers=admin)
    assert api.client.get("/api/v1/user/me", headers=bob).status_code == 401
    r = api.client.post("/token", data={"username": "bob", "password": PASSWORD})
    assert r.status_code == 403


def test_change_password_revokes_older_tokens(api: Api) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    wrong = api.client.post(
        "/api/v1/user/change-password",
        json={"old_password": "not-it-at-all", "new_password": "new password 1"},
        headers=bob,
    )
    assert wrong.status_code == 403
    r = api.client.post(
        "/api/v1/user/change-password",
        json={"old_password": PASSWORD, "new_password": "new password 1"},
        headers=bob,
    )
    assert r.json() == {"status": "changed"}
    assert api.client.get("/api/v1/user/me", headers=bob).status_code == 401
    fresh = api.login("bob", "new password 1")
    assert api.client.get("/api/v1/user/me", headers=fresh).json()["username"] == "bob"
    assert (
        api.client.post("/token", data={"username": "bob", "password": PASSWORD}).status_code == 401
    )


def test_logout_revokes_that_token_only(api: Api) -> None:
    admin = api.setup_admin()
    other = api.login("admin")
    assert api.client.post("/api/v1/auth/logout", headers=admin).status_code == 200
    assert api.client.get("/api/v1/user/me", headers=admin).status_code == 401
    assert api.client.get("/api/v1/user/me", headers=other).status_code == 200


def test_tampered_and_expired_tokens_refused(api_factory) -> None:  # type: ignore[no-untyped-def]
    import jwt

    api = api_factory()
    headers = api.setup_admin()
    token = headers["Authorization"].split()[1]
    forged = jwt.encode(
        {**jwt.decode(token, options={"verify_signature": False})},
        "another-secret-that-is-also-long-enough-0",
        algorithm="HS256",
    )
    assert (
        api.client.get("/api/v1/user/me", headers={"Authorization": f"Bearer {forged}"}).status_code
        == 401
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    expired = jwt.encode(
        {**claims, "exp": claims["iat"] - 10},
        "test-secret-key-that-is-long-enough-000",
        algorithm="HS256",
    )
    r = api.client.get("/api/v1/user/me", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and r.json()["detail"] == "Token expired"
    none_alg = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    assert (
        api.client.get(
            "/api/v1/user/me", headers={"Authorization": f"Bearer {none_alg}"}
        ).status_code
        == 401
    )


def test_login_rate_limited_per_account(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(
        auth={"login_limit_per_account": "3/minute", "login_limit_per_address": "100/minute"}
    )
    api.setup_admin()  # one successful login counted
    codes = [
        api.client.post(
            "/token", data={"username": "admin", "password": "bad-password"}
        ).status_code
        for _ in range(3)
    ]
    assert codes[-1] == 429
    r = api.client.post("/token", data={"username": "admin", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    # another account from the same address is not blocked
    assert (
        api.client.post("/token", data={"username": "other", "password": "x-password"}).status_code
        == 401
    )


def test_login_rate_limited_per_address(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(
        auth={"login_limit_per_account": "100/minute", "login_limit_per_address": "4/minute"}
    )
    codes = [
        api.client.post(
            "/token", data={"username": f"user{i}", "password": "bad-password"}
        ).status_code
        for i in range(5)
    ]
    assert codes == [401, 401, 401, 401, 429]
