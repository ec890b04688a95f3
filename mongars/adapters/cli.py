"""`mongars adapters ...`: the adapter registry from the command line (docs/adapters.md).

It works on the database and the data directory directly, like the API, with no model
loaded: activating writes the pointer and ``<data_dir>/adapters/adapter_manifest.json``,
and running servers pick the change up within seconds. Every action is audited as
``cli:<OS user>``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from mongars.errors import DomainError
from mongars.secrets.cli import load_settings

if TYPE_CHECKING:
    from mongars.adapters.registry import AdapterRegistry
    from mongars.adapters.schemas import AdapterOut, PointerOut

adapters_app = typer.Typer(
    help="Adapter versions, approvals, the active one, canary and rollback (docs/adapters.md).",
    no_args_is_help=True,
)
console = Console()
T = TypeVar("T")
Note = Annotated[str, typer.Option("--note", "-n", help="Why (kept in the audit log).")]
STATES = ("candidate", "approved", "rejected", "active", "retired", "pruned")
VersionId = Annotated[int, typer.Argument(min=1, help="The adapter version's id.")]


def _actor() -> str:
    """The audit log's actor for changes made here (``cli:<OS user>``)."""
    from mongars.training.commands import cli_actor

    return cli_actor()


def _with_registry(fn: Callable[[AdapterRegistry], Awaitable[T]]) -> T:
    """Run ``fn(registry)`` on this machine's database (no model: llm=None); a domain
    error (unknown version, a refused move) is printed and exits with status 1."""
    from mongars.adapters.registry import AdapterRegistry
    from mongars.db.engine import create_engine, create_session_factory

    settings = load_settings()

    async def go() -> T:
        engine = create_engine(settings.resolved_database_url)
        try:
            return await fn(AdapterRegistry(create_session_factory(engine), settings, None))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except DomainError as exc:
        console.print(f"[red]error:[/red] {exc.detail}", highlight=False)
        raise typer.Exit(1) from None


def _num(x: Any, fmt: str = "{:.3f}") -> str:
    return fmt.format(x) if isinstance(x, int | float) and not isinstance(x, bool) else "–"


def _metrics(v: AdapterOut) -> str:
    m = v.metrics
    regression = (
        f"{m.get('regression_passed', 0)}/{m['regression_total']}"
        if m.get("regression_total") is not None
        else "–"
    )
    parity = "–" if m.get("parity_ok") is None else ("ok" if m["parity_ok"] else "OFF")
    return (
        f"ppl ratio {_num(m.get('perplexity_ratio'))}, forgetting "
        f"{_num(m.get('forgetting_delta'))}, regression {regression}, parity {parity}"
    )


def _serving(p: PointerOut) -> str:
    now = f"version {p.active.id} serves" if p.active else "the base model answers"
    if p.canary:
        now += f"; canary version {p.canary.id} answers {p.canary_share:.0%} of turns"
    return now


def _pointer_done(what: str, p: PointerOut) -> None:
    console.print(f"{what}: {_serving(p)}. Running servers pick it up within seconds.")


@adapters_app.command("list")
def list_adapters(
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    before: Annotated[int | None, typer.Option(min=1, help="Versions older than this id.")] = None,
    state: Annotated[str | None, typer.Option(help="candidate, approved, active...")] = None,
) -> None:
    """Every version, newest first: state, run, sha256, key metrics, gate reasons."""
    if state is not None and state not in STATES:
        console.print(f"[red]error:[/red] --state must be one of {', '.join(STATES)}")
        raise typer.Exit(2)

    async def read(r: AdapterRegistry) -> tuple[Any, Any]:
        return await r.page(before, limit, state), await r.pointer()

    page, pointer = _with_registry(read)
    console.print(f"Now: {_serving(pointer)}.", highlight=False)
    table = Table(title="Adapter versions")
    for col in ("id", "state", "run", "dataset", "sha256"):
        table.add_column(col, no_wrap=True)  # ids stay whole; the rest wraps
    for col in ("metrics", "gate", "decided"):
        table.add_column(col)
    for v in page.items:
        table.add_row(
            str(v.id),
            v.state + (" (canary)" if v.canary else ""),
            v.run_id,
            v.dataset_id,
            v.sha256[:12],
            _metrics(v),
            ", ".join(g.code for g in v.gate) or "passed",
            f"{v.decided_by} {v.decided_at:%Y-%m-%d %H:%M}"
            if v.decided_by and v.decided_at
            else "–",
        )
    console.print(table)
    if page.next_before:
        console.print(f"older: mongars adapters list --before {page.next_before}")


@adapters_app.command("show")
def show(version_id: VersionId) -> None:
    """One version: every metric, the gate's reasons, the decision."""
    v = _with_registry(lambda r: r.get(version_id))
    console.print(
        f"[bold]adapter version {v.id}[/bold]: {v.state}{' (canary)' if v.canary else ''}"
    )
    rows = [
        ("sha256", f"{v.sha256} ({v.size_bytes} bytes)"),
        ("run", v.run_id),
        ("dataset", f"{v.dataset_id} (sha256 {v.dataset_sha256[:12]})"),
        ("base model", v.base_model),
        ("registered", f"{v.created_at:%Y-%m-%d %H:%M:%S}"),
        ("activated", f"{v.activated_at:%Y-%m-%d %H:%M:%S}" if v.activated_at else "never"),
        ("decided", f"{v.decided_by} {v.decided_at:%Y-%m-%d %H:%M}" if v.decided_at else "–"),
        ("note", v.note or "–"),
    ]
    rows += [(f"metric {k}", str(x)) for k, x in sorted(v.metrics.items())]
    rows += [(f"gate {g.code}", g.detail) for g in v.gate] or [("gate", "every gate passed")]
    for key, value in rows:
        console.print(f"  {key:<24} {value}", highlight=False)


