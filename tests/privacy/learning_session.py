"""The learning loop and the idle jobs, as one admin drives them, for the egress session
(egress_session.py): training consent, chats with feedback, a curated dataset, a real
(tiny) LoRA run with its evaluation and MLflow tracking, the adapter approved and
activated, a chat through it, then every scheduler job run by hand."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

# Two conversations: the curated dataset trains on one and evaluates on the other.
QUESTIONS = ("What colour is the door in Verlaine?", "What colour is the door in Marrow?")
# The server's training knobs for this session (sizes only, not what is switched on):
# one real optimizer step; loading the model and evaluating it take the rest.
TINY_TRAINING = {
    "MONGARS_TRAINING__BATCH_SIZE": "1",
    "MONGARS_TRAINING__SEQ_LEN": "32",
    "MONGARS_TRAINING__MAX_STEPS": "1",
}
ENDED = ("succeeded", "failed", "cancelled", "yielded")


def _until(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {timeout:.0f} s: {value}")
        time.sleep(0.5)


def _ok(r: httpx.Response) -> Any:
    if r.status_code >= 400:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")
    return r.json()


def learning_session(base: str, password: str) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    seconds = facts["seconds"] = {}  # where the session's time goes (CI budget)
    start = time.monotonic()
    with httpx.Client(base_url=base, timeout=600) as http:
        token = _ok(http.post("/token", data={"username": "admin", "password": password}))
        http.headers["Authorization"] = f"Bearer {token['access_token']}"
        _ok(http.put("/api/v1/profile", json={"allow_training": True}))
        for i, question in enumerate(QUESTIONS):
            body = {"message": question, "session_id": f"learn-{i}"}
            turn = _ok(http.post("/api/v1/conversation/chat", json=body))["turn_id"]
            rating: dict[str, Any] = {"rating": "up"}
            if i == 1:
                rating = {"rating": "down", "correction": "The door in Marrow is green."}
            _ok(http.post(f"/api/v1/conversation/turns/{turn}/feedback", json=rating))
        policy = {"min_confidence": 0.0, "min_records": 1, "held_out_share": 0.5}
        seconds["chats"] = round(time.monotonic() - start)
        dataset = _ok(http.post("/api/v1/training/datasets", json={"policy": policy}))
        facts["dataset"] = dataset["status"]
        run = _ok(http.post("/api/v1/training/runs", json={"dataset_id": dataset["id"]}))
        run = _until(
            lambda: _ok(http.get(f"/api/v1/training/runs/{run['id']}")),
            lambda r: r["status"] in ("completed", "failed", "cancelled"),
            timeout=600,
        )
        seconds["training"] = round(time.monotonic() - start) - seconds["chats"]
        facts["training"] = run["status"] if run["status"] != "failed" else run["error"]
        facts["evaluated"] = run["perplexity_adapter"] is not None
        facts["tracked"] = run["mlflow_run_id"] is not None
        version = _ok(http.post("/api/v1/adapters/register", json={"run_id": run["id"]}))
        _ok(http.post(f"/api/v1/adapters/{version['id']}/approve", json={"note": "egress"}))
        _ok(http.post(f"/api/v1/adapters/{version['id']}/activate", json={}))
        answer = _ok(http.post("/api/v1/conversation/chat", json={"message": "Door colours?"}))
        facts["adapter_answer"] = answer["adapter_version"] == version["id"]
        jobs_start = time.monotonic()
        facts["jobs"] = run_every_job(http)
        seconds["jobs"] = round(time.monotonic() - jobs_start)
        seconds["total"] = round(time.monotonic() - start)
    return facts


def run_every_job(http: httpx.Client) -> dict[str, str]:
    """Each scheduler job, run by hand one after the other: name -> how it ended."""
    jobs = _ok(http.get("/api/v1/jobs"))["items"]
    ended: dict[str, str] = {}
    for job in jobs:
        name = job["name"]
        started = _ok(http.post(f"/api/v1/jobs/{name}/run"))

        def newest(name: str = name) -> dict[str, Any]:
            return dict(_ok(http.get(f"/api/v1/jobs/{name}/runs"))["items"][0])

        def ended_run(run: dict[str, Any], run_id: str = started["id"]) -> bool:
            return run["id"] == run_id and run["state"] in ENDED

        last = _until(newest, ended_run, timeout=600)
        ended[name] = last["state"] if last["state"] != "failed" else f"failed: {last['error']}"
    return ended
