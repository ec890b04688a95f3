"""The peer mesh of a running app: keys loaded (or made), telemetry exchange started."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mongars.peers.identity import NodeIdentity
from mongars.peers.schemas import Telemetry
from mongars.peers.service import PeerMesh

if TYPE_CHECKING:
    from mongars.runtime import Runtime


def local_load(runtime: Runtime) -> Telemetry:
    """What this process is doing now. The embedded model answers one request at a
    time, so its concurrency is 1; HTTP providers are counted the same way (a
    conservative figure: they may serve more)."""
    concurrency = 1
    adapter = None
    if runtime.adapters is not None:
        adapter = runtime.adapters.active_sha()
    return Telemetry(
        queue_depth=max(0, runtime.generating - concurrency),
        active_workers=runtime.generating,
        concurrency=concurrency,
        load_factor=runtime.generating / concurrency,
        tasks_processed=runtime.generations_done,
        models=[runtime.llm.model_id],
        adapter=adapter,
    )


async def start_peers(runtime: Runtime) -> PeerMesh:
    identity = await asyncio.to_thread(NodeIdentity.load_or_create, runtime.settings.data_dir)
    mesh = PeerMesh(runtime.sessions, runtime.settings, identity, lambda: local_load(runtime))
    mesh.start()
    return mesh