@adapters_app.command("approve")
def approve(version_id: VersionId, note: Note = "") -> None:
    """A candidate may now serve (activate it, or start a canary)."""
    v = _with_registry(lambda r: r.approve(version_id, _actor(), note))
    console.print(f"adapter version {v.id} approved (mongars adapters activate {v.id})")


@adapters_app.command("reject")
def reject(version_id: VersionId, note: Note = "") -> None:
    """A version that must never serve (a running canary of it stops)."""
    v = _with_registry(lambda r: r.reject(version_id, _actor(), note))
    console.print(f"adapter version {v.id} rejected")


@adapters_app.command("activate")
def activate(version_id: VersionId, note: Note = "") -> None:
    """An approved (or retired) version serves from now on, in every process."""
    p = _with_registry(lambda r: r.activate(version_id, _actor(), note))
    _pointer_done(f"adapter version {version_id} activated", p)


@adapters_app.command("rollback")
def rollback(note: Note = "") -> None:
    """Back to the version active before the current one (or the base model)."""
    _pointer_done("rolled back", _with_registry(lambda r: r.rollback(_actor(), note)))


@adapters_app.command("deactivate")
def deactivate(note: Note = "") -> None:
    """The base model answers again; the canary stops."""
    _pointer_done("deactivated", _with_registry(lambda r: r.deactivate(_actor(), note)))


@adapters_app.command("canary")
def canary(
    version_id: VersionId,
    share: Annotated[
        float | None,
        typer.Option(help="Of turns, between 0 and 1 (default MONGARS_TRAINING__CANARY_SHARE)."),
    ] = None,
    note: Note = "",
) -> None:
    """A share of turns answered by this version, the rest by the active one."""
    p = _with_registry(lambda r: r.start_canary(version_id, share, _actor(), note))
    _pointer_done("canary started", p)


@adapters_app.command("canary-stop")
def canary_stop(note: Note = "") -> None:
    """Every turn answered by the active version (or the base model) again."""
    _pointer_done("canary stopped", _with_registry(lambda r: r.stop_canary(_actor(), note)))


@adapters_app.command("register")
def register(run_id: str) -> None:
    """A completed training run's adapter as a version (servers do it by themselves)."""
    v = _with_registry(lambda r: r.register_run(run_id, _actor()))
    gate = ", ".join(g.code for g in v.gate) or "every gate passed"
    console.print(f"run {run_id}: adapter version {v.id}, {v.state} (gate: {gate})")


@adapters_app.command("prune")
def prune(
    keep: Annotated[int, typer.Option(min=0, max=1000, help="Newest retired versions kept")] = 5,
) -> None:
    """Delete the files of rejected versions and of retired ones beyond the newest
    KEEP (their rows and history stay). Active, canary and approved ones stay."""
    pruned = _with_registry(lambda r: r.prune(keep, _actor()))
    console.print(f"pruned {len(pruned)} version(s): {', '.join(map(str, pruned)) or 'none'}")


@adapters_app.command("changes")
def changes(limit: Annotated[int, typer.Option(min=1, max=200)] = 50) -> None:
    """Every move of the pointer, newest first."""
    rows = _with_registry(lambda r: r.changes(limit))
    table = Table(title="Adapter changes")
    for col in ("when (UTC)", "action", "from", "to", "by", "note"):
        table.add_column(col)
    for c in rows:
        none = "no canary" if c.action.startswith("canary") else "base"
        table.add_row(
            f"{c.at:%Y-%m-%d %H:%M:%S}",
            c.action,
            str(c.from_id) if c.from_id is not None else none,
            str(c.to_id) if c.to_id is not None else none,
            c.actor,
            c.note,
        )
    console.print(table)


def _ci(pair: tuple[float | None, float | None], fmt: str) -> str:
    lo, hi = pair
    return f" [{fmt.format(lo)}–{fmt.format(hi)}]" if lo is not None and hi is not None else ""


@adapters_app.command("compare")
def compare(days: Annotated[float, typer.Option(min=0.001, max=3650)] = 30.0) -> None:
    """Per version: thumbs-down rate, confidence, latency (95 % intervals); canary p-value."""
    c = _with_registry(lambda r: r.compare(days))
    table = Table(title=f"Answers since {c.since:%Y-%m-%d %H:%M} UTC (95 % intervals)")
    for col in ("version", "turns", "thumbs down", "rate", "confidence", "latency ms"):
        table.add_column(col)
    for f in c.versions:
        label = "base model" if f.version is None else str(f.version)
        label += " (active)" if f.version is not None and f.version == c.active else ""
        label += " (canary)" if f.version is not None and f.version == c.canary else ""
        rate = "–"
        if f.thumbs_down_rate is not None:
            lo, hi = f.thumbs_down_ci
            rate = f"{f.thumbs_down_rate:.1%} [{lo:.1%}–{hi:.1%}]"
        table.add_row(
            label,
            str(f.turns),
            str(f.thumbs_down),
            rate,
            _num(f.confidence_mean) + _ci(f.confidence_ci, "{:.3f}"),
            _num(f.latency_ms_mean, "{:.0f}") + _ci(f.latency_ms_ci, "{:.0f}"),
        )
    console.print(table)
    if c.canary is not None:
        p = "not enough turns" if c.canary_worse_p is None else f"{c.canary_worse_p:.3g}"
        console.print(f"canary {c.canary} worse than the active version: one-sided p = {p}")
