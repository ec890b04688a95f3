"""The evolution engine through its API: a significant thumbs-down surge on the
active adapter proposes a rollback awaiting approval, with its figures; approving it
rolls back; a few bad answers decide nothing; decisions are deduplicated; training is
refused without a scheduler or over the energy budget; admin only; bad input refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.conftest import Api
from tests.evolution.helpers import CALM, active_id, active_versions, add_job_run, add_turns

URL = "/api/v1/evolution"


def diagnose(api: Api, admin: dict[str, str]) -> list[dict[str, Any]]:
    r = api.client.post(f"{URL}/diagnose", headers=admin)
    assert r.status_code == 200, r.text
    return list(r.json()["decisions"])


def by_rule(decisions: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [d for d in decisions if d["rule"] == rule]


def surge(api: Api) -> list[int]:
    """Version 2 active after version 1: 60 turns each, 40 % down vs 5 % down."""
    ids = active_versions(api, 2)
    add_turns(api, ids[0], 60, down=3)
    add_turns(api, ids[1], 60, down=24)
    return ids


def test_surge_proposes_rollback_and_approval_rolls_back(
    api_factory: Callable[..., Api],
) -> None:
    api = api_factory(evolution=CALM)
    admin = api.setup_admin()
    v1, v2 = surge(api)
    assert active_id(api) == v2

    made = diagnose(api, admin)
    [decision] = by_rule(made, "adapter_regression")
    assert decision["action"] == "rollback_adapter"
    assert decision["status"] == "awaiting_approval"
    inputs = decision["inputs"]
    assert inputs["active"]["version"] == v2 and inputs["predecessor"]["version"] == v1
    assert inputs["active"]["turns"] == 60 and inputs["active"]["thumbs_down"] == 24
    assert inputs["active"]["thumbs_down_rate"] == 0.4
    assert inputs["predecessor"]["thumbs_down"] == 3
    assert inputs["predecessor"]["thumbs_down_rate"] == 0.05
    assert inputs["p_value"] < 0.001 and inputs["rollback_p_value"] == 0.05
    assert inputs["rollback_min_turns"] == 30
    assert active_id(api) == v2  # nothing changed yet: an admin decides

    # Dedupe: the same proposal is not recorded again while it awaits.
    assert by_rule(diagnose(api, admin), "adapter_regression") == []
    listed = api.client.get(f"{URL}/decisions?status=awaiting_approval", headers=admin).json()
    assert [d["id"] for d in listed["items"]] == [decision["id"]]

    r = api.client.post(
        f"{URL}/decisions/{decision['id']}/approve", json={"note": "users hate it"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["decided_by"] == "admin"
    assert f"rolled back adapter version {v2}" in r.json()["outcome"]
    assert active_id(api) == v1

    # Approving twice, or rejecting what is decided: 409.
    again = api.client.post(f"{URL}/decisions/{decision['id']}/approve", json={}, headers=admin)
    assert again.status_code == 409 and again.json()["code"] == "decision_state"
    r = api.client.post(f"{URL}/decisions/{decision['id']}/reject", json={}, headers=admin)
    assert r.status_code == 409

    audit = api.client.get("/api/v1/admin/audit", headers=admin)
    assert audit.status_code == 200
    assert "evolution.approve" in audit.text and "evolution.executed" in audit.text


def test_few_bad_answers_decide_nothing(api_factory: Callable[..., Api]) -> None:
    api = api_factory(evolution=CALM)
    admin = api.setup_admin()
    v1, v2 = active_versions(api, 2)
    add_turns(api, v1, 60, down=3)
    add_turns(api, v2, 60, down=6)  # 10 % vs 5 %: not significant
    assert by_rule(diagnose(api, admin), "adapter_regression") == []
    assert active_id(api) == v2


def test_surge_on_too_few_turns_decides_nothing(api_factory: Callable[..., Api]) -> None:
    api = api_factory(evolution={**CALM, "rollback_min_turns": 61})
    admin = api.setup_admin()
    surge(api)  # 60 turns a side: under the minimum
    assert by_rule(diagnose(api, admin), "adapter_regression") == []


def test_base_model_predecessor_and_reject_then_cooldown(api_factory: Callable[..., Api]) -> None:
    api = api_factory(evolution=CALM)
    admin = api.setup_admin()
    [v1] = active_versions(api, 1)
    add_turns(api, None, 60, down=3)  # the base model answered before
    add_turns(api, v1, 60, down=24)
    [decision] = by_rule(diagnose(api, admin), "adapter_regression")
    assert decision["inputs"]["predecessor"]["version"] is None

    r = api.client.post(
        f"{URL}/decisions/{decision['id']}/reject", json={"note": "a known topic"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert active_id(api) == v1
    # Within the cooldown, the rule does not propose it again.
    assert by_rule(diagnose(api, admin), "adapter_regression") == []


def test_auto_rollback_takes_it(api_factory: Callable[..., Api]) -> None:
    api = api_factory(evolution={**CALM, "auto_rollback": True})
    admin = api.setup_admin()
    v1, _ = surge(api)
    [decision] = by_rule(diagnose(api, admin), "adapter_regression")
    assert decision["status"] == "taken" and decision["decided_by"] == "evolution"
    assert active_id(api) == v1


def test_training_refused_without_scheduler_and_over_budget(
    api_factory: Callable[..., Api],
) -> None:
    api = api_factory(
        evolution={**CALM, "train_min_feedback": 3, "energy_budget_wh_per_day": 5.0},
        training={"default_consent": True},
    )
    admin = api.setup_admin()
    add_turns(api, None, 5, up=4)
    [decision] = by_rule(diagnose(api, admin), "training_ready")
    assert decision["action"] == "schedule_training" and decision["status"] == "refused"
    assert "scheduler is off" in decision["outcome"]
    assert decision["inputs"]["new_feedback"] == 4

    add_job_run(api, "training.train", 7.5)
    made = diagnose(api, admin)
    assert by_rule(made, "training_ready") == []
    [refusal] = by_rule(made, "energy_budget")
    assert refusal["action"] == "refuse_training" and refusal["status"] == "refused"
    assert refusal["inputs"]["energy_wh_24h"] == 7.5

    figures = api.client.get(f"{URL}/diagnostics", headers=admin).json()
    assert figures["energy"]["training.train"]["energy_wh"] == 7.5
    assert figures["latency"][0]["model"] == "scripted" and figures["latency"][0]["turns"] == 5
    assert figures["new_feedback"] == 4 and figures["rss_mb"] > 0


def test_admin_only_and_bad_input(api: Api) -> None:
    admin = api.setup_admin()
    user = api.create_user(admin, "bob")
    for method, path in (
        ("get", "/decisions"),
        ("get", "/diagnostics"),
        ("post", "/diagnose"),
        ("post", "/decisions/1/approve"),
        ("post", "/decisions/1/reject"),
    ):
        r = getattr(api.client, method)(
            URL + path, headers=user, **({"json": {}} if method == "post" else {})
        )
        assert r.status_code == 403, (path, r.text)
        assert getattr(api.client, method)(URL + path).status_code == 401
    r = api.client.post(f"{URL}/decisions/999/approve", json={}, headers=admin)
    assert r.status_code == 404
    r = api.client.post(f"{URL}/decisions/1/approve", json={"note": "x" * 501}, headers=admin)
    assert r.status_code == 422
    assert api.client.get(f"{URL}/decisions?status=nope", headers=admin).status_code == 422
    assert api.client.get(f"{URL}/decisions?limit=0", headers=admin).status_code == 422
    assert api.client.post(f"{URL}/decisions/0/reject", json={}, headers=admin).status_code == 422
