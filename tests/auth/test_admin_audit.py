"""Admin password reset and the audit log of admin actions."""

from __future__ import annotations

from tests.conftest import PASSWORD, Api


def test_admin_resets_a_password_and_old_tokens_stop_working(api: Api) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    r = api.client.post(
        "/api/v1/admin/users/bob/password", json={"password": "a brand new password"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["username"] == "bob"
    assert api.client.get("/api/v1/user/me", headers=bob).status_code == 401
    old = api.client.post("/token", data={"username": "bob", "password": PASSWORD})
    assert old.status_code == 401
    api.login("bob", "a brand new password")


def test_reset_password_rules(api: Api) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    short = api.client.post(
        "/api/v1/admin/users/bob/password", json={"password": "x"}, headers=admin
    )
    assert short.status_code == 422 and "at least" in short.json()["detail"]
    missing = api.client.post(
        "/api/v1/admin/users/nobody/password", json={"password": PASSWORD}, headers=admin
    )
    assert missing.status_code == 404
    forbidden = api.client.post(
        "/api/v1/admin/users/admin/password", json={"password": "hijacked password"}, headers=bob
    )
    assert forbidden.status_code == 403


def test_admin_actions_are_audited_newest_first(api: Api) -> None:
    admin = api.setup_admin()
    api.create_user(admin, "bob")  # through /user/register by an admin
    api.client.post(
        "/api/v1/admin/users", json={"username": "carol", "password": PASSWORD}, headers=admin
    )
    api.client.post("/api/v1/admin/users/bob/admin?is_admin=true", headers=admin)
    api.client.post("/api/v1/admin/users/bob/admin?is_admin=false", headers=admin)
    api.client.post("/api/v1/admin/users/carol/active?is_active=false", headers=admin)
    api.client.post(
        "/api/v1/admin/users/carol/password", json={"password": "another password"}, headers=admin
    )
    refused = api.client.post("/api/v1/admin/users/admin/admin?is_admin=false", headers=admin)
    assert refused.status_code == 403

    r = api.client.get("/api/v1/admin/audit", headers=admin)
    assert r.status_code == 200
    items = r.json()["items"]
    assert [(e["action"], e["target"]) for e in items] == [
        ("user.reset_password", "carol"),
        ("user.disable", "carol"),
        ("user.demote", "bob"),
        ("user.promote", "bob"),
        ("user.create", "carol"),
        ("user.create", "bob"),
    ]
    assert {e["actor"] for e in items} == {"admin"}
    assert "another password" not in r.text  # secrets never logged

    first = api.client.get("/api/v1/admin/audit?limit=2", headers=admin).json()
    assert len(first["items"]) == 2 and first["next_before"] == first["items"][-1]["id"]
    rest = api.client.get(f"/api/v1/admin/audit?before={first['next_before']}", headers=admin)
    assert [e["id"] for e in rest.json()["items"]] == [e["id"] for e in items[2:]]


def test_audit_log_is_admin_only(api: Api) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    assert api.client.get("/api/v1/admin/audit", headers=bob).status_code == 403
    assert api.client.get("/api/v1/admin/audit").status_code == 401
