"""`mongars train`, `mongars datasets curate | list | show | export | delete` and
`mongars mlflow ui`: the learning loop from the command line, on the configured
database directly (like `mongars users`), through the same services as the API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mongars.secrets.cli import load_settings

if TYPE_CHECKING:  # the CLI imports the heavy modules only in the command that runs
    from mongars.training.setup import TrainingSystem

console = Console(stderr=True)
out = Console()
T = TypeVar("T")

mlflow_app = typer.Typer(help="Training runs in MLflow (docs/training.md).", no_args_is_help=True)


def with_training(fn: Callable[[TrainingSystem], Awaitable[T]]) -> T:
    """Run ``fn(training_system)`` against the configured database; domain errors
    become a red message and exit status 1."""
    from mongars.db import migrate
    from mongars.db.engine import create_engine, create_session_factory
    from mongars.errors import DomainError
    from mongars.offline import quiet_libraries
    from mongars.settings import ensure_secret_key
    from mongars.training.setup import build_training

    quiet_libraries()
    settings = load_settings()
    migrate.upgrade(settings.resolved_database_url)

    async def go() -> T:
        from mongars.adapters.registry import AdapterRegistry

        engine = create_engine(settings.resolved_database_url)
        sessions = create_session_factory(engine)
        system = build_training(sessions, settings, ensure_secret_key(settings))
        # A run completed here registers its adapter as a candidate, as in the server.
        system.supervisor.on_completed.append(AdapterRegistry(sessions, settings).register_run)
        try:
            return await fn(system)
        finally:
            await system.stop()
            await engine.dispose()

    try:
        return asyncio.run(go())
    except DomainError as exc:
        console.print(f"[red]error:[/red] {escape(exc.detail)}")
        raise typer.Exit(code=1) from None


def cli_actor() -> str:
    """The audit log's actor for changes made here (as `mongars users` does)."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def curate(
    min_confidence: Annotated[
        float | None, typer.Option(help="Unrated answers need this confidence")
    ] = None,
    no_unrated: Annotated[bool, typer.Option("--no-unrated", help="Rated answers only")] = False,
    limit: Annotated[int | None, typer.Option(help="Newest turns considered")] = None,
    min_records: Annotated[int | None, typer.Option(help="Fewer: quarantined")] = None,
) -> None:
    """Curate a dataset from consenting users' rated, corrected and confident answers."""
    from mongars.training.schemas import DatasetPolicy

    policy = DatasetPolicy(
        min_confidence=min_confidence,
        include_unrated=False if no_unrated else None,
        limit=limit,
        min_records=min_records,
    )
    dataset = with_training(lambda s: s.datasets.curate(policy, None, cli_actor()))
    _print_dataset(dataset.model_dump(mode="json"))


