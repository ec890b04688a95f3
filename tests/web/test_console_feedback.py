"""Console: thumbs and "suggest a better answer" under answers, the training consent
checkbox (plain forms without JavaScript, and the JSON answers feedback.js reads)."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import Api
from tests.web.test_console_http import csrf, login

JSON = {"Accept": "application/json"}


def _turn(api: Api, headers: dict[str, str], message: str = "Capital of France?") -> Any:
    r = api.client.post("/api/v1/conversation/chat", json={"message": message}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _feedback(api: Api, headers: dict[str, str], turn: int) -> Any:
    r = api.client.get(f"/api/v1/conversation/turns/{turn}/feedback", headers=headers)
    return r.json() if r.status_code == 200 else None


def _pressed(html: str, turn: int) -> dict[str, str]:
    box = html[html.index(f'id="feedback-{turn}"') :]
    return {
        rating: pressed
        for rating, pressed in re.findall(
            r'data-rating="(up|down)" aria-pressed="(true|false)"', box[: box.index("</form>")]
        )
    }


def test_rate_and_correct_an_answer_with_plain_forms(api: Api) -> None:
    admin = api.setup_admin()
    answer = _turn(api, admin)
    turn, thread = answer["turn_id"], answer["session_id"]
    login(api.client)
    page = api.client.get(f"/chat/{thread}").text
    assert _pressed(page, turn) == {"up": "false", "down": "false"}
    assert "Suggest a better answer" in page
    token = csrf(api.client, f"/chat/{thread}")
    url = f"/chat/turns/{turn}/feedback"
    back = f"/chat/{thread}#feedback-{turn}"

    r = api.client.post(
        url, data={"rating": "up", "back": back, "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == back
    assert _feedback(api, admin, turn)["rating"] == "up"
    page = api.client.get(f"/chat/{thread}").text
    assert _pressed(page, turn) == {"up": "true", "down": "false"}
    assert 'name="rating" value="none" class="thumb" data-rating="up"' in page  # toggles off

    r = api.client.post(url, data={"correction": "  Paris.  ", "csrf_token": token})
    assert r.status_code == 200 and "feedback is saved" in r.text
    assert _feedback(api, admin, turn)["rating"] == "up"  # the rating is kept
    assert _feedback(api, admin, turn)["correction"] == "Paris."
    page = api.client.get(f"/chat/{thread}").text
    assert "Your better answer ✓" in page and ">Paris.</textarea>" in page

    # What feedback.js does: the same forms with Accept: application/json.
    headers = {**JSON, "X-CSRF-Token": token}
    r = api.client.post(url, data={"rating": "none"}, headers=headers)
    assert r.json() == {"turn_id": turn, "feedback": {"rating": None, "correction": "Paris."}}
    r = api.client.post(url, data={"correction": " "}, headers=headers)
    assert r.json() == {"turn_id": turn, "feedback": None}  # nothing left: removed
    assert _feedback(api, admin, turn) is None
    r = api.client.post(url, data={"rating": "down"}, headers=headers)
    assert r.json()["feedback"] == {"rating": "down", "correction": None}
    r = api.client.post(url, data={"correction": "x" * 8001}, headers=headers)
    assert r.status_code == 422 and "correction: at most 8000" in r.json()["detail"]
    assert api.client.post(url, data={"rating": "up"}, headers=JSON).status_code == 403  # CSRF


def test_another_users_answer_cannot_be_rated_from_the_console(api: Api) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    turn = _turn(api, bob, "bob's question")["turn_id"]
    login(api.client)  # the admin
    token = csrf(api.client, "/chat")
    r = api.client.post(f"/chat/turns/{turn}/feedback", data={"rating": "up", "csrf_token": token})
    assert r.status_code == 404 and f"no turn {turn}" in r.text
    r = api.client.post(
        f"/chat/turns/{turn}/feedback",
        data={"rating": "up"},
        headers={**JSON, "X-CSRF-Token": token},
    )
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert _feedback(api, bob, turn) is None


def test_training_consent_checkbox_on_the_account_page(api: Api) -> None:
    admin = api.setup_admin()
    login(api.client)
    page = api.client.get("/account").text
    assert "Allow my conversations to train the model" in page
    assert not re.search(r'name="allow_training" value="true"[^>]*checked', page)
    assert "the server's default (not allowed) applies" in page
    token = csrf(api.client, "/account")
    r = api.client.post("/account/training", data={"allow_training": "true", "csrf_token": token})
    assert r.status_code == 200 and "may now be used to train" in r.text
    assert re.search(r'name="allow_training" value="true"[^>]*checked', r.text)
    body = api.client.get("/api/v1/profile", headers=admin).json()
    assert body["allow_training"] is True and body["allow_training_effective"] is True
    r = api.client.post("/account/training", data={"csrf_token": token})  # unticked
    assert "will not be used" in r.text
    assert api.client.get("/api/v1/profile", headers=admin).json()["allow_training"] is False
    assert api.client.post("/account/training", data={"allow_training": "true"}).status_code == 403
