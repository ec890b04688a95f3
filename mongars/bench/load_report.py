"""The table of `mongars bench load` and its reading: where the load broke, and the
measured reasons (CPU, event-loop lag, database pool, PostgreSQL, the load
generator itself, open files), never a guess."""

from __future__ import annotations

import os
import statistics
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from mongars.bench.load import Options, Step


def _avg(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _stat(step: Step, key: str) -> list[float]:
    return [float(s.stats[key]) for s in step.samples if key in s.stats]


def figures(step: Step) -> dict[str, Any]:
    """The figures of one step, shared by the table and the diagnosis."""
    cpu = [s.cpu_pct for s in step.samples]
    return {
        "cpu_avg": _avg(cpu),
        "cpu_max": max(cpu, default=0.0),
        "lag_p95": statistics.median(_stat(step, "loop_lag_p95_ms") or [0.0]),
        "lag_max": max(_stat(step, "loop_lag_max_ms"), default=0.0),
        "pool_max": max(_stat(step, "pool_checked_out"), default=0.0),
        "pool_limit": max(_stat(step, "pool_limit"), default=0.0),
        "generating": max(_stat(step, "generating"), default=0.0),
        "bus_logs": (_stat(step, "bus_logs") or [0.0])[-1],
        "pg_cpu": _avg([s.postgres_cpu_pct for s in step.samples]),
        "client_cpu": _avg([s.client_cpu_pct for s in step.samples]),
        "fds": max((s.fds for s in step.samples), default=0),
        "stats_missed": sum(1 for s in step.samples if not s.stats),
    }


def print_report(console: Console, steps: list[Step], opts: Options, fd_limit: int) -> None:
    console.width = max(console.width, 48 + 17 * len(steps))  # one line per measure
    table = Table(
        title=f"mongars bench load: {opts.tokens} tokens per answer, one every "
        f"{opts.interval_ms:g} ms; {opts.users} accounts share the chatters"
    )
    table.add_column("measure")
    for s in steps:
        table.add_column(f"{s.db}\n{s.sse} SSE, {s.duration_s:.0f} s", justify="right")
    f = [figures(s) for s in steps]

    def row(name: str, cell: Any) -> None:
        table.add_row(name, *(cell(s, x) for s, x in zip(steps, f, strict=True)))

    row("answers (per s)", lambda s, x: f"{s.tally.chats} ({s.tally.chats / s.elapsed_s:.1f})")
    row("tokens received per s", lambda s, x: f"{s.tally.deltas / s.elapsed_s:.0f}")
    row("time to first token p50", lambda s, x: f"{s.p(50):.0f} ms")
    row("time to first token p95", lambda s, x: f"{s.p(95):.0f} ms")
    row("baseline: one client alone, p50", lambda s, x: f"{_med(s.baseline_ms):.0f} ms")
    row("errors (target 0)", lambda s, x: str(sum(s.errors.values())))
    row("idle WebSockets open at the end", lambda s, x: f"{s.ws_alive}/{s.ws}")
    row("server RSS before warm-up / start / peak / end", lambda s, x: _rss(s))
    row("growth after the load", lambda s, x: f"{s.growth_mib:+.1f} MiB")
    row(
        "server CPU avg / max (100 = 1 core)",
        lambda s, x: f"{x['cpu_avg']:.0f} / {x['cpu_max']:.0f}%",
    )
    row("event-loop lag p95 / max", lambda s, x: f"{x['lag_p95']:.0f} / {x['lag_max']:.0f} ms")
    row("DB pool in use max / limit", lambda s, x: f"{x['pool_max']:.0f} / {x['pool_limit']:.0f}")
    row("answers being generated, max", lambda s, x: f"{x['generating']:.0f}")
    row("PostgreSQL CPU avg", lambda s, x: f"{x['pg_cpu']:.0f}%" if s.db == "postgres" else "-")
    row("load generator CPU avg (same cores)", lambda s, x: f"{x['client_cpu']:.0f}%")
    row(f"server open files max (limit {fd_limit})", lambda s, x: str(x["fds"]))
    row("replay logs held at the end", lambda s, x: f"{x['bus_logs']:.0f}")
    console.print(table)
    for s in steps:
        if s.errors:
            console.print(f"[red]{s.db} {s.sse} SSE errors:[/red] {dict(s.errors)}")
            console.print(f"server log tail:\n{s.log_tail}")
    console.print(f"machine: {os.cpu_count()} cores, shared with the load generator")


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _rss(s: Step) -> str:
    return f"{s.rss_cold:.0f} / {s.rss_start:.0f} / {s.rss_peak:.0f} / {s.rss_end:.0f} MiB"


def reasons(step: Step, fd_limit: int) -> list[str]:
    """The measured signals of saturation at one step."""
    x = figures(step)
    found = []
    cores = os.cpu_count() or 1
    used = x["cpu_avg"] + x["client_cpu"] + x["pg_cpu"]
    if used >= 85 * cores:
        found.append(
            f"the CPUs were full: server {x['cpu_avg']:.0f}% + load generator "
            f"{x['client_cpu']:.0f}% + PostgreSQL {x['pg_cpu']:.0f}% of {cores * 100}% "
            "(other processes of the machine not counted)"
        )
    if x["cpu_avg"] >= 85:
        found.append(
            f"the server used {x['cpu_avg']:.0f}% CPU on average: its event loop runs on one "
            "core, so ~100% is its ceiling"
        )
    if x["lag_p95"] >= 50 or x["lag_max"] >= 500:
        found.append(
            f"event-loop lag p95 {x['lag_p95']:.0f} ms (max {x['lag_max']:.0f} ms): every "
            "frame and query waits that long for the loop"
        )
    if x["pool_limit"] and x["pool_max"] >= x["pool_limit"]:
        found.append(
            f"the database pool was exhausted ({x['pool_max']:.0f}/{x['pool_limit']:.0f} "
            "connections in use): requests queued for a connection"
        )
    if step.db == "postgres" and x["pg_cpu"] >= 50:
        found.append(f"PostgreSQL used {x['pg_cpu']:.0f}% CPU")
    if x["client_cpu"] >= 60:
        found.append(
            f"the load generator itself used {x['client_cpu']:.0f}% CPU of the same "
            f"{os.cpu_count()} cores"
        )
    if x["fds"] >= 0.9 * fd_limit:
        found.append(f"open files near the limit ({x['fds']}/{fd_limit})")
    if x["stats_missed"]:
        found.append(f"{x['stats_missed']} stats probes got no answer within 5 s")
    if step.errors:
        found.append(f"errors: {dict(step.errors)}")
    return found


def diagnose(steps: list[Step], opts: Options, fd_limit: int) -> list[str]:
    """Per database: the first step whose p95 time to first token passed the SLO or
    that had errors, and why; else the highest load that held."""
    lines = []
    for db in dict.fromkeys(s.db for s in steps):
        ordered = sorted((s for s in steps if s.db == db), key=lambda s: s.sse)
        broke = next((s for s in ordered if s.errors or s.p(95) > opts.slo_ms), None)
        if broke is None:
            top = ordered[-1]
            lines.append(
                f"{db}: held up to {top.sse} chatters (p95 {top.p(95):.0f} ms <= "
                f"{opts.slo_ms:.0f} ms, 0 errors)"
            )
            found = reasons(top, fd_limit)
            if found:
                lines.append(f"  nearest limits at {top.sse}: " + "; ".join(found))
            continue
        lines.append(
            f"{db}: breaks at {broke.sse} chatters (p95 time to first token "
            f"{broke.p(95):.0f} ms, SLO {opts.slo_ms:.0f} ms; {sum(broke.errors.values())} errors)"
        )
        found = reasons(broke, fd_limit)
        lines.extend(f"  - {r}" for r in found or ["no saturation signal measured"])
    return lines
