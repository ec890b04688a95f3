"""The Ray Serve application for real: 2 replicas of the embedded model on a local Ray
(inside a network namespace with only loopback), the ``ray`` provider through the API,
a replica killed during a burst of streamed chats, and the replicas following
``adapter_manifest.json`` to a real (tiny, trained here) LoRA adapter and back."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.model, pytest.mark.ray, pytest.mark.timeout(1200)]
ROOT = Path(__file__).resolve().parents[2]
UNSHARE = ["unshare", "--net", sys.executable, "-m", "tests.serving.ray_session"]


FOLLOW_S = 5.0  # manifest written -> every replica serves it


@pytest.fixture(scope="module")
def session(
    tmp_path_factory: pytest.TempPathFactory, model_path: Path, tiny_adapter: Path
) -> dict[str, Any]:
    pytest.importorskip("ray", reason="pip install 'mongars[ray]' (make test installs it)")
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (make system-deps installs it)")
    report = tmp_path_factory.mktemp("ray") / "report.json"
    run = subprocess.run(
        [*UNSHARE, str(report), str(model_path), str(tiny_adapter)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    assert run.returncode == 0, (run.stderr[-4000:], data.get("ray_log_tail", ""))
    return dict(data)


def test_two_replicas_serve_the_embedded_model_exactly(session: dict[str, Any]) -> None:
    assert session["replicas"] == 2
    c = session["compare"]
    assert c["prompt_format"] == "the GGUF's chat template"
    # Same code, same model: the same token counts and the same greedy answer.
    assert c["tokens_ray"] == c["tokens_embedded"] > 0
    assert c["message_tokens_equal"] and c["overhead_equal"]
    # The same text, whatever it says: SmolLM2-135M's greedy answer to this question
    # depends on the CPU's llama.cpp kernels ("Paris" on some, nonsense in French on an
    # AVX2-only AMD EPYC), and the point here is that the replica computes exactly that.
    assert c["text_ray"] == c["text_embedded"] and c["text_ray"].strip()
    assert c["logprob_max_diff"] < 1e-3
    assert c["completion_tokens"][0] == c["completion_tokens"][1]
    assert session["bad_request_status"] == 422


def test_chat_through_the_api_with_provider_ray(session: dict[str, Any]) -> None:
    assert session["chat_status"] == 200
    chat = session["chat"]
    assert chat["response"].strip() and chat["finish_reason"] == "stop"
    assert chat["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    # Per-token log-probabilities travel from the replica: confidence works the same.
    assert chat["confidence"] is not None and 0 < chat["confidence"] <= 1
    assert chat["usage"]["prompt_tokens"] > 0 and chat["usage"]["completion_tokens"] > 0


def test_a_replica_killed_fails_only_requests_that_had_streamed(session: dict[str, Any]) -> None:
    burst = session["burst"]
    assert len(burst) == 8
    failed = [r for r in burst if r["end"] != "done"]
    why = (failed, session.get("api_log_tail", ""))  # the API's log shows breaker changes
    # Nothing failed that had not streamed yet: those were retried on the other replica.
    assert all(r["deltas"] > 0 for r in failed), why
    assert all(r["end"] == "error" for r in failed), why
    assert len(failed) <= 2, why
    # Failed answers are not stored; the others are.
    stored = session["stored_queries"]
    for r in burst:
        question = f"Tell me a fact about the number {r['i']}."
        assert (question in stored) == (r["end"] == "done"), (r, stored)
    # Ray Serve replaced the killed replica.
    assert len(session["after_kill_pids"]) == 2


def test_ray_metrics_are_on_the_api_process(session: dict[str, Any]) -> None:
    metrics = session["metrics"]
    ok = [x for x in metrics.splitlines() if x.startswith("llm_requests_total{")]
    assert any('provider="ray"' in x and 'outcome="ok"' in x for x in ok), ok
    assert "llm_request_duration" in metrics
    assert "llm_breaker_state" in metrics
    replicas = [x for x in metrics.splitlines() if x.startswith("llm_replicas{")]
    assert replicas and replicas[0].endswith(" 2.0"), replicas


def test_both_replicas_follow_the_manifest_to_a_new_adapter(session: dict[str, Any]) -> None:
    a = session["adapter"]
    follow = a["follow"]
    # Both replicas (each pid seen on /v1/info) serve the new version within 5 s.
    assert follow["seconds"] is not None and follow["seconds"] <= FOLLOW_S, follow
    serving = [p for p, s in follow["pids"].items() if s["adapter"] == a["sha"]]
    assert len(serving) == 2, follow
    # The base model's greedy answer is one text, whichever replica gave it.
    assert len(a["base"]) == 1, a
    # Requests that name no adapter get the manifest's: never the base model's answer,
    # and the same answers as requests naming the adapter (see ANSWER_TOKENS for why
    # there can be two: a fresh prompt cache and a reused one).
    assert not set(a["default"]) & set(a["base"]), a
    assert not set(a["explicit_adapter"]) & set(a["base"]), a
    assert set(a["default"]) & set(a["explicit_adapter"]), a
    # `adapter: null` still asks for the base model.
    assert a["explicit_base"] == a["base"], a


def test_a_new_replica_serves_the_adapter_and_rollback_returns_to_base(
    session: dict[str, Any],
) -> None:
    a, r = session["adapter"], session["rollback"]
    # The replica Serve started in place of the killed one reads the manifest at start.
    assert len(r["new_pids"]) == 1, r
    new = r["new_replica"]
    assert new["seconds"] is not None, new
    assert new["pids"][str(r["new_pids"][0])]["default_adapter"] == a["sha"], new
    assert r["default_before"] and not set(r["default_before"]) & set(a["base"]), r
    # Manifest current None: both replicas back on the base model within 5 s.
    follow = r["follow"]
    assert follow["seconds"] is not None and follow["seconds"] <= FOLLOW_S, follow
    pids = {str(p) for p in session["after_kill_pids"]}
    assert pids <= {p for p, s in follow["pids"].items() if s["adapter"] is None}, follow
    assert r["default"] == a["base"], r
