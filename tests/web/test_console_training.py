"""Console: the admins' Training page (curate, list, delete datasets; runs and their
actions), audited like every admin action; other users are refused."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Api
from tests.fakes import ScriptedLLM
from tests.training.test_datasets_api import chat, consent
from tests.web.test_console_http import csrf, login


def test_curate_list_and_delete_from_the_console(api_factory: Callable[..., Api]) -> None:
    api = api_factory(provider=ScriptedLLM(replies=["Sure."]), training={"min_records": 1})
    admin = api.setup_admin()
    consent(api, admin, True)
    chat(api, admin, "hello there")
    login(api.client)
    page = api.client.get("/admin/training")
    assert page.status_code == 200 and "No datasets yet." in page.text
    token = csrf(api.client, "/admin/training")
    r = api.client.post(
        "/admin/training/datasets",
        data={"min_confidence": "0", "include_unrated": "true", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    listed = api.client.get("/api/v1/training/datasets", headers=admin).json()["items"]
    assert len(listed) == 1 and listed[0]["records"] == 1
    dataset_id = listed[0]["id"]
    page = api.client.get("/admin/training").text
    assert dataset_id in page and "approved" in page and 'action="/admin/training/runs"' in page
    r = api.client.post(
        "/admin/training/datasets/x/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 404
    r = api.client.post(
        f"/admin/training/datasets/{dataset_id}/delete",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert api.client.get("/api/v1/training/datasets", headers=admin).json()["items"] == []
    audit = api.client.get("/api/v1/admin/audit", headers=admin).json()["items"]
    actions = [(e["action"], e["target"]) for e in audit]
    assert ("training.dataset.curate", dataset_id) in actions
    assert ("training.dataset.delete", dataset_id) in actions


def test_training_page_is_for_admins_only(api: Api) -> None:
    admin = api.setup_admin()
    api.create_user(admin, "alice")
    login(api.client, "alice")
    r = api.client.get("/admin/training", follow_redirects=False)
    assert r.status_code in (303, 403)
    assert "Curate a dataset" not in r.text
