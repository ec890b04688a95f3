"""`mongars evolution ...`: the evolution engine from the command line (docs/evolution.md).

It works on the database directly, like the API. Actions that schedule a job queue a
run that the server leading the scheduler picks up; a rollback moves the adapter
pointer, which every server process reads within seconds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from mongars.errors import DomainError
from mongars.secrets.cli import load_settings
from mongars.training.commands import cli_actor

if TYPE_CHECKING:
    from mongars.evolution.service import EvolutionEngine

evolution_app = typer.Typer(
    help="The evolution engine: diagnostics, decisions, approvals (docs/evolution.md).",
    no_args_is_help=True,
)
console = Console()
T = TypeVar("T")


@dataclass
class CliHost:
    """The parts of a Runtime the engine reads, without a model or memory system."""

    settings: Any
    sessions: Any
    adapters: Any
    scheduler: Any
    llm: Any = None
    memory: Any = None


def _with_engine(fn: Callable[[EvolutionEngine], Awaitable[T]]) -> T:
    from mongars.adapters.registry import AdapterRegistry
    from mongars.db.engine import create_engine, create_session_factory
    from mongars.evolution.service import EvolutionEngine
    from mongars.scheduler.admin import JobsAdmin
    from mongars.scheduler.idle import Activity, IdleGate
    from mongars.scheduler.setup import all_jobs

    settings = load_settings()

    async def go() -> T:
        engine = create_engine(settings.resolved_database_url)
        sessions = create_session_factory(engine)
        admin = None
        if settings.scheduler.enabled:
            cfg = settings.scheduler
            gate = IdleGate(cfg, Activity(sessions, cfg.activity_write_s), lambda: 0)
            admin = JobsAdmin(sessions, settings, all_jobs(settings), gate)
        host = CliHost(settings, sessions, AdapterRegistry(sessions, settings), admin)
        try:
            return await fn(EvolutionEngine(host))
        finally:
            if admin is not None:
                await admin.close()
            await engine.dispose()

    try:
        return asyncio.run(go())
    except DomainError as exc:
        console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from None


def _print(items: list[Any], title: str) -> None:
    """One line a decision (easy to grep): id, time, rule, action, status, outcome."""
    console.print(f"[bold]{title}[/bold]")
    for d in items:
        console.print(
            f"#{d.id}  {d.created_at:%Y-%m-%d %H:%M}  {d.rule}  {d.action}  {d.status}  "
            f"{d.outcome}",
            soft_wrap=True,
            markup=False,
        )


@evolution_app.command("decisions")
def decisions(
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    status: Annotated[str | None, typer.Option(help="awaiting_approval, taken...")] = None,
    inputs: Annotated[bool, typer.Option(help="Print each decision's inputs (JSON)")] = False,
) -> None:
    """The engine's decisions, newest first."""
    page = _with_engine(lambda e: e.decisions(None, limit, status))
    _print(page.items, "Evolution decisions")
    if inputs:
        for d in page.items:
            console.print(f"#{d.id} {d.rule}: {json.dumps(d.inputs, sort_keys=True)}")


@evolution_app.command("diagnose")
def diagnose() -> None:
    """Measure, run the rule table and record its decisions now."""

    async def run(e: EvolutionEngine) -> tuple[dict[str, Any], list[Any]]:
        made = await e.diagnose()
        return (e.last.as_dict() if e.last is not None else {}), made

    figures, made = _with_engine(run)
    console.print_json(json.dumps(figures, default=str))
    _print(made, f"{len(made)} new decision(s)")


@evolution_app.command("approve")
def approve(decision_id: int, note: str = "") -> None:
    """Execute an awaiting decision now (e.g. the adapter rollback)."""
    out = _with_engine(lambda e: e.approve(decision_id, cli_actor(), note))
    console.print(f"decision {out.id}: {out.status}: {out.outcome}")


@evolution_app.command("reject")
def reject(decision_id: int, note: str = "") -> None:
    """Reject an awaiting decision: nothing is done."""
    out = _with_engine(lambda e: e.reject(decision_id, cli_actor(), note))
    console.print(f"decision {out.id}: {out.status}")
