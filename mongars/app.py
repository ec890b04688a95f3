"""create_app(settings) and the lifespan that builds and disposes every resource."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from mongars import __version__
from mongars.adapters.endpoints import router as adapters_router
from mongars.adapters.setup import start_adapters
from mongars.apikeys.endpoints import router as apikeys_router
from mongars.auth.endpoints import router as auth_router
from mongars.auth.ratelimit import LoginLimiter, UserLimits
from mongars.auth.repository import UserRepository
from mongars.body_limit import BodyLimitMiddleware
from mongars.conversation.endpoints import router as conversation_router
from mongars.conversation.generations import GenerationHub
from mongars.db import migrate
from mongars.db.engine import create_engine, create_session_factory, ping, unit_of_work
from mongars.deps import RuntimeDep
from mongars.errors import install_error_handlers
from mongars.evolution.endpoints import router as evolution_router
from mongars.evolution.service import EvolutionEngine
from mongars.feedback.endpoints import router as feedback_router
from mongars.http_security import add_http_security
from mongars.llm.base import LLMProvider
from mongars.llm.factory import create_provider
from mongars.media.captioning import load_caption_contributor
from mongars.media.endpoints import router as media_router
from mongars.memory.embeddings import Embedder
from mongars.memory.endpoints import router as memory_router
from mongars.memory.fact_endpoints import router as facts_router
from mongars.memory.setup import start_memory
from mongars.models.endpoints import router as models_router
from mongars.observability.metrics import create_metrics
from mongars.observability.middleware import MetricsMiddleware
from mongars.offline import allowed_hosts, guard, quiet_libraries
from mongars.openai_api.endpoints import render_error as render_openai_error
from mongars.openai_api.endpoints import router as openai_router
from mongars.openapi import install_openapi
from mongars.peers.endpoints import router as peers_router
from mongars.peers.setup import start_peers
from mongars.persona.contributor import PersonaContributor
from mongars.persona.endpoints import router as persona_router
from mongars.persona.service import PersonaService
from mongars.realtime.bus import create_bus
from mongars.realtime.endpoints import router as realtime_router
from mongars.research.endpoints import router as documents_router
from mongars.research.setup import start_documents
from mongars.runtime import Runtime
from mongars.scheduler.endpoints import router as jobs_router
from mongars.scheduler.middleware import ActivityMiddleware
from mongars.scheduler.setup import start_scheduler
from mongars.secrets import SecretsRefresher, resolve_settings
from mongars.settings import Settings, ensure_secret_key
from mongars.threads.endpoints import router as threads_router
from mongars.training.endpoints import router as training_router
from mongars.training.setup import start_training
from mongars.web.adapters_endpoints import router as web_adapters_router
from mongars.web.admin_endpoints import router as web_admin_router
from mongars.web.endpoints import router as web_router
from mongars.web.evolution_endpoints import router as web_evolution_router
from mongars.web.feedback_endpoints import router as web_feedback_router
from mongars.web.jobs_endpoints import router as web_jobs_router
from mongars.web.memory_endpoints import router as web_memory_router
from mongars.web.peers_endpoints import router as web_peers_router
from mongars.web.render import STATIC_DIR
from mongars.web.training_endpoints import router as web_training_router

log = logging.getLogger("mongars")


def create_app(
    settings: Settings | None = None,
    llm: LLMProvider | None = None,
    embedder: Embedder | None = None,
) -> FastAPI:
    """Build the app. ``llm`` overrides the provider chosen by settings and ``embedder``
    shares an already loaded embedding model (tests, benchmarks)."""
    quiet_libraries()  # before the model, embedding and ONNX libraries load
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as offline:
            if settings.offline:  # MONGARS_OFFLINE: outbound sockets refused while we run
                offline.enter_context(guard(allowed_hosts(settings)))
            runtime = await build_runtime(settings, llm, embedder)
            app.state.runtime = runtime
            try:
                yield
            finally:
                await dispose_runtime(runtime)

    app = FastAPI(
        title="monGARS",
        version=__version__,
        description="Privacy-first, self-hosted AI assistant server.",
        lifespan=lifespan,
    )
    body_limit = settings.max_body_bytes
    if settings.caption_model:  # room for a base64 image of the allowed size
        body_limit = max(body_limit, settings.caption_max_bytes * 4 // 3 + 64 * 1024)
    # Document uploads have their own limit (multipart framing on top of the file).
    upload_limit = settings.research.max_upload_bytes + 64 * 1024
    uploads = {"/api/v1/documents": upload_limit, "/documents/upload": upload_limit}
    app.add_middleware(BodyLimitMiddleware, max_bytes=body_limit, routes=uploads)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(ActivityMiddleware)  # the idle gate's user activity
    add_http_security(app, settings.cors)  # last: its headers on every response
    install_error_handlers(app, {"/v1/": render_openai_error})
    install_openapi(app)  # the error bodies as errors.py sends them
    app.include_router(auth_router)
    app.include_router(conversation_router)
    app.include_router(threads_router)
    app.include_router(feedback_router)
    app.include_router(apikeys_router)
    app.include_router(openai_router)
    app.include_router(realtime_router)
    app.include_router(facts_router)  # before the memory router: /memory/{id} would shadow it
    app.include_router(memory_router)
    app.include_router(persona_router)
    app.include_router(media_router)
    app.include_router(documents_router)
    app.include_router(training_router)
    app.include_router(jobs_router)
    app.include_router(models_router)
    app.include_router(adapters_router)
    app.include_router(evolution_router)
    app.include_router(peers_router)
    # Operator console (server-rendered pages + vendored static assets).
    app.include_router(web_router)
    app.include_router(web_memory_router)
    app.include_router(web_feedback_router)
    app.include_router(web_admin_router)
    app.include_router(web_training_router)
    app.include_router(web_jobs_router)
    app.include_router(web_evolution_router)
    app.include_router(web_adapters_router)
    app.include_router(web_peers_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_operational_routes(app)
    return app


async def build_runtime(
    settings: Settings, llm: LLMProvider | None = None, embedder: Embedder | None = None
) -> Runtime:
    # MONGARS_SECRETS__BACKEND=vault: the secrets from Vault, or SecretsUnavailable.
    resolved = await asyncio.to_thread(resolve_settings, settings)
    if resolved is not None:
        settings = resolved.settings
    secret = ensure_secret_key(settings)
    if settings.db_auto_upgrade:
        await asyncio.to_thread(migrate.upgrade, settings.resolved_database_url)
    engine = create_engine(settings.resolved_database_url)
    sessions = create_session_factory(engine)
    metrics = create_metrics()
    llm = llm or create_provider(settings, metrics)
    bus = create_bus(settings.redis_url)
    try:
        await bus.start()
        await llm.start()
        async with unit_of_work(sessions) as session:
            users = await UserRepository(session).count()
    except BaseException:
        await llm.close()
        await bus.close()
        await engine.dispose()
        metrics.shutdown()
        raise
    runtime = Runtime(
        settings=settings,
        secret=secret,
        engine=engine,
        sessions=sessions,
        llm=llm,
        metrics=metrics,
        login_limiter=LoginLimiter(
            settings.auth.login_limit_per_account, settings.auth.login_limit_per_address
        ),
        rate_limits=UserLimits(settings.rate_limits),
        bus=bus,
    )
    runtime._hub = GenerationHub(runtime, bus)
    if settings.persona.enabled:
        runtime.contributors.append(PersonaContributor(PersonaService(sessions, settings)))
    if settings.caption_model:  # image input: load the BLIP model now, in a thread
        try:
            runtime.contributors.append(
                await load_caption_contributor(settings.caption_model, settings.caption_max_bytes)
            )
        except BaseException:
            await dispose_runtime(runtime)
            raise
    if settings.memory.enabled:
        runtime.memory = await start_memory(runtime, embedder)
    if settings.research.documents:
        try:
            runtime.documents = await start_documents(runtime, embedder)
        except BaseException:
            await dispose_runtime(runtime)
            raise
    runtime.training = await start_training(
        sessions, settings, secret, metrics, busy=lambda: runtime.generating > 0
    )
    runtime.busy_hooks.append(runtime.training.supervisor.freeze)
    runtime.adapters = await start_adapters(runtime)
    runtime.evolution = EvolutionEngine(runtime)
    if settings.peers.enabled:  # off by default: nothing leaves this node
        runtime.peers = await start_peers(runtime)
    if settings.scheduler.enabled:  # last: its jobs use everything above
        try:
            runtime.scheduler = await start_scheduler(runtime)
        except BaseException:
            await dispose_runtime(runtime)
            raise
    if resolved is not None:  # re-read on a timer; new connections use its password
        runtime.secrets = SecretsRefresher(runtime, resolved)
        runtime.secrets.attach(engine)
        runtime.secrets.start()
    if users == 0:
        runtime.setup_token = secrets.token_urlsafe(24)
        log.warning(
            "No users yet. Create the first admin with this one-time setup token:\n\n"
            "    %s\n\n(POST /api/v1/setup {token, username, password}, "
            "or `mongars users create --admin NAME`)",
            runtime.setup_token,
        )
    log.info("monGARS ready: model %s via %s", llm.model_id, llm.name)
    return runtime


async def dispose_runtime(runtime: Runtime) -> None:
    if runtime.secrets is not None:
        await runtime.secrets.stop()
    if runtime.scheduler is not None:  # first: its jobs use everything below
        await runtime.scheduler.stop()
        runtime.scheduler = None
    await runtime.hub.close()
    if runtime.training is not None:
        await runtime.training.stop()
    if runtime.documents is not None:
        await runtime.documents.stop()
    if runtime.memory is not None:
        await runtime.memory.stop()
    await runtime.bus.close()
    await runtime.llm.close()
    await runtime.engine.dispose()
    runtime.metrics.shutdown()


def _add_operational_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    async def ready(runtime: RuntimeDep) -> JSONResponse:
        checks = {"database": await ping(runtime.engine), "model": await runtime.llm.ready()}
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics(runtime: RuntimeDep) -> Response:
        return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4")
