"""`mongars datasets ...`: training datasets from the command line (docs/training.md).

``datasets_app`` is registered in mongars/cli.py; each command imports what it needs
when it runs, so ``mongars --help`` stays fast.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

datasets_app = typer.Typer(
    help="Training datasets: scrubbing, curation, governance (docs/training.md).",
    no_args_is_help=True,
)
console = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    return typer.Exit(code=code)


def os_user() -> str:
    """The audit log's actor for a command run here: ``cli:<OS user>``."""
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


# --- sanitize ------------------------------------------------------------------


@datasets_app.command("sanitize")
def sanitize(
    input_path: Annotated[Path, typer.Argument(metavar="IN.jsonl", help="JSONL to scrub")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the result")],
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Data directory holding audit/ (default: the server's setting)"),
    ] = None,
    name: Annotated[
        list[str] | None,
        typer.Option("--name", help="A user's name to scrub as [NAME] (repeatable)"),
    ] = None,
) -> None:
    """Scrub personal data from every string of a JSONL file into a new file, audited."""
    from mongars.training.sanitize import SanitizeError, sanitize_file

    if data_dir is None:
        from mongars.settings import Settings

        data_dir = Settings().data_dir
    try:
        report = sanitize_file(input_path, output, os_user(), data_dir, name or ())
    except SanitizeError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"{exc.filename or input_path}: {exc.strerror or exc}") from None
    table = Table("detector", "replaced", "still found")
    for kind, count in report.counts.items():
        table.add_row(kind, str(count), str(report.remaining[kind]))
    Console().print(table)
    console.print(
        f"{report.records} record(s) -> {report.output_path}\n"
        f"audit: {report.audit_path} (scrubber version {report.scrubber_version})",
        soft_wrap=True,  # paths stay whole, to copy
        highlight=False,
    )
    if not report.clean:
        lines = ", ".join(str(n) for n in report.remaining_lines[:20])
        raise _fail(
            f"personal data still detected after scrubbing in output record(s) {lines}: "
            "do not train on this file",
            code=2,
        )
