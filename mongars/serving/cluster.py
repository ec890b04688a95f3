"""Starting Ray and deploying the Serve application, safely on one machine or a cluster.

Ray reads its environment when imported: :func:`ray_environment` must run first. On a
single machine everything stays on loopback (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
keeps Ray from rewriting 127.0.0.1 to the machine's address), usage statistics are
off, the dashboard is off and the object store is capped. Token authentication stays
as Ray ships it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from mongars.settings import Settings

RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
    "RAY_SERVE_ENABLE_TASK_EVENTS": "0",
}


def ray_environment() -> None:
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)


def user_config(settings: Settings) -> dict[str, Any]:
    """What each replica loads: the same model the embedded provider would."""
    llm, cfg = settings.llm, settings.ray
    return {
        "model_path": llm.model_path,
        "embedded_model": llm.embedded_model,
        "data_dir": str(settings.data_dir.resolve()),
        "context_window": llm.context_window,
        "threads": cfg.replica_threads,
    }


def deployment_config(settings: Settings) -> dict[str, Any]:
    cfg = settings.ray
    return {
        "min_replicas": cfg.min_replicas,
        "max_replicas": cfg.max_replicas,
        "target_ongoing_requests": cfg.target_ongoing_requests,
        "replica_cpus": cfg.replica_cpus,
        "max_ongoing_requests": cfg.max_ongoing_requests,
        "upscale_delay_s": cfg.upscale_delay_s,
        "downscale_delay_s": cfg.downscale_delay_s,
    }


@dataclass
class Deployed:
    url: str
    address: str


def deploy(settings: Settings, address: str = "", *, local_cpus: int | None = None) -> Deployed:
    """Start a local Ray head (no ``address``) or join ``address`` (``ray://HOST:10001``
    or ``auto``), then deploy (or update in place) the monGARS application."""
    ray_environment()
    import ray
    from ray import serve

    from mongars.serving.app import APP_NAME, builder

    cfg = settings.ray
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(
            num_cpus=local_cpus or os.cpu_count() or 1,
            object_store_memory=cfg.object_store_mb * 1024 * 1024,
            include_dashboard=False,
            _node_ip_address=cfg.host,
            log_to_driver=False,
        )
    serve.start(http_options={"host": cfg.host, "port": cfg.port})
    app = builder({"user_config": user_config(settings), "deployment": deployment_config(settings)})
    serve.run(app, name=APP_NAME, route_prefix="/")
    return Deployed(f"http://{cfg.host}:{cfg.port}", address or "local")


def shutdown() -> None:
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


def replica_count() -> int:
    """Replicas running now (the driver must be connected)."""
    from mongars.serving.app import _running_replicas

    return _running_replicas() or 0
