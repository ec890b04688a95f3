"""The Serve deployment: one replica holds one embedded model through the very class the
server uses in-process (:class:`~mongars.llm.llamacpp.LlamaCppProvider`: same files,
chat template, stop rules, log-probabilities and token counts), behind HTTP.

Import this module only after :func:`mongars.serving.cluster.ray_environment` (Ray reads
its environment at import). ``serve build mongars.serving.app:builder`` writes a Serve
config file for operators; ``mongars ray serve|deploy`` deploy it from settings."""

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from ray import serve

from mongars.errors import DomainError
from mongars.llm.llamacpp import LlamaCppProvider
from mongars.serving import protocol
from mongars.serving.follower import AdapterFollower

api = FastAPI(title="monGARS Serve")
DEPLOYMENT = "MonGARSLLM"
APP_NAME = "mongars"
REPLICAS_TIMEOUT_S = 2.0


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError as exc:
        raise HTTPException(422, "the body must be JSON") from exc
    if not isinstance(data, dict):
        raise HTTPException(422, "the body must be a JSON object")
    return data


async def _replicas_now() -> int | None:
    """The controller answers through a blocking call: off the replica's event loop,
    and not for long (unknown is fine). Defined above the deployment: Serve captures
    the names its methods use when the class is decorated."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(_running_replicas), REPLICAS_TIMEOUT_S)
    except TimeoutError:
        return None


def _running_replicas() -> int | None:
    """Replicas of this deployment running now, as Serve's controller reports them."""
    try:
        status = serve.status().applications[APP_NAME].deployments[DEPLOYMENT]
    except Exception:  # an older or unreachable controller: unknown, not an error
        return None
    # Keys are ReplicaState members or their names, depending on the Serve version.
    return sum(
        n
        for state, n in status.replica_states.items()
        if str(getattr(state, "value", state)) == "RUNNING"
    )


@serve.deployment(name=DEPLOYMENT)
@serve.ingress(api)
class LLMServer:
    """``user_config``: ``{model_path, embedded_model, data_dir, context_window,
    threads}``; a change of model reloads it in place (``reconfigure``).

    Adapters never redeploy anything (that would restart replicas): a request names
    its adapter (``params.adapter``, a sha256, null for the base model), and one that
    does not gets the active version of ``<data_dir>/adapters/adapter_manifest.json``,
    which each replica reads at start and watches (``AdapterFollower``), swapping
    in place as soon as it changes."""

    def __init__(self) -> None:
        self.provider: LlamaCppProvider | None = None
        self.config: dict[str, Any] = {}
        self.follower: AdapterFollower | None = None

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        model_keys = ("model_path", "embedded_model", "data_dir", "context_window", "threads")
        wanted = {k: user_config.get(k) for k in model_keys}
        if self.provider is None or wanted != {k: self.config.get(k) for k in model_keys}:
            provider = LlamaCppProvider(
                model_path=str(wanted["model_path"] or ""),
                data_dir=Path(str(wanted["data_dir"] or "data")),
                context_window=int(wanted["context_window"] or 4096),
                threads=int(wanted["threads"] or 0),
                embedded_model=str(wanted["embedded_model"] or "smollm2-135m-instruct"),
            )
            await provider.start()
            old, self.provider = self.provider, provider
            if old is not None:
                await old.close()
            if self.follower is not None:
                self.follower.stop()
            self.follower = AdapterFollower(provider, Path(str(wanted["data_dir"] or "data")))
            await self.follower.check()
        self.config = dict(user_config)

    def _provider(self) -> LlamaCppProvider:
        if self.provider is None:
            raise HTTPException(503, "the model is not loaded yet")
        return self.provider

    @api.get("/v1/info")
    async def info(self) -> dict[str, Any]:
        p = self._provider()
        context = serve.get_replica_context()
        return {
            "model_id": p.model_id,
            "context_window": p.context_window,
            "prompt_format": p.prompt_format,
            "prompt_format_note": p.prompt_format_note,
            "prompt_overhead": await p.prompt_overhead(),
            "replica": context.replica_id.unique_id,
            "pid": os.getpid(),
            "replicas": await _replicas_now(),
            "adapter": p.lora.applied,
            "default_adapter": self.follower.current if self.follower else None,
        }

    @api.post("/v1/tokens")
    async def tokens(self, request: Request) -> dict[str, Any]:
        p = self._provider()
        try:
            messages = protocol.messages_from((await _body(request)).get("messages"))
        except protocol.ProtocolError as exc:
            raise HTTPException(422, str(exc)) from exc
        try:
            return {
                "prompt_tokens": await p.prompt_tokens(messages),
                "message_tokens": await p.message_tokens(messages),
            }
        except DomainError as exc:
            raise HTTPException(422, exc.detail) from exc

    @api.post("/v1/stream")
    async def stream(self, request: Request) -> StreamingResponse:
        p = self._provider()
        body = await _body(request)
        try:
            messages = protocol.messages_from(body.get("messages"))
            params = protocol.params_from(body.get("params"))
        except protocol.ProtocolError as exc:
            raise HTTPException(422, str(exc)) from exc
        if "adapter" not in body["params"] and self.follower is not None:
            params = replace(params, adapter=await self.follower.check())

        async def lines() -> AsyncIterator[str]:
            try:
                async for item in p.stream(messages, params):
                    yield protocol.item_line(item)
            except DomainError as exc:
                yield protocol.error_line(exc.detail)

        return StreamingResponse(lines(), media_type="application/x-ndjson")


def deployment_options(cfg: dict[str, Any]) -> dict[str, Any]:
    """Serve options from the ``ray`` settings (autoscaling, CPUs per replica)."""
    return {
        "autoscaling_config": {
            "min_replicas": int(cfg["min_replicas"]),
            "max_replicas": int(cfg["max_replicas"]),
            "target_ongoing_requests": float(cfg["target_ongoing_requests"]),
            "upscale_delay_s": float(cfg.get("upscale_delay_s", 2.0)),
            "downscale_delay_s": float(cfg.get("downscale_delay_s", 60.0)),
        },
        "max_ongoing_requests": int(cfg.get("max_ongoing_requests", 8)),
        "ray_actor_options": {"num_cpus": float(cfg["replica_cpus"])},
        "health_check_period_s": 2.0,
        "health_check_timeout_s": 30.0,
    }


def builder(args: dict[str, Any]) -> Any:
    """The application from a dict (``serve build``/``serve run`` arguments, or settings):
    ``{user_config: {...}, deployment: {...}}``."""
    user_config = args.get("user_config") or {}
    if isinstance(user_config, str):
        user_config = json.loads(user_config)
    options = deployment_options(args.get("deployment") or DEFAULTS)
    deployment: Any = LLMServer  # a Serve Deployment (the decorator's), not the class
    return deployment.options(user_config=user_config, **options).bind()


DEFAULTS = {
    "min_replicas": 1,
    "max_replicas": 2,
    "target_ongoing_requests": 2,
    "replica_cpus": 1.0,
}