def list_datasets() -> None:
    """Datasets, newest first, with their governance verdict."""

    async def all_pages(system: TrainingSystem) -> list[Any]:
        items, cursor = [], None
        while True:
            page = await system.datasets.page(cursor, 200)
            items.extend(page.items)
            if page.next_cursor is None:
                return items
            cursor = page.next_cursor

    table = Table("id", "status", "records", "held out", "flagged", "created")
    for d in with_training(all_pages):
        table.add_row(
            d.id,
            d.status,
            str(d.records),
            str(d.held_out),
            f"{d.forgotten_records} forgotten" if d.flagged else "",
            d.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(table)


def show(dataset_id: str) -> None:
    """One dataset: verdict, violations, policy, checksum."""
    dataset = with_training(lambda s: s.datasets.get(dataset_id))
    _print_dataset(dataset.model_dump(mode="json"))


def export(
    dataset_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the JSONL")],
) -> None:
    """Copy a dataset's records (JSONL, chat messages) to a file."""
    import shutil

    path = with_training(lambda s: s.datasets.export_path(dataset_id))
    shutil.copyfile(path, output)
    console.print(f"wrote {output}")


def delete(
    dataset_id: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False
) -> None:
    """Delete a dataset (its files and catalogue row)."""
    if not yes:
        typer.confirm(f"delete dataset {dataset_id}?", abort=True)
    with_training(lambda s: s.datasets.delete(dataset_id, cli_actor()))
    console.print(f"deleted {dataset_id}")


def register_dataset_commands(app: typer.Typer) -> None:
    app.command("curate")(curate)
    app.command("list")(list_datasets)
    app.command("show")(show)
    app.command("export")(export)
    app.command("delete")(delete)


def train(
    dataset: Annotated[str | None, typer.Option("--dataset", help="Dataset id")] = None,
    objective: Annotated[str, typer.Option(help="sft | mntp")] = "sft",
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1)] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="Resume this run id")] = None,
) -> None:
    """Train a LoRA adapter on a dataset (or resume a run), with a progress bar.
    Ctrl-C pauses at the next step (a checkpoint is written): --resume RUN continues."""
    from mongars.training.schemas import RunCreate

    if (dataset is None) == (resume is None):
        console.print("[red]error:[/red] give --dataset ID, or --resume RUN")
        raise typer.Exit(code=2)
    if objective not in ("sft", "mntp"):
        console.print("[red]error:[/red] --objective is sft or mntp")
        raise typer.Exit(code=2)

    async def go(system: TrainingSystem) -> Any:
        if resume is not None:
            run = await system.runs.resume(resume, cli_actor())
        else:
            assert dataset is not None
            body = RunCreate(dataset_id=dataset, objective=objective, max_steps=max_steps)
            run = await system.runs.start(body, None, cli_actor())
        console.print(f"run {run.id} ({run.objective}) on dataset {run.dataset_id}")
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("training", total=run.total_steps or None, loss="-")

            def on_event(event: dict[str, Any]) -> None:
                kind = event.get("event")
                if kind in ("start", "step"):
                    loss = event.get("loss")
                    bar.update(
                        task,
                        completed=event.get("step", 0),
                        total=event.get("total_steps") or None,
                        loss=f"{loss:.3f}" if isinstance(loss, float) else "-",
                    )
                elif kind == "phase":
                    bar.update(task, description=str(event.get("name", "")))

            try:
                await system.supervisor.wait(run.id, on_event)
            except asyncio.CancelledError:  # Ctrl-C: pause cleanly, then report
                console.print("pausing (writing a checkpoint)...")
                await system.runs.pause(run.id, cli_actor())
                await system.supervisor.wait(run.id, on_event)
        return await system.runs.get(run.id)

    result = with_training(go)
    summary = {
        k: result.metrics.get(k)
        for k in ("perplexity_base", "perplexity_adapter", "forgetting_delta", "parity_ok")
        if k in result.metrics
    }
    console.print(f"run {result.id}: {result.status} at step {result.step}/{result.total_steps}")
    if summary:
        out.print_json(json.dumps(summary))
    if result.status == "completed" and result.objective == "sft":
        console.print("its adapter is a candidate now: mongars adapters list")
    if result.status == "paused":
        console.print(f"resume with: mongars train --resume {result.id}")
    if result.status in ("failed", "cancelled"):
        console.print(f"[red]{result.error or result.status}[/red]")
        raise typer.Exit(code=1)


@mlflow_app.command("ui")
def mlflow_ui(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 5000,
) -> None:
    """Open MLflow's UI on the training runs (bound to 127.0.0.1 only)."""
    from mongars import extras
    from mongars.offline import quiet_libraries

    if gone := extras.missing(["mlflow"]):
        console.print(
            f"[red]error:[/red] MLflow is not installed ({', '.join(gone)}): "
            "pip install 'mongars\\[training]'"
        )
        raise typer.Exit(code=1)

    quiet_libraries()
    settings = load_settings()
    root = settings.data_dir.resolve() / "mlflow"
    root.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable, "-m", "mlflow", "ui",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--default-artifact-root", (root / "artifacts").as_uri(),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    console.print(f"MLflow on http://127.0.0.1:{port} (Ctrl-C stops it)")
    os.execv(sys.executable, args)  # noqa: S606 (replaces this process, no shell)


def _print_dataset(d: dict[str, Any]) -> None:
    colour = "green" if d["status"] == "approved" else "red"
    out.print(f"dataset {d['id']}: [{colour}]{d['status']}[/{colour}]")
    out.print(f"  records {d['records']} (held out {d['held_out']}), sha256 {d['sha256']}")
    for v in d["violations"]:
        out.print(f"  [red]{v['code']}[/red]: {v['detail']}")
    if d.get("flagged"):
        out.print(f"  [yellow]flagged[/yellow]: {d['forgotten_records']} forgotten record(s)")
