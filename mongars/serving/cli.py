"""`mongars ray serve | deploy | status`: the Serve application from the command line."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.console import Console

from mongars.settings import Settings

ray_app = typer.Typer(
    help="Serve the model on a Ray cluster (docs/scale-out.md).", no_args_is_help=True
)
console = Console(stderr=True)


def _check_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        console.print("[red]error:[/red] Ray is not installed: pip install 'mongars[ray]'")
        raise typer.Exit(1) from None


def _prepare(settings: Settings) -> None:
    """Replicas on this machine find the packaged model already prepared."""
    if not settings.llm.model_path:
        from mongars.cli import prepare_model_with_progress

        prepare_model_with_progress(settings)


@ray_app.command("serve")
def serve(
    cpus: Annotated[int, typer.Option(help="CPUs the local Ray head offers (0: all)")] = 0,
) -> None:
    """Start a local Ray head (loopback only) and serve the model until Ctrl-C."""
    _check_ray()
    settings = Settings()
    _prepare(settings)
    from mongars.serving import cluster

    deployed = cluster.deploy(settings, local_cpus=cpus or None)
    console.print(
        f"monGARS Serve application at {deployed.url} "
        f"({settings.ray.min_replicas}-{settings.ray.max_replicas} replicas). Point API "
        f"processes at it: MONGARS_LLM__PROVIDER=ray MONGARS_LLM__BASE_URLS={deployed.url}"
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    console.print("stopping the Serve application and Ray...")
    cluster.shutdown()


@ray_app.command("deploy")
def deploy(
    address: Annotated[str, typer.Option(help="ray://HOST:10001, or auto")],
) -> None:
    """Deploy (or update in place) the application on an existing Ray cluster."""
    _check_ray()
    settings = Settings()
    from mongars.serving import cluster

    deployed = cluster.deploy(settings, address)
    console.print(
        f"deployed to {address}; its Serve proxies listen on port {settings.ray.port} "
        f"of each node (e.g. {deployed.url})"
    )


@ray_app.command("status")
def status(
    address: Annotated[str, typer.Option(help="ray://HOST:10001, or auto")] = "auto",
) -> None:
    """Replicas running now."""
    _check_ray()
    from mongars.serving import cluster

    cluster.ray_environment()
    import ray

    ray.init(address=address, log_to_driver=False)
    typer.echo(f"replicas running: {cluster.replica_count()}")
