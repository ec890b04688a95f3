"""`mongars docs ingest | list | delete | search`: documents from the command line.

The CLI works on the configured database directly (like `mongars users`), as the
operator: ``--shared`` writes a collection every user can read, ``--user NAME``
one account's own collection.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mongars.secrets.cli import load_settings
from mongars.settings import Settings

if TYPE_CHECKING:  # the CLI imports the heavy modules only in the command that runs
    from mongars.research.service import Actor, DocumentService

docs_app = typer.Typer(
    help="Documents for retrieval and citations (docs/research.md).", no_args_is_help=True
)
console = Console(stderr=True)
T = TypeVar("T")
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "dist",
        "build",
        ".tox",
    }
)


@dataclass
class IngestReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    chunks: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def walk(root: Path) -> Iterator[Path]:
    """Files under ``root`` (or ``root`` itself), hidden and build folders left out, sorted."""
    if root.is_file():
        yield root
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder) / name


async def _with_service(settings: Settings, fn: Callable[[DocumentService], Awaitable[T]]) -> T:
    from mongars.db.engine import create_engine, create_session_factory
    from mongars.memory.embeddings import embedder_from
    from mongars.research.service import DocumentService

    engine = create_engine(settings.resolved_database_url)
    # A bulk ingest from the CLI has the machine to itself: embed on every core.
    threads = max(settings.memory.embed_threads, os.cpu_count() or 1)
    embedder = embedder_from(settings, threads=threads, bulk=True)
    try:
        await embedder.start()
        service = DocumentService(create_session_factory(engine), embedder, settings.research)
        return await fn(service)
    finally:
        embedder.close()
        await engine.dispose()


async def _actor(settings: Settings, username: str | None, shared: bool) -> Actor:
    from mongars.auth.repository import UserRepository
    from mongars.db.engine import create_engine, create_session_factory, unit_of_work
    from mongars.research.service import Actor

    if username is None:
        if not shared:
            raise typer.BadParameter("give --user NAME (their collection) or --shared")
        return Actor(0, is_admin=True)  # the operator
    engine = create_engine(settings.resolved_database_url)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            user = await UserRepository(session).by_username(username)
    finally:
        await engine.dispose()
    if user is None:
        raise typer.BadParameter(f"no account named {username!r}")
    return Actor(user.id, is_admin=True)


def listing(root: Path) -> list[tuple[str, Path]]:
    """(path inside the collection, file) for every file to ingest under ``root``."""
    base = root if root.is_dir() else root.parent
    return [(path.relative_to(base).as_posix(), path) for path in walk(root)]


async def ingest_paths(
    service: DocumentService,
    actor: Actor,
    files: list[tuple[str, Path]],
    collection: str,
    shared: bool,
) -> IngestReport:
    from mongars.errors import DomainError

    report = IngestReport()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"ingesting into {collection!r}", total=len(files))
        for relative, path in files:
            try:
                size = path.stat().st_size
                if size > service.settings.max_upload_bytes:
                    raise DomainError(
                        f"{size:,} bytes is over the "
                        f"{service.settings.max_upload_bytes:,}-byte limit"
                    )
                result = await service.ingest(
                    actor, collection, relative, path.read_bytes(), shared=shared
                )
            except (DomainError, OSError) as exc:
                report.skipped.append((relative, getattr(exc, "detail", None) or str(exc)))
            else:
                setattr(report, result.status, getattr(report, result.status) + 1)
                if result.status != "unchanged":
                    report.chunks += result.document.chunks
            progress.advance(task)
    return report


def _run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def _upgraded() -> Settings:
    from mongars.db import migrate

    settings = load_settings()
    migrate.upgrade(settings.resolved_database_url)
    return settings


@docs_app.command("ingest")
def docs_ingest(
    path: Annotated[Path, typer.Argument(exists=True, help="A file, a folder or a repository")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection name")],
    user: Annotated[str | None, typer.Option("--user", help="Owner account")] = None,
    shared: Annotated[bool, typer.Option("--shared", help="Readable by every user")] = False,
) -> None:
    """Ingest PDF, Markdown, HTML, text and source files; unchanged files are skipped,
    changed ones replaced; files that cannot be read are listed, never half-ingested."""
    from mongars.research.schemas import CollectionCreate

    try:
        CollectionCreate(name=collection)
    except ValueError:
        raise typer.BadParameter("collection: letters, digits, . / _ @ + - and spaces") from None
    settings = _upgraded()
    actor = _run(_actor(settings, user, shared))
    report = _run(
        _with_service(
            settings,
            lambda service: ingest_paths(service, actor, listing(path), collection, shared),
        )
    )
    console.print(
        f"{report.created} new, {report.updated} replaced, {report.unchanged} unchanged, "
        f"{report.chunks} chunks indexed, {len(report.skipped)} skipped"
    )
    for name, reason in report.skipped:
        console.print(f"  [yellow]skipped[/yellow] {name}: {reason}")


@docs_app.command("list")
def docs_list(
    user: Annotated[str | None, typer.Option("--user", help="Their own and shared ones")] = None,
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
) -> None:
    """Documents (newest first) with their collection, format, pages and chunks."""
    settings = _upgraded()
    actor = _run(_actor(settings, user, shared=True))

    async def go(service: DocumentService) -> None:
        table = Table("id", "collection", "path", "format", "pages", "chunks", "updated")
        cursor: int | None = None
        while True:
            page = await service.documents(actor, collection, cursor, 200)
            for d in page.items:
                table.add_row(
                    str(d.id),
                    d.collection + (" (shared)" if d.shared else ""),
                    d.path,
                    d.format,
                    str(d.pages),
                    str(d.chunks),
                    d.updated_at.date().isoformat(),
                )
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        Console().print(table)

    _run(_with_service(settings, go))


@docs_app.command("delete")
def docs_delete(
    document_id: Annotated[int, typer.Argument(help="Document id (see `mongars docs list`)")],
    user: Annotated[str | None, typer.Option("--user")] = None,
) -> None:
    """Delete one document and its chunks."""
    from mongars.errors import DomainError

    settings = _upgraded()
    actor = _run(_actor(settings, user, shared=True))
    try:
        _run(_with_service(settings, lambda s: s.delete_document(actor, document_id)))
    except DomainError as exc:
        console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from None
    console.print(f"deleted document {document_id}")
