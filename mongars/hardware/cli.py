"""`mongars doctor`: the detected hardware and the tuning it suggests (docs/doctor.md)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mongars.hardware.detect import GIB, Hardware, detect
from mongars.hardware.recommend import Recommendations, recommend


def _gib(n: int | None) -> str:
    return "-" if n is None else f"{n / GIB:.1f} GiB"


def _hardware_table(hw: Hardware) -> Table:
    table = Table(title="Hardware")
    table.add_column("Item")
    table.add_column("Detected")
    cgroup = f"v{hw.cgroup_version}" if hw.cgroup_version else "-"
    quota = "-" if hw.cgroup_cpus is None else f"{hw.cgroup_cpus:g}"
    for item, value in (
        ("CPUs (logical)", str(hw.cpus)),
        ("Physical cores", str(hw.physical_cores or "-")),
        ("RAM", _gib(hw.ram_bytes)),
        (f"cgroup {cgroup} CPU quota", quota),
        (f"cgroup {cgroup} memory limit", _gib(hw.cgroup_memory_bytes)),
        ("Effective CPUs", f"{hw.effective_cpus:g}"),
        ("Effective RAM", _gib(hw.effective_ram_bytes)),
        ("Board", hw.board or "-"),
        ("Jetson", "yes" if hw.jetson else "no"),
        ("NVIDIA driver", "yes" if hw.nvidia_driver else "no"),
    ):
        table.add_row(item, value)
    return table


def _recommendations_table(rec: Recommendations) -> Table:
    table = Table(title="Recommendations")
    table.add_column("Setting")
    table.add_column("Value")
    table.add_column("Why")
    table.add_row("uvicorn workers", str(rec.workers), rec.workers_reason)
    table.add_row("llama.cpp threads (per worker)", str(rec.llm_threads), rec.llm_threads_reason)
    table.add_row("embedding batch size", str(rec.embed_batch_size), rec.embed_batch_reason)
    table.add_row("training", "allowed" if rec.training_allowed else "no", rec.training_reason)
    return table


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    root: Annotated[str, typer.Option(hidden=True, help="Read /proc and /sys under here")] = "/",
) -> None:
    """Show the detected hardware and the recommended tuning (docs/doctor.md)."""
    hw = detect(root)
    rec = recommend(hw)
    if as_json:
        typer.echo(
            json.dumps({"hardware": hw.as_dict(), "recommendations": rec.as_dict()}, indent=2)
        )
        return
    out = Console()
    out.print(_hardware_table(hw))
    out.print(_recommendations_table(rec))
    for note in rec.notes:
        out.print(f"- {note}")
